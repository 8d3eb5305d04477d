//! `bl/v1/edge/{edge}/events`: detections (one violation episode at a time) and camera faults.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::check;
use crate::command::{Outcome, TalkOutput};
use crate::decode::{Message, Violation, tracked};
use crate::evidence::BlobRef;
use crate::id::{CameraId, EdgeId};
use crate::version::V1;

/// Anything an edge publishes on its events topic.
// Events are handled one at a time, so the size gap between variants costs nothing, while boxing would
// make every construction and match noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EdgeEvent {
    /// A rule violation seen by a detector (`"type": "detection"`).
    Detection(DetectionEvent),
    /// A camera went offline, came back, froze, was covered or moved (`"type": "camera"`).
    Camera(CameraEvent),
    /// The box's automatic voice warning at an episode's start was played, or could not be
    /// (`"type": "warning"`).
    Warning(WarningEvent),
}

/// One step of a violation episode: `start`, any number of `update`s, then `end`.
///
/// An episode is one case ("one uncovered head is one case, not 600 detections"); dispatch opens or
/// attaches to an incident per episode and stores each event once, keyed by `eventId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectionEvent {
    /// Payload version, always 1.
    pub v: V1,
    /// UUIDv7 made at the edge when the event is written to the outbox: the idempotency key.
    pub event_id: Uuid,
    /// The episode this event belongs to; the same for its start, updates and end.
    pub episode_id: Uuid,
    /// Where in the episode this event is.
    pub phase: EpisodePhase,
    /// The edge that saw it.
    pub edge_id: EdgeId,
    /// The camera that saw it.
    pub camera_id: CameraId,
    /// What rule was broken.
    pub kind: ViolationKind,
    /// When it was seen (UTC, milliseconds).
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "DateTime<Utc>")]
    pub at: DateTime<Utc>,
    /// Detector confidence in `0..=1` (for an episode: the highest so far).
    pub confidence: f32,
    /// Where in the frame, normalised; may be empty (e.g. `personAbsent`).
    #[serde(default)]
    pub boxes: Vec<NormBox>,
    /// A still of the moment; it may reach the store after the event ("evidence arriving").
    pub snapshot: Option<BlobRef>,
    /// The clip (pre-roll to post-roll), normally only on `end`.
    pub clip: Option<BlobRef>,
    /// The detector that produced it (feeds false-positive statistics per model version).
    pub model: ModelInfo,
    /// Drill run id when this event is part of an exercise; `null` for a real event.
    pub exercise: Option<String>,
}

/// Position of an event in its episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EpisodePhase {
    /// The violation began (held for the rule's minimum duration).
    Start,
    /// Still going; carries a better snapshot or a higher confidence.
    Update,
    /// The violation stopped (or the episode hit its maximum length).
    End,
}

/// The rules a detector checks. Closed on purpose: a new kind needs dispatch's tiers and the console's
/// labels too, so it is added here deliberately. Camera faults are [`CameraEvent`]s, not violations.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum ViolationKind {
    /// A cook without a chef's hat (未戴厨师帽).
    NoChefHat,
    /// Staff without a face mask (未戴口罩).
    NoMask,
    /// Handling food without gloves (未戴手套).
    NoGloves,
    /// Not wearing work clothes (未穿工作服).
    NoUniform,
    /// A rat or mouse (鼠患).
    Rodent,
    /// Smoking in the kitchen (吸烟).
    Smoking,
    /// Using a phone while handling food (玩手机).
    PhoneUse,
    /// A post that must be staffed is empty, e.g. a pharmacist absent (离岗).
    PersonAbsent,
    /// A waste bin left open (垃圾桶未盖).
    UncoveredBin,
    /// Anything else a site-specific model reports; dispatch treats it as routine.
    Other,
}

