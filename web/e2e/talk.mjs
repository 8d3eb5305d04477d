// Talk-down from the triage screen (issue 7): Chromium's fake microphone plays a 1 kHz tone (a WAV
// made here); holding the talk button takes the camera's floor at dispatch and sends the
// microphone to the media gateway by WHIP, whose metrics then count Opus packets; a second
// operator is refused with the holder's name; letting go ends the gateway session and the floor.
// (The edge's playback to camsim's backchannel is slice talkedge's; until it lands the gateway
// reports the edge unreachable, which the button shows.)
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { chromium } from 'playwright-core'

const SCREEN = { viewport: { width: 1600, height: 1000 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' }
const CAMERA = 'talk-1'

function step(name) {
  console.log(`  · ${name}`)
}

/** A mono 16-bit 48 kHz WAV of `secs` seconds of a `freq` Hz sine. */
export function toneWav(file, freq = 1000, secs = 10) {
  const rate = 48_000
  const n = rate * secs
  const data = Buffer.alloc(n * 2)
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(12_000 * Math.sin((2 * Math.PI * freq * i) / rate)), i * 2)
  const h = Buffer.alloc(44)
  h.write('RIFF', 0)
  h.writeUInt32LE(36 + data.length, 4)
  h.write('WAVE', 8)
  h.write('fmt ', 12)
  h.writeUInt32LE(16, 16)
  h.writeUInt16LE(1, 20) // PCM
  h.writeUInt16LE(1, 22) // mono
  h.writeUInt32LE(rate, 24)
  h.writeUInt32LE(rate * 2, 28)
  h.writeUInt16LE(2, 32)
  h.writeUInt16LE(16, 34)
  h.write('data', 36)
  h.writeUInt32LE(data.length, 40)
  fs.writeFileSync(file, Buffer.concat([h, data]))
}

/** A counter or gauge of the gateway's Prometheus metrics. */
async function metric(gateway, name) {
  const text = await (await fetch(`${gateway}/metrics`)).text()
  return Number(text.match(new RegExp(`^${name} (\\d+)$`, 'm'))?.[1] ?? -1)
}

async function until(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function login(page, username, password) {
  await page.fill('input[name=username]', username)
  await page.fill('input[name=password]', password)
  await page.click('[data-test=login-submit]')
}

export async function runTalk({ server, api, shots, rtsp, gateway, sql, work }) {
  const pw = server.demoPassword
  const op = await api('op.chen', pw)
  const premises = (await op.get('/api/premises?town=yongding&perPage=50')).body.items.find((p) => p.kind !== 'pharmacy')
  assert.ok(premises, 'a premises in 永定镇')
  sql(
    `INSERT INTO cameras (id, premises_id, name, source, main_stream, sub_stream, talk) VALUES ` +
      `('${CAMERA}', '${premises.id}', '后厨对讲', 'pull', 'rtsp://${rtsp}/cam/wall-1', 'rtsp://${rtsp}/cam/wall-1/sub', true)`,
  )
  const incident = await op.post('/api/incidents', {
    source: 'hotline',
    hotline: '12331',
    premisesId: premises.id,
    kind: 'other',
    description: '对讲测试：后厨人员未戴帽',
  })
  assert.equal(incident.status, 201, JSON.stringify(incident.body))

  const wav = path.join(work, 'tone-1khz.wav')
  toneWav(wav)
  const browser = await chromium.launch({
    executablePath: process.env.BL_CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`,
    ],
  })
  try {
    step('triage: the talk button of a talk camera, held, sends the fake microphone (1 kHz) to the gateway')
    const ctx = await browser.newContext(SCREEN)
    await ctx.grantPermissions(['microphone'], { origin: server.base })
    const page = await ctx.newPage()
    page.on('pageerror', (e) => console.error('talk page error:', e))
    await page.goto(`${server.base}/incidents/${incident.body.id}`)
    await page.waitForURL(/\/login/)
    await login(page, 'op.chen', pw)
    const button = `[data-test=talk][data-camera="${CAMERA}"] [data-test=talk-button]`
    await page.waitForSelector(button)
    const packetsBefore = await metric(gateway, 'bl_gateway_talk_packets_in_total')
    await page.hover(button)
    await page.mouse.down()
    await page.waitForSelector(`[data-test=talk][data-camera="${CAMERA}"][data-state="connecting"], [data-test=talk][data-camera="${CAMERA}"][data-state="edgeUnreachable"], [data-test=talk][data-camera="${CAMERA}"][data-state="talking"]`)
    const packets = await until('Opus packets at the gateway', async () => {
      const n = await metric(gateway, 'bl_gateway_talk_packets_in_total')
      return n - packetsBefore >= 100 ? n - packetsBefore : null
    })
    assert.equal(await metric(gateway, 'bl_gateway_talk_sessions'), 1)
    console.log(`    the gateway received ${packets} Opus packets from the browser`)
    assert.match(await page.textContent(button), /连接中|正在通话|现场设备未响应/)
    await page.screenshot({ path: path.join(shots, 'talk.png') })

    step('a second operator is refused: the button names who talks')
    const other = await browser.newContext(SCREEN)
    const page2 = await other.newPage()
    await page2.goto(`${server.base}/incidents/${incident.body.id}`)
    await page2.waitForURL(/\/login/)
    await login(page2, 'op.li', pw)
    await page2.waitForSelector(button)
    await page2.hover(button)
    await page2.mouse.down()
    await page2.waitForSelector(`[data-test=talk][data-camera="${CAMERA}"][data-state="taken"]`)
    await page2.mouse.up()
    assert.match(await page2.textContent(button), /他人占用/)
    await other.close()

    step('letting go ends the gateway session and frees the floor')
    await page.mouse.up()
    await until('the talk session to end at the gateway', async () => (await metric(gateway, 'bl_gateway_talk_sessions')) === 0)
    await page.waitForSelector(`[data-test=talk][data-camera="${CAMERA}"][data-state="idle"]`)
    const li = await api('op.li', pw)
    const grant = await li.post(`/api/cameras/${CAMERA}/talk`, {})
    assert.equal(grant.status, 200, JSON.stringify(grant.body))
    assert.equal((await li.send('DELETE', `/api/cameras/${CAMERA}/talk`)).status, 204)
    await ctx.close()
  } finally {
    await browser.close()
  }
}
