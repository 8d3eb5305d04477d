// The admin screens (issue 6, item 7): the admin logs in, imports premises from a CSV file with a
// bad line and sees the per-row report, creates a camera (a server validation error shows next to
// its field first) and a user, registers an edge box and sees and copies its one-time code, moves
// the camera to that box with its talk played by the box's speaker (talk output); an
// operator has no admin section; a voice message (a WAV recording, after a refused non-WAV) and an
// automatic warning rule are set in the voice warnings screen.
import assert from 'node:assert/strict'
import path from 'node:path'

const TOWN = 'zhaitang'

function step(name) {
  console.log(`  · admin: ${name}`)
}

/** Chooses, in an Element Plus remote select, the first option whose text holds `text`. */
async function pickRemote(page, root, text) {
  await page.click(`${root} .el-select__wrapper`)
  await page.fill(`${root} input`, text)
  const option = page.locator('.el-select-dropdown__item:visible', { hasText: text }).first()
  await option.waitFor()
  await option.click()
}

/** A mono 16-bit PCM WAV of `secs` seconds of a 440 Hz tone at `rate`. */
function toneWav(secs, rate) {
  const n = secs * rate
  const b = Buffer.alloc(44 + n * 2)
  b.write('RIFF', 0)
  b.writeUInt32LE(36 + n * 2, 4)
  b.write('WAVEfmt ', 8)
  b.writeUInt32LE(16, 16)
  b.writeUInt16LE(1, 20)
  b.writeUInt16LE(1, 22)
  b.writeUInt32LE(rate, 24)
  b.writeUInt32LE(rate * 2, 28)
  b.writeUInt16LE(2, 32)
  b.writeUInt16LE(16, 34)
  b.write('data', 36)
  b.writeUInt32LE(n * 2, 40)
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2)
  return b
}

/** The error Element Plus shows under the form item of `field`. */
function fieldError(page, form, field) {
  return page.locator(`[data-test=${form}] [data-field=${field}] .el-form-item__error`)
}

