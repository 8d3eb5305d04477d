//! Evaluation: each expectation of a scenario checked against what really happened — the
//! timeline of the incident its inject opened. Plain code: entries and times in, verdicts out.

use super::scenario::{Expectation, timeline_match};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A timeline entry as evaluation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: Option<String>,
    pub action: String,
    pub to_state: Option<String>,
}

/// Where an expectation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Its inject has not fired yet.
    NotStarted,
    /// Running, within its time.
    Pending,
    /// Done within its time.
    Met,
    /// Done, after its time.
    Late,
    /// Not done and past its time while the run goes on (it may still become late).
    Overdue,
    /// Not done by ENDEX.
    Missed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotStarted => "notStarted",
            Status::Pending => "pending",
            Status::Met => "met",
            Status::Late => "late",
            Status::Overdue => "overdue",
            Status::Missed => "missed",
        }
    }

    /// 中文, for the report.
    pub fn zh(self) -> &'static str {
        match self {
            Status::NotStarted => "未开始",
            Status::Pending => "进行中",
            Status::Met => "达标",
            Status::Late => "超时",
            Status::Overdue => "已超时未完成",
            Status::Missed => "未完成",
        }
    }
}

/// The verdict on one expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    /// When the time started (the inject fired).
    pub started_at: Option<DateTime<Utc>>,
    /// When it was done, and by whom.
    pub done_at: Option<DateTime<Utc>>,
    pub by: Option<String>,
    /// Seconds from the start to the action (or to now / ENDEX when not done).
    pub elapsed_secs: Option<i64>,
    /// Seconds past the target (late, overdue, missed).
    pub over_secs: Option<i64>,
}

/// Judges `e` given when its inject fired (`started`), the entries of that inject's incident,
/// and `now` (ENDEX when `ended`).
pub fn judge(
    e: &Expectation,
    started: Option<DateTime<Utc>>,
    entries: &[Observed],
    now: DateTime<Utc>,
    ended: bool,
) -> Verdict {
    let Some(start) = started else {
        let status = if ended {
            Status::Missed
        } else {
            Status::NotStarted
        };
        return Verdict {
            status,
            started_at: None,
            done_at: None,
            by: None,
            elapsed_secs: None,
            over_secs: None,
        };
    };
    let (state, action) = timeline_match(&e.action);
    let done = entries
        .iter()
        .filter(|o| o.at >= start && o.role.as_deref() == Some(e.role.as_str()))
        .filter(|o| match (state, action) {
            (Some(s), _) => o.to_state.as_deref() == Some(s),
            (None, Some(a)) => o.action == a,
            (None, None) => false,
        })
        .min_by_key(|o| o.at);
    let target = e.within as i64;
    match done {
        Some(o) => {
            let elapsed = (o.at - start).num_seconds();
            let late = elapsed > target;
            Verdict {
                status: if late { Status::Late } else { Status::Met },
                started_at: Some(start),
                done_at: Some(o.at),
                by: Some(o.actor.clone()),
                elapsed_secs: Some(elapsed),
                over_secs: late.then_some(elapsed - target),
            }
        }
        None => {
            let elapsed = (now - start).num_seconds();
            let status = match (elapsed > target, ended) {
                (_, true) => Status::Missed,
                (true, false) => Status::Overdue,
                (false, false) => Status::Pending,
            };
            Verdict {
                status,
                started_at: Some(start),
                done_at: None,
                by: None,
                elapsed_secs: Some(elapsed),
                over_secs: (elapsed > target).then_some(elapsed - target),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap() + chrono::Duration::seconds(secs)
    }

    fn exp(action: &str, role: &str, within: u64) -> Expectation {
        Expectation {
            id: "x".into(),
            task: "任务".into(),
            role: role.into(),
            action: action.into(),
            after: "first".into(),
            within,
        }
    }

    fn entry(at: i64, role: &str, action: &str, to: Option<&str>) -> Observed {
        Observed {
            at: t(at),
            actor: format!("{role}-user"),
            role: Some(role.into()),
            action: action.into(),
            to_state: to.map(Into::into),
        }
    }

    #[test]
    fn an_action_within_the_target_is_met_with_its_seconds() {
        let log = [entry(200, "field", "transition", Some("acknowledged"))];
        let v = judge(
            &exp("acknowledge", "field", 300),
            Some(t(0)),
            &log,
            t(900),
            false,
        );
        assert_eq!(v.status, Status::Met);
        assert_eq!(v.elapsed_secs, Some(200));
        assert_eq!(v.over_secs, None);
        assert_eq!(v.by.as_deref(), Some("field-user"));
    }

    #[test]
    fn an_action_after_the_target_is_late_by_the_difference() {
        let log = [entry(2400, "field", "transition", Some("onScene"))];
        let v = judge(
            &exp("arrive", "field", 1800),
            Some(t(0)),
            &log,
            t(9000),
            true,
        );
        assert_eq!(v.status, Status::Late);
        assert_eq!((v.elapsed_secs, v.over_secs), (Some(2400), Some(600)));
    }

    #[test]
    fn nothing_done_is_pending_then_overdue_then_missed_at_endex() {
        let e = exp("healthReport", "townOfficer", 7200);
        assert_eq!(
            judge(&e, Some(t(0)), &[], t(100), false).status,
            Status::Pending
        );
        assert_eq!(
            judge(&e, Some(t(0)), &[], t(7300), false).status,
            Status::Overdue
        );
        let v = judge(&e, Some(t(0)), &[], t(7300), true);
        assert_eq!((v.status, v.over_secs), (Status::Missed, Some(100)));
        assert_eq!(
            judge(&e, None, &[], t(10), false).status,
            Status::NotStarted
        );
        assert_eq!(judge(&e, None, &[], t(10), true).status, Status::Missed);
    }

    #[test]
    fn another_role_doing_it_or_an_action_before_the_inject_does_not_count() {
        let log = [
            entry(-50, "field", "transition", Some("acknowledged")),
            entry(100, "operator", "transition", Some("acknowledged")),
        ];
        let v = judge(
            &exp("acknowledge", "field", 300),
            Some(t(0)),
            &log,
            t(200),
            false,
        );
        assert_eq!(v.status, Status::Pending);
        let log = [entry(100, "townOfficer", "healthReported", None)];
        let v = judge(
            &exp("healthReport", "townOfficer", 7200),
            Some(t(0)),
            &log,
            t(200),
            false,
        );
        assert_eq!(v.status, Status::Met);
    }
}
