//! "My incidents": what a team's phone lists — the team's incidents that are not closed, the most
//! urgent tier first and the newest first within it, with what a phone needs to get there.

use crate::paging::{Page, Paging};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// Paging of `GET /api/field/incidents` (real incidents only; drills are not mixed in).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MyQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// One incident of the list, with its premises' facts.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MyIncident {
    pub id: Uuid,
    pub kind: String,
    pub tier: String,
    pub state: String,
    pub source: String,
    pub description: String,
    pub town_id: String,
    pub opened_at: DateTime<Utc>,
    pub last_report_at: DateTime<Utc>,
    pub routed_team_id: Option<Uuid>,
    pub routed_team_name: Option<String>,
    pub premises_id: Option<Uuid>,
    pub premises_name: Option<String>,
    pub address: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub person_in_charge: Option<String>,
    pub phone: Option<String>,
    /// The premises' cameras, for the incident's live view (the caller may watch them while the
    /// incident is theirs): `[{id, name}]`, `[]` without a premises.
    #[schema(value_type = Vec<FieldCamera>)]
    pub cameras: serde_json::Value,
    /// States the caller may move it to (filled in by the handler).
    #[sqlx(skip)]
    pub next: Vec<crate::incident::state::State>,
}

/// A camera of an incident's premises, as the field app lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldCamera {
    pub id: String,
    pub name: String,
}

/// Not closed or rejected, within `towns` (None = district) and routed to `team` (None = any).
pub async fn my_incidents(
    pool: &PgPool,
    towns: Option<&[String]>,
    team: Option<Uuid>,
    query: &MyQuery,
) -> Result<Page<MyIncident>, sqlx::Error> {
    let paging = Paging::new(query.page, query.per_page);
    const WHERE: &str = "i.state NOT IN ('closed', 'rejected') AND i.exercise IS NULL \
         AND ($1::text[] IS NULL OR i.town_id = ANY($1)) \
         AND ($2::uuid IS NULL OR i.routed_team_id = $2)";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM incidents i WHERE {WHERE}"
    )))
    .bind(towns)
    .bind(team)
    .fetch_one(pool)
    .await?;
    let items = sqlx::query_as::<_, MyIncident>(sqlx::AssertSqlSafe(format!(
        "SELECT i.id, i.kind, i.tier, i.state, i.source, i.description, i.town_id, i.opened_at, \
         i.last_report_at, i.routed_team_id, t.name AS routed_team_name, i.premises_id, \
         p.name AS premises_name, COALESCE(NULLIF(i.address, ''), p.address, '') AS address, \
         p.lat, p.lon, p.person_in_charge, p.phone, \
         COALESCE((SELECT json_agg(json_build_object('id', c.id, 'name', c.name) ORDER BY c.id) \
                     FROM cameras c WHERE c.premises_id = i.premises_id), '[]'::json) AS cameras \
         FROM incidents i LEFT JOIN premises p ON p.id = i.premises_id \
         LEFT JOIN teams t ON t.id = i.routed_team_id WHERE {WHERE} \
         ORDER BY CASE i.tier WHEN 'immediate' THEN 0 WHEN 'deadline' THEN 1 ELSE 2 END, \
         i.opened_at DESC, i.id LIMIT $3 OFFSET $4"
    )))
    .bind(towns)
    .bind(team)
    .bind(paging.limit())
    .bind(paging.offset())
    .fetch_all(pool)
    .await?;
    Ok(paging.of(items, total))
}
