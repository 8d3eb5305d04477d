//! `startLive` / `stopLive`: at most one supervised push per (camera, stream).
//!
//! - `startLive` starts the push and answers once video reaches the gateway (ok) or it cannot
//!   (`cameraOffline` when the camera fails, `upstreamFailed` when the gateway refuses or is out of
//!   reach). A `startLive` for a push already running answers ok at once and leaves the fresh token
//!   for its next reconnect.
//! - A push that was established and then breaks is retried with backoff (1 s doubling to 30 s);
//!   after [`GIVE_UP_AFTER`] failed retries in a row it ends (the gateway asks again, with a fresh
//!   token, while someone still watches).
//! - `stopLive` ends it; a push no `stopLive` ends stops after `[live] max_push_secs`, so a lost
//!   `stopLive` never streams forever.
//!
//! Pushes are separate RTSP sessions to the camera: ingest and detection are not touched.

use super::admit::{error, ok};
use super::push::{Push, PushError, Target};
use crate::evidence::Codec;
use bl_proto::CameraId;
use bl_proto::command::{Outcome, StartLive, StopLive, codes};
use bl_proto::stream::Stream;
use bl_service::secret::Secret;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How long the first attempt may take to get video to the gateway.
const ESTABLISH_WITHIN: Duration = Duration::from_secs(20);
/// Failed retries in a row after which an established push ends.
const GIVE_UP_AFTER: u32 = 5;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A camera's stream URLs (with credentials).
#[derive(Debug, Clone)]
pub struct StreamUrls {
    pub sub: Secret,
    pub main: Secret,
}

/// The pushes running on this box. Cheap to clone.
#[derive(Clone)]
pub struct LivePushes {
    cameras: Arc<HashMap<CameraId, StreamUrls>>,
    running: Arc<Mutex<HashMap<(CameraId, Stream), Running>>>,
    /// The codec each camera turned out to send, learnt by the first push.
    codecs: Arc<Mutex<HashMap<CameraId, Codec>>>,
    max_duration: Duration,
    next_id: Arc<AtomicU64>,
    shutdown: CancellationToken,
}

struct Running {
    id: u64,
    stop: CancellationToken,
    /// Where the next (re)connection goes: a newer `startLive` brings a fresh token.
    target: Arc<Mutex<Target>>,
}

impl LivePushes {
    /// Pushes of `cameras`, each stopped after `max_duration`, all at `shutdown`.
    pub fn new(
        cameras: HashMap<CameraId, StreamUrls>,
        max_duration: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        LivePushes {
            cameras: Arc::new(cameras),
            running: Arc::default(),
            codecs: Arc::default(),
            max_duration,
            next_id: Arc::default(),
            shutdown,
        }
    }

    /// How many pushes run now.
    pub fn running(&self) -> usize {
        self.running.lock().expect("pushes").len()
    }

    /// `startLive`: see the module's description.
    pub async fn start(&self, cmd: &StartLive) -> Outcome {
        let Some(urls) = self.cameras.get(&cmd.camera_id) else {
            return error(
                codes::UNKNOWN_CAMERA,
                format!("camera {} is not on this box", cmd.camera_id),
            );
        };
        let source = match cmd.stream {
            Stream::Main => urls.main.clone(),
            Stream::Sub => urls.sub.clone(),
        };
        let target = Target::new(&cmd.push_url, cmd.token.expose());
        let key = (cmd.camera_id.clone(), cmd.stream);
        let (first_tx, first_rx) = oneshot::channel();
        {
            let mut running = self.running.lock().expect("pushes");
            if let Some(r) = running.get(&key) {
                *r.target.lock().expect("push target") = target;
                return ok("already pushing");
            }
            let stop = self.shutdown.child_token();
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let target = Arc::new(Mutex::new(target));
            running.insert(
                key.clone(),
                Running {
                    id,
                    stop: stop.clone(),
                    target: target.clone(),
                },
            );
            let job = Job {
                key,
                id,
                source,
                target,
                stop,
                deadline: Instant::now() + self.max_duration,
                pushes: self.clone(),
            };
            tokio::task::spawn_blocking(move || job.supervise(first_tx));
        }
        first_rx
            .await
            .unwrap_or_else(|_| error(codes::INTERNAL, "the push ended before it answered"))
    }

    /// `stopLive`: ends the push if one runs; ok either way (a repeat changes nothing).
    pub fn stop(&self, cmd: &StopLive) -> Outcome {
        let key = (cmd.camera_id.clone(), cmd.stream);
        match self.running.lock().expect("pushes").remove(&key) {
            Some(r) => {
                r.stop.cancel();
                ok("stopped")
            }
            None => ok("was not pushing"),
        }
    }

