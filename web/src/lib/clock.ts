// Pure helpers for the clocks counting on the board (tested in e2e/unit.mjs).

export type Urgency = 'ok' | 'atRisk' | 'overdue' | 'stopped'

/** How urgent a clock is at `now` (ms), from its own times: the server's state may be older. */
export function urgency(c: { atRiskAt: string | null; dueAt: string; stoppedAt: string | null }, now: number): Urgency {
  if (c.stoppedAt) return 'stopped'
  const due = Date.parse(c.dueAt)
  if (now >= due) return 'overdue'
  if (c.atRiskAt && now >= Date.parse(c.atRiskAt)) return 'atRisk'
  return 'ok'
}

/** `12:05` / `1:02:03` / `3d 04:00` left, or `-0:42` past due. */
export function countdown(dueAt: string, now: number): string {
  const ms = Date.parse(dueAt) - now
  const sign = ms < 0 ? '-' : ''
  let s = Math.floor(Math.abs(ms) / 1000)
  const d = Math.floor(s / 86400)
  s -= d * 86400
  const h = Math.floor(s / 3600)
  s -= h * 3600
  const m = Math.floor(s / 60)
  s -= m * 60
  const two = (n: number) => String(n).padStart(2, '0')
  if (d > 0) return `${sign}${d}d ${two(h)}:${two(m)}`
  if (h > 0) return `${sign}${h}:${two(m)}:${two(s)}`
  return `${sign}${m}:${two(s)}`
}

/** Minutes:seconds since `at`, for "opened 3 min ago". */
export function age(at: string, now: number): number {
  return Math.max(0, Math.floor((now - Date.parse(at)) / 60000))
}
