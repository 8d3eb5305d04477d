// The scenario of issue 6: log in; a hotline report appears on the board without a reload; triage
// confirms and dispatches it by keyboard; on a phone the on-duty field officer of that town accepts
// it, goes offline, resolves it with a photo, comes back online, and the board shows it resolved;
// the field officer of another town never sees it.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'

const TOWN = 'zhaitang'
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

async function login(page, username, password) {
  await page.fill('input[name=username]', username)
  await page.fill('input[name=password]', password)
  await page.click('[data-test=login-submit]')
}

export async function runScenario({ browser, server, api, shots }) {
  const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`) })
  const pw = server.demoPassword

  // ---- the console
  const desk = await browser.newContext({ viewport: { width: 1600, height: 900 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' })
  const board = await desk.newPage()
  board.on('pageerror', (e) => console.error('console page error:', e))
  await board.goto(`${server.base}/`)
  await board.waitForURL(/\/login/)
  step('a wrong password gets its own message')
  await login(board, 'op.li', 'not-the-password')
  await board.waitForSelector('[data-test=login-problem]')
  assert.match(await board.textContent('[data-test=login-problem]'), /密码/)
  step('log in as an operator; the board is live')
  await login(board, 'op.li', pw)
  await board.waitForSelector('[data-test=board-rows]')
  await board.waitForSelector('[data-test=link-state].live', { timeout: 15000 })

  step('a hotline report appears on the board without a reload')
  const reporter = await api('op.chen', pw)
  const premises = (await reporter.get(`/api/premises?town=${TOWN}&perPage=50`)).body.items.find((p) => p.kind !== 'pharmacy')
  assert.ok(premises, `a premises in ${TOWN}`)
  const created = await reporter.post('/api/incidents', {
    source: 'hotline',
    hotline: '12331',
    premisesId: premises.id,
    kind: 'rodent',
    description: '顾客来电：后厨有老鼠跑过',
  })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  const id = created.body.id
  const row = `[data-test=incident-row][data-id="${id}"]`
  await board.waitForSelector(row, { timeout: 10000 })
  // a second, older-looking incident elsewhere, so the board and map are not a single row
  await reporter.post('/api/incidents', { source: 'hotline', hotline: '12315', townId: 'dayu', address: '新桥大街 18 号', kind: 'complaint', description: '投诉：过期食品' })
  await board.waitForTimeout(800)
  await shot(board, 'board')

  step('triage: confirm and dispatch by keyboard')
  await board.click(row)
  await board.waitForSelector('[data-test=triage-state]')
  await board.waitForSelector('.camera-tile, .panel')
  await shot(board, 'triage')
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
