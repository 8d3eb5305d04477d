//! Drill scenarios: YAML files (`dispatch/data/drills/*.yaml`), parsed and validated here as plain
//! code. Every error names the file, the line and the field (`injects[2].at`), so a coordinator
//! can fix a scenario without reading Rust.

use crate::auth::Role;
use crate::incident::policy;
use crate::registry::premises;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The longest a drill may script: one week.
pub const MAX_OFFSET_SECS: u64 = 7 * 86400;

/// A scenario as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Format version; must be 1.
    pub version: u32,
    /// Stable id (lowercase letters, digits, `-`, `_`); runs refer to it.
    pub id: String,
    /// Chinese title, shown on every screen and in the report.
    pub title: String,
    /// What the exercise is about and what it tests.
    #[serde(default)]
    pub summary: String,
    pub participants: Participants,
    /// Named places the injects happen at, bound to real premises when a run starts.
    pub places: BTreeMap<String, Place>,
    pub injects: Vec<Inject>,
    pub expectations: Vec<Expectation>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Participants {
    /// Town ids taking part; a run's coordinator must have them all in scope.
    pub towns: Vec<String>,
    /// The teams taking part, by name (shown in the report).
    #[serde(default)]
    pub teams: Vec<String>,
    /// The roles that play (e.g. `field`, `townOfficer`, `operator`).
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Place {
    /// One of `participants.towns`.
    pub town: String,
    /// The premises kind to pick when the run does not name premises (`schoolCanteen`, …).
    pub kind: String,
    /// What the place is, for people (e.g. 斋堂镇中心小学食堂).
    #[serde(default)]
    pub label: String,
}

/// One scripted event, `at` seconds after STARTEX. (Unknown keys are refused by [`What`]: serde
/// cannot deny them on a struct with a flattened field.)
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inject {
    pub id: String,
    /// Seconds after the start (or `"20m"`, `"2h"`).
    #[serde(deserialize_with = "secs")]
    pub at: u64,
    #[serde(flatten)]
    pub what: What,
}

/// What an inject does.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum What {
    /// A call to the hotline, taken through the real intake.
    #[serde(rename_all = "camelCase")]
    Hotline {
        /// `12331` or `12315`.
        line: String,
        place: String,
        kind: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        case_count: Option<u32>,
        #[serde(default)]
        deaths: Option<u32>,
    },
    /// A follow-up report with new figures (more cases, deaths): it joins the incident of the same
    /// place and kind, and the suggested severity rises with it.
    #[serde(rename_all = "camelCase")]
    CaseUpdate {
        place: String,
        kind: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        case_count: Option<u32>,
        #[serde(default)]
        deaths: Option<u32>,
    },
    /// A message to role-players (a parent calls, the press asks): shown on the drill console.
    #[serde(rename_all = "camelCase")]
    Message {
        /// Roles it is for.
        to: Vec<String>,
        text: String,
    },
    // --- scene injects (drill::scene) ---
    /// A camsim scene played on a real camera of the place, so the edge's real detector raises
    /// the incident; the edge marks what it detects there as this run's ([`super::scene`]).
    #[serde(rename_all = "camelCase")]
    Scene {
        place: String,
        /// The camsim scene (its scenario `name`), e.g. `kitchen-night`.
        scene: String,
        /// How long it plays: seconds (or `"2m"`), at most [`super::scene::MAX_SCENE_SECS`].
        #[serde(deserialize_with = "secs")]
        duration: u64,
        /// The camera (registry id). Default: the first camera, by id, of the place's premises
        /// that an edge box watches.
        #[serde(default)]
        camera: Option<String>,
    },
    // --- end scene injects ---
}

impl What {
    pub fn kind_name(&self) -> &'static str {
        match self {
            What::Hotline { .. } => "hotline",
            What::CaseUpdate { .. } => "caseUpdate",
            What::Message { .. } => "message",
            What::Scene { .. } => "scene",
        }
    }

    /// Whether it reaches the intake (and so has an incident).
    pub fn reports(&self) -> bool {
        !matches!(self, What::Message { .. })
    }
}

