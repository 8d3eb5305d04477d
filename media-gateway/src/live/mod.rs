//! Live relay to browsers (DESIGN §3.3): per camera stream one shared ingest ([`ingest`]) feeding a
//! [`relay::Relay`] with a GOP cache ([`gop`]), fanned out to WHEP viewers ([`http`]) through the
//! WebRTC boundary ([`peer`], str0m: all viewers on one socket and one loop). Camera sources come
//! from [`source::Sources`].
//!
//! **One ingest per camera stream, however many viewers: the first viewer starts it, the last one
//! leaving stops it after the linger time; a new viewer starts from the last keyframe.**

pub mod audio;
pub mod broadcast;
pub mod broadcast_http;
pub mod codec;
pub mod edge;
pub mod feed;
pub mod gop;
pub mod http;
pub mod ingest;
pub mod peer;
pub mod push;
pub mod push_auth;
pub mod relay;
pub mod rtp;
pub mod source;
pub mod talk;
pub mod talk_http;
pub mod talk_peer;
pub mod talk_rtsp;
pub mod transcode;
pub mod webrtc_rs;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bl_proto::CameraId;
use bl_proto::stream::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use codec::VideoCodec;
use edge::EdgeLive;
use feed::ViewerFeed;
use ingest::{Backoff, PullTarget};
use peer::{Peer, PeerEvent, PeerSettings};
use push::PushServer;
use relay::{Joined, Relay, SourceState};
use source::{Source, Sources};

/// Live-relay settings (the `[live]` table, checked).
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// WebRTC sockets and advertised address.
    pub peer: PeerSettings,
    /// How long an ingest outlives its last viewer.
    pub linger: Duration,
    /// How long a WHEP request waits for a cold source to send video.
    pub start_timeout: Duration,
    /// Ingest retry timing.
    pub backoff: Backoff,
    /// Bound of each GOP cache in bytes.
    pub gop_cache_bytes: usize,
    /// Most WHEP sessions at once.
    pub max_sessions: usize,
    /// Origins allowed to call `/whep/*` from a browser (CORS).
    pub allowed_origins: Vec<String>,
    /// Where the RTSP RECORD server for edge pushes listens; None: edge-pushed cameras are refused
    /// (409 `push_not_supported`).
    pub push_listen: Option<SocketAddr>,
    /// What edges dial, e.g. `rtsp://gw.example:8554`; None: `rtsp://{bound address}`.
    pub push_url_base: Option<String>,
}

/// The relays and sessions of this gateway.
pub struct Live {
    /// Settings.
    pub settings: LiveSettings,
    /// The WHEP viewers' WebRTC engine (one socket, one loop for all viewers).
    pub whep: peer::Engine,
    /// Where cameras' media comes from.
    pub sources: Arc<dyn Sources>,
    /// The RTSP RECORD server edges push to, when `push_listen` is set.
    pub push: Option<Arc<PushServer>>,
    /// Who asks edges to push; None: edges push on their own (tests, static set-ups).
    pub edges: Option<Arc<dyn EdgeLive>>,
    relays: Mutex<HashMap<(CameraId, Stream), Arc<Relay>>>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Talk channels (WHIP in, RTSP pulls out).
    pub talks: talk::Talks,
    /// H.264 transcodes of H.265 cameras, for viewers that cannot play H.265.
    pub transcodes: transcode::Transcodes,
    /// Broadcasts: one WHIP ingest fanned out to many cameras' talk channels.
    pub broadcasts: broadcast::Broadcasts,
    /// Where talk and broadcast recordings go; unset: not recorded (no gateway signing key).
    pub voice: std::sync::OnceLock<Arc<crate::voicerec::VoiceRecordings>>,
    /// WHEP sessions opened since start.
    pub sessions_opened: AtomicU64,
    /// Packets sent to viewers.
    pub packets_out: AtomicU64,
    /// Packets a slow viewer skipped (it resumed at the next keyframe).
    pub packets_skipped: AtomicU64,
}

struct Session {
    camera: CameraId,
    stop: CancellationToken,
}

