//! One relay per camera stream: the shared ingest's packets fanned out to every viewer, the GOP
//! cache, the source state and the viewer count. Packets pass as the camera sent them, renumbered
//! into one continuous stream across source reconnections ([`super::rtp::Renumber`]); an H.264
//! packet too big for WebRTC is split. The first viewer starts the ingest
//! ([`super::ingest`]); the last one leaving stops it after the linger time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use bl_proto::CameraId;
use bl_proto::stream::Stream;
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::codec::VideoCodec;
use super::gop::GopCache;
use super::rtp::{self, Renumber};

/// What a viewer can be told about a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum SourceState {
    /// The ingest is connecting (first start or a retry).
    Connecting,
    /// Packets are flowing.
    Live,
    /// The last attempt failed; the ingest retries after `retryInSecs`.
    #[serde(rename_all = "camelCase")]
    Offline {
        /// Why, for people.
        reason: String,
        /// When the next attempt starts.
        retry_in_secs: u64,
    },
    /// The camera sends a codec the gateway cannot relay (neither H.264 nor H.265); not retried.
    #[serde(rename_all = "camelCase")]
    UnsupportedCodec {
        /// The camera's codec, e.g. `JPEG`.
        codec: String,
    },
}

impl SourceState {
    /// The label used in metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            SourceState::Connecting => "connecting",
            SourceState::Live => "live",
            SourceState::Offline { .. } => "offline",
            SourceState::UnsupportedCodec { .. } => "unsupported_codec",
        }
    }
}

/// One RTP packet as fanned out: its bytes and whether it begins a keyframe.
pub type Packet = (Bytes, bool);

/// How many packets a slow viewer may fall behind before it skips to the next keyframe: one ring
/// shared by all viewers (each holds only its place in it), so a stalled viewer costs no memory.
pub const FANOUT_BUFFER: usize = 1024;

/// The relay of one camera stream.
pub struct Relay {
    /// The camera.
    pub camera: CameraId,
    /// Which of its streams.
    pub stream: Stream,
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Packet>,
    /// The camera's audio as Opus RTP ([`super::audio`]), fanned out beside the video.
    audio: broadcast::Sender<Bytes>,
    has_audio: std::sync::atomic::AtomicBool,
    /// Opus packets of the camera's audio.
    pub audio_packets_in: AtomicU64,
    state: watch::Sender<SourceState>,
    /// Cancelled to stop the ingest.
    pub stop: CancellationToken,
    /// Packets received from the source.
    pub packets_in: AtomicU64,
    /// Bytes received from the source.
    pub bytes_in: AtomicU64,
    /// Keyframe requests (PLI/FIR) from viewers.
    pub keyframe_requests: AtomicU64,
    /// Ingest (re)starts.
    pub starts: AtomicU64,
    /// Wakes an ingest waiting to retry: a viewer arrived, so retry now rather than after the
    /// backoff.
    pub retry_now: tokio::sync::Notify,
    keyframe_wanted: std::sync::atomic::AtomicBool,
    /// Whether the source sends H.265 (set by the ingest before its first packet).
    h265: AtomicBool,
}

struct Inner {
    cache: GopCache,
    renumber: Renumber,
    /// The camera's H.264 parameter sets from its SDP, as a STAP-A payload.
    parameter_sets: Option<Bytes>,
    viewers: usize,
    /// Bumped on every join, so a linger timer knows whether someone came back meanwhile.
    generation: u64,
}

/// What a joining viewer starts from: the cached GOP, then the live packets.
pub struct Joined {
    /// The cached packets, from the last keyframe.
    pub backlog: Vec<Bytes>,
    /// Everything after the backlog.
    pub rx: broadcast::Receiver<Packet>,
    /// The camera's audio (Opus RTP), from now on; silent for a camera without audio.
    pub audio: broadcast::Receiver<Bytes>,
    /// The camera's H.264 parameter sets from its SDP (a STAP-A payload), for a keyframe that
    /// lacks them in band.
    pub parameter_sets: Option<Bytes>,
}

impl Relay {
    /// A relay without viewers, connecting.
    pub fn new(camera: CameraId, stream: Stream, gop_cache_bytes: usize) -> Self {
        Self {
            camera,
            stream,
            inner: Mutex::new(Inner {
                cache: GopCache::new(gop_cache_bytes),
                renumber: Renumber::default(),
                parameter_sets: None,
                viewers: 0,
                generation: 0,
            }),
            tx: broadcast::channel(FANOUT_BUFFER).0,
            // 2 s of 20 ms frames: audio is live, a viewer that far behind drops some
            audio: broadcast::channel(100).0,
            has_audio: std::sync::atomic::AtomicBool::new(false),
            audio_packets_in: AtomicU64::new(0),
            state: watch::channel(SourceState::Connecting).0,
            stop: CancellationToken::new(),
            packets_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            starts: AtomicU64::new(0),
            retry_now: tokio::sync::Notify::new(),
            keyframe_wanted: std::sync::atomic::AtomicBool::new(false),
            h265: AtomicBool::new(false),
        }
    }

