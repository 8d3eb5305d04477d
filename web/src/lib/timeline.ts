// A timeline note in the UI's language. dispatch writes its own notes as a code and parameters
// (`noteCode`, `noteParams`) beside the English `note`; this fills the code's text
// (src/i18n/timeline.ts) with the parameters said in the UI's words. What people wrote (notes,
// reasons) and rows older than the codes are shown as stored. Plain in, plain out (unit tested
// without Vue); components/TimelineList.vue is the one place that shows a timeline.
import { durationText } from './admin.js'
import { describe } from './describe.js'

type T = (key: string, params?: Record<string, unknown>) => string
type Te = (key: string) => boolean

export interface NoteEntry {
  note: string
  noteCode?: string | null
  noteParams?: Record<string, unknown> | null
}

export interface NoteWords {
  t: T
  te: Te
  /** a moment (ISO 8601) as the UI shows times */
  time: (iso: string) => string
  /** a town by its id (or its Chinese name) in the UI's language */
  town: (town: string) => string
}

const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v))

/** A dispatch name (`source.hotline`) in the UI's words; an unknown one as it is. */
function word(w: NoteWords, group: string, key: unknown): string {
  const k = str(key)
  return w.te(`${group}.${k}`) ? w.t(`${group}.${k}`) : k
}

function names(w: NoteWords, users: unknown): string {
  const list = Array.isArray(users) ? users.map(str) : []
  return list.length ? w.t('timeline.part.users', { names: list.join(', ') }) : w.t('timeline.part.nobody')
}

function duration(w: NoteWords, secs: unknown): string {
  const units = { h: w.t('timeline.part.h'), min: w.t('timeline.part.min'), s: w.t('timeline.part.s') }
  return durationText(Math.max(0, Math.round(Number(secs) || 0)), units)
}

export function noteText(e: NoteEntry, w: NoteWords): string {
  const code = e.noteCode
  if (!code || !w.te(`timeline.note.${code}`)) return e.note
  const p = e.noteParams ?? {}
  const values: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(p)) values[k] = typeof v === 'object' ? '' : str(v)
  const unknown = w.t('timeline.part.unknown')
  let tail = ''
  switch (code) {
    case 'opened':
    case 'repeat':
      values.source = word(w, 'source', p.source) + (p.hotline ? ` ${str(p.hotline)}` : '')
      values.tier = word(w, 'tier', p.tier)
      // a detection's description is dispatch's English too: said in the UI's words
      if (p.description) tail = w.t('timeline.part.said', { text: describe({ source: str(p.source), description: str(p.description) }, w.t) })
      break
    case 'severitySuggested':
      values.cases = p.cases ?? unknown
      values.deaths = p.deaths ?? unknown
      break
    case 'routedToTeam':
    case 'routedToTown':
      values.town = w.town(str(p.town))
      values.grid = p.grid ? w.t('timeline.part.grid', { grid: str(p.grid) }) : ''
      values.at = p.at ? w.time(str(p.at)) : ''
      break
    case 'notifiedTownOfficers':
    case 'escalatedTownOfficers':
    case 'escalatedSupervisors':
      values.town = w.town(str(p.town))
      values.users = names(w, p.users)
      if (Array.isArray(p.participants)) tail = w.t('timeline.part.participants', { names: p.participants.map(str).join(', ') })
      break
    case 'clockAtRisk':
    case 'clockOverdue': {
      values.clock = word(w, 'clock', p.clock)
      values.left = values.over = duration(w, p.secs)
      values.due = p.dueAt ? w.time(str(p.dueAt)) : ''
      const then = p.then as { code?: string; params?: Record<string, unknown> } | undefined
      if (then?.code) tail = w.t('timeline.part.then', { text: noteText({ note: '', noteCode: then.code, noteParams: then.params }, w) })
      break
    }
    case 'recheckPassedStays':
      values.state = word(w, 'state', p.state)
      break
    case 'falseAlarm':
      if (p.note) tail = w.t('timeline.part.remark', { text: str(p.note) })
      break
    case 'voiceRecorded':
      values.kind = word(w, 'timeline.voiceKind', p.kind)
      values.secs = duration(w, p.secs)
      if (p.kind === 'room') {
        values.cameras = w.t('timeline.part.consultRoom', { title: str(p.title) })
        values.directions = w.t('timeline.part.roomMixed')
      } else if (p.kind === 'ptt') {
        values.cameras = w.t('timeline.part.voiceChannel')
        values.directions = w.t('timeline.part.talkerOnly')
      } else {
        values.directions = w.t(p.premises ? 'timeline.part.bothDirections' : 'timeline.part.operatorOnly')
      }
      break
  }
  const drill = p.exercise && code !== 'endex' ? w.t('timeline.part.drill', { exercise: str(p.exercise) }) : ''
  return w.t(`timeline.note.${code}`, values) + drill + tail
}
