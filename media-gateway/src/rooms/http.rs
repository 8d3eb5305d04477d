//! The rooms' requests (WHIP/WHEP style, like the live view and talk). Every request carries a
//! media token for action `room` whose `camera` is the room id (dispatch signs it for a member).
//!
//! - `POST /rooms/{room}/whip` (send-only offer: Opus and/or VP8) → `201` answer, `Location:
//!   /rooms/{room}/whip/{participant}`; `409 room_full` past [`super::MAX_PARTICIPANTS`];
//! - `DELETE /rooms/{room}/whip/{participant}` leaves (the session path is the credential);
//! - `POST /rooms/{room}/whep/{participant}` (receive-only offer) → `201` answer with that
//!   participant's audio and video, `Location: /rooms/{room}/whep/{participant}/{session}`;
//! - `DELETE /rooms/{room}/whep/{participant}/{session}` ends the subscription;
//! - `GET /rooms/{room}` (token also as `?access_token=`) → who is in the room and who talks;
//! - `POST /rooms/{room}/whip/{participant}/floor` with `Authorization: Bearer <floor grant>`
//!   (push-to-talk rooms): that participant's audio is forwarded until the grant's expiry, a
//!   newer grant supersedes it at once ([`super::floor`]); `DELETE` the same path lets go.
//!
//! - `POST /rooms/{room}/clip` with `Authorization: Bearer <clip grant>` plays an evidence clip
//!   from the store into the room (`201 {"participant"}`; subscribe to it like anyone), or
//!   pauses, resumes or stops it: the grant's `step` ([`super::clip`]).
//!
//! - `POST /rooms/{room}/recording` with a media token for action `record` of the room starts
//!   recording the room's voices, every participant mixed (`201`; `200` if it records already;
//!   `409 room_empty`; `503 recording_unavailable` without a signing key); `DELETE` stops it and
//!   answers `204` once it is stored (`404 not_recording`). `GET /rooms/{room}` says `recording`.
//!
//! Room connections count toward `live.max_sessions` with the live view's (503
//! `too_many_sessions`).

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

use super::floor::{FloorError, Grant};
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
        .route("/rooms/{room}/clip", post(clip))
        .route(
            "/rooms/{room}/recording",
            post(start_recording).delete(stop_recording),
        )
        .route(
            "/rooms/{room}/whip/{participant}/floor",
            post(take_floor).delete(release_floor),
        )
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
    gw.check_session_capacity()?;
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
    gw.check_session_capacity()?;
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
        "floor": gw.rooms.floor(room.as_str()),
        "recording": gw.rooms.is_recording(room.as_str()),
    })))
}

/// The room id of the path, once a `record` token for it allows recording it.
fn record_authorized(gw: &Gateway, headers: &HeaderMap, room: &str) -> Result<(CameraId, String)> {
    let claims = gw.tokens.authenticate(headers, None)?;
    let room = camera_id(room)?;
    gw.tokens.authorize(&claims, &room, MediaAction::Record)?;
    Ok((room, claims.sub))
}

async fn start_recording(
    State(gw): State<Arc<Gateway>>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let (room, sub) = record_authorized(&gw, &headers, &room)?;
    let recordings = gw.live.voice.get().ok_or_else(|| {
        Error::new(
            Kind::Unavailable,
            "recording_unavailable",
            "this gateway records nothing: it has no signing_key_file",
        )
    })?;
    if gw.rooms.participants(room.as_str()).is_empty() {
        return Err(Error::new(
            Kind::Conflict,
            "room_empty",
            format!("nobody is in room {room}: join it first, then record"),
        ));
    }
    let started = gw
        .rooms
        .start_recording(recordings, room.as_str(), &sub)
        .map_err(|e| Error::new(Kind::Unavailable, "recording_unavailable", e))?;
    tracing::info!(room = %room, sub = %sub, started, "room recording asked");
    let status = if started {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(json!({"recording": true}))).into_response())
}

async fn stop_recording(
    State(gw): State<Arc<Gateway>>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let (room, _) = record_authorized(&gw, &headers, &room)?;
    let recording = gw.rooms.stop_recording(room.as_str()).ok_or_else(|| {
        Error::new(
            Kind::NotFound,
            "not_recording",
            format!("room {room} is not being recorded"),
        )
    })?;
    // Answered once the recording is stored and its report queued.
    recording.stop().await;
    Ok(StatusCode::NO_CONTENT)
}

