//! `snapshot`: the camera's picture now, decoded from its evidence pre-roll (the newest frame),
//! stored as a JPEG through the evidence spool — hashed, signed with the device key, queued for
//! upload like an episode's snapshot — and named by its sha256 in the answer's `detail`.

use super::admit::{error, ok};
use crate::evidence::Recorder;
use crate::evidence::image;
use crate::evidence::media;
use crate::evidence::spool::{BlobInfo, Spool};
use bl_proto::CameraId;
use bl_proto::command::{Outcome, codes};
use bl_proto::evidence::EvidenceKind;
use std::collections::HashMap;

/// A newest frame older than this means the camera is not sending now.
const FRESH_MS: i64 = 5_000;

/// What snapshots need: the evidence spool and each camera's pre-roll.
#[derive(Clone)]
pub struct Snapshots {
    pub spool: Spool,
    pub recorders: HashMap<CameraId, Recorder>,
}

/// Takes, stores and queues a snapshot of `camera`; `None` when the box has no `[evidence]`.
pub async fn take(snapshots: Option<&Snapshots>, camera: &CameraId) -> Outcome {
    let Some(snapshots) = snapshots else {
        return error(
            codes::UNSUPPORTED,
            "this box has no [evidence] section, so it cannot upload pictures",
        );
    };
    let Some(recorder) = snapshots.recorders.get(camera) else {
        return error(
            codes::UNKNOWN_CAMERA,
            format!("camera {camera} is not on this box"),
        );
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let Some((codec, units)) = recorder.frame_at(now_ms) else {
        return error(codes::CAMERA_OFFLINE, "no video from the camera yet");
    };
    let newest = units.last().map_or(0, |u| u.at_ms);
    if now_ms - newest > FRESH_MS {
        return error(
            codes::CAMERA_OFFLINE,
            format!(
                "the camera's newest frame is {} s old",
                (now_ms - newest) / 1000
            ),
        );
    }
    let jpeg = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let picture = media::decode_last(codec, &units).map_err(|e| e.to_string())?;
        image::clean(&picture).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let jpeg = match jpeg {
        Ok(j) => j,
        Err(e) => return error(codes::INTERNAL, format!("cannot make the picture: {e}")),
    };
    let info = BlobInfo {
        camera: camera.clone(),
        kind: EvidenceKind::Snapshot,
        content_type: "image/jpeg",
        captured_at: chrono::DateTime::from_timestamp_millis(newest)
            .unwrap_or_else(chrono::Utc::now),
        range: None,
    };
    match snapshots.spool.store_bytes(&info, &jpeg).await {
        Ok(blob) => {
            tracing::info!(camera = %camera, sha256 = %blob.sha256, bytes = blob.size, "snapshot stored for upload");
            ok(blob.sha256.to_string())
        }
        Err(e) => error(codes::INTERNAL, format!("cannot store the snapshot: {e}")),
    }
}
