//! Clock rules, plain: which clocks an incident gets and when they start and stop, their at-risk
//! and due instants, their state at a given time, and the moment (at risk, overdue) that is due.
//! No I/O, no clock: times come in as arguments.
//!
//! | clock | runs for | starts | met at | target |
//! |---|---|---|---|---|
//! | `ack` | immediate, deadline tiers | opening (immediate) or dispatch | acknowledged | `ack_<tier>_secs` |
//! | `arrival` | immediate, deadline tiers | acknowledged | onScene | `arrival_<tier>_secs` |
//! | `healthReport` | `health_report_kinds` | opening | the health report is recorded | `health_report_secs` |
//! | `complaintAcceptance` | hotline reports | opening | triaged or rejected (a decision either way) | working days |
//! | `complaintHandling` | hotline reports | triaged (accepted) | resolved | working days |
//! | `rectification` | deadline tier | opening | resolved | `rectification_secs` |
//!
//! A rejection cancels every running clock but `complaintAcceptance`; resolving cancels `ack` and
//! `arrival` (nobody needs to come any more); closing cancels everything still running.
//! **Reopening** restarts the team's work from the reopen: a new `ack` when it goes to
//! `dispatched` (a reopen to `triaged` starts it at the next dispatch), then `arrival`; a new
//! `rectification` (deadline tier) and `complaintHandling` (hotline); and `healthReport` only if
//! no report was ever recorded. Regulatory clocks that were met stay met.

use super::config::ClocksConfig;
use crate::escalation::Target;
use crate::incident::note::Note;
use crate::incident::policy::Tier;
use crate::incident::state::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The kinds of clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClockKind {
    Ack,
    Arrival,
    HealthReport,
    ComplaintAcceptance,
    ComplaintHandling,
    Rectification,
}

impl ClockKind {
    pub const ALL: [ClockKind; 6] = [
        ClockKind::Ack,
        ClockKind::Arrival,
        ClockKind::HealthReport,
        ClockKind::ComplaintAcceptance,
        ClockKind::ComplaintHandling,
        ClockKind::Rectification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClockKind::Ack => "ack",
            ClockKind::Arrival => "arrival",
            ClockKind::HealthReport => "healthReport",
            ClockKind::ComplaintAcceptance => "complaintAcceptance",
            ClockKind::ComplaintHandling => "complaintHandling",
            ClockKind::Rectification => "rectification",
        }
    }

    pub fn parse(s: &str) -> Option<ClockKind> {
        ClockKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How long a clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Secs(u64),
    /// Working days on the Chinese calendar, after the day the clock starts.
    WorkingDays(u32),
}

/// What the rules need to know about an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    pub tier: Tier,
    pub kind: &'a str,
    /// Reported through a hotline (12331/12315): a complaint with regulatory deadlines.
    pub hotline: bool,
}

/// How a clock stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Met,
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Met => "met",
            Outcome::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Met, Outcome::Cancelled]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// What a transition does to the clocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub stop: Vec<(ClockKind, Outcome)>,
    pub start: Vec<(ClockKind, Span)>,
}

fn secs(s: u64) -> Option<Span> {
    (s > 0).then_some(Span::Secs(s))
}

fn days(n: u32) -> Option<Span> {
    (n > 0).then_some(Span::WorkingDays(n))
}

/// The target of `kind` for an incident with `facts`; None: it does not get this clock.
pub fn target(config: &ClocksConfig, facts: Facts<'_>, kind: ClockKind) -> Option<Span> {
    use ClockKind::*;
    match (kind, facts.tier) {
        (Ack, Tier::Immediate) => secs(config.ack_immediate_secs),
        (Ack, Tier::Deadline) => secs(config.ack_deadline_secs),
        (Arrival, Tier::Immediate) => secs(config.arrival_immediate_secs),
        (Arrival, Tier::Deadline) => secs(config.arrival_deadline_secs),
        (Ack | Arrival, Tier::Routine) => None,
        (HealthReport, _) => config
            .health_report_kinds
            .iter()
            .any(|k| k == facts.kind)
            .then_some(())
            .and_then(|()| secs(config.health_report_secs)),
        (ComplaintAcceptance, _) if facts.hotline => days(config.complaint_acceptance_working_days),
        (ComplaintHandling, _) if facts.hotline => days(config.complaint_handling_working_days),
        (ComplaintAcceptance | ComplaintHandling, _) => None,
        (Rectification, Tier::Deadline) => secs(config.rectification_secs),
        (Rectification, _) => None,
    }
}

