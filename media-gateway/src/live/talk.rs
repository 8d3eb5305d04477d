//! Talk-down (DESIGN §3.3): an operator's microphone arrives by WHIP ([`super::talk_http`],
//! [`super::talk_peer`]) and the camera's edge box pulls it from the RTSP server
//! ([`super::talk_rtsp`]) to play it to the camera's backchannel or its own speaker.
//!
//! **One talk channel per camera, one talker on it: a newer WHIP session of the camera takes the
//! channel over (dispatch's floor control decides who gets a `talk` token; the gateway obeys the
//! newest). The first session of a camera mounts the pull path and asks the edge (`talk-start`
//! through dispatch); the end of the last one unmounts it, disconnects the edge and says
//! `talk-stop`.** Talkers change without the edge noticing: every packet goes out under the
//! channel's SSRC with continuous sequence numbers and timestamps.
//!
//! States (`GET /talk/{camera}/status`): `connecting` until the operator's connection is up and
//! the edge pulls, `talking`, `edgeUnreachable` (dispatch could not ask the edge, or it did not
//! pull within `start_timeout`; the operator's audio still arrives and a late pull still works),
//! and `ended` (with the reason) after the last session.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bl_proto::CameraId;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Live;
use super::peer::PeerEvent;
use super::push::PushServer;
use super::talk_peer::{OPUS_PAYLOAD_TYPE, TalkPacket, TalkPeer};
use super::talk_rtsp::TalkFeed;
use crate::voicerec::{Voice, VoiceKind, VoiceMeta};
use bl_proto::stream::Stream;

/// 20 ms at 48 kHz: the timestamp step put between two talkers' audio.
const FRAME_TICKS: u32 = 960;

/// How long an operator's connection may take to come up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The talk channels of this gateway (part of [`Live`]).
#[derive(Default)]
pub struct Talks {
    channels: Mutex<HashMap<CameraId, Arc<Channel>>>,
    /// Talk sessions (WHIP) opened since start.
    pub sessions_opened: AtomicU64,
    /// Opus packets received from operators.
    pub packets_in: AtomicU64,
}

/// Why a talk session cannot start.
#[derive(Debug)]
pub enum TalkError {
    /// This gateway has no RTSP server for edges to pull from (`live.push_listen`).
    NoRtspServer,
}

/// One camera's talk: who talks now and where the audio goes.
struct Channel {
    camera: CameraId,
    feed: Arc<TalkFeed>,
    current: Mutex<Option<Current>>,
    rewriter: Mutex<Rewriter>,
    /// The current talker's connection is up.
    connected: AtomicBool,
    /// Why the edge cannot be reached, until it pulls.
    edge_error: Mutex<Option<String>>,
    /// Set once the last session ended; a new session opens a new channel.
    ended: Mutex<Option<String>>,
    packets_in: AtomicU64,
    started_at: DateTime<Utc>,
    stop: CancellationToken,
}

/// The session holding a channel.
struct Current {
    id: String,
    talker: String,
    stop: CancellationToken,
}

impl Channel {
    fn state(&self) -> (&'static str, Option<String>) {
        if let Some(reason) = self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return ("ended", Some(reason));
        }
        let pulled = self.feed.pullers.load(Relaxed) > 0;
        if !pulled
            && let Some(e) = self
                .edge_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        {
            return ("edgeUnreachable", Some(e));
        }
        if pulled && self.connected.load(Relaxed) {
            ("talking", None)
        } else {
            ("connecting", None)
        }
    }

    fn is_current(&self, id: &str) -> bool {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|c| c.id == id)
    }
}

/// Makes the packets of successive talkers one continuous RTP stream: one SSRC, sequence numbers
/// and timestamps carried on from the previous talker.
struct Rewriter {
    ssrc: u32,
    generation: u64,
    seq_offset: u16,
    ts_offset: u32,
    last_seq: u16,
    last_ts: u32,
    started: bool,
}

