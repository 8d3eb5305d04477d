//! The rooms' requests (WHIP/WHEP style, like the live view and talk). Every request carries a
//! media token for action `room` whose `camera` is the room id (dispatch signs it for a member).
//!
//! - `POST /rooms/{room}/whip` (send-only offer: Opus and/or VP8) → `201` answer, `Location:
//!   /rooms/{room}/whip/{participant}`; `409 room_full` past [`super::MAX_PARTICIPANTS`];
//! - `DELETE /rooms/{room}/whip/{participant}` leaves (the session path is the credential);
//! - `POST /rooms/{room}/whep/{participant}` (receive-only offer) → `201` answer with that
//!   participant's audio and video, `Location: /rooms/{room}/whep/{participant}/{session}`;
//! - `DELETE /rooms/{room}/whep/{participant}/{session}` ends the subscription;
//! - `GET /rooms/{room}` (token also as `?access_token=`) → who is in the room.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use bl_proto::CameraId;
use bl_proto::token::MediaAction;
use serde_json::json;

use super::peer::{PublishPeer, SubscribePeer, offered_kinds};
use super::{JoinError, MAX_PARTICIPANTS};
use crate::Gateway;
use crate::error::{Error, Kind, Result};
use crate::live::http::{camera_id, cors, peer_error, sdp_created, sdp_offer};
use crate::live::peer::PeerEvent;

/// The rooms' routes, with CORS for `allowed_origins`.
pub fn routes(allowed_origins: &[String]) -> Router<Arc<Gateway>> {
    Router::new()
        .route("/rooms/{room}", get(list))
        .route("/rooms/{room}/whip", post(join))
        .route("/rooms/{room}/whip/{participant}", delete(leave))
        .route("/rooms/{room}/whep/{participant}", post(subscribe))
        .route(
            "/rooms/{room}/whep/{participant}/{session}",
            delete(unsubscribe),
        )
        .layer(cors(allowed_origins))
}

/// The room id of the path, once the token allows it.
fn authorized(
    gw: &Gateway,
    headers: &HeaderMap,
    query: Option<&str>,
    room: &str,
) -> Result<(CameraId, String)> {
    let claims = gw.tokens.authenticate(headers, query)?;
    let room = camera_id(room)?;
    gw.tokens.authorize(&claims, &room, MediaAction::Room)?;
    Ok((room, claims.sub))
}

async fn join(
    State(gw): State<Arc<Gateway>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let (room, sub) = authorized(&gw, &headers, None, &room)?;
    let offer = sdp_offer(&headers, &body)?;
    let rooms = &gw.rooms;
    let (id, feed, keyframes) = rooms
        .reserve(room.as_str(), &sub, offered_kinds(&offer), chrono::Utc::now())
        .map_err(|JoinError::Full { room }| {
            Error::new(
                Kind::Conflict,
                "room_full",
                format!(
                    "room {room} has its maximum of {MAX_PARTICIPANTS} participants; ask one to leave, or open another room"
                ),
            )
        })?;
    let (peer, answer, events) =
        match PublishPeer::answer(&rooms.settings, offer, feed, keyframes).await {
            Ok(v) => v,
            Err(e) => {
                rooms.leave(room.as_str(), &id);
                return Err(peer_error(e));
            }
        };
    if !rooms.attach(room.as_str(), &id, Arc::new(peer)) {
        return Err(Error::new(
            Kind::Conflict,
            "left",
            "the participant left while joining; join again",
        ));
    }
    watch(gw.clone(), room.to_string(), id.clone(), events, true);
    tracing::info!(room = %room, participant = %id, sub = %sub, "room participant joined");
    Ok(sdp_created(answer, &format!("/rooms/{room}/whip/{id}")))
}

/// Ends a participant or subscription when its connection closes.
fn watch(
    gw: Arc<Gateway>,
    room: String,
    id: String,
    mut events: tokio::sync::mpsc::Receiver<PeerEvent>,
    participant: bool,
) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if event == PeerEvent::Closed {
                break;
            }
        }
        let ended = if participant {
            gw.rooms.leave(&room, &id)
        } else {
            gw.rooms.end_subscription(&room, &id)
        };
        if ended && participant {
            tracing::info!(room = %room, participant = %id, "room participant left");
        }
    });
}

async fn leave(
    State(gw): State<Arc<Gateway>>,
    Path((room, participant)): Path<(String, String)>,
) -> Result<StatusCode> {
    let room = camera_id(&room)?;
    if gw.rooms.leave(room.as_str(), &participant) {
        tracing::info!(room = %room, participant = %participant, "room participant left");
        Ok(StatusCode::OK)
    } else {
        Err(unknown_participant())
    }
}

fn unknown_participant() -> Error {
    Error::new(
        Kind::NotFound,
        "unknown_participant",
        "no such participant in this room (they may have left); list the room again",
    )
}

async fn subscribe(
    State(gw): State<Arc<Gateway>>,
    Path((room, participant)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let (room, _) = authorized(&gw, &headers, None, &room)?;
    let offer = sdp_offer(&headers, &body)?;
    let feed = gw
        .rooms
        .feed(room.as_str(), &participant)
        .ok_or_else(unknown_participant)?;
    let (peer, answer, events) =
        SubscribePeer::answer(&gw.rooms.settings, offer, &feed, &participant)
            .await
            .map_err(peer_error)?;
    let session = gw.rooms.add_subscription(room.as_str(), Arc::new(peer));
    watch(gw.clone(), room.to_string(), session.clone(), events, false);
    Ok(sdp_created(
        answer,
        &format!("/rooms/{room}/whep/{participant}/{session}"),
    ))
}

async fn unsubscribe(
    State(gw): State<Arc<Gateway>>,
    Path((room, _participant, session)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    let room = camera_id(&room)?;
    if gw.rooms.end_subscription(room.as_str(), &session) {
        Ok(StatusCode::OK)
    } else {
        Err(Error::new(
            Kind::NotFound,
            "unknown_session",
            "no such subscription (it may have ended already)",
        ))
    }
}

async fn list(
    State(gw): State<Arc<Gateway>>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<impl IntoResponse> {
    let (room, _) = authorized(&gw, &headers, query.as_deref(), &room)?;
    Ok(axum::Json(json!({
        "v": 1,
        "room": room.as_str(),
        "max": MAX_PARTICIPANTS,
        "participants": gw.rooms.participants(room.as_str()),
    })))
}
