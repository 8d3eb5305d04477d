// The one HTTP client of both apps: JSON in and out, the session cookie (same origin), the CSRF
// token on every unsafe method, and dispatch's `{error: {code, message, field?, details?}}` turned
// into ApiError.

/** One line-and-column problem of an uploaded file (CSV import). */
export interface ErrorDetail {
  line: number
  column: string
  /** what is wrong (dispatch error::Detail) */
  code?: string
  message: string
}

/** Who holds a camera's talk floor (dispatch's `error.holder`). */
export interface TalkHolder {
  userId: string
  username: string
  displayName: string
  startedAt: string
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** seconds from `Retry-After` (429) */
    readonly retryAfter: number | null = null,
    /** the request field the error is about (its JSON name), for forms */
    readonly field: string | null = null,
    readonly details: ErrorDetail[] = [],
    /** on `floor_taken`: who talks to the camera now */
    readonly holder: TalkHolder | null = null,
  ) {
    super(message)
  }
  /** no answer at all: offline, or the server is down */
  get isNetwork(): boolean {
    return this.status === 0
  }
}

let csrfToken: string | null = null

export function setCsrfToken(token: string | null): void {
  csrfToken = token
}

export interface RequestOptions {
  body?: unknown
  /** raw bytes (photos) with their type, instead of a JSON body */
  raw?: { data: Blob; type: string }
  query?: Record<string, string | number | undefined | null>
  headers?: Record<string, string>
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers }
  let body: BodyInit | undefined
  if (opts.raw) {
    headers['Content-Type'] = opts.raw.type
    body = opts.raw.data
  } else if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(opts.body)
  }
  if (!['GET', 'HEAD', 'OPTIONS'].includes(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken
  let url = path
  if (opts.query) {
    const q = new URLSearchParams()
    for (const [k, v] of Object.entries(opts.query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
    const s = q.toString()
    if (s) url += `?${s}`
  }
  let resp: Response
  try {
    resp = await fetch(url, { method, headers, body, credentials: 'same-origin' })
  } catch (e) {
    throw new ApiError(0, 'network', e instanceof Error ? e.message : String(e))
  }
  if (resp.status === 204) return undefined as T
  const text = await resp.text()
  let data: unknown = null
  try {
    data = text ? JSON.parse(text) : null
  } catch {
    data = null
  }
  if (!resp.ok) {
    const err = (
      data as {
        error?: { code?: string; message?: string; field?: string; details?: ErrorDetail[]; holder?: TalkHolder }
      } | null
    )?.error
    const retry = resp.headers.get('Retry-After')
    throw new ApiError(
      resp.status,
      err?.code ?? `http_${resp.status}`,
      err?.message ?? (text.slice(0, 200) || resp.statusText),
      retry ? Number(retry) : null,
      err?.field ?? null,
      err?.details ?? [],
      err?.holder ?? null,
    )
  }
  return data as T
}

export const api = {
  get: <T>(path: string, query?: RequestOptions['query']) => request<T>('GET', path, { query }),
  post: <T>(path: string, body?: unknown, headers?: Record<string, string>) =>
    request<T>('POST', path, { body, headers }),
  put: <T>(path: string, body?: unknown) => request<T>('PUT', path, { body }),
  del: <T>(path: string) => request<T>('DELETE', path),
}
