// Talk-down end to end (issue 7): Chromium's fake microphone plays a 1 kHz tone (a WAV made here);
// holding the talk button in triage takes the camera's floor at dispatch and sends the microphone to
// the media gateway by WHIP; the gateway asks dispatch, which tells the real edge box (MQTT
// `startTalk`), which pulls the audio from the gateway and plays it into camsim's ONVIF camera's
// backchannel as G.711; camsim's recording of its speaker must carry the 1 kHz tone (Goertzel). A
// second operator is refused with the holder's name; letting go ends the gateway session and the
// floor. Before that, the triage tile of the camera plays the kitchen's own sound (camsim's G.711
// with its 700 Hz marker, Opus from the gateway): the browser's Web Audio hears the marker. After
// it, the talk's recording is on the incident's timeline: the page plays it from the gateway, and
// the bytes it fetched decode (GStreamer) to stereo with the operator's 1 kHz tone on the left and
// the kitchen's 700 Hz marker on the right. Then a broadcast to the kitchen from the broadcast page
// lands in the page's history of past broadcasts, where its recording plays (the operator's 1 kHz).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { chromium } from 'playwright-core'

const SCREEN = { viewport: { width: 1600, height: 1000 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' }

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

/** Power of `freq` Hz in 16-bit mono PCM at `rate` Hz (Goertzel), normalised by length (as
 * camsim::tone). */
export function tonePower(samples, rate, freq) {
  const w = (2 * Math.PI * freq) / rate
  const coeff = 2 * Math.cos(w)
  let s1 = 0
  let s2 = 0
  for (const x of samples) {
    const s = x + coeff * s1 - s2
    s2 = s1
    s1 = s
  }
  return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.length ** 2
}

/** True when `freq` is audible and carries `ratio` times the power of frequencies well away from it. */
export function hasTone(samples, rate, freq, ratio = 20) {
  const p = tonePower(samples, rate, freq)
  return p > 1000 && [0.37, 0.55, 1.45, 2.6].every((k) => p > ratio * tonePower(samples, rate, freq * k))
}

/** The samples of a 16-bit mono PCM WAV file (camsim's recordings: 44-byte header). */
export function wavSamples(file) {
  const b = fs.readFileSync(file)
  const rate = b.readUInt32LE(24)
  const n = Math.floor((b.length - 44) / 2)
  const samples = new Int16Array(n)
  for (let i = 0; i < n; i++) samples[i] = b.readInt16LE(44 + i * 2)
  return { rate, samples }
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

export async function runTalk({ server, api, shots, edge, gateway, talkRecordings, work }) {
  const CAMERA = edge.talkCamera
  const pw = server.demoPassword
  const op = await api('op.chen', pw)
  const incident = await op.post('/api/incidents', {
    source: 'hotline',
    hotline: '12331',
    premisesId: edge.premises.id,
    kind: 'other',
    description: '对讲测试：后厨人员未戴帽',
  })
  assert.equal(incident.status, 201, JSON.stringify(incident.body))
  step('the edge box runs and is connected to the broker')
  await edge.start()
  await edge.connected()

  const wav = path.join(work, 'tone-1khz.wav')
  toneWav(wav, 1000, 30)
  const browser = await chromium.launch({
    executablePath: process.env.BL_CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  })
  try {
    const ctx = await browser.newContext(SCREEN)
    await ctx.grantPermissions(['microphone'], { origin: server.base })
    const page = await ctx.newPage()
    page.on('pageerror', (e) => console.error('talk page error:', e))
    await page.goto(`${server.base}/incidents/${incident.body.id}`)
    await page.waitForURL(/\/login/)
    await login(page, 'op.chen', pw)
    const talk = `[data-test=talk][data-camera="${CAMERA}"]`
    const button = `${talk} [data-test=talk-button]`
    await page.waitForSelector(button)

    step("the camera's tile plays the kitchen's sound once the operator turns it on: Web Audio hears the 700 Hz marker")
    const tile = `.camera-tile[data-camera="${CAMERA}"]`
    await page.click(`${tile} button`)
    await page.waitForSelector(`${tile}[data-status="live"] [data-test=listen]`, { timeout: 30_000 })
    await page.click(`${tile} [data-test=listen]`)
    const heard = await page.evaluate(async (sel) => {
      const video = document.querySelector(`${sel} video`)
      const stream = video.srcObject
      if (video.muted || stream.getAudioTracks().length === 0) {
        return { error: `no audible audio track (muted ${video.muted}, tracks ${stream.getTracks().map((t) => t.kind)})` }
      }
      const ctx = new AudioContext()
      const analyser = ctx.createAnalyser()
      analyser.fftSize = 8192
      ctx.createMediaStreamSource(stream).connect(analyser)
      const bins = new Float32Array(analyser.frequencyBinCount)
      const hz = ctx.sampleRate / analyser.fftSize
      const deadline = Date.now() + 20_000
      let peak = 0
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250))
        analyser.getFloatFrequencyData(bins)
        let best = 1
        for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best]) best = i
        peak = best * hz
        if (Math.abs(peak - 700) < 3 * hz && bins[best] > -80) break
      }
      await ctx.close()
      return { peak }
    }, tile)
    assert.ok(!heard.error && Math.abs(heard.peak - 700) < 20, `the kitchen's 700 Hz marker is the loudest tone the operator hears: ${JSON.stringify(heard)}`)
    console.log(`    the operator hears the kitchen: loudest tone ${heard.peak.toFixed(0)} Hz`)
    step('triage: holding the talk button sends the fake microphone (1 kHz) through gateway and edge box to the camera')
    const packetsBefore = await metric(gateway, 'bl_gateway_talk_packets_in_total')
    await page.hover(button)
    await page.mouse.down()
    await page.waitForSelector(`${talk}[data-state="talking"]`, { timeout: 30_000 })
    assert.match(await page.textContent(button), /正在通话/)
    const packets = await until('Opus packets at the gateway', async () => {
      const n = await metric(gateway, 'bl_gateway_talk_packets_in_total')
      return n - packetsBefore >= 150 ? n - packetsBefore : null
    })
    assert.equal(await metric(gateway, 'bl_gateway_talk_sessions'), 1)
    console.log(`    the gateway received ${packets} Opus packets from the browser; the box pulls them`)
    await page.screenshot({ path: path.join(shots, 'talk.png') })

    step("camsim's recording of the camera's speaker carries the operator's 1 kHz tone")
    const recorded = await until(
      '2 s of audio in the backchannel recording',
      async () => {
        const files = fs.existsSync(talkRecordings) ? fs.readdirSync(talkRecordings).filter((f) => f.endsWith('.wav')) : []
        if (files.length === 0) return null
        const { rate, samples } = wavSamples(path.join(talkRecordings, files.sort().at(-1)))
        return samples.length >= 2 * rate ? { rate, samples } : null
      },
      30_000,
    )
    // the last second: past the encoders' start-up
    const tail = recorded.samples.subarray(recorded.samples.length - recorded.rate)
    assert.ok(
      hasTone(tail, recorded.rate, 1000),
      `1 kHz dominates the camera's speaker (power ${tonePower(tail, recorded.rate, 1000).toFixed(0)} at 1 kHz, ` +
        `${tonePower(tail, recorded.rate, 550).toFixed(0)} at 550 Hz)`,
    )
    console.log(`    the camera's speaker played ${(recorded.samples.length / recorded.rate).toFixed(1)} s with the 1 kHz tone`)

    step('a second operator is refused: the button names who talks')
    const other = await browser.newContext(SCREEN)
    const page2 = await other.newPage()
    await page2.goto(`${server.base}/incidents/${incident.body.id}`)
    await page2.waitForURL(/\/login/)
    await login(page2, 'op.li', pw)
    await page2.waitForSelector(button)
    await page2.hover(button)
    await page2.mouse.down()
    await page2.waitForSelector(`${talk}[data-state="taken"]`)
    await page2.mouse.up()
    assert.match(await page2.textContent(button), /他人占用/)
    await other.close()

    step('letting go ends the gateway session and frees the floor')
    await page.mouse.up()
    await until('the talk session to end at the gateway', async () => (await metric(gateway, 'bl_gateway_talk_sessions')) === 0)
    await page.waitForSelector(`${talk}[data-state="idle"]`)
    await checkRecording({ page, op, incident: incident.body.id, work, shots })
    await broadcastAndReplay({ page, camera: CAMERA, town: edge.premises.townId, work, shots })
    const li = await api('op.li', pw)
    const grant = await li.post(`/api/cameras/${CAMERA}/talk`, {})
    assert.equal(grant.status, 200, JSON.stringify(grant.body))
    assert.equal((await li.send('DELETE', `/api/cameras/${CAMERA}/talk`)).status, 204)
    await ctx.close()
  } finally {
    await browser.close()
    await edge.stop()
  }
}

