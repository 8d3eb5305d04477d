// The dashboard's figures as people read them, and its query (pure: unit-tested in test/).

/** Seconds as the wall reads them: seconds under 90 s, minutes under 90 min, hours beyond. */
export function duration(secs: number | null, locale: string): string {
  if (secs === null || secs === undefined) return '—'
  const zh = locale === 'zh-CN'
  if (secs < 90) return zh ? `${Math.round(secs)} 秒` : `${Math.round(secs)} s`
  if (secs < 90 * 60) return zh ? `${(secs / 60).toFixed(1)} 分钟` : `${(secs / 60).toFixed(1)} min`
  return zh ? `${(secs / 3600).toFixed(1)} 小时` : `${(secs / 3600).toFixed(1)} h`
}

/** The unit a chart of durations up to `longest` seconds reads best in. */
export function chartUnit(longest: number): { name: 's' | 'min' | 'h'; secs: number } {
  if (longest < 90) return { name: 's', secs: 1 }
  if (longest < 90 * 60) return { name: 'min', secs: 60 }
  return { name: 'h', secs: 3600 }
}

/** A fraction as a whole percentage; a dash when there is nothing to divide by. */
export function percent(rate: number | null): string {
  return rate === null || rate === undefined ? '—' : `${Math.round(rate * 100)}%`
}

export interface StatsFilters {
  /** [from, to] as YYYY-MM-DD (Beijing time, both days included), or null: the last 30 days */
  range: [string, string] | null
  town: string
  kind: string
}

/** The query of GET /api/stats/incidents for the filters (empty ones left out). */
export function statsQuery(f: StatsFilters): Record<string, string> {
  const q: Record<string, string> = {}
  if (f.range) {
    q.from = f.range[0]
    q.to = f.range[1]
  }
  if (f.town) q.town = f.town
  if (f.kind) q.kind = f.kind
  return q
}

/** The CSV download of the same figures, its header in the console's language. */
export function csvUrl(f: StatsFilters, locale: string): string {
  return `/api/stats/incidents.csv?${new URLSearchParams({ ...statsQuery(f), lang: locale })}`
}
