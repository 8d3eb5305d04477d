//! The suggested severity level (I–IV) of an emergency, as plain logic over
//! `[incidents.severity]`.
//!
//! Only for the kinds in `incidents.severity.kinds` (by default suspected poisoning and adverse
//! drug reactions). The rule is modelled on the four grades of the national and Beijing
//! food-safety emergency plans (特别重大 I, 重大 II, 较大 III, 一般 IV). Every threshold is a config
//! field, so the district sets the numbers of its own plan:
//!
//! 1. deaths ≥ `level_i_deaths` (10) → I; else deaths ≥ `level_ii_deaths` (1) or cases ≥
//!    `level_ii_cases` (100) → II; else cases ≥ `level_iii_cases` (30) → III; else IV (also when the
//!    count is not known yet);
//! 2. in a sensitive setting (`raised_settings`: school canteens and central kitchens by default) the
//!    level is raised by one (IV → III, III → II, II → I), so a school canteen with 30 or more cases
//!    is at least II.
//!
//! The result is a suggestion shown to the operator with its reasoning; starting a level of the
//! emergency plan stays a human decision.

use serde::{Deserialize, Serialize};

/// Emergency severity, I (most severe) to IV. Ordered: `I < II` means I is graver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    I,
    II,
    III,
    IV,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::I => "I",
            Severity::II => "II",
            Severity::III => "III",
            Severity::IV => "IV",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::I, Severity::II, Severity::III, Severity::IV]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    /// One level graver (I stays I).
    fn raised(self) -> Severity {
        match self {
            Severity::I | Severity::II => Severity::I,
            Severity::III => Severity::II,
            Severity::IV => Severity::III,
        }
    }
}

/// `[incidents.severity]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityConfig {
    /// Kinds that get a suggested severity. Default `["suspectedPoisoning", "adverseDrugReaction"]`.
    #[serde(default = "default_severity_kinds")]
    pub kinds: Vec<String>,
    /// Cases from which the level is III (较大). Default `30`.
    #[serde(default = "default_iii_cases")]
    pub level_iii_cases: u32,
    /// Cases from which the level is II (重大). Default `100`; above `level_iii_cases`.
    #[serde(default = "default_ii_cases")]
    pub level_ii_cases: u32,
    /// Deaths from which the level is II. Default `1`.
    #[serde(default = "default_ii_deaths")]
    pub level_ii_deaths: u32,
    /// Deaths from which the level is I (特别重大). Default `10`; above `level_ii_deaths`.
    #[serde(default = "default_i_deaths")]
    pub level_i_deaths: u32,
    /// Settings (premises kinds) where the level is raised by one. Default
    /// `["schoolCanteen", "centralKitchen"]`.
    #[serde(default = "default_raised")]
    pub raised_settings: Vec<String>,
}

/// Owned copies of `v` (for list defaults).
pub(super) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}
fn default_severity_kinds() -> Vec<String> {
    strings(&["suspectedPoisoning", "adverseDrugReaction"])
}
fn default_iii_cases() -> u32 {
    30
}
fn default_ii_cases() -> u32 {
    100
}
fn default_ii_deaths() -> u32 {
    1
}
fn default_i_deaths() -> u32 {
    10
}
fn default_raised() -> Vec<String> {
    strings(&["schoolCanteen", "centralKitchen"])
}

impl Default for SeverityConfig {
    fn default() -> Self {
        Self {
            kinds: default_severity_kinds(),
            level_iii_cases: default_iii_cases(),
            level_ii_cases: default_ii_cases(),
            level_ii_deaths: default_ii_deaths(),
            level_i_deaths: default_i_deaths(),
            raised_settings: default_raised(),
        }
    }
}

/// A suggested severity and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub level: Severity,
    pub reason: String,
}

