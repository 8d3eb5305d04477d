//! The detection workers: frames from ingest go through each camera's detectors, detections become
//! episodes ([`crate::episode`]), and every episode change becomes a DetectionEvent written to the
//! outbox. Two workers serve all cameras (the box has two cores): one for the grey 320x180 stream
//! (rodents, every frame matters to the tracker) and one for the colour frames (the person model,
//! 50–150 ms a look), so a slow person look never costs the rodent tracker a frame. Ingest drops
//! frames while a worker is busy, so detection never slows the cameras down. [`spawn`] splits each
//! camera's detectors between the two and tells ingest which cameras need colour frames.
//!
//! Each worker marks the events of episodes that start on a camera the center staged for a drill
//! ([`crate::exercise`]); a config update reaches both workers, and its revision counts as
//! applied once both took it ([`crate::remote::InForce`]).
//!
//! With `[evidence]` on, the events go to the evidence worker ([`crate::evidence::worker`]), which
//! attaches snapshots and clips before queueing them; without it they go to the outbox as they are.

use crate::config::Config;
use crate::detect::person::HatMaskDetector;
use crate::detect::{
    DetectError, Detection, Detector, Frame as DetectFrame, RodentConfig, RodentDetector,
};
use crate::episode::{EpisodeChange, Episodes};
use crate::evidence::{Recorder, Rolls};
use crate::exercise::Exercises;
use crate::ingest::{ColourWanted, Frame};
use crate::outbox::Outbox;
use crate::remote::Update;
use crate::talk::Talk;
use bl_proto::event::{DetectionEvent, EdgeEvent, ModelInfo, ViolationKind};
use bl_proto::topic::Topic;
use bl_proto::{CameraId, EdgeId, V1};
use std::collections::HashMap;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// One camera's detectors and episodes.
pub struct CameraWatch {
    pub detectors: Vec<Box<dyn Detector>>,
    pub episodes: Episodes,
    /// The clip's pre- and post-roll the center asked for; `None` keeps what the camera has.
    pub rolls: Option<Rolls>,
}

impl CameraWatch {
    /// Splits into the part that works on grey frames and the part that wants colour; both keep
    /// the episode rules and the rolls (each kind is observed by one side only).
    fn split_colour(self) -> (CameraWatch, CameraWatch) {
        let (colour, grey): (Vec<_>, Vec<_>) =
            self.detectors.into_iter().partition(|d| d.wants_colour());
        (
            CameraWatch {
                detectors: grey,
                episodes: self.episodes.clone(),
                rolls: self.rolls,
            },
            CameraWatch {
                detectors: colour,
                episodes: self.episodes,
                rolls: self.rolls,
            },
        )
    }
}

/// Each camera's detectors as `edge.toml` asks (`rodent`, `no_chef_hat`, `no_mask`), until the
/// center's config replaces them.
pub fn from_config(config: &Config) -> Result<HashMap<CameraId, CameraWatch>, ConfigDetectError> {
    let mut watches = HashMap::new();
    for camera in &config.camera {
        let failed = |error| ConfigDetectError {
            camera: camera.id.clone(),
            error,
        };
        let mut detectors: Vec<Box<dyn Detector>> = Vec::new();
        if camera.rodent {
            let rodent = RodentDetector::new(RodentConfig {
                active_hours: camera.rodent_hours,
                ..RodentConfig::default()
            })
            .map_err(failed)?;
            detectors.push(Box::new(rodent));
        }
        if camera.no_chef_hat || camera.no_mask {
            let people =
                HatMaskDetector::for_rules(camera.no_chef_hat, camera.no_mask).map_err(failed)?;
            detectors.push(Box::new(people));
        }
        watches.insert(
            camera.id.clone(),
            CameraWatch {
                detectors,
                episodes: Episodes::new(),
                rolls: None,
            },
        );
    }
    Ok(watches)
}

