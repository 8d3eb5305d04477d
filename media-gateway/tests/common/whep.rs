//! A WHEP client for tests, on webrtc-rs like a browser would be: it offers to receive video (and,
//! with [`connect_with_audio`], Opus audio), registers its codecs under payload types other than the
//! gateway's (so the gateway must send what the answer negotiated), and counts what arrives.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_HEVC, MIME_TYPE_OPUS, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
};

/// The payload type this client offers H.264 under (the gateway registers 102).
pub const CLIENT_H264_PT: u8 = 109;
/// The payload type this client offers H.265 under (the gateway registers 103).
pub const CLIENT_H265_PT: u8 = 110;
/// The payload type this client offers Opus under (the gateway registers 111).
pub const CLIENT_OPUS_PT: u8 = 112;

/// One received audio packet: RTP sequence number, timestamp, payload type and Opus payload.
pub type AudioPacket = (u16, u32, u8, bytes::Bytes);
/// How many packets a viewer keeps for [`Received::rtp`].
const KEEP_PACKETS: usize = 3000;

/// What a viewer received.
#[derive(Default)]
pub struct Received {
    /// RTP packets.
    pub packets: AtomicU64,
    /// Frames (packets with the marker bit).
    pub frames: AtomicU64,
    /// Frames after the first keyframe, i.e. decodable ones.
    pub frames_after_key: AtomicU64,
    /// When the first packet of a keyframe arrived.
    pub first_key_at: Mutex<Option<Instant>>,
    /// Payload types seen.
    pub payload_types: Mutex<Vec<u8>>,
    /// The remote video track, once it arrived.
    pub track: Mutex<Option<Arc<dyn TrackRemote>>>,
    /// The first packets as received (for decoding them afterwards).
    pub rtp: Mutex<Vec<Vec<u8>>>,
    /// The camera's audio packets, in arrival order.
    pub audio: Mutex<Vec<AudioPacket>>,
}

/// Whether an H.264 RTP payload begins a keyframe (SPS, STAP-A with an SPS, or an IDR start).
fn key(payload: &[u8]) -> bool {
    match payload.first().map(|b| b & 0x1f) {
        Some(7) => true,
        Some(5) => true,
        Some(24) => payload.get(3).is_some_and(|h| h & 0x1f == 7),
        Some(28) => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == 5),
        _ => false,
    }
}

struct Handler {
    received: Arc<Received>,
    gathered: mpsc::Sender<()>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.received.clone();
        if track.kind().await == RtpCodecKind::Audio {
            tokio::spawn(async move {
                while let Some(event) = track.poll().await {
                    if let TrackRemoteEvent::OnRtpPacket(p) = event {
                        received.audio.lock().unwrap().push((
                            p.header.sequence_number,
                            p.header.timestamp,
                            p.header.payload_type,
                            p.payload.clone(),
                        ));
                    }
                }
            });
            return;
        }
        *received.track.lock().unwrap() = Some(track.clone());
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(p) = event else {
                    continue;
                };
                received.packets.fetch_add(1, Relaxed);
                {
                    let mut kept = received.rtp.lock().unwrap();
                    if kept.len() < KEEP_PACKETS
                        && let Ok(raw) = rtc::shared::marshal::Marshal::marshal(&p)
                    {
                        kept.push(raw.to_vec());
                    }
                }
                {
                    let mut pts = received.payload_types.lock().unwrap();
                    if !pts.contains(&p.header.payload_type) {
                        pts.push(p.header.payload_type);
                    }
                }
                let mut first = received.first_key_at.lock().unwrap();
                if first.is_none() && key(&p.payload) {
                    *first = Some(Instant::now());
                }
                if p.header.marker {
                    received.frames.fetch_add(1, Relaxed);
                    if first.is_some() {
                        received.frames_after_key.fetch_add(1, Relaxed);
                    }
                }
            }
        });
    }
}

/// A connected (or connecting) viewer.
pub struct Viewer {
    pub pc: Arc<dyn PeerConnection>,
    pub received: Arc<Received>,
    /// The WHEP session URL (absolute).
    pub location: String,
    /// When the POST was sent.
    pub started: Instant,
}

impl Viewer {
    /// Time from the POST to the first keyframe packet, if one came.
    pub fn time_to_keyframe(&self) -> Option<Duration> {
        self.received
            .first_key_at
            .lock()
            .unwrap()
            .map(|t| t - self.started)
    }