/** Left and right channels of a stereo recording (WebM/Opus), decoded by GStreamer to 16 kHz. */
function decodeStereo(file, work) {
  const raw = path.join(work, 'talk-recording.raw')
  execFileSync('gst-launch-1.0', ['-q', 'filesrc', `location=${file}`, '!', 'matroskademux', '!', 'opusdec', '!', 'audioconvert', '!',
    'audioresample', '!', 'audio/x-raw,format=S16LE,rate=16000,channels=2', '!', 'filesink', `location=${raw}`], { stdio: 'ignore' })
  const b = fs.readFileSync(raw)
  const n = Math.floor(b.length / 4)
  const left = new Int16Array(n)
  const right = new Int16Array(n)
  for (let i = 0; i < n; i++) {
    left[i] = b.readInt16LE(i * 4)
    right[i] = b.readInt16LE(i * 4 + 2)
  }
  return { rate: 16_000, left, right }
}

/** Once the page's <audio> at `sel` has played half a second: its duration and source URL. */
async function playing(page, sel) {
  const played = await page.waitForFunction(
    (sel) => {
      const a = document.querySelector(sel)
      return a && a.currentTime > 0.5 ? { duration: a.duration, src: a.src } : null
    },
    sel,
    { timeout: 30_000 },
  )
  return played.jsonValue()
}

