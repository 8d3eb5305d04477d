//! `POST /internal/cameras/{id}/live-start` and `…/live-stop` (DESIGN §3.3): the gateway node that
//! owns an edge-pushed camera asks dispatch, when its first viewer arrives, to have the edge push;
//! dispatch signs a short-lived `push` media token for the edge and sends `startLive` (or
//! `stopLive`) on `bl/v1/edge/{edge}/cmd`. The edge answers on `cmd/result`; whether video came is
//! the gateway's to see (it shows viewers `offline` with a reason when it does not).

use super::Path;
use super::field::parse;
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::service::ServiceCaller;
use crate::error::{Error, Kind, Result};
use crate::media::choose_gateway;
use crate::registry::source;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use bl_proto::command::{Command, CommandAction, StartLive, StopLive};
use bl_proto::stream::Stream;
use bl_proto::token::{self, MediaAction, MediaClaims, MediaToken};
use bl_proto::{CameraId, EdgeId};
use chrono::SubsecRound;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// How long an edge may take to act on `startLive`/`stopLive` before it must ignore the command.
pub(super) const COMMAND_GRACE_SECS: i64 = 30;

/// The body of `live-start` and `live-stop`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LivePushBody {
    /// `main` or `sub`.
    #[schema(value_type = String)]
    pub stream: Stream,
    /// The gateway's RTSP URL for this camera stream, without the token (the edge appends
    /// `/{token}`). Ignored by `live-stop`.
    #[serde(default)]
    pub push_url: Option<String>,
}

