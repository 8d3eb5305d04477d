//! What an incident's kind and report imply, as plain logic over the `[incidents]` config: its
//! tier, the dedup cooldown, and a suggested severity level (I–IV) for emergencies (the rule is
//! in [`super::severity`]).

use crate::registry::premises;
use bl_proto::event::ViolationKind;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::severity::strings;
pub use super::severity::{Severity, SeverityConfig, Suggestion};

/// Every incident kind: the detector's violations, camera faults, and what people report.
pub const KINDS: [&str; 15] = [
    "noChefHat",
    "noMask",
    "noGloves",
    "noUniform",
    "rodent",
    "smoking",
    "phoneUse",
    "personAbsent",
    "uncoveredBin",
    "other",
    "cameraOffline",
    "cameraTampered",
    "suspectedPoisoning",
    "adverseDrugReaction",
    "complaint",
];

/// How fast an incident must be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Tier {
    /// Dispatch at once (rodent, suspected poisoning).
    Immediate,
    /// Talk-down or notice with a rectification deadline; dispatch if not fixed.
    Deadline,
    /// Logged for the next inspection.
    Routine,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Immediate => "immediate",
            Tier::Deadline => "deadline",
            Tier::Routine => "routine",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        [Tier::Immediate, Tier::Deadline, Tier::Routine]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// `[incidents]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentsConfig {
    /// Kinds dispatched at once. Default `["rodent", "suspectedPoisoning", "adverseDrugReaction"]`.
    #[serde(default = "default_immediate")]
    pub immediate: Vec<String>,
    /// Kinds handled by talk-down or a rectification deadline. Default `["noChefHat", "noMask",
    /// "noGloves", "noUniform", "smoking", "phoneUse", "uncoveredBin"]`. Every kind in neither list
    /// (`personAbsent`, `cameraOffline`, `complaint`, …) is routine.
    #[serde(default = "default_deadline")]
    pub deadline: Vec<String>,
    /// A report attaches to the incident of the same premises, kind and exercise while one of its
    /// episodes is open or until this many seconds after its latest report. Default `1800` (30 min).
    #[serde(default = "default_cooldown")]
    pub cooldown_secs: u64,
    /// Camera faults from edges (offline, frozen, covered, moved) open routine incidents of kind
    /// `cameraOffline` / `cameraTampered`; when false they are only stored. Default `true`.
    #[serde(default = "default_true")]
    pub camera_incidents: bool,
    /// The suggested severity of emergencies.
    #[serde(default)]
    pub severity: SeverityConfig,
}

fn default_immediate() -> Vec<String> {
    strings(&["rodent", "suspectedPoisoning", "adverseDrugReaction"])
}
fn default_deadline() -> Vec<String> {
    strings(&[
        "noChefHat",
        "noMask",
        "noGloves",
        "noUniform",
        "smoking",
        "phoneUse",
        "uncoveredBin",
    ])
}
fn default_cooldown() -> u64 {
    1800
}
fn default_true() -> bool {
    true
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        Self {
            immediate: default_immediate(),
            deadline: default_deadline(),
            cooldown_secs: default_cooldown(),
            camera_incidents: true,
            severity: SeverityConfig::default(),
        }
    }
}

/// Whether `kind` is an incident kind.
pub fn is_kind(kind: &str) -> bool {
    KINDS.contains(&kind)
}