/// Who is expected to do what, within how long after an inject.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expectation {
    pub id: String,
    /// The critical task, in Chinese (rated P/S/M/U).
    pub task: String,
    /// The role expected to act.
    pub role: String,
    /// One of [`ACTIONS`].
    pub action: String,
    /// The inject whose incident the action is on, and from whose firing the time runs.
    pub after: String,
    /// Seconds (or `"5m"`, `"2h"`).
    #[serde(deserialize_with = "secs")]
    pub within: u64,
}

/// What an expectation can ask for: a transition to a state, or the health report.
pub const ACTIONS: [&str; 7] = [
    "triage",
    "dispatch",
    "acknowledge",
    "enRoute",
    "arrive",
    "resolve",
    "healthReport",
];

/// How an action shows on the incident timeline: the state it moves to, or the entry's action.
pub fn timeline_match(action: &str) -> (Option<&'static str>, Option<&'static str>) {
    match action {
        "triage" => (Some("triaged"), None),
        "dispatch" => (Some("dispatched"), None),
        "acknowledge" => (Some("acknowledged"), None),
        "enRoute" => (Some("enRoute"), None),
        "arrive" => (Some("onScene"), None),
        "resolve" => (Some("resolved"), None),
        "healthReport" => (None, Some("healthReported")),
        _ => (None, None),
    }
}

/// Seconds as an integer or a string with a unit: `90`, `"90s"`, `"20m"`, `"2h"`.
fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    match Raw::deserialize(d)? {
        Raw::N(n) => Ok(n),
        Raw::S(s) => parse_secs(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not a duration: write seconds (300) or a number with s, m or h (\"5m\", \"2h\")"
            ))
        }),
    }
}

fn parse_secs(s: &str) -> Option<u64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    let mul = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// Why a scenario file is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct ScenarioError {
    pub file: String,
    /// 1-based; the closest line found for the field.
    pub line: usize,
    /// The field's path, e.g. `injects[2].at`.
    pub field: String,
    pub message: String,
}

/// Parses and validates `text` (named `file` in errors).
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = strip_location(&inner.to_string());
        // an unknown key inside an inject is reported on its parent: point at the key itself
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split_once('`'))
            .map(|(key, _)| format!("{field}.{key}"));
        // the parser's own location is that of the enclosing mapping for errors raised while
        // building a value; the path finds the field itself
        let line = match (&unknown, field.as_str()) {
            (Some(f), _) => locate(text, f),
            (None, "." | "") => inner.location().map_or(1, |l| l.line()),
            (None, f) => locate(text, f),
        };
        ScenarioError {
            file: file.to_owned(),
            line,
            field: if field == "." { "(top)".into() } else { field },
            message,
        }
    })?;
    validate(&scenario).map_err(|(field, message)| ScenarioError {
        file: file.to_owned(),
        line: locate(text, &field),
        field,
        message,
    })?;
    Ok(scenario)
}

/// serde_yaml_ng puts the enclosing path before the message and " at line L column C" after it;
/// the error carries both on its own.
fn strip_location(message: &str) -> String {
    let message = match message.find(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => rest.to_owned(),
        _ => message.to_owned(),
    }
}

type Problem = (String, String);

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    (field.into(), message.into())
}

fn check_id(field: &str, id: &str) -> Result<(), Problem> {
    bl_proto::id::validate_id("id", id).map_err(|e| problem(field, e.to_string()))
}

fn check_role(field: &str, role: &str) -> Result<(), Problem> {
    match Role::parse(role) {
        Some(_) => Ok(()),
        None => Err(problem(
            field,
            format!(
                "{role:?} is not a role ({})",
                Role::ALL.map(Role::as_str).join(", ")
            ),
        )),
    }
}

