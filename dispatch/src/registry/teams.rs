//! Teams (one town each), their recurring shifts and one-off overrides, and grids.

use super::roster::{self, Override, Shift};
use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;
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
    Ok(teams)
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