impl SeverityConfig {
    /// Checks the thresholds are ordered; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let s = self;
        if s.level_iii_cases == 0 {
            return Err((
                "incidents.severity.level_iii_cases",
                "must be at least 1".into(),
            ));
        }
        if s.level_ii_cases <= s.level_iii_cases {
            return Err((
                "incidents.severity.level_ii_cases",
                "must be above level_iii_cases".into(),
            ));
        }
        if s.level_ii_deaths == 0 {
            return Err((
                "incidents.severity.level_ii_deaths",
                "must be at least 1".into(),
            ));
        }
        if s.level_i_deaths <= s.level_ii_deaths {
            return Err((
                "incidents.severity.level_i_deaths",
                "must be above level_ii_deaths".into(),
            ));
        }
        Ok(())
    }

    /// The suggested severity of a report of `kind` with these counts in `setting` (a premises
    /// kind), or `None` for kinds that are not emergencies. See the module documentation.
    pub fn suggest(
        &self,
        kind: &str,
        cases: Option<u32>,
        deaths: Option<u32>,
        setting: Option<&str>,
    ) -> Option<Suggestion> {
        let s = self;
        if !s.kinds.iter().any(|k| k == kind) {
            return None;
        }
        let (cases_n, deaths_n) = (cases.unwrap_or(0), deaths.unwrap_or(0));
        let (base, why) = if deaths_n >= s.level_i_deaths {
            (
                Severity::I,
                format!("{deaths_n} deaths ≥ {}", s.level_i_deaths),
            )
        } else if deaths_n >= s.level_ii_deaths {
            (
                Severity::II,
                format!("{deaths_n} deaths ≥ {}", s.level_ii_deaths),
            )
        } else if cases_n >= s.level_ii_cases {
            (
                Severity::II,
                format!("{cases_n} cases ≥ {}", s.level_ii_cases),
            )
        } else if cases_n >= s.level_iii_cases {
            (
                Severity::III,
                format!("{cases_n} cases ≥ {}", s.level_iii_cases),
            )
        } else if cases.is_some() {
            (
                Severity::IV,
                format!("{cases_n} cases < {}", s.level_iii_cases),
            )
        } else {
            (Severity::IV, "case count not known yet".to_owned())
        };
        let mut reason = format!("{why}: {}", base.as_str());
        let level = match setting {
            Some(place) if s.raised_settings.iter().any(|r| r == place) => {
                let raised = base.raised();
                reason.push_str(&format!(
                    "; setting {place} raises one level: {}",
                    raised.as_str()
                ));
                raised
            }
            _ => base,
        };
        reason.push_str(" (thresholds: [incidents.severity] in the dispatch config)");
        Some(Suggestion { level, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::policy::IncidentsConfig;

    fn config() -> IncidentsConfig {
        IncidentsConfig::default()
    }

    fn level(cases: Option<u32>, deaths: Option<u32>, setting: Option<&str>) -> Severity {
        config()
            .suggest_severity("suspectedPoisoning", cases, deaths, setting)
            .unwrap()
            .level
    }

    #[test]
    fn a_school_canteen_with_thirty_cases_is_level_ii_or_graver() {
        let s = config()
            .suggest_severity("suspectedPoisoning", Some(32), None, Some("schoolCanteen"))
            .unwrap();
        assert_eq!(s.level, Severity::II);
        assert!(s.reason.contains("32 cases ≥ 30"), "{}", s.reason);
        assert!(s.reason.contains("schoolCanteen raises"), "{}", s.reason);
        assert!(level(Some(30), None, Some("schoolCanteen")) <= Severity::II);
        assert_eq!(level(Some(120), None, Some("schoolCanteen")), Severity::I);
    }

    #[test]
    fn case_counts_and_deaths_grade_a_restaurant_poisoning() {
        assert_eq!(level(None, None, Some("restaurant")), Severity::IV);
        assert_eq!(level(Some(5), None, Some("restaurant")), Severity::IV);
        assert_eq!(level(Some(30), None, Some("restaurant")), Severity::III);
        assert_eq!(level(Some(100), None, None), Severity::II);
        assert_eq!(level(Some(3), Some(1), None), Severity::II);
        assert_eq!(level(Some(3), Some(10), None), Severity::I);
        assert_eq!(level(Some(29), None, Some("schoolCanteen")), Severity::III);
    }

    #[test]
    fn thresholds_come_from_the_config() {
        let mut c = config();
        c.severity.level_iii_cases = 10;
        c.severity.raised_settings.clear();
        let s = c
            .suggest_severity("suspectedPoisoning", Some(12), None, Some("schoolCanteen"))
            .unwrap();
        assert_eq!(s.level, Severity::III);
        assert!(s.reason.contains("[incidents.severity]"), "{}", s.reason);
    }

    #[test]
    fn kinds_that_are_not_emergencies_get_no_severity() {
        assert!(
            config()
                .suggest_severity("rodent", Some(40), None, Some("schoolCanteen"))
                .is_none()
        );
    }

    #[test]
    fn severities_round_trip_through_their_names() {
        for s in [Severity::I, Severity::II, Severity::III, Severity::IV] {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        assert!(Severity::I < Severity::IV);
    }
}
