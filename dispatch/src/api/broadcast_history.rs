//! Past group broadcasts ([`super::broadcasts`]): `GET /api/broadcasts` lists them newest first,
//! each with how many of its kitchens (in the caller's towns) heard it and which recordings the
//! gateway stored; `POST /api/broadcasts/{id}/voice-recordings` gives a recording's short-lived
//! gateway URL, the grant audited as `evidence.view` of the broadcast. A broadcast has no incident,
//! so this is where its recording is heard again.

use super::blob_urls::About;
use super::broadcasts::{broadcast_id, load};
use super::voice_recordings::{Recordings, with_urls};
use super::{Path, Query};
use crate::AppState;
use crate::audit::Audit;
use crate::auth::Caller;
use crate::error::Result;
use crate::intercom::recording;
use crate::paging::{Page, PageQuery};
use axum::Extension;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

/// A broadcast in the history.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastSummary {
    pub id: Uuid,
    /// Who spoke.
    pub display_name: String,
    pub started_at: DateTime<Utc>,
    /// None while it lasts.
    pub ended_at: Option<DateTime<Utc>>,
    /// Its kitchens in the caller's towns.
    pub kitchens: i64,
    /// Of those, the ones whose box played it (`playing`, or `ended` after playing).
    pub heard: i64,
    /// Of those, the ones that failed (busy, no speaker, offline, the box's error).
    pub failed: i64,
    /// The SHA-256 of each stored recording, oldest first (empty until the gateway reports it).
    pub recordings: Vec<String>,
}

/// `GET /api/broadcasts`
#[utoipa::path(
    get,
    path = "/api/broadcasts",
    summary = "Past and current group broadcasts reaching the caller's towns, newest first",
    params(PageQuery),
    responses((status = 200, description = "One page of broadcasts", body = Page<BroadcastSummary>))
)]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Page<BroadcastSummary>>> {
    let paging = q.paging();
    let towns = caller.scope.filter();
    let items: Vec<BroadcastSummary> = sqlx::query_as(
        "SELECT b.id, b.display_name, b.started_at, b.ended_at, \
                count(*) AS kitchens, \
                count(*) FILTER (WHERE t.state IN ('playing', 'ended')) AS heard, \
                count(*) FILTER (WHERE t.state = 'failed') AS failed, \
                coalesce((SELECT array_agg(r.sha256 ORDER BY r.started_at) \
                            FROM voice_recordings r WHERE r.broadcast_id = b.id), '{}') AS recordings \
           FROM broadcasts b JOIN broadcast_targets t ON t.broadcast_id = b.id \
          WHERE $1::text[] IS NULL OR t.town_id = ANY($1) \
          GROUP BY b.id \
          ORDER BY b.started_at DESC, b.id \
          LIMIT $2 OFFSET $3",
    )
    .bind(towns)
    .bind(paging.limit())
    .bind(paging.offset())
    .fetch_all(&app.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT t.broadcast_id) FROM broadcast_targets t \
          WHERE $1::text[] IS NULL OR t.town_id = ANY($1)",
    )
    .bind(towns)
    .fetch_one(&app.pool)
    .await?;
    Ok(axum::Json(paging.of(items, total)))
}

/// `POST /api/broadcasts/{id}/voice-recordings`
#[utoipa::path(
    post,
    path = "/api/broadcasts/{id}/voice-recordings",
    summary = "Get a broadcast's recordings with short-lived URLs",
    params(("id" = String, Path, description = "The broadcast's id")),
    responses(
        (status = 200, description = "The recordings (the operator's voice, Opus/WebM), each with a gateway URL carrying a media token", body = Recordings),
        (status = 403, description = "`out_of_scope`: none of its kitchens is in the caller's towns"),
        (status = 404, description = "`not_found`: no such broadcast"),
        (status = 503, description = "`media_not_configured`: no `[media]` section"),
    )
)]
pub async fn voice_recordings(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
) -> Result<axum::Json<Recordings>> {
    let id = broadcast_id(&id)?;
    let view = load(&app, &caller, id).await?;
    let mut conn = app.pool.acquire().await?;
    let found = recording::of_broadcast(&mut conn, id).await?;
    drop(conn);
    // The audit entry is filed under the first of its kitchens the caller may see.
    let town = view.targets[0].town_id.clone();
    with_urls(&app, &caller, &audit, (About::Broadcast(id), &town), found)
        .await
        .map(axum::Json)
}