    /// Called by the ingest for every RTP packet (on a GStreamer streaming thread; never blocks
    /// long). A malformed packet is dropped.
    pub fn push(&self, packet: &[u8]) {
        if packet.len() < 12 || gop_payload(packet).is_none() {
            return;
        }
        self.packets_in.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(packet.len() as u64, Relaxed);
        let codec = self.codec();
        let pieces = match codec {
            VideoCodec::H264 if packet.len() > rtp::MAX_RTP_SIZE => {
                rtp::split_h264(packet, rtp::MAX_RTP_SIZE)
            }
            _ => vec![packet.to_vec()],
        };
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (seq, ts) = inner.renumber.next(
            rtp::ssrc(packet),
            rtp::seq(packet),
            rtp::timestamp(packet),
            now,
        );
        for (i, mut piece) in pieces.into_iter().enumerate() {
            let seq = if i == 0 { seq } else { inner.renumber.extra() };
            rtp::set_seq_and_timestamp(&mut piece, seq, ts);
            let key = codec.starts_keyframe(&piece);
            let piece = Bytes::from(piece);
            inner.cache.push(piece.clone(), key);
            // No receivers is fine: the cache still fills for the next viewer.
            let _ = self.tx.send((piece, key));
        }
        drop(inner);
        if self.state.borrow().label() != "live" {
            self.set_state(SourceState::Live);
        }
    }

    /// Adds a viewer: the cached GOP and a receiver for what follows, taken under one lock so
    /// nothing is missed or sent twice.
    pub fn join(&self) -> Joined {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.viewers += 1;
        inner.generation += 1;
        Joined {
            backlog: inner.cache.packets().to_vec(),
            rx: self.tx.subscribe(),
            audio: self.audio.subscribe(),
            parameter_sets: inner.parameter_sets.clone(),
        }
    }

    /// Records the camera's H.264 parameter sets from its SDP's `sprop-parameter-sets`.
    pub fn set_parameter_sets(&self, sprop: &str) {
        let sets = rtp::parameter_sets_stap_a(sprop);
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .parameter_sets = sets;
    }

    /// Called by the audio branch of the ingest for every Opus RTP packet.
    pub fn push_audio(&self, packet: Bytes) {
        self.audio_packets_in.fetch_add(1, Relaxed);
        let _ = self.audio.send(packet);
    }

    /// The ingest found and linked the camera's audio.
    pub fn set_has_audio(&self) {
        self.has_audio.store(true, Relaxed);
    }

    /// Whether viewers get the camera's audio (known once the source is live).
    pub fn has_audio(&self) -> bool {
        self.has_audio.load(Relaxed)
    }

    /// Removes a viewer; returns the generation to pass to [`Relay::idle_since`] when it was the
    /// last one.
    pub fn leave(&self) -> Option<u64> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.viewers = inner.viewers.saturating_sub(1);
        (inner.viewers == 0).then_some(inner.generation)
    }

    /// True when nobody joined since the last viewer left at `generation`.
    pub fn idle_since(&self, generation: u64) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.viewers == 0 && inner.generation == generation
    }

    /// Viewers now.
    pub fn viewers(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).viewers
    }

    /// Bytes in the GOP cache.
    pub fn cache_bytes(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cache
            .bytes()
    }

    /// Sets the source state (and drops the cache unless live: a stale GOP must not be replayed
    /// after a reconnection).
    pub fn set_state(&self, state: SourceState) {
        if state != SourceState::Live {
            self.inner
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .cache
                .clear();
        }
        tracing::info!(camera_id = %self.camera, stream = self.stream.as_str(), state = state.label(), "source state");
        self.state.send_replace(state);
    }

    /// The source state now.
    pub fn state(&self) -> SourceState {
        self.state.borrow().clone()
    }

    /// Watches the source state.
    pub fn watch_state(&self) -> watch::Receiver<SourceState> {
        self.state.subscribe()
    }

    /// A viewer asked for a keyframe; the ingest asks its source for one at the next chance.
    pub fn request_keyframe(&self) {
        self.keyframe_requests.fetch_add(1, Relaxed);
        self.keyframe_wanted.store(true, Relaxed);
    }

    /// Records the source's codec (the ingest calls it before handing over the first packet).
    pub fn set_codec(&self, codec: VideoCodec) {
        self.h265.store(codec == VideoCodec::H265, Relaxed);
    }

    /// The codec of the packets this relay fans out.
    pub fn codec(&self) -> VideoCodec {
        if self.h265.load(Relaxed) {
            VideoCodec::H265
        } else {
            VideoCodec::H264
        }
    }

    /// Takes a pending keyframe request.
    pub fn take_keyframe_request(&self) -> bool {
        self.keyframe_wanted.swap(false, Relaxed)
    }
}

use super::gop::rtp_payload as gop_payload;

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(nal: u8) -> Bytes {
        Bytes::from(vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, nal])
    }

    #[test]
    fn a_joining_viewer_gets_the_cached_gop_then_only_newer_packets() {
        let r = Relay::new("cam-1".parse().unwrap(), Stream::Sub, 1 << 20);
        r.push(&pkt(0x67));
        r.push(&pkt(0x41));
        let mut j = r.join();
        r.push(&pkt(0x42));
        assert_eq!(j.backlog, vec![pkt(0x67), pkt(0x41)]);
        assert_eq!(j.rx.try_recv().unwrap(), (pkt(0x42), false));
        assert!(j.rx.try_recv().is_err());
        assert_eq!(r.state(), SourceState::Live);
    }

    #[test]
    fn the_linger_only_ends_a_relay_nobody_rejoined() {
        let r = Relay::new("cam-1".parse().unwrap(), Stream::Main, 1 << 20);
        let _a = r.join();
        let _b = r.join();
        assert_eq!(r.leave(), None);
        let generation = r.leave().unwrap();
        assert!(r.idle_since(generation));
        let _c = r.join();
        assert!(!r.idle_since(generation));
    }
}
