// Plays a camera through the media gateway's WHEP endpoint (RFC 9725: POST an SDP offer, get
// the answer). Returns the session; throws when the gateway does not answer (a plain Error) or
// refuses (an ApiError with the gateway's code and message) — the tile then says so. Nothing is
// ever faked: no answer, no picture.
import { ApiError } from '../api/client'

export interface WhepSession {
  pc: RTCPeerConnection
  /** Ends the session: closes the connection and DELETEs the session resource, so the gateway
   * frees it at once (a tour switches cameras every few seconds). */
  close(): void
}

export async function playWhep(video: HTMLVideoElement, whepUrl: string, token: string): Promise<WhepSession> {
  return openWhep(whepUrl, token, (stream) => {
    video.srcObject = stream
  })
}

/** A WHEP session whose media stream goes to `onStream` (a consult room shows several at once). */
export async function openWhep(whepUrl: string, token: string, onStream: (s: MediaStream) => void): Promise<WhepSession> {
  const pc = new RTCPeerConnection()
  pc.addTransceiver('video', { direction: 'recvonly' })
  pc.addTransceiver('audio', { direction: 'recvonly' })
  pc.ontrack = (ev) => {
    if (ev.streams[0]) onStream(ev.streams[0])
  }
  const offer = await pc.createOffer()
  await pc.setLocalDescription(offer)
  try {
    const resp = await fetch(whepUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
      body: offer.sdp ?? '',
    })
    if (!resp.ok) {
      const body = (await resp.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null
      throw new ApiError(resp.status, body?.error?.code ?? `whep_${resp.status}`, body?.error?.message ?? `WHEP ${resp.status}`)
    }
    const location = resp.headers.get('Location')
    const resource = location ? new URL(location, whepUrl).toString() : null
    await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() })
    return {
      pc,
      close() {
        pc.close()
        if (resource) void fetch(resource, { method: 'DELETE' }).catch(() => undefined)
      },
    }
  } catch (e) {
    pc.close()
    throw e
  }
}

/** Whether the gateway sends the camera's sound: it does only for a camera with a microphone, and
 * then its answer's audio section carries a track (msid) it sends. */
export function hasRemoteAudio(s: WhepSession | null): boolean {
  const sdp = s?.pc.remoteDescription?.sdp ?? ''
  return sdp
    .split('m=')
    .some((m) => m.startsWith('audio') && !m.startsWith('audio 0 ') && /a=(sendonly|sendrecv)/.test(m) && /a=msid:/.test(m))
}