impl Rewriter {
    fn new() -> Self {
        Self {
            ssrc: rand::random(),
            generation: 0,
            seq_offset: 0,
            ts_offset: 0,
            last_seq: rand::random(),
            last_ts: rand::random(),
            started: false,
        }
    }

    /// The RTP packet to send for `p` of the talker numbered `generation`.
    fn rewrite(&mut self, generation: u64, p: &TalkPacket) -> Vec<u8> {
        if !self.started || generation != self.generation {
            self.seq_offset = self.last_seq.wrapping_add(1).wrapping_sub(p.seq);
            self.ts_offset = self
                .last_ts
                .wrapping_add(FRAME_TICKS)
                .wrapping_sub(p.timestamp);
            self.generation = generation;
            self.started = true;
        }
        let seq = p.seq.wrapping_add(self.seq_offset);
        let ts = p.timestamp.wrapping_add(self.ts_offset);
        self.last_seq = seq;
        self.last_ts = ts;
        rtp_packet(self.ssrc, seq, ts, p.marker, &p.payload)
    }
}

/// An RTP packet (RFC 3550, no CSRC, no extension) with the talk payload type.
pub(crate) fn rtp_packet(ssrc: u32, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + payload.len());
    out.push(0x80);
    out.push(OPUS_PAYLOAD_TYPE | if marker { 0x80 } else { 0 });
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

impl Live {
    /// The URL an edge pulls `camera`'s talk audio from, without the token.
    pub fn talk_pull_url(&self, push: &PushServer, camera: &CameraId) -> String {
        let base = match &self.settings.push_url_base {
            Some(b) => b.trim_end_matches('/').to_owned(),
            None => format!("rtsp://{}", push.addr()),
        };
        format!("{base}{}", PushServer::talk_path(camera))
    }

    /// Starts a talk session of `talker` on `camera`, taking the channel over from any earlier
    /// talker, and runs it in the background until DELETE, disconnection, takeover or shutdown.
    /// Returns its id.
    /// The session is recorded with the camera's own sound ([`crate::voicerec`]).
    pub fn start_talk(
        self: &Arc<Self>,
        camera: &CameraId,
        talker: String,
        peer: TalkPeer,
        events: mpsc::Receiver<PeerEvent>,
        packets: mpsc::Receiver<TalkPacket>,
    ) -> Result<String, TalkError> {
        self.open_talk(camera, talker, peer, events, packets, true)
    }

    /// A broadcast's leg of `camera`: a talk session that is not recorded on its own (the
    /// broadcast records the operator's voice once).
    pub(super) fn start_talk_leg(
        self: &Arc<Self>,
        camera: &CameraId,
        talker: String,
        events: mpsc::Receiver<PeerEvent>,
        packets: mpsc::Receiver<TalkPacket>,
    ) -> Result<String, TalkError> {
        self.open_talk(camera, talker, TalkPeer::detached(), events, packets, false)
    }

