//! **The one module that knows the WebRTC engine** (webrtc-rs 0.21). A [`Peer`] answers a viewer's
//! SDP offer, takes H.264 RTP packets in ([`Peer::send`]) and gives feedback out
//! ([`PeerEvent`]: keyframe requests, the end of the connection). Replacing the engine (e.g. with
//! `str0m`) means replacing this file.
//!
//! Only the codec the viewer is sent is registered — H.264 (packetization-mode=1, profile 42e01f),
//! or H.265 for a viewer whose offer has it and a camera that sends it — with an explicit payload
//! type, and packets are sent with the payload type the answer negotiated: with the engine's default
//! codec set Chromium decoded nothing (packets labelled with another payload type).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::interceptor::{
    Attribute, Interceptor, Packet as IPacket, Registry, Slot, StreamInfo, TaggedPacket,
};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_HEVC, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateType;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::marshal::Unmarshal;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use super::codec::VideoCodec;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};

/// The payload type the gateway offers H.264 under.
pub const H264_PAYLOAD_TYPE: u8 = 102;
/// The one video format sent: constrained baseline, non-interleaved, as browsers decode in hardware
/// and software alike.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// The payload type the gateway offers H.265 under.
pub const H265_PAYLOAD_TYPE: u8 = 103;

/// Where the gateway's WebRTC sockets live and what it advertises.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    /// Address the UDP sockets bind to (`0.0.0.0`: one socket per non-loopback interface).
    pub bind_ip: IpAddr,
    /// Address advertised in host candidates instead of the bound one (behind 1:1 NAT).
    pub public_ip: Option<IpAddr>,
    /// UDP ports to use, one per session; None: any free port.
    pub ports: Option<(u16, u16)>,
    /// How long to wait for ICE gathering before answering with what was gathered.
    pub gather_timeout: Duration,
}

/// What a viewer's connection tells the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEvent {
    /// The viewer sent a PLI or FIR.
    KeyframeRequest,
    /// The connection is up (ICE and DTLS done).
    Connected,
    /// The connection failed or was closed.
    Closed,
}

/// Why a peer could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The offer is unusable: not SDP, or it has no H.264 the gateway can send.
    #[error("{0}")]
    BadOffer(String),
    /// No UDP port in the configured range is free.
    #[error("no free UDP port in the configured range")]
    NoPort,
    /// The engine failed.
    #[error("webrtc: {0}")]
    Engine(String),
}

/// One viewer's WebRTC connection.
pub struct Peer {
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    audio: Option<AudioOut>,
}

/// The camera's audio to a viewer: Opus under the SSRC and payload type negotiated.
struct AudioOut {
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
}

struct Handler {
    events: mpsc::Sender<PeerEvent>,
    gathered: mpsc::Sender<()>,
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
            // A brief `disconnected` (a lost consent check, a network change) recovers on its
            // own; the engine declares `failed` when it does not.
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => PeerEvent::Closed,
            _ => return,
        };
        let _ = self.events.try_send(event);
    }
}

fn h264() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: H264_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

fn h265() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_HEVC.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

fn rtp_codec(codec: VideoCodec) -> RTCRtpCodec {
    match codec {
        VideoCodec::H264 => h264(),
        VideoCodec::H265 => h265(),
    }
}

/// Whether an SDP offer can receive H.265 (an `a=rtpmap:… H265/90000` line): such a viewer gets an
/// H.265 camera as is, any other one its H.264 transcode.
pub fn offers_h265(sdp: &str) -> bool {
    sdp.lines().any(|l| {
        l.strip_prefix("a=rtpmap:")
            .and_then(|r| r.split_once(' '))
            .is_some_and(|(_, enc)| enc.to_ascii_uppercase().starts_with("H265/"))
    })
}

/// The media engine a peer of either side uses: H.264 only, under [`H264_PAYLOAD_TYPE`], with the
/// default interceptors (NACK generator and responder, RTCP reports) and one that hands keyframe
/// requests to the application.
pub fn engine() -> Result<(MediaEngine, Registry), PeerError> {
    engine_for(VideoCodec::H264)
}