/// The clocks a just-opened incident starts.
pub fn on_open(config: &ClocksConfig, facts: Facts<'_>) -> Vec<(ClockKind, Span)> {
    let mut kinds = vec![
        ClockKind::HealthReport,
        ClockKind::ComplaintAcceptance,
        ClockKind::Rectification,
    ];
    if facts.tier == Tier::Immediate {
        // immediate incidents are dispatched at once: the ack clock runs from the opening
        kinds.insert(0, ClockKind::Ack);
    }
    kinds
        .into_iter()
        .filter_map(|k| target(config, facts, k).map(|s| (k, s)))
        .collect()
}

/// What moving from `from` to `to` does, given the kinds running now and those that were ever met.
pub fn on_transition(
    config: &ClocksConfig,
    facts: Facts<'_>,
    from: State,
    to: State,
    running: &[ClockKind],
    ever_met: &[ClockKind],
) -> Changes {
    use ClockKind::*;
    let mut c = Changes::default();
    let mut stop = |kind: ClockKind, outcome: Outcome| {
        if running.contains(&kind) {
            c.stop.push((kind, outcome));
        }
    };
    match to {
        State::Triaged if from == State::New => stop(ComplaintAcceptance, Outcome::Met),
        State::Rejected => {
            for &k in running {
                let outcome = if k == ComplaintAcceptance {
                    Outcome::Met // not accepting is a decision too
                } else {
                    Outcome::Cancelled
                };
                stop(k, outcome);
            }
        }
        State::Acknowledged => stop(Ack, Outcome::Met),
        State::OnScene => stop(Arrival, Outcome::Met),
        State::Resolved => {
            stop(Rectification, Outcome::Met);
            stop(ComplaintHandling, Outcome::Met);
            stop(Ack, Outcome::Cancelled);
            stop(Arrival, Outcome::Cancelled);
        }
        State::Closed => {
            for &k in running {
                stop(k, Outcome::Cancelled);
            }
        }
        _ => {}
    }
    let reopen = matches!(from, State::Resolved | State::Closed | State::Rejected);
    let mut wanted: Vec<ClockKind> = Vec::new();
    match to {
        State::Dispatched => wanted.push(Ack),
        State::Acknowledged => wanted.push(Arrival),
        State::Triaged => wanted.push(ComplaintHandling),
        _ => {}
    }
    if reopen {
        wanted.extend([Rectification, ComplaintHandling]);
        if !ever_met.contains(&HealthReport) {
            wanted.push(HealthReport);
        }
    }
    let still_running = |k: ClockKind| running.contains(&k) && !c.stop.iter().any(|(s, _)| *s == k);
    for k in wanted {
        if still_running(k) || c.start.iter().any(|(s, _)| *s == k) {
            continue;
        }
        if let Some(span) = target(config, facts, k) {
            c.start.push((k, span));
        }
    }
    c
}

/// When a clock started at `start` with `span` is at risk and due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub at_risk_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub working_days: Option<u32>,
}

pub fn schedule(config: &ClocksConfig, span: Span, start: DateTime<Utc>) -> Schedule {
    let pct = i64::from(config.at_risk_percent);
    match span {
        Span::Secs(s) => {
            let total = Duration::seconds(s as i64);
            Schedule {
                at_risk_at: start + total * pct as i32 / 100,
                due_at: start + total,
                working_days: None,
            }
        }
        Span::WorkingDays(n) => {
            let cal = &config.calendar;
            let (origin, due) = cal.working_deadline(start, n);
            let total = cal.working_time_between(origin, due);
            let at_risk = cal.add_working_time(origin, total * pct as i32 / 100);
            Schedule {
                at_risk_at: at_risk,
                due_at: due,
                working_days: Some(n),
            }
        }
    }
}

/// A clock's state as the console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ClockState {
    Running,
    AtRisk,
    Overdue,
    Met,
    MetLate,
    Cancelled,
}

/// The state at `now` of a clock due at `due_at`, at risk from `at_risk_at`, stopped (or not).
pub fn state(
    at_risk_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    stopped: Option<(DateTime<Utc>, Outcome)>,
    now: DateTime<Utc>,
) -> ClockState {
    match stopped {
        Some((_, Outcome::Cancelled)) => ClockState::Cancelled,
        Some((at, Outcome::Met)) if at <= due_at => ClockState::Met,
        Some((_, Outcome::Met)) => ClockState::MetLate,
        None if now >= due_at => ClockState::Overdue,
        None if now >= at_risk_at => ClockState::AtRisk,
        None => ClockState::Running,
    }
}