impl ViolationKind {
    /// Every kind, in declaration order (for tests, tables and UI lists).
    pub const ALL: [ViolationKind; 10] = [
        ViolationKind::NoChefHat,
        ViolationKind::NoMask,
        ViolationKind::NoGloves,
        ViolationKind::NoUniform,
        ViolationKind::Rodent,
        ViolationKind::Smoking,
        ViolationKind::PhoneUse,
        ViolationKind::PersonAbsent,
        ViolationKind::UncoveredBin,
        ViolationKind::Other,
    ];
}

/// A box in normalised frame coordinates: `(0,0)` top left, `(1,1)` bottom right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NormBox {
    /// Left edge, `0..=1`.
    pub x: f32,
    /// Top edge, `0..=1`.
    pub y: f32,
    /// Width, `0..=1`, with `x + w <= 1`.
    pub w: f32,
    /// Height, `0..=1`, with `y + h <= 1`.
    pub h: f32,
    /// Detector label of this box (e.g. `head`, `rat`), if any.
    #[serde(default)]
    pub label: Option<String>,
    /// Confidence of this box, `0..=1`, if the detector gives one.
    #[serde(default)]
    pub confidence: Option<f32>,
}

/// Slack for `x + w <= 1`: detectors round, and 0.1 + 0.9 is not exactly 1 in f32.
const EDGE_SLACK: f32 = 1e-4;

impl NormBox {
    /// Checks every coordinate is in `0..=1` and the box stays inside the frame.
    pub fn validate(&self) -> Result<(), Violation> {
        check::unit("x", self.x)?;
        check::unit("y", self.y)?;
        check::unit("w", self.w)?;
        check::unit("h", self.h)?;
        if self.x + self.w > 1.0 + EDGE_SLACK {
            return Err(Violation::new("w", "x + w goes past the right edge (1)"));
        }
        if self.y + self.h > 1.0 + EDGE_SLACK {
            return Err(Violation::new("h", "y + h goes past the bottom edge (1)"));
        }
        check::opt_text("label", self.label.as_deref(), 64)?;
        if let Some(c) = self.confidence {
            check::unit("confidence", c)?;
        }
        Ok(())
    }
}

/// The detector behind an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    /// Model name, e.g. `kitchen-ppe`.
    pub name: String,
    /// Model version, e.g. `2025.03.1`.
    pub version: String,
}

/// A change in a camera's condition, raised once per change (not per report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CameraEvent {
    /// Payload version, always 1.
    pub v: V1,
    /// UUIDv7 made at the edge: the idempotency key.
    pub event_id: Uuid,
    /// The edge reporting.
    pub edge_id: EdgeId,
    /// The camera concerned.
    pub camera_id: CameraId,
    /// When the change was noticed (UTC, milliseconds).
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "DateTime<Utc>")]
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: CameraEventKind,
    /// Human-readable detail for the console (e.g. the RTSP error), if any.
    #[serde(default)]
    pub detail: Option<String>,
    /// Drill run id when staged for an exercise; `null` for a real event.
    pub exercise: Option<String>,
}

/// What happened to a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CameraEventKind {
    /// It stopped delivering frames.
    Offline,
    /// It delivers frames again.
    Online,
    /// The picture stopped changing.
    Frozen,
    /// The lens was covered or the picture went black (tampering).
    Covered,
    /// The view changed: the camera was turned or moved (tampering).
    SceneChanged,
}

/// What became of the automatic voice warning the box chose for an episode's start (a
/// `[[talk.warning]]` rule, or one the center configured, matched). Sent once it is known: after the
/// message played to its end, or at once when it could not be played. dispatch writes it on the
/// episode's incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WarningEvent {
    /// Payload version, always 1.
    pub v: V1,
    /// UUIDv7 made at the edge: the idempotency key.
    pub event_id: Uuid,
    /// The episode whose start triggered the warning.
    pub episode_id: Uuid,
    /// The edge that played it.
    pub edge_id: EdgeId,
    /// The camera of the episode.
    pub camera_id: CameraId,
    /// The episode's violation.
    pub kind: ViolationKind,
    /// When the outcome was known (UTC, milliseconds).
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "DateTime<Utc>")]
    pub at: DateTime<Utc>,
    /// The voice message's id.
    pub message: String,
    /// Where it was (or would have been) played; `null` when the camera has no output at all.
    pub output: Option<TalkOutput>,
    /// Played to its end (`ok`), or failed with a [`crate::command::codes`] code (`unsupported`: no
    /// speaker; `busy`: an operator was talking; `cameraOffline`: the backchannel failed; …).
    pub outcome: Outcome,
    /// Drill run id when part of an exercise; `null` for a real event.
    pub exercise: Option<String>,
}