impl IncidentsConfig {
    /// Checks the lists name known kinds, once, and the thresholds are ordered. The error is
    /// `(field, message)` with the field's dotted name.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let known = |field: &'static str, list: &[String], allowed: &[&str]| {
            for k in list {
                if !allowed.contains(&k.as_str()) {
                    return Err((field, format!("{k:?} is not one of {}", allowed.join(", "))));
                }
            }
            Ok(())
        };
        known("incidents.immediate", &self.immediate, &KINDS)?;
        known("incidents.deadline", &self.deadline, &KINDS)?;
        known("incidents.severity.kinds", &self.severity.kinds, &KINDS)?;
        known(
            "incidents.severity.raised_settings",
            &self.severity.raised_settings,
            &premises::KINDS,
        )?;
        if let Some(k) = self.deadline.iter().find(|k| self.immediate.contains(k)) {
            return Err((
                "incidents.deadline",
                format!("{k:?} is in incidents.immediate too; a kind has one tier"),
            ));
        }
        if self.cooldown_secs == 0 {
            return Err(("incidents.cooldown_secs", "must be at least 1".into()));
        }
        self.severity.validate()?;
        Ok(())
    }

    /// The tier of `kind`: immediate or deadline when listed, otherwise routine.
    pub fn tier(&self, kind: &str) -> Tier {
        if self.immediate.iter().any(|k| k == kind) {
            Tier::Immediate
        } else if self.deadline.iter().any(|k| k == kind) {
            Tier::Deadline
        } else {
            Tier::Routine
        }
    }

    pub fn cooldown(&self) -> Duration {
        Duration::from_secs(self.cooldown_secs)
    }

    /// The suggested severity of a report of `kind` with these counts in `setting` (a premises
    /// kind), or `None` for kinds that are not emergencies; see [`super::severity`].
    pub fn suggest_severity(
        &self,
        kind: &str,
        cases: Option<u32>,
        deaths: Option<u32>,
        setting: Option<&str>,
    ) -> Option<Suggestion> {
        self.severity.suggest(kind, cases, deaths, setting)
    }
}

/// The wire name of a detector's violation, which is also its incident kind.
pub fn violation_kind(kind: ViolationKind) -> &'static str {
    match kind {
        ViolationKind::NoChefHat => "noChefHat",
        ViolationKind::NoMask => "noMask",
        ViolationKind::NoGloves => "noGloves",
        ViolationKind::NoUniform => "noUniform",
        ViolationKind::Rodent => "rodent",
        ViolationKind::Smoking => "smoking",
        ViolationKind::PhoneUse => "phoneUse",
        ViolationKind::PersonAbsent => "personAbsent",
        ViolationKind::UncoveredBin => "uncoveredBin",
        ViolationKind::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> IncidentsConfig {
        IncidentsConfig::default()
    }

    #[test]
    fn every_detector_violation_is_an_incident_kind_under_its_wire_name() {
        for k in ViolationKind::ALL {
            let wire = serde_json::to_value(k).unwrap();
            assert_eq!(wire.as_str(), Some(violation_kind(k)));
            assert!(is_kind(violation_kind(k)));
        }
    }

    #[test]
    fn the_default_tiers_are_the_documented_ones() {
        let c = config();
        assert!(c.validate().is_ok());
        assert_eq!(c.tier("rodent"), Tier::Immediate);
        assert_eq!(c.tier("suspectedPoisoning"), Tier::Immediate);
        for k in [
            "noChefHat",
            "noMask",
            "noGloves",
            "smoking",
            "phoneUse",
            "uncoveredBin",
            "noUniform",
        ] {
            assert_eq!(c.tier(k), Tier::Deadline, "{k}");
        }
        for k in ["personAbsent", "cameraOffline", "complaint", "other"] {
            assert_eq!(c.tier(k), Tier::Routine, "{k}");
        }
        assert_eq!(c.cooldown(), Duration::from_secs(30 * 60));
    }

    #[test]
    fn an_unknown_kind_in_a_tier_list_names_the_field() {
        let c = IncidentsConfig {
            deadline: vec!["noHat".into()],
            ..config()
        };
        let (field, message) = c.validate().unwrap_err();
        assert_eq!(field, "incidents.deadline");
        assert!(message.contains("\"noHat\""), "{message}");
    }

    #[test]
    fn a_kind_in_two_tiers_is_refused() {
        let c = IncidentsConfig {
            deadline: vec!["rodent".into()],
            ..config()
        };
        assert_eq!(c.validate().unwrap_err().0, "incidents.deadline");
    }

    #[test]
    fn unordered_severity_thresholds_are_refused() {
        let mut c = config();
        c.severity.level_ii_cases = 30;
        assert_eq!(
            c.validate().unwrap_err().0,
            "incidents.severity.level_ii_cases"
        );
    }

    #[test]
    fn tiers_round_trip_through_their_names() {
        for t in [Tier::Immediate, Tier::Deadline, Tier::Routine] {
            assert_eq!(Tier::parse(t.as_str()), Some(t));
        }
    }
}
