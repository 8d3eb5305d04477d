//! Cameras (pushed by an edge box, or pulled by the gateway from a URL) and edges (the boxes,
//! enrolled with a one-time code whose SHA-256 is all that is stored).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// A camera as the API shows it: never its pull credentials.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Camera {
    pub id: String,
    pub premises_id: Uuid,
    /// The premises' name (the wall's camera tree: town → premises → camera).
    pub premises_name: String,
    pub town_id: String,
    pub name: String,
    /// `edge` or `pull`.
    pub source: String,
    pub edge_id: Option<String>,
    pub main_stream: String,
    pub sub_stream: Option<String>,
    pub talk: bool,
    /// Where talk audio plays: `backchannel` (the camera's speaker) or `speaker` (the box's).
    pub talk_output: String,
    /// From its edge's latest state: false when the edge or the camera is offline; `null` when
    /// nothing reports on it (a pull camera, an edge that never reported, a camera it omits).
    pub online: Option<bool>,
    /// Whether pull credentials are stored (they themselves are write-only).
    pub has_credentials: bool,
}

/// The columns of [`Camera`]; the online flag is the camera's entry in its edge's stored state
/// (`bl_camera_health`, migration 0005), so the list agrees with the `edge` WebSocket messages.
const CAMERA_SELECT: &str = "SELECT c.id, c.premises_id, p.name AS premises_name, p.town_id, c.name, c.source, \
     c.edge_id, c.main_stream, c.sub_stream, c.talk, c.talk_output, c.pull_username IS NOT NULL AS has_credentials, \
     CASE WHEN s.edge_id IS NULL THEN NULL WHEN NOT s.online THEN false \
          ELSE (SELECT (h->>'online')::boolean FROM jsonb_array_elements(bl_camera_health(s.state)) h \
                WHERE h->>'cameraId' = c.id LIMIT 1) END AS online \
     FROM cameras c JOIN premises p ON p.id = c.premises_id LEFT JOIN edge_status s ON s.edge_id = c.edge_id";

/// Filters of `GET /api/cameras`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    pub town: Option<String>,
    pub premises: Option<Uuid>,
}

/// Cameras within `scope` (None = district) matching `query`.
pub async fn list(
    pool: &PgPool,
    scope: Option<&[String]>,
    query: &ListQuery,
) -> Result<Vec<Camera>, sqlx::Error> {
    // Only constant text is formatted in.
    sqlx::query_as::<_, Camera>(sqlx::AssertSqlSafe(format!(
        "{CAMERA_SELECT} WHERE ($1::text[] IS NULL OR p.town_id = ANY($1)) AND ($2::text IS NULL OR p.town_id = $2) \
         AND ($3::uuid IS NULL OR c.premises_id = $3) ORDER BY p.town_id, p.name, c.id"
    )))
    .bind(scope)
    .bind(&query.town)
    .bind(query.premises)
    .fetch_all(pool)
    .await
}

/// One camera by id, with its premises' town (None when missing).
pub async fn get(pool: &PgPool, id: &str) -> Result<Option<Camera>, sqlx::Error> {
    sqlx::query_as::<_, Camera>(sqlx::AssertSqlSafe(format!(
        "{CAMERA_SELECT} WHERE c.id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A camera to create.
#[derive(Debug, Clone)]
pub struct NewCamera<'a> {
    pub id: &'a str,
    pub premises_id: Uuid,
    pub name: &'a str,
    /// `Some(edge)` for a camera the edge pushes; `None` for a pull camera.
    pub edge_id: Option<&'a str>,
    pub main_stream: &'a str,
    pub sub_stream: Option<&'a str>,
    pub talk: bool,
}

/// Creates a camera; its id must follow proto's id rule.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    c: &NewCamera<'_>,
) -> Result<(), crate::error::Error> {
    bl_proto::id::validate_id("camera id", c.id)
        .map_err(|e| crate::error::Error::bad_request("invalid_id", e.to_string()))?;
    sqlx::query(
        "INSERT INTO cameras (id, premises_id, name, source, edge_id, main_stream, sub_stream, talk) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(c.id)
    .bind(c.premises_id)
    .bind(c.name)
    .bind(if c.edge_id.is_some() { "edge" } else { "pull" })
    .bind(c.edge_id)
    .bind(c.main_stream)
    .bind(c.sub_stream)
    .bind(c.talk)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The SHA-256 (hex) under which an enrolment code is stored.
pub fn enrolment_code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// Registers an edge box for a premises and returns its one-time enrolment code (shown once; only
/// its hash is stored). The code is valid for `valid_for`.
pub async fn insert_edge(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    premises_id: Uuid,
    valid_for: chrono::Duration,
) -> Result<String, crate::error::Error> {
    bl_proto::id::validate_id("edge id", id)
        .map_err(|e| crate::error::Error::bad_request("invalid_id", e.to_string()))?;
    if id == "dispatch" {
        return Err(crate::error::Error::bad_request(
            "invalid_id",
            "edge id `dispatch` is the broker's service account; choose another id",
        ));
    }
    let code = crate::auth::random_token(16);
    sqlx::query(
        "INSERT INTO edges (id, premises_id, enrolment_code_hash, enrolment_expires_at) \
         VALUES ($1, $2, $3, now() + $4)",
    )
    .bind(id)
    .bind(premises_id)
    .bind(enrolment_code_hash(&code))
    .bind(valid_for)
    .execute(&mut **tx)
    .await?;
    Ok(code)
}

/// An edge box as the API shows it: enrolment and online state, never its code.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub id: String,
    pub premises_id: Uuid,
    pub premises_name: String,
    pub town_id: String,
    pub enrolled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// A one-time code is outstanding until then.
    pub code_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The registered Ed25519 public key, base64url.
    pub public_key: Option<String>,
    /// From its latest retained state; None before it ever reported.
    pub online: Option<bool>,
    pub last_report_at: Option<chrono::DateTime<chrono::Utc>>,
}

const EDGE_SELECT: &str = "SELECT e.id, e.premises_id, p.name AS premises_name, p.town_id, e.enrolled_at, \
     e.enrolment_expires_at AS code_expires_at, \
     translate(rtrim(encode(e.public_key, 'base64'), '='), '+/', '-_') AS public_key, \
     s.online, s.received_at AS last_report_at \
     FROM edges e JOIN premises p ON p.id = e.premises_id LEFT JOIN edge_status s ON s.edge_id = e.id";

/// Edges within `scope` (None = district), optionally of one town or premises.
pub async fn list_edges(
    pool: &PgPool,
    scope: Option<&[String]>,
    query: &ListQuery,
) -> Result<Vec<Edge>, sqlx::Error> {
    // Only constant text is formatted in.
    sqlx::query_as::<_, Edge>(sqlx::AssertSqlSafe(format!(
        "{EDGE_SELECT} WHERE ($1::text[] IS NULL OR p.town_id = ANY($1)) \
         AND ($2::text IS NULL OR p.town_id = $2) AND ($3::uuid IS NULL OR e.premises_id = $3) \
         ORDER BY p.town_id, e.id"
    )))
    .bind(scope)
    .bind(&query.town)
    .bind(query.premises)
    .fetch_all(pool)
    .await
}

/// One edge by id (None when missing).
pub async fn get_edge(pool: &PgPool, id: &str) -> Result<Option<Edge>, sqlx::Error> {
    sqlx::query_as::<_, Edge>(sqlx::AssertSqlSafe(format!(
        "{EDGE_SELECT} WHERE e.id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}
