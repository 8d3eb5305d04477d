//! The evidence worker: takes the detection worker's DetectionEvents, attaches evidence and queues
//! them in the outbox.
//!
//! - `start` / `update`: a still of the detected moment is decoded from the pre-roll, stored clean
//!   and annotated (boxes drawn); the event's `snapshot` names the clean one (the original; the
//!   boxes travel in the event). `start` also opens the episode's clip with the pre-roll.
//! - `end`: the clip takes the post-roll; once it is complete it is remuxed to MP4, stored, and the
//!   `end` event goes out with `clip` naming it. The end event therefore leaves `post_roll` seconds
//!   after the episode ended. Meanwhile it is held on disk ([`Outbox::hold`]): on shutdown it goes
//!   out at once with the clip cut short; after a crash, at the next start without a clip.
//!
//! Evidence that cannot be made (no video yet, a decode error, a full outbox) is logged and the event
//! goes out without it: facts never wait on pictures.

use super::image;
use super::media::{self, Picture};
use super::recorder::{FinishedClip, Recorder};
use super::spool::{BlobInfo, Spool};
use crate::outbox::Outbox;
use bl_proto::event::{DetectionEvent, EdgeEvent, EpisodePhase};
use bl_proto::evidence::{BlobRef, EvidenceKind};
use bl_proto::topic::Topic;
use bl_proto::{CameraId, EdgeId};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often finished clips are looked for.
const TICK: Duration = Duration::from_millis(250);
/// A clip whose camera sends nothing this long after its post-roll ends early.
const QUIET_GRACE_MS: i64 = 10_000;

/// Runs until `shutdown` or until the detection worker closes `events`.
pub async fn run(
    edge: EdgeId,
    outbox: Outbox,
    spool: Spool,
    recorders: HashMap<CameraId, Recorder>,
    mut events: mpsc::Receiver<DetectionEvent>,
    shutdown: CancellationToken,
) {
    let mut worker = Worker {
        topic: Topic::EdgeEvents(edge),
        outbox,
        spool,
        recorders,
        held: HashMap::new(),
    };
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            event = events.recv() => match event {
                Some(event) => worker.on_event(event).await,
                None => break,
            },
            _ = tick.tick() => worker.finish_clips(chrono::Utc::now().timestamp_millis()).await,
        }
    }
    // Whatever is held goes out now: short clips rather than lost events.
    for recorder in worker.recorders.values() {
        recorder.flush();
    }
    worker.finish_clips(i64::MAX).await;
    for (_, event) in std::mem::take(&mut worker.held) {
        worker.release(event).await;
    }
}

struct Worker {
    topic: Topic,
    outbox: Outbox,
    spool: Spool,
    recorders: HashMap<CameraId, Recorder>,
    /// End events waiting for their clip, by episode.
    held: HashMap<Uuid, DetectionEvent>,
}

impl Worker {
    async fn on_event(&mut self, mut event: DetectionEvent) {
        let Some(recorder) = self.recorders.get(&event.camera_id).cloned() else {
            return self.queue(event).await;
        };
        let at_ms = event.at.timestamp_millis();
        match event.phase {
            EpisodePhase::Start | EpisodePhase::Update => {
                if event.phase == EpisodePhase::Start {
                    recorder.open(event.episode_id, at_ms);
                }
                event.snapshot = self.snapshot(&recorder, &event).await;
                self.queue(event).await;
            }
            EpisodePhase::End => {
                recorder.close(event.episode_id, at_ms);
                let payload = bl_proto::encode(&EdgeEvent::Detection(event.clone()));
                let key = event.episode_id.to_string();
                if let Err(e) = self.outbox.hold(&key, &self.topic, &payload).await {
                    // Not on disk: send it now without its clip rather than risk losing it.
                    tracing::error!(camera = %event.camera_id, err = %e, "cannot hold the end event for its clip; it goes without");
                    return self.queue(event).await;
                }
                self.held.insert(event.episode_id, event);
            }
        }
    }

