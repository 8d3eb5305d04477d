//! `/internal` routes for services. `GET /internal/cameras/{id}/source`: the gateway node that
//! owns a camera (rendezvous hashing, `crate::media`) fetches how to reach it. The answer carries
//! credentials, so it is never logged or cached, and each fetch is audited.
//!
//! `GET /internal/edges/{id}/key`: any gateway node fetches an enrolled edge's device public key to
//! verify its evidence uploads (DESIGN §3.2). A public key is no secret, so it is not audited; the
//! gateway caches it briefly.

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

/// An enrolled edge's device key.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EdgeKey {
    /// The edge's id.
    pub edge_id: String,
    /// Its Ed25519 device public key, unpadded base64url.
    pub public_key: String,
}

/// `GET /internal/edges/{id}/key`: 404 `not_found` for an unknown edge, `not_enrolled` for one
/// without a key yet.
#[utoipa::path(
    get,
    path = "/internal/edges/{id}/key",
    summary = "An enrolled edge's device public key",
    params(("id" = String, Path, description = "The edge's id")),
    responses(
        (status = 200, description = "The edge's device key", body = EdgeKey),
        (status = 404, description = "`not_found`: no such edge; `not_enrolled`: it has no key yet"),
    )
)]
pub async fn edge_key(
    State(app): State<Arc<AppState>>,
    Extension(_service): Extension<ServiceCaller>,
    Path(id): Path<String>,
) -> Result<axum::Json<EdgeKey>> {
    let edge = crate::registry::cameras::get_edge(&app.pool, &id)
        .await?
        .ok_or_else(|| Error::not_found("edge"))?;
    let public_key = edge.public_key.ok_or_else(|| {
        Error::new(
            crate::error::Kind::NotFound,
            "not_enrolled",
            format!("edge {id} is registered but has not enrolled yet, so it has no device key"),
        )
    })?;
    Ok(axum::Json(EdgeKey {
        edge_id: edge.id,
        public_key,
    }))
}