async fn take_floor(
    State(gw): State<Arc<Gateway>>,
    Path((room, participant)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let claims = gw.tokens.authenticate_floor(&headers)?;
    let room = camera_id(&room)?;
    if claims.room != room {
        return Err(Error::new(
            Kind::Forbidden,
            "wrong_room",
            format!("the floor grant is for room {}, not {room}", claims.room),
        ));
    }
    let grant = Grant {
        sub: claims.sub,
        floor_session: claims.floor_session,
        exp: claims.exp,
    };
    let started = gw
        .rooms
        .grant_floor(room.as_str(), &participant, &grant)
        .map_err(|e| match e {
            FloorError::UnknownParticipant => unknown_participant(),
            FloorError::NotPushToTalk { .. } => {
                Error::new(Kind::Conflict, "not_push_to_talk", e.to_string())
            }
            FloorError::NotYours { .. } => {
                Error::new(Kind::Forbidden, "floor_not_yours", e.to_string())
            }
            FloorError::Superseded { .. } => {
                Error::new(Kind::Conflict, "floor_superseded", e.to_string())
            }
        })?;
    // Tell the floor's listeners when the grant runs out unrenewed (the gate closes by itself).
    let wait = (grant.exp - chrono::Utc::now().timestamp()).max(0);
    let room = room.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(wait.unsigned_abs())).await;
        gw.rooms.expire_floor(&room, grant.floor_session, grant.exp);
    });
    Ok(if started {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

async fn release_floor(
    State(gw): State<Arc<Gateway>>,
    Path((room, participant)): Path<(String, String)>,
) -> Result<StatusCode> {
    let room = camera_id(&room)?;
    gw.rooms.release_floor(room.as_str(), &participant);
    Ok(StatusCode::NO_CONTENT)
}

async fn clip(
    State(gw): State<Arc<Gateway>>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    use bl_proto::clip_token::ClipStep;
    use futures::TryStreamExt;
    let claims = gw.tokens.authenticate_clip(&headers)?;
    let room = camera_id(&room)?;
    if claims.room != room {
        return Err(Error::new(
            Kind::Forbidden,
            "wrong_room",
            format!("the clip grant is for room {}, not {room}", claims.room),
        ));
    }
    let no_clip = || {
        Error::new(
            Kind::NotFound,
            "no_clip",
            "no evidence clip plays in this room (it may have ended)",
        )
    };
    let rooms = &gw.rooms;
    match claims.step {
        ClipStep::Pause | ClipStep::Resume => {
            if !rooms.pause_clip(room.as_str(), claims.step == ClipStep::Pause) {
                return Err(no_clip());
            }
            Ok(StatusCode::OK.into_response())
        }
        ClipStep::Stop => {
            let id = rooms.clip_participant(room.as_str()).ok_or_else(no_clip)?;
            rooms.leave(room.as_str(), &id);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ClipStep::Play => {
            let stored = gw
                .store
                .get(&claims.sha256)
                .await
                .map_err(|e| Error::new(Kind::Unavailable, "store_error", e.to_string()))?
                .ok_or_else(|| {
                    Error::new(
                        Kind::NotFound,
                        "unknown_evidence",
                        format!("evidence {} is not stored on this gateway", claims.sha256),
                    )
                })?;
            let bytes: Vec<u8> = gw
                .store
                .read(&claims.sha256, 0..stored.meta.size)
                .await
                .map_err(|e| Error::new(Kind::Unavailable, "store_error", e.to_string()))?
                .try_fold(Vec::new(), |mut all, chunk| async move {
                    all.extend_from_slice(&chunk);
                    Ok(all)
                })
                .await
                .map_err(|e| Error::new(Kind::Unavailable, "store_error", e.to_string()))?;
            gw.check_session_capacity()?;
            let id = rooms
                .play_clip(room.as_str(), claims.sha256.as_str(), &bytes)
                .map_err(|e| match e {
                    super::ClipError::Full(_) => Error::new(
                        Kind::Conflict,
                        "room_full",
                        format!("room {room} has its maximum of {MAX_PARTICIPANTS} participants"),
                    ),
                    super::ClipError::Player(m) => Error::bad_request(
                        "clip_unplayable",
                        format!("{m}; clips must be MP4 with H.264 video"),
                    ),
                })?;
            tracing::info!(room = %room, participant = %id, sha256 = %claims.sha256, by = %claims.sub, "room clip playing");
            Ok((StatusCode::CREATED, axum::Json(json!({"participant": id}))).into_response())
        }
    }
}
