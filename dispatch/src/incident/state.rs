//! The states of an incident and the transitions between them (DESIGN.md §4), as a plain state
//! machine: a state and a wanted state in, the transition (or why not) out. No I/O, no clock.
//!
//! ```text
//! new ──confirm──▶ triaged ──dispatch──▶ dispatched ──acknowledge──▶ acknowledged ──enRoute──▶ enRoute
//!  │                  │                                                                         │
//!  └─reject─▶ rejected └──resolve (rectified remotely, e.g. after a talk-down)──┐          arrive│
//!              │                                                                ▼               ▼
//!              │                                     closed ◀──close── resolved ◀──resolve── onScene
//!              └──reopen──▶ triaged          resolved / closed ──reopen──▶ triaged | dispatched
//! ```
//!
//! `rejected` is triage's "false alarm" outcome: final like `closed`, but it may be reopened to
//! `triaged` when the operator was wrong.

use crate::auth::Role;
use serde::{Deserialize, Serialize};

/// Where an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// Reported, nobody has looked at it yet.
    New,
    /// Confirmed by triage: a real case.
    Triaged,
    /// Rejected by triage as a false alarm (stored as a labelled false positive).
    Rejected,
    /// Sent to a team.
    Dispatched,
    /// The team has taken it.
    Acknowledged,
    /// The team is on its way.
    EnRoute,
    /// The team has arrived.
    OnScene,
    /// Rectification verified (field photo or camera re-check).
    Resolved,
    /// Done.
    Closed,
}

impl State {
    pub const ALL: [State; 9] = [
        State::New,
        State::Triaged,
        State::Rejected,
        State::Dispatched,
        State::Acknowledged,
        State::EnRoute,
        State::OnScene,
        State::Resolved,
        State::Closed,
    ];

    /// The stored and wire name (camelCase).
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Triaged => "triaged",
            State::Rejected => "rejected",
            State::Dispatched => "dispatched",
            State::Acknowledged => "acknowledged",
            State::EnRoute => "enRoute",
            State::OnScene => "onScene",
            State::Resolved => "resolved",
            State::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Closed or rejected: nothing more happens unless it is reopened.
    pub fn is_final(self) -> bool {
        matches!(self, State::Closed | State::Rejected)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a transition does; the timeline's `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Confirm,
    Reject,
    Dispatch,
    Acknowledge,
    EnRoute,
    Arrive,
    Resolve,
    Close,
    Reopen,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Confirm => "confirm",
            Action::Reject => "reject",
            Action::Dispatch => "dispatch",
            Action::Acknowledge => "acknowledge",
            Action::EnRoute => "enRoute",
            Action::Arrive => "arrive",
            Action::Resolve => "resolve",
            Action::Close => "close",
            Action::Reopen => "reopen",
        }
    }
}

use Role::*;
/// The command center and the towns' officers: triage, dispatch, close, reopen.
const COMMAND: &[Role] = &[Supervisor, Operator, TownOfficer];
/// Those who work a case: the field team, its town officer, and the center recording on a team's
/// behalf (a team that reports by phone).
const RESPONDERS: &[Role] = &[Field, TownOfficer, Operator, Supervisor];

/// A permitted step: what it does and who may take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub action: Action,
    pub roles: &'static [Role],
}

