// Browser tests of the console and the field app against a real dispatch (the binary given as the
// first argument) on a fresh database of the dev stack, in headless Chromium. Everything around it
// is real too, taken from dispatch's folder: camsim serves nine H.264 cameras for the video wall and
// the night kitchen (rodents) for the edge box; the media gateway relays them and keeps evidence;
// an edge-agent enrolled with a one-time code watches the night kitchen and reports through the dev
// stack's mosquitto (edge.mjs) — as deploy/dev/demo.sh and demo-edge.sh set the demo up.
//   node web/e2e/run.mjs path/to/dispatch
// The database is dropped when every check passed (kept for inspection otherwise). Screenshots
// (zh-CN) go to web/e2e/screenshots/.
import { spawn, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { Api } from './api.mjs'
import { brokerConfig, enrolBox, makeBoxKey, NIGHT_CAMERA, NIGHT_SCENARIO, removeBrokerAccount, TALK_CAMERA } from './edge.mjs'
import { runScenario } from './scenario.mjs'
import { runWall, WALL_CAMERAS } from './wall.mjs'
import { runAdminScenario } from './admin.mjs'
import { runDrills } from './drills.mjs'
import { runTalk } from './talk.mjs'
import { runRooms } from './rooms.mjs'
import { runPtt } from './ptt.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const webDir = path.resolve(here, '..')
const root = path.resolve(webDir, '..')
const work = path.join(here, '.work')
const shots = path.join(here, 'screenshots')

function stackEnv() {
  const file = process.env.BL_STACK_ENV ?? path.join(root, '.data/stack.env')
  const env = {}
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = line.match(/^([A-Z_]+)=(.*)$/)
    if (m) env[m[1]] = m[2]
  }
  if (!env.BL_PG_URL) throw new Error(`${file} has no BL_PG_URL: start the dev stack (make stack)`)
  return env
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

/** Runs `sql`; returns what it printed (unaligned, tuples only), trimmed. */
function psql(url, sql) {
  return execFileSync('psql', [url, '-qtAc', sql], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' }).trim()
}

/** A private copy of a binary: the shared target dir's may be replaced by another build while we run. */
function copyBinary(binary) {
  const bin = path.join(work, path.basename(binary))
  fs.copyFileSync(binary, bin)
  fs.chmodSync(bin, 0o755)
  return bin
}

/** Spawns `bin` with `args`, logging to work/NAME.log, and resolves once stdout matches `ready`
 * (with the match; null: at once), or fails naming the log. */
async function startProcess(name, bin, args, ready, timeoutMs = 60_000) {
  const log = fs.openSync(path.join(work, `${name}.log`), 'w')
  const child = spawn(bin, args, { cwd: root, stdio: ['ignore', 'pipe', log] })
  let out = ''
  child.stdout.on('data', (d) => {
    out += d
    fs.appendFileSync(path.join(work, `${name}.out`), d)
  })
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}; see ${work}/${name}.log`)
    if (!ready || ready.test(out)) break
    if (Date.now() > deadline) throw new Error(`${name} did not start within ${timeoutMs / 1000} s; see ${work}/${name}.log`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    match: ready ? out.match(ready) : null,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.on('exit', resolve)
        child.kill('SIGTERM')
      }),
  }
}

async function waitHealthy(url, name) {
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      if ((await fetch(url)).ok) return
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`${name} is not healthy at ${url}; see ${work}/${name}.log`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** camsim with the wall's nine cameras, another camsim with the night kitchen the edge box watches
 * (so that the wall's camera outage leaves the box alone), and the media gateway relaying them and
 * taking the box's evidence; dispatch signs live tokens with the key made here. The gateway learns
 * its cameras from dispatch (`[dispatch]`, as in production): the wall's are pulled from camsim,
 * the box's is pushed by the box on demand (the gateway asks dispatch, dispatch sends startLive).
 * A third camsim serves the box's ONVIF talk camera (speaker recorded, microphone with a marker
 * tone); the gateway pulls it from its own [[camera]] table, which comes before dispatch, so that
 * the kitchen's sound reaches the console (an edge's push carries video only), and asks the box
 * through dispatch to play talk audio. */
async function startMedia(binDir, consoleOrigin, box, dispatchUrl) {
  const camsimBin = copyBinary(path.join(binDir, 'camsim'))
  const startCamsim = (listen) =>
    startProcess(
      'camsim',
      camsimBin,
      ['--listen', listen, '--truth-dir', path.join(work, 'truth'),
        ...WALL_CAMERAS.flatMap((c) => ['--camera', `${c.id}=${path.join(here, 'wall-camera.toml')}`])],
      /camsim listening on rtsp:\/\/(\S+)/,
    )
  let camsim = await startCamsim('127.0.0.1:0')
  const rtsp = camsim.match[1]
  const night = await startProcess(
    'camsim-night',
    camsimBin,
    ['--listen', '127.0.0.1:0', '--camera', `${NIGHT_CAMERA}=${path.join(root, NIGHT_SCENARIO)}`],
    /camsim listening on rtsp:\/\/(\S+)/,
  )
  const nightRtsp = night.match[1]
  const talkCamsimConfig = path.join(work, 'camsim-talk.toml')
  fs.writeFileSync(
    talkCamsimConfig,
    [
      'listen = "127.0.0.1:0"',
      '[[camera]]',
      `id = "${TALK_CAMERA}"`,
      `scenario = ${JSON.stringify(path.join(here, 'wall-camera.toml'))}`,
      'audio = "pcma"',
      'onvif_backchannel = true',
      'record_dir = "talk-backchannel"',
      '',
    ].join('\n'),
  )
  const talkCamsim = await startProcess('camsim-talk', camsimBin, ['--config', talkCamsimConfig], /camsim listening on rtsp:\/\/(\S+)/)
  const talkRtsp = talkCamsim.match[1]
  const gatewayBin = copyBinary(path.join(binDir, 'media-gateway'))
  const key = path.join(work, 'dispatch-token')
  execFileSync(gatewayBin, ['keygen', key], { stdio: 'ignore' })
  // the gateway's own key: it signs the talk recordings it stores (talk.mjs) and exports
  const gatewayKey = path.join(work, 'gateway-signing.key')
  execFileSync(gatewayBin, ['keygen', gatewayKey], { stdio: 'ignore' })
  const port = await freePort()
  // the RTSP server edges pull talk audio from (talk.mjs)
  const rtspPort = await freePort()
  const config = path.join(work, 'gateway.toml')
  // the gateway's credential for dispatch's /internal API (camera sources, live-start)
  const serviceToken = path.join(work, 'gateway-service.token')
  fs.writeFileSync(serviceToken, randomBytes(32).toString('hex'), { mode: 0o600 })
  fs.writeFileSync(
    config,
    [
      `listen = "127.0.0.1:${port}"`,
      'node_id = "gw-1"',
      `data_dir = ${JSON.stringify(path.join(work, 'gateway'))}`,
      `token_public_key_file = ${JSON.stringify(`${key}.pub`)}`,
      `signing_key_file = ${JSON.stringify(gatewayKey)}`,
      '[live]',
      'bind_ip = "127.0.0.1"',
      `allowed_origins = [${JSON.stringify(consoleOrigin)}]`,
      `push_listen = "127.0.0.1:${rtspPort}"`,
      // the box whose evidence the gateway accepts
      '[[edge]]',
      `id = "${box.id}"`,
      `public_key = "${box.publicKey}"`,
      // the talk camera from this file (with its sound), every other camera from dispatch
      '[[camera]]',
      `id = "${TALK_CAMERA}"`,
      `url = "rtsp://${talkRtsp}/cam/${TALK_CAMERA}"`,
      `sub_url = "rtsp://${talkRtsp}/cam/${TALK_CAMERA}/sub"`,
      '[dispatch]',
      `url = "${dispatchUrl}"`,
      `service_token_file = ${JSON.stringify(serviceToken)}`,
      '',
    ].join('\n'),
  )
  const gateway = await startProcess('media-gateway', gatewayBin, ['run', '--config', config], null)
  const url = `http://127.0.0.1:${port}`
  await waitHealthy(`${url}/healthz`, 'media-gateway')
  return {
    /** camsim's host:port (the wall's cameras) */
    rtsp,
    /** the night kitchen's camsim host:port */
    nightRtsp,
    /** the talk camera's camsim host:port, and where it records what its speaker played */
    talkRtsp,
    talkRecordings: path.join(work, 'talk-backchannel'),
    gateway: url,
    // dispatch's [media] section: tokens for the one gateway node
    dispatchConfig: [
      '[media]',
      `signing_key_file = ${JSON.stringify(key)}`,
      '[[media.gateway]]',
      'node = "gw-1"',
      `url = "${url}"`,
      `service_token_file = ${JSON.stringify(serviceToken)}`,
    ],
    /** The cameras go away (all at once, like a site losing power) and come back on the same address. */
    camerasDown: () => camsim.stop(),
    camerasUp: async () => {
      camsim = await startCamsim(rtsp)
    },
    stop: () => Promise.all([gateway.stop(), camsim.stop(), night.stop(), talkCamsim.stop()]),
  }
}

async function startDispatch(binary, env, port, extraConfig) {
  const bin = copyBinary(binary)
  const db = `web_e2e_${randomBytes(6).toString('hex')}`
  const serverUrl = env.BL_PG_URL
  psql(serverUrl, `CREATE DATABASE ${db}`)
  const dbUrl = serverUrl.replace(/\/[^/]*$/, `/${db}`)
  const adminPassword = `admin-e2e-${randomBytes(8).toString('hex')}`
  fs.writeFileSync(path.join(work, 'db.url'), dbUrl, { mode: 0o600 })
  fs.writeFileSync(path.join(work, 'admin.password'), adminPassword, { mode: 0o600 })
  const towns = [path.join(root, '../shared/data-towns.tsv'), path.join(root, 'shared/data-towns.tsv')].find((p) =>
    fs.existsSync(p),
  )
  fs.writeFileSync(
    path.join(work, 'dispatch.toml'),
    [
      `listen = "127.0.0.1:${port}"`,
      `towns_file = ${JSON.stringify(towns)}`,
      `admin_password_file = ${JSON.stringify(path.join(work, 'admin.password'))}`,
      'demo_data = true',
      `web_dir = ${JSON.stringify(path.join(webDir, 'dist'))}`,
      '[database]',
      `url_file = ${JSON.stringify(path.join(work, 'db.url'))}`,
      '[password]',
      'argon2_memory_kib = 8192',
      'argon2_iterations = 1',
      ...extraConfig,
      '',
    ].join('\n'),
  )
  const dispatch = await startProcess('dispatch', bin, ['--config', path.join(work, 'dispatch.toml')], /demo users password: (\S+)/)
  const base = `http://127.0.0.1:${port}`
  await waitHealthy(`${base}/healthz`, 'dispatch')
  return {
    base,
    demoPassword: dispatch.match[1],
    adminPassword,
    stop: dispatch.stop,
    dropDb: () => psql(serverUrl, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`),
    db,
    dbUrl,
  }
}

async function main() {
  const binary = process.argv[2]
  if (!binary || !fs.existsSync(binary)) throw new Error('usage: node web/e2e/run.mjs path/to/dispatch')
  if (!fs.existsSync(path.join(webDir, 'dist/index.html'))) throw new Error('web/dist is missing: run make web')
  fs.mkdirSync(shots, { recursive: true })
  fs.rmSync(work, { recursive: true, force: true })
  fs.mkdirSync(work, { recursive: true })
  const port = await freePort()
  const binDir = path.dirname(binary)
  const env = stackEnv()
  const agentBin = copyBinary(path.join(binDir, 'edge-agent'))
  const box = makeBoxKey(agentBin, work)
  const media = await startMedia(binDir, `http://127.0.0.1:${port}`, box, `http://127.0.0.1:${port}`)
  let server
  let edge
  try {
    server = await startDispatch(binary, env, port, [...media.dispatchConfig, ...brokerConfig(env)])
    edge = await enrolBox({ api: (u, p) => Api.login(server.base, u, p), server, box, agentBin, gateway: media.gateway, nightRtsp: media.nightRtsp, talkRtsp: media.talkRtsp, startProcess })
  } catch (e) {
    await server?.stop()
    await media.stop()
    removeBrokerAccount(env, root, box.id)
    throw e
  }
  const chromiumBrowser = await chromium.launch({
    executablePath: process.env.BL_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking'],
  })
  // every page of every scenario runs under dispatch's Content-Security-Policy: anything it blocks
  // (Chromium says so on the console) fails the run
  const blocked = []
  const browser = {
    newContext: async (options) => {
      const context = await chromiumBrowser.newContext(options)
      context.on('page', (page) =>
        page.on('console', (m) => {
          if (/Content[- ]Security[- ]Policy/i.test(m.text())) blocked.push(`${page.url()}: ${m.text()}`)
        }),
      )
      return context
    },
    close: () => chromiumBrowser.close(),
  }
  let ok = false
  try {
    const api = (u, p) => Api.login(server.base, u, p)
    // BL_E2E_ONLY=scenario (or wall, drills, admin) runs that scenario alone (while working on it)
    const only = process.env.BL_E2E_ONLY
    const all = !only
    if (all || only === 'scenario') await runScenario({ browser, server, api, shots, edge, sql: (q) => psql(server.dbUrl, q) })
    if (all || only === 'wall') {
      await runWall({ browser, server, api, shots, rtsp: media.rtsp, gateway: media.gateway, cameras: media, sql: (q) => psql(server.dbUrl, q) })
    }
    if (all || only === 'drills') await runDrills({ browser, server, shots, api: (base, u, p) => Api.login(base, u, p), sql: (q) => psql(server.dbUrl, q) })
    if (all || only === 'talk') await runTalk({ server, api, shots, edge, gateway: media.gateway, talkRecordings: media.talkRecordings, work })
    if (all || only === 'rooms') {
      await runRooms({ server, api, shots, rtsp: media.rtsp, sql: (q) => psql(server.dbUrl, q), gateway: media.gateway, box, camera: edge.camera, work })
    }
    if (all || only === 'ptt') await runPtt({ server, api, shots, sql: (q) => psql(server.dbUrl, q) })
    // last: the cameras and users it adds would change what the screens above show
    if (all || only === 'admin') await runAdminScenario({ browser, server, api, shots })
    if (blocked.length) throw new Error(`the content security policy blocked:\n${blocked.join('\n')}`)
    ok = true
  } finally {
    await browser.close()
    await edge.stop()
    removeBrokerAccount(env, root, box.id)
    await server.stop()
    await media.stop()
    if (ok) server.dropDb()
    else console.error(`kept database ${server.db} and ${work}/ for inspection`)
  }
}

main().then(
  () => console.log('web e2e: all passed'),
  (e) => {
    console.error('web e2e FAILED:', e)
    process.exit(1)
  },
)
