// The field app's service worker: keeps the app shell so the app opens without a network.
// The API is never cached here — offline actions wait in the app's IndexedDB queue instead.
const SHELL = 'bl-field-shell-v1'

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(['/field', '/icon.svg', '/field.webmanifest'])))
  self.skipWaiting()
})

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  )
})

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url)
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return
  if (url.pathname.startsWith('/api/')) return
  if (url.pathname.startsWith('/assets/')) {
    // content-hashed: once cached, always right
    event.respondWith(
      caches.match(event.request).then(
        (hit) =>
          hit ||
          fetch(event.request).then((resp) => {
            if (resp.ok) {
              const copy = resp.clone()
              caches.open(SHELL).then((c) => c.put(event.request, copy))
            }
            return resp
          }),
      ),
    )
    return
  }
  // the page and small files: the network first (a new release), the cache when offline
  event.respondWith(
    fetch(event.request)
      .then((resp) => {
        if (resp.ok) {
          const copy = resp.clone()
          caches.open(SHELL).then((c) => c.put(event.request, copy))
        }
        return resp
      })
      .catch(() => caches.match(event.request).then((hit) => hit || caches.match('/field'))),
  )
})
