// Triage shows an incident's evidence from the gateway's evidence store: the snapshot as an image
// and the clip as a video that plays and seeks (the store answers HTTP Range) — through the real
// gateway, which verified the edge's signature when the blobs were uploaded and checks the media
// token dispatch signed for the console.
//
// The edge's part is played by this test: it makes the clip and snapshot with ffmpeg, uploads them
// signed with a device key the gateway knows ([[edge]] in its config), and records the detection
// that names them the way dispatch's intake stores an edge event (rows in edge_events and
// incident_events of a hotline incident at the premises), since this harness runs no broker.
// tests/e2e (Rust) covers a real edge-agent's clip reaching the gateway.
import assert from 'node:assert/strict'
import { createHash, sign } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

const TOWN = 'zhaitang'

function step(name) {
  console.log(`  · ${name}`)
}

/** The bytes a device key signs (bl_proto::evidence::signing_payload). */
function signingPayload(meta) {
  const fields = [meta.sha256, meta.size, meta.edgeId, meta.cameraId, meta.kind, meta.contentType, meta.capturedAt]
  return Buffer.from(`brightline-evidence-v1\n${JSON.stringify(fields)}`)
}

/** PUT /evidence/{sha256} as an edge does; returns the BlobRef an event carries. */
async function upload(gateway, edge, cameraId, kind, contentType, bytes, range) {
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  const meta = { sha256, size: bytes.length, edgeId: edge.id, cameraId, kind, contentType, capturedAt: new Date().toISOString() }
  const signature = sign(null, signingPayload(meta), edge.privateKey).toString('base64url')
  const resp = await fetch(`${gateway}/evidence/${sha256}`, {
    method: 'PUT',
    headers: {
      'content-type': contentType,
      'x-bl-edge': edge.id,
      'x-bl-camera': cameraId,
      'x-bl-kind': kind,
      'x-bl-captured-at': meta.capturedAt,
      'x-bl-signature': signature,
    },
    body: bytes,
  })
  assert.ok([200, 201].includes(resp.status), `upload ${kind}: ${resp.status} ${await resp.text()}`)
  return { sha256, size: bytes.length, contentType, from: range?.from ?? null, to: range?.to ?? null }
}

