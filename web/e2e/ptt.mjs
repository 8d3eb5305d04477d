// Field push-to-talk (issue 7 item 5): an operator's console, a field officer's phone and a
// supervisor's console join an incident's voice channel through the media gateway. The field
// officer holds the talk button and the operator's page receives their audio (its own WebRTC
// statistics), while the gateway forwards nobody else's; the operator asking for the floor is
// refused while the field officer holds it; the supervisor takes over, the phone says who
// talks now and the operator hears the supervisor instead (the gateway silenced the field
// officer at once). Chromium's fake microphone sends all the time; only the floor opens it.
// The field officer's transmission, ended by the take-over, is then a push-to-talk recording on
// the incident's timeline that the console plays.
import assert from 'node:assert/strict'
import path from 'node:path'
import { chromium } from 'playwright-core'

const TOWN = 'zhaitang'
const SCREEN = { viewport: { width: 1600, height: 1000 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' }
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' }

function step(name) {
  console.log(`  · ${name}`)
}

async function login(page, username, password) {
  await page.fill('input[name=username]', username)
  await page.fill('input[name=password]', password)
  await page.click('[data-test=login-submit]')
}

/** Audio bytes `page` has received from `sub` (0 before its connection is up). */
function bytesFrom(page, scope, sub) {
  return page.$eval(`${scope} [data-test=ptt-remote][data-sub="${sub}"]`, (a) => Number(a.dataset.audioBytes)).catch(() => 0)
}

/** Waits until `page` has received more than `over` audio bytes from `sub`. */
async function hears(page, scope, sub, over) {
  await page.waitForFunction(
    ({ scope, sub, over }) => Number(document.querySelector(`${scope} [data-test=ptt-remote][data-sub="${sub}"]`)?.dataset.audioBytes) > over,
    { scope, sub, over },
    { timeout: 60_000, polling: 500 },
  )
}

/** Polls `check` until it gives something (generously: a loaded machine). */
async function until(what, check, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 500))
  }
}

/** Holds a talk button down (a press that is not let go). */
async function hold(page, selector) {
  await page.locator(selector).dispatchEvent('pointerdown', { pointerId: 1, button: 0, isPrimary: true })
}

