//! The scenario file format (TOML) and its validation.
//!
//! A scenario is a looped scene: a backdrop, actors that follow timed keyframe paths, and distractors.
//! Everything a frame shows is a pure function of the scenario and the frame number.

use std::path::Path;

use serde::{Deserialize, Serialize};

mod validate;

/// A scenario as read from its file. Coordinates are normalised (0..1 of width/height).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name written into the ground truth. Required.
    pub name: String,
    /// What the camera looks at. Required.
    pub backdrop: BackdropKind,
    /// Frame width in pixels. Default 1280.
    #[serde(default = "default_width")]
    pub width: u32,
    /// Frame height in pixels. Default 720.
    #[serde(default = "default_height")]
    pub height: u32,
    /// Frames per second. Default 10.
    #[serde(default = "default_fps")]
    pub fps: u32,
    /// Length of one loop in seconds; the scenario repeats after it. Required.
    pub duration_secs: f64,
    /// Seed of the sensor noise and of the backdrop's details. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Which violations the ground truth reports for this scene. Default none.
    #[serde(default)]
    pub rules: Vec<ViolationKind>,
    /// `[from, to]` seconds of the loop during which a pharmacist must be present (`personAbsent`).
    /// Default: the whole loop.
    #[serde(default)]
    pub open_hours: Option<[f64; 2]>,
    /// Present when the camera sees in infrared while the lights are off. Default: absent (colour).
    #[serde(default)]
    pub infrared: Option<Infrared>,
    /// People and animals. Default none.
    #[serde(default, rename = "actor")]
    pub actors: Vec<Actor>,
    /// Things that are not violations but may fool a detector. Default none.
    #[serde(default, rename = "distractor")]
    pub distractors: Vec<Distractor>,
}

fn default_width() -> u32 {
    1280
}
fn default_height() -> u32 {
    720
}
fn default_fps() -> u32 {
    10
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BackdropKind {
    Kitchen,
    Pharmacy,
}

/// Violation kinds, spelled like the proto crate's `ViolationKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ViolationKind {
    NoChefHat,
    NoMask,
    Rodent,
    PersonAbsent,
}

/// Infrared look used while the lights are off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Infrared {
    /// Standard deviation of the per-pixel sensor noise, in luma steps. Default 8.
    #[serde(default = "default_noise")]
    pub noise: f64,
    /// Darkening of the corners, 0 (none) to 1 (black corners). Default 0.45.
    #[serde(default = "default_vignette")]
    pub vignette: f64,
    /// Relative frame-to-frame brightness flicker, 0 to 0.5. Default 0.03.
    #[serde(default = "default_flicker")]
    pub flicker: f64,
}

fn default_noise() -> f64 {
    8.0
}
fn default_vignette() -> f64 {
    0.45
}
fn default_flicker() -> f64 {
    0.03
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ActorKind {
    Person,
    Rodent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Kitchen staff: chef-hat and mask rules apply.
    Cook,
    /// Must be present during opening hours (`personAbsent`).
    Pharmacist,
    Customer,
    /// Anyone else (cleaner, delivery): no rules apply.
    Visitor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Stand and work with the hands (small arm motion).
    Work,
}

/// One timed point of a path. The actor exists from the first keyframe's `t` to the last's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyframe {
    /// Seconds into the loop.
    pub t: f64,
    /// Normalised x (persons: feet; rodents and insects: centre). May lie a little outside 0..1.
    pub x: f64,
    /// Normalised y, like `x`.
    pub y: f64,
    /// Pose from this keyframe until the next one. Default: walk when moving, stand when not.
    #[serde(default)]
    pub action: Option<Action>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Unique within the scenario, `[a-z0-9][a-z0-9_-]*`.
    pub id: String,
    pub kind: ActorKind,
    /// Timed keyframes, at least one, times strictly increasing.
    pub path: Vec<Keyframe>,
    /// Person: wears a white chef hat. Default false.
    #[serde(default)]
    pub hat: Option<bool>,
    /// Person: wears a face mask. Default false.
    #[serde(default)]
    pub mask: Option<bool>,
    /// Person: role. Default cook.
    #[serde(default)]
    pub role: Option<Role>,
    /// Rodent: body length (without tail) in pixels at the scenario's resolution. Required for rodents.
    #[serde(default)]
    pub body_length_px: Option<f64>,
}