/// A moment of a running clock that escalates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Moment {
    AtRisk,
    Overdue,
}

impl Moment {
    pub fn as_str(self) -> &'static str {
        match self {
            Moment::AtRisk => "atRisk",
            Moment::Overdue => "overdue",
        }
    }

    /// The timeline's action.
    pub fn action(self) -> &'static str {
        match self {
            Moment::AtRisk => "clockAtRisk",
            Moment::Overdue => "clockOverdue",
        }
    }

    /// Whom it notifies.
    pub fn target(self, config: &ClocksConfig) -> Target {
        match self {
            Moment::AtRisk => config.at_risk_notify,
            Moment::Overdue => config.overdue_notify,
        }
    }
}

/// The moment a running clock fires at `now`, if any: overdue once due (an at-risk moment missed
/// while every replica was down is not fired late, the overdue one says more), else at risk.
pub fn due_moment(
    at_risk_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    at_risk_fired: bool,
    overdue_fired: bool,
    now: DateTime<Utc>,
) -> Option<Moment> {
    if now >= due_at && !overdue_fired {
        Some(Moment::Overdue)
    } else if now >= at_risk_at && !at_risk_fired && !overdue_fired {
        Some(Moment::AtRisk)
    } else {
        None
    }
}

/// When the clock next needs the worker after firing `fired`: at its due time after the at-risk
/// moment, never after the overdue one.
pub fn next_fire_at(fired: Moment, due_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match fired {
        Moment::AtRisk => Some(due_at),
        Moment::Overdue => None,
    }
}

