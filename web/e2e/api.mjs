// A small dispatch API client for the tests' own requests (reports, checks), kept apart from the
// browser: the session cookie by hand, the CSRF token on writes.
export class Api {
  constructor(base, cookie, csrf) {
    this.base = base
    this.cookie = cookie
    this.csrf = csrf
  }

  static async login(base, username, password) {
    const resp = await fetch(`${base}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    })
    if (!resp.ok) throw new Error(`login ${username}: ${resp.status} ${await resp.text()}`)
    const cookie = resp.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .find((c) => c.startsWith('__Host-bl_session='))
    const body = await resp.json()
    return new Api(base, cookie, body.csrfToken)
  }

  async send(method, path, body) {
    const headers = { cookie: this.cookie, 'x-csrf-token': this.csrf }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const resp = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await resp.text()
    let json = null
    try {
      json = JSON.parse(text)
    } catch {
      json = text
    }
    return { status: resp.status, body: json }
  }

  get(path) {
    return this.send('GET', path)
  }

  post(path, body) {
    return this.send('POST', path, body)
  }
}
