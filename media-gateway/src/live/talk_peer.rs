//! The receiving side of the WebRTC boundary, for talk (WHIP): a [`TalkPeer`] answers an
//! operator's SDP offer with **Opus receive-only audio under an explicit payload type** and hands
//! the received Opus frames out as plain [`TalkPacket`]s. Like [`super::peer`], this is the only
//! place (with it) that knows webrtc-rs.

use std::sync::Arc;

use bytes::Bytes;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

use super::peer::{PeerError, PeerEvent, PeerSettings, build_pc};

/// The payload type the gateway registers Opus under (what browsers use). An offer under another
/// payload type is answered with the offer's, as SDP requires; the edge always gets this one.
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Opus as WebRTC carries it: 48 kHz, signalled as two channels (RFC 7587).
pub const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";

/// One Opus frame as received, without the sender's SSRC, payload type or header extensions.
#[derive(Debug, Clone)]
pub struct TalkPacket {
    /// RTP sequence number (the sender's).
    pub seq: u16,
    /// RTP timestamp (48 kHz, the sender's).
    pub timestamp: u32,
    /// RTP marker bit.
    pub marker: bool,
    /// The Opus frame.
    pub payload: Bytes,
}

/// An operator's talk connection, or a leg of a broadcast ([`TalkPeer::detached`]).
pub struct TalkPeer {
    pc: Option<Arc<dyn PeerConnection>>,
}

struct Handler {
    events: mpsc::Sender<PeerEvent>,
    gathered: mpsc::Sender<()>,
    packets: mpsc::Sender<TalkPacket>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let event = match state {
            RTCPeerConnectionState::Connected => PeerEvent::Connected,
            RTCPeerConnectionState::Failed
            | RTCPeerConnectionState::Closed
            | RTCPeerConnectionState::Disconnected => PeerEvent::Closed,
            _ => return,
        };
        let _ = self.events.try_send(event);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let packets = self.packets.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                let p = match event {
                    TrackRemoteEvent::OnRtpPacket(p) => p,
                    TrackRemoteEvent::OnEnded => return,
                    _ => continue,
                };
                // A full channel means the forwarder is behind: drop (audio is live, never queued
                // for long).
                let _ = packets.try_send(TalkPacket {
                    seq: p.header.sequence_number,
                    timestamp: p.header.timestamp,
                    marker: p.header.marker,
                    payload: p.payload.clone(),
                });
            }
        });
    }
}

/// Opus as registered for talk and for the camera's audio to viewers.
pub(super) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: OPUS_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The talk media engine: Opus only, under [`OPUS_PAYLOAD_TYPE`], with the default interceptors
/// (receiver reports, NACK).
pub fn engine() -> Result<(MediaEngine, Registry), PeerError> {
    let mut media = MediaEngine::default();
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: OPUS_PAYLOAD_TYPE,
            },
            RtpCodecKind::Audio,
        )
        .map_err(|e| PeerError::Engine(e.to_string()))?;
    let registry = register_default_interceptors(Registry::new(), &mut media)
        .map_err(|e| PeerError::Engine(e.to_string()))?;
    Ok((media, registry))
}

impl TalkPeer {
    /// Answers `offer` (SDP text): returns the peer, its answer (all candidates included), its
    /// connection events and the received Opus frames.
    pub async fn answer(
        settings: &PeerSettings,
        offer: String,
    ) -> Result<
        (
            TalkPeer,
            String,
            mpsc::Receiver<PeerEvent>,
            mpsc::Receiver<TalkPacket>,
        ),
        PeerError,
    > {
        let offer = RTCSessionDescription::offer(offer)
            .map_err(|e| PeerError::BadOffer(format!("not an SDP offer: {e}")))?;
        if !offer.sdp.contains("m=audio") {
            return Err(PeerError::BadOffer(
                "the offer has no audio to send; offer the microphone as Opus".into(),
            ));
        }
        let (events_tx, events) = mpsc::channel(16);
        let (gathered_tx, mut gathered) = mpsc::channel(1);
        // About 5 s of 20 ms frames.
        let (packets_tx, packets) = mpsc::channel(256);
        let handler = Arc::new(Handler {
            events: events_tx,
            gathered: gathered_tx,
            packets: packets_tx,
        });
        let pc = build_pc(settings, handler, engine).await?;
        let negotiated = async {
            let engine_err = |e: webrtc::error::Error| PeerError::Engine(e.to_string());
            pc.set_remote_description(offer)
                .await
                .map_err(|e| PeerError::BadOffer(format!("the offer was refused: {e}")))?;
            let answer = pc.create_answer(None).await.map_err(engine_err)?;
            pc.set_local_description(answer).await.map_err(engine_err)?;
            let _ = tokio::time::timeout(settings.gather_timeout, gathered.recv()).await;
            let answer = pc
                .local_description()
                .await
                .ok_or_else(|| PeerError::Engine("no local description".into()))?;
            // The answer mirrors the offer's payload type for Opus; what matters is that audio
            // was accepted with Opus (another codec leaves the section rejected, port 0).
            let audio_accepted =
                answer.sdp.contains("m=audio") && !answer.sdp.contains("m=audio 0 ");
            if !audio_accepted || !answer.sdp.to_ascii_lowercase().contains(" opus/48000") {
                return Err(PeerError::BadOffer(
                    "the offer has no Opus audio (48 kHz) to send".into(),
                ));
            }
            Ok(answer.sdp)
        }
        .await;
        match negotiated {
            Ok(answer) => Ok((TalkPeer { pc: Some(pc) }, answer, events, packets)),
            Err(e) => {
                let _ = pc.close().await;
                Err(e)
            }
        }
    }

    /// A stand-in for one camera's leg of a broadcast ([`super::broadcast`]): the broadcast
    /// owns the one connection, so ending one leg must not close it.
    pub fn detached() -> TalkPeer {
        TalkPeer { pc: None }
    }

    /// Closes the connection (a detached leg: nothing).
    pub async fn close(&self) {
        if let Some(pc) = &self.pc {
            let _ = pc.close().await;
        }
    }
}
