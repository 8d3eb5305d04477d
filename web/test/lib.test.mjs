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