export async function runAdminScenario({ browser, server, api, shots }) {
  const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`) })
  const ctx = await browser.newContext({
    viewport: { width: 1600, height: 900 },
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
    permissions: ['clipboard-read', 'clipboard-write'],
  })
  const page = await ctx.newPage()
  page.on('pageerror', (e) => console.error('admin page error:', e))
  const admin = await api('admin', server.adminPassword)
  const premises = (await admin.get(`/api/premises?town=${TOWN}&kind=restaurant&perPage=5`)).body.items[0]
  assert.ok(premises, `a restaurant in ${TOWN}`)

  step('log in; the admin section is in the menu')
  await page.goto(`${server.base}/`)
  await page.fill('input[name=username]', 'admin')
  await page.fill('input[name=password]', server.adminPassword)
  await page.click('[data-test=login-submit]')
  await page.click('[data-test=nav-admin]')
  await page.waitForSelector('[data-test=premises-table] .el-table__row')

  step('a CSV import with a bad line imports nothing and lists the line, column and problem')
  const csv = [
    'name,licence_no,kind,address,lat,lon,town,grid,risk_grade,person_in_charge,phone',
    `斋堂镇川味馆,JY21101090000E1,restaurant,北京市门头沟区斋堂镇东街5号,,,${TOWN},,B,赵敏,13800000011`,
    `斋堂镇面馆,JY21101090000E2,restaurant,北京市门头沟区斋堂镇西街8号,,,${TOWN},,E,钱进,13800000012`,
  ].join('\n')
  await page.setInputFiles('[data-test=premises-import-file]', { name: 'premises.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) })
  await page.waitForSelector('[data-test=import-problems] .el-table__row')
  const problem = await page.textContent('[data-test=import-problems] .el-table__row')
  assert.match(problem, /3/, 'the bad line is line 3')
  assert.match(problem, /risk_grade/)
  assert.match(problem, /风险等级须为/, 'the problem in Chinese, not the server’s English')
  assert.equal((await admin.get('/api/premises?q=川味馆')).body.total, 0, 'nothing imported')
  await shot(page, 'admin-premises')

  step('create a camera: a credential in the URL is refused next to the stream field')
  await page.click('[data-test=admin-menu-cameras]')
  await page.waitForSelector('[data-test=cameras-table] .el-table__row')
  await page.click('[data-test=camera-add]')
  await page.fill('[data-test=camera-form] input[name=id]', 'e2e-cam-1')
  await pickRemote(page, '[data-test=camera-form] [data-field=premisesId]', premises.name)
  await page.fill('[data-test=camera-form] input[name=name]', '后厨北侧')
  await page.click('[data-test=source-pull]')
  await page.fill('[data-test=camera-form] input[name=mainStream]', 'rtsp://admin:hik12345@192.0.2.50/Streaming/Channels/101')
  await page.fill('[data-test=camera-form] input[name=credUsername]', 'viewer')
  await page.fill('[data-test=camera-form] input[name=credPassword]', 'view-only-pass')
  await page.click('[data-test=camera-save]')
  const urlError = fieldError(page, 'camera-form', 'mainStream')
  await urlError.waitFor()
  // in Chinese, with the rule the server names (field rules have no codes of their own yet)
  assert.match(await urlError.textContent(), /^此项填写不正确：须为不含用户名和密码的 rtsp:\/\/ 地址/)
  await shot(page, 'admin-camera-error')
  await page.fill('[data-test=camera-form] input[name=mainStream]', 'rtsp://192.0.2.50/Streaming/Channels/101')
  await page.click('[data-test=camera-save]')
  await page.waitForSelector('[data-test=cameras-table] .el-table__row:has-text("e2e-cam-1")')
  const cams = (await admin.get(`/api/cameras?premises=${premises.id}`)).body
  const cam = cams.find((c) => c.id === 'e2e-cam-1')
  assert.ok(cam && cam.hasCredentials && cam.source === 'pull', JSON.stringify(cams))
  assert.ok(!JSON.stringify(cams).includes('view-only-pass'), 'credentials are never returned')

  step('create a user')
  await page.click('[data-test=admin-menu-users]')
  await page.waitForSelector('[data-test=users-table] .el-table__row')
  await page.click('[data-test=user-add]')
  await page.fill('[data-test=user-form] input[name=username]', 'e2e.zhang')
  await page.fill('[data-test=user-form] input[name=displayName]', '张敏')
  await page.fill('[data-test=user-form] input[name=phone]', '13800000077')
  await page.fill('[data-test=user-form] input[name=password]', 'short')
  await page.click('[data-test=user-save]')
  const pwError = fieldError(page, 'user-form', 'password')
  await pwError.waitFor()
  await page.fill('[data-test=user-form] input[name=password]', 'e2e-zhang-password-1')
  await page.click('[data-test=user-save]')
  await page.waitForSelector('[data-test=users-table] .el-table__row:has-text("e2e.zhang")')
  const users = (await admin.get('/api/users')).body
  const zhang = users.find((u) => u.username === 'e2e.zhang')
  assert.equal(zhang?.phone, '13800000077')
  await (await api('e2e.zhang', 'e2e-zhang-password-1')).get('/api/session')

  step('register an edge box and see its one-time code once, and copy it')
  await page.click('[data-test=admin-menu-edges]')
  await page.waitForSelector('[data-test=edges-table] .el-table__row')
  await page.click('[data-test=edge-add]')
  await page.fill('[data-test=edge-form] input[name=id]', 'e2e-box-1')
  await pickRemote(page, '[data-test=edge-form] [data-field=premisesId]', premises.name)
  await page.click('[data-test=edge-save]')
  await page.waitForSelector('[data-test=enrolment-code]')
  const code = (await page.textContent('[data-test=enrolment-code]')).trim()
  assert.match(code, /^[A-Za-z0-9_-]{20,}$/, code)
  await shot(page, 'admin-edge-code')
  await page.click('[data-test=code-copy]')
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), code)
  await page.click('[data-test=code-close]')
  await page.waitForSelector('[data-test=enrolment-code]', { state: 'detached' })
  assert.ok(!JSON.stringify((await admin.get('/api/edges')).body).includes(code), 'the code is not listed')
  const enrol = await fetch(`${server.base}/api/enrol`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ edgeId: 'e2e-box-1', code, publicKey: 'x' }),
  })
  // the code reaches the enrolment endpoint, which refuses the malformed device key by its code
  assert.equal(enrol.status, 400)
  assert.equal((await enrol.json()).error.code, 'invalid_public_key')

  step("the camera becomes the new box's, its talk played by the box's speaker")
  await page.click('[data-test=admin-menu-cameras]')
  await page.click('[data-test=cameras-table] .el-table__row:has-text("e2e-cam-1") button:has-text("编辑")')
  await page.waitForSelector('[data-test=camera-form]')
  await page.click('[data-test=source-edge]')
  await page.click('[data-test=camera-talk]')
  await page.click('[data-test=talk-output-speaker]')
  await page.click('[data-test=camera-save]')
  await page.waitForSelector('[data-test=talk-output-e2e-cam-1]:has-text("边缘盒喇叭")')
  const boxCam = (await admin.get(`/api/cameras?premises=${premises.id}`)).body.find((c) => c.id === 'e2e-cam-1')
  assert.equal(boxCam.source, 'edge', JSON.stringify(boxCam))
  assert.equal(boxCam.edgeId, 'e2e-box-1')
  assert.equal(boxCam.talkOutput, 'speaker')
  await shot(page, 'admin-camera-talk-output')

  step('teams, rosters and escalation pages open')
  await page.click('[data-test=admin-menu-rosters]')
  await page.click('[data-test=roster-team] .el-select__wrapper')
  await page.locator('.el-select-dropdown__item:visible').first().click()
  await page.waitForSelector('[data-test=roster-form]')
  await shot(page, 'admin-roster')
  // a shift on no day at all: dispatch names shifts[0].weekdays, shown under that shift's days
  await page.click('[data-test=roster-form] button:has-text("添加班次")')
  const days = page.locator('[data-test=roster-form] .roster-row').last().locator('.el-checkbox-button')
  for (let i = 0; i < 7; i++) await days.nth(i).click()
  await page.click('[data-test=roster-save]')
  await page.locator('[data-test=roster-form] .roster-row').last().locator('.el-form-item__error').waitFor()
  await page.click('[data-test=admin-menu-escalation]')
  await page.waitForSelector('[data-test=escalation-policies] .policy')
  await shot(page, 'admin-escalation')

  step('change the routine tier\'s escalation: a wrong step is named, a right one is in force')
  await page.click('[data-test=policy-edit-routine]')
  const routine = page.locator('[data-tier=routine]')
  await routine.locator('button:has-text("+ 重复")').click()
  await page.click('[data-test=policy-save]')
  await routine.locator('[data-field="steps.0"] .el-form-item__error').waitFor()
  await routine.locator('[data-field="steps.0"] button:has-text("删除")').click()
  await routine.locator('button:has-text("+ 等待")').click()
  await routine.locator('button:has-text("+ 通知")').click()
  await page.click('[data-test=policy-save]')
  await routine.locator('.el-timeline-item').first().waitFor()
  const policies = (await admin.get('/api/escalation/policies')).body
  const set = policies.find((p) => p.tier === 'routine')
  assert.equal(set.source, 'admin')
  assert.deepEqual(set.schedule, [{ afterSecs: 300, target: 'team' }])

  step('voice warnings: a file that is no WAV is refused in words; a WAV recording and a rule are stored')
  await page.click('[data-test=admin-menu-warnings]')
  await page.waitForSelector('[data-test=voice-form]')
  await page.fill('[data-test=voice-id]', 'wear-hat-zh')
  await page.fill('[data-test=voice-name]', '请戴厨师帽')
  await page.click('[data-test=voice-mode-audio]')
  await page.setInputFiles('[data-test=voice-file]', { name: 'hat.wav', mimeType: 'audio/wav', buffer: Buffer.from('ID3 this is an mp3') })
  await page.click('[data-test=voice-save]')
  const refused = await page.locator('[data-test=voice-error]').textContent()
  assert.match(refused, /WAV/, refused)
  await page.setInputFiles('[data-test=voice-file]', { name: 'hat.wav', mimeType: 'audio/wav', buffer: toneWav(2, 16000) })
  await page.click('[data-test=voice-save]')
  await page.locator('[data-test=voice-messages] .el-table__row', { hasText: 'wear-hat-zh' }).waitFor()
  await page.click('[data-test=rule-add]')
  await page.click('[data-test=rules-save]')
  await page.waitForFunction(async () => (await (await fetch('/api/warning-rules')).json()).length === 1)
  const rules = (await admin.get('/api/warning-rules')).body
  assert.deepEqual(rules, [{ premisesKind: 'schoolCanteen', kind: 'noChefHat', messageId: 'wear-hat-zh', from: '06:00', to: '20:00' }])
  const messages = (await admin.get('/api/voice-messages')).body
  assert.equal(messages[0].durationMs, 2000)
  await shot(page, 'admin-warnings')

  step('an operator has no admin section')
  const opCtx = await browser.newContext({ viewport: { width: 1600, height: 900 }, locale: 'zh-CN' })
  const op = await opCtx.newPage()
  await op.goto(`${server.base}/admin/cameras`)
  await op.fill('input[name=username]', 'op.li')
  await op.fill('input[name=password]', server.demoPassword)
  await op.click('[data-test=login-submit]')
  await op.waitForSelector('[data-test=board-rows]')
  assert.equal(await op.locator('[data-test=nav-admin]').count(), 0)
  assert.ok(!op.url().includes('/admin'), op.url())
  await Promise.all([ctx.close(), opCtx.close()])
}
