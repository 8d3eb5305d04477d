//! Escalation policies, plain: ordered steps (`notify`, `wait`, `repeat`) per incident tier, and the
//! pure functions that turn them into a schedule. No I/O, no clock: times come in as arguments.
//!
//! A policy is *expanded* ([`expand`]) into its notifications, each at a fixed offset from the
//! moment escalation starts (the incident's opening). Step `k` of a timer row is the `k`-th entry
//! of that expansion; [`next`] gives the one after it, anchored on the previous step's due time,
//! so a late firing (a restart, a busy database) never shifts the rest of the schedule.

use crate::incident::note::Note;
use crate::incident::policy::Tier;
use crate::incident::state::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Whom a `notify` step reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    /// The team the incident was routed to (with none on duty: the town officers).
    Team,
    /// The town officers of the incident's town.
    TownOfficers,
    /// The supervisors with district scope.
    DistrictSupervisors,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Team => "team",
            Target::TownOfficers => "townOfficers",
            Target::DistrictSupervisors => "districtSupervisors",
        }
    }
}

/// One step of a policy, written in TOML as an inline table tagged by `step`:
/// `{ step = "notify", target = "team" }`, `{ step = "wait", secs = 120 }`,
/// `{ step = "repeat", from_step = 1, times = 2 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "camelCase", deny_unknown_fields)]
pub enum Step {
    /// Notify `target` now.
    Notify { target: Target },
    /// Wait this many seconds before the next step.
    Wait { secs: u64 },
    /// Go back to step `from_step` (0-based, before this one), `times` more times.
    Repeat { from_step: usize, times: u32 },
}

/// Most notifications one policy may expand to.
pub const MAX_NOTIFICATIONS: usize = 100;
/// Longest single wait: 7 days.
pub const MAX_WAIT_SECS: u64 = 7 * 24 * 3600;

/// `[escalation]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    /// Milliseconds between two polls of the timer worker for due timers. Default `200`.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Most timers one poll fires (one transaction each); the rest wait for the next poll.
    /// Default `64`.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// Policy of immediate-tier incidents. Default: notify the team, wait 120 s, notify the town
    /// officers, wait 300 s, notify the district supervisors, repeat from the first wait twice
    /// (steps 0-5; 7 notifications over 21 minutes).
    #[serde(default = "default_immediate")]
    pub immediate: Vec<Step>,
    /// Policy of deadline-tier incidents (talk-down first, so the team is told later). Default: wait
    /// 1800 s, notify the team, wait 1800 s, notify the town officers, wait 3600 s, notify the
    /// district supervisors.
    #[serde(default = "default_deadline")]
    pub deadline: Vec<Step>,
    /// Policy of routine incidents (logged for inspection). Default `[]`: no escalation.
    #[serde(default)]
    pub routine: Vec<Step>,
}

fn default_poll_interval_ms() -> u64 {
    200
}
fn default_batch() -> u32 {
    64
}
fn default_immediate() -> Vec<Step> {
    vec![
        Step::Notify {
            target: Target::Team,
        },
        Step::Wait { secs: 120 },
        Step::Notify {
            target: Target::TownOfficers,
        },
        Step::Wait { secs: 300 },
        Step::Notify {
            target: Target::DistrictSupervisors,
        },
        Step::Repeat {
            from_step: 1,
            times: 2,
        },
    ]
}
fn default_deadline() -> Vec<Step> {
    vec![
        Step::Wait { secs: 1800 },
        Step::Notify {
            target: Target::Team,
        },
        Step::Wait { secs: 1800 },
        Step::Notify {
            target: Target::TownOfficers,
        },
        Step::Wait { secs: 3600 },
        Step::Notify {
            target: Target::DistrictSupervisors,
        },
    ]
}

impl Default for EscalationConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: default_poll_interval_ms(),
            batch: default_batch(),
            immediate: default_immediate(),
            deadline: default_deadline(),
            routine: Vec::new(),
        }
    }
}

impl EscalationConfig {
    /// The policy of `tier`.
    pub fn policy(&self, tier: Tier) -> &[Step] {
        match tier {
            Tier::Immediate => &self.immediate,
            Tier::Deadline => &self.deadline,
            Tier::Routine => &self.routine,
        }
    }

    /// Checks every policy; the error is `(field, message)` with the field's dotted name.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return Err((
                "escalation.poll_interval_ms",
                "must be between 10 and 60000".into(),
            ));
        }
        if self.batch == 0 {
            return Err(("escalation.batch", "must be at least 1".into()));
        }
        validate(&self.immediate).map_err(|m| ("escalation.immediate", m))?;
        validate(&self.deadline).map_err(|m| ("escalation.deadline", m))?;
        validate(&self.routine).map_err(|m| ("escalation.routine", m))?;
        Ok(())
    }
}

