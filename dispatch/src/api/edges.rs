//! Edge boxes: list, register (with a one-time enrolment code), new code, and the box's own
//! enrolment call.

use super::{Json, Path, Query};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::Caller;
use crate::enrolment::{self, EnrolRequest, Enrolled};
use crate::error::{Error, Kind, Result};
use crate::registry::cameras::{self, Edge, ListQuery};
use crate::registry::premises;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

type App = State<Arc<AppState>>;

/// `POST /api/edges`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewEdge {
    pub id: String,
    pub premises_id: Uuid,
}

/// A registered edge and its one-time code, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EdgeWithCode {
    pub edge: Edge,
    pub enrolment_code: String,
    pub code_expires_at: DateTime<Utc>,
}

fn code_ttl(app: &AppState) -> chrono::Duration {
    let secs = app
        .config
        .enrolment
        .as_ref()
        .map_or(86_400, |e| e.code_ttl_secs);
    chrono::Duration::seconds(secs as i64)
}

/// `GET /api/edges`
#[utoipa::path(
    get,
    path = "/api/edges",
    summary = "List edge boxes",
    params(ListQuery),
    responses((status = 200, description = "Edge boxes within the caller's scope, never a code", body = Vec<Edge>))
)]
pub async fn list(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<Edge>>> {
    Ok(axum::Json(
        cameras::list_edges(&app.pool, caller.scope.filter(), &query).await?,
    ))
}

/// `POST /api/edges`: 201 with the code; the premises' town must be in the caller's scope.
#[utoipa::path(
    post,
    path = "/api/edges",
    summary = "Register an edge box",
    request_body = NewEdge,
    responses(
        (status = 201, description = "The edge and its one-time enrolment code, shown this once", body = EdgeWithCode),
        (status = 400, description = "`unknown_reference`: no such premises"),
        (status = 409, description = "`duplicate`: the edge id is taken"),
    )
)]
pub async fn create(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Json(new): Json<NewEdge>,
) -> Result<(StatusCode, axum::Json<EdgeWithCode>)> {
    let p = premises::get(&app.pool, new.premises_id)
        .await?
        .ok_or_else(|| {
            Error::bad_request(
                "unknown_reference",
                format!("field premisesId: no premises {}", new.premises_id),
            )
        })?;
    caller.check_town(&p.town_id)?;
    let mut tx = app.pool.begin().await?;
    let code = cameras::insert_edge(&mut tx, &new.id, new.premises_id, code_ttl(&app)).await?;
    let event = Event::new(Action::EdgeCreate)
        .object("edge", &new.id)
        .town(&p.town_id)
        .details(serde_json::json!({"premisesId": new.premises_id}));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    let edge = cameras::get_edge(&app.pool, &new.id)
        .await?
        .ok_or_else(|| Error::internal("edge just created", "missing"))?;
    let code_expires_at = edge.code_expires_at.unwrap_or_else(|| app.now());
    Ok((
        StatusCode::CREATED,
        axum::Json(EdgeWithCode {
            edge,
            enrolment_code: code,
            code_expires_at,
        }),
    ))
}

/// `POST /api/edges/{id}/enrolment-code`: a fresh code (the previous one stops working).
#[utoipa::path(
    post,
    path = "/api/edges/{id}/enrolment-code",
    summary = "Issue a fresh enrolment code",
    params(("id" = String, Path, description = "The edge's id")),
    responses((status = 200, description = "The edge and its new code; the previous code stops working", body = EdgeWithCode))
)]
pub async fn new_code(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
) -> Result<axum::Json<EdgeWithCode>> {
    let edge = cameras::get_edge(&app.pool, &id)
        .await?
        .ok_or_else(|| Error::not_found("edge"))?;
    caller.check_town(&edge.town_id)?;
    let mut tx = app.pool.begin().await?;
    let (code, expires) = enrolment::new_code(&mut tx, &id, code_ttl(&app), app.now())
        .await?
        .ok_or_else(|| Error::not_found("edge"))?;
    let event = Event::new(Action::EdgeCode)
        .object("edge", &id)
        .town(&edge.town_id);
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    Ok(axum::Json(EdgeWithCode {
        edge: Edge {
            code_expires_at: Some(expires),
            ..edge
        },
        enrolment_code: code,
        code_expires_at: expires,
    }))
}

/// `POST /api/enrol`: the box's own call, authenticated by its one-time code.
#[utoipa::path(
    post,
    path = "/api/enrol",
    summary = "Enrol a box with its one-time code",
    request_body = EnrolRequest,
    responses(
        (status = 200, description = "The box's broker account, shown this once", body = Enrolled),
        (status = 400, description = "`invalid_public_key`"),
        (status = 401, description = "`enrolment_refused`: unknown edge, or a wrong, expired or used code"),
        (status = 503, description = "`enrolment_not_configured` or `broker_unavailable` (the code stays valid)"),
    )
)]
pub async fn enrol(
    State(app): App,
    audit: Audit,
    Json(request): Json<EnrolRequest>,
) -> Result<axum::Json<Enrolled>> {
    let config = app.config.enrolment.as_ref().ok_or_else(|| {
        Error::new(
            Kind::Unavailable,
            "enrolment_not_configured",
            "this dispatch has no [enrolment] section, so it cannot issue broker accounts; \
             see dispatch/README.md",
        )
    })?;
    Ok(axum::Json(
        enrolment::enrol(&app, config, config.broker(), request, &audit).await?,
    ))
}