/// A duration for people: `45 s`, `4 min`, `1 h 5 min`, `3 d 2 h` (rounded down).
pub fn human(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86400, s % 86400 / 3600, s % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// The timeline note's first part: e.g. `ack clock at risk: 1 min left, due 2026-11-23 22:05
/// (Beijing)` or `healthReport clock overdue by 10 s (due …)`.
pub fn describe(
    kind: ClockKind,
    moment: Moment,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    let due = due_at
        .with_timezone(&super::calendar::beijing())
        .format("%Y-%m-%d %H:%M");
    match moment {
        Moment::AtRisk => format!(
            "{} clock at risk: {} left, due {due} (Beijing)",
            kind.as_str(),
            human(due_at - now)
        ),
        Moment::Overdue => format!(
            "{} clock overdue by {}, was due {due} (Beijing)",
            kind.as_str(),
            human(now - due_at)
        ),
    }
}

/// [`describe`]'s note as a code (`clockAtRisk` / `clockOverdue`) with the clock, the seconds
/// left or over, the due time, and `then`: whom it notified, coded too.
pub fn coded(
    kind: ClockKind,
    moment: Moment,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
    then: Note,
) -> Note {
    let secs = match moment {
        Moment::AtRisk => (due_at - now).num_seconds(),
        Moment::Overdue => (now - due_at).num_seconds(),
    }
    .max(0);
    Note::new(
        moment.action(),
        json!({"clock": kind.as_str(), "secs": secs, "dueAt": due_at,
               "then": {"code": then.code, "params": then.params}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).unwrap()
    }

    fn facts(tier: Tier, kind: &str, hotline: bool) -> Facts<'_> {
        Facts {
            tier,
            kind,
            hotline,
        }
    }

    fn kinds(v: &[(ClockKind, Span)]) -> Vec<ClockKind> {
        v.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn a_suspected_poisoning_starts_ack_and_the_two_hour_health_report_clock() {
        let c = ClocksConfig::default();
        let started = on_open(&c, facts(Tier::Immediate, "suspectedPoisoning", false));
        assert_eq!(
            started,
            [
                (ClockKind::Ack, Span::Secs(300)),
                (ClockKind::HealthReport, Span::Secs(7200))
            ]
        );
    }

    #[test]
    fn a_hotline_complaint_gets_the_acceptance_clock_in_working_days_and_a_deadline_tier_one_rectification()
     {
        let c = ClocksConfig::default();
        let started = on_open(&c, facts(Tier::Routine, "complaint", true));
        assert_eq!(
            started,
            [(ClockKind::ComplaintAcceptance, Span::WorkingDays(7))]
        );
        let started = on_open(&c, facts(Tier::Deadline, "smoking", false));
        assert_eq!(started, [(ClockKind::Rectification, Span::Secs(86400))]);
        assert!(on_open(&c, facts(Tier::Routine, "cameraOffline", false)).is_empty());
    }

    #[test]
    fn a_target_of_zero_turns_a_clock_off() {
        let c = ClocksConfig {
            ack_immediate_secs: 0,
            ..ClocksConfig::default()
        };
        assert_eq!(
            kinds(&on_open(&c, facts(Tier::Immediate, "rodent", false))),
            []
        );
    }

    #[test]
    fn the_team_clocks_follow_dispatch_acknowledgement_and_arrival() {
        use ClockKind::*;
        let c = ClocksConfig::default();
        let f = facts(Tier::Deadline, "smoking", false);
        let ch = on_transition(
            &c,
            f,
            State::Triaged,
            State::Dispatched,
            &[Rectification],
            &[],
        );
        assert_eq!(ch.start, [(Ack, Span::Secs(1800))]);
        let ch = on_transition(&c, f, State::Dispatched, State::Acknowledged, &[Ack], &[]);
        assert_eq!(ch.stop, [(Ack, Outcome::Met)]);
        assert_eq!(ch.start, [(Arrival, Span::Secs(7200))]);
        let ch = on_transition(&c, f, State::EnRoute, State::OnScene, &[Arrival], &[]);
        assert_eq!(ch.stop, [(Arrival, Outcome::Met)]);
        // an immediate incident's ack clock runs from the opening: dispatch does not start another
        let f = facts(Tier::Immediate, "rodent", false);
        let ch = on_transition(&c, f, State::Triaged, State::Dispatched, &[Ack], &[]);
        assert_eq!(ch, Changes::default());
    }

    #[test]
    fn triage_decides_a_complaint_and_starts_its_handling_which_resolving_meets() {
        use ClockKind::*;
        let c = ClocksConfig::default();
        let f = facts(Tier::Routine, "complaint", true);
        let ch = on_transition(
            &c,
            f,
            State::New,
            State::Triaged,
            &[ComplaintAcceptance],
            &[],
        );
        assert_eq!(ch.stop, [(ComplaintAcceptance, Outcome::Met)]);
        assert_eq!(ch.start, [(ComplaintHandling, Span::WorkingDays(45))]);
        let ch = on_transition(
            &c,
            f,
            State::Triaged,
            State::Resolved,
            &[ComplaintHandling],
            &[],
        );
        assert_eq!(ch.stop, [(ComplaintHandling, Outcome::Met)]);
        assert!(ch.start.is_empty());
    }

    #[test]
    fn rejecting_cancels_everything_but_the_acceptance_decision_and_closing_cancels_the_rest() {
        use ClockKind::*;
        let c = ClocksConfig::default();
        let f = facts(Tier::Immediate, "suspectedPoisoning", true);
        let ch = on_transition(
            &c,
            f,
            State::New,
            State::Rejected,
            &[Ack, HealthReport, ComplaintAcceptance],
            &[],
        );
        assert_eq!(
            ch.stop,
            [
                (Ack, Outcome::Cancelled),
                (HealthReport, Outcome::Cancelled),
                (ComplaintAcceptance, Outcome::Met)
            ]
        );
        let ch = on_transition(&c, f, State::Resolved, State::Closed, &[HealthReport], &[]);
        assert_eq!(ch.stop, [(HealthReport, Outcome::Cancelled)]);
        let ch = on_transition(
            &c,
            f,
            State::Triaged,
            State::Resolved,
            &[Ack, HealthReport],
            &[],
        );
        assert_eq!(
            ch.stop,
            [(Ack, Outcome::Cancelled)],
            "the health report is still owed"
        );
    }

    #[test]
    fn reopening_restarts_the_teams_work_and_a_health_report_never_made() {
        use ClockKind::*;
        let c = ClocksConfig::default();
        let f = facts(Tier::Immediate, "suspectedPoisoning", false);
        let ch = on_transition(
            &c,
            f,
            State::Closed,
            State::Dispatched,
            &[],
            &[Ack, Arrival],
        );
        assert_eq!(kinds(&ch.start), [Ack, HealthReport]);
        let ch = on_transition(&c, f, State::Closed, State::Triaged, &[], &[HealthReport]);
        assert_eq!(
            kinds(&ch.start),
            [],
            "ack waits for the dispatch; the report was made"
        );
        let f = facts(Tier::Deadline, "smoking", true);
        let ch = on_transition(&c, f, State::Resolved, State::Dispatched, &[], &[]);
        assert_eq!(kinds(&ch.start), [Ack, Rectification, ComplaintHandling]);
        let ch = on_transition(&c, f, State::Rejected, State::Triaged, &[], &[]);
        assert_eq!(kinds(&ch.start), [ComplaintHandling, Rectification]);
    }

    #[test]
    fn seconds_clocks_are_at_risk_at_eighty_percent() {
        let c = ClocksConfig::default();
        let s = schedule(&c, Span::Secs(300), t0());
        assert_eq!(s.at_risk_at, t0() + Duration::seconds(240));
        assert_eq!(s.due_at, t0() + Duration::seconds(300));
        assert_eq!(s.working_days, None);
    }

    #[test]
    fn working_day_clocks_are_scheduled_on_the_calendar() {
        let c = ClocksConfig::default();
        // Friday 13 Feb 2026, 10:00 Beijing, before the Spring Festival
        let start = Utc.with_ymd_and_hms(2026, 2, 13, 2, 0, 0).unwrap();
        let s = schedule(&c, Span::WorkingDays(7), start);
        assert_eq!(
            s.due_at,
            Utc.with_ymd_and_hms(2026, 3, 2, 16, 0, 0).unwrap()
        );
        assert_eq!(
            s.at_risk_at,
            Utc.with_ymd_and_hms(2026, 2, 28, 6, 24, 0).unwrap()
        );
        assert_eq!(s.working_days, Some(7));
    }

    #[test]
    fn states_follow_time_and_how_the_clock_stopped() {
        let (risk, due) = (t0() + Duration::seconds(240), t0() + Duration::seconds(300));
        let at = |s: i64| t0() + Duration::seconds(s);
        assert_eq!(state(risk, due, None, at(239)), ClockState::Running);
        assert_eq!(state(risk, due, None, at(240)), ClockState::AtRisk);
        assert_eq!(state(risk, due, None, at(300)), ClockState::Overdue);
        assert_eq!(
            state(risk, due, Some((at(300), Outcome::Met)), at(900)),
            ClockState::Met
        );
        assert_eq!(
            state(risk, due, Some((at(301), Outcome::Met)), at(900)),
            ClockState::MetLate
        );
        assert_eq!(
            state(risk, due, Some((at(10), Outcome::Cancelled)), at(900)),
            ClockState::Cancelled
        );
    }

    #[test]
    fn each_moment_fires_once_and_a_missed_at_risk_moment_gives_way_to_overdue() {
        let (risk, due) = (t0() + Duration::seconds(240), t0() + Duration::seconds(300));
        let at = |s: i64| t0() + Duration::seconds(s);
        assert_eq!(due_moment(risk, due, false, false, at(239)), None);
        assert_eq!(
            due_moment(risk, due, false, false, at(240)),
            Some(Moment::AtRisk)
        );
        assert_eq!(due_moment(risk, due, true, false, at(299)), None);
        assert_eq!(
            due_moment(risk, due, true, false, at(300)),
            Some(Moment::Overdue)
        );
        assert_eq!(due_moment(risk, due, true, true, at(900)), None);
        assert_eq!(
            due_moment(risk, due, false, false, at(900)),
            Some(Moment::Overdue)
        );
        assert_eq!(next_fire_at(Moment::AtRisk, due), Some(due));
        assert_eq!(next_fire_at(Moment::Overdue, due), None);
    }

    #[test]
    fn notes_say_the_time_left_or_over_in_beijing_time() {
        let due = t0() + Duration::seconds(300);
        assert_eq!(
            describe(
                ClockKind::Ack,
                Moment::AtRisk,
                due,
                t0() + Duration::seconds(240)
            ),
            "ack clock at risk: 1 min left, due 2026-11-23 22:05 (Beijing)"
        );
        assert_eq!(
            describe(
                ClockKind::HealthReport,
                Moment::Overdue,
                due,
                due + Duration::seconds(3725)
            ),
            "healthReport clock overdue by 1 h 2 min, was due 2026-11-23 22:05 (Beijing)"
        );
        assert_eq!(human(Duration::seconds(45)), "45 s");
        assert_eq!(human(Duration::hours(50)), "2 d 2 h");
        assert_eq!(human(Duration::hours(48)), "2 d");
        assert_eq!(human(Duration::hours(3)), "3 h");
    }
}
