//! `[clocks]`: the target of each incident clock, the at-risk point, whom a clock escalates to, and
//! the holiday table. A target of `0` turns that clock off.

use super::calendar::{Calendar, HolidaysFileError};
use crate::escalation::Target;
use crate::incident::policy;
use bl_service::config::{ConfigError, field_error};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest target in seconds: 30 days.
pub const MAX_SECS: u64 = 30 * 24 * 3600;
/// Longest target in working days (about a year and a half).
pub const MAX_WORKING_DAYS: u32 = 365;

/// `[clocks]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClocksConfig {
    /// A running clock is *at risk* once this share of its time (working time for working-day
    /// clocks) has passed. Default `80`; 1 to 99.
    #[serde(default = "default_at_risk_percent")]
    pub at_risk_percent: u8,
    /// Acknowledgement of an immediate-tier incident, from its opening. Default `300`.
    #[serde(default = "default_ack_immediate")]
    pub ack_immediate_secs: u64,
    /// Acknowledgement of a deadline-tier incident, from its dispatch. Default `1800`.
    #[serde(default = "default_ack_deadline")]
    pub ack_deadline_secs: u64,
    /// Arrival on scene of an immediate-tier incident, from its acknowledgement. Default `1800`.
    #[serde(default = "default_arrival_immediate")]
    pub arrival_immediate_secs: u64,
    /// Arrival on scene of a deadline-tier incident, from its acknowledgement. Default `7200`.
    #[serde(default = "default_arrival_deadline")]
    pub arrival_deadline_secs: u64,
    /// The report to the health authority, from the opening. Default `7200` (2 hours).
    #[serde(default = "default_health_report")]
    pub health_report_secs: u64,
    /// Kinds that must be reported to the health authority. Default `["suspectedPoisoning"]`.
    #[serde(default = "default_health_report_kinds")]
    pub health_report_kinds: Vec<String>,
    /// Deciding whether a hotline complaint is accepted, in working days after the day it came
    /// in. Default `7` (市场监督管理投诉举报处理暂行办法: 7 working days).
    #[serde(default = "default_acceptance")]
    pub complaint_acceptance_working_days: u32,
    /// Handling an accepted hotline complaint, in working days after the day it was accepted.
    /// Default `45` (the same rules end mediation 45 working days after acceptance).
    #[serde(default = "default_handling")]
    pub complaint_handling_working_days: u32,
    /// Rectification of a deadline-tier incident (verified: resolved), from its opening.
    /// Default `86400` (24 hours).
    #[serde(default = "default_rectification")]
    pub rectification_secs: u64,
    /// Whom a clock at risk notifies. Default `"team"` (the routed team; none on duty: the town
    /// officers).
    #[serde(default = "default_at_risk_notify")]
    pub at_risk_notify: Target,
    /// Whom an overdue clock notifies. Default `"townOfficers"`.
    #[serde(default = "default_overdue_notify")]
    pub overdue_notify: Target,
    /// The holiday table (TSV `date kind name`). Default: none, then the table shipped in
    /// `dispatch/data/holidays-cn.tsv` (compiled in). A bad line stops start-up naming line and column.
    #[serde(default)]
    pub holidays_file: Option<PathBuf>,
    /// The working-day calendar: the built-in table, or `holidays_file` read by [`Self::load_holidays`].
    #[serde(skip, default = "Calendar::builtin")]
    pub calendar: Arc<Calendar>,
}

fn default_at_risk_percent() -> u8 {
    80
}
fn default_ack_immediate() -> u64 {
    300
}
fn default_ack_deadline() -> u64 {
    1800
}
fn default_arrival_immediate() -> u64 {
    1800
}
fn default_arrival_deadline() -> u64 {
    7200
}
fn default_health_report() -> u64 {
    7200
}
fn default_health_report_kinds() -> Vec<String> {
    vec!["suspectedPoisoning".into()]
}
fn default_acceptance() -> u32 {
    7
}
fn default_handling() -> u32 {
    45
}
fn default_rectification() -> u64 {
    86400
}
fn default_at_risk_notify() -> Target {
    Target::Team
}
fn default_overdue_notify() -> Target {
    Target::TownOfficers
}

impl Default for ClocksConfig {
    fn default() -> Self {
        Self {
            at_risk_percent: default_at_risk_percent(),
            ack_immediate_secs: default_ack_immediate(),
            ack_deadline_secs: default_ack_deadline(),
            arrival_immediate_secs: default_arrival_immediate(),
            arrival_deadline_secs: default_arrival_deadline(),
            health_report_secs: default_health_report(),
            health_report_kinds: default_health_report_kinds(),
            complaint_acceptance_working_days: default_acceptance(),
            complaint_handling_working_days: default_handling(),
            rectification_secs: default_rectification(),
            at_risk_notify: default_at_risk_notify(),
            overdue_notify: default_overdue_notify(),
            holidays_file: None,
            calendar: Calendar::builtin(),
        }
    }
}

