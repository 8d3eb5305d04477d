//! **The one module that knows the WHEP viewers' WebRTC engine** (str0m, sans-IO). A [`Peer`]
//! answers a viewer's SDP offer, takes the relay's RTP packets in ([`Peer::send`]) and gives
//! feedback out ([`PeerEvent`]: keyframe requests, connected, the end of the connection).
//!
//! All viewers share one [`Engine`]: one UDP socket per advertised address and one task that
//! runs every viewer's connection ([`engine`]) — no task, interceptor chain or socket per viewer,
//! which is what webrtc-rs cost per viewer (media-gateway README, "Benchmarks"). The gateway is an
//! ICE-lite answerer with host candidates only; DTLS-SRTP; NACKs are answered from str0m's send
//! buffer (RTX when the viewer offers it); PLI/FIR become [`PeerEvent::KeyframeRequest`]. Packets
//! are forwarded in str0m's RTP mode: the payload, timestamp and marker bit pass unchanged under
//! the viewer's SSRC, payload type and sequence number, never repacketized.
//!
//! Only the codec the viewer is sent is in the answer — H.264 (packetization-mode=1, profile
//! 42e01f), or H.265 for a viewer whose offer has it and a camera that sends it — and packets are
//! sent with the payload type the answer negotiated: Chromium decoded nothing when payload types
//! were mislabelled. WHIP (talk) and the consult rooms stay on webrtc-rs ([`super::webrtc_rs`]).

mod engine;
mod packet;
mod route;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::crypto::CryptoProvider;
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid};
use str0m::{Candidate, Rtc, RtcConfig};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::codec::VideoCodec;
use engine::{Control, Media, PeerId, Senders, Track, Viewer};

pub(crate) use super::webrtc_rs::{KeyframeRequests, build_pc, is_keyframe_request};

/// The payload type the gateway offers H.264 under.
pub const H264_PAYLOAD_TYPE: u8 = 102;
/// The one video format sent: constrained baseline, non-interleaved, as browsers decode in hardware
/// and software alike.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// The payload type the gateway offers H.265 under.
pub const H265_PAYLOAD_TYPE: u8 = 103;

/// The payload type of retransmissions (RTX) of the video, when the viewer offers them.
const RTX_PAYLOAD_TYPE: u8 = 104;

/// Packets of video a viewer's connection keeps to answer NACKs: about 2.5 s of a 2 Mbps stream.
/// Payloads are shared by all viewers ([`packet::SharedPayloads`]), so this costs a viewer little.
const VIDEO_SEND_BUFFER: usize = 512;

/// Where the gateway's WebRTC sockets live and what it advertises.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    /// Address the UDP sockets bind to (`0.0.0.0`: one socket per non-loopback interface).
    pub bind_ip: IpAddr,
    /// Address advertised in host candidates instead of the bound one (behind 1:1 NAT).
    pub public_ip: Option<IpAddr>,
    /// UDP ports: WHEP viewers share the first free one; each talk or room session takes one.
    /// None: any free port.
    pub ports: Option<(u16, u16)>,
    /// How long a webrtc-rs peer (talk, rooms) waits for ICE gathering before answering.
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

/// The WHEP viewers' engine of a gateway: its sockets are bound and its loop started at the first
/// viewer; both end when the engine is dropped.
pub struct Engine {
    settings: PeerSettings,
    running: Mutex<Option<Arc<Running>>>,
}

struct Running {
    senders: Senders,
    candidates: Vec<Candidate>,
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
    _stop: DropGuard,
}

static NEXT_PEER: AtomicU64 = AtomicU64::new(1);

impl Engine {
    /// An engine on `settings`' address and ports (nothing bound yet).
    pub fn new(settings: PeerSettings) -> Self {
        Self {
            settings,
            running: Mutex::new(None),
        }
    }

