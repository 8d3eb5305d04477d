// The scenario of issue 6: log in; the real edge box (edge.mjs) sees a rodent in camsim's night
// kitchen and its report becomes an incident on the board without a reload; triage plays the clip
// from the gateway's evidence store (and seeks in it) and the camera live; confirm and dispatch by
// keyboard; on a phone the on-duty field officer of that town accepts it, goes offline, resolves it
// with a photo, comes back online, and the board shows it resolved; the field officer of another
// town never sees it.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'

import { EDGE_TOWN as TOWN } from './edge.mjs'

const OTHER_TOWN = 'qingshui'
const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  locale: 'zh-CN',
  timezoneId: 'Asia/Shanghai',
  permissions: ['geolocation'],
  geolocation: { latitude: 39.9852, longitude: 115.6431 },
}

function step(name) {
  console.log(`  · ${name}`)
}

/** Polls `get` until it returns something, or fails naming `what`. */
async function poll(get, what, timeout) {
  const deadline = Date.now() + timeout
  for (;;) {
    const got = await get()
    if (got) return got
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout / 1000} s`)
    await new Promise((r) => setTimeout(r, 500))
  }
}

async function login(page, username, password) {
  await page.fill('input[name=username]', username)
  await page.fill('input[name=password]', password)
  await page.click('[data-test=login-submit]')
}

export async function runScenario({ browser, server, api, shots, edge, sql }) {
  const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`) })
  const pw = server.demoPassword

  // ---- the console
  const desk = await browser.newContext({ viewport: { width: 1600, height: 900 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' })
  const board = await desk.newPage()
  board.on('pageerror', (e) => console.error('console page error:', e))
  const page = await board.goto(`${server.base}/`)
  step('the console comes with a content security policy: scripts from dispatch only, no framing')
  const csp = page.headers()['content-security-policy'] ?? ''
  assert.match(csp, /script-src 'self';/, csp)
  assert.doesNotMatch(csp, /unsafe-eval/, csp)
  assert.match(csp, /frame-ancestors 'none'/, csp)
  assert.equal(page.headers()['x-frame-options'], 'DENY')
  await board.waitForURL(/\/login/)
  step('a wrong password gets its own message')
  await login(board, 'op.li', 'not-the-password')
  await board.waitForSelector('[data-test=login-problem]')
  assert.match(await board.textContent('[data-test=login-problem]'), /密码/)
  step('log in as an operator; the board is live')
  await login(board, 'op.li', pw)
  await board.waitForSelector('[data-test=board-rows]')
  await board.waitForSelector('[data-test=link-state].live', { timeout: 15000 })

  step('the edge box sees a rodent in the night kitchen: the incident appears on the board without a reload')
  const reporter = await api('op.chen', pw)
  await edge.start()
  const id = await poll(async () => {
    const list = await reporter.get(`/api/incidents?town=${TOWN}&perPage=50`)
    return list.body.items.find((i) => i.premisesId === edge.premises.id && i.kind === 'rodent')?.id
  }, 'an incident from the edge box', 180_000)
  const row = `[data-test=incident-row][data-id="${id}"]`
  await board.waitForSelector(row, { timeout: 10000 })
  // a second, older-looking incident elsewhere, so the board and map are not a single row
  await reporter.post('/api/incidents', { source: 'hotline', hotline: '12315', townId: 'dayu', address: '新桥大街 18 号', kind: 'complaint', description: '投诉：过期食品' })
  await board.waitForTimeout(800)
  await shot(board, 'board')

  step('the restaurant has a past: a false alarm and a closed complaint, last year')
  const past = []
  const falseAlarm = await reporter.post('/api/incidents', { source: 'hotline', hotline: '12315', premisesId: edge.premises.id, kind: 'other', description: '投诉：后厨地面有积水' })
  assert.equal(falseAlarm.status, 201, JSON.stringify(falseAlarm.body))
  past.push(falseAlarm.body.id)
  assert.equal((await reporter.post(`/api/incidents/${falseAlarm.body.id}/transition`, { to: 'rejected', reason: '经核实为误报' })).status, 200)
  const complaint = await reporter.post('/api/incidents', { source: 'manual', premisesId: edge.premises.id, kind: 'complaint', description: '投诉：餐具消毒记录缺失' })
  assert.equal(complaint.status, 201, JSON.stringify(complaint.body))
  past.push(complaint.body.id)
  for (const to of ['triaged', 'resolved', 'closed']) {
    const moved = await reporter.post(`/api/incidents/${complaint.body.id}/transition`, { to })
    assert.equal(moved.status, 200, `${to}: ${JSON.stringify(moved.body)}`)
  }
  sql(`UPDATE incidents SET opened_at = opened_at - interval '400 days', last_report_at = last_report_at - interval '400 days'
       WHERE id IN ('${past.join("','")}')`)

  step('triage: the snapshot with its box, and the clip plays from the evidence store and seeks (HTTP Range)')
  await board.click(row)
  await board.waitForSelector('[data-test=triage-state]')
  await board.waitForFunction(
    () => [...document.querySelectorAll('.evidence-snapshot img')].some((i) => i.complete && i.naturalWidth > 0),
    null,
    { timeout: 60_000 },
  )
  // the detector's box drawn over the picture, where the rodent is
  assert.ok((await board.locator('.evidence-snapshot [data-test=evidence-box]').count()) > 0, 'the snapshot shows the detection box')
  // the clip comes with the episode's end (post-roll after the rodent left)
  // (until its upload is in, the store answers 404 and the panel says it is arriving, then retries)
  const video = '.evidence-clip video'
  await board.waitForFunction((sel) => document.querySelector(sel)?.readyState >= 1, video, { timeout: 150_000 })
  const played = await board.$eval(video, async (v) => {
    v.muted = true
    await v.play()
    await new Promise((r) => setTimeout(r, 2000))
    const playedTo = v.currentTime
    v.pause()
    // a seek near the end needs bytes the browser has not fetched: a Range request
    const target = Math.max(0, v.duration - 1)
    v.currentTime = target
    await new Promise((r, j) => {
      v.onseeked = r
      v.onerror = () => j(new Error(`video error ${v.error?.code}`))
    })
    return { playedTo, duration: v.duration, target, seekedTo: v.currentTime, width: v.videoWidth, frames: v.getVideoPlaybackQuality().totalVideoFrames }
  })
  assert.ok(played.playedTo > 0.5, `the clip played: ${JSON.stringify(played)}`)
  assert.ok(played.duration > 5, `the clip covers the episode with its pre- and post-roll: ${JSON.stringify(played)}`)
  assert.ok(Math.abs(played.seekedTo - played.target) < 0.5, `the seek landed: ${JSON.stringify(played)}`)
  assert.ok(played.width > 0 && played.frames > 0, `frames decoded: ${JSON.stringify(played)}`)
  await board.$eval(video, (v) => (v.currentTime = Math.min(8, v.duration / 2)))

  step('triage: the premises\' facts and past incidents, the timeline in Chinese')
  await board.waitForSelector('[data-test=past-incident]')
  assert.deepEqual(
    (await board.locator('[data-test=past-incident]').evaluateAll((rows) => rows.map((r) => r.dataset.id))).sort(),
    [...past].sort(),
    'the two past incidents, not this one',
  )
  assert.match(await board.textContent('[data-test=past-incidents]'), /误报/)
  const notes = await board.locator('[data-test=timeline-note]').allTextContents()
  assert.ok(notes.some((n) => n.startsWith('已分派给')), `the routing note in Chinese: ${notes}`)
  assert.ok(!notes.some((n) => /routed to|report, tier/.test(n)), `no English system notes: ${notes}`)

  step('triage: the camera live through the box\'s push (the gateway asked dispatch, dispatch sent startLive), frames decoding')
  const tile = `.camera-tile[data-camera="${edge.camera}"]`
  await board.click(`${tile} button`)
  await board.waitForSelector(`${tile}[data-status=live]`, { timeout: 60_000 })
  const frames = () => board.$eval(`${tile} video`, (v) => v.getVideoPlaybackQuality().totalVideoFrames)
  await board.waitForFunction((sel) => document.querySelector(sel)?.getVideoPlaybackQuality().totalVideoFrames > 0, `${tile} video`, { timeout: 30_000 })
  const before = await frames()
  await board.waitForTimeout(3000)
  const after = await frames()
  assert.ok(after > before, `live frames decode: ${before} → ${after}`)
  const pushes = Number(sql(`SELECT count(*) FROM audit_log WHERE action = 'camera.live' AND object_id = '${edge.camera}' AND details ->> 'push' = 'true'`))
  assert.ok(pushes >= 1, 'dispatch granted the box a push token for the live view')
  await board.$eval('.timeline ol', (el) => (el.scrollTop = 0))
  await shot(board, 'triage')

  step('triage: a picture an event names before its upload is in shows as arriving')
  // the box reports first and uploads after (a slow link): played here by a copy of the box's first
  // event naming a blob the store does not hold
  const lateId = crypto.randomUUID()
  sql(
    `INSERT INTO edge_events (event_id, edge_id, camera_id, type, kind, episode_id, phase, at, payload)
       SELECT '${lateId}', edge_id, camera_id, type, kind, episode_id, 'update', at,
              jsonb_set(payload, '{snapshot,sha256}', '"${'f'.repeat(64)}"')
       FROM edge_events e JOIN incident_events ie USING (event_id)
       WHERE ie.incident_id = '${id}' AND payload -> 'snapshot' <> 'null'::jsonb ORDER BY e.at LIMIT 1;
     INSERT INTO incident_events (event_id, incident_id) VALUES ('${lateId}', '${id}');`,
  )
  await board.reload()
  await board.waitForSelector(`.evidence-snapshot[data-sha256="${'f'.repeat(64)}"] .evidence-arriving`, { timeout: 15000 })

  step('triage: confirm and dispatch by keyboard')
  await board.keyboard.press('c')
  await board.waitForFunction(() => document.querySelector('[data-test=triage-state]')?.textContent?.includes('已确认'))
  // the buttons are enabled again once the step is done
  await board.waitForSelector('[data-test=act-dispatch]:not(.is-disabled)')
  await board.keyboard.press('d')
  await board.waitForFunction(() => document.querySelector('[data-test=triage-state]')?.textContent?.includes('已派单'))

  // ---- the field officer of the town's on-duty team, on a phone
  step(`field.${TOWN} sees it on a phone and accepts`)
  const phone = await browser.newContext(PHONE)
  const field = await phone.newPage()
  field.on('pageerror', (e) => console.error('field page error:', e))
  await field.goto(`${server.base}/field`)
  await login(field, `field.${TOWN}`, pw)
  const card = `[data-test=field-incident][data-id="${id}"]`
  await field.waitForSelector(card, { timeout: 10000 })
  await field.click(`${card} [data-test=step-acknowledged]`)
  await field.waitForFunction(
    (sel) => document.querySelector(`${sel} [data-test=field-state]`)?.textContent?.startsWith('已接单') && !document.querySelector('[data-test=outbox]'),
    card,
  )

  step('the incident view on the phone: the restaurant\'s camera live (pushed by the box), the timeline in Chinese')
  await field.click(`${card} [data-test=open-${id}]`)
  await field.click(`${card} [data-test=field-watch-${edge.camera}]`)
  const phoneCam = `${card} [data-test=live-camera][data-camera="${edge.camera}"]`
  await field.waitForSelector(`${phoneCam}[data-status=live]`, { timeout: 90_000 })
  const firstFrames = Number(await field.getAttribute(phoneCam, 'data-frames'))
  await field.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.dataset.frames) > n + 5, [phoneCam, firstFrames], { timeout: 30_000 })
  const phoneNotes = await field.locator(`${card} [data-test=timeline-note]`).allTextContents()
  assert.ok(phoneNotes.some((n) => n.startsWith('已分派给')), `the phone's timeline in Chinese: ${phoneNotes}`)
  await field.waitForSelector('.el-message', { state: 'detached', timeout: 15000 }) // the toasts have gone
  await field.$eval(phoneCam, (el) => el.scrollIntoView({ block: 'center' }))
  await shot(field, 'field-live')
  await field.click(`${card} [data-test=open-${id}]`)
  await field.waitForSelector(phoneCam, { state: 'detached' })
  // the box has done its part: no more episodes (a later one would open a new incident once this
  // one is resolved)
  await edge.stop()

  step('offline: en route, arrive, resolve with a photo — all kept in the outbox')
  await phone.setOffline(true)
  await field.waitForSelector('[data-test=offline-banner]')
  await field.click(`${card} [data-test=step-enRoute]`)
  await field.click(`${card} [data-test=step-onScene]`)
  const photo = await board.screenshot({ type: 'png' })
  const [chooser] = await Promise.all([field.waitForEvent('filechooser'), field.click(`${card} [data-test=step-resolved]`)])
  await chooser.setFiles({ name: 'site.png', mimeType: 'image/png', buffer: photo })
  await field.waitForFunction(() => document.querySelectorAll('[data-test=outbox] li').length === 4)
  const still = await reporter.get(`/api/incidents/${id}`)
  assert.equal(still.body.state, 'acknowledged', 'nothing reached dispatch while offline')
  await field.waitForSelector('.el-message', { state: 'detached', timeout: 15000 }) // the toasts have gone
  await shot(field, 'field-offline')

  step('back online: the outbox drains in order and the board shows it resolved')
  await phone.setOffline(false)
  await field.waitForSelector('[data-test=outbox]', { state: 'detached', timeout: 20000 })
  const done = await reporter.get(`/api/incidents/${id}`)
  assert.equal(done.body.state, 'resolved', JSON.stringify(done.body.timeline?.map((e) => e.action)))
  const moves = done.body.timeline.filter((e) => e.toState).map((e) => e.toState)
  assert.deepEqual(moves.slice(-4), ['acknowledged', 'enRoute', 'onScene', 'resolved'])
  assert.equal(done.body.photos.length, 1)
  assert.ok(done.body.timeline.find((e) => e.toState === 'onScene').lat, 'arrival carries the location')
  await field.waitForSelector('.el-message', { state: 'detached', timeout: 15000 }) // the toasts have gone
  await shot(field, 'field')
  await board.goto(`${server.base}/`)
  await board.waitForSelector(`${row}[data-state=resolved]`, { timeout: 10000 })
  await shot(board, 'board-resolved')

  step(`field.${OTHER_TOWN} never sees it`)
  const otherPhone = await browser.newContext(PHONE)
  const other = await otherPhone.newPage()
  await other.goto(`${server.base}/field`)
  await login(other, `field.${OTHER_TOWN}`, pw)
  await other.waitForSelector('.empty, [data-test=field-incident]')
  assert.equal(await other.locator(card).count(), 0)
  const peek = await api(`field.${OTHER_TOWN}`, pw)
  assert.equal((await peek.get(`/api/incidents/${id}`)).status, 403)
  assert.equal((await peek.post(`/api/cameras/${edge.camera}/live`, {})).status, 403, 'nor its camera')

  step('town map and dashboard')
  await board.goto(`${server.base}/map`)
  await board.waitForSelector('[data-test=town-map] canvas')
  await board.waitForTimeout(1200)
  await shot(board, 'map')
  await board.goto(`${server.base}/dashboard`)
  await board.waitForSelector('.chart canvas')
  // the scenario's incident is 斋堂镇's only one: its row shows its own times, read off its timeline
  const secs = (action) => (Date.parse(done.body.timeline.find((e) => e.action === action).at) - Date.parse(done.body.openedAt)) / 1000
  const townRow = board.locator(`[data-test=dash-row][data-key="town:${TOWN}"]`)
  await townRow.waitFor()
  assert.ok(Math.abs(Number(await townRow.getAttribute('data-ack-median')) - secs('acknowledge')) < 0.01, 'ack median')
  assert.ok(Math.abs(Number(await townRow.getAttribute('data-resolve-median')) - secs('resolve')) < 0.01, 'resolve median')
  const cells = await townRow.locator('td').allTextContents()
  assert.equal(cells[0], '1', `one incident in ${TOWN}: ${cells}`)
  assert.equal(cells[8], '100%', `resolved with a photo: rectification 100%: ${cells}`)
  await board.waitForTimeout(1200)
  await board.screenshot({ path: path.join(shots, 'dashboard.png'), fullPage: true })
  step('the dashboard downloads its figures as CSV with a Chinese header')
  const [download] = await Promise.all([board.waitForEvent('download'), board.click('[data-test=dash-csv]')])
  const csv = fs.readFileSync(await download.path())
  assert.deepEqual([...csv.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'a UTF-8 byte-order mark for Excel')
  const lines = csv.subarray(3).toString('utf8').split('\r\n')
  assert.match(lines[0], /^分组,名称,事件数,确认用时中位数\(秒\)/)
  assert.match(lines.find((l) => l.startsWith('镇街,斋堂镇,')) ?? '', /^镇街,斋堂镇,1,/)

  await Promise.all([desk.close(), phone.close(), otherPhone.close()])
}
