// The drill console (issue 8): the demo drill coordinator starts the 斋堂镇 school-poisoning
// scenario from the console, sees the first call fire through the real intake as a drill incident,
// then sees the next inject arrive live over the WebSocket (no reload, no polling), pauses, ends it
// (ENDEX), gets the PDF link when Chromium has printed it, opens the after-action report, moves an
// improvement item on and adds one by hand, and reads the history page that compares runs. An
// observer (the duty supervisor) on a phone rates a task and writes an observation in the field
// app's drill view; the coordinator's console shows both live, and the report carries them.
import assert from 'node:assert/strict'
import path from 'node:path'

function step(name) {
  console.log(`  · drills: ${name}`)
}

const runText = (page) => page.textContent('[data-test=drill-run]')
const until = (page, fn, arg, timeout = 20000) => page.waitForFunction(fn, arg, { timeout })

/** An earlier run through the API, for the history to compare: the town officer files the health
 * report at once, the rest is left undone, and it ends. */
async function earlierRun(server, api) {
  const coordinator = await api(server.base, 'drill.zhao', server.demoPassword)
  const officer = await api(server.base, 'officer.zhaitang', server.demoPassword)
  const started = await coordinator.post('/api/drills/scenarios/zhaitang-school-poisoning/runs', {})
  assert.equal(started.status, 201, JSON.stringify(started.body))
  const id = started.body.id
  let incident = null
  for (let i = 0; i < 200 && !incident; i++) {
    const r = await coordinator.get(`/api/drills/runs/${id}`)
    incident = r.body.injects.find((j) => j.id === 'first-call')?.incidentId ?? null
    if (!incident) await new Promise((r) => setTimeout(r, 100))
  }
  assert.ok(incident, 'the first call fired')
  const filed = await officer.post(`/api/incidents/${incident}/health-report`, { note: '电话报告区卫健委值班室（演练）' })
  assert.equal(filed.status, 201, JSON.stringify(filed.body))
  const ended = await coordinator.post(`/api/drills/runs/${id}/control`, { action: 'end' })
  assert.equal(ended.status, 200, JSON.stringify(ended.body))
}