    fn open_talk(
        self: &Arc<Self>,
        camera: &CameraId,
        talker: String,
        peer: TalkPeer,
        events: mpsc::Receiver<PeerEvent>,
        packets: mpsc::Receiver<TalkPacket>,
        record: bool,
    ) -> Result<String, TalkError> {
        let push = self.push.clone().ok_or(TalkError::NoRtspServer)?;
        let id = hex::encode(rand::random::<[u8; 16]>());
        let stop = CancellationToken::new();
        let generation = GENERATION.fetch_add(1, Relaxed);
        let channel = {
            let mut channels = self
                .talks
                .channels
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let open = channels
                .get(camera)
                .filter(|c| c.ended.lock().unwrap_or_else(|e| e.into_inner()).is_none());
            let channel = match open {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(Channel {
                        camera: camera.clone(),
                        feed: Arc::new(TalkFeed::default()),
                        current: Mutex::new(None),
                        rewriter: Mutex::new(Rewriter::new()),
                        connected: AtomicBool::new(false),
                        edge_error: Mutex::new(None),
                        ended: Mutex::new(None),
                        packets_in: AtomicU64::new(0),
                        started_at: Utc::now(),
                        stop: CancellationToken::new(),
                    });
                    push.mount_talk(camera, &c.feed);
                    tokio::spawn(self.clone().reach_edge(push.clone(), c.clone()));
                    channels.insert(camera.clone(), c.clone());
                    c
                }
            };
            let previous = channel
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .replace(Current {
                    id: id.clone(),
                    talker: talker.clone(),
                    stop: stop.clone(),
                });
            if let Some(p) = previous {
                tracing::info!(camera_id = %camera, from = %p.talker, to = %talker, "talk taken over");
                p.stop.cancel();
            }
            channel.connected.store(false, Relaxed);
            channel
        };
        self.talks.sessions_opened.fetch_add(1, Relaxed);
        let recording = if record {
            self.record_talk(camera, &talker)
        } else {
            None
        };
        let live = self.clone();
        let span = tracing::info_span!("whip", camera = %camera, session = %id);
        let id2 = id.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                tracing::info!(talker = %talker, "talker joined");
                let voice = recording.as_ref().map(|(v, _)| v.as_ref());
                let reason = live
                    .forward_talk(&channel, &id2, generation, events, packets, &stop, voice)
                    .await;
                if let Some((voice, premises)) = recording {
                    premises.cancel();
                    tokio::spawn(voice.finish());
                }
                peer.close().await;
                live.end_talk(&push, &channel, &id2, reason).await;
            },
            span,
        ));
        Ok(id)
    }

    /// Starts recording a talk session of `talker` on `camera` with the camera's own sound,
    /// if this gateway records; the token stops the premises feed.
    fn record_talk(
        self: &Arc<Self>,
        camera: &CameraId,
        talker: &str,
    ) -> Option<(Arc<Voice>, CancellationToken)> {
        let voice = self.voice.get()?.start(VoiceMeta {
            kind: VoiceKind::Talk,
            talker: talker.to_owned(),
            cameras: vec![camera.clone()],
            broadcast: None,
            premises: true,
        })?;
        let stop = CancellationToken::new();
        tokio::spawn(
            self.clone()
                .feed_premises(camera.clone(), voice.clone(), stop.clone()),
        );
        Some((voice, stop))
    }

    /// Feeds the camera's own audio (the Opus the gateway makes for viewers, [`super::audio`])
    /// into `voice` until `stop`, opening the camera's stream if nobody watches. A camera without
    /// audio, or whose stream cannot be opened, leaves the premises side silent and says why.
    async fn feed_premises(
        self: Arc<Self>,
        camera: CameraId,
        voice: Arc<Voice>,
        stop: CancellationToken,
    ) {
        let source = match self.sources.source(&camera).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return voice.premises_absent("the camera has no video source on this gateway");
            }
            Err(e) => return voice.premises_absent(format!("the camera's source is unknown: {e}")),
        };
        if matches!(source, super::source::Source::Edge { .. }) {
            // An edge's push carries video only: asking it to push would bring no sound.
            return voice.premises_absent(
                "the camera's edge box sends video only: its sound does not reach the gateway",
            );
        }
        let joined = tokio::select! {
            () = stop.cancelled() => return voice.premises_absent("the talk ended before the camera's stream opened"),
            j = self.join(&camera, Stream::Main, &source, true) => j,
        };
        let (relay, mut joined) = match joined {
            Ok(j) => j,
            Err(e) => {
                let why = match e {
                    super::StartError::PushNotSupported => {
                        "this gateway cannot receive the camera's push".to_owned()
                    }
                    super::StartError::UnsupportedCodec(c) => {
                        format!("the camera's video codec {c} is not supported")
                    }
                    super::StartError::Offline(r) => {
                        format!("the camera's stream could not be opened: {r}")
                    }
                };
                return voice.premises_absent(why);
            }
        };
        if relay.has_audio() {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    p = joined.audio.recv() => match p {
                        Ok(p) => voice.push_premises(&p),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        } else {
            voice.premises_absent("the camera has no audio");
        }
        self.leave(&relay);
    }

    /// Forwards a talker's packets until the session stops; returns why it ended.
    #[allow(clippy::too_many_arguments)]
    async fn forward_talk(
        &self,
        channel: &Channel,
        id: &str,
        generation: u64,
        mut events: mpsc::Receiver<PeerEvent>,
        mut packets: mpsc::Receiver<TalkPacket>,
        stop: &CancellationToken,
        voice: Option<&Voice>,
    ) -> String {
        let connect_deadline = tokio::time::sleep(CONNECT_TIMEOUT);
        tokio::pin!(connect_deadline);
        loop {
            tokio::select! {
                () = stop.cancelled() => return "ended by the operator, another talker or shutdown".into(),
                e = events.recv() => match e {
                    Some(PeerEvent::Connected) => {
                        if channel.is_current(id) {
                            channel.connected.store(true, Relaxed);
                        }
                    }
                    Some(PeerEvent::KeyframeRequest) => {}
                    Some(PeerEvent::Closed) | None => return "the operator's connection closed".into(),
                },
                p = packets.recv() => {
                    let Some(p) = p else { return "the operator's audio ended".into() };
                    if !channel.is_current(id) {
                        continue;
                    }
                    self.talks.packets_in.fetch_add(1, Relaxed);
                    channel.packets_in.fetch_add(1, Relaxed);
                    if let Some(v) = voice {
                        v.push_center(&rtp_packet(0, p.seq, p.timestamp, p.marker, &p.payload));
                    }
                    let rtp = channel.rewriter.lock().unwrap_or_else(|e| e.into_inner()).rewrite(generation, &p);
                    channel.feed.send(&rtp);
                }
                () = &mut connect_deadline, if !channel.connected.load(Relaxed) => {
                    return "the operator's connection did not come up".into();
                }
            }
        }
    }

    /// A session ended: if it still held its channel, the channel ends with it.
    async fn end_talk(&self, push: &PushServer, channel: &Arc<Channel>, id: &str, reason: String) {
        {
            let mut current = channel.current.lock().unwrap_or_else(|e| e.into_inner());
            if current.as_ref().is_none_or(|c| c.id != id) {
                tracing::info!(reason = %reason, "talker left (taken over)");
                return;
            }
            *current = None;
            *channel.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
        }
        tracing::info!(reason = %reason, "talk ended");
        channel.stop.cancel();
        channel.feed.end();
        push.unmount_talk(&channel.camera);
        if let Some(edges) = &self.edges {
            edges.talk_stop(&channel.camera).await;
        }
    }

    /// Asks the camera's edge to pull (through dispatch) and notes when it does not.
    async fn reach_edge(self: Arc<Self>, push: Arc<PushServer>, channel: Arc<Channel>) {
        let camera = &channel.camera;
        if let Some(edges) = &self.edges {
            let url = self.talk_pull_url(&push, camera);
            if let Err(e) = edges.talk_start(camera, &url).await {
                tracing::warn!(camera_id = %camera, err = %e, "could not ask the edge to play talk audio");
                *channel.edge_error.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(format!("could not ask the camera's edge box to play: {e}"));
                return;
            }
        }
        let limit = self.settings.start_timeout;
        let pulled = tokio::time::timeout(limit, async {
            while channel.feed.pullers.load(Relaxed) == 0 {
                tokio::select! {
                    () = channel.stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
        .await;
        if pulled.is_err() {
            tracing::warn!(camera_id = %camera, "the edge did not pull talk audio in time");
            *channel.edge_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                "the camera's edge box did not pull the audio within {} s (offline, or it refused the command)",
                limit.as_secs()
            ));
        }
    }

    /// Ends a talk session of `camera`; false if there is no such session.
    pub fn end_talk_session(&self, camera: &CameraId, id: &str) -> bool {
        let channels = self
            .talks
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(channel) = channels.get(camera) else {
            return false;
        };
        let current = channel.current.lock().unwrap_or_else(|e| e.into_inner());
        match current.as_ref() {
            Some(c) if c.id == id => {
                c.stop.cancel();
                true
            }
            _ => false,
        }
    }

    /// The talk status of `camera` (`GET /talk/{camera}/status`).
    pub fn talk_status(&self, camera: &CameraId) -> Value {
        let channels = self
            .talks
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(c) = channels.get(camera) else {
            return json!({"v": 1, "camera": camera.as_str(), "state": "idle", "reason": null,
                          "talker": null, "packetsIn": 0, "packetsOut": 0, "pullers": 0, "since": null});
        };
        let (state, reason) = c.state();
        let talker = c
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|t| t.talker.clone());
        json!({
            "v": 1,
            "camera": camera.as_str(),
            "state": state,
            "reason": reason,
            "talker": talker,
            "packetsIn": c.packets_in.load(Relaxed),
            "packetsOut": c.feed.packets_out.load(Relaxed),
            "pullers": c.feed.pullers.load(Relaxed),
            "since": c.started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        })
    }

    /// Ends every talk session (shutdown).
    pub fn shutdown_talk(&self) {
        for c in self
            .talks
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            if let Some(cur) = c.current.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                cur.stop.cancel();
            }
        }
    }

    /// Prometheus text for talk.
    pub fn render_talk_metrics(&self, out: &mut String) {
        let channels = self
            .talks
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let open = channels
            .values()
            .filter(|c| c.ended.lock().unwrap_or_else(|e| e.into_inner()).is_none())
            .count();
        let out_total: u64 = channels
            .values()
            .map(|c| c.feed.packets_out.load(Relaxed))
            .sum();
        let _ = writeln!(
            out,
            "# TYPE bl_gateway_talk_sessions gauge\nbl_gateway_talk_sessions {open}"
        );
        let _ = writeln!(
            out,
            "# TYPE bl_gateway_talk_sessions_opened_total counter\nbl_gateway_talk_sessions_opened_total {}",
            self.talks.sessions_opened.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE bl_gateway_talk_packets_in_total counter\nbl_gateway_talk_packets_in_total {}",
            self.talks.packets_in.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE bl_gateway_talk_packets_out_total counter\nbl_gateway_talk_packets_out_total {out_total}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, timestamp: u32) -> TalkPacket {
        TalkPacket {
            seq,
            timestamp,
            marker: false,
            payload: bytes::Bytes::from_static(b"opus"),
        }
    }

    fn header(rtp: &[u8]) -> (u8, u16, u32, u32) {
        (
            rtp[1] & 0x7f,
            u16::from_be_bytes([rtp[2], rtp[3]]),
            u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]),
            u32::from_be_bytes([rtp[8], rtp[9], rtp[10], rtp[11]]),
        )
    }

    #[test]
    fn a_new_talker_continues_the_previous_talkers_sequence_timestamps_and_ssrc() {
        let mut r = Rewriter::new();
        let a1 = r.rewrite(1, &packet(100, 5_000));
        let a2 = r.rewrite(1, &packet(101, 5_960));
        let b1 = r.rewrite(2, &packet(9, 70));
        let b2 = r.rewrite(2, &packet(10, 1_030));
        let (pt, s1, t1, ssrc) = header(&a1);
        assert_eq!(pt, OPUS_PAYLOAD_TYPE);
        assert_eq!(
            header(&a2),
            (pt, s1.wrapping_add(1), t1.wrapping_add(960), ssrc)
        );
        assert_eq!(
            header(&b1),
            (pt, s1.wrapping_add(2), t1.wrapping_add(1920), ssrc)
        );
        assert_eq!(
            header(&b2),
            (pt, s1.wrapping_add(3), t1.wrapping_add(2880), ssrc)
        );
        assert_eq!(&b2[12..], b"opus");
    }
}