/// As [`engine`], with H.265 only, under [`H265_PAYLOAD_TYPE`].
pub fn engine_h265() -> Result<(MediaEngine, Registry), PeerError> {
    engine_for(VideoCodec::H265)
}

fn engine_for(codec: VideoCodec) -> Result<(MediaEngine, Registry), PeerError> {
    let mut media = MediaEngine::default();
    let payload_type = match codec {
        VideoCodec::H264 => H264_PAYLOAD_TYPE,
        VideoCodec::H265 => H265_PAYLOAD_TYPE,
    };
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: rtp_codec(codec),
                payload_type,
            },
            RtpCodecKind::Video,
        )
        .map_err(|e| PeerError::Engine(e.to_string()))?;
    // the camera's audio, transcoded to Opus (super::audio)
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: super::talk_peer::opus(),
                payload_type: super::talk_peer::OPUS_PAYLOAD_TYPE,
            },
            RtpCodecKind::Audio,
        )
        .map_err(|e| PeerError::Engine(e.to_string()))?;
    let registry = register_default_interceptors(Registry::new(), &mut media)
        .map_err(|e| PeerError::Engine(e.to_string()))?
        .with(Slot::from(14_000), KeyframeRequests::default());
    Ok((media, registry))
}

/// The answering side's settings: ports, advertised address, loopback allowed when bound there.
fn setting_engine(
    settings: &PeerSettings,
) -> rtc::peer_connection::configuration::setting_engine::SettingEngine {
    let mut b =
        SettingEngineBuilder::new().with_include_loopback_candidate(settings.bind_ip.is_loopback());
    if let Some(ip) = settings.public_ip {
        b = b.with_nat_1to1_ips(vec![ip.to_string()], RTCIceCandidateType::Host);
    }
    b.build()
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

impl Peer {
    /// Answers `offer` (SDP text) for packets of `codec`: returns the peer, its answer (SDP text,
    /// all candidates included) and its events.
    pub async fn answer(
        settings: &PeerSettings,
        offer: String,
        codec: VideoCodec,
        with_audio: bool,
    ) -> Result<(Peer, String, mpsc::Receiver<PeerEvent>), PeerError> {
        let offer = RTCSessionDescription::offer(offer)
            .map_err(|e| PeerError::BadOffer(format!("not an SDP offer: {e}")))?;
        let (events_tx, events) = mpsc::channel(16);
        let (gathered_tx, mut gathered) = mpsc::channel(1);
        let handler = Arc::new(Handler {
            events: events_tx.clone(),
            gathered: gathered_tx,
        });
        let pc = match codec {
            VideoCodec::H264 => build_pc(settings, handler, engine).await?,
            VideoCodec::H265 => build_pc(settings, handler, engine_h265).await?,
        };
        let ssrc = rand::random::<u32>();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "brightline".to_owned(),
            format!("video-{ssrc:08x}"),
            "video".to_owned(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: rtp_codec(codec),
                ..Default::default()
            }],
        )));
        // audio only when the camera has some and the viewer offered to receive it
        let audio = (with_audio && offer.sdp.contains("m=audio")).then(|| {
            let ssrc = rand::random::<u32>();
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                "brightline".to_owned(),
                format!("audio-{ssrc:08x}"),
                "audio".to_owned(),
                RtpCodecKind::Audio,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: super::talk_peer::opus(),
                    ..Default::default()
                }],
            )));
            (track, ssrc)
        });
        let audio_track = audio.as_ref().map(|(t, _)| t.clone());
        let result = negotiate(
            &pc,
            &track,
            audio_track,
            offer,
            codec,
            &mut gathered,
            settings.gather_timeout,
        )
        .await;
        let (answer, payload_type, audio_payload_type) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        let t2 = track.clone();
        tokio::spawn(async move {
            while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = t2.poll().await {
                if packets.iter().any(is_keyframe_request) {
                    let _ = events_tx.try_send(PeerEvent::KeyframeRequest);
                }
            }
        });
        Ok((
            Peer {
                pc,
                track,
                ssrc,
                payload_type,
                audio: audio
                    .zip(audio_payload_type)
                    .map(|((track, ssrc), payload_type)| AudioOut {
                        track,
                        ssrc,
                        payload_type,
                    }),
            },
            answer,
            events,
        ))
    }

    /// Sends one RTP packet (as relayed from the camera) under the viewer's sequence number `seq`:
    /// SSRC and payload type are rewritten to the negotiated ones, the timestamp passes unchanged.
    /// The payload is not copied: every viewer's packet (and its NACK send buffer, 1024 packets)
    /// shares the relay's bytes, which keeps a viewer's memory to headers.
    pub async fn send(&self, rtp: &Bytes, seq: u16) -> Result<(), PeerError> {
        write_rewritten(&self.track, self.ssrc, self.payload_type, rtp, Some(seq)).await
    }

    /// Whether this viewer receives the camera's audio.
    pub fn has_audio(&self) -> bool {
        self.audio.is_some()
    }

    /// Sends one Opus RTP packet of the camera's audio (nothing when the viewer has no audio).
    pub async fn send_audio(&self, rtp: &Bytes) -> Result<(), PeerError> {
        match &self.audio {
            Some(audio) => {
                write_rewritten(&audio.track, audio.ssrc, audio.payload_type, rtp, None).await
            }
            None => Ok(()),
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// Writes one RTP packet to `track` under the negotiated `ssrc` and `payload_type`, and `seq` when
/// given; the timestamp passes unchanged. The payload is shared, not copied, per viewer.
async fn write_rewritten(
    track: &TrackLocalStaticRTP,
    ssrc: u32,
    payload_type: u8,
    rtp: &Bytes,
    seq: Option<u16>,
) -> Result<(), PeerError> {
    let mut buf = rtp.clone();
    let mut packet =
        rtc::rtp::Packet::unmarshal(&mut buf).map_err(|e| PeerError::Engine(e.to_string()))?;
    packet.header.ssrc = ssrc;
    packet.header.payload_type = payload_type;
    if let Some(seq) = seq {
        packet.header.sequence_number = seq;
    }
    packet.header.extensions.clear();
    packet.header.extension = false;
    track
        .write_rtp(packet)
        .await
        .map_err(|e| PeerError::Engine(e.to_string()))
}

/// A peer connection with `engine`'s codecs on a UDP port of `settings` (shared with the talk
/// peer, [`super::talk_peer`], and the consult rooms, [`crate::rooms::peer`]).
pub(crate) async fn build_pc(
    settings: &PeerSettings,
    handler: Arc<dyn PeerConnectionEventHandler>,
    engine: fn() -> Result<(MediaEngine, Registry), PeerError>,
) -> Result<Arc<dyn PeerConnection>, PeerError> {
    let attempt = |port: u16| {
        let handler = handler.clone();
        let addr = std::net::SocketAddr::new(settings.bind_ip, port);
        async move {
            let (media, registry) = engine()?;
            let pc = PeerConnectionBuilder::new()
                .with_configuration(RTCConfigurationBuilder::new().build())
                .with_media_engine(media)
                .with_setting_engine(setting_engine(settings))
                .with_interceptor_registry(registry)
                .with_handler(handler)
                .with_udp_addrs(vec![addr])
                .build()
                .await
                .map_err(|e| PeerError::Engine(e.to_string()))?;
            Ok::<Arc<dyn PeerConnection>, PeerError>(Arc::new(pc))
        }
    };
    let Some((min, max)) = settings.ports else {
        return attempt(0).await;
    };
    let span = max - min + 1;
    for _ in 0..span {
        let port = min + NEXT_PORT.fetch_add(1, Ordering::Relaxed) % span;
        match attempt(port).await {
            Ok(pc) => return Ok(pc),
            Err(e) => tracing::debug!(port, err = %e, "udp port taken, trying the next"),
        }
    }
    Err(PeerError::NoPort)
}

/// Negotiates the answer; returns it with the video's payload type and, when an audio track was
/// given and accepted, the audio's.
async fn negotiate(
    pc: &Arc<dyn PeerConnection>,
    track: &Arc<TrackLocalStaticRTP>,
    audio: Option<Arc<TrackLocalStaticRTP>>,
    offer: RTCSessionDescription,
    codec: VideoCodec,
    gathered: &mut mpsc::Receiver<()>,
    gather_timeout: Duration,
) -> Result<(String, u8, Option<u8>), PeerError> {
    let engine = |e: webrtc::error::Error| PeerError::Engine(e.to_string());
    let sender = pc
        .add_track(track.clone() as Arc<dyn TrackLocal>)
        .await
        .map_err(engine)?;
    let audio_sender = match audio {
        Some(a) => Some(
            pc.add_track(a as Arc<dyn TrackLocal>)
                .await
                .map_err(engine)?,
        ),
        None => None,
    };
    pc.set_remote_description(offer)
        .await
        .map_err(|e| PeerError::BadOffer(format!("the offer was refused: {e}")))?;
    let answer = pc.create_answer(None).await.map_err(engine)?;
    pc.set_local_description(answer).await.map_err(engine)?;
    let _ = tokio::time::timeout(gather_timeout, gathered.recv()).await;
    let answer = pc
        .local_description()
        .await
        .ok_or_else(|| PeerError::Engine("no local description".into()))?;
    let params = sender.get_parameters().await.map_err(engine)?;
    let payload_type = params
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| {
            c.rtp_codec
                .mime_type
                .eq_ignore_ascii_case(&rtp_codec(codec).mime_type)
        })
        .map(|c| c.payload_type)
        .ok_or_else(|| {
            PeerError::BadOffer(match codec {
                VideoCodec::H264 => {
                    "the offer has no H.264 (packetization-mode=1, profile 42e01f) video to receive"
                }
                VideoCodec::H265 => "the offer has no H.265 video to receive",
            }
            .into())
        })?;
    if !answer.sdp.contains("m=video") || answer.sdp.contains("m=video 0 ") {
        return Err(PeerError::BadOffer(
            "the offer has no video to receive".into(),
        ));
    }
    let audio_payload_type = match audio_sender {
        Some(sender) => sender
            .get_parameters()
            .await
            .map_err(engine)?
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| {
                c.rtp_codec
                    .mime_type
                    .eq_ignore_ascii_case(super::talk_peer::opus().mime_type.as_str())
            })
            .map(|c| c.payload_type),
        None => None,
    };
    Ok((answer.sdp, payload_type, audio_payload_type))
}