/// A camera's detector from `edge.toml` could not be built.
#[derive(Debug, thiserror::Error)]
#[error("camera {camera}: {error}")]
pub struct ConfigDetectError {
    pub camera: CameraId,
    pub error: DetectError,
}

/// Where detection events go: the outbox, or through the evidence worker when evidence is on.
#[derive(Clone)]
pub struct EventSink {
    pub outbox: Outbox,
    pub evidence: Option<EvidenceLink>,
    /// Every looked-at frame's detections, for whoever listens (camera re-checks); a listener that
    /// falls behind loses the oldest, detection never waits.
    pub sightings: Option<broadcast::Sender<Sighting>>,
    /// The box's talk-down, for the automatic voice warning at an episode's start.
    pub talk: Option<Talk>,
}

/// What detection saw in one frame of a camera.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub camera: CameraId,
    pub at_ms: i64,
    /// The kinds the camera's detectors look for now.
    pub watching: Vec<ViolationKind>,
    pub detections: Vec<Detection>,
}

/// Where detection events go when evidence is on.
#[derive(Clone)]
pub struct EvidenceLink {
    pub events: mpsc::Sender<DetectionEvent>,
    pub recorders: HashMap<CameraId, Recorder>,
}

/// The frames the workers read: the grey stream, and the colour frames with the set of cameras
/// that should get them (ingest opens a camera's colour branch while it is in the set).
pub struct Frames {
    pub grey: mpsc::Receiver<Frame>,
    pub colour: mpsc::Receiver<Frame>,
    pub colour_wanted: ColourWanted,
}

/// Starts the grey and the colour worker, and the task that splits each center config between
/// them; each runs until `shutdown` or until its input closes.
pub fn spawn(
    edge: EdgeId,
    sink: EventSink,
    cameras: HashMap<CameraId, CameraWatch>,
    utc_offset_minutes: i32,
    frames: Frames,
    mut updates: mpsc::Receiver<Update>,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let Frames {
        grey,
        colour,
        colour_wanted,
    } = frames;
    let (grey_cameras, colour_cameras) = split(cameras, &colour_wanted);
    let (grey_updates, grey_updates_rx) = mpsc::channel(1);
    let (colour_updates, colour_updates_rx) = mpsc::channel(1);
    let splitter = tokio::spawn(async move {
        while let Some(update) = updates.recv().await {
            let (g, c) = split(update.cameras, &colour_wanted);
            // Both workers take every staging: each marks the episodes of its own kinds.
            let part = |cameras| Update {
                revision: update.revision,
                cameras,
                exercises: update.exercises.clone(),
                warnings: Default::default(), // put in force by remote::run, not by detection
                in_force: update.in_force.clone(),
            };
            let sent = grey_updates.send(part(g)).await.is_ok()
                && colour_updates.send(part(c)).await.is_ok();
            if !sent {
                return;
            }
        }
    });
    let worker = |name: &'static str, cameras, frames, updates| {
        let run = run(
            edge.clone(),
            sink.clone(),
            cameras,
            utc_offset_minutes,
            frames,
            updates,
            shutdown.clone(),
        );
        tokio::spawn(tracing::Instrument::instrument(
            run,
            tracing::info_span!("detect", worker = name),
        ))
    };
    vec![
        splitter,
        worker("grey", grey_cameras, grey, grey_updates_rx),
        worker("colour", colour_cameras, colour, colour_updates_rx),
    ]
}

/// Splits every camera's watch between the two workers and records which cameras want colour.
fn split(
    cameras: HashMap<CameraId, CameraWatch>,
    colour_wanted: &ColourWanted,
) -> (
    HashMap<CameraId, CameraWatch>,
    HashMap<CameraId, CameraWatch>,
) {
    let (mut grey, mut colour) = (HashMap::new(), HashMap::new());
    let mut wanted = colour_wanted.lock().expect("colour wanted");
    for (camera, watch) in cameras {
        let (g, c) = watch.split_colour();
        if c.detectors.is_empty() {
            wanted.remove(&camera);
        } else {
            wanted.insert(camera.clone());
        }
        grey.insert(camera.clone(), g);
        colour.insert(camera, c);
    }
    (grey, colour)
}