impl ClocksConfig {
    /// Checks the rules serde cannot express; the error is `(field, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, msg: String| Err((format!("clocks.{field}"), msg));
        if !(1..=99).contains(&self.at_risk_percent) {
            return fail("at_risk_percent", "must be between 1 and 99".into());
        }
        for (field, secs) in [
            ("ack_immediate_secs", self.ack_immediate_secs),
            ("ack_deadline_secs", self.ack_deadline_secs),
            ("arrival_immediate_secs", self.arrival_immediate_secs),
            ("arrival_deadline_secs", self.arrival_deadline_secs),
            ("health_report_secs", self.health_report_secs),
            ("rectification_secs", self.rectification_secs),
        ] {
            if secs > MAX_SECS {
                return fail(
                    field,
                    format!("must be at most {MAX_SECS} (30 days); 0 turns it off"),
                );
            }
        }
        for (field, days) in [
            (
                "complaint_acceptance_working_days",
                self.complaint_acceptance_working_days,
            ),
            (
                "complaint_handling_working_days",
                self.complaint_handling_working_days,
            ),
        ] {
            if days > MAX_WORKING_DAYS {
                return fail(
                    field,
                    format!("must be at most {MAX_WORKING_DAYS}; 0 turns it off"),
                );
            }
        }
        for k in &self.health_report_kinds {
            if !policy::is_kind(k) {
                return fail(
                    "health_report_kinds",
                    format!("{k:?} is not one of {}", policy::KINDS.join(", ")),
                );
            }
        }
        Ok(())
    }

    /// Reads `holidays_file`, when set, into [`Self::calendar`]; the error names the field, and
    /// the file's line and column.
    pub fn load_holidays(&mut self, config_path: &Path) -> Result<(), ConfigError> {
        let Some(file) = &self.holidays_file else {
            return Ok(());
        };
        let field = |msg: String| field_error(config_path, "clocks.holidays_file", msg);
        let text = std::fs::read_to_string(file)
            .map_err(|e| field(format!("cannot read {}: {e}", file.display())))?;
        let calendar = Calendar::parse(&file.display().to_string(), &text)
            .map_err(|e: HolidaysFileError| field(e.to_string()))?;
        self.calendar = Arc::new(calendar);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct F {
        #[serde(default)]
        clocks: ClocksConfig,
    }

    fn parse(text: &str) -> Result<ClocksConfig, String> {
        let f: F =
            bl_service::config::parse(Path::new("d.toml"), text).map_err(|e| e.to_string())?;
        f.clocks.validate().map_err(|(f, m)| format!("{f}: {m}"))?;
        Ok(f.clocks)
    }

    #[test]
    fn an_empty_section_gives_the_documented_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.at_risk_percent, 80);
        assert_eq!((c.ack_immediate_secs, c.ack_deadline_secs), (300, 1800));
        assert_eq!(
            (c.arrival_immediate_secs, c.arrival_deadline_secs),
            (1800, 7200)
        );
        assert_eq!(c.health_report_secs, 7200);
        assert_eq!(c.health_report_kinds, ["suspectedPoisoning"]);
        assert_eq!(
            (
                c.complaint_acceptance_working_days,
                c.complaint_handling_working_days
            ),
            (7, 45)
        );
        assert_eq!(c.rectification_secs, 86400);
        assert_eq!(
            (c.at_risk_notify, c.overdue_notify),
            (Target::Team, Target::TownOfficers)
        );
        assert_eq!(c.calendar.years().collect::<Vec<_>>(), [2025, 2026]);
    }

    #[test]
    fn bad_values_and_unknown_fields_are_named() {
        let e = parse("[clocks]\nat_risk_percent = 100\n").unwrap_err();
        assert!(e.contains("clocks.at_risk_percent"), "{e}");
        let e = parse("[clocks]\nhealth_report_kinds = [\"rats\"]\n").unwrap_err();
        assert!(e.contains("clocks.health_report_kinds"), "{e}");
        let e = parse("[clocks]\nack_secs = 5\n").unwrap_err();
        assert!(e.contains("unknown field `ack_secs`"), "{e}");
        let e = parse("[clocks]\ncomplaint_handling_working_days = 1000\n").unwrap_err();
        assert!(e.contains("clocks.complaint_handling_working_days"), "{e}");
        let e = parse("[clocks]\noverdue_notify = \"mayor\"\n").unwrap_err();
        assert!(e.contains("mayor"), "{e}");
    }

    #[test]
    fn a_bad_holidays_file_stops_loading_naming_the_field_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("h.tsv");
        std::fs::write(
            &file,
            "date\tkind\tname\n2027-02-06\tworkday\t春节调休\n2027-13-01\tholiday\tx\n",
        )
        .unwrap();
        let mut c = ClocksConfig {
            holidays_file: Some(file.clone()),
            ..ClocksConfig::default()
        };
        let e = c
            .load_holidays(Path::new("d.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("clocks.holidays_file") && e.contains("line 3, column date"),
            "{e}"
        );
        std::fs::write(&file, "date\tkind\tname\n2027-02-06\tworkday\t春节调休\n").unwrap();
        c.load_holidays(Path::new("d.toml")).unwrap();
        assert_eq!(c.calendar.years().collect::<Vec<_>>(), [2027]);
        assert!(
            c.calendar
                .is_working_day(chrono::NaiveDate::from_ymd_opt(2027, 2, 6).unwrap())
        );
    }
}
