//! Who sees which change: the role's row in `auth::policy::WS_MESSAGES`, then scope. Pure.
//!
//! - District users see every town, town users their towns.
//! - Field users see the incidents (and timeline entries) routed to their team, and the
//!   notifications addressed to their team or to themselves — not their whole town.
//! - Drill coordinators see exercise incidents, timelines and notifications (in their towns) only.
//! - Drill changes: coordinators and supervisors (observers) see the runs whose towns all lie in
//!   their scope, as by REST; other roles only runs they take part in (their role among the run's
//!   participant roles, one of its towns in their scope).
//! - Everyone else sees real and exercise changes of their towns; exercise ones carry `exercise`,
//!   so consoles mark them DRILL.

use super::message::{Change, Topic};
use crate::auth::policy::{self, WsDirection};
use crate::auth::{Role, Scope};
use std::collections::HashSet;
use uuid::Uuid;

/// The user behind a socket, as of its latest session check.
#[derive(Debug, Clone, PartialEq)]
pub struct Viewer {
    pub user_id: Uuid,
    pub username: String,
    pub role: Role,
    pub scope: Scope,
    /// `users.team_id`: what a field user sees.
    pub team_id: Option<Uuid>,
}

impl Viewer {
    /// Whether this role may subscribe to `topic` (its message's policy row).
    pub fn may_subscribe(&self, topic: Topic) -> bool {
        policy::ws_lookup(WsDirection::ToClient, topic.message_kind())
            .is_some_and(|r| r.allows(self.role))
    }

    /// Every topic this role may subscribe to.
    pub fn topics(&self) -> Vec<Topic> {
        Topic::ALL
            .into_iter()
            .filter(|t| self.may_subscribe(*t))
            .collect()
    }

    /// Whether a socket of this viewer subscribed to `topics` receives `change`.
    pub fn receives(&self, topics: &HashSet<Topic>, change: &Change) -> bool {
        let Some(topic) = change.topic() else {
            return false;
        };
        topics.contains(&topic) && self.may_subscribe(topic) && self.sees(change)
    }

    /// Whether `change` lies in this viewer's scope.
    pub fn sees(&self, change: &Change) -> bool {
        match change {
            Change::Incident(c) => {
                self.sees_incident(&c.town_id, c.routed_team_id, c.exercise.is_some())
            }
            Change::Timeline(c) => {
                self.sees_incident(&c.town_id, c.routed_team_id, c.exercise.is_some())
            }
            Change::Notification(c) => match self.role {
                Role::Field => self.is_addressed(&c.target_kind, &c.target_id),
                Role::DrillCoordinator => c.exercise.is_some() && self.scope.allows(&c.town_id),
                _ => self.scope.allows(&c.town_id),
            },
            Change::Edge(c) => self.scope.allows(&c.town_id),
            // Not about a town: which cameras a tile may play is decided by its live grant.
            Change::Wall(_) => true,
            Change::Drill(c) => match self.role {
                Role::DrillCoordinator | Role::Supervisor => {
                    c.towns.iter().all(|t| self.scope.allows(t))
                }
                role => {
                    c.roles.iter().any(|r| r == role.as_str())
                        && c.towns.iter().any(|t| self.scope.allows(t))
                }
            },
            Change::Talk(c) => self.scope.allows(&c.town_id),
            Change::Broadcast(c) => self.scope.allows(&c.town_id),
            Change::SessionEnded(_) => false,
        }
    }

    fn sees_incident(&self, town: &str, team: Option<Uuid>, exercise: bool) -> bool {
        match self.role {
            Role::Field => team.is_some() && team == self.team_id,
            Role::DrillCoordinator => exercise && self.scope.allows(town),
            _ => self.scope.allows(town),
        }
    }