    fn running(&self) -> Result<Arc<Running>, PeerError> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        // a loop that ended (it never should) is replaced rather than failing every viewer after
        if let Some(r) = running.as_ref().filter(|r| !r.senders.control.is_closed()) {
            return Ok(r.clone());
        }
        *running = None;
        let sockets = engine::bind(&self.settings)?;
        let candidates = sockets
            .iter()
            .map(|s| {
                Candidate::host(s.advertised, "udp")
                    .map_err(|e| PeerError::Engine(format!("candidate {}: {e}", s.advertised)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| PeerError::Engine("no DTLS certificate".into()))?;
        tracing::info!(addrs = ?candidates.iter().map(|c| c.addr()).collect::<Vec<_>>(), "whep engine listening");
        let stop = CancellationToken::new();
        let r = Arc::new(Running {
            senders: engine::start(sockets, stop.clone()),
            candidates,
            crypto,
            cert,
            _stop: stop.drop_guard(),
        });
        *running = Some(r.clone());
        Ok(r)
    }
}

/// One viewer's WebRTC connection.
pub struct Peer {
    id: PeerId,
    senders: Senders,
    has_audio: bool,
}

impl Peer {
    /// Answers `offer` (SDP text) for packets of `codec`, with Opus audio when `with_audio` (the
    /// camera has audio) and the offer receives audio: returns the peer, its answer (SDP text, all
    /// candidates included) and its events.
    pub async fn answer(
        engine: &Engine,
        offer: String,
        codec: VideoCodec,
        with_audio: bool,
    ) -> Result<(Peer, String, mpsc::Receiver<PeerEvent>), PeerError> {
        // str0m takes the passive DTLS role for an `actpass` offer, and then waits for the
        // viewer's ClientHello (webrtc-rs sends it a tick after ICE, 200 ms); seen as passive, the
        // offer makes it take the active role RFC 5763 recommends and start the handshake itself.
        let parsed =
            SdpOffer::from_sdp_string(&offer.replace("a=setup:actpass", "a=setup:passive"))
                .map_err(|e| PeerError::BadOffer(format!("not an SDP offer: {e}")))?;
        let running = engine.running()?;
        let with_audio = with_audio && offered_mids(&offer, "audio").next().is_some();
        let mut rtc = rtc_config(&running, codec, with_audio).build(Instant::now());
        for c in &running.candidates {
            rtc.add_local_candidate(c.clone());
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(parsed)
            .map_err(|e| PeerError::BadOffer(format!("the offer was refused: {e}")))?;
        let video = negotiated(&rtc, &offer, "video", video_codec(codec)).ok_or_else(|| {
            PeerError::BadOffer(
                match codec {
                    VideoCodec::H264 => {
                        "the offer has no H.264 (packetization-mode=1, profile 42e01f) video to receive"
                    }
                    VideoCodec::H265 => "the offer has no H.265 video to receive",
                }
                .into(),
            )
        })?;
        let audio = with_audio
            .then(|| negotiated(&rtc, &offer, "audio", Codec::Opus))
            .flatten();
        let (events_tx, events) = mpsc::channel(16);
        let id = NEXT_PEER.fetch_add(1, Ordering::Relaxed);
        let viewer = Viewer::new(rtc, events_tx, video, audio);
        running
            .senders
            .control
            .send(Control::Add(id, Box::new(viewer)))
            .await
            .map_err(|_| PeerError::Engine("the engine stopped".into()))?;
        let peer = Peer {
            id,
            senders: running.senders.clone(),
            has_audio: audio.is_some(),
        };
        let answer = with_rejected_formats(&answer.to_sdp_string(), &offer);
        Ok((peer, answer, events))
    }

    /// Sends one RTP packet (as relayed from the camera) under the viewer's sequence number `seq`:
    /// SSRC and payload type are the negotiated ones, timestamp, marker and payload pass unchanged.
    /// The payload is copied once for all viewers, not per viewer.
    pub async fn send(&self, rtp: &Bytes, seq: u16) -> Result<(), PeerError> {
        self.media(Media::Video(self.id, rtp.clone(), seq)).await
    }

    /// Whether this viewer receives the camera's audio.
    pub fn has_audio(&self) -> bool {
        self.has_audio
    }

    /// Sends one Opus RTP packet of the camera's audio (nothing when the viewer has no audio).
    pub async fn send_audio(&self, rtp: &Bytes) -> Result<(), PeerError> {
        if !self.has_audio {
            return Ok(());
        }
        self.media(Media::Audio(self.id, rtp.clone())).await
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.senders.control.send(Control::Close(self.id)).await;
    }

    async fn media(&self, m: Media) -> Result<(), PeerError> {
        self.senders
            .media
            .send(m)
            .await
            .map_err(|_| PeerError::Engine("the engine stopped".into()))
    }
}

/// A viewer's connection settings: ICE-lite, RTP mode, the one video codec sent (and Opus when
/// `audio`: the camera has some), no header extensions (nothing the gateway sends needs one), the
/// engine's certificate.
fn rtc_config(running: &Running, codec: VideoCodec, audio: bool) -> RtcConfig {
    let mut config = RtcConfig::new()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .set_crypto_provider(running.crypto.clone())
        .set_dtls_cert(running.cert.clone())
        .clear_codecs()
        .clear_extension_map()
        .set_send_buffer_video(VIDEO_SEND_BUFFER);
    let codecs = config.codec_config();
    match codec {
        VideoCodec::H264 => {
            codecs.add_h264(
                H264_PAYLOAD_TYPE.into(),
                Some(RTX_PAYLOAD_TYPE.into()),
                true,
                0x42e01f,
            );
        }
        // Main profile, main tier, level 3.1: what the offer does not say defaults to it
        VideoCodec::H265 => codecs.add_h265(
            H265_PAYLOAD_TYPE.into(),
            Some(RTX_PAYLOAD_TYPE.into()),
            1,
            0,
            93,
        ),
    }
    if audio {
        codecs.enable_opus(true, false);
    }
    config
}

fn video_codec(codec: VideoCodec) -> Codec {
    match codec {
        VideoCodec::H264 => Codec::H264,
        VideoCodec::H265 => Codec::H265,
    }
}

/// The first m-line of `kind` in `offer` that the answer accepted with `codec`, and the payload
/// type agreed (the offer's own: a receiver's payload types are not suggestions).
fn negotiated(rtc: &Rtc, offer: &str, kind: &str, codec: Codec) -> Option<Track> {
    let pt = rtc.codec_config().find(|p| p.spec().codec == codec)?.pt();
    offered_mids(offer, kind).find_map(|mid| {
        let media = rtc.media(Mid::from(mid))?;
        let usable = !media.disabled()
            && media.kind() == media_kind(kind)
            && media.remote_pts().contains(&pt);
        usable.then_some(Track {
            mid: media.mid(),
            pt: *pt,
        })
    })
}

fn media_kind(kind: &str) -> MediaKind {
    if kind == "audio" {
        MediaKind::Audio
    } else {
        MediaKind::Video
    }
}

/// The `a=mid` of each m-line of `kind` ("video", "audio") in an SDP offer, in order.
fn offered_mids<'a>(sdp: &'a str, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    sdp.split("\nm=")
        .skip(1)
        .filter(move |section| section.starts_with(kind) && section[kind.len()..].starts_with(' '))
        .filter_map(|section| {
            section
                .lines()
                .find_map(|l| l.trim_end().strip_prefix("a=mid:"))
        })
}

/// `answer` with each rejected m-line (port 0) given the first format of the offer's m-line at
/// its place, with that format's `a=rtpmap`: str0m rejects one (an audio m-line when the camera
/// has no audio) with no format at all, which RFC 3264 (§6) forbids and SDP parsers refuse
/// (Chromium, webrtc-rs; webrtc-rs also wants the format's rtpmap).
fn with_rejected_formats(answer: &str, offer: &str) -> String {
    let mut offered = offer.split("\nm=").skip(1).map(|section| {
        let format = section.split_whitespace().nth(3)?;
        let rtpmap = section.lines().map(str::trim_end).find(|l| {
            l.strip_prefix("a=rtpmap:")
                .and_then(|r| r.split_once(' '))
                .is_some_and(|(pt, _)| pt == format)
        });
        Some((format, rtpmap))
    });
    let mut out = String::with_capacity(answer.len() + 64);
    for line in answer.split_inclusive('\n') {
        let Some(m) = line.trim_end().strip_prefix("m=") else {
            out.push_str(line);
            continue;
        };
        let fields: Vec<&str> = m.split_whitespace().collect();
        match (fields.as_slice(), offered.next().flatten()) {
            ([kind, "0", proto], Some((format, rtpmap))) => {
                out.push_str(&format!("m={kind} 0 {proto} {format}\r\n"));
                if let Some(rtpmap) = rtpmap {
                    out.push_str(&format!("{rtpmap}\r\n"));
                }
            }
            _ => out.push_str(line),
        }
    }
    out
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

#[cfg(test)]
mod tests;
