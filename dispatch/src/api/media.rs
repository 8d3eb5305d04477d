//! Live view and talk: `POST /api/cameras/{id}/live` and `/talk` hand the browser the owning
//! gateway's WHEP/WHIP URL and a short-lived media token signed with dispatch's key (DESIGN §3.3).

use super::Path;
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::Caller;
use crate::config::MediaConfig;
use crate::error::{Error, Kind, Result};
use crate::media::choose_gateway;
use crate::registry::cameras;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use bl_proto::stream::Stream;
use bl_proto::token::{self, MediaAction, MediaClaims};
use bl_proto::{CameraId, GatewayNodeId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

type App = State<Arc<AppState>>;

/// The optional body of `/live`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LiveRequest {
    /// `main` or `sub`; default `sub` (a wall tile).
    #[serde(default)]
    #[schema(schema_with = crate::api::openapi::stream_schema)]
    pub stream: Option<Stream>,
}

/// What the browser needs to open the stream.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whep_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whip_url: Option<String>,
    pub token: String,
    #[schema(value_type = String)]
    pub node: GatewayNodeId,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::api::openapi::stream_schema)]
    pub stream: Option<Stream>,
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/cameras/{id}/live`
#[utoipa::path(
    post,
    path = "/api/cameras/{id}/live",
    summary = "Get a live-view grant",
    params(("id" = String, Path, description = "The camera's id")),
    request_body(content = Option<LiveRequest>, description = "Optional; without it the sub stream"),
    responses(
        (status = 200, description = "The owning gateway's WHEP URL and a short-lived media token", body = Grant),
        (status = 503, description = "`media_not_configured`: no `[media]` section"),
    )
)]
pub async fn live(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Grant>> {
    let request: LiveRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LiveRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Error::bad_request(
                "invalid_body",
                format!("the JSON body is not acceptable: {e}; send {{\"stream\": \"main\"|\"sub\"}} or nothing"),
            )
        })?
    };
    grant(
        &app,
        &caller,
        &audit,
        &id,
        MediaAction::View,
        Some(request.stream.unwrap_or(Stream::Sub)),
    )
    .await
}

/// `POST /api/cameras/{id}/talk`
#[utoipa::path(
    post,
    path = "/api/cameras/{id}/talk",
    summary = "Get a talk grant",
    params(("id" = String, Path, description = "The camera's id")),
    responses(
        (status = 200, description = "The owning gateway's WHIP URL and a short-lived media token", body = Grant),
        (status = 409, description = "`talk_unsupported`: the camera has no speaker or audio backchannel"),
        (status = 503, description = "`media_not_configured`: no `[media]` section"),
    )
)]
pub async fn talk(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
) -> Result<axum::Json<Grant>> {
    grant(&app, &caller, &audit, &id, MediaAction::Talk, None).await
}

/// Checks configuration, then the camera (404), then scope (403), then talk capability (409), and
/// signs the token.
async fn grant(
    app: &AppState,
    caller: &Caller,
    audit: &Audit,
    id: &str,
    action: MediaAction,
    stream: Option<Stream>,
) -> Result<axum::Json<Grant>> {
    let media = media_config(app)?;
    let camera = cameras::get(&app.pool, id)
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
    caller.check_town(&camera.town_id)?;
    if action == MediaAction::Talk && !camera.talk {
        return Err(Error::new(
            Kind::Conflict,
            "talk_unsupported",
            format!(
                "camera {} has no talk capability (no speaker or audio backchannel); use another camera of the premises or call the person in charge",
                camera.id
            ),
        ));
    }
    let camera_id = CameraId::new(camera.id.clone())
        .map_err(|e| Error::internal("camera id from the registry", e))?;
    let Signed {
        token,
        claims,
        base,
    } = sign(app, media, caller, camera_id, action, stream)?;
    let node = claims.node.clone();
    let now = app.now();
    let expires_at = DateTime::<Utc>::from_timestamp(claims.exp, 0).unwrap_or(now);
    // The grant is recorded before it is handed out: no token leaves without its audit row.
    let kind = match action {
        MediaAction::Talk => Action::CameraTalk,
        _ => Action::CameraLive,
    };
    let issued = serde_json::json!({"node": node.as_str(), "stream": stream.map(Stream::as_str), "jti": claims.jti, "exp": claims.exp});
    audit
        .record(
            app,
            Event::new(kind)
                .object("camera", &camera.id)
                .town(&camera.town_id)
                .details(issued),
        )
        .await?;
    tracing::info!(camera = %camera.id, action = ?action, node = %node.as_str(), jti = %claims.jti,
                   by = %caller.username, "media token issued");
    let (whep_url, whip_url) = match action {
        MediaAction::Talk => (None, Some(format!("{base}/whip/{}", camera.id))),
        _ => (Some(format!("{base}/whep/{}", camera.id)), None),
    };
    Ok(axum::Json(Grant {
        whep_url,
        whip_url,
        token,
        node,
        stream,
        expires_at,
    }))
}

/// The `[media]` section, or 503 `media_not_configured`.
pub(super) fn media_config(app: &AppState) -> Result<&MediaConfig> {
    app.config.media.as_ref().ok_or_else(|| {
        Error::new(
            Kind::Unavailable,
            "media_not_configured",
            "live view, talk and evidence are not configured; add a [media] section (signing_key_file and at least one [[media.gateway]]) to dispatch's config",
        )
    })
}

/// A media token and the base URL of the gateway node it is for.
pub(super) struct Signed {
    pub token: String,
    pub claims: MediaClaims,
    pub base: String,
}

/// Signs a short-lived media token for `camera` and `action` on the gateway node that owns the
/// camera (the same node for live view and its evidence). The caller's access is checked before.
pub(super) fn sign(
    app: &AppState,
    media: &MediaConfig,
    caller: &Caller,
    camera: CameraId,
    action: MediaAction,
    stream: Option<Stream>,
) -> Result<Signed> {
    let key = media.signing_key.as_ref().ok_or_else(|| {
        Error::internal("media token signing", "media.signing_key was not loaded")
    })?;
    let nodes = media.nodes();
    let node = choose_gateway(&camera, &nodes).clone();
    let base = media
        .url_of(&node)
        .ok_or_else(|| Error::internal("gateway lookup", "chosen node has no url"))?
        .to_owned();
    let iat = app.now().timestamp();
    let ttl = i64::try_from(media.token_ttl_secs).unwrap_or(60);
    let claims = MediaClaims {
        sub: caller.user_id.to_string(),
        camera,
        action,
        node,
        stream,
        iat,
        exp: iat + ttl,
        jti: crate::auth::random_token(16),
    };
    Ok(Signed {
        token: token::sign(&claims, key.signing_key()),
        claims,
        base,
    })
}
