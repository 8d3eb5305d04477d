//! Only participants are notified: an escalation step or clock of a drill incident reaches the
//! run's participant teams, and users of its participant roles and towns, never anybody else —
//! and always the run's coordinator, who plays (or tells) whoever does not take part. Real
//! incidents are never filtered.

use super::scenario::Participants;
use crate::escalation::store::Recipient;
use sqlx::PgConnection;
use uuid::Uuid;

/// A user the escalation would reach: their role and towns (`None`: district scope).
#[derive(Debug, Clone, PartialEq)]
pub struct UserInfo {
    pub role: String,
    pub towns: Option<Vec<String>>,
}

/// Whether `r` takes part in a drill of `p` (`user`: the recipient's role and towns when it is a
/// user). Plain.
pub(crate) fn takes_part(p: &Participants, r: &Recipient, user: Option<&UserInfo>) -> bool {
    let role = |role: &str| p.roles.iter().any(|x| x == role);
    match r.kind {
        "team" => p.teams.contains(&r.name),
        // a town with no officer registered: its duty desk stands for the town officers
        "town" => role("townOfficer") && p.towns.contains(&r.id),
        "district" => role("supervisor"),
        "user" => user.is_some_and(|u| {
            role(&u.role)
                && u.towns
                    .as_ref()
                    .is_none_or(|ts| ts.iter().any(|t| p.towns.contains(t)))
        }),
        _ => false,
    }
}

/// The recipients of a step of the drill `exercise` that take part, plus its coordinator (once).
/// An exercise without a run row (none should exist) keeps every recipient.
pub(crate) async fn restrict(
    conn: &mut PgConnection,
    exercise: &str,
    rows: Vec<Recipient>,
) -> Result<Vec<Recipient>, sqlx::Error> {
    let run: Option<(String, String, Uuid, String)> = sqlx::query_as(
        "SELECT r.scenario_id, r.scenario_yaml, r.started_by, u.username FROM drill_runs r \
         JOIN users u ON u.id = r.started_by WHERE r.exercise = $1",
    )
    .bind(exercise)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((scenario_id, yaml, coordinator, coordinator_name)) = run else {
        return Ok(rows);
    };
    let participants = match super::scenario::parse(&scenario_id, &yaml) {
        Ok(s) => s.participants,
        Err(e) => {
            tracing::error!(exercise, err = %e, "stored drill scenario does not parse; notifying its coordinator only");
            Participants {
                towns: Vec::new(),
                teams: Vec::new(),
                roles: Vec::new(),
            }
        }
    };
    let mut kept = Vec::new();
    for r in rows {
        let user = match r.kind {
            "user" => user_info(conn, &r.id).await?,
            _ => None,
        };
        if takes_part(&participants, &r, user.as_ref()) {
            kept.push(r);
        }
    }
    let coordinator = coordinator.to_string();
    if !kept.iter().any(|r| r.kind == "user" && r.id == coordinator) {
        kept.push(Recipient {
            kind: "user",
            id: coordinator,
            name: coordinator_name,
        });
    }
    Ok(kept)
}

/// Whether `exercise` is a drill run's (only then are its notifications restricted).
pub(crate) async fn has_run(conn: &mut PgConnection, exercise: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM drill_runs WHERE exercise = $1)")
        .bind(exercise)
        .fetch_one(conn)
        .await
}

async fn user_info(conn: &mut PgConnection, id: &str) -> Result<Option<UserInfo>, sqlx::Error> {
    let Ok(id) = id.parse::<Uuid>() else {
        return Ok(None);
    };
    let row: Option<(String, Option<Vec<String>>)> =
        sqlx::query_as("SELECT role, scope_towns FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(role, towns)| UserInfo { role, towns }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zhaitang() -> Participants {
        Participants {
            towns: vec!["zhaitang".into()],
            teams: vec!["斋堂镇全天组".into()],
            roles: vec!["field".into(), "townOfficer".into(), "operator".into()],
        }
    }

    fn to(kind: &'static str, id: &str, name: &str) -> Recipient {
        Recipient {
            kind,
            id: id.into(),
            name: name.into(),
        }
    }

    fn user(role: &str, towns: Option<&[&str]>) -> UserInfo {
        UserInfo {
            role: role.into(),
            towns: towns.map(|ts| ts.iter().map(|t| t.to_string()).collect()),
        }
    }

    #[test]
    fn participant_teams_and_officers_of_participant_towns_take_part() {
        let p = zhaitang();
        assert!(takes_part(&p, &to("team", "t1", "斋堂镇全天组"), None));
        let officer = to("user", "u1", "zt-officer");
        assert!(takes_part(
            &p,
            &officer,
            Some(&user("townOfficer", Some(&["zhaitang"])))
        ));
        assert!(takes_part(&p, &to("town", "zhaitang", "斋堂镇"), None));
    }

    #[test]
    fn other_teams_towns_and_roles_never_do() {
        let p = zhaitang();
        assert!(!takes_part(&p, &to("team", "t2", "斋堂镇夜班"), None));
        let u = to("user", "u2", "x");
        assert!(!takes_part(
            &p,
            &u,
            Some(&user("townOfficer", Some(&["qingshui"])))
        ));
        // supervisors are not among the roles: the district step reaches nobody but the coordinator
        assert!(!takes_part(&p, &u, Some(&user("supervisor", None))));
        assert!(!takes_part(&p, &to("district", "district", "d"), None));
        assert!(!takes_part(&p, &to("town", "qingshui", "清水镇"), None));
        // a user who no longer exists
        assert!(!takes_part(&p, &u, None));
    }
}
