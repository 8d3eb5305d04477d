//! The `walls` table (migration 0013): one row per wall, its layout as JSON, a revision bumped by
//! every write. A write commits with its audit record; the trigger announces it to every replica.

use super::Layout;
use crate::error::Error;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};

/// A wall as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Wall {
    pub id: String,
    pub layout: Layout,
    /// 0 for a wall never set (four empty tiles); each write adds one.
    pub revision: i64,
    /// The moment of the latest write: a tour counts its pages from it.
    pub updated_at: Option<DateTime<Utc>>,
    /// User name of the latest writer.
    pub updated_by: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    layout: sqlx::types::Json<Layout>,
    revision: i64,
    updated_at: DateTime<Utc>,
    updated_by: String,
}

impl From<Row> for Wall {
    fn from(r: Row) -> Wall {
        Wall {
            id: r.id,
            layout: r.layout.0,
            revision: r.revision,
            updated_at: Some(r.updated_at),
            updated_by: Some(r.updated_by),
        }
    }
}

/// Checks a wall id (it names a row and appears in URLs): the id rule of every other object.
pub fn validate_id(id: &str) -> Result<(), Error> {
    bl_proto::id::validate_id("wall id", id)
        .map_err(|e| Error::bad_request("invalid_id", e.to_string()))
}

/// The wall `id`; one never set is four empty tiles at revision 0.
pub async fn get(pool: &PgPool, id: &str) -> Result<Wall, sqlx::Error> {
    let row = sqlx::query_as::<_, Row>(
        "SELECT id, layout, revision, updated_at, updated_by FROM walls WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or_else(
        || Wall {
            id: id.to_owned(),
            layout: Layout::default(),
            revision: 0,
            updated_at: None,
            updated_by: None,
        },
        Wall::from,
    ))
}

/// The current layout of `id`, locked until `tx` ends (None: never set).
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
) -> Result<Option<Layout>, sqlx::Error> {
    let row: Option<(sqlx::types::Json<Layout>,)> =
        sqlx::query_as("SELECT layout FROM walls WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(|(l,)| l.0))
}

/// Stores `layout` as the wall's new revision.
pub async fn put(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    layout: &Layout,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Wall, sqlx::Error> {
    let row = sqlx::query_as::<_, Row>(
        "INSERT INTO walls (id, layout, revision, updated_at, updated_by) VALUES ($1, $2, 1, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET layout = EXCLUDED.layout, revision = walls.revision + 1, \
         updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by \
         RETURNING id, layout, revision, updated_at, updated_by",
    )
    .bind(id)
    .bind(sqlx::types::Json(layout))
    .bind(now)
    .bind(by)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// The town of each of `ids` that exists (camera id, town id).
pub async fn camera_towns(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[&str],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.id, p.town_id FROM cameras c JOIN premises p ON p.id = c.premises_id \
         WHERE c.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await
}
