//! Teams (one town each), their recurring shifts and one-off overrides, and grids.

use super::roster::{self, Override, Shift};
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// A team as the API shows it, with whether it is on duty now.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: Uuid,
    pub town_id: String,
    pub name: String,
    pub phone: String,
    #[sqlx(skip)]
    pub on_duty: bool,
    #[sqlx(skip)]
    pub shifts: Vec<Shift>,
    /// One-off duty periods that have not ended yet.
    #[sqlx(skip)]
    pub overrides: Vec<RosterOverride>,
}

/// A one-off duty period as the API shows and takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RosterOverride {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub reason: String,
}

/// A recurring shift as the API takes it (times in China Standard Time, `HH:MM:SS`).
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShiftInput {
    /// Bit 0 = Monday … bit 6 = Sunday (1–127): the days the shift starts on.
    pub weekdays: i16,
    pub starts: NaiveTime,
    /// At or before `starts`: the shift ends the next day.
    pub ends: NaiveTime,
}

/// The body of `PUT /api/teams/{id}/roster`: the team's whole roster, replacing the stored one.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RosterInput {
    pub shifts: Vec<ShiftInput>,
    /// Replaces the overrides that have not ended yet; past ones stay as the record.
    #[serde(default)]
    pub overrides: Vec<RosterOverride>,
}

/// Most shifts and overrides one roster may hold.
pub const MAX_ROSTER_ENTRIES: usize = 50;

