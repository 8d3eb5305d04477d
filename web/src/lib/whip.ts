// Sends the operator's microphone to the media gateway's WHIP endpoint (RFC 9725 style, like
// WHEP: POST an SDP offer with the talk token, get the answer; DELETE the session to end it).
// Opus only: the gateway answers audio receive-only and refuses an offer without Opus.
import { ApiError } from '../api/client'

export interface WhipSession {
  pc: RTCPeerConnection
  /** The session resource (for DELETE) */
  resource: string | null
  /** Ends the session: stops the microphone, closes the connection, DELETEs the resource. */
  close(): void
}

export async function startWhip(mic: MediaStream, whipUrl: string, token: string): Promise<WhipSession> {
  const pc = new RTCPeerConnection()
  // Talk sends a microphone only; a consult room also sends the camera (every track given).
  for (const track of mic.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [mic] })
  const offer = await pc.createOffer()
  await pc.setLocalDescription(offer)
  try {
    const resp = await fetch(whipUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
      body: offer.sdp ?? '',
    })
    if (!resp.ok) {
      const body = (await resp.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null
      throw new ApiError(resp.status, body?.error?.code ?? `whip_${resp.status}`, body?.error?.message ?? `WHIP ${resp.status}`)
    }
    const location = resp.headers.get('Location')
    const resource = location ? new URL(location, whipUrl).toString() : null
    await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() })
    return {
      pc,
      resource,
      close() {
        mic.getTracks().forEach((t) => t.stop())
        pc.close()
        if (resource) void fetch(resource, { method: 'DELETE' }).catch(() => undefined)
      },
    }
  } catch (e) {
    pc.close()
    throw e
  }
}

/** The gateway's talk status URL for a WHIP URL (`…/whip/{camera}` → `…/talk/{camera}/status`). */
export function talkStatusUrl(whipUrl: string): string {
  return whipUrl.replace(/\/whip\/([^/]+)$/, '/talk/$1/status')
}
