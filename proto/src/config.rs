//! `bl/v1/edge/{edge}/config`: the desired detection set-up of one edge, retained, with a revision.
//!
//! The center publishes the whole desired state each time (never a diff), so a reconnecting edge needs
//! only the retained message; the edge reports the revision it applied in [`crate::state::EdgeState`].

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::check;
use crate::decode::{Message, TypeTag, Violation};
use crate::event::ViolationKind;
use crate::id::{CameraId, EdgeId};
use crate::version::V1;
use crate::voice::WarningSet;

/// The district's time zone, used when a config does not name one.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

/// Longest pre-roll an edge is asked to keep in memory, seconds.
pub const MAX_PRE_ROLL_SECS: u32 = 120;

/// Longest post-roll, seconds.
pub const MAX_POST_ROLL_SECS: u32 = 600;

/// Desired configuration of one edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename = "edgeConfig", rename_all = "camelCase")]
#[schemars(rename = "EdgeConfig", transform = TypeTag("edgeConfig"))]
pub struct EdgeConfig {
    /// Payload version, always 1.
    pub v: V1,
    /// The edge it is for (must match the topic's `{edge}`).
    pub edge_id: EdgeId,
    /// Increases with every change; an edge ignores a revision lower than the one it applied.
    pub revision: u64,
    /// IANA zone in which `activeHours` are read. Default `Asia/Shanghai`.
    #[serde(default = "default_timezone")]
    #[schemars(default = "default_timezone")]
    pub timezone: String,
    /// Rules per camera. A camera listed gets exactly these rules (an empty list switches its
    /// detection off); a camera not listed keeps the rules it has (from the box's own `edge.toml`
    /// or an earlier revision), so a center without a rule set of its own sends `[]`.
    pub cameras: Vec<CameraRules>,
    /// Drill scenes staged on cameras of this edge (DESIGN §5): an episode that starts on the
    /// camera before `until` is an exercise, and every event of it carries `exercise` = `run`.
    /// The list is whole each time: a revision without a camera's entry ends its staging. Default
    /// empty.
    #[serde(default)]
    pub exercises: Vec<StagedExercise>,
    /// The center's automatic voice warnings for this edge's cameras and the messages they play
    /// (issue 7 item 4); they win over the box's own `[talk]` per message id and per (camera,
    /// kind). Whole each time. Default empty (the box's own rules only).
    #[serde(default)]
    pub warnings: WarningSet,
}

/// A drill scene played on one camera: what it detects until `until` belongs to drill run `run`.
///
/// Events of the camera are marked by episode, not by time: an episode that started staged stays
/// an exercise to its end, and one that starts after `until` (or on another camera) is real.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StagedExercise {
    /// The camera the scene plays on.
    pub camera_id: CameraId,
    /// The drill run id that its events carry as `exercise`.
    pub run: String,
    /// When the staging ends (UTC, milliseconds, read against the edge's clock).
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "chrono::DateTime<chrono::Utc>")]
    pub until: chrono::DateTime<chrono::Utc>,
}

fn default_timezone() -> String {
    DEFAULT_TIMEZONE.to_string()
}

/// Detection set-up of one camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CameraRules {
    /// The camera.
    pub camera_id: CameraId,
    /// Seconds of video before an episode's start kept in the clip (at most 120).
    pub pre_roll_secs: u32,
    /// Seconds of video after an episode's end kept in the clip (at most 600).
    pub post_roll_secs: u32,
    /// The rules checked on this camera.
    pub rules: Vec<Rule>,
}

/// One rule on one camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// What is detected.
    pub kind: ViolationKind,
    /// Off keeps the rule (and its zones) but detects nothing.
    pub enabled: bool,
    /// A violation must last this long before an episode starts (filters flicker).
    pub min_duration_secs: u32,
    /// After an episode ends, a new one of the same kind waits this long.
    pub cooldown_secs: u32,
    /// Local hours in which the rule applies (e.g. `personAbsent` only during opening hours); `null` is
    /// all day.
    #[serde(default)]
    pub active_hours: Option<HoursRange>,
    /// Areas of the frame where the rule applies; empty is the whole frame.
    #[serde(default)]
    pub zones: Vec<Polygon>,
}

/// A daily time window `[from, to)` in local time; it wraps midnight when `to` is before `from`
/// (`22:00`–`06:00` is the night).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoursRange {
    /// Start, inclusive.
    pub from: ClockTime,
    /// End, exclusive.
    pub to: ClockTime,
}

impl HoursRange {
    /// Whether `minute_of_day` (0 = 00:00, 1439 = 23:59) falls in the window.
    pub fn contains(&self, minute_of_day: u16) -> bool {
        let (from, to, m) = (self.from.0, self.to.0, minute_of_day);
        if from <= to {
            from <= m && m < to
        } else {
            m >= from || m < to
        }
    }
}

/// A time of day as `HH:MM` (00:00 to 23:59), stored as minutes since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

/// A string that is not `HH:MM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a time of day: expected HH:MM from 00:00 to 23:59")]
pub struct ClockTimeError {
    /// The rejected value (cut to 80 characters).
    pub value: String,
}

impl ClockTime {
    /// From hours and minutes; `None` if out of range.
    pub fn new(hour: u8, minute: u8) -> Option<ClockTime> {
        (hour < 24 && minute < 60).then(|| ClockTime(u16::from(hour) * 60 + u16::from(minute)))
    }

    /// Minutes since midnight, `0..=1439`.
    pub fn minute_of_day(self) -> u16 {
        self.0
    }
}

