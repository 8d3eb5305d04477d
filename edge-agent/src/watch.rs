//! The detection worker: frames from ingest go through each camera's detectors, detections become
//! episodes ([`crate::episode`]), and every episode change becomes a DetectionEvent written to the
//! outbox. One worker serves all cameras (the box has two cores); ingest drops frames while it is
//! busy, so detection never slows the cameras down.
//!
//! With `[evidence]` on, the events go to the evidence worker ([`crate::evidence::worker`]), which
//! attaches snapshots and clips before queueing them; without it they go to the outbox as they are.

use crate::detect::{Detector, Frame as DetectFrame};
use crate::episode::{EpisodeChange, Episodes};
use crate::evidence::{Recorder, Rolls};
use crate::exercise::Exercises;
use crate::ingest::Frame;
use crate::outbox::Outbox;
use crate::remote::Update;
use bl_proto::event::{DetectionEvent, EdgeEvent, ModelInfo};
use bl_proto::topic::Topic;
use bl_proto::{CameraId, EdgeId, V1};
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One camera's detectors and episodes.
pub struct CameraWatch {
    pub detectors: Vec<Box<dyn Detector>>,
    pub episodes: Episodes,
    /// The clip's pre- and post-roll the center asked for; `None` keeps what the camera has.
    pub rolls: Option<Rolls>,
}

/// Where detection events go: the outbox, or through the evidence worker when evidence is on.
pub struct EventSink {
    pub outbox: Outbox,
    pub evidence: Option<EvidenceLink>,
}

/// Where detection events go when evidence is on.
pub struct EvidenceLink {
    pub events: mpsc::Sender<DetectionEvent>,
    pub recorders: HashMap<CameraId, Recorder>,
}

/// Runs until `shutdown` or until ingest closes the frame queue.
pub async fn run(
    edge: EdgeId,
    sink: EventSink,
    mut cameras: HashMap<CameraId, CameraWatch>,
    utc_offset_minutes: i32,
    mut frames: mpsc::Receiver<Frame>,
    mut updates: mpsc::Receiver<Update>,
    shutdown: CancellationToken,
) {
    let EventSink { outbox, evidence } = sink;
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
                continue;
            }
            frame = frames.recv() => match frame { Some(f) => f, None => break },
        };
        let Some(watch) = cameras.get_mut(&frame.camera) else {
            continue;
        };
        // Detection is CPU work: keep it off the runtime's async threads.
        let mut events =
            tokio::task::block_in_place(|| look(&edge, &frame, watch, utc_offset_minutes));
        for event in &mut events {
            if let EdgeEvent::Detection(d) = event {
                exercises.mark(d);
            }
        }
        for event in events {
            if let (Some(link), EdgeEvent::Detection(detection)) = (&evidence, &event)
                && link.recorders.contains_key(&frame.camera)
            {
                if link.events.send(detection.clone()).await.is_err() {
                    tracing::error!(camera = %frame.camera, "the evidence worker is gone; the event goes without evidence");
                } else {
                    continue;
                }
            }
            if let Err(e) = outbox.push(&topic, &bl_proto::encode(&event)).await {
                tracing::error!(camera = %frame.camera, err = %e, "cannot queue a detection event");
            }
        }
    }
}

/// Runs one frame through a camera's detectors and episodes; returns the events to send.
fn look(
    edge: &EdgeId,
    frame: &Frame,
    watch: &mut CameraWatch,
    utc_offset_minutes: i32,
) -> Vec<EdgeEvent> {
    let local_minute =
        (frame.at_ms / 60_000 + utc_offset_minutes as i64).rem_euclid(24 * 60) as u16;
    let input = DetectFrame {
        width: frame.width,
        height: frame.height,
        luma: &frame.luma,
        bgr: None,
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
    watch
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
        .collect()
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