export async function runPtt({ server, api, shots, sql }) {
  const pw = server.demoPassword
  const op = await api('op.chen', pw)
  const premises = (await op.get(`/api/premises?town=${TOWN}&perPage=50`)).body.items.find((p) => p.kind !== 'restaurant')
  assert.ok(premises, `a premises in ${TOWN}`)
  const created = await op.post('/api/incidents', {
    source: 'hotline',
    hotline: '12331',
    premisesId: premises.id,
    kind: 'other',
    description: '对讲测试：现场核查',
  })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  const incident = created.body.id
  // the field officer's team works it, whatever the duty roster said at this hour
  sql(`UPDATE incidents SET routed_team_id = (SELECT team_id FROM users WHERE username = 'field.${TOWN}') WHERE id = '${incident}'`)
  for (const to of ['triaged', 'dispatched']) {
    const r = await op.post(`/api/incidents/${incident}/transition`, { to })
    assert.equal(r.status, 200, JSON.stringify(r.body))
  }
  const browser = await chromium.launch({
    executablePath: process.env.BL_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  })
  const open = async (options, url, user) => {
    const ctx = await browser.newContext(options)
    await ctx.grantPermissions(['microphone'], { origin: server.base })
    const page = await ctx.newPage()
    page.on('pageerror', (e) => console.error(`ptt page ${user} error:`, e))
    await page.goto(`${server.base}${url}`)
    await page.waitForSelector('input[name=username]')
    await login(page, user, pw)
    return page
  }
  try {
    step('an operator, a field officer on a phone and a supervisor join the incident\u2019s voice channel')
    const console_ = await open(SCREEN, `/incidents/${incident}`, 'op.chen')
    const phone = await open(PHONE, '/field', `field.${TOWN}`)
    const sup = await open(SCREEN, `/incidents/${incident}`, 'zhang.wei')
    const desk = '[data-test=ptt]'
    const card = `[data-test=field-incident][data-id="${incident}"] [data-test=ptt]`
    for (const [page, scope] of [[console_, desk], [phone, card], [sup, desk]]) {
      await page.click(`${scope} [data-test=ptt-join]`, { timeout: 30_000 })
      await page.waitForSelector(`${scope}[data-state=listening]`, { timeout: 60_000 })
    }
    const field = `user:field.${TOWN}`
    // each sees the other two on the channel
    await console_.waitForFunction((n) => document.querySelectorAll('[data-test=ptt-remote]').length === n, 2, { timeout: 60_000 })

    step('nobody holds the floor: the operator receives no audio although every microphone is on')
    const silent = await bytesFrom(console_, desk, field)

    step('the field officer holds the talk button: the operator receives their voice')
    await hold(phone, `${card} [data-test=ptt-button]`)
    await phone.waitForSelector(`${card}[data-state=talking]`, { timeout: 30_000 })
    await hears(console_, desk, field, silent + 4000)
    await phone.screenshot({ path: path.join(shots, 'ptt-phone-talking.png') })

    step('the operator asks for the floor and is refused while the field officer holds it')
    await hold(console_, `${desk} [data-test=ptt-button]`)
    await console_.waitForSelector(`${desk}[data-state=taken]`, { timeout: 30_000 })
    assert.match(await console_.textContent(`${desk} [data-test=ptt-msg]`), /正在讲话/)
    await console_.locator(`${desk} [data-test=ptt-button]`).dispatchEvent('pointerup')

    step('the supervisor takes over: the phone says so and the operator hears the supervisor, not the field officer')
    await hold(sup, `${desk} [data-test=ptt-button]`)
    await sup.waitForSelector(`${desk} [data-test=ptt-takeover]`, { timeout: 30_000 })
    await hold(sup, `${desk} [data-test=ptt-takeover]`)
    await sup.waitForSelector(`${desk}[data-state=talking]`, { timeout: 30_000 })
    const supervisor = 'user:zhang.wei'
    const supBefore = await bytesFrom(console_, desk, supervisor)
    await hears(console_, desk, supervisor, supBefore + 4000)
    const fieldThen = await bytesFrom(console_, desk, field)
    await hears(console_, desk, supervisor, (await bytesFrom(console_, desk, supervisor)) + 8000)
    const fieldNow = await bytesFrom(console_, desk, field)
    // a second of Opus is several kB: at most a packet or two in flight at the take-over
    assert.ok(fieldNow - fieldThen < 1000, `the field officer was still forwarded: ${fieldThen} → ${fieldNow}`)
    await phone.waitForSelector(`${card}[data-state=taken]`, { timeout: 30_000 })
    assert.match(await phone.textContent(`${card} [data-test=ptt-msg]`), /zhang\.wei 正在讲话/)
    await phone.screenshot({ path: path.join(shots, 'ptt-phone-taken-over.png') })

    step('the channel is on the incident\u2019s timeline')
    const timeline = sql(`SELECT string_agg(note_code, ',' ORDER BY seq) FROM incident_timeline WHERE incident_id = '${incident}' AND action = 'voice'`)
    assert.match(timeline, /^voiceOpened,voiceJoined,voiceJoined,voiceJoined$/, timeline)

    step('the field officer\u2019s transmission is recorded: the console lists it on the timeline and plays it')
    // the take-over ended it; the gateway stores and reports it (retried until dispatch took it)
    const fieldName = sql(`SELECT display_name FROM users WHERE username = 'field.${TOWN}'`)
    const entry = await until('the push-to-talk recording on the timeline', async () =>
      (await op.get(`/api/incidents/${incident}`)).body.timeline?.find(
        (e) => e.noteCode === 'voiceRecorded' && e.noteParams?.kind === 'ptt' && e.noteParams?.talker === fieldName,
      ),
    )
    assert.deepEqual(entry.refs.voiceRecording.directions, ['center'], JSON.stringify(entry))
    await console_.reload()
    const play = `.voice-recording[data-sha256="${entry.refs.voiceRecording.sha256}"] [data-test=voice-recording-play]`
    await console_.waitForSelector(play, { timeout: 60_000 })
    assert.match(await console_.textContent('[data-test=timeline]'), /对讲已录音/)
    await console_.click(play)
    const audio = `.voice-recording[data-sha256="${entry.refs.voiceRecording.sha256}"] [data-test=voice-recording-audio]`
    await console_.waitForFunction((sel) => document.querySelector(sel)?.currentTime > 0.3, audio, { timeout: 60_000, polling: 250 })
    await console_.screenshot({ path: path.join(shots, 'ptt-recording.png') })
  } finally {
    await browser.close()
  }
}
