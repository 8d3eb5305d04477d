// Unit tests of the apps' pure helpers (compiled by `npm run unit` from src/lib to .unit/).
import test from 'node:test'
import assert from 'node:assert/strict'
import { countdown, urgency } from '../.unit/lib/clock.js'
import { backoffMs } from '../.unit/lib/backoff.js'
import { loginProblem } from '../.unit/lib/loginError.js'
import { isOpen } from '../.unit/lib/vocab.js'
import { describe, timelineNote } from '../.unit/lib/describe.js'

const at = (s) => Date.parse(`2026-11-24T08:00:${s}Z`)

test('countdown shows minutes, hours and days left, and time past due', () => {
  const due = '2026-11-24T08:05:00Z'
  assert.equal(countdown(due, at('00')), '5:00')
  assert.equal(countdown(due, Date.parse('2026-11-24T08:05:42Z')), '-0:42')
  assert.equal(countdown('2026-11-24T10:00:05Z', at('00')), '2:00:05')
  assert.equal(countdown('2026-11-27T12:30:00Z', at('00')), '3d 04:30')
})

test('urgency follows the clock’s own times', () => {
  const c = { atRiskAt: '2026-11-24T08:04:00Z', dueAt: '2026-11-24T08:05:00Z', stoppedAt: null }
  assert.equal(urgency(c, at('00')), 'ok')
  assert.equal(urgency(c, Date.parse('2026-11-24T08:04:30Z')), 'atRisk')
  assert.equal(urgency(c, Date.parse('2026-11-24T08:05:00Z')), 'overdue')
  assert.equal(urgency({ ...c, stoppedAt: '2026-11-24T08:01:00Z' }, Date.parse('2026-11-24T09:00:00Z')), 'stopped')
})

test('reconnect backoff doubles up to 30 s with bounded jitter', () => {
  assert.equal(backoffMs(0, () => 1), 500)
  assert.equal(backoffMs(3, () => 1), 4000)
  assert.equal(backoffMs(30, () => 1), 30000)
  assert.equal(backoffMs(30, () => 0), 22500)
})

test('each login failure code gets its own message', () => {
  const e = (code, retryAfter = null) => ({ code, retryAfter, message: 'x' })
  assert.equal(loginProblem(e('login_failed')).key, 'login.failed')
  assert.deepEqual(loginProblem(e('login_throttled', 120)), { key: 'login.lockedOut', secs: 120 })
  assert.deepEqual(loginProblem(e('totp_required')), { key: 'login.totpRequired', needTotp: true })
  assert.equal(loginProblem(e('network')).key, 'login.unreachable')
  assert.equal(loginProblem(e('internal')).key, 'login.other')
})

test('open means neither closed nor rejected', () => {
  assert.ok(isOpen('resolved'))
  assert.ok(!isOpen('closed'))
  assert.ok(!isOpen('rejected'))
})

// ---- the video wall
import { alarmSlots, cameraTree, firstSpan, resize, shownTiles, side, tourPage } from '../.unit/lib/wall.js'

const wallAt = (tiles, extra = {}) => ({ layout: { tiles, maximised: null, tour: null, ...extra }, updatedAt: '2026-11-24T08:00:00Z' })

test('a tour pages through its cameras, the same page on every screen at the same moment', () => {
  const tour = { cameras: ['a', 'b', 'c', 'd', 'e'], intervalSecs: 10 }
  const since = at('00')
  assert.deepEqual(tourPage(tour, 4, since, at('09')), ['a', 'b', 'c', 'd'])
  assert.deepEqual(tourPage(tour, 4, since, at('10')), ['e', null, null, null])
  assert.deepEqual(tourPage(tour, 4, since, at('20')), ['a', 'b', 'c', 'd'])
  assert.deepEqual(shownTiles(wallAt([null, null, null, null], { tour }), [], at('15')).map((t) => t.camera), ['e', null, null, null])
})

test('alarms take tiles from the last one backwards, at most half the wall, the newest in the last', () => {
  const alarm = (n) => ({ incidentId: `i${n}`, cameraId: `alarm-${n}`, exercise: null })
  const shown = shownTiles(wallAt(['a', 'b', 'c', 'd']), [alarm(1), alarm(2), alarm(3)], at('00'))
  assert.deepEqual(shown.map((t) => t.camera), ['a', 'b', 'alarm-2', 'alarm-3'])
  assert.equal(shown[3].alarm.incidentId, 'i3')
  assert.equal(shown[0].alarm, null)
  assert.deepEqual(shownTiles(wallAt(['a']), [alarm(1)], at('00')).map((t) => t.camera), ['alarm-1'])
  assert.deepEqual([1, 4, 9, 16].map(alarmSlots), [1, 2, 4, 8])
})

test('resizing keeps cameras in order and drops a maximised tile that no longer exists', () => {
  const l = { tiles: ['a', null, 'c', 'd'], maximised: 3, tour: null }
  assert.deepEqual(resize(l, 1), { tiles: ['a'], maximised: null, tour: null })
  assert.deepEqual(resize(l, 9).tiles, ['a', null, 'c', 'd', null, null, null, null, null])
  assert.equal(resize(l, 9).maximised, 3)
})

test('the camera tree groups town → premises → camera in the district order and counts online', () => {
  const cam = (id, town, premises, online) => ({ id, name: id, premisesId: premises, premisesName: premises, townId: town, online })
  const tree = cameraTree(
    [cam('q1', 'qingshui', 'P3', true), cam('z2', 'zhaitang', 'P1', false), cam('z1', 'zhaitang', 'P1', true), cam('z3', 'zhaitang', 'P2', null)],
    ['zhaitang', 'qingshui'],
  )
  assert.deepEqual(tree.map((t) => [t.id, t.cameras, t.online, t.reported]), [['zhaitang', 3, 1, 2], ['qingshui', 1, 1, 1]])
  assert.deepEqual(tree[0].premises.map((p) => [p.id, p.cameras.map((c) => c.id)]), [['P1', ['z1', 'z2']], ['P2', ['z3']]])
})

