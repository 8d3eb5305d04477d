// One video wall as both the desk and the wall window see it: the stored layout (followed live
// through `wall` messages), the cameras with their online state (followed through `edge`
// messages), and the alarms — new immediate-tier incidents, each shown on its camera until it is
// triaged. Both screens compute what each tile shows with lib/wall.ts from the same data, so the
// wall window shows what the desk shows, whichever machine it runs on.
import { computed, onMounted, onUnmounted, ref, watch } from 'vue'
import { api } from '../api/client'
import type { Camera, Incident, IncidentDetail, Page } from '../api/types'
import type { ServerMessage } from '../api/ws'
import { type Alarm, type Wall, type WallLayout, shownTiles } from '../lib/wall'
import { useLive } from './live'

export function useWall(wallId: () => string) {
  const live = useLive()
  const wall = ref<Wall | null>(null)
  const cameras = ref<Camera[]>([])
  const alarms = ref<Alarm[]>([])
  const loadError = ref('')
  const now = ref(Date.now())

  const cameraById = computed(() => new Map(cameras.value.map((c) => [c.id, c])))
  const shown = computed(() => (wall.value ? shownTiles(wall.value, alarms.value, now.value) : []))

  async function loadWall(): Promise<void> {
    try {
      wall.value = await api.get<Wall>(`/api/walls/${wallId()}`)
      loadError.value = ''
    } catch (e) {
      loadError.value = e instanceof Error ? e.message : String(e)
    }
  }

  async function loadCameras(): Promise<void> {
    cameras.value = await api.get<Camera[]>('/api/cameras')
  }

  /** The camera an incident is best seen on: its detection's, else its premises' first. */
  async function alarmFor(i: Pick<Incident, 'id' | 'premisesId' | 'exercise' | 'kind'>): Promise<Alarm | null> {
    const detail = await api.get<IncidentDetail>(`/api/incidents/${i.id}`)
    // triaged while we asked: no alarm (its update may have arrived before this answer)
    if (detail.state !== 'new') return null
    const seen = detail.events.find((e) => e.cameraId)?.cameraId
    const fallback = cameras.value.find((c) => c.premisesId === i.premisesId)?.id
    const cameraId = seen ?? fallback
    if (!cameraId) return null
    return { incidentId: i.id, cameraId, exercise: i.exercise, kind: i.kind, place: detail.premisesName ?? detail.address }
  }

  async function loadAlarms(): Promise<void> {
    const page = await api.get<Page<Incident>>('/api/incidents', { tier: 'immediate', state: 'new', perPage: 16 })
    // oldest first, so the newest lands in the last tile
    const found = await Promise.all([...page.items].reverse().map((i) => alarmFor(i).catch(() => null)))
    alarms.value = found.filter((a): a is Alarm => a !== null)
  }

  async function reload(): Promise<void> {
    await Promise.all([loadWall(), loadCameras().catch(() => undefined)])
    await loadAlarms().catch(() => undefined)
  }

  async function onMessage(m: ServerMessage): Promise<void> {
    if (m.type === 'wall') {
      if (m.id === wallId() && (!wall.value || m.revision > wall.value.revision)) await loadWall()
    } else if (m.type === 'incident') {
      const known = alarms.value.some((a) => a.incidentId === m.id)
      if (m.tier === 'immediate' && m.state === 'new' && !known) {
        const alarm = await alarmFor(m).catch(() => null)
        if (alarm && !alarms.value.some((a) => a.incidentId === m.id)) alarms.value = [...alarms.value, alarm]
      } else if (m.state !== 'new' && known) {
        alarms.value = alarms.value.filter((a) => a.incidentId !== m.id)
      }
    } else if (m.type === 'edge') {
      cameras.value = cameras.value.map((c) => {
        if (c.edgeId !== m.edgeId) return c
        const own = m.cameras?.find((x) => x.cameraId === c.id)
        return { ...c, online: m.online ? (own?.online ?? null) : false }
      })
    }
  }

  /** Stores a new layout (the desk); the answer is the wall with its new revision. */
  async function save(layout: WallLayout): Promise<void> {
    wall.value = await api.put<Wall>(`/api/walls/${wallId()}`, layout)
  }

  // another wall chosen on the same page
  watch(wallId, () => void loadWall())

  let unfollow = () => {}
  let tick: ReturnType<typeof setInterval> | undefined
  onMounted(() => {
    unfollow = live.follow((m) => void onMessage(m), () => void reload())
    tick = setInterval(() => (now.value = Date.now()), 1000)
    void reload()
  })
  onUnmounted(() => {
    unfollow()
    clearInterval(tick)
  })

  return { wall, cameras, cameraById, alarms, shown, loadError, save, reload, linkState: live.state }
}
