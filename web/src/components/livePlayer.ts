// The live player every screen uses (the wall's tiles, the field app's incident view): a live
// grant from dispatch, then WHEP from the owning gateway; it says what it is doing (connecting /
// live / offline / denied) and reconnects by itself with backoff — also when the picture freezes
// (getStats framesDecoded stops growing). Nothing is faked: no frames decoded, no "live".
import { onUnmounted, ref, watch, type Ref } from 'vue'
import { useI18n } from 'vue-i18n'
import { ApiError, api } from '../api/client'
import { backoffMs } from '../lib/backoff'
import { type WhepSession, hasRemoteAudio, playWhep } from '../lib/whep'

export type LiveStatus = 'empty' | 'connecting' | 'live' | 'offline' | 'denied'

/** A picture that has not advanced for this long counts as lost. */
const FROZEN_MS = 8000
/** A connection that shows no picture within this long is given up and retried. */
const START_MS = 20000
const POLL_MS = 2000

/** Whether retrying may help: a network failure, a busy or offline source (5xx), an expired
 * token (401: the retry gets a new grant), another gateway now owning the camera. A refusal — not
 * allowed, no such camera, no gateway configured, a codec browsers cannot play — will not heal. */
function heals(e: ApiError): boolean {
  if (e.code === 'media_not_configured') return false
  return e.isNetwork || e.status >= 500 || e.status === 401 || e.status === 429 || e.code === 'not_owner'
}

/** Plays `camera()`'s `stream()` into `video` while the camera is set; restarts when either
 * changes, stops when the component goes. */
export function useLivePlayer(video: Ref<HTMLVideoElement | null>, camera: () => string | null, stream: () => 'sub' | 'main') {
  const { t, te } = useI18n()
  /** A refusal's words: ours for the codes we know, the server's otherwise. */
  const said = (e: ApiError) => (te(`wall.code.${e.code}`) ? t(`wall.code.${e.code}`) : e.message)

  const status = ref<LiveStatus>('empty')
  const problem = ref('')
  const frames = ref(0)
  /** Whether the camera's sound comes too (a camera with a microphone). */
  const hasAudio = ref(false)

  let session: WhepSession | null = null
  let attempt = 0
  let retry: ReturnType<typeof setTimeout> | undefined
  let poll: ReturnType<typeof setInterval> | undefined
  let lastGrowth = 0
  // each start gets a number; answers of an older start are ignored
  let generation = 0

  function stop(): void {
    generation++
    clearTimeout(retry)
    clearInterval(poll)
    session?.close()
    session = null
    frames.value = 0
    hasAudio.value = false
  }

  async function start(): Promise<void> {
    stop()
    problem.value = ''
    const id = camera()
    const kind = stream()
    if (!id) {
      status.value = 'empty'
      return
    }
    const mine = generation
    status.value = 'connecting'
    const startedAt = Date.now()
    lastGrowth = startedAt
    try {
      const grant = await api.post<{ whepUrl: string; token: string }>(`/api/cameras/${id}/live`, { stream: kind })
      if (mine !== generation || !video.value) return
      const url = `${grant.whepUrl}${grant.whepUrl.includes('?') ? '&' : '?'}stream=${kind}`
      const played = await playWhep(video.value, url, grant.token)
      if (mine !== generation) {
        played.close()
        return
      }
      session = played
      hasAudio.value = hasRemoteAudio(played)
      const peer = played.pc
      peer.onconnectionstatechange = () => {
        if (mine === generation && (peer.connectionState === 'failed' || peer.connectionState === 'closed')) lost(t('wall.tile.lost'))
      }
      poll = setInterval(() => void watchFrames(peer, mine, startedAt), POLL_MS)
    } catch (e) {
      if (mine !== generation) return
      if (e instanceof ApiError && !heals(e)) {
        status.value = 'denied'
        problem.value = said(e)
        return
      }
      lost(e instanceof ApiError ? said(e) : e instanceof Error ? e.message : String(e))
    }
  }

  async function watchFrames(peer: RTCPeerConnection, mine: number, startedAt: number): Promise<void> {
    const stats = await peer.getStats()
    if (mine !== generation) return
    let decoded = 0
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') decoded = Math.max(decoded, s.framesDecoded ?? 0)
    })
    const now = Date.now()
    if (decoded > frames.value) {
      frames.value = decoded
      lastGrowth = now
      attempt = 0
      status.value = 'live'
    } else if (status.value === 'live' && now - lastGrowth > FROZEN_MS) {
      lost(t('wall.tile.frozen'))
    } else if (status.value === 'connecting' && now - startedAt > START_MS) {
      lost(t('wall.tile.noPicture'))
    }
  }

  function lost(why: string): void {
    const delay = backoffMs(attempt++)
    stop()
    status.value = 'offline'
    problem.value = why
    retry = setTimeout(() => void start(), delay)
  }

  watch(() => `${camera() ?? ''}|${stream()}`, () => void start(), { immediate: true })
  onUnmounted(stop)

  return { status, problem, frames, hasAudio }
}