/// The rules beyond the shape; returns the first problem as (field path, message).
pub fn validate(s: &Scenario) -> Result<(), Problem> {
    if s.version != 1 {
        return Err(problem(
            "version",
            format!("{} is not supported; write 1", s.version),
        ));
    }
    check_id("id", &s.id)?;
    if s.title.trim().is_empty() {
        return Err(problem("title", "is required"));
    }
    if s.participants.towns.is_empty() {
        return Err(problem("participants.towns", "name at least one town id"));
    }
    for (i, t) in s.participants.towns.iter().enumerate() {
        check_id(&format!("participants.towns[{i}]"), t)?;
    }
    for (i, r) in s.participants.roles.iter().enumerate() {
        check_role(&format!("participants.roles[{i}]"), r)?;
    }
    for (name, p) in &s.places {
        check_id(&format!("places.{name}"), name)?;
        if !s.participants.towns.contains(&p.town) {
            return Err(problem(
                format!("places.{name}.town"),
                format!("{:?} is not one of participants.towns", p.town),
            ));
        }
        if !premises::KINDS.contains(&p.kind.as_str()) {
            return Err(problem(
                format!("places.{name}.kind"),
                format!("{:?} is not one of {}", p.kind, premises::KINDS.join(", ")),
            ));
        }
    }
    if s.injects.is_empty() {
        return Err(problem("injects", "a drill needs at least one inject"));
    }
    for (i, inj) in s.injects.iter().enumerate() {
        let at = |f: &str| format!("injects[{i}].{f}");
        check_id(&at("id"), &inj.id)?;
        if s.injects[..i].iter().any(|o| o.id == inj.id) {
            return Err(problem(at("id"), format!("{:?} is used twice", inj.id)));
        }
        if inj.at > MAX_OFFSET_SECS {
            return Err(problem(at("at"), "is more than 7 days after the start"));
        }
        match &inj.what {
            What::Hotline {
                line, place, kind, ..
            } => {
                if line != "12331" && line != "12315" {
                    return Err(problem(at("line"), "must be \"12331\" or \"12315\""));
                }
                check_place(s, &at("place"), place)?;
                check_kind(&at("kind"), kind)?;
            }
            What::CaseUpdate { place, kind, .. } => {
                check_place(s, &at("place"), place)?;
                check_kind(&at("kind"), kind)?;
                let opened_before = s.injects[..i].iter().any(|o| {
                    matches!(&o.what, What::Hotline { place: p, kind: k, .. }
                        if p == place && k == kind && o.at <= inj.at)
                });
                if !opened_before {
                    return Err(problem(
                        at("place"),
                        "a case update needs an earlier hotline inject at the same place and kind",
                    ));
                }
            }
            What::Message { to, text } => {
                if text.trim().is_empty() {
                    return Err(problem(at("text"), "is required"));
                }
                for (k, r) in to.iter().enumerate() {
                    check_role(&at(&format!("to[{k}]")), r)?;
                }
            }
            What::Scene {
                place,
                scene,
                duration,
                camera,
            } => {
                check_place(s, &at("place"), place)?;
                check_id(&at("scene"), scene)?;
                if *duration == 0 || *duration > super::scene::MAX_SCENE_SECS {
                    return Err(problem(
                        at("duration"),
                        format!("must be between 1 s and {} s", super::scene::MAX_SCENE_SECS),
                    ));
                }
                if let Some(c) = camera {
                    bl_proto::CameraId::new(c.as_str())
                        .map_err(|e| problem(at("camera"), e.to_string()))?;
                }
            }
        }
    }
    for (i, e) in s.expectations.iter().enumerate() {
        let at = |f: &str| format!("expectations[{i}].{f}");
        check_id(&at("id"), &e.id)?;
        if s.expectations[..i].iter().any(|o| o.id == e.id) {
            return Err(problem(at("id"), format!("{:?} is used twice", e.id)));
        }
        if e.task.trim().is_empty() {
            return Err(problem(at("task"), "is required"));
        }
        check_role(&at("role"), &e.role)?;
        if !ACTIONS.contains(&e.action.as_str()) {
            return Err(problem(
                at("action"),
                format!("{:?} is not one of {}", e.action, ACTIONS.join(", ")),
            ));
        }
        match s.injects.iter().find(|inj| inj.id == e.after) {
            None => {
                return Err(problem(
                    at("after"),
                    format!("no inject has id {:?}", e.after),
                ));
            }
            Some(inj) if !inj.what.reports() => {
                return Err(problem(
                    at("after"),
                    format!("inject {:?} is a message and opens no incident", e.after),
                ));
            }
            Some(_) => {}
        }
        if e.within == 0 || e.within > MAX_OFFSET_SECS {
            return Err(problem(at("within"), "must be between 1 s and 7 days"));
        }
    }
    Ok(())
}

fn check_place(s: &Scenario, field: &str, place: &str) -> Result<(), Problem> {
    if s.places.contains_key(place) {
        Ok(())
    } else {
        Err(problem(
            field,
            format!("no place is named {place:?} under places"),
        ))
    }
}