    /// Whether a notification to (`kind`, `id`) is for this user or their team.
    fn is_addressed(&self, kind: &str, id: &str) -> bool {
        match kind {
            "team" => self.team_id.is_some_and(|t| t.to_string() == id),
            "user" => self.user_id.to_string() == id,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::message::tests::incident;
    use crate::ws::message::{EdgeChange, NotificationChange, TimelineChange};
    use chrono::Utc;

    fn viewer(role: Role, scope: Scope, team: Option<Uuid>) -> Viewer {
        Viewer {
            user_id: Uuid::now_v7(),
            username: "u".into(),
            role,
            scope,
            team_id: team,
        }
    }

    fn town(t: &str) -> Scope {
        Scope::Towns(vec![t.to_owned()])
    }

    fn all() -> HashSet<Topic> {
        Topic::ALL.into_iter().collect()
    }

    fn notification(town: &str, kind: &str, id: &str, exercise: Option<&str>) -> Change {
        Change::Notification(NotificationChange {
            id: Uuid::now_v7(),
            incident_id: Uuid::now_v7(),
            target_kind: kind.into(),
            target_id: id.into(),
            town_id: town.into(),
            exercise: exercise.map(str::to_owned),
            created_at: Utc::now(),
        })
    }

    fn edge(town: &str) -> Change {
        Change::Edge(EdgeChange {
            edge_id: "e1".into(),
            premises_id: Uuid::now_v7(),
            town_id: town.into(),
            online: false,
            cameras: None,
            reported_at: Utc::now(),
            received_at: Utc::now(),
        })
    }

    #[test]
    fn district_users_see_every_town_and_town_users_only_theirs() {
        let c = incident("zhaitang", None, None);
        assert!(viewer(Role::Operator, Scope::District, None).receives(&all(), &c));
        assert!(viewer(Role::TownOfficer, town("zhaitang"), None).receives(&all(), &c));
        assert!(!viewer(Role::TownOfficer, town("qingshui"), None).receives(&all(), &c));
        assert!(
            !viewer(Role::Supervisor, town("qingshui"), None).receives(&all(), &edge("zhaitang"))
        );
    }

    #[test]
    fn field_users_see_only_what_is_routed_or_addressed_to_their_team_or_themselves() {
        let team = Uuid::now_v7();
        let me = viewer(Role::Field, town("zhaitang"), Some(team));
        assert!(me.receives(&all(), &incident("zhaitang", Some(team), None)));
        assert!(!me.receives(&all(), &incident("zhaitang", Some(Uuid::now_v7()), None)));
        assert!(!me.receives(&all(), &incident("zhaitang", None, None)));
        let timeline = Change::Timeline(TimelineChange {
            incident_id: Uuid::now_v7(),
            seq: 3,
            action: "routed".into(),
            to_state: None,
            town_id: "zhaitang".into(),
            routed_team_id: Some(team),
            exercise: None,
            at: Utc::now(),
        });
        assert!(me.receives(&all(), &timeline));
        assert!(me.receives(
            &all(),
            &notification("zhaitang", "team", &team.to_string(), None)
        ));
        assert!(me.receives(
            &all(),
            &notification("zhaitang", "user", &me.user_id.to_string(), None)
        ));
        assert!(!me.receives(&all(), &notification("zhaitang", "town", "zhaitang", None)));
        assert!(!me.receives(
            &all(),
            &notification("zhaitang", "user", &Uuid::now_v7().to_string(), None)
        ));
        // no team: nothing
        let teamless = viewer(Role::Field, Scope::District, None);
        assert!(!teamless.receives(&all(), &incident("zhaitang", None, None)));
        // and never device health
        assert!(!me.receives(&all(), &edge("zhaitang")));
        assert!(!me.topics().contains(&Topic::Edges));
    }

    #[test]
    fn drill_coordinators_see_exercises_in_their_towns_and_no_real_incidents() {
        let d = viewer(Role::DrillCoordinator, town("zhaitang"), None);
        assert!(d.receives(&all(), &incident("zhaitang", None, Some("drill-1"))));
        assert!(!d.receives(&all(), &incident("zhaitang", None, None)));
        assert!(!d.receives(&all(), &incident("qingshui", None, Some("drill-1"))));
        assert!(d.receives(
            &all(),
            &notification("zhaitang", "town", "zhaitang", Some("drill-1"))
        ));
        assert!(!d.receives(&all(), &notification("zhaitang", "town", "zhaitang", None)));
        // operators see exercise changes too, marked by `exercise`
        let op = viewer(Role::Operator, Scope::District, None);
        assert!(op.receives(&all(), &incident("zhaitang", None, Some("drill-1"))));
    }

    fn drill(towns: &[&str], roles: &[&str]) -> Change {
        Change::Drill(crate::ws::message::DrillChange {
            run_id: Uuid::now_v7(),
            what: "inject".into(),
            state: "running".into(),
            towns: towns.iter().map(|t| t.to_string()).collect(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            at: Utc::now(),
        })
    }

    #[test]
    fn drill_changes_reach_coordinators_of_all_its_towns_and_participants_only() {
        let run = drill(&["zhaitang"], &["field", "townOfficer"]);
        assert!(viewer(Role::DrillCoordinator, town("zhaitang"), None).receives(&all(), &run));
        assert!(!viewer(Role::DrillCoordinator, town("qingshui"), None).receives(&all(), &run));
        let two = drill(&["zhaitang", "qingshui"], &[]);
        assert!(!viewer(Role::DrillCoordinator, town("zhaitang"), None).receives(&all(), &two));
        assert!(viewer(Role::Supervisor, Scope::District, None).receives(&all(), &two));
        // a participant role of one of its towns
        assert!(viewer(Role::TownOfficer, town("zhaitang"), None).receives(&all(), &run));
        assert!(!viewer(Role::TownOfficer, town("qingshui"), None).receives(&all(), &run));
        // not a participant role: operators hear nothing of it
        assert!(!viewer(Role::Operator, Scope::District, None).receives(&all(), &run));
        // field users and auditors may not subscribe at all
        assert!(!viewer(Role::Field, town("zhaitang"), None).may_subscribe(Topic::Drills));
        assert!(!viewer(Role::Auditor, Scope::District, None).may_subscribe(Topic::Drills));
    }

    #[test]
    fn only_subscribed_topics_arrive_and_internal_changes_never_do() {
        let op = viewer(Role::Operator, Scope::District, None);
        let incidents: HashSet<Topic> = [Topic::Incidents].into_iter().collect();
        assert!(op.receives(&incidents, &incident("zhaitang", None, None)));
        assert!(!op.receives(&incidents, &edge("zhaitang")));
        assert!(!op.receives(&HashSet::new(), &incident("zhaitang", None, None)));
        let ended = Change::SessionEnded(crate::ws::message::SessionEnded {
            id_hash: "00".into(),
        });
        assert!(!op.receives(&all(), &ended));
    }

    #[test]
    fn topics_follow_the_policy_table() {
        let admin = viewer(Role::Admin, Scope::District, None);
        assert!(!admin.may_subscribe(Topic::Notifications));
        assert!(admin.may_subscribe(Topic::Edges));
        assert!(!admin.receives(
            &all(),
            &notification("zhaitang", "district", "district", None)
        ));
        let auditor = viewer(Role::Auditor, Scope::District, None);
        assert!(auditor.topics().is_empty());
        assert!(!auditor.receives(&all(), &incident("zhaitang", None, None)));
    }
}