    /// Stores the clean and the annotated still of the event's moment; returns the clean one.
    async fn snapshot(&self, recorder: &Recorder, event: &DetectionEvent) -> Option<BlobRef> {
        let Some((codec, units)) = recorder.frame_at(event.at.timestamp_millis()) else {
            tracing::warn!(camera = %event.camera_id, "no video in the pre-roll yet; the event goes without a snapshot");
            return None;
        };
        let boxes = event.boxes.clone();
        let made = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let picture: Picture = media::decode_last(codec, &units).map_err(|e| e.to_string())?;
            image::snapshots(&picture, &boxes).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        let (clean, annotated) = match made {
            Ok(jpegs) => jpegs,
            Err(e) => {
                tracing::error!(camera = %event.camera_id, err = %e, "cannot make the snapshot");
                return None;
            }
        };
        let info = BlobInfo {
            camera: event.camera_id.clone(),
            kind: EvidenceKind::Snapshot,
            content_type: "image/jpeg",
            captured_at: event.at,
            range: None,
        };
        if let Err(e) = self.spool.store_bytes(&info, &annotated).await {
            tracing::error!(camera = %event.camera_id, err = %e, "cannot store the annotated snapshot");
        }
        match self.spool.store_bytes(&info, &clean).await {
            Ok(blob) => Some(blob),
            Err(e) => {
                tracing::error!(camera = %event.camera_id, err = %e, "cannot store the snapshot");
                None
            }
        }
    }

    /// Remuxes and stores every finished clip and sends the end events that waited for them.
    async fn finish_clips(&mut self, now_ms: i64) {
        let finished: Vec<(CameraId, FinishedClip)> = self
            .recorders
            .iter()
            .flat_map(|(camera, r)| {
                r.take_finished(now_ms, QUIET_GRACE_MS)
                    .into_iter()
                    .map(move |c| (camera.clone(), c))
            })
            .collect();
        for (camera, clip) in finished {
            let blob = self.clip(&camera, &clip).await;
            match self.held.remove(&clip.episode) {
                Some(mut event) => {
                    event.clip = blob;
                    self.release(event).await;
                }
                None => {
                    tracing::warn!(episode = %clip.episode, "a clip finished without its end event")
                }
            }
        }
    }

    async fn clip(&self, camera: &CameraId, clip: &FinishedClip) -> Option<BlobRef> {
        let (Some(codec), Some(first), Some(last)) =
            (clip.codec, clip.units.first(), clip.units.last())
        else {
            tracing::warn!(camera = %camera, episode = %clip.episode, "no video for the clip; the end event goes without one");
            return None;
        };
        let range = (time(first.at_ms), time(last.at_ms));
        let tmp = self.spool.temp_path();
        let units = clip.units.clone();
        let out = tmp.clone();
        let remuxed = tokio::task::spawn_blocking(move || media::remux_mp4(codec, &units, &out))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(e) = remuxed {
            let _ = std::fs::remove_file(&tmp);
            tracing::error!(camera = %camera, episode = %clip.episode, err = %e, "cannot remux the clip");
            return None;
        }
        let info = BlobInfo {
            camera: camera.clone(),
            kind: EvidenceKind::Clip,
            content_type: "video/mp4",
            captured_at: range.0,
            range: Some(range),
        };
        match self.spool.store_file(&info, &tmp).await {
            Ok(blob) => {
                tracing::info!(camera = %camera, episode = %clip.episode, sha256 = %blob.sha256, bytes = blob.size, truncated = clip.truncated, "clip stored");
                Some(blob)
            }
            Err(e) => {
                tracing::error!(camera = %camera, episode = %clip.episode, err = %e, "cannot store the clip");
                None
            }
        }
    }

    /// Queues a held end event, now with its clip, in place of the held copy.
    async fn release(&self, event: DetectionEvent) {
        let camera = event.camera_id.clone();
        let key = event.episode_id.to_string();
        let payload = bl_proto::encode(&EdgeEvent::Detection(event));
        if let Err(e) = self.outbox.release(&key, &self.topic, &payload).await {
            tracing::error!(camera = %camera, err = %e, "cannot queue an end event; it stays held and goes out at the next start");
        }
    }

    async fn queue(&self, event: DetectionEvent) {
        let camera = event.camera_id.clone();
        let payload = bl_proto::encode(&EdgeEvent::Detection(event));
        if let Err(e) = self.outbox.push(&self.topic, &payload).await {
            tracing::error!(camera = %camera, err = %e, "cannot queue a detection event");
        }
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now)
}