test('the 6 and 8 layouts are 3×3 and 4×4 grids with one big first tile; the rest are plain squares', () => {
  assert.deepEqual([1, 4, 6, 8, 9, 16].map(side), [1, 2, 3, 4, 3, 4])
  assert.deepEqual([1, 4, 6, 8, 9, 16].map(firstSpan), [1, 1, 2, 3, 1, 1])
  // cells covered: the big tile's plus one per other tile fill the square exactly
  for (const n of [1, 4, 6, 8, 9, 16]) assert.equal(firstSpan(n) ** 2 + n - 1, side(n) ** 2, `${n}`)
})

test('admin forms: API field paths become form props, weekdays a bit mask, waits read as time', async () => {
  const { formProp, weekdaysToMask, maskToWeekdays, durationText, fullTime } = await import(
    '../.unit/lib/admin.js'
  )
  assert.equal(formProp('mainStream'), 'mainStream')
  assert.equal(formProp('shifts[1].weekdays'), 'shifts.1.weekdays')
  assert.equal(weekdaysToMask([0, 1, 2, 3, 4]), 0b11111)
  assert.deepEqual(maskToWeekdays(0b1100000), [5, 6])
  assert.equal(weekdaysToMask(maskToWeekdays(127)), 127)
  const u = { h: 'h', min: 'min', s: 's' }
  assert.equal(durationText(120, u), '2 min')
  assert.equal(durationText(3725, u), '1 h 2 min 5 s')
  assert.equal(fullTime('08:00'), '08:00:00')
})

// ---- the dashboard (lib/stats.ts)
import { chartUnit, duration, percent, statsQuery, csvUrl } from '../.unit/lib/stats.js'

test('durations read as seconds, minutes or hours, rates as percentages, nothing as a dash', () => {
  assert.equal(duration(42, 'zh-CN'), '42 秒')
  assert.equal(duration(150, 'en-US'), '2.5 min')
  assert.equal(duration(7200, 'zh-CN'), '2.0 小时')
  assert.equal(duration(null, 'en-US'), '—')
  assert.equal(percent(0.25), '25%')
  assert.equal(percent(null), '—')
  assert.deepEqual([chartUnit(3).name, chartUnit(600).name, chartUnit(20000).name], ['s', 'min', 'h'])
})

test('the statistics query leaves out empty filters and the CSV asks for the console’s language', () => {
  assert.deepEqual(statsQuery({ range: null, town: '', kind: '' }), {})
  const f = { range: ['2026-11-01', '2026-11-30'], town: 'zhaitang', kind: 'rodent' }
  assert.deepEqual(statsQuery(f), { from: '2026-11-01', to: '2026-11-30', town: 'zhaitang', kind: 'rodent' })
  assert.equal(csvUrl(f, 'zh-CN'), '/api/stats/incidents.csv?from=2026-11-01&to=2026-11-30&town=zhaitang&kind=rodent&lang=zh-CN')
})

test('a detection’s description, written by dispatch in English, is said in the UI’s words; people’s words stay', () => {
  const words = { 'kind.rodent': '发现老鼠', 'describe.detection': '摄像头 {camera} 智能识别：{kind}（置信度 {confidence}%，模型 {model}）' }
  const t = (key, p = {}) => words[key].replace(/\{(\w+)\}/g, (_, k) => p[k])
  const text = 'rodent seen by camera k1 (confidence 0.84, model rodent-mog2 0.1.0)'
  assert.equal(describe({ source: 'detection', description: text }, t), '摄像头 k1 智能识别：发现老鼠（置信度 84%，模型 rodent-mog2 0.1.0）')
  assert.equal(describe({ source: 'hotline', description: text }, t), text)
  assert.equal(describe({ source: 'detection', description: '后厨有老鼠' }, t), '后厨有老鼠')
  assert.equal(describe({ source: 'manual', description: null }, t), '')
})

test('the edge’s automatic voice warning on the timeline is worded from its codes; other notes stay as written', () => {
  const words = {
    'describe.voiceWarning': '已自动播放语音提醒：{message}（{camera}，{output}）',
    'describe.voiceWarningFailed': '未能自动播放语音提醒：{message}（{camera}：{reason}）',
    'describe.output.backchannel': '摄像头喇叭',
    'describe.warningCode.unsupported': '摄像头和盒子都没有扬声器',
    'describe.warningCode.internal': '设备内部错误',
  }
  const t = (key, p = {}) => words[key].replace(/\{(\w+)\}/g, (_, k) => p[k])
  const played = { action: 'voiceWarning', note: '', refs: { message: 'wear-hat-zh', cameraId: 'k1', output: 'backchannel' } }
  assert.equal(timelineNote(played, t), '已自动播放语音提醒：wear-hat-zh（k1，摄像头喇叭）')
  const failed = { action: 'voiceWarningFailed', note: '', refs: { message: 'wear-hat-zh', cameraId: 'k2', output: null, code: 'unsupported', reason: 'camera has no speaker' } }
  assert.equal(timelineNote(failed, t), '未能自动播放语音提醒：wear-hat-zh（k2：摄像头和盒子都没有扬声器）')
  assert.equal(timelineNote({ ...failed, refs: { ...failed.refs, code: 'somethingNew' } }, t), '未能自动播放语音提醒：wear-hat-zh（k2：设备内部错误）')
  assert.equal(timelineNote({ action: 'note', note: '后厨已整改', refs: {} }, t), '后厨已整改')
})
