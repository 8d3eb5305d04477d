//! Actions on incident clocks: `POST /api/incidents/{id}/health-report` records the report to the
//! health authority (timeline `healthReported`), which meets the incident's `healthReport` clock.

use super::incidents::{Detail, detail};
use super::{Json, Path};
use crate::AppState;
use crate::auth::Caller;
use crate::clocks::store as clocks;
use crate::error::{Error, Result};
use crate::incident::Actor;
use crate::incident::store::{self, Entry};
use axum::Extension;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// The body of `POST /api/incidents/{id}/health-report`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthReport {
    /// What was reported, to whom and how (e.g. "电话报告区卫健委值班室，张医生").
    pub note: String,
    /// The client's id for this report (letters, digits, `-`, `_`; at most 64): sending it again
    /// records nothing new.
    #[serde(default)]
    pub client_id: Option<String>,
}

fn invalid(field: &str, message: &str) -> Error {
    Error::bad_request("invalid_field", format!("field {field}: {message}"))
}

/// `POST /api/incidents/{id}/health-report`: 404, then 403 out of scope; 201 with the incident
/// when recorded, 200 when this `clientId` was recorded before.
#[utoipa::path(
    post,
    path = "/api/incidents/{id}/health-report",
    summary = "Record the report to the health authority",
    params(("id" = uuid::Uuid, Path, description = "The incident's id")),
    request_body = HealthReport,
    responses(
        (status = 201, description = "Recorded; the incident after it", body = Detail),
        (status = 200, description = "This `clientId` was recorded before; nothing new", body = Detail),
    )
)]
pub async fn health_report(
    AxState(app): AxState<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<Uuid>,
    Json(body): Json<HealthReport>,
) -> Result<(StatusCode, axum::Json<Detail>)> {
    let note = body.note.trim();
    if note.is_empty() {
        return Err(invalid(
            "note",
            "is required: say what was reported, to whom and how",
        ));
    }
    if note.chars().count() > 4000 {
        return Err(invalid("note", "is longer than 4000 characters"));
    }
    if let Some(c) = &body.client_id
        && (c.is_empty()
            || c.len() > 64
            || !c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'))
    {
        return Err(invalid(
            "clientId",
            "must be 1-64 letters, digits, '-' or '_'",
        ));
    }
    let mut tx = app.pool.begin().await?;
    let incident = store::get_for_update(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("incident"))?;
    caller.check_town(&incident.town_id)?;
    if let Some(client_id) = &body.client_id {
        let known: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM incident_timeline WHERE incident_id = $1 \
             AND action = 'healthReported' AND refs ->> 'clientId' = $2)",
        )
        .bind(id)
        .bind(client_id)
        .fetch_one(&mut *tx)
        .await?;
        if known {
            tx.rollback().await?;
            return Ok((StatusCode::OK, axum::Json(detail(&app, id).await?)));
        }
    }
    let now = app.now();
    let clock = clocks::health_reported(&mut tx, id, now).await?;
    let actor = Actor::of(&caller);
    let mut entry = Entry::note(now, &actor, "healthReported", note.to_owned());
    entry.refs = json!({ "clientId": body.client_id, "clock": clock });
    store::append(&mut tx, id, &entry).await?;
    tx.commit().await?;
    tracing::info!(incident = %id, by = %caller.username, "health report recorded");
    Ok((StatusCode::CREATED, axum::Json(detail(&app, id).await?)))
}