    fn codec(&self, camera: &CameraId) -> Option<Codec> {
        self.codecs.lock().expect("codecs").get(camera).copied()
    }

    fn learn_codec(&self, camera: &CameraId, codec: Codec) {
        self.codecs
            .lock()
            .expect("codecs")
            .insert(camera.clone(), codec);
    }

    /// Forgets push `id` of `key` (a newer push of the same stream is left alone).
    fn ended(&self, key: &(CameraId, Stream), id: u64) {
        let mut running = self.running.lock().expect("pushes");
        if running.get(key).is_some_and(|r| r.id == id) {
            running.remove(key);
        }
    }
}

/// How one connection of a push ended.
enum Ended {
    /// Told to stop (stopLive, shutdown, the safety maximum).
    Stopped,
    /// It ran, then failed.
    Broke(PushError),
    /// It never got video to the gateway.
    Failed(PushError),
}

/// One push's supervisor, on a blocking thread.
struct Job {
    key: (CameraId, Stream),
    id: u64,
    source: Secret,
    target: Arc<Mutex<Target>>,
    stop: CancellationToken,
    deadline: Instant,
    pushes: LivePushes,
}

impl Job {
    fn supervise(self, first: oneshot::Sender<Outcome>) {
        let span = tracing::info_span!("push", camera = %self.key.0, stream = %self.key.1.as_str());
        let _entered = span.enter();
        let mut first = Some(first);
        let mut failures = 0;
        let mut backoff = BACKOFF_MIN;
        while !self.stopping() {
            let target = self.target.lock().expect("push target").clone();
            match self.attempt(&target, &mut first) {
                Ended::Stopped => break,
                Ended::Broke(e) => {
                    // It ran: a fresh start, quickly.
                    failures = 0;
                    backoff = BACKOFF_MIN;
                    tracing::warn!(err = %e, retry_in = ?backoff, "live push broke; retrying");
                }
                Ended::Failed(e) => {
                    if let Some(first) = first.take() {
                        tracing::warn!(gateway = %target.shown, err = %e, "live push failed to start");
                        let code = match e {
                            PushError::Camera(_) => codes::CAMERA_OFFLINE,
                            PushError::Missing(_) | PushError::Build(_) => codes::INTERNAL,
                            _ => codes::UPSTREAM_FAILED,
                        };
                        let _ = first.send(error(code, e.to_string()));
                        break;
                    }
                    failures += 1;
                    if failures > GIVE_UP_AFTER {
                        tracing::warn!(err = %e, "live push keeps failing; ended until the gateway asks again");
                        break;
                    }
                    tracing::warn!(err = %e, retry_in = ?backoff, "live push cannot reconnect; retrying");
                }
            }
            self.sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        if Instant::now() >= self.deadline && !self.stop.is_cancelled() {
            tracing::warn!(
                max_secs = self.pushes.max_duration.as_secs(),
                "live push stopped: no stopLive came within [live] max_push_secs"
            );
        }
        self.pushes.ended(&self.key, self.id);
        tracing::info!("live push ended");
    }

    /// One connection, until it is told to stop or fails.
    fn attempt(&self, target: &Target, first: &mut Option<oneshot::Sender<Outcome>>) -> Ended {
        let known = self.pushes.codec(&self.key.0);
        let mut codec = known.unwrap_or(Codec::H264);
        let push = loop {
            let push = match Push::start(&self.source, target, codec) {
                Ok(p) => p,
                Err(e) => return Ended::Failed(e),
            };
            match push.established(ESTABLISH_WITHIN, || self.stopping()) {
                Ok(true) => break push,
                Ok(false) => return Ended::Stopped,
                // The camera sends the other codec: tried once, then it is known.
                Err(e) if known.is_none() && codec == Codec::H264 && e.is_codec_mismatch() => {
                    codec = Codec::H265;
                }
                Err(e) => return Ended::Failed(e),
            }
        };
        self.pushes.learn_codec(&self.key.0, codec);
        tracing::info!(gateway = %target.shown, codec = ?codec, "live push running");
        if let Some(first) = first.take() {
            let _ = first.send(ok("pushing"));
        }
        loop {
            if self.stopping() {
                return Ended::Stopped;
            }
            if let Some(e) = push.failure(Duration::from_millis(250)) {
                return Ended::Broke(e);
            }
        }
    }

    fn stopping(&self) -> bool {
        self.stop.is_cancelled() || Instant::now() >= self.deadline
    }

    fn sleep(&self, duration: Duration) {
        let until = Instant::now() + duration;
        while Instant::now() < until && !self.stopping() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