impl Transition {
    pub fn allows(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Every role that may take at least one transition (the policy table's row for the transition route).
pub const ANY_TRANSITION: &[Role] = RESPONDERS;

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("an incident cannot go from {from} to {to}; {hint}")]
    Invalid {
        from: State,
        to: State,
        hint: String,
    },
    #[error("role {role} may not {action} an incident ({from} → {to})", role = .role.as_str(), action = .action.as_str())]
    Role {
        role: Role,
        action: Action,
        from: State,
        to: State,
    },
}

/// The transition from `from` to `to`, if the machine has one.
pub fn find(from: State, to: State) -> Option<Transition> {
    use State::*;
    let (action, roles) = match (from, to) {
        (New, Triaged) => (Action::Confirm, COMMAND),
        (New, Rejected) => (Action::Reject, COMMAND),
        (Triaged, Dispatched) => (Action::Dispatch, COMMAND),
        (Triaged, Resolved) => (Action::Resolve, COMMAND),
        (Dispatched, Acknowledged) => (Action::Acknowledge, RESPONDERS),
        (Acknowledged, EnRoute) => (Action::EnRoute, RESPONDERS),
        (EnRoute, OnScene) => (Action::Arrive, RESPONDERS),
        (OnScene, Resolved) => (Action::Resolve, RESPONDERS),
        (Resolved, Closed) => (Action::Close, COMMAND),
        (Resolved | Closed, Triaged | Dispatched) | (Rejected, Triaged) => {
            (Action::Reopen, COMMAND)
        }
        _ => return None,
    };
    Some(Transition {
        from,
        to,
        action,
        roles,
    })
}

/// The states reachable from `from` in one step.
pub fn next_states(from: State) -> Vec<State> {
    State::ALL
        .into_iter()
        .filter(|to| find(from, *to).is_some())
        .collect()
}

/// Decides whether `role` may move an incident from `from` to `to`. An impossible step is refused
/// before the role is considered, so the answer does not depend on who asks.
pub fn decide(from: State, to: State, role: Role) -> Result<Transition, Refused> {
    let Some(t) = find(from, to) else {
        let next = next_states(from);
        let hint = if next.is_empty() {
            format!("{from} has no further state")
        } else {
            let names: Vec<&str> = next.iter().map(|s| s.as_str()).collect();
            format!("from {from} it can go to {}", names.join(", "))
        };
        return Err(Refused::Invalid { from, to, hint });
    };
    if !t.allows(role) {
        return Err(Refused::Role {
            role,
            action: t.action,
            from,
            to,
        });
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::State::*;
    use super::*;

    /// The whole machine as a table: every permitted (from, to) and its action; every other pair
    /// of the 9 × 9 is refused.
    const TABLE: &[(State, State, Action)] = &[
        (New, Triaged, Action::Confirm),
        (New, Rejected, Action::Reject),
        (Triaged, Dispatched, Action::Dispatch),
        (Triaged, Resolved, Action::Resolve),
        (Dispatched, Acknowledged, Action::Acknowledge),
        (Acknowledged, EnRoute, Action::EnRoute),
        (EnRoute, OnScene, Action::Arrive),
        (OnScene, Resolved, Action::Resolve),
        (Resolved, Closed, Action::Close),
        (Resolved, Triaged, Action::Reopen),
        (Resolved, Dispatched, Action::Reopen),
        (Closed, Triaged, Action::Reopen),
        (Closed, Dispatched, Action::Reopen),
        (Rejected, Triaged, Action::Reopen),
    ];

    #[test]
    fn every_pair_of_states_is_permitted_exactly_when_the_table_says_so() {
        for from in State::ALL {
            for to in State::ALL {
                let want = TABLE.iter().find(|(f, t, _)| *f == from && *t == to);
                let got = find(from, to).map(|t| t.action);
                assert_eq!(got, want.map(|w| w.2), "{from} → {to}");
            }
        }
    }

    #[test]
    fn an_invalid_transition_names_both_states_and_the_ways_forward() {
        let e = decide(New, Closed, Operator).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("from new to closed"), "{text}");
        assert!(text.contains("triaged, rejected"), "{text}");
        assert!(matches!(
            e,
            Refused::Invalid {
                from: New,
                to: Closed,
                ..
            }
        ));
    }

    #[test]
    fn staying_in_the_same_state_is_not_a_transition() {
        for s in State::ALL {
            assert!(find(s, s).is_none(), "{s}");
        }
    }

    #[test]
    fn an_invalid_transition_is_refused_as_invalid_whoever_asks() {
        for role in Role::ALL {
            assert!(matches!(
                decide(Dispatched, OnScene, role),
                Err(Refused::Invalid { .. })
            ));
        }
    }

    #[test]
    fn only_the_command_center_and_town_officers_triage_dispatch_close_and_reopen() {
        for (from, to, action) in TABLE {
            let roles = find(*from, *to).unwrap().roles;
            let field_work = matches!(
                (action, from),
                (Action::Acknowledge | Action::EnRoute | Action::Arrive, _)
                    | (Action::Resolve, OnScene)
            );
            assert_eq!(roles.contains(&Field), field_work, "{from} → {to}");
            for role in [Supervisor, Operator, TownOfficer] {
                assert!(roles.contains(&role), "{role:?} {from} → {to}");
            }
        }
    }

    #[test]
    fn admins_auditors_and_drill_coordinators_take_no_transition() {
        for (from, to, _) in TABLE {
            for role in [Admin, Auditor, DrillCoordinator] {
                let e = decide(*from, *to, role).unwrap_err();
                assert!(matches!(e, Refused::Role { .. }), "{role:?} {from} → {to}");
                assert!(e.to_string().contains(role.as_str()), "{e}");
            }
        }
    }

    #[test]
    fn every_role_of_any_transition_is_in_the_route_roles() {
        for (from, to, _) in TABLE {
            for role in find(*from, *to).unwrap().roles {
                assert!(ANY_TRANSITION.contains(role));
            }
        }
    }

    #[test]
    fn only_closed_and_rejected_are_final_and_both_can_be_reopened() {
        let finals: Vec<State> = State::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, vec![Rejected, Closed]);
        for s in finals {
            assert!(next_states(s).contains(&Triaged), "{s}");
        }
    }

    #[test]
    fn the_full_path_from_report_to_close_is_walkable_by_its_usual_actors() {
        let path = [
            (New, Triaged, Operator),
            (Triaged, Dispatched, Operator),
            (Dispatched, Acknowledged, Field),
            (Acknowledged, EnRoute, Field),
            (EnRoute, OnScene, Field),
            (OnScene, Resolved, Field),
            (Resolved, Closed, TownOfficer),
        ];
        for (from, to, role) in path {
            decide(from, to, role).unwrap();
        }
    }

    #[test]
    fn every_state_round_trips_through_its_name() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(State::parse("open"), None);
    }
}