fn check_kind(field: &str, kind: &str) -> Result<(), Problem> {
    if policy::is_kind(kind) {
        Ok(())
    } else {
        Err(problem(
            field,
            format!("{kind:?} is not one of {}", policy::KINDS.join(", ")),
        ))
    }
}

/// The 1-based line of the field at `path` (`injects[2].at`, `places.school.kind`) in block-style
/// YAML: the deepest part of the path that is found. Plain text scanning by indentation; flow
/// style (`[a, b]`) ends the search at its key's line.
pub fn locate(text: &str, path: &str) -> usize {
    // (line number, indent, text) of every meaningful line; "- key: v" is a dash at its indent
    // and "key: v" two columns further on the same line.
    let mut lines: Vec<(usize, usize, &str)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let body = raw.trim_start();
        if body.is_empty() || body.starts_with('#') || body.starts_with("---") {
            continue;
        }
        let indent = raw.len() - body.len();
        if let Some(rest) = body
            .strip_prefix("- ")
            .or(if body == "-" { Some("") } else { None })
        {
            lines.push((n + 1, indent, "-"));
            let rest_trim = rest.trim_start();
            if !rest_trim.is_empty() {
                lines.push((
                    n + 1,
                    indent + 2 + (rest.len() - rest_trim.len()),
                    rest_trim,
                ));
            }
        } else {
            lines.push((n + 1, indent, body));
        }
    }
    let mut segments = Vec::new();
    for part in path.split('.') {
        match part.split_once('[') {
            Some((key, rest)) => {
                if !key.is_empty() {
                    segments.push(key.to_owned());
                }
                for idx in rest.split('[') {
                    segments.push(format!("[{}", idx.trim_end_matches(']')));
                }
            }
            None if !part.is_empty() => segments.push(part.to_owned()),
            None => {}
        }
    }
    // the block under the current node: lines [from, to)
    let (mut from, mut to, mut found) = (0, lines.len(), 1);
    for seg in segments {
        let block = &lines[from..to];
        let Some(child_indent) = block.iter().map(|l| l.1).min() else {
            break;
        };
        let hit = if let Some(idx) = seg.strip_prefix('[') {
            let Ok(idx) = idx.parse::<usize>() else { break };
            block
                .iter()
                .enumerate()
                .filter(|(_, l)| l.1 == child_indent && l.2 == "-")
                .nth(idx)
                .map(|(k, _)| k)
        } else {
            block.iter().position(|l| {
                l.1 == child_indent
                    && (l.2.starts_with(&format!("{seg}:"))
                        || l.2.starts_with(&format!("\"{seg}\":")))
            })
        };
        let Some(k) = hit else { break };
        let start = from + k;
        found = lines[start].0;
        // the node's block: what follows it, indented further (a dash's first key sits on the
        // dash's own line two columns in, so it belongs to the block too)
        let end = lines[start + 1..to]
            .iter()
            .position(|l| l.1 <= child_indent)
            .map_or(to, |p| start + 1 + p);
        from = start + 1;
        to = end;
    }
    found
}

/// The scenarios shipped with dispatch (`dispatch/data/drills/`).
const BUILT_IN: &[(&str, &str)] = &[
    (
        "zhaitang-school-poisoning.yaml",
        include_str!("../../data/drills/zhaitang-school-poisoning.yaml"),
    ),
    (
        "adr-pharmacy-cluster.yaml",
        include_str!("../../data/drills/adr-pharmacy-cluster.yaml"),
    ),
    (
        "dayu-restaurant-rodent.yaml",
        include_str!("../../data/drills/dayu-restaurant-rodent.yaml"),
    ),
];

static CATALOGUE: LazyLock<Vec<(Scenario, &'static str)>> = LazyLock::new(|| {
    BUILT_IN
        .iter()
        .map(|(file, text)| {
            let s = parse(file, text).unwrap_or_else(|e| panic!("built-in scenario: {e}"));
            (s, *text)
        })
        .collect()
});

/// Every scenario dispatch knows, with its text.
pub fn catalogue() -> &'static [(Scenario, &'static str)] {
    &CATALOGUE
}