impl WarningEvent {
    /// Checks the message id, the outcome and the exercise.
    pub fn validate(&self) -> Result<(), Violation> {
        crate::id::validate_id("message id", &self.message)
            .map_err(|e| Violation::new("message", e.to_string()))?;
        self.outcome.validate("outcome")?;
        check::exercise(self.exercise.as_deref())
    }
}

impl EdgeEvent {
    /// The reporting edge; the receiver checks it equals the topic's `{edge}` (the broker ACL makes an
    /// edge publish only under its own topics, but the payload is still data).
    pub fn edge_id(&self) -> &EdgeId {
        match self {
            EdgeEvent::Detection(d) => &d.edge_id,
            EdgeEvent::Camera(c) => &c.edge_id,
            EdgeEvent::Warning(w) => &w.edge_id,
        }
    }

    /// The camera concerned.
    pub fn camera_id(&self) -> &CameraId {
        match self {
            EdgeEvent::Detection(d) => &d.camera_id,
            EdgeEvent::Camera(c) => &c.camera_id,
            EdgeEvent::Warning(w) => &w.camera_id,
        }
    }

    /// The idempotency key.
    pub fn event_id(&self) -> Uuid {
        match self {
            EdgeEvent::Detection(d) => d.event_id,
            EdgeEvent::Camera(c) => c.event_id,
            EdgeEvent::Warning(w) => w.event_id,
        }
    }

    /// The drill run id, or `None` for a real event.
    pub fn exercise(&self) -> Option<&str> {
        match self {
            EdgeEvent::Detection(d) => d.exercise.as_deref(),
            EdgeEvent::Camera(c) => c.exercise.as_deref(),
            EdgeEvent::Warning(w) => w.exercise.as_deref(),
        }
    }
}

impl Message for EdgeEvent {
    const TYPES: &'static [&'static str] = &["detection", "camera", "warning"];
    const SCHEMA_NAME: &'static str = "edge-event";

    fn from_checked(ty: &str, value: &Value) -> Result<Self, Violation> {
        match ty {
            "detection" => tracked(value).map(EdgeEvent::Detection),
            "camera" => tracked(value).map(EdgeEvent::Camera),
            "warning" => tracked(value).map(EdgeEvent::Warning),
            other => Err(Violation::new(
                "type",
                format!("{other:?} is not an edge event"),
            )),
        }
    }

    fn validate(&self) -> Result<(), Violation> {
        match self {
            EdgeEvent::Detection(d) => d.validate(),
            EdgeEvent::Camera(c) => {
                check::opt_text("detail", c.detail.as_deref(), 1024)?;
                check::exercise(c.exercise.as_deref())
            }
            EdgeEvent::Warning(w) => w.validate(),
        }
    }
}

impl DetectionEvent {
    /// Checks confidences, boxes, blob references, model and exercise.
    pub fn validate(&self) -> Result<(), Violation> {
        check::unit("confidence", self.confidence)?;
        for (i, b) in self.boxes.iter().enumerate() {
            b.validate().map_err(|v| v.under(&format!("boxes[{i}]")))?;
        }
        if let Some(s) = &self.snapshot {
            s.validate().map_err(|v| v.under("snapshot"))?;
        }
        if let Some(c) = &self.clip {
            c.validate().map_err(|v| v.under("clip"))?;
        }
        check::text("model.name", &self.model.name, 64)?;
        check::text("model.version", &self.model.version, 64)?;
        check::exercise(self.exercise.as_deref())
    }
}
