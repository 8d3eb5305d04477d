//! WHIP (RFC 9725 style, like WHEP) for talk and the talk status endpoint.
//!
//! - `POST /whip/{camera}` (`Content-Type: application/sdp`, media token for `talk` on this camera
//!   and node) → `201` with the SDP answer (Opus, receive only) and `Location:
//!   /whip/{camera}/{session}`;
//! - `DELETE /whip/{camera}/{session}` ends it (the unguessable session path is the credential);
//! - `GET /talk/{camera}/status` (`talk` or `view` token) → the camera's talk state.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use bl_proto::token::MediaAction;

use super::http::{camera_id, cors, peer_error, sdp_created, sdp_offer};
use super::talk::TalkError;
use super::talk_peer::TalkPeer;
use crate::Gateway;
use crate::error::{Error, Kind, Result};

/// The WHIP and talk status routes, with CORS for `allowed_origins`.
pub fn routes(allowed_origins: &[String]) -> Router<Arc<Gateway>> {
    Router::new()
        .route("/whip/{camera}", post(whip_post))
        .route("/whip/{camera}/{session}", delete(whip_delete))
        .route("/talk/{camera}/status", get(status))
        .layer(cors(allowed_origins))
}

async fn whip_post(
    State(gw): State<Arc<Gateway>>,
    Path(camera): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let claims = gw.tokens.authenticate(&headers, None)?;
    let camera = camera_id(&camera)?;
    gw.tokens.authorize(&claims, &camera, MediaAction::Talk)?;
    let offer = sdp_offer(&headers, &body)?;
    let live = &gw.live;
    if live.push.is_none() {
        return Err(no_rtsp_server());
    }
    let (peer, answer, events, packets) = TalkPeer::answer(&live.settings.peer, offer)
        .await
        .map_err(peer_error)?;
    let session = live
        .start_talk(&camera, claims.sub.clone(), peer, events, packets)
        .map_err(|TalkError::NoRtspServer| no_rtsp_server())?;
    let location = format!("/whip/{camera}/{session}");
    Ok(sdp_created(answer, &location))
}

/// 409 `talk_not_supported`: edges could not pull talk audio from this gateway.
pub(super) fn no_rtsp_server() -> Error {
    Error::new(
        Kind::Conflict,
        "talk_not_supported",
        "this gateway has no RTSP server for edge boxes to pull talk audio from (set live.push_listen)",
    )
}

async fn whip_delete(
    State(gw): State<Arc<Gateway>>,
    Path((camera, session)): Path<(String, String)>,
) -> Result<StatusCode> {
    let camera = camera_id(&camera)?;
    if gw.live.end_talk_session(&camera, &session) {
        Ok(StatusCode::OK)
    } else {
        Err(Error::new(
            Kind::NotFound,
            "unknown_session",
            "no such talk session (it may have ended already, or another talker took over)",
        ))
    }
}

async fn status(
    State(gw): State<Arc<Gateway>>,
    Path(camera): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<impl IntoResponse> {
    let claims = gw.tokens.authenticate(&headers, query.as_deref())?;
    let camera = camera_id(&camera)?;
    if gw
        .tokens
        .authorize(&claims, &camera, MediaAction::Talk)
        .is_err()
    {
        gw.tokens.authorize(&claims, &camera, MediaAction::View)?;
    }
    Ok(axum::Json(gw.live.talk_status(&camera)))
}