/// The scenario `id`, with its text.
pub fn find(id: &str) -> Option<&'static (Scenario, &'static str)> {
    CATALOGUE.iter().find(|(s, _)| s.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_parses_and_validates() {
        for (file, text) in BUILT_IN {
            parse(file, text).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(find("zhaitang-school-poisoning").is_some());
    }

    fn zhaitang() -> &'static str {
        BUILT_IN[0].1
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(parse_secs("90s"), Some(90));
        assert_eq!(parse_secs("20m"), Some(1200));
        assert_eq!(parse_secs("2h"), Some(7200));
        assert_eq!(parse_secs("2d"), None);
        assert_eq!(parse_secs("h"), None);
    }

    #[test]
    fn an_unknown_field_is_named_with_its_line() {
        let text = zhaitang().replacen(
            "    line: \"12331\"",
            "    line: \"12331\"\n    colour: red",
            1,
        );
        let e = parse("s.yaml", &text).unwrap_err();
        assert!(e.field.starts_with("injects[0]"), "{e}");
        assert!(e.message.contains("colour"), "{e}");
        assert_eq!(e.line, line_of(&text, "colour"), "{e}");
    }

    #[test]
    fn a_bad_duration_is_named_with_its_line() {
        let text = zhaitang().replacen("within: 300", "within: soon", 1);
        let e = parse("s.yaml", &text).unwrap_err();
        assert!(e.field.starts_with("expectations[0]"), "{e}");
        assert!(e.message.contains("not a duration"), "{e}");
        assert_eq!(e.line, line_of(&text, "within: soon"), "{e}");
    }

    #[test]
    fn a_rule_broken_after_parsing_is_located_by_its_path() {
        let text = zhaitang().replacen("action: arrive", "action: teleport", 1);
        let e = parse("s.yaml", &text).unwrap_err();
        assert_eq!(e.field, "expectations[1].action", "{e}");
        assert!(e.message.contains("teleport"), "{e}");
        assert_eq!(e.line, line_of(&text, "teleport"), "{e}");
        let text = zhaitang().replacen("after: first-call", "after: nothing", 1);
        let e = parse("s.yaml", &text).unwrap_err();
        assert_eq!(e.field, "expectations[0].after", "{e}");
        assert_eq!(e.line, line_of(&text, "after: nothing"), "{e}");
    }

    #[test]
    fn a_place_outside_the_participating_towns_is_refused() {
        let text = zhaitang().replacen("town: zhaitang", "town: qingshui", 1);
        let e = parse("s.yaml", &text).unwrap_err();
        assert_eq!(e.field, "places.school.town", "{e}");
        assert_eq!(e.line, line_of(&text, "town: qingshui"), "{e}");
    }

    fn dayu() -> &'static str {
        BUILT_IN[2].1
    }

    #[test]
    fn a_scene_inject_names_its_place_scene_and_duration() {
        let (s, _) = find("dayu-restaurant-rodent").expect("shipped");
        assert!(s.injects.iter().any(|i| matches!(
            &i.what,
            What::Scene { scene, duration, .. } if scene == "kitchen-night" && *duration > 0
        )));
        let text = dayu().replacen("scene: kitchen-night", "scene: Kitchen Night", 1);
        let e = parse("d.yaml", &text).unwrap_err();
        assert!(e.field.ends_with(".scene"), "{e}");
        assert_eq!(e.line, line_of(&text, "Kitchen Night"), "{e}");
        let text = dayu().replacen("duration: 40", "duration: 2h", 1);
        let e = parse("d.yaml", &text).unwrap_err();
        assert!(e.field.ends_with(".duration"), "{e}");
        assert!(e.message.contains("3600"), "{e}");
        assert_eq!(e.line, line_of(&text, "duration: 2h"), "{e}");
        let text = dayu().replacen("place: restaurant", "place: bakery", 1);
        let e = parse("d.yaml", &text).unwrap_err();
        assert!(e.message.contains("bakery"), "{e}");
    }

    #[test]
    fn a_case_update_needs_an_earlier_report() {
        let text = zhaitang().replacen(
            "kind: suspectedPoisoning\n    caseCount: 35",
            "kind: rodent\n    caseCount: 35",
            1,
        );
        let e = parse("s.yaml", &text).unwrap_err();
        assert!(e.field.ends_with(".place"), "{e}");
    }
}
