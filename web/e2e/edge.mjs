// The browser tests' edge box, set up the way an installer does it (deploy/dev/demo-edge.sh): a
// real edge-agent with its own device key, registered at dispatch for a restaurant in 斋堂镇 with
// the admin API, enrolled with the one-time code (which gives it its own account on the dev
// stack's mosquitto), watching camsim's night kitchen (rodents) and uploading each episode's
// snapshots and clip, signed, to the real media gateway.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

export const EDGE_TOWN = 'zhaitang'
/** The night kitchen's camera id (camsim serves it; the box watches its sub stream). */
export const NIGHT_CAMERA = 'e2e-night-kitchen'
export const NIGHT_SCENARIO = 'tests/camsim/scenarios/kitchen-night.toml'
/** The box's talk camera: camsim's ONVIF camera with a speaker (audio backchannel, recorded) and a
 * microphone (G.711 A-law with camsim's 700 Hz marker tone); registered with `talk = true`. */
export const TALK_CAMERA = 'e2e-talk-kitchen'

/** Makes the box's folder and device key (before the gateway starts: its [[edge]] table names the
 * key). Returns what the gateway's config needs. */
export function makeBoxKey(agentBin, work) {
  const dir = path.join(work, 'box')
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  execFileSync(agentBin, ['keygen', path.join(dir, 'device.key')], { stdio: 'ignore' })
  return {
    id: `e2e-box-${randomBytes(4).toString('hex')}`,
    dir,
    publicKey: fs.readFileSync(path.join(dir, 'device.key.pub'), 'utf8').trim(),
  }
}

/** dispatch's [mqtt] and [enrolment] sections for the dev stack's broker: its own client id and
 * share group, so that a demo dispatch on the same broker never takes this test's reports. */
export function brokerConfig(env) {
  const tag = randomBytes(4).toString('hex')
  return [
    '[mqtt]',
    `host = ${JSON.stringify(env.BL_MQTT_HOST ?? '127.0.0.1')}`,
    `port = ${env.BL_MQTT_PORT}`,
    `username = ${JSON.stringify(env.BL_MQTT_DISPATCH_USER ?? 'dispatch')}`,
    `password_file = ${JSON.stringify(env.BL_MQTT_DISPATCH_PASSWORD_FILE)}`,
    `client_id = "web-e2e-${tag}"`,
    `share_group = "web-e2e-${tag}"`,
    '[enrolment]',
    `broker_host = ${JSON.stringify(env.BL_MQTT_HOST ?? '127.0.0.1')}`,
    `broker_port = ${env.BL_MQTT_PORT}`,
    `mosquitto_password_file = ${JSON.stringify(env.BL_MQTT_PASSWD_FILE)}`,
    `mosquitto_lock_file = ${JSON.stringify(path.join(env.BL_DATA, 'mqtt.lock'))}`,
    `mosquitto_pid_file = ${JSON.stringify(env.BL_MQTT_PID_FILE)}`,
  ]
}

/**
 * Registers the box and its camera at dispatch for the first restaurant of 斋堂镇 (admin API),
 * enrols it and writes its edge.toml. `start()` runs it (the scenario does, once the board
 * watches); `stop()` ends it (SIGTERM: open clips are finished and sent first).
 */
export async function enrolBox({ api, server, box, agentBin, gateway, nightRtsp, talkRtsp, startProcess }) {
  const admin = await api('admin', server.adminPassword)
  const premises = (await admin.get(`/api/premises?town=${EDGE_TOWN}&perPage=50`)).body.items.find((p) => p.kind === 'restaurant')
  if (!premises) throw new Error(`no demo restaurant in ${EDGE_TOWN}`)
  const registered = await admin.post('/api/edges', { id: box.id, premisesId: premises.id })
  if (registered.status !== 201) throw new Error(`register ${box.id}: ${registered.status} ${JSON.stringify(registered.body)}`)
  const camera = await admin.post('/api/cameras', {
    id: NIGHT_CAMERA,
    premisesId: premises.id,
    name: '后厨夜视',
    source: 'edge',
    edgeId: box.id,
    mainStream: 'main',
    subStream: 'sub',
  })
  if (camera.status !== 201) throw new Error(`camera ${NIGHT_CAMERA}: ${camera.status} ${JSON.stringify(camera.body)}`)
  const talkCamera = await admin.post('/api/cameras', {
    id: TALK_CAMERA,
    premisesId: premises.id,
    name: '后厨对讲',
    source: 'edge',
    edgeId: box.id,
    mainStream: 'main',
    subStream: 'sub',
    talk: true,
  })
  if (talkCamera.status !== 201) throw new Error(`camera ${TALK_CAMERA}: ${talkCamera.status} ${JSON.stringify(talkCamera.body)}`)

  // the code goes in a file (not on a command line), used once
  const codeFile = path.join(box.dir, 'enrolment.code')
  fs.writeFileSync(codeFile, `${registered.body.enrolmentCode}\n`, { mode: 0o600 })
  const head = execFileSync(agentBin, ['enrol', '--dispatch', server.base, '--edge-id', box.id, '--code-file', codeFile, '--dir', box.dir], {
    encoding: 'utf8',
  })
  fs.rmSync(codeFile)
  const config = path.join(box.dir, 'edge.toml')
  fs.writeFileSync(
    config,
    [
      head.trimEnd(),
      '[evidence]',
      `url = "${gateway}"`,
      '[[camera]]',
      `id = "${NIGHT_CAMERA}"`,
      `url = "rtsp://${nightRtsp}/cam/${NIGHT_CAMERA}/sub"`,
      'rodent = true',
      // no detection: the box only plays talk-down to this camera's speaker
      '[[camera]]',
      `id = "${TALK_CAMERA}"`,
      `url = "rtsp://${talkRtsp}/cam/${TALK_CAMERA}/sub"`,
      `backchannel_url = "rtsp://${talkRtsp}/cam/${TALK_CAMERA}"`,
      '',
    ].join('\n'),
  )
  const log = path.join(path.dirname(box.dir), 'edge-agent.log')
  let agent = null
  return {
    premises,
    edgeId: box.id,
    camera: NIGHT_CAMERA,
    talkCamera: TALK_CAMERA,
    start: async () => {
      agent = await startProcess('edge-agent', agentBin, ['run', '--config', config], null)
    },
    /** Resolves once the box is connected to the broker (commands sent before are lost: its session
     * is clean). */
    connected: async (timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs
      while (!(fs.existsSync(log) && /uplink connected/.test(fs.readFileSync(log, 'utf8')))) {
        if (Date.now() > deadline) throw new Error(`the edge box did not connect to the broker; see ${log}`)
        await new Promise((r) => setTimeout(r, 200))
      }
      // its subscriptions follow the connection at once
      await new Promise((r) => setTimeout(r, 1000))
    },
    stop: async () => {
      await agent?.stop()
      agent = null
    },
  }
}

/** Takes the box's account off the dev stack's broker (enrolment added it), so that test runs leave
 * no accounts behind. */
export function removeBrokerAccount(env, root, edgeId) {
  try {
    execFileSync('bash', [path.join(root, 'deploy/dev/stack.sh'), 'mqtt-user-remove', edgeId], {
      env: { ...process.env, BL_DATA: env.BL_DATA, BL_MQTT_PORT: env.BL_MQTT_PORT },
      stdio: ['ignore', 'ignore', 'inherit'],
    })
  } catch (e) {
    // never hides the run's own outcome (the box may not have been enrolled at all)
    console.error(`could not remove broker account ${edgeId}: ${e.message}`)
  }
}
