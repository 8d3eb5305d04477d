// The field app's outbox: every action and photo goes into IndexedDB first and is sent from
// there, oldest first, each with its own Idempotency-Key — so nothing is lost offline, a resend
// after a lost answer changes nothing twice (dispatch replays the first answer), and the order
// the officer acted in is the order dispatch sees.
import { ApiError, request } from '../api/client'
import { i18n } from '../i18n'
import { errorText } from '../lib/errorText'

export type QueuedAction =
  | { kind: 'transition'; to: string; location?: { lat: number; lon: number }; evidence?: string[] }
  | { kind: 'photo'; sha256: string; blob: Blob; type: string; lat?: number; lon?: number }

export interface QueueItem {
  seq?: number
  incidentId: string
  key: string
  createdAt: string
  action: QueuedAction
  /** set when dispatch refused it for good (it is kept, shown, and skipped) */
  failed?: string
}

const DB = 'bl-field'
const STORE = 'outbox'

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1)
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'seq', autoIncrement: true })
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

function tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return openDb().then(
    (db) =>
      new Promise<T>((resolve, reject) => {
        const t = db.transaction(STORE, mode)
        const req = f(t.objectStore(STORE))
        t.oncomplete = () => {
          db.close()
          resolve(req.result)
        }
        t.onerror = () => reject(t.error)
      }),
  )
}

export function all(): Promise<QueueItem[]> {
  return tx('readonly', (s) => s.getAll() as IDBRequest<QueueItem[]>)
}

export async function enqueue(incidentId: string, action: QueuedAction): Promise<void> {
  const item: QueueItem = { incidentId, action, key: crypto.randomUUID(), createdAt: new Date().toISOString() }
  await tx('readwrite', (s) => s.add(item))
}

function remove(seq: number): Promise<undefined> {
  return tx('readwrite', (s) => s.delete(seq) as IDBRequest<undefined>)
}

function put(item: QueueItem): Promise<IDBValidKey> {
  return tx('readwrite', (s) => s.put(item))
}

/** Lowercase hex SHA-256 of a photo: dispatch names photos by it, so evidence can be named
 * before the upload is sent. */
export async function sha256Hex(blob: Blob): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
}

function send(item: QueueItem): Promise<unknown> {
  const headers = { 'Idempotency-Key': item.key }
  const a = item.action
  if (a.kind === 'photo') {
    return request('POST', `/api/incidents/${item.incidentId}/photos`, {
      raw: { data: a.blob, type: a.type },
      query: { lat: a.lat, lon: a.lon },
      headers,
    })
  }
  return request('POST', `/api/incidents/${item.incidentId}/transition`, {
    body: { to: a.to, location: a.location, evidence: a.evidence },
    headers,
  })
}

/** Whether a failure is worth retrying later (no network, server trouble) rather than final. */
export function retryable(e: unknown): boolean {
  if (!(e instanceof ApiError)) return true
  return e.status === 0 || e.status === 401 || e.status === 408 || e.status === 429 || e.status >= 500
}

let flushing: Promise<number> | null = null

/** Sends what waits, in order; stops at the first failure worth retrying. Returns how many were sent. */
export function flush(): Promise<number> {
  flushing ??= (async () => {
    let sent = 0
    try {
      for (const item of (await all()).sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))) {
        if (item.failed) continue
        try {
          await send(item)
        } catch (e) {
          if (retryable(e)) break
          // refused for good (e.g. someone else closed the incident): kept and shown, not retried
          await put({ ...item, failed: errorText(e, i18n.global.t, i18n.global.te) })
          continue
        }
        await remove(item.seq!)
        sent++
      }
    } finally {
      flushing = null
    }
    return sent
  })()
  return flushing
}

export function discard(seq: number): Promise<undefined> {
  return remove(seq)
}
