// The drill console (issue 8): the demo drill coordinator starts the 斋堂镇 school-poisoning
// scenario from the console, sees the first call fire through the real intake as a drill incident
// and its critical tasks pending, pauses, ends it (ENDEX) and opens the after-action report.
import assert from 'node:assert/strict'
import path from 'node:path'

function step(name) {
  console.log(`  · drills: ${name}`)
}

export async function runDrills({ browser, server, shots }) {
  const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`) })
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 900 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' })
  const page = await ctx.newPage()
  page.on('pageerror', (e) => console.error('drills page error:', e))

  step('the coordinator logs in and opens 应急演练')
  await page.goto(`${server.base}/`)
  await page.fill('input[name=username]', 'drill.zhao')
  await page.fill('input[name=password]', server.demoPassword)
  await page.click('[data-test=login-submit]')
  await page.click('[data-test=nav-drills]')
  await page.waitForSelector('[data-test=scenario-zhaitang-school-poisoning]')

  step('STARTEX: the first call fires through the real intake and opens a drill incident')
  await page.click('[data-test=scenario-zhaitang-school-poisoning] button')
  await page.waitForSelector('[data-test=drill-run]')
  await page.waitForFunction(() => document.querySelector('[data-test=drill-run]')?.textContent?.includes('已立案'), null, {
    timeout: 20000,
  })
  const run = await page.textContent('[data-test=drill-run]')
  assert.match(run, /【演练 DRILL】/)
  assert.match(run, /接报确认/)
  assert.match(run, /进行中/)
  await shot(page, 'drill-console')

  step('pause, then ENDEX: the report is written')
  await page.click('[data-test=drill-run] button:has-text("暂停")')
  await page.waitForSelector('[data-test=drill-run] button:has-text("继续")')
  await page.click('[data-test=endex]')
  await page.waitForSelector('[data-test=report]')
  assert.match(await page.textContent('[data-test=expectations]'), /未完成/)
  await shot(page, 'drill-endex')

  step('the after-action report opens, in Chinese')
  const [report] = await Promise.all([ctx.waitForEvent('page'), page.click('[data-test=report]')])
  await report.waitForLoadState()
  const text = await report.textContent('body')
  assert.match(text, /演练评估报告/)
  assert.match(text, /五、改进计划/)
  await report.screenshot({ path: path.join(shots, 'drill-report.png'), fullPage: true })
  await ctx.close()
}
