//! WHEP (RFC 9725) and the live status endpoint.
//!
//! - `POST /whep/{camera}?stream=sub|main` (`Content-Type: application/sdp`, media token for
//!   `view` on this camera and node) → `201` with the SDP answer and `Location:
//!   /whep/{camera}/{session}`;
//! - `DELETE /whep/{camera}/{session}` ends it (the unguessable session path is the credential);
//! - `GET /live/{camera}/status` (same token) → the state of its relays.
//!
//! Cross-origin calls from the configured console origins are allowed on `/whep/*` (CORS:
//! `Authorization`, `Content-Type` allowed; `Location` exposed).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use bl_proto::CameraId;
use bl_proto::stream::Stream;
use bl_proto::token::MediaAction;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::StartError;
use super::peer::{Peer, PeerError};
use super::source::SourceError;
use crate::Gateway;
use crate::error::{Error, Kind, Result};

/// The WHEP and status routes, with CORS for `allowed_origins`.
pub fn routes(allowed_origins: &[String]) -> Router<Arc<Gateway>> {
    Router::new()
        .route("/whep/{camera}", post(whep_post))
        .route("/whep/{camera}/{session}", delete(whep_delete))
        .route("/live/{camera}/status", get(status))
        .layer(cors(allowed_origins))
}

/// CORS for the browser-facing live routes (WHEP, WHIP, status): the console origins may send
/// `Authorization` and `Content-Type` and read `Location`.
pub(crate) fn cors(allowed_origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST, Method::DELETE, Method::GET, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::LOCATION])
}

pub(crate) fn camera_id(raw: &str) -> Result<CameraId> {
    raw.parse()
        .map_err(|e| Error::bad_request("bad_camera", format!("{raw:?} is not a camera id: {e}")))
}

fn stream_param(query: Option<&str>) -> Result<Stream> {
    let value = query
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("stream="))
        .unwrap_or("sub");
    match value {
        "sub" => Ok(Stream::Sub),
        "main" => Ok(Stream::Main),
        other => Err(Error::bad_request(
            "bad_stream",
            format!("stream={other:?}: use stream=sub (tiles) or stream=main (maximised)"),
        )),
    }
}

async fn whep_post(
    State(gw): State<Arc<Gateway>>,
    Path(camera): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let claims = gw.tokens.authenticate(&headers, None)?;
    let camera = camera_id(&camera)?;
    gw.tokens.authorize(&claims, &camera, MediaAction::View)?;
    let stream = stream_param(query.as_deref())?;
    let offer = sdp_offer(&headers, &body)?;
    let accepts_h265 = super::peer::offers_h265(&offer);
    let live = &gw.live;
    gw.check_session_capacity()?;
    let source = match live.sources.source(&camera).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(Error::new(
                Kind::NotFound,
                "unknown_camera",
                format!("camera {camera} is not known to this gateway"),
            ));
        }
        Err(SourceError::NotOwner) => {
            return Err(Error::new(
                Kind::Conflict,
                "not_owner",
                "dispatch says another gateway node serves this camera; ask dispatch for a new live URL",
            ));
        }
        Err(e) => {
            return Err(Error::new(
                Kind::Unavailable,
                "source_lookup_failed",
                format!("{e}; try again shortly"),
            ));
        }
    };
    let (relay, joined) = live
        .join(&camera, stream, &source, accepts_h265)
        .await
        .map_err(start_error)?;
    let (peer, answer, events) =
        match Peer::answer(&live.whep, offer, relay.codec(), relay.has_audio()).await {
            Ok(v) => v,
            Err(e) => {
                live.leave(&relay);
                return Err(peer_error(e));
            }
        };
    let session = live.start_session(relay, joined, peer, events);
    let location = format!("/whep/{camera}/{session}");
    Ok(sdp_created(answer, &location))
}

/// `201 Created` with an SDP answer and the session resource's `Location` (WHIP and WHEP alike).
pub(crate) fn sdp_created(answer: String, location: &str) -> Response {
    let mut response = (StatusCode::CREATED, answer).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The SDP offer of a WHEP or WHIP request.
pub(crate) fn sdp_offer(headers: &HeaderMap, body: &Bytes) -> Result<String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/sdp") {
        return Err(Error::new(
            Kind::UnsupportedMediaType,
            "not_sdp",
            "send the SDP offer with Content-Type: application/sdp",
        ));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| Error::bad_request("bad_offer", "the SDP offer is not UTF-8"))
}

fn start_error(e: StartError) -> Error {
    match e {
        StartError::PushNotSupported => Error::new(
            Kind::Conflict,
            "push_not_supported",
            "this camera is pushed by its edge box and this gateway has no push server (set live.push_listen)",
        ),
        StartError::UnsupportedCodec(codec) => Error::new(
            Kind::Conflict,
            "codec_not_for_browsers",
            format!(
                "the camera sends {codec}, which the gateway cannot relay; set the camera (or its sub-stream) to H.264 or H.265"
            ),
        ),
        StartError::Offline(reason) => Error::new(
            Kind::Unavailable,
            "source_offline",
            format!(
                "the camera is offline ({reason}); the gateway keeps retrying — try again shortly"
            ),
        ),
    }
}

pub(crate) fn peer_error(e: PeerError) -> Error {
    match e {
        PeerError::BadOffer(m) => Error::bad_request("bad_offer", m),
        PeerError::NoPort => Error::new(
            Kind::Busy,
            "no_port",
            "no UDP port is free for another live session; try again shortly",
        ),
        PeerError::Engine(m) => Error::internal("webrtc session", m),
    }
}

async fn whep_delete(
    State(gw): State<Arc<Gateway>>,
    Path((camera, session)): Path<(String, String)>,
) -> Result<StatusCode> {
    let camera = camera_id(&camera)?;
    if gw.live.end_session(&camera, &session) {
        Ok(StatusCode::OK)
    } else {
        Err(Error::new(
            Kind::NotFound,
            "unknown_session",
            "no such live session (it may have ended already)",
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
    gw.tokens.authorize(&claims, &camera, MediaAction::View)?;
    let known = gw
        .live
        .sources
        .source(&camera)
        .await
        .map_err(|e| {
            Error::new(
                Kind::Unavailable,
                "source_lookup_failed",
                format!("{e}; try again shortly"),
            )
        })?
        .is_some();
    if !known {
        return Err(Error::new(
            Kind::NotFound,
            "unknown_camera",
            format!("camera {camera} is not known to this gateway"),
        ));
    }
    let one = |stream: Stream| {
        let mut v = match gw.live.relay(&camera, stream) {
            Some(r) => {
                json!({"source": r.state(), "viewers": r.viewers(), "codec": r.codec().as_str()})
            }
            None => json!({"source": {"state": "idle"}, "viewers": 0}),
        };
        if let Some(t) = gw.live.transcodes.relay(&camera, stream) {
            v["transcode"] = json!({"state": t.state(), "viewers": t.viewers()});
        }
        v
    };
    Ok(axum::Json(json!({
        "v": 1,
        "camera": camera.as_str(),
        "streams": {"main": one(Stream::Main), "sub": one(Stream::Sub)},
    })))
}
