//! Live view and talk: `POST /api/cameras/{id}/live` and `/talk` hand the browser the owning
//! gateway's WHEP/WHIP URL and a short-lived media token signed with dispatch's key (DESIGN §3.3).

use super::Path;
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::{Caller, Role};
use crate::config::MediaConfig;
use crate::error::{Error, Kind, Result};
use crate::intercom::Asker;
use crate::intercom::floor::{self, Taken};
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
use uuid::Uuid;

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
    /// The caller's holding of the camera's talk floor (talk grants only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talk_session: Option<i64>,
}

/// The optional body of `/talk`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TalkRequest {
    /// Take the floor from the operator who holds it (supervisors only).
    #[serde(default)]
    pub takeover: bool,
    /// The incident the talk is about: the recording is linked on its timeline.
    #[serde(default)]
    pub incident_id: Option<Uuid>,
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
        (status = 403, description = "`out_of_scope`: the camera is outside the caller's towns; `not_your_team`: a field user whose team has no open incident at the camera's premises"),
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
    summary = "Take the camera's talk floor and get a talk grant",
    params(("id" = String, Path, description = "The camera's id")),
    request_body(content = Option<TalkRequest>, description = "Optional; `takeover` for supervisors, `incidentId` to link the talk"),
    responses(
        (status = 200, description = "The owning gateway's WHIP URL, a short-lived media token and the caller's talk session (asking again renews it)", body = Grant),
        (status = 409, description = "`talk_unsupported`: the camera has no speaker or audio backchannel; `floor_taken`: another operator talks to it (`error.holder` names them)"),
        (status = 503, description = "`media_not_configured`: no `[media]` section"),
    )
)]
pub async fn talk(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Grant>> {
    let request: TalkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TalkRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Error::bad_request(
                "invalid_body",
                format!("the JSON body is not acceptable: {e}; send {{\"takeover\": true|false, \"incidentId\": \"…\"}} or nothing"),
            )
        })?
    };
    media_config(&app)?;
    let camera = allowed_camera(&app, &caller, &id, MediaAction::Talk).await?;
    if let Some(incident) = request.incident_id {
        let town: Option<String> =
            sqlx::query_scalar("SELECT town_id FROM incidents WHERE id = $1")
                .bind(incident)
                .fetch_optional(&app.pool)
                .await?;
        caller.check_town(&town.ok_or_else(|| Error::not_found("incident"))?)?;
    }
    let session = take_floor(&app, &caller, &audit, &camera, &request).await?;
    let mut grant = grant(&app, &caller, &audit, &id, MediaAction::Talk, None).await?;
    grant.talk_session = Some(session);
    Ok(grant)
}

/// Applies floor control for a talk grant; returns the caller's talk session.
async fn take_floor(
    app: &AppState,
    caller: &Caller,
    audit: &Audit,
    camera: &cameras::Camera,
    request: &TalkRequest,
) -> Result<i64> {
    let asker = Asker {
        user_id: caller.user_id,
        may_take_over: caller.role == Role::Supervisor,
        wants_take_over: request.takeover,
    };
    let mut tx = app.pool.begin().await?;
    let taken = floor::take(
        &mut tx,
        &camera.id,
        caller,
        asker,
        request.incident_id,
        app.now(),
    )
    .await;
    let taken = match taken {
        // Two replicas granting at once: the index keeps one; the other is refused like a holder.
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            return Err(Error::new(
                Kind::Conflict,
                "floor_taken",
                "another operator started talking to this camera just now; try again",
            ));
        }
        other => other?,
    };
    let session = match taken {
        Taken::Refused(holder) => {
            let mut e = Error::new(
                Kind::Conflict,
                "floor_taken",
                format!(
                    "{} ({}) is talking to camera {}; wait until they release it{}",
                    holder.display_name,
                    holder.username,
                    camera.id,
                    if request.takeover {
                        " (only a supervisor may take the floor)"
                    } else {
                        ""
                    }
                ),
            );
            e.holder = Some(Box::new(holder));
            return Err(e);
        }
        Taken::Renewed { session_id } => return Ok(session_id),
        Taken::Started {
            session_id,
            taken_from,
        } => {
            if let Some(h) = taken_from {
                let details = serde_json::json!({"from": h.username, "fromSession": h.session_id, "session": session_id});
                let event = Event::new(Action::TalkTakeover)
                    .object("camera", &camera.id)
                    .town(&camera.town_id)
                    .details(details);
                audit.append(&mut tx, app, event).await?;
            }
            session_id
        }
    };
    let details = serde_json::json!({"session": session, "incident": request.incident_id.map(|i| i.to_string())});
    let event = Event::new(Action::TalkStart)
        .object("camera", &camera.id)
        .town(&camera.town_id)
        .details(details);
    audit.append(&mut tx, app, event).await?;
    tx.commit().await?;
    Ok(session)
}

/// `DELETE /api/cameras/{id}/talk`
#[utoipa::path(
    delete,
    path = "/api/cameras/{id}/talk",
    summary = "Release the camera's talk floor",
    params(("id" = String, Path, description = "The camera's id")),
    responses(
        (status = 204, description = "The caller no longer holds the floor (also when they did not)"),
    )
)]
pub async fn release_talk(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode> {
    let camera = cameras::get(&app.pool, &id)
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
    caller.check_town(&camera.town_id)?;
    let mut tx = app.pool.begin().await?;
    if let Some(session) = floor::release(&mut tx, &camera.id, caller.user_id, app.now()).await? {
        let event = Event::new(Action::TalkEnd)
            .object("camera", &camera.id)
            .town(&camera.town_id)
            .details(serde_json::json!({"session": session, "reason": "released"}));
        audit.append(&mut tx, &app, event).await?;
    }
    tx.commit().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The camera if it exists (404), lies in the caller's towns (403) and, for talk, can play audio
/// (409).
async fn allowed_camera(
    app: &AppState,
    caller: &Caller,
    id: &str,
    action: MediaAction,
) -> Result<cameras::Camera> {
    let camera = cameras::get(&app.pool, id)
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
    caller.check_town(&camera.town_id)?;
    if action == MediaAction::View {
        let mut conn = app.pool.acquire().await?;
        crate::field::access::check_camera(&mut conn, caller, camera.premises_id).await?;
    }
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
    Ok(camera)
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
    let camera = allowed_camera(app, caller, id, action).await?;
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
        talk_session: None,
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
    let ttl = i64::try_from(media.token_ttl_secs).unwrap_or(60);
    let sub = caller.user_id.to_string();
    sign_as(app, media, sub, camera, action, stream, ttl)
}

/// [`sign`] for any subject and lifetime (consult rooms: `user:{name}`, an invited `guest:{name}`).
pub(super) fn sign_as(
    app: &AppState,
    media: &MediaConfig,
    sub: String,
    camera: CameraId,
    action: MediaAction,
    stream: Option<Stream>,
    ttl: i64,
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
    let claims = MediaClaims {
        sub,
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
