// Pure helpers of the admin screens (unit-tested in test/).

/** The form item an API field belongs to: `shifts[1].weekdays` → `shifts.1.weekdays`. */
export function formProp(field: string): string {
  return field.replace(/\[(\d+)\]/g, '.$1')
}

/** Weekday numbers (0 = Monday … 6 = Sunday) → dispatch's bit mask (bit 0 = Monday). */
export function weekdaysToMask(days: number[]): number {
  return days.reduce((m, d) => m | (1 << d), 0)
}

/** dispatch's bit mask → weekday numbers, Monday first. */
export function maskToWeekdays(mask: number): number[] {
  return [0, 1, 2, 3, 4, 5, 6].filter((d) => mask & (1 << d))
}

/** Seconds as `2 h 5 min`, `45 s`: escalation waits and offsets. */
export function durationText(secs: number, units: { h: string; min: string; s: string }): string {
  if (secs === 0) return `0 ${units.s}`
  const h = Math.floor(secs / 3600)
  const m = Math.floor((secs % 3600) / 60)
  const s = secs % 60
  return [h ? `${h} ${units.h}` : '', m ? `${m} ${units.min}` : '', s ? `${s} ${units.s}` : ''].filter(Boolean).join(' ')
}

/** `HH:MM` or `HH:MM:SS` → `HH:MM:SS`, as dispatch takes shift times. */
export function fullTime(t: string): string {
  return /^\d\d:\d\d$/.test(t) ? `${t}:00` : t
}
