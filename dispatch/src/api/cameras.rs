//! Admin writes of cameras: create, replace, delete. Reads stay in `registry.rs` (`GET
//! /api/cameras`). Credentials are write-only (see `registry::camera_admin`).

use super::{Json, Path};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::Caller;
use crate::error::{Error, Kind, Result};
use crate::registry::camera_admin::{self, CameraInput};
use crate::registry::cameras::{self, Camera};
use crate::registry::premises;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;

type App = State<Arc<AppState>>;

/// The rules, the premises (which must exist and lie in the caller's scope) and the edge box;
/// returns the premises' town.
async fn check(app: &AppState, caller: &Caller, c: &CameraInput) -> Result<String> {
    c.validate()
        .map_err(|p| Error::invalid_field(p.field, &p.message))?;
    let p = premises::get(&app.pool, c.premises_id)
        .await?
        .ok_or_else(|| {
            Error::invalid_field("premisesId", format!("no premises {}", c.premises_id))
        })?;
    caller.check_town(&p.town_id)?;
    if let Some(p) = camera_admin::check_edge(&app.pool, c).await? {
        return Err(Error::invalid_field(p.field, &p.message));
    }
    Ok(p.town_id)
}

/// What the audit log keeps of a camera write: never the credentials, only whether they changed.
fn details(c: &CameraInput) -> serde_json::Value {
    serde_json::json!({
        "premisesId": c.premises_id,
        "source": c.source,
        "edgeId": c.edge_id,
        "talkOutput": c.talk_output,
        "credentials": match &c.credentials {
            None => "kept",
            Some(k) if k.username.is_empty() => "cleared",
            Some(_) => "set",
        },
    })
}

async fn stored(app: &AppState, id: &str) -> Result<Camera> {
    cameras::get(&app.pool, id)
        .await?
        .ok_or_else(|| Error::internal("camera just written", "missing"))
}

/// `POST /api/cameras`
#[utoipa::path(
    post,
    path = "/api/cameras",
    summary = "Create a camera",
    request_body = CameraInput,
    responses(
        (status = 201, description = "The stored camera, without credentials", body = Camera),
        (status = 409, description = "`duplicate`: the camera id is taken"),
    )
)]
pub async fn create(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Json(input): Json<CameraInput>,
) -> Result<(StatusCode, axum::Json<Camera>)> {
    let id = input
        .id
        .clone()
        .ok_or_else(|| Error::invalid_field("id", "is required"))?;
    let town = check(&app, &caller, &input).await?;
    let mut tx = app.pool.begin().await?;
    camera_admin::create(&mut tx, &id, &input)
        .await
        .map_err(|e| duplicate_on_id(e, &id))?;
    crate::warning::edges::refresh(&mut tx).await?;
    let event = Event::new(Action::CameraCreate)
        .object("camera", &id)
        .town(&town)
        .details(details(&input));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    tracing::info!(camera = %id, town = %town, by = %caller.username, "camera created");
    Ok((StatusCode::CREATED, axum::Json(stored(&app, &id).await?)))
}

fn duplicate_on_id(e: Error, id: &str) -> Error {
    if e.kind == Kind::Conflict {
        Error::new(
            Kind::Conflict,
            "duplicate",
            format!("field id: camera {id:?} exists already; choose another id or edit it"),
        )
        .on_field("id")
    } else {
        e
    }
}

/// `PUT /api/cameras/{id}`: 404, then 403 when the camera's or the new premises' town is outside
/// the caller's scope.
#[utoipa::path(
    put,
    path = "/api/cameras/{id}",
    summary = "Replace a camera",
    params(("id" = String, Path, description = "The camera's id")),
    request_body(content = CameraInput, description = "The camera's new state; `id`, if given, must be the path's; `credentials` absent keeps the stored ones"),
    responses((status = 200, description = "The stored camera, without credentials", body = Camera))
)]
pub async fn update(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
    Json(input): Json<CameraInput>,
) -> Result<axum::Json<Camera>> {
    let old = cameras::get(&app.pool, &id)
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
    caller.check_town(&old.town_id)?;
    if input.id.as_deref().is_some_and(|i| i != id) {
        return Err(Error::invalid_field(
            "id",
            "a camera's id cannot change; create a new camera instead",
        ));
    }
    let town = check(&app, &caller, &input).await?;
    let mut tx = app.pool.begin().await?;
    if !camera_admin::update(&mut tx, &id, &input).await? {
        return Err(Error::not_found("camera"));
    }
    crate::warning::edges::refresh(&mut tx).await?;
    let event = Event::new(Action::CameraUpdate)
        .object("camera", &id)
        .town(&town)
        .details(details(&input));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    tracing::info!(camera = %id, by = %caller.username, "camera updated");
    Ok(axum::Json(stored(&app, &id).await?))
}

/// `DELETE /api/cameras/{id}`: 409 `camera_in_use` when evidence refers to it.
#[utoipa::path(
    delete,
    path = "/api/cameras/{id}",
    summary = "Delete a camera",
    params(("id" = String, Path, description = "The camera's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "`camera_in_use`: events, photos or re-checks refer to it; they are evidence and stay"),
    )
)]
pub async fn delete(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let old = cameras::get(&app.pool, &id)
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
    caller.check_town(&old.town_id)?;
    let mut tx = app.pool.begin().await?;
    if !camera_admin::delete(&mut tx, &id).await? {
        return Err(Error::new(
            Kind::Conflict,
            "camera_in_use",
            format!(
                "camera {id:?} has events or re-checks, which are evidence and stay; rename it or leave it"
            ),
        ));
    }
    crate::warning::edges::refresh(&mut tx).await?;
    let event = Event::new(Action::CameraDelete)
        .object("camera", &id)
        .town(&old.town_id);
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    tracing::info!(camera = %id, by = %caller.username, "camera deleted");
    Ok(StatusCode::NO_CONTENT)
}
