//! One simulated viewer: a receive-only webrtc-rs peer connection (ICE, DTLS-SRTP, NACK and RTCP
//! reports as a browser has them) that counts what arrives. How the SDP is exchanged is the
//! server's business ([`crate::gateway`] offers over WHEP, [`crate::janus`] answers Janus's
//! offer); everything after is the same for both.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MediaEngine};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};

use crate::feed::{Arrivals, packet_key};

/// What a viewer received.
#[derive(Default)]
pub struct Stats {
    /// RTP packets.
    pub packets: AtomicU64,
    /// Highest extended sequence number seen (0 before the first packet).
    pub highest_seq: AtomicU64,
    /// Packets that came after a higher sequence number (retransmissions after a NACK, or
    /// reordering).
    pub late: AtomicU64,
    /// ICE and DTLS are up.
    pub connected: AtomicBool,
    /// When the first packet of a keyframe arrived.
    first_key_at: Mutex<Option<Instant>>,
    /// Per packet: its payload's key, when it arrived, and whether it belongs to a keyframe
    /// (probe viewers only). Matched to the tap's arrivals only when measured, so that the tap has
    /// seen every copy of a repeated payload by then.
    received: Mutex<Vec<(u64, Instant, bool)>>,
}

/// The latency samples of a measuring window.
pub struct Latencies {
    /// Microseconds from the tap to the probe, and whether the packet belongs to a keyframe.
    pub samples: Vec<(u32, bool)>,
    /// Packets not measured: their payload reached the tap more than once (or is forgotten).
    pub unmatched: usize,
}

impl Stats {
    /// Matches the packets received since the last call with the tap's arrivals.
    pub fn take_latencies(&self, tap: &Arrivals) -> Latencies {
        let received = std::mem::take(&mut *self.received.lock().unwrap());
        let total = received.len();
        let samples: Vec<(u32, bool)> = received
            .into_iter()
            .filter_map(|(key, at, in_keyframe)| {
                let us = at.saturating_duration_since(tap.get(key)?).as_micros();
                Some((us.min(u128::from(u32::MAX)) as u32, in_keyframe))
            })
            .collect();
        Latencies {
            unmatched: total - samples.len(),
            samples,
        }
    }
}

/// Whether an H.264 RTP payload begins a keyframe (SPS, STAP-A with an SPS, or an IDR start).
fn keyframe_start(payload: &[u8]) -> bool {
    match payload.first().map(|b| b & 0x1f) {
        Some(7 | 5) => true,
        Some(24) => payload.get(3).is_some_and(|h| h & 0x1f == 7),
        Some(28) => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == 5),
        _ => false,
    }
}

struct Handler {
    stats: Arc<Stats>,
    /// Set for the viewer whose latency is measured.
    probe: bool,
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
        self.stats
            .connected
            .store(state == RTCPeerConnectionState::Connected, Relaxed);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let stats = self.stats.clone();
        let probe = self.probe;
        tokio::spawn(async move {
            // Extended sequence number: 16-bit wraps counted.
            let mut highest: Option<u64> = None;
            // The RTP timestamp of the last keyframe: packets with it are the keyframe's.
            let mut keyframe_ts = None;
            while let Some(event) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(p) = event else {
                    continue;
                };
                let now = Instant::now();
                if keyframe_start(&p.payload) {
                    keyframe_ts = Some(p.header.timestamp);
                }
                let in_keyframe = keyframe_ts == Some(p.header.timestamp);
                if probe {
                    stats
                        .received
                        .lock()
                        .unwrap()
                        .push((packet_key(&p.payload), now, in_keyframe));
                }
                stats.packets.fetch_add(1, Relaxed);
                let seq = u64::from(p.header.sequence_number);
                let ext = match highest {
                    None => seq + (1 << 16),
                    Some(h) => {
                        // The candidate nearest to the highest so far.
                        let base = h & !0xffff;
                        [base.saturating_sub(1 << 16), base, base + (1 << 16)]
                            .into_iter()
                            .map(|b| b + seq)
                            .min_by_key(|c| c.abs_diff(h))
                            .unwrap_or(h)
                    }
                };
                if highest.is_none_or(|h| ext > h) {
                    highest = Some(ext);
                    stats.highest_seq.store(ext, Relaxed);
                } else {
                    stats.late.fetch_add(1, Relaxed);
                }
                let mut first = stats.first_key_at.lock().unwrap();
                if first.is_none() && keyframe_start(&p.payload) {
                    *first = Some(now);
                }
            }
        });
    }
}

/// A viewer, connected or connecting.
pub struct Viewer {
    pc: Arc<dyn PeerConnection>,
    pub stats: Arc<Stats>,
    /// When the viewer asked to watch.
    pub started: Instant,
    /// Keeps server-side state alive (Janus's session) as long as the viewer.
    pub _session: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Viewer {
    /// Time from asking to watch to the first keyframe packet, waiting up to `within`.
    pub async fn first_frame(&self, within: Duration) -> Option<Duration> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(at) = *self.stats.first_key_at.lock().unwrap() {
                return Some(at - self.started);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// A peer connection in the making: the SDP exchange is left to the caller.
pub struct Pending {
    pub pc: Arc<dyn PeerConnection>,
    pub stats: Arc<Stats>,
    gathered: mpsc::Receiver<()>,
}

impl Pending {
    /// A peer connection that receives H.264 (under `payload_type` when it offers) on a UDP
    /// socket bound to `ip`.
    pub async fn new(
        ip: std::net::IpAddr,
        payload_type: u8,
        probe: bool,
    ) -> anyhow::Result<Pending> {
        let mut media = MediaEngine::default();
        media.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_H264.to_owned(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line: media_gateway::live::peer::H264_FMTP.into(),
                    rtcp_feedback: vec![],
                },
                payload_type,
            },
            RtpCodecKind::Video,
        )?;
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let stats = Arc::new(Stats::default());
        let (gathered_tx, gathered) = mpsc::channel(1);
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler {
                stats: stats.clone(),
                probe,
                gathered: gathered_tx,
            }) as Arc<dyn PeerConnectionEventHandler>)
            .with_udp_addrs(vec![format!("{ip}:0")])
            .with_runtime(crate::runtime::BigReceiveBuffers::shared())
            .build()
            .await?;
        Ok(Pending {
            pc: Arc::new(pc),
            stats,
            gathered,
        })
    }

    async fn local_sdp(&mut self) -> anyhow::Result<String> {
        let _ = tokio::time::timeout(Duration::from_secs(3), self.gathered.recv()).await;
        Ok(self
            .pc
            .local_description()
            .await
            .ok_or_else(|| anyhow!("no local description"))?
            .sdp)
    }

    /// A receive-only video offer with its candidates.
    pub async fn offer(&mut self) -> anyhow::Result<String> {
        self.pc
            .add_transceiver_from_kind(
                RtpCodecKind::Video,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await?;
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        self.local_sdp().await
    }

    /// Applies the server's answer.
    pub async fn accept_answer(&self, sdp: String) -> anyhow::Result<()> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await
            .context("the answer was refused")
    }

    /// Answers the server's offer; returns the answer with its candidates.
    pub async fn answer(&mut self, offer: String) -> anyhow::Result<String> {
        self.pc
            .set_remote_description(RTCSessionDescription::offer(offer)?)
            .await
            .context("the offer was refused")?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        self.local_sdp().await
    }

    pub fn into_viewer(
        self,
        started: Instant,
        session: Option<Box<dyn std::any::Any + Send + Sync>>,
    ) -> Viewer {
        Viewer {
            pc: self.pc,
            stats: self.stats,
            started,
            _session: session,
        }
    }
}
