// Browser tests of the console and the field app against a real dispatch (the binary given as the
// first argument) on a fresh database of the dev stack, in headless Chromium. The video wall's
// cameras are real too: camsim serves nine H.264 cameras and the media gateway relays them, set up
// the way deploy/dev/demo.sh does it (camsim and media-gateway are taken from dispatch's folder).
//   node web/e2e/run.mjs path/to/dispatch
// The database is dropped when every check passed (kept for inspection otherwise). Screenshots
// (zh-CN) go to web/e2e/screenshots/.
import { spawn, execFileSync } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { Api } from './api.mjs'
import { runEvidence } from './evidence.mjs'
import { runScenario } from './scenario.mjs'
import { runWall, WALL_CAMERAS } from './wall.mjs'
import { runAdminScenario } from './admin.mjs'
import { runDrills } from './drills.mjs'
import { runTalk } from './talk.mjs'

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

function psql(url, sql) {
  execFileSync('psql', [url, '-qtAc', sql], { stdio: ['ignore', 'pipe', 'inherit'] })
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

/** camsim with the wall's nine cameras and the media gateway relaying them (as demo.sh does);
 * dispatch signs live tokens with the key made here. */
async function startMedia(binDir, consoleOrigin) {
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
  const gatewayBin = copyBinary(path.join(binDir, 'media-gateway'))
  const key = path.join(work, 'dispatch-token')
  // the edge box whose evidence the gateway accepts (evidence.mjs plays its part)
  const edge = { id: 'e2e-edge', ...generateKeyPairSync('ed25519') }
  execFileSync(gatewayBin, ['keygen', key], { stdio: 'ignore' })
  const port = await freePort()
  // the RTSP server edges pull talk audio from (talk.mjs)
  const rtspPort = await freePort()
  const config = path.join(work, 'gateway.toml')
  fs.writeFileSync(
    config,
    [
      `listen = "127.0.0.1:${port}"`,
      'node_id = "gw-1"',
      `data_dir = ${JSON.stringify(path.join(work, 'gateway'))}`,
      `token_public_key_file = ${JSON.stringify(`${key}.pub`)}`,
      '[live]',
      'bind_ip = "127.0.0.1"',
      `allowed_origins = [${JSON.stringify(consoleOrigin)}]`,
      `push_listen = "127.0.0.1:${rtspPort}"`,
      '[[edge]]',
      `id = "${edge.id}"`,
      `public_key = "${edge.publicKey.export({ format: 'jwk' }).x}"`,
      ...WALL_CAMERAS.flatMap((c) => ['[[camera]]', `id = "${c.id}"`, `url = "rtsp://${rtsp}/cam/${c.id}"`, `sub_url = "rtsp://${rtsp}/cam/${c.id}/sub"`]),
      '',
    ].join('\n'),
  )
  const gateway = await startProcess('media-gateway', gatewayBin, ['run', '--config', config], null)
  const url = `http://127.0.0.1:${port}`
  await waitHealthy(`${url}/healthz`, 'media-gateway')
  return {
    /** camsim's host:port */
    rtsp,
    gateway: url,
    edge,
    // dispatch's [media] section: tokens for the one gateway node
    dispatchConfig: ['[media]', `signing_key_file = ${JSON.stringify(key)}`, '[[media.gateway]]', 'node = "gw-1"', `url = "${url}"`],
    /** The cameras go away (all at once, like a site losing power) and come back on the same address. */
    camerasDown: () => camsim.stop(),
    camerasUp: async () => {
      camsim = await startCamsim(rtsp)
    },
    stop: () => Promise.all([gateway.stop(), camsim.stop()]),
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
  const media = await startMedia(path.dirname(binary), `http://127.0.0.1:${port}`)
  let server
  try {
    server = await startDispatch(binary, stackEnv(), port, media.dispatchConfig)
  } catch (e) {
    await media.stop()
    throw e
  }
  const browser = await chromium.launch({
    executablePath: process.env.BL_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking'],
  })
  let ok = false
  try {
    const api = (u, p) => Api.login(server.base, u, p)
    // BL_E2E_ONLY=admin (or drills) runs that scenario alone (while working on it)
    const only = process.env.BL_E2E_ONLY
    const all = !only
    if (all) {
      await runScenario({ browser, server, api, shots })
      await runWall({ browser, server, api, shots, rtsp: media.rtsp, gateway: media.gateway, cameras: media, sql: (q) => psql(server.dbUrl, q) })
      await runEvidence({ browser, server, api, shots, gateway: media.gateway, edge: media.edge, sql: (q) => psql(server.dbUrl, q), work })
    }
    if (all || only === 'drills') await runDrills({ browser, server, shots })
    if (all || only === 'talk') await runTalk({ server, api, shots, rtsp: media.rtsp, gateway: media.gateway, sql: (q) => psql(server.dbUrl, q), work })
    // last: the cameras and users it adds would change what the screens above show
    if (all || only === 'admin') await runAdminScenario({ browser, server, api, shots })
    ok = true
  } finally {
    await browser.close()
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