/// One worker: runs until `shutdown` or until ingest closes the frame queue.
pub async fn run(
    edge: EdgeId,
    sink: EventSink,
    mut cameras: HashMap<CameraId, CameraWatch>,
    utc_offset_minutes: i32,
    mut frames: mpsc::Receiver<Frame>,
    mut updates: mpsc::Receiver<Update>,
    shutdown: CancellationToken,
) {
    let EventSink {
        outbox,
        evidence,
        sightings,
        talk,
    } = sink;
    let topic = Topic::EdgeEvents(edge.clone());
    let mut exercises = Exercises::default();
    loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(update) = updates.recv() => {
                // The center's rules replace those of the cameras it names (episodes restart).
                for (camera, watch) in &update.cameras {
                    let recorder = evidence.as_ref().and_then(|e| e.recorders.get(camera));
                    if let (Some(recorder), Some(rolls)) = (recorder, watch.rolls) {
                        recorder.set_rolls(rolls);
                    }
                }
                cameras.extend(update.cameras);
                exercises.replace(update.exercises);
                // In force from the next frame on: say so (the center plays a drill scene only
                // once both workers marked its camera).
                drop(update.in_force);
                continue;
            }
            frame = frames.recv() => match frame { Some(f) => f, None => break },
        };
        let Some(watch) = cameras.get_mut(&frame.camera) else {
            continue;
        };
        // Detection is CPU work: keep it off the runtime's async threads.
        let (mut events, detections) =
            tokio::task::block_in_place(|| look(&edge, &frame, watch, utc_offset_minutes));
        for event in &mut events {
            if let EdgeEvent::Detection(d) = event {
                exercises.mark(d);
            }
        }
        if let Some(tx) = sightings.as_ref().filter(|tx| tx.receiver_count() > 0) {
            let _ = tx.send(Sighting {
                camera: frame.camera.clone(),
                at_ms: frame.at_ms,
                watching: watch
                    .detectors
                    .iter()
                    .flat_map(|d| d.kinds())
                    .copied()
                    .collect(),
                detections,
            });
        }
        for event in events {
            let warning = match (&talk, &event) {
                (Some(talk), EdgeEvent::Detection(d)) => {
                    talk.warn(d, local_minute(frame.at_ms, utc_offset_minutes))
                }
                _ => None,
            };
            queue(&outbox, &topic, evidence.as_ref(), &frame.camera, event).await;
            // After the episode's start is queued, so its outcome never overtakes it.
            if let Some(warning) = warning {
                let (outbox, topic) = (outbox.clone(), topic.clone());
                tokio::spawn(async move {
                    let event = EdgeEvent::Warning(warning.await);
                    if let Err(e) = outbox.push(&topic, &bl_proto::encode(&event)).await {
                        tracing::error!(err = %e, "cannot queue a voice warning event");
                    }
                });
            }
        }
    }
}

/// Hands a detection event to the evidence worker (which attaches snapshot and clip) when the
/// camera records, else to the outbox.
async fn queue(
    outbox: &Outbox,
    topic: &Topic,
    evidence: Option<&EvidenceLink>,
    camera: &CameraId,
    event: EdgeEvent,
) {
    if let (Some(link), EdgeEvent::Detection(detection)) = (evidence, &event)
        && link.recorders.contains_key(camera)
    {
        if link.events.send(detection.clone()).await.is_ok() {
            return;
        }
        tracing::error!(camera = %camera, "the evidence worker is gone; the event goes without evidence");
    }
    if let Err(e) = outbox.push(topic, &bl_proto::encode(&event)).await {
        tracing::error!(camera = %camera, err = %e, "cannot queue a detection event");
    }
}

