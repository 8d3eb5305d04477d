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