impl Actor {
    pub fn hat(&self) -> bool {
        self.hat.unwrap_or(false)
    }
    pub fn mask(&self) -> bool {
        self.mask.unwrap_or(false)
    }
    pub fn role(&self) -> Role {
        self.role.unwrap_or(Role::Cook)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DistractorKind {
    /// The room lights switch on at `on_at` (and off at `off_at`, if given).
    Lights,
    /// A big blurry insect close to the lens flying erratically along `path`.
    Insect,
    /// A towel on a hook at (`x`, `y`) swinging with `period_secs` and `amplitude_deg`.
    Cloth,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distractor {
    pub kind: DistractorKind,
    /// Insect, cloth: object id in the truth, unique within the scenario. Required for them.
    #[serde(default)]
    pub id: Option<String>,
    /// Lights: seconds when they switch on (required). Insect, cloth: appearance (default 0).
    #[serde(default)]
    pub on_at: Option<f64>,
    /// Seconds when the lights switch off again / the object disappears. Default: end of the loop.
    #[serde(default)]
    pub off_at: Option<f64>,
    /// Insect: flight path (required).
    #[serde(default)]
    pub path: Option<Vec<Keyframe>>,
    /// Insect: blob diameter in pixels (required).
    #[serde(default)]
    pub size_px: Option<f64>,
    /// Insect: amplitude of the erratic motion around the path, in pixels. Default 40.
    #[serde(default)]
    pub jitter_px: Option<f64>,
    /// Cloth: hook position, normalised (required).
    #[serde(default)]
    pub x: Option<f64>,
    #[serde(default)]
    pub y: Option<f64>,
    /// Cloth: towel length in pixels (required).
    #[serde(default)]
    pub length_px: Option<f64>,
    /// Cloth: swing period in seconds. Default 3.
    #[serde(default)]
    pub period_secs: Option<f64>,
    /// Cloth: swing amplitude in degrees. Default 15.
    #[serde(default)]
    pub amplitude_deg: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path} is not valid: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("scenario {path}: field `{field}`: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
}

impl ScenarioError {
    /// The offending field for validation errors (`actor[1].path[2].t`).
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Is `id` a valid identifier (`[a-z0-9][a-z0-9_-]{0,63}`)? Used for camera and object ids.
pub fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: shown.clone(),
            source,
        })?;
        Scenario::parse(&text, &shown)
    }

    /// Parses and validates scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|source| ScenarioError::Parse {
            path: origin.to_string(),
            source,
        })?;
        s.validate()
            .map_err(|(field, message)| ScenarioError::Invalid {
                path: origin.to_string(),
                field,
                message,
            })?;
        Ok(s)
    }

    /// Frames in one loop.
    pub fn frames_per_loop(&self) -> u64 {
        ((self.duration_secs * self.fps as f64).round() as u64).max(1)
    }

    /// Seconds into the loop of absolute frame `n`.
    pub fn time_of(&self, n: u64) -> f64 {
        (n % self.frames_per_loop()) as f64 / self.fps as f64
    }

    /// Are the lights on at loop time `t`? Scenes without infrared are always lit.
    pub fn lights_on(&self, t: f64) -> bool {
        if self.infrared.is_none() {
            return true;
        }
        self.distractors
            .iter()
            .filter(|d| d.kind == DistractorKind::Lights)
            .any(|d| t >= d.on_at.unwrap_or(f64::INFINITY) && t < d.off_at.unwrap_or(f64::INFINITY))
    }
}

/// Where an actor is on its path at loop time `t`: `(x, y, action, moving_dx)`, or `None` when absent.
pub fn position_at(path: &[Keyframe], t: f64) -> Option<PathPoint> {
    let first = path.first()?;
    let last = path.last()?;
    if t < first.t || t > last.t {
        return None;
    }
    let k = path.iter().rposition(|kf| kf.t <= t).unwrap_or(0);
    let a = &path[k];
    let Some(b) = path.get(k + 1) else {
        return Some(PathPoint {
            x: a.x,
            y: a.y,
            vx: 0.0,
            vy: 0.0,
            action: a.action,
        });
    };
    let span = b.t - a.t;
    let u = ((t - a.t) / span).clamp(0.0, 1.0);
    Some(PathPoint {
        x: a.x + (b.x - a.x) * u,
        y: a.y + (b.y - a.y) * u,
        vx: (b.x - a.x) / span,
        vy: (b.y - a.y) / span,
        action: a.action,
    })
}

/// A point on a path with its velocity (normalised units per second).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathPoint {
    pub x: f64,
    pub y: f64,
    pub vx: f64,
    pub vy: f64,
    pub action: Option<Action>,
}