/// The local minute of the day of `at_ms` (UTC milliseconds) at `utc_offset_minutes`.
fn local_minute(at_ms: i64, utc_offset_minutes: i32) -> u16 {
    (at_ms.div_euclid(60_000) + utc_offset_minutes as i64).rem_euclid(24 * 60) as u16
}

/// Runs one frame through a camera's detectors and episodes; returns the events to send and the
/// frame's detections.
fn look(
    edge: &EdgeId,
    frame: &Frame,
    watch: &mut CameraWatch,
    utc_offset_minutes: i32,
) -> (Vec<EdgeEvent>, Vec<Detection>) {
    let local_minute = local_minute(frame.at_ms, utc_offset_minutes);
    let input = DetectFrame {
        width: frame.width,
        height: frame.height,
        luma: &frame.luma,
        bgr: frame.bgr.as_deref(),
        at_ms: frame.at_ms.max(0) as u64,
        minute_of_day: local_minute,
    };
    let mut detections = Vec::new();
    let mut models = HashMap::new();
    for detector in &mut watch.detectors {
        for d in detector.process(&input) {
            models.insert(
                d.kind,
                ModelInfo {
                    name: detector.model_name().to_owned(),
                    version: detector.model_version().to_owned(),
                },
            );
            detections.push(d);
        }
    }
    let events = watch
        .episodes
        .observe(input.at_ms, &detections)
        .into_iter()
        .map(|change| {
            let model = models
                .get(&change.detection.kind)
                .cloned()
                .unwrap_or(ModelInfo {
                    name: "unknown".into(),
                    version: "0".into(),
                });
            event(edge, &frame.camera, change, model)
        })
        .collect();
    (events, detections)
}

fn event(edge: &EdgeId, camera: &CameraId, change: EpisodeChange, model: ModelInfo) -> EdgeEvent {
    let at = chrono::DateTime::from_timestamp_millis(change.at_ms as i64)
        .unwrap_or_else(chrono::Utc::now);
    EdgeEvent::Detection(DetectionEvent {
        v: V1,
        event_id: uuid::Uuid::now_v7(),
        episode_id: change.episode_id,
        phase: change.phase,
        edge_id: edge.clone(),
        camera_id: camera.clone(),
        kind: change.detection.kind,
        at,
        confidence: change.detection.confidence.clamp(0.0, 1.0),
        boxes: change.detection.boxes,
        snapshot: None,
        clip: None,
        model,
        exercise: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exercise::Staging;
    use crate::remote::InForce;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_staging_is_in_force_once_both_workers_took_it() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.db"), 1 << 20)
            .await
            .unwrap();
        let (_grey, grey) = mpsc::channel(1);
        let (_colour, colour) = mpsc::channel(1);
        let (updates, updates_rx) = mpsc::channel(1);
        let shutdown = CancellationToken::new();
        let tasks = spawn(
            "box".parse().unwrap(),
            EventSink {
                outbox,
                evidence: None,
                sightings: None,
                talk: None,
            },
            HashMap::new(),
            480,
            Frames {
                grey,
                colour,
                colour_wanted: ColourWanted::default(),
            },
            updates_rx,
            shutdown.clone(),
        );
        let camera: CameraId = "cam-1".parse().unwrap();
        let (in_force, mut all_applied) = InForce::new();
        let staging = Staging {
            run: "run-1".into(),
            until_ms: i64::MAX,
        };
        updates
            .send(Update {
                revision: 2,
                cameras: HashMap::new(),
                exercises: HashMap::from([(camera, staging)]),
                warnings: Default::default(),
                in_force,
            })
            .await
            .unwrap();
        let applied = tokio::time::timeout(Duration::from_secs(30), all_applied.recv()).await;
        assert!(
            matches!(applied, Ok(None)),
            "both workers took the revision"
        );
        shutdown.cancel();
        drop(updates);
        for t in tasks {
            t.await.unwrap();
        }
    }
}
