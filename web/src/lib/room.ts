// A consult room or voice channel at the media gateway (media-gateway/src/rooms): send one's own
// microphone (and camera) once by WHIP to `{roomUrl}/whip`, receive each other participant by
// WHEP from `{roomUrl}/whep/{participant}`, and follow who is in the room by polling `{roomUrl}`.
// The grant (room URL and token) comes from dispatch and is renewed through `refresh` before its
// token expires; the browser drives every change, so no server push is needed.
import { openWhep, type WhepSession } from './whep'
import { startWhip, type WhipSession } from './whip'
import type { TalkHolder } from '../api/client'

export interface RoomInfo {
  id: string
  incidentId: string
  kind: 'consult' | 'voice'
  title: string
  createdAt: string
  closedAt: string | null
  sharedCamera: string | null
  /** the evidence clip (SHA-256) playing or paused in the room */
  sharedClip?: string | null
  /** since when the room's voices are recorded (on request), if they are */
  recordingSince?: string | null
}

export interface RoomGrant {
  room: RoomInfo
  roomUrl: string
  token: string
  expiresAt: string
  me: string
  share?: { cameraId: string; whepUrl: string; token: string }
  floor?: TalkHolder & { sessionId: number }
}

export interface Participant {
  id: string
  /** `user:{username}` or `guest:{name}` */
  sub: string
  audio: boolean
  video: boolean
  joinedAt: string
}

/** Someone else in the room as this browser receives them. */
export interface Remote {
  participant: Participant
  stream: MediaStream | null
  /** frames decoded and audio bytes received so far (from the connection's statistics) */
  framesDecoded: number
  audioBytes: number
}

const POLL_MS = 1500

export class RoomClient {
  /** This browser's participant id at the gateway, once joined. */
  myId: string | null = null
  remotes = new Map<string, Remote & { session: WhepSession | null }>()
  /** Voice channels: whose audio the gateway forwards now (as of the last poll). */
  floor: { participant: string; sub: string; floorSession: number } | null = null
  private whip: WhipSession | null = null
  private timer: ReturnType<typeof setInterval> | null = null
  private polling = false
  private closed = false

  constructor(
    public grant: RoomGrant,
    private readonly refresh: () => Promise<RoomGrant>,
    /** called whenever the participants, their streams or their statistics change */
    private readonly onChange: () => void,
  ) {}

  /** Sends `local` into the room (a muted track still joins, so unmuting needs no new offer). */
  async join(local: MediaStream): Promise<void> {
    this.whip = await startWhip(local, `${this.grant.roomUrl}/whip`, this.grant.token)
    this.myId = this.whip.resource?.split('/').pop() ?? null
    await this.poll()
    this.timer = setInterval(() => void this.poll(), POLL_MS)
  }

  /** Push-to-talk: hands dispatch's floor grant to the gateway, which forwards this browser's
   *  audio only while it holds one (a newer holder's grant silences it at once). */
  async presentFloor(grant: string): Promise<void> {
    if (!this.myId) throw new Error('not joined')
    const resp = await fetch(`${this.grant.roomUrl}/whip/${this.myId}/floor`, { method: 'POST', headers: { Authorization: `Bearer ${grant}` } })
    if (!resp.ok) {
      const body = (await resp.json().catch(() => ({}))) as { error?: { code?: string; message?: string } }
      throw new Error(body.error?.message ?? `the gateway refused the floor (${resp.status})`)
    }
  }

  /** Push-to-talk: lets go at the gateway (the grant would also run out by itself). */
  releaseFloor(): void {
    if (this.myId) void fetch(`${this.grant.roomUrl}/whip/${this.myId}/floor`, { method: 'DELETE' }).catch(() => undefined)
  }

  /** Ends everything: the sending and every receiving connection. */
  leave(): void {
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    this.whip?.close()
    for (const r of this.remotes.values()) r.session?.close()
    this.remotes.clear()
  }

  private async fresh(): Promise<RoomGrant> {
    if (Date.parse(this.grant.expiresAt) - Date.now() < 120_000) this.grant = await this.refresh()
    return this.grant
  }

  private async poll(): Promise<void> {
    if (this.polling || this.closed) return
    this.polling = true
    try {
      const grant = await this.fresh()
      const resp = await fetch(grant.roomUrl, { headers: { Authorization: `Bearer ${grant.token}` } })
      if (!resp.ok) return
      const { participants, floor } = (await resp.json()) as { participants: Participant[]; floor?: { participant: string; sub: string; floorSession: number } | null }
      this.floor = floor ?? null
      const present = new Set(participants.map((p) => p.id))
      for (const [id, r] of this.remotes) {
        if (!present.has(id)) {
          r.session?.close()
          this.remotes.delete(id)
        }
      }
      for (const p of participants) {
        if (p.id === this.myId || this.remotes.has(p.id)) continue
        const remote: Remote & { session: WhepSession | null } = { participant: p, stream: null, framesDecoded: 0, audioBytes: 0, session: null }
        this.remotes.set(p.id, remote)
        openWhep(`${grant.roomUrl}/whep/${p.id}`, grant.token, (s) => {
          remote.stream = s
          this.onChange()
        }).then(
          (session) => {
            if (this.closed || !this.remotes.has(p.id)) session.close()
            else remote.session = session
          },
          // gone meanwhile, or refused: the next poll tries again
          () => this.remotes.delete(p.id),
        )
      }
      await this.readStats()
      this.onChange()
    } catch {
      // the gateway is unreachable for a moment: the next poll tries again
    } finally {
      this.polling = false
    }
  }

  private async readStats(): Promise<void> {
    for (const r of this.remotes.values()) {
      if (!r.session) continue
      const stats = await r.session.pc.getStats()
      stats.forEach((s: { type: string; kind?: string; framesDecoded?: number; bytesReceived?: number }) => {
        if (s.type !== 'inbound-rtp') return
        if (s.kind === 'video') r.framesDecoded = s.framesDecoded ?? 0
        if (s.kind === 'audio') r.audioBytes = s.bytesReceived ?? 0
      })
    }
  }
}

/** A participant's display name from the gateway's subject (`user:op.chen` → `op.chen`). */
export function displayName(sub: string): string {
  return sub.replace(/^(user|guest):/, '')
}
