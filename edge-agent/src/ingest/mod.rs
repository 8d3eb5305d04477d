//! Camera ingest: one supervised pipeline per camera, on a thread of its own, that hands grey
//! frames to detection (and, while a rule on the camera needs them, larger colour frames to the
//! person detector's own queue: [`ColourFeed`]), keeps the camera's health on the [`HealthBoard`] (which the uplink
//! publishes in the retained state) and reports changes (offline, back online, frozen, covered) as
//! CameraEvents through the outbox. A camera that fails is retried with backoff; it never disturbs
//! the others. Camera URLs carry credentials: they live in a [`Secret`] and are never logged.

pub mod health;
pub mod pipeline;

use crate::evidence::Recorder;
use crate::outbox::Outbox;
use bl_proto::event::{CameraEvent, CameraEventKind, EdgeEvent};
use bl_proto::state::CameraHealth;
use bl_proto::topic::Topic;
use bl_proto::{CameraId, EdgeId, V1};
use bl_service::secret::Secret;
use health::{HealthTracker, Thresholds};
use pipeline::{CameraPipeline, ColourFormat, FrameFormat};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const PULL_TIMEOUT: Duration = Duration::from_millis(500);

/// Every camera's latest health, shared with the uplink.
pub type HealthBoard = Arc<Mutex<BTreeMap<CameraId, CameraHealth>>>;

/// A camera this box watches.
#[derive(Debug, Clone)]
pub struct CameraSource {
    pub id: CameraId,
    /// `rtsp://user:password@host/path`: a secret.
    pub url: Secret,
}

/// A decoded frame for detection.
#[derive(Debug, Clone)]
pub struct Frame {
    pub camera: CameraId,
    pub at_ms: i64,
    pub width: u32,
    pub height: u32,
    /// Grey, `width * height` bytes, no padding.
    pub luma: Vec<u8>,
    /// The same picture in colour (BGR, `width * height * 3` bytes), for frames of the colour
    /// branch; `None` for the grey 320x180 stream.
    pub bgr: Option<Vec<u8>>,
}

/// Cameras whose rules need colour frames now; the detection side keeps it up to date.
pub type ColourWanted = Arc<Mutex<HashSet<CameraId>>>;

/// Where colour frames go and which cameras want them.
#[derive(Clone)]
pub struct ColourFeed {
    /// The person detector's queue: bounded, and a full queue drops the frame rather than wait.
    pub frames: mpsc::Sender<Frame>,
    pub wanted: ColourWanted,
    /// Each camera's colour size and rate; a camera not named gets [`ColourFormat::default`].
    pub formats: HashMap<CameraId, ColourFormat>,
}

/// What every camera task shares.
#[derive(Clone)]
pub struct IngestContext {
    pub edge: EdgeId,
    pub outbox: Outbox,
    pub board: HealthBoard,
    /// Detection's queue: bounded, and a full queue drops the frame rather than wait.
    pub frames: mpsc::Sender<Frame>,
    pub format: FrameFormat,
    pub thresholds: Thresholds,
    /// Each camera's evidence recorder, fed with its encoded stream; a camera without one (or a
    /// box without `[evidence]`) keeps no pre-roll.
    pub recorders: HashMap<CameraId, Recorder>,
    /// Colour frames for the person detector; `None`: grey frames only.
    pub colour: Option<ColourFeed>,
}

/// Starts watching `camera` until `shutdown`.
pub fn spawn(
    camera: CameraSource,
    context: IngestContext,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || watch(camera, context, shutdown, runtime))
}

