//! `POST /internal/cameras/{id}/talk-start` and `…/talk-stop` (DESIGN §3.3): the gateway node that
//! owns a camera, on its first talk session, asks dispatch to have the camera's edge box pull the
//! operator's voice; dispatch signs a short-lived `talk` media token for the edge and sends
//! `startTalk {cameraId, pullUrl, token, output}` (or `stopTalk`) on `bl/v1/edge/{edge}/cmd`, like
//! `startLive` ([`super::live_push`]). `output` is the camera's `talk_output`: its ONVIF
//! backchannel, or the box's own speaker for a camera without one.

use super::Path;
use super::field::parse;
use super::live_push::{edge_camera, edge_media_token, send, send_as};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::service::ServiceCaller;
use crate::error::{Error, Kind, Result};
use crate::intercom::{broadcast, floor};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use bl_proto::command::{CommandAction, StartTalk, StopTalk, TalkOutput};
use bl_proto::token::MediaAction;
use bl_proto::{CameraId, EdgeId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// The body of `talk-start` (`talk-stop` takes `{}`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TalkEdgeBody {
    /// The gateway's RTSP URL of the camera's talk audio, `rtsp://…/talk/{camera}`, without the
    /// token (the edge appends `/{token}`). Ignored by `talk-stop`.
    #[serde(default)]
    pub pull_url: Option<String>,
}

/// `POST /internal/cameras/{id}/talk-start`: 202 once `startTalk` is queued for the edge.
#[utoipa::path(
    post,
    path = "/internal/cameras/{id}/talk-start",
    summary = "Have a camera's edge box pull talk audio from the asking gateway and play it",
    params(("id" = String, Path, description = "The camera's id")),
    request_body = TalkEdgeBody,
    responses(
        (status = 202, description = "`startTalk` queued for the edge, with a `talk` token for this node"),
        (status = 403, description = "`not_owner`: another gateway node owns this camera"),
        (status = 409, description = "`no_edge`: no edge box serves this camera; `talk_unsupported`: it cannot play audio"),
        (status = 503, description = "`mqtt_not_configured` or `edge_unreachable`"),
    )
)]
pub async fn talk_start(
    State(app): State<Arc<AppState>>,
    Extension(service): Extension<ServiceCaller>,
    audit: Audit,
    Path(id): Path<String>,
    super::Json(body): super::Json<Value>,
) -> Result<StatusCode> {
    let body: TalkEdgeBody = parse(body)?;
    let pull_url = body
        .pull_url
        .filter(|u| {
            u.starts_with("rtsp://")
                && !u.contains('@')
                && !u.contains('?')
                && u.trim_end_matches('/').ends_with(&format!("/talk/{id}"))
        })
        .ok_or_else(|| {
            Error::invalid_field(
                "pullUrl",
                "must be the gateway's rtsp://…/talk/{camera} URL without credentials or query",
            )
        })?;
    let (camera, edge, town) = talk_camera(&app, &service, &id).await?;
    let output = match floor::output(&app.pool, &id).await?.as_deref() {
        Some("speaker") => TalkOutput::Speaker,
        _ => TalkOutput::Backchannel,
    };
    let (token, claims) = edge_media_token(
        &app,
        &service,
        &edge,
        camera.clone(),
        MediaAction::Talk,
        None,
    )?;
    let event = Event::new(Action::CameraTalk)
        .object("camera", &id)
        .town(town)
        .details(json!({"edge": edge.as_str(), "node": service.node.as_str(),
                        "output": output_name(output), "jti": claims.jti, "exp": claims.exp}));
    audit.record(&app, event).await?;
    let action = CommandAction::StartTalk(StartTalk {
        camera_id: camera,
        pull_url: pull_url.trim_end_matches('/').to_owned(),
        token,
        output,
    });
    // A camera in a group broadcast: the edge's answer moves its delivery state. The command's id
    // is noted before it is sent: a box that refuses at once answers before a later note commits.
    let cmd_id = Uuid::now_v7();
    broadcast::note_start(&app.pool, &id, cmd_id).await?;
    if let Err(e) = send_as(&app, &edge, cmd_id, action) {
        let why = format!("startTalk could not be sent: {}", e.message);
        broadcast::note_unreachable(&app.pool, &id, &why, app.now()).await?;
        return Err(e);
    }
    Ok(StatusCode::ACCEPTED)
}

/// `POST /internal/cameras/{id}/talk-stop`: 202 once `stopTalk` is queued for the edge.
#[utoipa::path(
    post,
    path = "/internal/cameras/{id}/talk-stop",
    summary = "Tell a camera's edge box to stop playing talk audio",
    params(("id" = String, Path, description = "The camera's id")),
    request_body = TalkEdgeBody,
    responses(
        (status = 202, description = "`stopTalk` queued for the edge"),
        (status = 403, description = "`not_owner`: another gateway node owns this camera"),
        (status = 409, description = "`no_edge`: no edge box serves this camera"),
        (status = 503, description = "`mqtt_not_configured` or `edge_unreachable`"),
    )
)]
pub async fn talk_stop(
    State(app): State<Arc<AppState>>,
    Extension(service): Extension<ServiceCaller>,
    Path(id): Path<String>,
    super::Json(body): super::Json<Value>,
) -> Result<StatusCode> {
    let _: TalkEdgeBody = parse(body)?;
    let (camera, edge, _) = talk_camera(&app, &service, &id).await?;
    send(
        &app,
        &edge,
        CommandAction::StopTalk(StopTalk { camera_id: camera }),
    )?;
    Ok(StatusCode::ACCEPTED)
}

fn output_name(o: TalkOutput) -> &'static str {
    match o {
        TalkOutput::Backchannel => "backchannel",
        TalkOutput::Speaker => "speaker",
    }
}

/// The camera, its edge and town, if the asking node owns it and an edge box serves it.
async fn talk_camera(
    app: &AppState,
    service: &ServiceCaller,
    id: &str,
) -> Result<(CameraId, EdgeId, String)> {
    edge_camera(app, service, id, || {
        Error::new(
            Kind::Conflict,
            "no_edge",
            format!(
                "camera {id} is pulled by the gateway and no edge box serves it, so nobody can play talk audio there"
            ),
        )
    })
    .await
}