/** A broadcast to the kitchen from the broadcast page lands in its history, where it plays again. */
async function broadcastAndReplay({ page, camera, town, work, shots }) {
  step('a broadcast to the kitchen is in the broadcast history and plays from there')
  await page.goto(`${(new URL(page.url())).origin}/broadcast`)
  await page.click('[data-test=broadcast-mode-pick]')
  await page.selectOption('[data-test=broadcast-town]', town)
  await page.check(`.pick input[data-camera="${camera}"]`)
  const button = '[data-test=broadcast-button]'
  // Right after the talk the box may still report the camera offline for a few seconds (its health
  // is sent every few seconds; the broadcast then has nobody to play it): the operator tries again.
  const phase = (p) => `[data-test=broadcast][data-phase=${p}]`
  for (let attempt = 1; ; attempt++) {
    await page.hover(button)
    await page.mouse.down()
    await page.waitForSelector(`${phase('live')}, ${phase('error')}`, { timeout: 30_000 })
    if ((await page.$(phase('live'))) || attempt === 10) break
    await page.mouse.up()
    await page.waitForTimeout(3000)
  }
  await page.waitForSelector(phase('live'), { timeout: 1000 }).catch(async (e) => {
    const said = await page.textContent('[data-test=broadcast]')
    throw new Error(`the broadcast did not go live: ${said}`, { cause: e })
  })
  await page.waitForSelector(`.kitchens tr[data-camera="${camera}"][data-state=playing]`, { timeout: 30_000 })
  await page.waitForTimeout(3000)
  await page.mouse.up()
  await page.waitForSelector(`.kitchens tr[data-camera="${camera}"][data-state=ended]`, { timeout: 30_000 })
  const play = '[data-test=broadcast-history] tr[data-broadcast] [data-test=voice-recording-play]'
  await page.waitForSelector(play, { timeout: 60_000 })
  assert.match(await page.textContent('[data-test=broadcast-history]'), /历史广播[\s\S]*1\/1 处播放/)
  await page.click(play)
  const { src } = await playing(page, '[data-test=broadcast-history] [data-test=voice-recording-audio]')
  await page.screenshot({ path: path.join(shots, 'broadcast-history.png') })
  const resp = await fetch(src)
  assert.equal(resp.status, 200, `the broadcast recording's URL answers ${resp.status}`)
  const file = path.join(work, 'broadcast-recording.webm')
  fs.writeFileSync(file, Buffer.from(await resp.arrayBuffer()))
  const { rate, left } = decodeStereo(file, work)
  const middle = left.subarray(Math.floor(left.length * 0.3), Math.floor(left.length * 0.8))
  assert.ok(hasTone(middle, rate, 1000), `the broadcast recording is the operator's 1 kHz (${tonePower(middle, rate, 1000).toFixed(0)} at 1 kHz)`)
  console.log(`    the page replays the ${(left.length / rate).toFixed(1)} s broadcast recording: the operator's 1 kHz`)
}

