// What a failed request says to people: dispatch's stable error code in the UI's language
// (src/i18n/errors.ts), and only when the code is unknown to this build the server's own message.
// Plain data in, a string out, so that it is unit tested without Vue.

/** The parts of an ApiError (api/client.ts) this needs. */
interface Coded {
  code: string
  message: string
  field?: string | null
}

type T = (key: string, params?: Record<string, unknown>) => string
type Te = (key: string) => boolean

function coded(e: unknown): e is Coded {
  return typeof e === 'object' && e !== null && typeof (e as Coded).code === 'string' && typeof (e as Coded).message === 'string'
}

export function errorText(e: unknown, t: T, te: Te): string {
  if (coded(e) && te(`error.code.${e.code}`)) return t(`error.code.${e.code}`, { field: e.field ?? '' })
  return e instanceof Error ? e.message : String(e)
}

/** The part of a field path that names the rule: `shifts[1].weekdays` → `weekdays`. */
function ruleName(field: string): string {
  return field.replace(/\[\d+\]/g, '').split('.').pop() ?? field
}

/** A refusal shown under the form field it names: an `invalid_field` error by its field's rule in
 * the UI's language (`error.fieldRule.*`, src/i18n/errors.ts), not the server's English words; a
 * field without a rule text gets the general `invalid_field` text; other codes their own. */
export function fieldErrorText(e: unknown, t: T, te: Te): string {
  if (coded(e) && e.code === 'invalid_field' && e.field) {
    const rule = `error.fieldRule.${ruleName(e.field)}`
    if (te(rule)) return t('error.atField', { detail: t(rule) })
  }
  return errorText(e, t, te)
}

/** A refused line of an uploaded file (dispatch's `details[]`), in the UI's language: a column that
 * breaks its field's rule by that rule (`lat`, `licence_no` → `error.fieldRule.licenceNo`), other
 * problems by their code (`error.fileProblem.*`); the server's English only for a code this build
 * does not know. */
export function fileProblemText(d: { column: string; code?: string; message: string }, t: T, te: Te): string {
  if (d.code === 'invalid_field') {
    const rule = `error.fieldRule.${d.column.replace(/_(\w)/g, (_, c: string) => c.toUpperCase())}`
    if (te(rule)) return t(rule)
  }
  const key = `error.fileProblem.${d.code ?? ''}`
  return d.code && te(key) ? t(key) : d.message
}