    /// Sends a PLI (picture loss indication) for the received video, as a decoder that lost
    /// its picture does.
    pub async fn send_pli(&self) {
        let track = self
            .received
            .track
            .lock()
            .unwrap()
            .clone()
            .expect("a video track");
        let media_ssrc = *track.ssrcs().await.first().unwrap();
        track
            .write_rtcp(vec![Box::new(PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            })])
            .await
            .unwrap();
    }

    /// Waits until `frames` decodable frames arrived or `within` passed; returns the count.
    pub async fn wait_frames(&self, frames: u64, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let n = self.received.frames_after_key.load(Relaxed);
            if n >= frames || Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Makes a recvonly video offer of H.264 only (all candidates included), as most browsers.
pub async fn offer(received: Arc<Received>) -> (Arc<dyn PeerConnection>, String) {
    offer_with(received, false, false).await
}

/// Makes a recvonly video offer of H.265 (`h265`) or H.264 only and, with `audio`, of Opus audio.
pub async fn offer_with(
    received: Arc<Received>,
    h265: bool,
    audio: bool,
) -> (Arc<dyn PeerConnection>, String) {
    let codec = if h265 {
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_HEVC.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            payload_type: CLIENT_H265_PT,
        }
    } else {
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_H264.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line:
                    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into(),
                rtcp_feedback: vec![],
            },
            payload_type: CLIENT_H264_PT,
        }
    };
    let mut media = MediaEngine::default();
    media.register_codec(codec, RtpCodecKind::Video).unwrap();
    if audio {
        let opus = RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                rtcp_feedback: vec![],
            },
            payload_type: CLIENT_OPUS_PT,
        };
        media.register_codec(opus, RtpCodecKind::Audio).unwrap();
    }
    let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
    let (gathered_tx, mut gathered) = mpsc::channel(1);
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_setting_engine(
            SettingEngineBuilder::new()
                .with_include_loopback_candidate(true)
                .build(),
        )
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler {
            received,
            gathered: gathered_tx,
        }) as Arc<dyn PeerConnectionEventHandler>)
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .unwrap();
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    pc.add_transceiver_from_kind(
        RtpCodecKind::Video,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    if audio {
        pc.add_transceiver_from_kind(
            RtpCodecKind::Audio,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    }
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(3), gathered.recv()).await;
    let sdp = pc.local_description().await.unwrap().sdp;
    (pc, sdp)
}

/// POSTs an offer to `url` with `token`; returns the raw response (the PC is closed unless 201).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    sdp: String,
) -> reqwest::Response {
    let mut req = client
        .post(url)
        .header("Content-Type", "application/sdp")
        .body(sdp);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// Opens a WHEP session at `base` `/whep/{camera}?stream=…` and applies the answer; panics unless
/// the gateway answers 201.
pub async fn connect(client: &reqwest::Client, base: &str, path: &str, token: &str) -> Viewer {
    connect_media(client, base, path, token, false, false).await
}

/// As [`connect`], offering to receive the camera's audio too.
pub async fn connect_with_audio(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
) -> Viewer {
    connect_media(client, base, path, token, false, true).await
}

/// As [`connect`], offering H.265 only when `h265`.
pub async fn connect_with(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    h265: bool,
) -> Viewer {
    connect_media(client, base, path, token, h265, false).await
}

async fn connect_media(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    h265: bool,
    audio: bool,
) -> Viewer {
    let received = Arc::new(Received::default());
    let (pc, sdp) = offer_with(received.clone(), h265, audio).await;
    let started = Instant::now();
    let r = post(client, &format!("{base}{path}"), Some(token), sdp).await;
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let content_type = r.headers().get("content-type").cloned();
    let body = r.text().await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(content_type.unwrap(), "application/sdp");
    pc.set_remote_description(RTCSessionDescription::answer(body).unwrap())
        .await
        .unwrap();
    Viewer {
        pc,
        received,
        location: format!("{base}{}", location.expect("a Location header")),
        started,
    }
}

/// Decodes H.264 RTP packets (as received, payload type [`CLIENT_H264_PT`]) with GStreamer's
/// decoder; returns the number of pictures decoded.
pub fn decode_h264(packets: &[Vec<u8>]) -> usize {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=application/x-rtp,media=video,encoding-name=H264,\
         clock-rate=90000,payload={CLIENT_H264_PT} ! rtph264depay ! h264parse ! avdec_h264 ! \
         appsink name=sink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gstreamer_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gstreamer_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for p in packets {
        src.push_buffer(gst::Buffer::from_slice(p.clone())).unwrap();
    }
    src.end_of_stream().unwrap();
    let mut decoded = 0;
    while sink
        .try_pull_sample(gst::ClockTime::from_seconds(10))
        .is_some()
    {
        decoded += 1;
    }
    pipeline.set_state(gst::State::Null).unwrap();
    decoded
}
