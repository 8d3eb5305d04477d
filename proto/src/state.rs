//! `bl/v1/edge/{edge}/state`: an edge's retained health report, and its MQTT last will.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check;
use crate::decode::{Message, TypeTag, Violation};
use crate::id::{CameraId, EdgeId};
use crate::version::V1;

/// An edge's health, published retained on connect, on change and periodically; the broker publishes
/// [`EdgeState::offline`] as the will when the edge vanishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename = "edgeState", rename_all = "camelCase")]
#[schemars(rename = "EdgeState", transform = TypeTag("edgeState"))]
pub struct EdgeState {
    /// Payload version, always 1.
    pub v: V1,
    /// The reporting edge (must match the topic's `{edge}`; the receiver checks).
    pub edge_id: EdgeId,
    /// `false` only in the last-will payload or on a clean shutdown.
    pub online: bool,
    /// Version of the edge-agent build; empty in a last will (unknown to the broker).
    pub agent_version: String,
    /// When this report was made (for a will: when it was registered, i.e. the connect time).
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "DateTime<Utc>")]
    pub at: DateTime<Utc>,
    /// Every configured camera, one entry each.
    pub cameras: Vec<CameraHealth>,
    /// The disk holding the outbox, pre-roll buffers and evidence.
    pub disk: DiskUsage,
    /// Messages and blobs waiting in the outbox: grows when the uplink is down.
    pub outbox_depth: u64,
    /// Revision of the [`crate::config::EdgeConfig`] in force; `null` before any was applied.
    pub config_revision: Option<u64>,
}

/// One camera's health as the edge sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CameraHealth {
    /// The camera.
    pub camera_id: CameraId,
    /// Whether frames are arriving.
    pub online: bool,
    /// Frames per second decoded over the last report interval.
    pub fps: f32,
    /// Ingest bitrate over the last report interval, kbit/s.
    pub bitrate_kbps: u32,
    /// When the last frame arrived; `null` if none since the agent started.
    #[serde(default, with = "crate::time::millis_opt")]
    #[schemars(with = "Option<DateTime<Utc>>")]
    pub last_frame_at: Option<DateTime<Utc>>,
    /// The current fault, `null` when healthy.
    pub problem: Option<CameraProblem>,
}

/// What is wrong with a camera right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CameraProblem {
    /// The RTSP source cannot be reached.
    Offline,
    /// The camera refuses the configured credentials.
    AuthFailed,
    /// Frames arrive but the picture does not change.
    Frozen,
    /// The lens is covered or the picture is black.
    Covered,
    /// The view moved: the camera was turned or moved.
    SceneChanged,
    /// Frames arrive far below the configured rate.
    LowFps,
}

/// Disk space on the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiskUsage {
    /// Size of the file system, bytes.
    pub total_bytes: u64,
    /// Free space, bytes.
    pub free_bytes: u64,
}

impl EdgeState {
    /// The MQTT last-will payload: `online: false`, no cameras, zero disk and outbox (unknown).
    pub fn offline(edge: EdgeId, at: DateTime<Utc>) -> EdgeState {
        EdgeState {
            v: V1,
            edge_id: edge,
            online: false,
            agent_version: String::new(),
            at: crate::time::to_millis(at),
            cameras: Vec::new(),
            disk: DiskUsage {
                total_bytes: 0,
                free_bytes: 0,
            },
            outbox_depth: 0,
            config_revision: None,
        }
    }
}

impl Message for EdgeState {
    const TYPES: &'static [&'static str] = &["edgeState"];
    const SCHEMA_NAME: &'static str = "edge-state";

    fn validate(&self) -> Result<(), Violation> {
        if self.agent_version.len() > 64 || self.agent_version.chars().any(char::is_control) {
            return Err(Violation::new(
                "agentVersion",
                "must be at most 64 bytes of printable text",
            ));
        }
        if self.disk.free_bytes > self.disk.total_bytes {
            return Err(Violation::new(
                "disk.freeBytes",
                "is larger than `totalBytes`",
            ));
        }
        let mut seen = HashSet::new();
        for (i, cam) in self.cameras.iter().enumerate() {
            check::non_negative(&format!("cameras[{i}].fps"), cam.fps)?;
            if !seen.insert(&cam.camera_id) {
                return Err(Violation::new(
                    format!("cameras[{i}].cameraId"),
                    format!("{} is listed twice", cam.camera_id),
                ));
            }
        }
        Ok(())
    }
}