impl RosterInput {
    /// The first rule broken: the JSON path of the field (`shifts[1].weekdays`) and what is wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.shifts.len() > MAX_ROSTER_ENTRIES || self.overrides.len() > MAX_ROSTER_ENTRIES {
            return Err((
                "shifts".into(),
                format!("at most {MAX_ROSTER_ENTRIES} shifts and {MAX_ROSTER_ENTRIES} overrides"),
            ));
        }
        for (i, s) in self.shifts.iter().enumerate() {
            if !(1..=roster::EVERY_DAY).contains(&s.weekdays) {
                return Err((
                    format!("shifts[{i}].weekdays"),
                    "pick at least one day (1-127, bit 0 = Monday)".into(),
                ));
            }
        }
        for (i, o) in self.overrides.iter().enumerate() {
            if o.ends_at <= o.starts_at {
                return Err((
                    format!("overrides[{i}].endsAt"),
                    "must be after startsAt".into(),
                ));
            }
            if o.reason.chars().count() > 200 {
                return Err((
                    format!("overrides[{i}].reason"),
                    "must be at most 200 characters".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Teams within `scope` (None = district), each marked on duty at `now` per the roster.
pub async fn list(
    pool: &PgPool,
    scope: Option<&[String]>,
    now: DateTime<Utc>,
) -> Result<Vec<Team>, sqlx::Error> {
    let mut teams = sqlx::query_as::<_, Team>(
        "SELECT id, town_id, name, phone FROM teams WHERE ($1::text[] IS NULL OR town_id = ANY($1)) \
         ORDER BY town_id, name",
    )
    .bind(scope)
    .fetch_all(pool)
    .await?;
    let mut conn = pool.acquire().await?;
    let (shifts, overrides) = roster(&mut conn, scope, now).await?;
    for team in &mut teams {
        team.on_duty = roster::on_duty(&team.town_id, now, &shifts, &overrides).contains(&team.id);
        team.shifts = shifts
            .iter()
            .filter(|s| s.team_id == team.id)
            .cloned()
            .collect();
    }
    let overrides = sqlx::query_as::<_, (Uuid, DateTime<Utc>, DateTime<Utc>, String)>(
        "SELECT o.team_id, o.starts_at, o.ends_at, o.reason FROM roster_overrides o \
         JOIN teams t ON t.id = o.team_id WHERE ($1::text[] IS NULL OR t.town_id = ANY($1)) \
         AND o.ends_at > $2 ORDER BY o.starts_at, o.id",
    )
    .bind(scope)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    for (team, starts_at, ends_at, reason) in overrides {
        if let Some(t) = teams.iter_mut().find(|t| t.id == team) {
            t.overrides.push(RosterOverride {
                starts_at,
                ends_at,
                reason,
            });
        }
    }
    Ok(teams)
}

/// One team as [`list`] shows it (None when missing).
pub async fn get(pool: &PgPool, id: Uuid, now: DateTime<Utc>) -> Result<Option<Team>, sqlx::Error> {
    let town: Option<String> = sqlx::query_scalar("SELECT town_id FROM teams WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(town) = town else {
        return Ok(None);
    };
    Ok(list(pool, Some(&[town]), now)
        .await?
        .into_iter()
        .find(|t| t.id == id))
}

/// Renames a team or changes its phone; false when no such team exists.
pub async fn update(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    name: &str,
    phone: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE teams SET name = $2, phone = $3 WHERE id = $1")
            .bind(id)
            .bind(name)
            .bind(phone)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Replaces the team's shifts, and its overrides that end after `now`, with `roster`.
pub async fn replace_roster(
    tx: &mut Transaction<'_, Postgres>,
    team: Uuid,
    roster: &RosterInput,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM roster_shifts WHERE team_id = $1")
        .bind(team)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM roster_overrides WHERE team_id = $1 AND ends_at > $2")
        .bind(team)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    for s in &roster.shifts {
        add_shift(tx, team, s.weekdays, s.starts, s.ends).await?;
    }
    for o in &roster.overrides {
        add_override(tx, team, o.starts_at, o.ends_at, &o.reason).await?;
    }
    Ok(())
}

/// The shifts of the teams of `scope` (None = district), and their overrides that end after
/// `after`: what [`roster::on_duty`] needs to answer for any time from `after` on.
pub async fn roster(
    conn: &mut PgConnection,
    scope: Option<&[String]>,
    after: DateTime<Utc>,
) -> Result<(Vec<Shift>, Vec<Override>), sqlx::Error> {
    let shifts = sqlx::query_as::<_, Shift>(
        "SELECT s.team_id, t.town_id, s.weekdays, s.starts, s.ends FROM roster_shifts s \
         JOIN teams t ON t.id = s.team_id WHERE ($1::text[] IS NULL OR t.town_id = ANY($1)) \
         ORDER BY s.starts, s.id",
    )
    .bind(scope)
    .fetch_all(&mut *conn)
    .await?;
    let overrides = sqlx::query_as::<_, Override>(
        "SELECT o.team_id, t.town_id, o.starts_at, o.ends_at FROM roster_overrides o \
         JOIN teams t ON t.id = o.team_id WHERE ($1::text[] IS NULL OR t.town_id = ANY($1)) \
         AND o.ends_at > $2 ORDER BY o.starts_at, o.id",
    )
    .bind(scope)
    .bind(after)
    .fetch_all(&mut *conn)
    .await?;
    Ok((shifts, overrides))
}

/// Creates a team and returns its id.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    town: &str,
    name: &str,
    phone: &str,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO teams (id, town_id, name, phone) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(town)
        .bind(name)
        .bind(phone)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

/// Adds a recurring shift to a team.
pub async fn add_shift(
    tx: &mut Transaction<'_, Postgres>,
    team: Uuid,
    weekdays: i16,
    starts: NaiveTime,
    ends: NaiveTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO roster_shifts (id, team_id, weekdays, starts, ends) VALUES ($1, $2, $3, $4, $5)")
        .bind(Uuid::now_v7())
        .bind(team)
        .bind(weekdays)
        .bind(starts)
        .bind(ends)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Puts `team` on duty for its town over `[starts_at, ends_at)`, replacing the regular shifts.
pub async fn add_override(
    tx: &mut Transaction<'_, Postgres>,
    team: Uuid,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO roster_overrides (id, team_id, starts_at, ends_at, reason) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(team)
    .bind(starts_at)
    .bind(ends_at)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Creates a grid (网格) of a town.
pub async fn insert_grid(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    town: &str,
    name: &str,
    person_in_charge: &str,
    phone: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO grids (id, town_id, name, person_in_charge, phone) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(town)
        .bind(name)
        .bind(person_in_charge)
        .bind(phone)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, 0, 0).unwrap()
    }

    #[test]
    fn a_roster_names_the_first_bad_entry_by_its_json_path() {
        let shift = |weekdays| ShiftInput {
            weekdays,
            starts: t(8),
            ends: t(20),
        };
        let ok = RosterInput {
            shifts: vec![shift(0b11111), shift(0b1100000)],
            overrides: vec![],
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad = RosterInput {
            shifts: vec![shift(1), shift(0)],
            overrides: vec![],
        };
        assert_eq!(bad.validate().unwrap_err().0, "shifts[1].weekdays");
        let at = Utc::now();
        let backwards = RosterInput {
            shifts: vec![],
            overrides: vec![RosterOverride {
                starts_at: at,
                ends_at: at,
                reason: String::new(),
            }],
        };
        assert_eq!(backwards.validate().unwrap_err().0, "overrides[0].endsAt");
    }
}