export async function runEvidence({ browser, server, api, shots, gateway, edge, sql, work }) {
  const pw = server.demoPassword
  const reporter = await api('op.chen', pw)
  // not the scenario's premises (its rodent incident would take this report as a repeat)
  const premises = (await reporter.get(`/api/premises?town=${TOWN}&perPage=50`)).body.items.filter((p) => p.kind !== 'pharmacy')[1]
  const camera = 'e2e-evidence-cam'

  step('an edge uploads a signed clip and snapshot; its detection names them')
  const clipFile = path.join(work, 'clip.mp4')
  const snapFile = path.join(work, 'snapshot.jpg')
  const ff = ['-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=10']
  execFileSync('ffmpeg', [...ff, '-t', '6', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-g', '10', '-movflags', '+faststart', clipFile])
  execFileSync('ffmpeg', [...ff, '-frames:v', '1', snapFile])
  const end = new Date()
  const start = new Date(end.getTime() - 6000)
  const clip = await upload(gateway, edge, camera, 'clip', 'video/mp4', fs.readFileSync(clipFile), { from: start.toISOString(), to: end.toISOString() })
  const snapshot = await upload(gateway, edge, camera, 'snapshot', 'image/jpeg', fs.readFileSync(snapFile))
  const created = await reporter.post('/api/incidents', { source: 'hotline', hotline: '12331', premisesId: premises.id, kind: 'rodent', description: '证据测试' })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  const incident = created.body.id
  const eventId = crypto.randomUUID()
  const payload = {
    type: 'detection', v: 1, eventId, episodeId: crypto.randomUUID(), phase: 'end', edgeId: edge.id, cameraId: camera,
    kind: 'rodent', at: end.toISOString(), confidence: 0.9, boxes: [], snapshot, clip,
    model: { name: 'rodent-mog2', version: '0.1.0' }, exercise: null,
  }
  const json = JSON.stringify(payload).replaceAll("'", "''")
  sql(
    `INSERT INTO edges (id, premises_id) VALUES ('${edge.id}', '${premises.id}');
     INSERT INTO cameras (id, premises_id, name, source, edge_id, main_stream) VALUES ('${camera}', '${premises.id}', '后厨', 'edge', '${edge.id}', 'main');
     INSERT INTO edge_events (event_id, edge_id, camera_id, type, kind, episode_id, phase, at, payload)
       VALUES ('${eventId}', '${edge.id}', '${camera}', 'detection', 'rodent', '${payload.episodeId}', 'end', '${payload.at}', '${json}'::jsonb);
     INSERT INTO incident_events (event_id, incident_id) VALUES ('${eventId}', '${incident}');`,
  )

  step('triage shows the snapshot and plays the clip from the evidence store, seeking by Range')
  const desk = await browser.newContext({ viewport: { width: 1600, height: 900 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' })
  const page = await desk.newPage()
  page.on('pageerror', (e) => console.error('triage page error:', e))
  await page.goto(`${server.base}/incidents/${incident}`)
  await page.waitForURL(/\/login/)
  await page.fill('input[name=username]', 'op.li')
  await page.fill('input[name=password]', pw)
  await page.click('[data-test=login-submit]')
  await page.waitForSelector(`.evidence-snapshot[data-sha256="${snapshot.sha256}"] img`)
  await page.waitForFunction(
    (sha) => {
      const img = document.querySelector(`.evidence-snapshot[data-sha256="${sha}"] img`)
      return img && img.complete && img.naturalWidth === 320
    },
    snapshot.sha256,
    { timeout: 15000 },
  )
  const video = `.evidence-clip[data-sha256="${clip.sha256}"] video`
  await page.waitForSelector(video)
  const played = await page.$eval(video, async (v) => {
    v.muted = true
    await v.play()
    await new Promise((r) => setTimeout(r, 1500))
    const playedTo = v.currentTime
    v.pause()
    // a seek near the end needs bytes the browser has not fetched: a Range request
    v.currentTime = 5
    await new Promise((r, j) => {
      v.onseeked = r
      v.onerror = () => j(new Error(`video error ${v.error?.code}`))
    })
    return { playedTo, duration: v.duration, seekedTo: v.currentTime, width: v.videoWidth, frames: v.getVideoPlaybackQuality().totalVideoFrames }
  })
  assert.ok(played.playedTo > 0.5, `the clip played: ${JSON.stringify(played)}`)
  assert.ok(Math.abs(played.duration - 6) < 0.5, `the clip lasts its 6 s: ${JSON.stringify(played)}`)
  assert.ok(Math.abs(played.seekedTo - 5) < 0.2, `the seek landed: ${JSON.stringify(played)}`)
  assert.equal(played.width, 320)
  assert.ok(played.frames > 0, `frames decoded: ${JSON.stringify(played)}`)
  await page.$eval('.evidence-media', (e) => e.scrollIntoView())
  await page.screenshot({ path: path.join(shots, 'triage-evidence.png') })

  step('a blob the gateway does not hold yet shows as arriving')
  const missing = { ...snapshot, sha256: 'f'.repeat(64) }
  const lateId = crypto.randomUUID()
  const late = JSON.stringify({ ...payload, eventId: lateId, phase: 'update', snapshot: missing, clip: null }).replaceAll("'", "''")
  sql(
    `INSERT INTO edge_events (event_id, edge_id, camera_id, type, kind, episode_id, phase, at, payload)
       VALUES ('${lateId}', '${edge.id}', '${camera}', 'detection', 'rodent', '${payload.episodeId}', 'update', '${payload.at}', '${late}'::jsonb);
     INSERT INTO incident_events (event_id, incident_id) VALUES ('${lateId}', '${incident}');`,
  )
  await page.reload()
  await page.waitForSelector(`.evidence-snapshot[data-sha256="${missing.sha256}"] .evidence-arriving`, { timeout: 15000 })
  await desk.close()
}
