//! `/internal` routes for services. `GET /internal/cameras/{id}/source`: the gateway node that
//! owns a camera (rendezvous hashing, `crate::media`) fetches how to reach it. The answer carries
//! credentials, so it is never logged or cached, and each fetch is audited.

use super::Path;
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::service::ServiceCaller;
use crate::error::{Error, Result};
use crate::media::choose_gateway;
use crate::registry::source;
use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bl_proto::CameraId;
use serde_json::json;
use std::sync::Arc;

/// `GET /internal/cameras/{id}/source`: 404 for an unknown camera, 403 `not_owner` when another
/// node owns it.
#[utoipa::path(
    get,
    path = "/internal/cameras/{id}/source",
    summary = "How a gateway reaches a camera",
    params(("id" = String, Path, description = "The camera's id")),
    responses(
        (status = 200, description = "The camera's source with credentials (`Cache-Control: no-store`)", body = source::Source),
        (status = 403, description = "`not_owner`: another gateway node owns this camera"),
    )
)]
pub async fn camera_source(
    State(app): State<Arc<AppState>>,
    Extension(service): Extension<ServiceCaller>,
    audit: Audit,
    Path(id): Path<String>,
) -> Result<Response> {
    let media = app.config.media.as_ref().ok_or_else(|| {
        Error::internal(
            "camera source",
            "a service was authenticated without [media]",
        )
    })?;
    let (source, town) = source::get(&app.pool, &id)
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
    let camera =
        CameraId::new(id.clone()).map_err(|e| Error::internal("camera id from the registry", e))?;
    let owner = choose_gateway(&camera, &media.nodes()).clone();
    if owner != service.node {
        return Err(Error::forbidden(
            "not_owner",
            format!(
                "camera {id} belongs to gateway node {}, not {}; the owner serves it",
                owner.as_str(),
                service.node.as_str()
            ),
        ));
    }
    let event = Event::new(Action::CameraSource)
        .object("camera", &id)
        .town(town)
        .details(json!({"node": service.node.as_str(), "kind": source.kind()}));
    audit.record(&app, event).await?;
    tracing::info!(camera = %id, node = %service.node.as_str(), kind = source.kind(), "camera source handed out");
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(source)).into_response())
}