/// Why a viewer cannot be served now.
#[derive(Debug)]
pub enum StartError {
    /// The camera is pushed by its edge and this gateway has no push server configured.
    PushNotSupported,
    /// The camera's codec is neither H.264 nor H.265.
    UnsupportedCodec(String),
    /// The source did not send video in time or is failing.
    Offline(String),
}

impl Live {
    /// A relay manager with no relays yet.
    pub fn new(
        settings: LiveSettings,
        sources: Arc<dyn Sources>,
        push: Option<Arc<PushServer>>,
        edges: Option<Arc<dyn EdgeLive>>,
    ) -> Self {
        Self {
            whep: peer::Engine::new(settings.peer.clone()),
            settings,
            sources,
            push,
            edges,
            relays: Mutex::default(),
            sessions: Mutex::default(),
            talks: talk::Talks::default(),
            transcodes: transcode::Transcodes::default(),
            broadcasts: broadcast::Broadcasts::default(),
            voice: std::sync::OnceLock::new(),
            sessions_opened: AtomicU64::new(0),
            packets_out: AtomicU64::new(0),
            packets_skipped: AtomicU64::new(0),
        }
    }

    /// The relay of a camera stream, if running.
    pub fn relay(&self, camera: &CameraId, stream: Stream) -> Option<Arc<Relay>> {
        self.relays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(camera.clone(), stream))
            .cloned()
    }

    /// Joins the relay of `camera`/`stream`, starting its ingest if none runs, and waits until it
    /// is live (or fails). An H.265 camera's viewer that cannot play H.265 (`accepts_h265` false)
    /// joins its H.264 transcode instead ([`transcode`]). The returned viewer must be passed to
    /// [`Live::leave`] when done.
    pub async fn join(
        self: &Arc<Self>,
        camera: &CameraId,
        stream: Stream,
        source: &Source,
        accepts_h265: bool,
    ) -> Result<(Arc<Relay>, Joined), StartError> {
        if matches!(source, Source::Edge { .. }) && self.push.is_none() {
            return Err(StartError::PushNotSupported);
        }
        let (relay, joined) = {
            let mut relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
            let relay = relays
                .entry((camera.clone(), stream))
                .or_insert_with(|| {
                    let relay = Arc::new(Relay::new(camera.clone(), stream, self.settings.gop_cache_bytes));
                    tracing::info!(camera_id = %camera, stream = stream.as_str(), "starting ingest");
                    match source {
                        Source::Pull { username, password, .. } => {
                            let target = PullTarget {
                                url: source.pull_url(stream).unwrap_or_default().to_owned(),
                                username: username.clone(),
                                password: password.clone(),
                            };
                            tokio::spawn(ingest::supervise(relay.clone(), target, self.settings.backoff));
                        }
                        Source::Edge { edge_id } => {
                            if let Some(push) = &self.push {
                                tokio::spawn(edge::supervise(self.clone(), push.clone(), relay.clone(), edge_id.clone()));
                            }
                        }
                    }
                    relay
                })
                .clone();
            let joined = relay.join();
            (relay, joined)
        };
        let mut state = relay.watch_state();
        let ready = tokio::time::timeout(self.settings.start_timeout, async {
            // An offline state seen on arrival is the previous attempt's: retry now and wait for
            // that attempt's outcome.
            let mut first = true;
            loop {
                let now = state.borrow_and_update().clone();
                match now {
                    SourceState::Live => return Ok(()),
                    SourceState::UnsupportedCodec { codec } => {
                        return Err(StartError::UnsupportedCodec(codec));
                    }
                    SourceState::Offline { .. } if first => relay.retry_now.notify_one(),
                    SourceState::Offline { reason, .. } => return Err(StartError::Offline(reason)),
                    SourceState::Connecting => {}
                }
                first = false;
                if state.changed().await.is_err() {
                    return Err(StartError::Offline("the ingest ended".into()));
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(StartError::Offline(
                "no video from the camera in time".into(),
            ))
        });
        match ready {
            Ok(()) if relay.codec() == VideoCodec::H265 && !accepts_h265 => {
                self.join_transcoded(&relay, joined).await
            }
            Ok(()) => Ok((relay, joined)),
            Err(e) => {
                self.leave(&relay);
                Err(e)
            }
        }
    }

    /// The URL an edge pushes `stream` of `camera` to, without the token (the edge appends
    /// `/{token}`).
    pub fn push_url(&self, push: &PushServer, camera: &CameraId, stream: Stream) -> String {
        let base = match &self.settings.push_url_base {
            Some(b) => b.trim_end_matches('/').to_owned(),
            None => format!("rtsp://{}", push.addr()),
        };
        format!("{base}{}", PushServer::path(camera, stream))
    }

    /// A viewer of `relay` left; the last one starts the linger timer.
    pub fn leave(self: &Arc<Self>, relay: &Arc<Relay>) {
        let Some(generation) = relay.leave() else {
            return;
        };
        let live = self.clone();
        let relay = relay.clone();
        tokio::spawn(async move {
            tokio::time::sleep(live.settings.linger).await;
            let mut relays = live.relays.lock().unwrap_or_else(|e| e.into_inner());
            let mut transcodes = live.transcodes.lock();
            if relay.idle_since(generation) {
                tracing::info!(camera_id = %relay.camera, stream = relay.stream.as_str(), "no viewers after the linger; stopping ingest");
                relay.stop.cancel();
                remove_relay(&mut relays, &relay);
                remove_relay(&mut transcodes, &relay);
            }
        });
    }

    /// Registers a session and runs it in the background until DELETE, the viewer's disconnection or
    /// shutdown. Returns its id.
    pub fn start_session(
        self: &Arc<Self>,
        relay: Arc<Relay>,
        joined: Joined,
        peer: Peer,
        events: tokio::sync::mpsc::Receiver<PeerEvent>,
    ) -> String {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let stop = CancellationToken::new();
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.clone(),
                Session {
                    camera: relay.camera.clone(),
                    stop: stop.clone(),
                },
            );
        self.sessions_opened.fetch_add(1, Relaxed);
        let live = self.clone();
        let span = tracing::info_span!("whep", camera = %relay.camera, session = %id);
        let id2 = id.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                tracing::info!("viewer joined");
                live.forward(&relay, joined, &peer, events, &stop).await;
                peer.close().await;
                live.sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id2);
                live.leave(&relay);
                tracing::info!("viewer left");
            },
            span,
        ));
        id
    }

    async fn forward(
        &self,
        relay: &Relay,
        joined: Joined,
        peer: &Peer,
        mut events: tokio::sync::mpsc::Receiver<PeerEvent>,
        stop: &CancellationToken,
    ) {
        let (mut feed, mut audio) = ViewerFeed::new(joined, rand::random());
        let with_audio = peer.has_audio();
        // The backlog waits until the connection is up: packets written earlier would be lost.
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                e = events.recv() => match e {
                    Some(PeerEvent::Connected) => break,
                    Some(PeerEvent::KeyframeRequest) => relay.request_keyframe(),
                    Some(PeerEvent::Closed) | None => return,
                },
                () = tokio::time::sleep(Duration::from_secs(30)) => {
                    tracing::info!("viewer never connected");
                    return;
                }
            }
        }
        // Packets that arrived while connecting follow the backlog (bounded by the relay's ring)
        // so the picture stays continuous.
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                e = events.recv() => match e {
                    Some(PeerEvent::KeyframeRequest) => relay.request_keyframe(),
                    Some(PeerEvent::Connected) => {}
                    Some(PeerEvent::Closed) | None => return,
                },
                p = feed.next() => {
                    let Some(out) = p else { return };
                    if let Err(e) = peer.send(&out.rtp, out.seq).await {
                        tracing::debug!(err = %e, "send failed");
                    }
                    self.packets_out.fetch_add(1, Relaxed);
                    let skipped = feed.take_skipped();
                    if skipped > 0 {
                        self.packets_skipped.fetch_add(skipped, Relaxed);
                    }
                },
                a = audio.recv(), if with_audio => match a {
                    Ok(bytes) => {
                        if let Err(e) = peer.send_audio(&bytes).await {
                            tracing::debug!(err = %e, "audio send failed");
                        }
                    }
                    // live audio: a late viewer just drops what it missed
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }

    /// Ends a session of `camera`; false if there is no such session.
    pub fn end_session(&self, camera: &CameraId, id: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        match sessions.get(id) {
            Some(s) if &s.camera == camera => {
                s.stop.cancel();
                true
            }
            _ => false,
        }
    }

    /// Sessions open now.
    pub fn session_count(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Ends every session and ingest (shutdown).
    pub fn shutdown(&self) {
        self.shutdown_talk();
        self.shutdown_broadcasts();
        for s in self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            s.stop.cancel();
        }
        for r in self
            .relays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .chain(self.transcodes.lock().values())
        {
            r.stop.cancel();
        }
        if let Some(push) = &self.push {
            push.stop();
        }
    }

    /// Prometheus text for the live relay.
    pub fn render_metrics(&self, out: &mut String) {
        self.render_talk_metrics(out);
        self.transcodes.render_metrics(out);
        let _ = writeln!(
            out,
            "# TYPE bl_gateway_live_sessions gauge\nbl_gateway_live_sessions {}",
            self.session_count()
        );
        let _ = writeln!(
            out,
            "# TYPE bl_gateway_live_sessions_opened_total counter\nbl_gateway_live_sessions_opened_total {}",
            self.sessions_opened.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE bl_gateway_live_packets_sent_total counter\nbl_gateway_live_packets_sent_total {}",
            self.packets_out.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE bl_gateway_live_packets_skipped_total counter\nbl_gateway_live_packets_skipped_total {}",
            self.packets_skipped.load(Relaxed)
        );
        let relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<_> = relays.values().collect();
        rows.sort_by(|a, b| (&a.camera, a.stream.as_str()).cmp(&(&b.camera, b.stream.as_str())));
        for (name, kind) in [
            ("bl_gateway_live_viewers", "gauge"),
            ("bl_gateway_live_source_up", "gauge"),
            ("bl_gateway_live_gop_cache_bytes", "gauge"),
            ("bl_gateway_live_ingest_packets_total", "counter"),
            ("bl_gateway_live_ingest_bytes_total", "counter"),
            ("bl_gateway_live_ingest_starts_total", "counter"),
            ("bl_gateway_live_keyframe_requests_total", "counter"),
            ("bl_gateway_live_audio_packets_total", "counter"),
        ] {
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for r in &rows {
                let v = match name {
                    "bl_gateway_live_viewers" => r.viewers() as u64,
                    "bl_gateway_live_source_up" => u64::from(r.state() == SourceState::Live),
                    "bl_gateway_live_gop_cache_bytes" => r.cache_bytes() as u64,
                    "bl_gateway_live_ingest_packets_total" => r.packets_in.load(Relaxed),
                    "bl_gateway_live_ingest_bytes_total" => r.bytes_in.load(Relaxed),
                    "bl_gateway_live_ingest_starts_total" => r.starts.load(Relaxed),
                    "bl_gateway_live_audio_packets_total" => r.audio_packets_in.load(Relaxed),
                    _ => r.keyframe_requests.load(Relaxed),
                };
                let state = if name == "bl_gateway_live_source_up" {
                    format!(",state=\"{}\"", r.state().label())
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "{name}{{camera=\"{}\",stream=\"{}\"{state}}} {v}",
                    r.camera,
                    r.stream.as_str(),
                );
            }
        }
    }
}

/// Removes `relay` from `map` if it is the one there (a camera stream's relay, or its transcode's).
fn remove_relay(map: &mut HashMap<(CameraId, Stream), Arc<Relay>>, relay: &Arc<Relay>) {
    let key = (relay.camera.clone(), relay.stream);
    if map.get(&key).is_some_and(|r| Arc::ptr_eq(r, relay)) {
        map.remove(&key);
    }
}