/// A broken rule of a policy: the step it is about (0-based; None for the whole policy) and what
/// is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    pub step: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.step {
            Some(i) => write!(f, "step {i}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Checks one policy (see [`check`]); the error names the step in its text.
pub fn validate(steps: &[Step]) -> Result<(), String> {
    check(steps).map_err(|p| p.to_string())
}

/// Checks one policy: waits within [`MAX_WAIT_SECS`], each `repeat` goes back to an earlier step
/// over at least one wait (or it would notify twice at the same instant), and the whole expands to
/// at most [`MAX_NOTIFICATIONS`] notifications.
pub fn check(steps: &[Step]) -> Result<(), PolicyProblem> {
    let at = |i: usize, message: String| PolicyProblem {
        step: Some(i),
        message,
    };
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Step::Notify { .. } => {}
            Step::Wait { secs } if secs > MAX_WAIT_SECS => {
                return Err(at(
                    i,
                    format!("wait of {secs} s is longer than {MAX_WAIT_SECS} s"),
                ));
            }
            Step::Wait { .. } => {}
            Step::Repeat { from_step, times } => {
                if from_step >= i {
                    return Err(at(
                        i,
                        format!("repeat from_step {from_step} must name an earlier step"),
                    ));
                }
                if times == 0 {
                    return Err(at(i, "repeat times must be at least 1".into()));
                }
                let waits = steps[from_step..i]
                    .iter()
                    .any(|s| matches!(s, Step::Wait { secs } if *secs > 0));
                if !waits {
                    return Err(at(
                        i,
                        format!(
                            "the repeated steps {from_step}..{i} contain no wait, so they \
                             would notify the same people twice at once"
                        ),
                    ));
                }
            }
        }
    }
    if expansion(steps, MAX_NOTIFICATIONS + 1).len() > MAX_NOTIFICATIONS {
        return Err(PolicyProblem {
            step: None,
            message: format!(
                "expands to more than {MAX_NOTIFICATIONS} notifications; lower a repeat's times"
            ),
        });
    }
    Ok(())
}

/// One notification of an expanded policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    /// Its position in the expansion: the timer row's `step`.
    pub index: usize,
    /// Seconds after escalation started.
    pub after_secs: u64,
    pub target: Target,
}

/// The notifications `steps` makes, in order, each with its offset from the start. Repeats are
/// unrolled (each `repeat` counts its own jumps, so nested repeats end too).
pub fn expand(steps: &[Step]) -> Vec<Planned> {
    expansion(steps, MAX_NOTIFICATIONS)
}

fn expansion(steps: &[Step], limit: usize) -> Vec<Planned> {
    let mut jumps = vec![0u32; steps.len()];
    let mut out: Vec<Planned> = Vec::new();
    let (mut pc, mut at) = (0usize, 0u64);
    while pc < steps.len() && out.len() < limit {
        match steps[pc] {
            Step::Notify { target } => {
                out.push(Planned {
                    index: out.len(),
                    after_secs: at,
                    target,
                });
                pc += 1;
            }
            Step::Wait { secs } => {
                at = at.saturating_add(secs);
                pc += 1;
            }
            Step::Repeat { from_step, times } => {
                if jumps[pc] < times && from_step < pc {
                    jumps[pc] += 1;
                    pc = from_step;
                } else {
                    pc += 1;
                }
            }
        }
    }
    out
}

fn secs(s: u64) -> Duration {
    Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

/// Every notification of `steps` with its due time, for escalation started at `opened_at`.
pub fn plan(steps: &[Step], opened_at: DateTime<Utc>) -> Vec<(DateTime<Utc>, Planned)> {
    expand(steps)
        .into_iter()
        .map(|p| (opened_at + secs(p.after_secs), p))
        .collect()
}

/// The step after `fired` (None: the first step, with `due` the start of escalation), due that
/// many seconds after `due`; None when the policy has no more notifications.
pub fn next(
    steps: &[Step],
    fired: Option<usize>,
    due: DateTime<Utc>,
) -> Option<(DateTime<Utc>, Planned)> {
    let all = expand(steps);
    match fired {
        None => all.first().map(|p| (due + secs(p.after_secs), *p)),
        Some(k) => {
            let (prev, p) = (all.get(k)?, all.get(k + 1)?);
            Some((due + secs(p.after_secs - prev.after_secs), *p))
        }
    }
}

/// Whether reaching `state` ends escalation: somebody took the incident, or it was rejected,
/// resolved or closed.
pub fn stops_escalation(state: State) -> bool {
    matches!(
        state,
        State::Acknowledged
            | State::EnRoute
            | State::OnScene
            | State::Resolved
            | State::Closed
            | State::Rejected
    )
}

/// The recipients a fired step reached, for the timeline note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reached {
    /// The routed team, by name.
    Team(String),
    /// Town officers (user names) of a town (its Chinese name); empty: none is registered, the
    /// notification goes to the town itself.
    TownOfficers { town: String, users: Vec<String> },
    /// District supervisors (user names); empty: none is registered.
    DistrictSupervisors(Vec<String>),
}