/** The talk that just ended is on the incident's timeline; the page plays it; both directions are in it. */
async function checkRecording({ page, op, incident, work, shots }) {
  step("the talk's recording is on the incident's timeline, recorded both ways")
  const entry = await until(
    'the recording on the timeline',
    async () => (await op.get(`/api/incidents/${incident}`)).body.timeline?.find((e) => e.noteCode === 'voiceRecorded'),
    60_000,
  )
  assert.deepEqual(entry.refs.voiceRecording.directions, ['center', 'premises'], JSON.stringify(entry))
  await page.reload()
  const play = `.voice-recording[data-sha256="${entry.refs.voiceRecording.sha256}"] [data-test=voice-recording-play]`
  await page.waitForSelector(play, { timeout: 30_000 })
  assert.match(await page.textContent('[data-test=timeline]'), /喊话已录音/)
  await page.click(play)
  const { duration, src } = await playing(page, '[data-test=voice-recording-audio]')
  console.log(`    the page plays the ${duration.toFixed(1)} s recording from the gateway`)
  await page.screenshot({ path: path.join(shots, 'talk-recording.png') })
  // the bytes the page plays: the gateway's evidence URL with the page's token (the gateway sends
  // no CORS headers, so they are fetched here rather than by the page's script)
  const resp = await fetch(src)
  assert.equal(resp.status, 200, `the recording's URL answers ${resp.status}`)
  const file = path.join(work, 'talk-recording.webm')
  fs.writeFileSync(file, Buffer.from(await resp.arrayBuffer()))
  const { rate, left, right } = decodeStereo(file, work)
  assert.ok(left.length > 3 * rate, `${left.length} samples recorded`)
  // the middle of the talk: both directions flowing, past the start and before the release
  const from = Math.floor(left.length * 0.4)
  const to = Math.floor(left.length * 0.85)
  const [l, r] = [left.subarray(from, to), right.subarray(from, to)]
  assert.ok(hasTone(l, rate, 1000), `left is the operator's 1 kHz (${tonePower(l, rate, 1000).toFixed(0)} at 1 kHz, ${tonePower(l, rate, 700).toFixed(0)} at 700 Hz)`)
  assert.ok(hasTone(r, rate, 700), `right is the kitchen's 700 Hz marker (${tonePower(r, rate, 700).toFixed(0)} at 700 Hz, ${tonePower(r, rate, 1000).toFixed(0)} at 1 kHz)`)
  console.log(`    left: the operator's 1 kHz; right: the kitchen's 700 Hz (${(left.length / rate).toFixed(1)} s)`)
}
