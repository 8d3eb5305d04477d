//! WHIP for group broadcasts ([`super::broadcast`]):
//!
//! - `POST /whip-broadcast/{broadcast}` (`Content-Type: application/sdp`, a broadcast token of
//!   dispatch for this broadcast and node) → `201` with the SDP answer (Opus, receive only) and
//!   `Location: /whip-broadcast/{broadcast}/{session}`;
//! - `DELETE /whip-broadcast/{broadcast}/{session}` ends it (the session path is the credential);
//! - `GET /whip-broadcast/{broadcast}/status` (the same token) → the talk state of each camera.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use bl_proto::broadcast_token::BroadcastClaims;

use super::http::{cors, peer_error, sdp_created, sdp_offer};
use super::talk::TalkError;
use super::talk_http::no_rtsp_server;
use super::talk_peer::TalkPeer;
use crate::Gateway;
use crate::error::{Error, Kind, Result};

/// The broadcast WHIP routes, with CORS for `allowed_origins`.
pub fn routes(allowed_origins: &[String]) -> Router<Arc<Gateway>> {
    Router::new()
        .route("/whip-broadcast/{broadcast}", post(whip_post))
        .route("/whip-broadcast/{broadcast}/status", get(status))
        .route("/whip-broadcast/{broadcast}/{session}", delete(whip_delete))
        .layer(cors(allowed_origins))
}

fn broadcast_id(raw: &str) -> Result<uuid::Uuid> {
    raw.parse().map_err(|_| {
        Error::new(
            Kind::BadRequest,
            "bad_broadcast_id",
            format!("{raw:?} is not a broadcast id (a UUID from dispatch's POST /api/broadcasts)"),
        )
    })
}

/// The verified token, if it is for `broadcast`.
fn claims_for(gw: &Gateway, headers: &HeaderMap, broadcast: uuid::Uuid) -> Result<BroadcastClaims> {
    let claims = gw.tokens.authenticate_broadcast(headers)?;
    if claims.broadcast != broadcast {
        return Err(Error::new(
            Kind::Forbidden,
            "token_wrong_broadcast",
            format!(
                "the broadcast token is for broadcast {}, not {broadcast}; ask dispatch for this broadcast's token",
                claims.broadcast
            ),
        ));
    }
    Ok(claims)
}

async fn whip_post(
    State(gw): State<Arc<Gateway>>,
    Path(broadcast): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let broadcast = broadcast_id(&broadcast)?;
    let claims = claims_for(&gw, &headers, broadcast)?;
    let offer = sdp_offer(&headers, &body)?;
    let live = &gw.live;
    if live.push.is_none() {
        return Err(no_rtsp_server());
    }
    let (peer, answer, events, packets) = TalkPeer::answer(&live.settings.peer, offer)
        .await
        .map_err(peer_error)?;
    let session = live
        .start_broadcast(&claims, peer, events, packets)
        .map_err(|TalkError::NoRtspServer| no_rtsp_server())?;
    let location = format!("/whip-broadcast/{broadcast}/{session}");
    Ok(sdp_created(answer, &location))
}

async fn whip_delete(
    State(gw): State<Arc<Gateway>>,
    Path((broadcast, session)): Path<(String, String)>,
) -> Result<StatusCode> {
    let broadcast = broadcast_id(&broadcast)?;
    if gw.live.end_broadcast(broadcast, &session) {
        Ok(StatusCode::OK)
    } else {
        Err(Error::new(
            Kind::NotFound,
            "unknown_session",
            "no such broadcast session (it may have ended already)",
        ))
    }
}

async fn status(
    State(gw): State<Arc<Gateway>>,
    Path(broadcast): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse> {
    let broadcast = broadcast_id(&broadcast)?;
    claims_for(&gw, &headers, broadcast)?;
    Ok(axum::Json(gw.live.broadcast_status(broadcast)))
}
