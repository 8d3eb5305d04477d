// The video wall of issue 6: nine live camsim cameras dragged onto the desk's wall play at once
// (framesDecoded grows in every tile); a new immediate-tier incident pre-empts a tile with a red
// frame until it is triaged; a wall window on another machine (another browser context, another
// user) follows the desk's layout changes as they are made.
import assert from 'node:assert/strict'
import path from 'node:path'

const TOWN = 'yongding'
const TOWN_ZH = '永定镇'
/** The wall's cameras: three rooms in each of three premises of 永定镇 (camsim serves them). */
export const WALL_CAMERAS = Array.from({ length: 9 }, (_, i) => ({
  id: `wall-${i + 1}`,
  premises: Math.floor(i / 3),
  name: ['后厨操作间', '备餐间', '洗消间'][i % 3],
}))
const SCREEN = { viewport: { width: 1920, height: 1080 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' }

function step(name) {
  console.log(`  · ${name}`)
}

async function login(page, username, password) {
  await page.fill('input[name=username]', username)
  await page.fill('input[name=password]', password)
  await page.click('[data-test=login-submit]')
}

/** Each tile's camera, status and decoded frames (getStats framesDecoded, kept on the tile). */
function tiles(page) {
  return page.$$eval('[data-test=wall-tile]', (els) =>
    els.map((e) => ({ camera: e.dataset.camera, status: e.dataset.status, frames: Number(e.dataset.frames) })),
  )
}

/** How many browsers the gateway serves `camera`'s `stream` to (its Prometheus metrics). */
async function viewers(gateway, camera, stream) {
  const text = await (await fetch(`${gateway}/metrics`)).text()
  const m = text.match(new RegExp(`^bl_gateway_live_viewers\\{camera="${camera}",stream="${stream}"\\} (\\d+)$`, 'm'))
  return m ? Number(m[1]) : 0
}

/** The gateway's open WHEP sessions. */
async function sessions(gateway) {
  const text = await (await fetch(`${gateway}/metrics`)).text()
  return Number(text.match(/^bl_gateway_live_sessions (\d+)$/m)?.[1] ?? -1)
}

async function allLive(page, n, timeout = 90_000) {
  await page.waitForFunction(
    (n) => {
      const t = [...document.querySelectorAll('[data-test=wall-tile]')]
      return t.length === n && t.every((e) => e.dataset.status === 'live')
    },
    n,
    { timeout },
  )
}

export async function runWall({ browser, server, api, shots, rtsp, gateway, cameras, sql }) {
  const shot = async (page, name) => {
    // the camera tree from its top (dragging scrolled it)
    await page.$eval('[data-test=camera-tree]', (e) => (e.scrollTop = 0)).catch(() => undefined)
    await page.screenshot({ path: path.join(shots, `${name}.png`) })
  }
  const pw = server.demoPassword
  const reporter = await api('op.chen', pw)
  const premises = (await reporter.get(`/api/premises?town=${TOWN}&perPage=50`)).body.items
    .filter((p) => p.kind !== 'pharmacy')
    .slice(0, 3)
  assert.equal(premises.length, 3, `three premises in ${TOWN}`)
  // camsim's cameras, pulled by the gateway, registered as the installer's psql does (demo-edge.sh)
  sql(
    'INSERT INTO cameras (id, premises_id, name, source, main_stream, sub_stream) VALUES ' +
      WALL_CAMERAS.map((c) => `('${c.id}', '${premises[c.premises].id}', '${c.name}', 'pull', 'rtsp://${rtsp}/cam/${c.id}', 'rtsp://${rtsp}/cam/${c.id}/sub')`).join(', '),
  )

  step('the desk: the camera tree, nine tiles, nine cameras dragged in')
  const desk = await browser.newContext(SCREEN)
  const page = await desk.newPage()
  page.on('pageerror', (e) => console.error('wall page error:', e))
  await page.goto(`${server.base}/wall`)
  await page.waitForURL(/\/login/)
  await login(page, 'op.li', pw)
  await page.waitForSelector('[data-test=camera-tree] .tree-town')
  await page.click('[data-test=layout-9]')
  await page.waitForSelector('[data-test=wall-grid][data-tiles="9"]')
  await page.click(`.tree-row.town:has-text("${TOWN_ZH}")`)
  for (const [i, c] of WALL_CAMERAS.entries()) {
    await page.dragAndDrop(`[data-test=tree-camera][data-camera="${c.id}"]`, `[data-test=wall-tile][data-index="${i}"]`)
    await page.waitForSelector(`[data-test=wall-tile][data-index="${i}"][data-camera="${c.id}"]`)
  }

  step('nine cameras play at once: frames decode in every tile')
  await allLive(page, 9)
  const before = await tiles(page)
  await page.waitForTimeout(5000)
  const after = await tiles(page)
  for (const [i, t] of after.entries()) {
    assert.equal(t.camera, WALL_CAMERAS[i].id)
    assert.ok(t.frames > before[i].frames, `tile ${i} (${t.camera}) decodes: ${before[i].frames} → ${t.frames}`)
  }

  step('an immediate incident pre-empts the last tile with a red frame until it is triaged')
  const rodent = await reporter.post('/api/incidents', {
    source: 'hotline',
    hotline: '12331',
    premisesId: premises[0].id,
    kind: 'rodent',
    description: '顾客来电：后厨有老鼠',
  })
  assert.equal(rodent.status, 201, JSON.stringify(rodent.body))
  const alarmTile = '[data-test=wall-tile][data-index="8"].alarm[data-camera="wall-1"]'
  await page.waitForSelector(alarmTile, { timeout: 15000 })
  assert.match(await page.textContent(`${alarmTile} [data-test=wall-alarm]`), /发现老鼠/)
  await allLive(page, 9)
  await page.waitForTimeout(1500)
  await shot(page, 'wall')
  const triaged = await reporter.post(`/api/incidents/${rodent.body.id}/transition`, { to: 'triaged' })
  assert.equal(triaged.status, 200, JSON.stringify(triaged.body))
  await page.waitForSelector('[data-test=wall-tile][data-index="8"][data-camera="wall-9"]:not(.alarm)', { timeout: 15000 })

  step('a wall window on another machine shows the same wall and follows the desk')
  const monitor = await browser.newContext(SCREEN)
  const win = await monitor.newPage()
  win.on('pageerror', (e) => console.error('wall window page error:', e))
  await win.goto(`${server.base}/wall-window?wall=main`)
  await win.waitForURL(/\/login/)
  await login(win, 'zhang.wei', pw)
  await win.waitForSelector('[data-test=wall-window] [data-test=wall-grid][data-tiles="9"]')
  assert.deepEqual((await tiles(win)).map((t) => t.camera), WALL_CAMERAS.map((c) => c.id))
  await page.click('[data-test=layout-4]')
  await win.waitForSelector('[data-test=wall-grid][data-tiles="4"]', { timeout: 10000 })
  assert.deepEqual((await tiles(win)).map((t) => t.camera), ['wall-1', 'wall-2', 'wall-3', 'wall-4'])
  await allLive(win, 4)
  // the tiles that went away ended their sessions at once: 4 at the desk, 4 at the window
  for (let i = 0; (await sessions(gateway)) !== 8; i++) {
    assert.ok(i < 50, `the gateway holds ${await sessions(gateway)} sessions, not the 8 on screen`)
    await page.waitForTimeout(100)
  }
  // a tile maximised at the desk: the window shows it alone, on the main stream
  await page.dblclick('[data-test=wall-tile][data-index="1"]')
  await win.waitForSelector('[data-test=wall-grid][data-tiles="1"] [data-test=wall-tile][data-camera="wall-2"]', { timeout: 10000 })
  await allLive(win, 1)
  assert.ok((await viewers(gateway, 'wall-2', 'main')) >= 2, 'the desk and the window play wall-2 on its main stream')
  await win.waitForTimeout(1500)
  await shot(win, 'wall-window')
  await page.dblclick('[data-test=wall-tile][data-index="1"]')
  await win.waitForSelector('[data-test=wall-grid][data-tiles="4"]', { timeout: 10000 })

  step('the 6-tile layout: one big tile on the main stream and five around it; drop, clear and swap, on both screens')
  await page.click('[data-test=layout-6]')
  await win.waitForSelector('[data-test=wall-grid][data-tiles="6"]', { timeout: 10000 })
  assert.deepEqual((await tiles(win)).map((t) => t.camera), ['wall-1', 'wall-2', 'wall-3', 'wall-4', '', ''])
  await page.dragAndDrop('[data-test=tree-camera][data-camera="wall-5"]', '[data-test=wall-tile][data-index="4"]')
  await win.waitForSelector('[data-test=wall-tile][data-index="4"][data-camera="wall-5"]', { timeout: 10000 })
  await page.click('[data-test=wall-tile][data-index="3"] [data-test=tile-clear]', { force: true })
  await win.waitForSelector('[data-test=wall-tile][data-index="3"][data-status="empty"]', { timeout: 10000 })
  // a tile dragged onto another: the two swap
  await page.dragAndDrop('[data-test=wall-tile][data-index="1"]', '[data-test=wall-tile][data-index="2"]')
  await win.waitForSelector('[data-test=wall-tile][data-index="1"][data-camera="wall-3"]', { timeout: 10000 })
  await win.waitForSelector('[data-test=wall-tile][data-index="2"][data-camera="wall-2"]', { timeout: 10000 })
  await page.waitForFunction(() => document.querySelectorAll('[data-test=wall-tile][data-status=live]').length === 4, null, { timeout: 60000 })
  assert.ok((await viewers(gateway, 'wall-1', 'main')) >= 1, 'the big tile plays the main stream')
  await page.waitForTimeout(1500)
  await shot(page, 'wall-desk-6')

  step('the cameras go away: every tile says offline; they come back: every tile plays again by itself')
  const playing = '[data-test=wall-tile]:not([data-status=empty])'
  await cameras.camerasDown()
  for (const p of [page, win]) {
    await p.waitForFunction((sel) => [...document.querySelectorAll(sel)].every((e) => e.dataset.status === 'offline'), playing, { timeout: 60000 })
  }
  await shot(win, 'wall-window-offline')
  await cameras.camerasUp()
  for (const p of [page, win]) {
    await p.waitForFunction((sel) => [...document.querySelectorAll(sel)].every((e) => e.dataset.status === 'live'), playing, { timeout: 90000 })
  }
  const again = await tiles(page)
  await page.waitForTimeout(5000)
  for (const [i, t] of (await tiles(page)).entries()) {
    if (t.camera) assert.ok(t.frames > again[i].frames, `tile ${i} (${t.camera}) decodes again`)
  }

  step('a tour through the town pages both screens together every 5 s')
  await page.fill('.wall-toolbar .el-input-number input', '5')
  await page.keyboard.press('Tab')
  await page.click(`.tree-row.town:has-text("${TOWN_ZH}") button`)
  await win.waitForSelector('.wall-window-head .tour', { timeout: 10000 })
  assert.match(await win.textContent('.wall-window-head .tour'), /每 5 秒/)
  const cams = async (p) => (await tiles(p)).map((t) => t.camera).join(',')
  const first = await cams(win)
  await win.waitForFunction((was) => [...document.querySelectorAll('[data-test=wall-tile]')].map((e) => e.dataset.camera).join(',') !== was, first, { timeout: 12000 })
  await win.waitForTimeout(1000)
  assert.equal(await cams(page), await cams(win), 'desk and window show the same tour page')
  await page.click('[data-test=stop-tour]')
  await win.waitForSelector('.wall-window-head .tour', { state: 'detached', timeout: 10000 })

  await Promise.all([desk.close(), monitor.close()])
}
