//! Who may work which incident beyond town scope, and which incidents need proof of
//! rectification. Plain logic; the handlers look the facts up.

use crate::auth::{Caller, Role};
use crate::error::{Error, Result};
use crate::incident::store::Incident;
use sqlx::PgConnection;
use uuid::Uuid;

/// Which team's incidents a caller's incident lists are limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamFilter {
    /// No team limit (town scope only).
    Any,
    /// Only incidents routed to this team.
    Team(Uuid),
    /// Nothing: a field user without a team works no incident.
    Nothing,
}

impl TeamFilter {
    /// A field user sees their team's incidents only; everyone else is limited by town scope.
    pub fn for_lists(role: Role, team: Option<Uuid>) -> TeamFilter {
        match (role, team) {
            (Role::Field, Some(t)) => TeamFilter::Team(t),
            (Role::Field, None) => TeamFilter::Nothing,
            _ => TeamFilter::Any,
        }
    }

    /// The "my incidents" view: a caller with a team sees the team's incidents; a town officer
    /// without one sees those of their towns.
    pub fn for_my_incidents(role: Role, team: Option<Uuid>) -> TeamFilter {
        match team {
            Some(t) => TeamFilter::Team(t),
            None => TeamFilter::for_lists(role, None),
        }
    }

    /// As a query parameter: `None` = no limit; the nil UUID (never a team id) matches nothing.
    pub fn as_param(self) -> Option<Uuid> {
        match self {
            TeamFilter::Any => None,
            TeamFilter::Team(t) => Some(t),
            TeamFilter::Nothing => Some(Uuid::nil()),
        }
    }

    pub fn allows(self, routed_team: Option<Uuid>) -> bool {
        match self {
            TeamFilter::Any => true,
            TeamFilter::Team(t) => routed_team == Some(t),
            TeamFilter::Nothing => false,
        }
    }
}

/// The caller's team (`users.team_id`), looked up only for field users: nobody else is limited by it.
pub async fn team_filter(conn: &mut PgConnection, caller: &Caller) -> Result<TeamFilter> {
    if caller.role != Role::Field {
        return Ok(TeamFilter::Any);
    }
    Ok(TeamFilter::for_lists(
        caller.role,
        team_of(conn, caller.user_id).await?,
    ))
}

/// `users.team_id` of a user.
pub async fn team_of(conn: &mut PgConnection, user: Uuid) -> Result<Option<Uuid>> {
    Ok(
        sqlx::query_scalar::<_, Option<Uuid>>("SELECT team_id FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(conn)
            .await?
            .flatten(),
    )
}

/// The scope re-check after looking an incident up: 403 `out_of_scope` outside the caller's towns,
/// then 403 `not_your_team` when a field user's team is not the one it is routed to.
pub async fn check_incident(
    conn: &mut PgConnection,
    caller: &Caller,
    incident: &Incident,
) -> Result<()> {
    caller.check_town(&incident.town_id)?;
    if !team_filter(conn, caller)
        .await?
        .allows(incident.routed_team_id)
    {
        return Err(not_your_team());
    }
    Ok(())
}

/// A field user watches a premises' camera only while one of their team's incidents there is
/// open (not closed or rejected, not a drill's): 403 `not_your_team` otherwise. Everyone else is
/// limited by town scope alone.
pub async fn check_camera(conn: &mut PgConnection, caller: &Caller, premises: Uuid) -> Result<()> {
    let team = match team_filter(conn, caller).await? {
        TeamFilter::Any => return Ok(()),
        TeamFilter::Team(t) => t,
        TeamFilter::Nothing => return Err(not_your_camera()),
    };
    let theirs: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM incidents WHERE premises_id = $1 AND routed_team_id = $2 \
         AND state NOT IN ('closed', 'rejected') AND exercise IS NULL)",
    )
    .bind(premises)
    .bind(team)
    .fetch_one(conn)
    .await?;
    if theirs {
        Ok(())
    } else {
        Err(not_your_camera())
    }
}

fn not_your_camera() -> Error {
    Error::forbidden(
        "not_your_team",
        "field users watch the cameras of premises where their team has an open incident",
    )
}

pub fn not_your_team() -> Error {
    Error::forbidden(
        "not_your_team",
        "this incident is routed to another team; field users work their own team's incidents",
    )
}

/// Whether resolving needs rectification evidence (a photo or a passed camera re-check): a
/// camera saw the violation, or it is a deadline-tier kind that a business must put right.
pub fn needs_evidence(source: &str, tier: &str) -> bool {
    source == "detection" || tier == "deadline"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_user_sees_only_their_teams_incidents_and_without_a_team_none() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let f = TeamFilter::for_lists(Role::Field, Some(a));
        assert!(f.allows(Some(a)));
        assert!(!f.allows(Some(b)));
        assert!(!f.allows(None), "a town-held incident is not the team's");
        let none = TeamFilter::for_lists(Role::Field, None);
        assert!(!none.allows(Some(a)) && !none.allows(None));
        assert_eq!(none.as_param(), Some(Uuid::nil()));
    }

    #[test]
    fn other_roles_are_limited_by_town_scope_only_except_in_their_own_team_view() {
        let a = Uuid::now_v7();
        for role in Role::ALL.into_iter().filter(|r| *r != Role::Field) {
            assert_eq!(TeamFilter::for_lists(role, Some(a)), TeamFilter::Any);
            assert_eq!(TeamFilter::for_my_incidents(role, None), TeamFilter::Any);
        }
        assert_eq!(
            TeamFilter::for_my_incidents(Role::TownOfficer, Some(a)),
            TeamFilter::Team(a)
        );
        assert_eq!(TeamFilter::Any.as_param(), None);
    }

    #[test]
    fn detections_and_deadline_kinds_need_evidence_and_reports_of_other_tiers_do_not() {
        assert!(needs_evidence("detection", "immediate"));
        assert!(needs_evidence("detection", "routine"));
        assert!(needs_evidence("manual", "deadline"));
        assert!(needs_evidence("hotline", "deadline"));
        assert!(!needs_evidence("hotline", "immediate"));
        assert!(!needs_evidence("manual", "routine"));
        assert!(!needs_evidence("camera", "routine"));
    }
}