export async function runDrills({ browser, server, shots, sql, api }) {
  step('an earlier run through the API, for the history')
  await earlierRun(server, api)
  const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`) })
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 900 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' })
  const page = await ctx.newPage()
  page.on('pageerror', (e) => console.error('drills page error:', e))
  let reloads = 0
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) reloads += 1
  })

  step('the coordinator logs in and opens 应急演练; the page is live')
  await page.goto(`${server.base}/`)
  await page.fill('input[name=username]', 'drill.zhao')
  await page.fill('input[name=password]', server.demoPassword)
  await page.click('[data-test=login-submit]')
  await page.click('[data-test=nav-drills]')
  await page.waitForSelector('[data-test=scenario-zhaitang-school-poisoning]')
  await until(page, () => document.querySelector('[data-test=link]')?.textContent?.includes('实时'))

  step('STARTEX: the first call fires through the real intake and opens a drill incident')
  await page.click('[data-test=scenario-zhaitang-school-poisoning] button')
  await page.waitForSelector('[data-test=drill-run]')
  await until(page, () => document.querySelector('[data-test=drill-run]')?.textContent?.includes('已立案'))
  const run = await runText(page)
  assert.match(run, /【演练 DRILL】/)
  assert.match(run, /接报确认/)
  assert.match(run, /进行中/)
  assert.match(run, /待注入/, 'the later injects wait')

  step('the next inject arrives live: the page shows it without a reload')
  const navigations = reloads
  // bring the role-players' message (due at T+10 min) forward to now; the worker fires it
  sql(`UPDATE drill_injects SET due_at = now() WHERE inject_id = 'parents-at-gate' AND outcome IS NULL`)
  await until(page, () => document.querySelector('[data-test=drill-run]')?.textContent?.includes('已发出'))
  assert.equal(reloads, navigations, 'no page reload')
  await shot(page, 'drill-console')

  step('an observer on a phone rates a critical task and writes what they saw')
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    locale: 'zh-CN', timezoneId: 'Asia/Shanghai',
  })
  const field = await phone.newPage()
  field.on('pageerror', (e) => console.error('field drill page error:', e))
  await field.goto(`${server.base}/field`)
  await field.fill('input[name=username]', 'zhang.wei')
  await field.fill('input[name=password]', server.demoPassword)
  await field.click('[data-test=login-submit]')
  const drill = '[data-test=field-drill]'
  await field.waitForSelector(drill, { timeout: 20000 })
  assert.match(await field.textContent(drill), /演练 DRILL/)
  const task = `${drill} [data-test=field-drill-task] >> nth=0`
  const taskName = (await field.textContent(`${task} >> .task`)).trim()
  assert.match(await field.textContent(`${task} >> .timing`), /目标 \d+ 秒/, 'the task shows its timing')
  await field.click(`${task} >> [data-test=rate-S]`)
  await field.waitForSelector(`${task} >> [data-test=rate-S].el-button--primary`)
  const seen = '学校卫生室未按要求封存剩余食品留样（手机观察）'
  await field.fill(`${drill} textarea`, seen)
  await field.click(`${drill} [data-test=observation-send]`)
  await field.waitForFunction((text) => document.querySelector('[data-test=field-drill-observations]')?.textContent?.includes(text), seen)
  await field.screenshot({ path: path.join(shots, 'drill-observer-phone.png') })

  step("the coordinator's console shows the phone's rating and observation live")
  await until(page, (text) => document.querySelector('[data-test=drill-run]')?.textContent?.includes(text), seen)
  const ratedRow = await page.textContent(`[data-test=expectations] .el-table__row:has-text("${taskName}")`)
  assert.match(ratedRow, /S/, 'the rating shows on the task')
  assert.match(await runText(page), /zhang\.wei/, 'the observer is named')
  await phone.close()

  step('pause, then ENDEX: the report is written and the PDF link comes when Chromium has printed it')
  await page.click('[data-test=drill-run] button:has-text("暂停")')
  await page.waitForSelector('[data-test=drill-run] button:has-text("继续")')
  await page.click('[data-test=endex]')
  await page.waitForSelector('[data-test=report]')
  assert.match(await page.textContent('[data-test=expectations]'), /未完成/)
  await page.waitForSelector('[data-test=report-pdf]', { timeout: 90000 })
  const pdf = await page.evaluate(async () => {
    const href = document.querySelector('[data-test=report-pdf]').getAttribute('href')
    const r = await fetch(href)
    const bytes = new Uint8Array(await r.arrayBuffer())
    return { status: r.status, type: r.headers.get('content-type'), head: String.fromCharCode(...bytes.slice(0, 5)) }
  })
  assert.deepEqual(pdf, { status: 200, type: 'application/pdf', head: '%PDF-' })

  step('the improvement plan: items from the problems, one moved on, one added by hand')
  const plan = '[data-test=drill-run] [data-test=improvements]'
  await page.waitForSelector(`${plan} .el-table__row`)
  assert.match(await page.textContent(plan), /演练结束时仍未完成/)
  await page.click(`${plan} .el-table__row >> nth=0 >> [data-test=move-inProgress]`)
  await until(page, (sel) => document.querySelector(sel)?.textContent?.includes('整改中'), plan)
  const form = '[data-test=add-improvement]'
  await page.fill(`${form} input[name=problem]`, '家长聚集时无人出面说明情况')
  await page.fill(`${form} input[name=action]`, '明确学校与镇街的现场沟通分工')
  await page.fill(`${form} input[name=owner]`, '斋堂镇政府')
  await page.fill(`${form} input[name=dueDate]`, '2020-01-31')
  await page.keyboard.press('Enter')
  await page.click(`${form} button[type=submit]`)
  await until(page, (sel) => document.querySelector(sel)?.textContent?.includes('家长聚集时无人出面说明情况'), plan)
  // due long ago: overdue at once
  await page.waitForSelector(`${plan} [data-test=overdue]`)
  await shot(page, 'drill-endex')

  step('the after-action report opens, in Chinese, with its timeline chart')
  const [report] = await Promise.all([ctx.waitForEvent('page'), page.click('[data-test=report]')])
  await report.waitForLoadState()
  const text = await report.textContent('body')
  assert.match(text, /演练评估报告/)
  assert.match(text, /五、改进计划/)
  assert.ok(await report.$('svg.chart'), 'the timeline chart')
  assert.match(text, /学校卫生室未按要求封存剩余食品留样（手机观察）（zhang\.wei/, "the phone's observation")
  assert.ok(text.includes(`观察记录【${taskName}】（评级 S（完成，存在一些问题））`), "the phone's rating")
  await report.screenshot({ path: path.join(shots, 'drill-report-page.png'), fullPage: true })
  await report.close()

  step('history and comparison: the run with its score, the chart, the plan across runs')
  await page.click('[data-test=nav-drill-history]')
  await page.waitForSelector('[data-test=history-runs] .el-table__row')
  await until(page, () => document.querySelectorAll('[data-test=history-runs] .el-table__row').length === 2)
  const rows = await page.textContent('[data-test=history-runs]')
  assert.match(rows, /33%/, 'the earlier run met the health report')
  assert.match(rows, /0%/)
  await page.waitForSelector('[data-test=history-chart] canvas')
  await page.click('[data-test=only-overdue]')
  await until(page, () => document.querySelectorAll('[data-test=drill-history] [data-test=improvements] .el-table__row').length === 1)
  await page.click('[data-test=only-overdue]')
  await shot(page, 'drill-history')
  await ctx.close()
}