/// The camera's supervised loop (blocking: GStreamer hands frames to a thread).
fn watch(
    camera: CameraSource,
    cx: IngestContext,
    shutdown: CancellationToken,
    runtime: tokio::runtime::Handle,
) {
    let span = tracing::info_span!("camera", camera = %camera.id);
    let _entered = span.enter();
    let mut health = HealthTracker::new(cx.thresholds);
    let mut backoff = BACKOFF_MIN;
    let report = |kind: CameraEventKind, detail: Option<String>| {
        let event = EdgeEvent::Camera(CameraEvent {
            v: V1,
            event_id: uuid::Uuid::now_v7(),
            edge_id: cx.edge.clone(),
            camera_id: camera.id.clone(),
            at: chrono::Utc::now(),
            kind,
            detail,
            exercise: None,
        });
        tracing::info!(kind = ?kind, "camera changed");
        let topic = Topic::EdgeEvents(cx.edge.clone());
        if let Err(e) = runtime.block_on(cx.outbox.push(&topic, &bl_proto::encode(&event))) {
            tracing::error!(err = %e, "cannot queue a camera event");
        }
    };
    let publish = |health: &HealthTracker| {
        let snapshot = health.snapshot(&camera.id, now_ms());
        cx.board
            .lock()
            .expect("health board")
            .insert(camera.id.clone(), snapshot);
    };
    publish(&health);

    while !shutdown.is_cancelled() {
        let recorder = cx.recorders.get(&camera.id).cloned();
        let colour_format = cx
            .colour
            .as_ref()
            .map(|c| c.formats.get(&camera.id).copied().unwrap_or_default());
        match CameraPipeline::start(&camera.url, cx.format, colour_format, recorder) {
            Err(e) => {
                tracing::warn!(err = %e, retry_in = ?backoff, "camera pipeline failed to start");
                if let Some(kind) = health.on_failure() {
                    report(kind, Some(e.to_string()));
                }
            }
            Ok(pipeline) => {
                let mut last_publish = 0;
                let mut colour_open = false;
                while !shutdown.is_cancelled() {
                    if let Some(feed) = &cx.colour {
                        colour_open = pass_colour(&camera.id, &pipeline, feed, colour_open);
                    }
                    let now = now_ms();
                    match pipeline.next_frame(PULL_TIMEOUT) {
                        Ok(Some(luma)) => {
                            backoff = BACKOFF_MIN;
                            for kind in health.on_frame(now, &luma) {
                                report(kind, None);
                            }
                            let frame = Frame {
                                camera: camera.id.clone(),
                                at_ms: now,
                                width: cx.format.width,
                                height: cx.format.height,
                                luma,
                                bgr: None,
                            };
                            let _ = cx.frames.try_send(frame); // detection busy: skip this frame
                        }
                        Ok(None) => {
                            if let Some(kind) = health.on_tick(now) {
                                report(kind, Some("no frame received".into()));
                                break; // rebuild the pipeline
                            }
                        }
                        Err(e) => {
                            tracing::warn!(err = %e, retry_in = ?backoff, "camera stream failed");
                            if let Some(kind) = health.on_failure() {
                                report(kind, Some(e.to_string()));
                            }
                            break;
                        }
                    }
                    health.on_bytes(now, pipeline.take_bytes());
                    if now - last_publish >= 1000 {
                        publish(&health);
                        last_publish = now;
                    }
                }
            }
        }
        publish(&health);
        sleep_unless_cancelled(backoff, &shutdown);
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Hands on the camera's newest colour picture while its rules want colour; returns whether
/// they do. Pictures nobody wants are read and dropped (the sink keeps one).
fn pass_colour(
    camera: &CameraId,
    pipeline: &CameraPipeline,
    feed: &ColourFeed,
    was_open: bool,
) -> bool {
    let open = feed.wanted.lock().expect("colour wanted").contains(camera);
    if open != was_open {
        tracing::info!(open, "colour frames for the person detector");
    }
    match pipeline.colour_picture() {
        Ok(Some(p)) if open => {
            let frame = Frame {
                camera: camera.clone(),
                at_ms: now_ms(),
                width: p.width,
                height: p.height,
                luma: grey_of_bgr(&p.bgr),
                bgr: Some(p.bgr),
            };
            let _ = feed.frames.try_send(frame); // the person detector is busy: skip this one
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(err = %e, "colour frame unusable"),
    }
    open
}

/// Grey (BT.601 luma, full range, as OpenCV's `BGR2GRAY`) of packed BGR pixels.
pub fn grey_of_bgr(bgr: &[u8]) -> Vec<u8> {
    bgr.chunks_exact(3)
        .map(|p| ((29 * p[0] as u32 + 150 * p[1] as u32 + 77 * p[2] as u32 + 128) >> 8) as u8)
        .collect()
}

fn sleep_unless_cancelled(duration: Duration, shutdown: &CancellationToken) {
    let step = Duration::from_millis(100);
    let mut left = duration;
    while !left.is_zero() && !shutdown.is_cancelled() {
        std::thread::sleep(step.min(left));
        left = left.saturating_sub(step);
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
