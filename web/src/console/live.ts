// The console's one live feed, shared by every view: views register what they reload and which
// changes they care about; the socket runs while someone is logged in.
import { ref } from 'vue'
import { LiveSocket, type LinkState, type ServerMessage } from '../api/ws'
import { router } from './router'

const state = ref<LinkState>('down')
const listeners = new Set<(m: ServerMessage) => void>()
const reloaders = new Set<() => void>()
let socket: LiveSocket | null = null

function ensure(): void {
  if (socket) return
  socket = new LiveSocket({
    topics: ['incidents', 'timeline', 'notifications', 'edges', 'walls', 'talk', 'broadcasts'],
    onMessage: (m) => listeners.forEach((f) => f(m)),
    onReload: () => reloaders.forEach((f) => f()),
    onState: (s) => (state.value = s),
    onSessionEnded: () => {
      socket = null
      void router.push({ name: 'login' })
    },
  })
  socket.start()
}

export function useLive() {
  return {
    state,
    /** Opens the feed (once); the shell calls it on login so that the top bar's link state is true on
     * every page, even one that follows nothing (the dashboard). */
    start: ensure,
    /** Registers a view; returns its unregister function. */
    follow(onMessage: (m: ServerMessage) => void, onReload: () => void): () => void {
      ensure()
      listeners.add(onMessage)
      reloaders.add(onReload)
      return () => {
        listeners.delete(onMessage)
        reloaders.delete(onReload)
      }
    },
    stop(): void {
      socket?.stop()
      socket = null
      state.value = 'down'
    },
  }
}