impl FromStr for ClockTime {
    type Err = ClockTimeError;
    fn from_str(s: &str) -> Result<Self, ClockTimeError> {
        let err = || ClockTimeError {
            value: s.chars().take(80).collect(),
        };
        let b = s.as_bytes();
        if b.len() != 5 || b[2] != b':' || ![b[0], b[1], b[3], b[4]].iter().all(u8::is_ascii_digit)
        {
            return Err(err());
        }
        let hour = (b[0] - b'0') * 10 + (b[1] - b'0');
        let minute = (b[3] - b'0') * 10 + (b[4] - b'0');
        ClockTime::new(hour, minute).ok_or_else(err)
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for ClockTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for ClockTime {
    fn schema_name() -> Cow<'static, str> {
        "ClockTime".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Local time of day, HH:MM (24-hour).",
            "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
        })
    }
}

/// A polygon in normalised frame coordinates (at least 3 points).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Polygon(pub Vec<NormPoint>);

/// A point in normalised frame coordinates: `(0,0)` top left, `(1,1)` bottom right.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NormPoint {
    /// Horizontal, `0..=1`.
    pub x: f32,
    /// Vertical, `0..=1`.
    pub y: f32,
}

/// IANA zone names are letters, digits and `_ + - /`, like `Asia/Shanghai` or `Etc/GMT-8`. The edge
/// resolves the name; this only keeps path tricks and junk out.
fn timezone(value: &str) -> Result<(), Violation> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && !value.starts_with('/')
        && !value.contains("..")
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(Violation::new(
            "timezone",
            format!(
                "{:?} is not an IANA time zone name like \"Asia/Shanghai\"",
                value.chars().take(80).collect::<String>()
            ),
        ))
    }
}

impl Message for EdgeConfig {
    const TYPES: &'static [&'static str] = &["edgeConfig"];
    const SCHEMA_NAME: &'static str = "edge-config";

    fn validate(&self) -> Result<(), Violation> {
        timezone(&self.timezone)?;
        let mut seen = HashSet::new();
        for (c, cam) in self.cameras.iter().enumerate() {
            let at = |rest: &str| format!("cameras[{c}].{rest}");
            if !seen.insert(&cam.camera_id) {
                return Err(Violation::new(
                    at("cameraId"),
                    format!("{} is listed twice", cam.camera_id),
                ));
            }
            if cam.pre_roll_secs > MAX_PRE_ROLL_SECS {
                return Err(Violation::new(
                    at("preRollSecs"),
                    format!("{} is more than {MAX_PRE_ROLL_SECS}", cam.pre_roll_secs),
                ));
            }
            if cam.post_roll_secs > MAX_POST_ROLL_SECS {
                return Err(Violation::new(
                    at("postRollSecs"),
                    format!("{} is more than {MAX_POST_ROLL_SECS}", cam.post_roll_secs),
                ));
            }
            for (r, rule) in cam.rules.iter().enumerate() {
                if let Some(h) = rule.active_hours
                    && h.from == h.to
                {
                    return Err(Violation::new(
                        at(&format!("rules[{r}].activeHours")),
                        "`from` equals `to`; leave activeHours null for all day",
                    ));
                }
                for (z, zone) in rule.zones.iter().enumerate() {
                    let zpath = at(&format!("rules[{r}].zones[{z}]"));
                    if zone.0.len() < 3 || zone.0.len() > 64 {
                        return Err(Violation::new(
                            zpath,
                            format!("has {} points, needs 3 to 64", zone.0.len()),
                        ));
                    }
                    for (p, pt) in zone.0.iter().enumerate() {
                        check::unit(&format!("{zpath}[{p}].x"), pt.x)?;
                        check::unit(&format!("{zpath}[{p}].y"), pt.y)?;
                    }
                }
            }
        }
        let mut staged = HashSet::new();
        for (i, x) in self.exercises.iter().enumerate() {
            if !staged.insert(&x.camera_id) {
                return Err(Violation::new(
                    format!("exercises[{i}].cameraId"),
                    format!("{} is staged twice", x.camera_id),
                ));
            }
            // the same rule as an event's `exercise`, which this becomes
            check::text(&format!("exercises[{i}].run"), &x.run, 128)?;
        }
        self.warnings.validate("warnings")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: &str, to: &str) -> HoursRange {
        HoursRange {
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
        }
    }

    fn minute(s: &str) -> u16 {
        s.parse::<ClockTime>().unwrap().minute_of_day()
    }

    #[test]
    fn a_daytime_range_contains_its_start_but_not_its_end() {
        let day = range("08:00", "20:30");
        assert!(day.contains(minute("08:00")));
        assert!(day.contains(minute("20:29")));
        assert!(!day.contains(minute("20:30")));
        assert!(!day.contains(minute("07:59")));
        assert!(!day.contains(minute("23:00")));
    }

    #[test]
    fn a_night_range_wraps_midnight() {
        let night = range("22:00", "06:00");
        for inside in ["22:00", "23:59", "00:00", "03:30", "05:59"] {
            assert!(night.contains(minute(inside)), "{inside}");
        }
        for outside in ["06:00", "12:00", "21:59"] {
            assert!(!night.contains(minute(outside)), "{outside}");
        }
    }

    #[test]
    fn clock_times_are_strict_hh_mm() {
        assert_eq!(minute("00:00"), 0);
        assert_eq!(minute("23:59"), 1439);
        assert_eq!("07:05".parse::<ClockTime>().unwrap().to_string(), "07:05");
        for bad in [
            "24:00", "7:05", "07:5", "07:60", "07-05", "", "0705", "+1:00", "07:05 ",
        ] {
            let err = bad.parse::<ClockTime>().unwrap_err().to_string();
            assert!(err.contains("HH:MM"), "{bad:?}: {err}");
        }
    }
}
