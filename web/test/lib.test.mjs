// Unit tests of the apps' pure helpers (compiled by `npm run unit` from src/lib to .unit/).
import test from 'node:test'
import assert from 'node:assert/strict'
import { countdown, urgency } from '../.unit/lib/clock.js'
import { backoffMs } from '../.unit/lib/backoff.js'
import { loginProblem } from '../.unit/lib/loginError.js'
import { isOpen } from '../.unit/lib/vocab.js'

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

test('admin forms: API field paths become form props, weekdays a bit mask, waits read as time', async () => {
  const { formProp, fieldMessage, weekdaysToMask, maskToWeekdays, durationText, fullTime } = await import(
    '../.unit/lib/admin.js'
  )
  assert.equal(formProp('mainStream'), 'mainStream')
  assert.equal(formProp('shifts[1].weekdays'), 'shifts.1.weekdays')
  assert.equal(fieldMessage('field mainStream: must be an rtsp:// URL'), 'must be an rtsp:// URL')
  assert.equal(weekdaysToMask([0, 1, 2, 3, 4]), 0b11111)
  assert.deepEqual(maskToWeekdays(0b1100000), [5, 6])
  assert.equal(weekdaysToMask(maskToWeekdays(127)), 127)
  const u = { h: 'h', min: 'min', s: 's' }
  assert.equal(durationText(120, u), '2 min')
  assert.equal(durationText(3725, u), '1 h 2 min 5 s')
  assert.equal(fullTime('08:00'), '08:00:00')
})