/// Whether an RTCP packet asks for a keyframe.
#[allow(clippy::borrowed_box)]
pub(crate) fn is_keyframe_request(packet: &Box<dyn rtc::rtcp::Packet>) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Marks inbound PLI/FIR for delivery to the application (inbound RTCP otherwise ends in the
/// interceptor chain) and drops other inbound RTCP at this, the last, stage.
#[derive(Default)]
pub(crate) struct KeyframeRequests {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let IPacket::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<_> = packets
                .iter()
                .filter(|p| is_keyframe_request(p))
                .cloned()
                .collect();
            if requests.is_empty() {
                return Ok(());
            }
            msg.message.packet = IPacket::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_brief_ice_disconnection_does_not_end_the_session_but_a_failure_does() {
        let (events, mut rx) = mpsc::channel(4);
        let handler = Handler {
            events,
            gathered: mpsc::channel(1).0,
        };
        handler
            .on_connection_state_change(RTCPeerConnectionState::Connected)
            .await;
        handler
            .on_connection_state_change(RTCPeerConnectionState::Disconnected)
            .await;
        assert_eq!(rx.try_recv().ok(), Some(PeerEvent::Connected));
        assert!(rx.try_recv().is_err(), "disconnected is not the end");
        handler
            .on_connection_state_change(RTCPeerConnectionState::Failed)
            .await;
        assert_eq!(rx.try_recv().ok(), Some(PeerEvent::Closed));
    }
}
