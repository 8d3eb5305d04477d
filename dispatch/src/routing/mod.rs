//! Routing (DESIGN.md §4): premises → town → grid → the team on duty in that town at the
//! incident's time, from the duty roster ([`crate::registry::roster::on_duty`]). The decision is
//! plain ([`decide`]); [`route`] loads the roster, stores the team on the incident and writes the
//! timeline entry. With nobody on duty the incident stays with the town, and the timeline says so.
//! (Escalation when a team is saturated or silent comes later.)

use crate::incident::note::Note;
use crate::incident::store::{self, Entry};
use crate::incident::{Actor, IncidentId};
use crate::registry::roster::{self, Override, Shift, cst};
use crate::registry::teams;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

/// Where an incident went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The on-duty team, or `None`: the town itself has it.
    pub team: Option<Uuid>,
    /// The timeline note.
    pub note: String,
    /// The note as a code (`routedToTeam` / `routedToTown`) for the apps.
    pub coded: Note,
}

/// Picks the first team on duty for `town` at `at` (overrides first, then shifts in roster order).
pub fn decide(
    town: &str,
    grid: Option<&str>,
    at: DateTime<Utc>,
    shifts: &[Shift],
    overrides: &[Override],
    team_name: impl Fn(Uuid) -> String,
) -> Decision {
    let local = at.with_timezone(&cst()).format("%Y-%m-%d %H:%M CST");
    let grid_id = grid;
    let grid = grid.map(|g| format!(", grid {g}")).unwrap_or_default();
    match roster::on_duty(town, at, shifts, overrides).first() {
        Some(&team) => Decision {
            team: Some(team),
            note: format!(
                "routed to team {} (on duty in {town}{grid} at {local})",
                team_name(team)
            ),
            coded: Note::new(
                "routedToTeam",
                json!({"team": team_name(team), "town": town, "grid": grid_id, "at": at}),
            ),
        },
        None => Decision {
            team: None,
            note: format!(
                "no team on duty in {town}{grid} at {local}; routed to the town {town} itself"
            ),
            coded: Note::new(
                "routedToTown",
                json!({"town": town, "grid": grid_id, "at": at}),
            ),
        },
    }
}

/// Routes an incident of `town` (and `grid`) that happened at `at`; stores the team and appends
/// "routed" to the timeline, stamped `now`. Returns the team, if any was on duty.
pub async fn route(
    conn: &mut PgConnection,
    incident: IncidentId,
    town: &str,
    grid: Option<&str>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, sqlx::Error> {
    let scope = [town.to_owned()];
    let (shifts, overrides) = teams::roster(conn, Some(&scope), at).await?;
    let names: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, name FROM teams WHERE town_id = $1")
            .bind(town)
            .fetch_all(&mut *conn)
            .await?;
    let decision = decide(town, grid, at, &shifts, &overrides, |id| {
        names
            .iter()
            .find(|(t, _)| *t == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.to_string())
    });
    sqlx::query("UPDATE incidents SET routed_team_id = $2, routed_at = $3 WHERE id = $1")
        .bind(incident)
        .bind(decision.team)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    let mut entry = Entry::note(now, &Actor::System, "routed", decision.note).with(decision.coded);
    entry.refs = json!({ "teamId": decision.team, "townId": town });
    store::append(conn, incident, &entry).await?;
    tracing::info!(incident = %incident, town, team = ?decision.team, "incident routed");
    Ok(decision.team)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::roster::EVERY_DAY;
    use chrono::{NaiveTime, TimeZone};

    fn shift(team: u128, town: &str, from: u32, to: u32) -> Shift {
        Shift {
            team_id: Uuid::from_u128(team),
            town_id: town.into(),
            weekdays: EVERY_DAY,
            starts: NaiveTime::from_hms_opt(from, 0, 0).unwrap(),
            ends: NaiveTime::from_hms_opt(to, 0, 0).unwrap(),
        }
    }

    fn name(id: Uuid) -> String {
        format!("team-{}", id.as_u128())
    }

    fn at_cst(h: u32) -> DateTime<Utc> {
        cst()
            .with_ymd_and_hms(2026, 11, 23, h, 15, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_night_report_in_zhaitang_goes_to_zhaitangs_night_team() {
        let shifts = [
            shift(1, "zhaitang", 8, 20),
            shift(2, "zhaitang", 20, 8),
            shift(3, "qingshui", 0, 0),
        ];
        let d = decide("zhaitang", Some("zt-01"), at_cst(22), &shifts, &[], name);
        assert_eq!(d.team, Some(Uuid::from_u128(2)));
        assert_eq!(
            d.note,
            "routed to team team-2 (on duty in zhaitang, grid zt-01 at 2026-11-23 22:15 CST)"
        );
    }

    #[test]
    fn with_nobody_on_duty_the_town_gets_it_and_the_note_says_so() {
        let shifts = [shift(1, "zhaitang", 8, 20)];
        let d = decide("zhaitang", None, at_cst(22), &shifts, &[], name);
        assert_eq!(d.team, None);
        assert!(
            d.note.starts_with("no team on duty in zhaitang"),
            "{}",
            d.note
        );
        assert!(d.note.contains("routed to the town"), "{}", d.note);
    }

    #[test]
    fn another_towns_team_is_never_chosen() {
        let shifts = [shift(3, "qingshui", 0, 0)];
        assert_eq!(
            decide("zhaitang", None, at_cst(12), &shifts, &[], name).team,
            None
        );
    }
}
