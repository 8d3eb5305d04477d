// Browser tests of the console and the field app against a real dispatch (the binary given as the
// first argument) on a fresh database of the dev stack, in headless Chromium.
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
import { runScenario } from './scenario.mjs'
import { runAdminScenario } from './admin.mjs'

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

async function startDispatch(binary, env) {
  fs.rmSync(work, { recursive: true, force: true })
  fs.mkdirSync(work, { recursive: true })
  // the shared target dir's binary may be replaced by another build while we run: use a copy
  const bin = path.join(work, 'dispatch')
  fs.copyFileSync(binary, bin)
  fs.chmodSync(bin, 0o755)
  const db = `web_e2e_${randomBytes(6).toString('hex')}`
  const serverUrl = env.BL_PG_URL
  psql(serverUrl, `CREATE DATABASE ${db}`)
  const dbUrl = serverUrl.replace(/\/[^/]*$/, `/${db}`)
  const port = await freePort()
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
      '',
    ].join('\n'),
  )
  const log = fs.openSync(path.join(work, 'dispatch.log'), 'w')
  const child = spawn(bin, ['--config', path.join(work, 'dispatch.toml')], {
    cwd: root,
    stdio: ['ignore', 'pipe', log],
  })
  let out = ''
  child.stdout.on('data', (d) => {
    out += d
    fs.appendFileSync(path.join(work, 'dispatch.out'), d)
  })
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dispatch exited ${child.exitCode}; see ${work}/dispatch.log`)
    try {
      if ((await fetch(`${base}/healthz`)).ok && /demo users password: /.test(out)) break
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error('dispatch did not start within 60 s')
    await new Promise((r) => setTimeout(r, 100))
  }
  const demoPassword = out.match(/demo users password: (\S+)/)[1]
  return {
    base,
    demoPassword,
    adminPassword,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.on('exit', resolve)
        child.kill('SIGTERM')
      }),
    dropDb: () => psql(serverUrl, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`),
    db,
  }
}

async function main() {
  const binary = process.argv[2]
  if (!binary || !fs.existsSync(binary)) throw new Error('usage: node web/e2e/run.mjs path/to/dispatch')
  if (!fs.existsSync(path.join(webDir, 'dist/index.html'))) throw new Error('web/dist is missing: run make web')
  fs.mkdirSync(shots, { recursive: true })
  const server = await startDispatch(binary, stackEnv())
  const browser = await chromium.launch({
    executablePath: process.env.BL_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking'],
  })
  let ok = false
  try {
    const api = (u, p) => Api.login(server.base, u, p)
    // BL_E2E_ONLY=admin runs the admin scenario alone (while working on it)
    if (process.env.BL_E2E_ONLY !== 'admin') await runScenario({ browser, server, api, shots })
    await runAdminScenario({ browser, server, api, shots })
    ok = true
  } finally {
    await browser.close()
    await server.stop()
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