/// The timeline action and note of a fired step, e.g. `("escalated", "escalated to the town
/// officers of 斋堂镇 (zt-officer)")`. A team step is `notified`; the others are `escalated`.
pub fn describe(
    target: Target,
    reached: &Reached,
    exercise: Option<&str>,
) -> (&'static str, String) {
    let who = |users: &[String]| {
        if users.is_empty() {
            " (nobody registered; sent to the duty desk)".to_owned()
        } else {
            format!(" ({})", users.join(", "))
        }
    };
    let mut note = match reached {
        Reached::Team(name) => format!("notified team {name}"),
        Reached::TownOfficers { town, users } if target == Target::Team => {
            format!(
                "no team on duty: notified the town officers of {town}{}",
                who(users)
            )
        }
        Reached::TownOfficers { town, users } => {
            format!("escalated to the town officers of {town}{}", who(users))
        }
        Reached::DistrictSupervisors(users) => {
            format!("escalated to the district supervisors{}", who(users))
        }
    };
    if let Some(run) = exercise {
        note.push_str(&format!(" — DRILL (exercise {run})"));
    }
    let action = if target == Target::Team {
        "notified"
    } else {
        "escalated"
    };
    (action, note)
}

/// [`describe`]'s note as a code and parameters, for the apps to say in the reader's language.
pub fn coded(target: Target, reached: &Reached, exercise: Option<&str>) -> Note {
    match reached {
        Reached::Team(name) => {
            Note::new("notifiedTeam", json!({"team": name, "exercise": exercise}))
        }
        Reached::TownOfficers { town, users } => Note::new(
            if target == Target::Team {
                "notifiedTownOfficers"
            } else {
                "escalatedTownOfficers"
            },
            json!({"town": town, "users": users, "exercise": exercise}),
        ),
        Reached::DistrictSupervisors(users) => Note::new(
            "escalatedSupervisors",
            json!({"users": users, "exercise": exercise}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).unwrap()
    }

    fn offsets(steps: &[Step]) -> Vec<(u64, Target)> {
        expand(steps)
            .iter()
            .map(|p| (p.after_secs, p.target))
            .collect()
    }

    #[test]
    fn the_default_immediate_policy_notifies_team_officers_supervisors_and_repeats_twice() {
        use Target::*;
        let c = EscalationConfig::default();
        assert_eq!(
            offsets(&c.immediate),
            [
                (0, Team),
                (120, TownOfficers),
                (420, DistrictSupervisors),
                (540, TownOfficers),
                (840, DistrictSupervisors),
                (960, TownOfficers),
                (1260, DistrictSupervisors),
            ]
        );
        assert_eq!(offsets(&c.deadline)[0], (1800, Team));
        assert!(expand(&c.routine).is_empty());
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn plan_gives_each_notification_its_due_time_from_the_opening() {
        let c = EscalationConfig::default();
        let p = plan(&c.immediate, t0());
        assert_eq!(p.len(), 7);
        assert_eq!(p[0].0, t0());
        assert_eq!(p[2].0, t0() + Duration::seconds(420));
        assert_eq!(p[6].1.index, 6);
    }

    #[test]
    fn next_is_anchored_on_the_previous_due_time_so_a_late_firing_does_not_shift_the_schedule() {
        let steps = EscalationConfig::default().immediate;
        let (due0, first) = next(&steps, None, t0()).unwrap();
        assert_eq!((due0, first.target), (t0(), Target::Team));
        let (due1, second) = next(&steps, Some(0), due0).unwrap();
        assert_eq!(
            (due1, second.index, second.target),
            (t0() + Duration::seconds(120), 1, Target::TownOfficers)
        );
        // stepping through with next gives exactly the plan
        let mut walked = vec![(due0, first)];
        while let Some(n) = next(
            &steps,
            Some(walked.last().unwrap().1.index),
            walked.last().unwrap().0,
        ) {
            walked.push(n);
        }
        assert_eq!(walked, plan(&steps, t0()));
        assert_eq!(next(&steps, Some(6), t0()), None);
        assert_eq!(next(&[], None, t0()), None);
    }

    #[test]
    fn a_policy_starting_with_a_wait_has_its_first_notification_later() {
        let steps = [
            Step::Wait { secs: 2 },
            Step::Notify {
                target: Target::TownOfficers,
            },
        ];
        let (due, p) = next(&steps, None, t0()).unwrap();
        assert_eq!(
            (due, p.target),
            (t0() + Duration::seconds(2), Target::TownOfficers)
        );
    }

    #[test]
    fn nested_repeats_terminate_and_count_their_own_jumps() {
        use Target::*;
        let steps = [
            Step::Notify { target: Team },
            Step::Wait { secs: 10 },
            Step::Notify {
                target: TownOfficers,
            },
            Step::Repeat {
                from_step: 1,
                times: 1,
            },
            Step::Wait { secs: 100 },
            Step::Notify {
                target: DistrictSupervisors,
            },
            Step::Repeat {
                from_step: 1,
                times: 1,
            },
        ];
        assert_eq!(validate(&steps), Ok(()));
        assert_eq!(
            offsets(&steps),
            [
                (0, Team),
                (10, TownOfficers),
                (20, TownOfficers),
                (120, DistrictSupervisors),
                (130, TownOfficers),
                (230, DistrictSupervisors),
            ]
        );
    }

    #[test]
    fn bad_policies_are_refused_with_the_step_named() {
        let notify = Step::Notify {
            target: Target::Team,
        };
        let e = validate(&[
            notify,
            Step::Repeat {
                from_step: 0,
                times: 1,
            },
        ])
        .unwrap_err();
        assert!(e.contains("step 1") && e.contains("no wait"), "{e}");
        let e = validate(&[
            notify,
            Step::Repeat {
                from_step: 1,
                times: 1,
            },
        ])
        .unwrap_err();
        assert!(e.contains("earlier step"), "{e}");
        let e = validate(&[
            notify,
            Step::Wait { secs: 1 },
            Step::Repeat {
                from_step: 0,
                times: 1000,
            },
        ])
        .unwrap_err();
        assert!(e.contains("more than 100"), "{e}");
        let e = validate(&[Step::Wait {
            secs: MAX_WAIT_SECS + 1,
        }])
        .unwrap_err();
        assert!(e.contains("step 0"), "{e}");
    }

    #[test]
    fn the_config_is_read_from_toml_inline_tables_and_refuses_unknown_fields() {
        #[derive(Deserialize)]
        struct F {
            escalation: EscalationConfig,
        }
        let f: F = toml_parse(
            "[escalation]\nimmediate = [{ step = \"notify\", target = \"team\" }, \
             { step = \"wait\", secs = 2 }, { step = \"notify\", target = \"townOfficers\" }, \
             { step = \"repeat\", from_step = 1, times = 1 }]\n",
        )
        .unwrap();
        assert_eq!(
            offsets(&f.escalation.immediate),
            [
                (0, Target::Team),
                (2, Target::TownOfficers),
                (4, Target::TownOfficers)
            ]
        );
        assert_eq!(f.escalation.poll_interval_ms, 200);
        assert!(toml_parse::<F>("[escalation]\npoll = 5\n").is_err());
        assert!(
            toml_parse::<F>("[escalation]\nroutine = [{ step = \"wait\", sec = 5 }]\n").is_err()
        );
    }

    fn toml_parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
        bl_service::config::parse(std::path::Path::new("t.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn acknowledging_rejecting_resolving_and_closing_stop_escalation_and_triage_does_not() {
        for s in [
            State::Acknowledged,
            State::Rejected,
            State::Resolved,
            State::Closed,
        ] {
            assert!(stops_escalation(s), "{s}");
        }
        for s in [State::New, State::Triaged, State::Dispatched] {
            assert!(!stops_escalation(s), "{s}");
        }
    }

    #[test]
    fn the_timeline_note_names_the_town_and_marks_drills() {
        let reached = Reached::TownOfficers {
            town: "斋堂镇".into(),
            users: vec!["zt-officer".into()],
        };
        assert_eq!(
            describe(Target::TownOfficers, &reached, None),
            (
                "escalated",
                "escalated to the town officers of 斋堂镇 (zt-officer)".to_owned()
            )
        );
        let (action, note) = describe(Target::Team, &Reached::Team("夜班".into()), Some("d-1"));
        assert_eq!(action, "notified");
        assert_eq!(note, "notified team 夜班 — DRILL (exercise d-1)");
        let (_, note) = describe(
            Target::Team,
            &Reached::TownOfficers {
                town: "斋堂镇".into(),
                users: vec![],
            },
            None,
        );
        assert!(note.starts_with("no team on duty"), "{note}");
    }
}