/// `POST /internal/cameras/{id}/live-start`: 202 once `startLive` is queued for the edge.
#[utoipa::path(
    post,
    path = "/internal/cameras/{id}/live-start",
    summary = "Have a camera's edge box push its stream to the asking gateway",
    params(("id" = String, Path, description = "The camera's id")),
    request_body = LivePushBody,
    responses(
        (status = 202, description = "`startLive` queued for the edge, with a `push` token for this node"),
        (status = 403, description = "`not_owner`: another gateway node owns this camera"),
        (status = 409, description = "`not_pushed`: the camera is pulled, not pushed by an edge"),
        (status = 503, description = "`mqtt_not_configured` or `edge_unreachable`"),
    )
)]
pub async fn live_start(
    State(app): State<Arc<AppState>>,
    Extension(service): Extension<ServiceCaller>,
    audit: Audit,
    Path(id): Path<String>,
    super::Json(body): super::Json<Value>,
) -> Result<StatusCode> {
    let body: LivePushBody = parse(body)?;
    let push_url = body
        .push_url
        .filter(|u| u.starts_with("rtsp://") && !u.contains('@') && !u.contains('?'))
        .ok_or_else(|| {
            Error::invalid_field(
                "pushUrl",
                "must be the gateway's rtsp:// URL without credentials or query",
            )
        })?;
    let (camera, edge, town) = pushed_camera(&app, &service, &id).await?;
    let (token, claims) = edge_media_token(
        &app,
        &service,
        &edge,
        camera.clone(),
        MediaAction::Push,
        Some(body.stream),
    )?;
    // The grant is audited before it leaves, like a viewer's token.
    let event = Event::new(Action::CameraLive)
        .object("camera", &id)
        .town(town)
        .details(
            json!({"push": true, "edge": edge.as_str(), "node": service.node.as_str(),
                        "stream": body.stream.as_str(), "jti": claims.jti, "exp": claims.exp}),
        );
    audit.record(&app, event).await?;
    let action = CommandAction::StartLive(StartLive {
        camera_id: camera,
        stream: body.stream,
        push_url,
        token,
    });
    send(&app, &edge, action)?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /internal/cameras/{id}/live-stop`: 202 once `stopLive` is queued for the edge.
#[utoipa::path(
    post,
    path = "/internal/cameras/{id}/live-stop",
    summary = "Tell a camera's edge box to stop pushing a stream",
    params(("id" = String, Path, description = "The camera's id")),
    request_body = LivePushBody,
    responses(
        (status = 202, description = "`stopLive` queued for the edge"),
        (status = 403, description = "`not_owner`: another gateway node owns this camera"),
        (status = 409, description = "`not_pushed`: the camera is pulled, not pushed by an edge"),
        (status = 503, description = "`mqtt_not_configured` or `edge_unreachable`"),
    )
)]
pub async fn live_stop(
    State(app): State<Arc<AppState>>,
    Extension(service): Extension<ServiceCaller>,
    Path(id): Path<String>,
    super::Json(body): super::Json<Value>,
) -> Result<StatusCode> {
    let body: LivePushBody = parse(body)?;
    let (camera, edge, _) = pushed_camera(&app, &service, &id).await?;
    let action = CommandAction::StopLive(StopLive {
        camera_id: camera,
        stream: body.stream,
    });
    send(&app, &edge, action)?;
    Ok(StatusCode::ACCEPTED)
}

/// The camera, its edge and town, if the asking node owns it and an edge pushes it.
async fn pushed_camera(
    app: &AppState,
    service: &ServiceCaller,
    id: &str,
) -> Result<(CameraId, EdgeId, String)> {
    edge_camera(app, service, id, || {
        Error::new(
            Kind::Conflict,
            "not_pushed",
            format!("camera {id} is pulled by the gateway, not pushed by an edge box"),
        )
    })
    .await
}

/// The camera, its edge and town, if the asking node owns it and an edge box serves it; `pulled`
/// is the error for a camera the gateway pulls itself.
pub(super) async fn edge_camera(
    app: &AppState,
    service: &ServiceCaller,
    id: &str,
    pulled: impl FnOnce() -> Error,
) -> Result<(CameraId, EdgeId, String)> {
    let (camera, source, town) = owned_camera(app, service, id).await?;
    let source::Source::Edge { edge_id, .. } = source else {
        return Err(pulled());
    };
    let edge = EdgeId::new(edge_id).map_err(|e| Error::internal("a stored edge id", e))?;
    Ok((camera, edge, town))
}

/// A short-lived media token for `edge` to act on `camera` at the asking gateway node, signed
/// with dispatch's media key, and its claims (for the audit line).
pub(super) fn edge_media_token(
    app: &AppState,
    service: &ServiceCaller,
    edge: &EdgeId,
    camera: CameraId,
    action: MediaAction,
    stream: Option<Stream>,
) -> Result<(MediaToken, MediaClaims)> {
    let media = app.config.media.as_ref().ok_or_else(|| {
        Error::internal(
            "edge media token",
            "a service was authenticated without [media]",
        )
    })?;
    let key = media
        .signing_key
        .as_ref()
        .ok_or_else(|| Error::internal("edge media token", "media.signing_key was not loaded"))?;
    let iat = app.now().timestamp();
    let claims = MediaClaims {
        sub: format!("edge:{edge}"),
        camera,
        action,
        node: service.node.clone(),
        stream,
        iat,
        exp: iat + i64::try_from(media.token_ttl_secs).unwrap_or(60),
        jti: crate::auth::random_token(16),
    };
    let token = MediaToken::new(token::sign(&claims, key.signing_key()));
    Ok((token, claims))
}

/// The camera, its source and town, if the asking node owns it (403 `not_owner` otherwise).
pub(super) async fn owned_camera(
    app: &AppState,
    service: &ServiceCaller,
    id: &str,
) -> Result<(CameraId, source::Source, String)> {
    let media = app.config.media.as_ref().ok_or_else(|| {
        Error::internal("live push", "a service was authenticated without [media]")
    })?;
    let (source, town) = source::get(&app.pool, id)
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
    let camera = CameraId::new(id.to_owned())
        .map_err(|e| Error::internal("camera id from the registry", e))?;
    let owner = choose_gateway(&camera, &media.nodes()).clone();
    if owner != service.node {
        return Err(Error::forbidden(
            "not_owner",
            format!(
                "camera {id} belongs to gateway node {}, not {}",
                owner.as_str(),
                service.node.as_str()
            ),
        ));
    }
    Ok((camera, source, town))
}

/// Queues a live command for `edge` (QoS 1; it must be acted on within the grace); returns its id.
pub(super) fn send(app: &AppState, edge: &EdgeId, action: CommandAction) -> Result<Uuid> {
    send_as(app, edge, Uuid::now_v7(), action)
}

/// [`send`] under an id the caller chose, so that it can note the id before the edge's answer
/// (which may come within milliseconds) is looked up by it.
pub(super) fn send_as(
    app: &AppState,
    edge: &EdgeId,
    cmd_id: Uuid,
    action: CommandAction,
) -> Result<Uuid> {
    if !app.edge_link.is_configured() {
        return Err(Error::new(
            Kind::Unavailable,
            "mqtt_not_configured",
            "live video from edge boxes needs the [mqtt] section; ask an admin",
        ));
    }
    let now = app.now().trunc_subsecs(3);
    let command = Command {
        v: bl_proto::V1,
        cmd_id,
        issued_at: now,
        expires_at: Some(now + chrono::Duration::seconds(COMMAND_GRACE_SECS)),
        action,
    };
    app.edge_link.send(edge, &command).map_err(|e| {
        tracing::warn!(edge = %edge.as_str(), err = %e, "cannot send a live command");
        Error::new(
            Kind::Unavailable,
            "edge_unreachable",
            format!(
                "the command could not be queued for edge box {}: {e}",
                edge.as_str()
            ),
        )
    })?;
    app.edge_link
        .note_unstored(command.cmd_id, command.action.type_name(), edge);
    tracing::info!(edge = %edge.as_str(), cmd = %command.cmd_id, kind = command.action.type_name(),
        "live command sent");
    Ok(command.cmd_id)
}
