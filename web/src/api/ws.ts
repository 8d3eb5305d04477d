// The console's live feed: one WebSocket to /api/ws, re-opened with backoff whenever it drops.
// After each (re)connect and on `resync` the owner reloads by REST (`onReload`), then applies
// the pushed changes on top — the protocol of dispatch/README.md#websocket.
import { backoffMs } from '../lib/backoff'

export type Topic = 'incidents' | 'timeline' | 'notifications' | 'edges' | 'walls' | 'drills' | 'talk' | 'broadcasts'

/** A kitchen's delivery state in a group broadcast (topic `broadcasts`). */
export interface BroadcastChange {
  type: 'broadcast'
  broadcastId: string
  cameraId: string
  townId: string
  userId: string
  state: 'connecting' | 'playing' | 'ended' | 'failed'
  reason: 'noSpeaker' | 'offline' | 'busy' | 'edgeError' | null
  detail: string
  at: string
}

/** A camera's talk floor was taken (`endedAt` null) or a holding ended. */
export interface TalkChange {
  type: 'talk'
  id: number
  cameraId: string
  userId: string
  username: string
  displayName: string
  endedAt: string | null
  endReason: 'released' | 'timeout' | 'logout' | 'takeover' | null
  endedBy: string | null
}

export interface IncidentChange {
  type: 'incident'
  op: 'insert' | 'update'
  id: string
  townId: string
  premisesId: string | null
  routedTeamId: string | null
  kind: string
  tier: string
  state: string
  exercise: string | null
  reportCount: number
  lastReportAt: string
  updatedAt: string
}

export interface TimelineChange {
  type: 'timeline'
  incidentId: string
  seq: number
  action: string
  toState: string | null
  townId: string
  at: string
}

/** A video wall's layout was set; read it by REST. */
export interface WallChange {
  type: 'wall'
  id: string
  revision: number
  updatedAt: string
}

/** An edge or one of its cameras came online or went offline. */
export interface EdgeChange {
  type: 'edge'
  edgeId: string
  online: boolean
  cameras: { cameraId: string; online: boolean }[] | null
}

/** A drill run changed (`what`: run, inject, observation, improvement); reload it by REST. */
export interface DrillChange {
  type: 'drill'
  runId: string
  what: 'run' | 'inject' | 'observation' | 'improvement'
  state: string
  towns: string[]
  at: string
}

export type ServerMessage =
  | { type: 'hello'; topics: Topic[]; role: string; username: string }
  | { type: 'subscribed'; topics: Topic[] }
  | { type: 'resync'; reason: string }
  | { type: 'pong'; id?: string }
  | { type: 'error'; code: string; message: string }
  | IncidentChange
  | TimelineChange
  | WallChange
  | EdgeChange
  | DrillChange
  | TalkChange
  | BroadcastChange
  | { type: 'notification'; [k: string]: unknown }

export type LinkState = 'connecting' | 'live' | 'down'

export interface LiveOptions {
  topics: Topic[]
  onMessage: (m: ServerMessage) => void
  /** (re)load everything shown: after every subscribe and on resync */
  onReload: () => void
  onState?: (s: LinkState) => void
  /** the session ended (close 4001): log in again */
  onSessionEnded?: () => void
}

export class LiveSocket {
  private ws: WebSocket | null = null
  private attempt = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private stopped = false

  constructor(private readonly opts: LiveOptions) {}

  start(): void {
    this.stopped = false
    this.open()
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.ws?.close(1000)
    this.ws = null
  }

  private open(): void {
    this.opts.onState?.('connecting')
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
    const ws = new WebSocket(`${scheme}://${location.host}/api/ws`)
    this.ws = ws
    ws.onmessage = (ev) => {
      let m: ServerMessage
      try {
        m = JSON.parse(String(ev.data)) as ServerMessage
      } catch {
        return
      }
      if (m.type === 'hello') {
        const topics = this.opts.topics.filter((t) => m.topics.includes(t))
        ws.send(JSON.stringify({ type: 'subscribe', topics }))
      } else if (m.type === 'subscribed') {
        this.attempt = 0
        this.opts.onState?.('live')
        this.opts.onReload()
      } else if (m.type === 'resync') {
        this.opts.onReload()
      } else {
        this.opts.onMessage(m)
      }
    }
    ws.onclose = (ev) => {
      if (this.ws !== ws) return
      this.ws = null
      this.opts.onState?.('down')
      if (ev.code === 4001) {
        this.opts.onSessionEnded?.()
        return
      }
      if (this.stopped) return
      this.timer = setTimeout(() => this.open(), backoffMs(this.attempt++))
    }
  }
}
