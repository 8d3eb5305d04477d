// Consult rooms (issue 7 item 7): three Chromium pages with fake cameras and microphones join one
// room through the media gateway — two operators from the incident and an outside expert by an
// invite link, without a login — and each decodes the other two's video and receives their
// audio (the pages' own WebRTC statistics, shown on each tile); an operator shares a camsim
// camera and all three decode it. Then the guest leaves and the others see them go; the operator
// plays one of the incident's evidence clips (an MP4 the box signed into the gateway's store) into
// the room and both decode it as it was stored (H.264), then stops it. The operator records the
// room (both pages show it recording); stopped, the recording is on the incident and its URL
// serves it. A forged link shows the error page.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { chromium } from 'playwright-core'

const SCREEN = { viewport: { width: 1600, height: 1000 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' }
const SHARED = 'wall-9'

function step(name) {
  console.log(`  · ${name}`)
}

async function login(page, username, password) {
  await page.fill('input[name=username]', username)
  await page.fill('input[name=password]', password)
  await page.click('[data-test=login-submit]')
}

/** Waits until every remote tile of `page` shows `n` others, each with decoded frames growing
 * past `frames` and audio bytes received. */
async function decodesOthers(page, n, frames) {
  await page.waitForFunction(
    ({ n, frames }) => {
      const tiles = [...document.querySelectorAll('[data-test=room-remote]')]
      return tiles.length === n && tiles.every((t) => Number(t.dataset.frames) > frames && Number(t.dataset.audioBytes) > 0)
    },
    { n, frames },
    { timeout: 90_000, polling: 500 },
  )
}

/** An MP4 clip (H.264, 20 s) uploaded to the gateway's evidence store as `box`'s camera would, and
 * linked to `incident` as an edge event's clip; returns its SHA-256. */
async function evidenceClip({ gateway, box, camera, incident, sql, work }) {
  const file = path.join(work, 'room-clip.mp4')
  execFileSync('gst-launch-1.0', ['-q', 'videotestsrc', 'num-buffers=300', 'pattern=ball', '!', 'video/x-raw,width=640,height=360,framerate=15/1', '!',
    'x264enc', 'key-int-max=15', 'tune=zerolatency', 'speed-preset=ultrafast', '!', 'video/x-h264,profile=constrained-baseline', '!',
    'h264parse', '!', 'mp4mux', '!', 'filesink', `location=${file}`])
  const body = fs.readFileSync(file)
  const sha = crypto.createHash('sha256').update(body).digest('hex')
  const capturedAt = new Date().toISOString()
  // the box's device key: its 32-byte Ed25519 seed, base64url (edge-agent keygen)
  const seed = Buffer.from(fs.readFileSync(path.join(box.dir, 'device.key'), 'utf8').trim(), 'base64url')
  const key = crypto.createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' })
  const payload = 'brightline-evidence-v1\n' + JSON.stringify([sha, body.length, box.id, camera, 'clip', 'video/mp4', capturedAt])
  const signature = crypto.sign(null, Buffer.from(payload), key).toString('base64url')
  const put = await fetch(`${gateway}/evidence/${sha}`, {
    method: 'PUT',
    headers: { 'X-Bl-Edge': box.id, 'X-Bl-Camera': camera, 'X-Bl-Kind': 'clip', 'X-Bl-Captured-At': capturedAt, 'Content-Type': 'video/mp4', 'X-Bl-Signature': signature },
    body,
  })
  assert.ok(put.ok, `clip upload: ${put.status} ${await put.text()}`)
  const event = crypto.randomUUID()
  sql(
    `INSERT INTO edge_events (event_id, edge_id, camera_id, type, kind, episode_id, phase, at, payload) VALUES ` +
      `('${event}', '${box.id}', '${camera}', 'detection', 'noChefHat', '${event}', 'end', now(), ` +
      `jsonb_build_object('clip', jsonb_build_object('sha256', '${sha}', 'size', ${body.length}, 'contentType', 'video/mp4', 'from', '${capturedAt}', 'to', '${capturedAt}'))); ` +
      `INSERT INTO incident_events (event_id, incident_id) VALUES ('${event}', '${incident}')`,
  )
  return sha
}

export async function runRooms({ server, api, shots, rtsp, sql, gateway, box, camera, work }) {
  const pw = server.demoPassword
  const op = await api('op.chen', pw)
  const premises = (await op.get('/api/premises?town=yongding&perPage=50')).body.items.find((p) => p.kind !== 'pharmacy')
  assert.ok(premises, 'a premises in 永定镇')
  const created = await op.post('/api/incidents', {
    source: 'hotline',
    hotline: '12331',
    premisesId: premises.id,
    kind: 'other',
    description: '会商测试：疑似食物中毒，请专家会诊',
  })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  const incident = created.body.id
  const clip = await evidenceClip({ gateway, box, camera, incident, sql, work })
  // the camera to share: the wall's camsim camera, registered if the wall scenario did not run
  sql(
    `INSERT INTO cameras (id, premises_id, name, source, main_stream, sub_stream) VALUES ` +
      `('${SHARED}', '${premises.id}', '洗消间', 'pull', 'rtsp://${rtsp}/cam/${SHARED}', 'rtsp://${rtsp}/cam/${SHARED}/sub') ON CONFLICT (id) DO NOTHING`,
  )
  const browser = await chromium.launch({
    executablePath: process.env.BL_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  })
  const context = async () => {
    const ctx = await browser.newContext(SCREEN)
    await ctx.grantPermissions(['camera', 'microphone'], { origin: server.base })
    return ctx
  }
  try {
    step('an operator opens a consult room from the incident and is in it')
    const a = await (await context()).newPage()
    a.on('pageerror', (e) => console.error('room page A error:', e))
    await a.goto(`${server.base}/incidents/${incident}`)
    await a.waitForURL(/\/login/)
    await login(a, 'op.chen', pw)
    await a.click('[data-test=room-open]')
    await a.waitForURL(/\/rooms\/room-/)
    const roomId = a.url().split('/rooms/')[1]
    await a.waitForSelector('[data-test=room][data-state=joined]', { timeout: 60_000 })

    step('a second operator joins from the incident; an outside expert by an invite link, without a login')
    const b = await (await context()).newPage()
    b.on('pageerror', (e) => console.error('room page B error:', e))
    await b.goto(`${server.base}/rooms/${roomId}`)
    await b.waitForURL(/\/login/)
    await login(b, 'op.li', pw)
    await b.waitForSelector('[data-test=room][data-state=joined]', { timeout: 60_000 })
    await a.fill('[data-test=room-guest-name]', '区疾控王专家')
    await a.click('[data-test=room-invite]')
    const link = (await (await a.waitForSelector('[data-test=room-invite-link]')).textContent()).trim()
    assert.match(link, /\/join\//)
    const c = await (await context()).newPage()
    c.on('pageerror', (e) => console.error('room page C error:', e))
    await c.goto(link)
    await c.waitForSelector('[data-test=room][data-state=joined]', { timeout: 60_000 })

    step('each page decodes the other two pages\u2019 video and receives their audio')
    for (const page of [a, b, c]) await decodesOthers(page, 2, 30)

    step(`the operator shares camsim camera ${SHARED}; all three decode it`)
    await a.selectOption('[data-test=room-share-camera]', SHARED)
    await a.click('[data-test=room-share-start]')
    for (const page of [a, b, c]) {
      await page.waitForFunction(
        (cam) => {
          const s = document.querySelector('[data-test=room-share]')
          return s && s.dataset.camera === cam && Number(s.dataset.frames) > 20
        },
        SHARED,
        { timeout: 90_000, polling: 500 },
      )
    }
    await a.screenshot({ path: path.join(shots, 'room.png') })

    step('the guest leaves: the others see two in the room')
    await c.click('[data-test=room-leave]')
    for (const page of [a, b]) {
      await page.waitForFunction(() => document.querySelectorAll('[data-test=room-remote]').length === 1, null, { timeout: 30_000 })
    }

    step('the operator plays one of the incident\u2019s evidence clips into the room: both decode it as stored, then it stops')
    await a.selectOption('[data-test=room-clip]', clip)
    await a.click('[data-test=room-clip-play]')
    for (const page of [a, b]) {
      await page.waitForFunction(
        (sub) => Number(document.querySelector(`[data-test=room-remote][data-sub="${sub}"]`)?.dataset.frames) > 15,
        `clip:${clip}`,
        { timeout: 90_000, polling: 500 },
      )
    }
    await a.screenshot({ path: path.join(shots, 'room-clip.png') })
    await a.click('[data-test=room-clip-stop]')
    for (const page of [a, b]) {
      await page.waitForFunction(() => document.querySelectorAll('[data-test=room-remote]').length === 1, null, { timeout: 30_000 })
    }

    step('the operator records the room: both pages say so; stopped, the recording is on the incident and plays')
    await a.click('[data-test=room-record]')
    for (const page of [a, b]) await page.waitForSelector('[data-test=room-recording]', { timeout: 30_000 })
    // a few seconds of the other operator's voice reach the room while it records
    const heard = () => a.$eval('[data-test=room-remote]', (r) => Number(r.dataset.audioBytes))
    const before = await heard()
    await a.waitForFunction(
      (over) => Number(document.querySelector('[data-test=room-remote]')?.dataset.audioBytes) > over,
      before + 20_000,
      { timeout: 60_000, polling: 500 },
    )
    await a.screenshot({ path: path.join(shots, 'room-recording.png') })
    await a.click('[data-test=room-record-stop]')
    await a.waitForSelector('[data-test=room-recording]', { state: 'detached', timeout: 30_000 })
    const deadline = Date.now() + 90_000
    let entry
    while (!entry) {
      entry = (await op.get(`/api/incidents/${incident}`)).body.timeline?.find((e) => e.noteCode === 'voiceRecorded' && e.noteParams?.kind === 'room')
      if (!entry) {
        if (Date.now() > deadline) throw new Error('the room recording did not reach the timeline')
        await new Promise((r) => setTimeout(r, 500))
      }
    }
    assert.equal(entry.refs.room, roomId, JSON.stringify(entry))
    const listed = await op.post(`/api/incidents/${incident}/voice-recordings`, {})
    const item = listed.body.items.find((r) => r.sha256 === entry.refs.voiceRecording.sha256)
    const resp = await fetch(item.url)
    assert.equal(resp.status, 200, `the room recording's URL answers ${resp.status}`)
    assert.ok((await resp.arrayBuffer()).byteLength > 10_000, 'the room recording has sound in it')

    step('a forged invite link shows why it does not open the room')
    const forged = await (await browser.newContext(SCREEN)).newPage()
    await forged.goto(`${server.base}/join/eyJyb29tIjoiJHtyb29tSWR9In0.AAAA`)
    await forged.waitForSelector('[data-test=room-error][data-code=invite_invalid]')
    assert.match(await forged.textContent('[data-test=room-error]'), /邀请链接无效/)
    await forged.screenshot({ path: path.join(shots, 'room-invite-invalid.png') })

    step('the room is listed on the incident')
    const rooms = await a.evaluate(async (id) => (await fetch(`/api/incidents/${id}/rooms`)).json(), incident)
    assert.ok(rooms.some((r) => r.id === roomId && r.sharedCamera === SHARED), JSON.stringify(rooms))
  } finally {
    await browser.close()
  }
}
