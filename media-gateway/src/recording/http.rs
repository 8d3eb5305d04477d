//! Recording over HTTP. Every route takes a media token for this camera and node; starting,
//! stopping and holding need action `record` (dispatch signs it for roles allowed to preserve
//! evidence), the status also takes `view`.
//!
//! - `POST /recording/{camera}/start` → `200` status (recording on request until `stop`);
//! - `POST /recording/{camera}/stop` → `200` status (the segment in progress is finished);
//! - `POST /recording/{camera}/hold` `{"from","to","caseId"}` → `201` the hold and how many stored
//!   segments it covers; segments recorded later inside the range are held too;
//! - `GET /recording/{camera}/status` → state, alarm, totals, last segment, holds.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use bl_proto::CameraId;
use bl_proto::token::MediaAction;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::recorder::{RecorderState, rfc3339};
use super::{Recordings, StartError};
use crate::Gateway;
use crate::error::{Error, Kind, Result};
use crate::live::source::{Source, SourceError};

/// The recording routes.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/recording/{camera}/start", post(start))
        .route("/recording/{camera}/stop", post(stop))
        .route("/recording/{camera}/hold", post(hold))
        .route("/recording/{camera}/status", get(status))
}

fn camera_id(raw: &str) -> Result<CameraId> {
    raw.parse()
        .map_err(|e| Error::bad_request("bad_camera", format!("{raw:?} is not a camera id: {e}")))
}

/// Authenticates, then checks the token covers `camera` for one of `actions`; returns the subject.
fn authorize(
    gw: &Gateway,
    headers: &HeaderMap,
    query: Option<&str>,
    camera: &str,
    actions: &[MediaAction],
) -> Result<(CameraId, String)> {
    let claims = gw.tokens.authenticate(headers, query)?;
    let camera = camera_id(camera)?;
    let mut last = None;
    for action in actions {
        match gw.tokens.authorize(&claims, &camera, *action) {
            Ok(()) => return Ok((camera, claims.sub)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::internal("authorize", "no action given")))
}

async fn source(gw: &Gateway, camera: &CameraId) -> Result<Source> {
    match gw.live.sources.source(camera).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(Error::new(
            Kind::NotFound,
            "unknown_camera",
            format!("camera {camera} is not known to this gateway"),
        )),
        Err(SourceError::NotOwner) => Err(Error::new(
            Kind::Conflict,
            "not_owner",
            "dispatch says another gateway node serves this camera",
        )),
        Err(e) => Err(Error::new(
            Kind::Unavailable,
            "source_lookup_failed",
            format!("{e}; try again shortly"),
        )),
    }
}

async fn start(
    State(gw): State<Arc<Gateway>>,
    Path(camera): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let (camera, by) = authorize(&gw, &headers, None, &camera, &[MediaAction::Record])?;
    let source = source(&gw, &camera).await?;
    gw.recording
        .start(&camera, &source, false)
        .map_err(|e| match e {
            StartError::PushNotSupported(_) => {
                Error::new(Kind::Conflict, "push_not_supported", e.to_string())
            }
            StartError::Stopping(_) => {
                Error::new(Kind::Unavailable, "recording_stopping", e.to_string())
            }
        })?;
    tracing::info!(camera_id = %camera, by = %by, "recording requested");
    status_body(&gw.recording, &camera).await.map(Json)
}

async fn stop(
    State(gw): State<Arc<Gateway>>,
    Path(camera): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let (camera, by) = authorize(&gw, &headers, None, &camera, &[MediaAction::Record])?;
    if gw.recording.recorder(&camera).is_some_and(|r| r.continuous) {
        return Err(Error::new(
            Kind::Conflict,
            "continuous_recording",
            "this camera is recorded continuously by configuration; change the gateway config to stop it",
        ));
    }
    if !gw.recording.stop(&camera) {
        return Err(Error::new(
            Kind::Conflict,
            "not_recording",
            format!("camera {camera} is not being recorded"),
        ));
    }
    tracing::info!(camera_id = %camera, by = %by, "recording stop requested");
    if let Some(r) = gw.recording.recorder(&camera) {
        // Answer once the segment in progress is indexed (bounded: the pipeline gives up after 5 s).
        for _ in 0..150 {
            if r.state() == RecorderState::Stopped {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    status_body(&gw.recording, &camera).await.map(Json)
}

/// The body of `POST /recording/{camera}/hold`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HoldRequest {
    /// Start of the held range, RFC 3339.
    from: DateTime<Utc>,
    /// End of the held range, RFC 3339 (may lie in the future).
    to: DateTime<Utc>,
    /// The case (incident) the hold belongs to.
    case_id: String,
}

async fn hold(
    State(gw): State<Arc<Gateway>>,
    Path(camera): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    let (camera, by) = authorize(&gw, &headers, None, &camera, &[MediaAction::Record])?;
    let req: HoldRequest = serde_json::from_slice(&body).map_err(|e| {
        Error::bad_request(
            "bad_hold",
            format!("the body must be {{\"from\",\"to\",\"caseId\"}} with RFC 3339 times: {e}"),
        )
    })?;
    if req.from >= req.to {
        return Err(Error::bad_request("bad_hold", "`from` must be before `to`"));
    }
    let case_ok = !req.case_id.is_empty()
        && req.case_id.len() <= 128
        && req.case_id.chars().all(|c| c.is_ascii_graphic());
    if !case_ok {
        return Err(Error::bad_request(
            "bad_hold",
            "`caseId` must be 1 to 128 printable ASCII characters without spaces",
        ));
    }
    let shared = gw.recording.shared.clone();
    let cam = camera.to_string();
    let now = Utc::now().timestamp_millis();
    let by2 = by.clone();
    let (hold, covered) = tokio::task::spawn_blocking(move || {
        shared.index(|ix| {
            ix.add_hold(
                &cam,
                req.from.timestamp_millis(),
                req.to.timestamp_millis(),
                &req.case_id,
                &by2,
                now,
            )
        })
    })
    .await
    .map_err(|e| Error::internal("placing a hold", e))?
    .map_err(|e| {
        if e.is_storage_full() {
            Error::new(
                Kind::StorageFull,
                "storage_full",
                "the disk is full; the hold was not placed",
            )
        } else {
            Error::internal("placing a hold", e)
        }
    })?;
    tracing::info!(camera_id = %camera, by = %by, case = %hold.case_id, segments = covered, "legal hold placed");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "v": 1,
            "hold": hold_json(&hold),
            "segmentsHeld": covered,
        })),
    ))
}

fn hold_json(h: &super::index::Hold) -> Value {
    json!({
        "id": h.id, "camera": h.camera, "from": rfc3339(h.from_ms), "to": rfc3339(h.to_ms),
        "caseId": h.case_id, "by": h.by, "createdAt": rfc3339(h.created_ms),
    })
}

async fn status(
    State(gw): State<Arc<Gateway>>,
    Path(camera): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let (camera, _) = authorize(
        &gw,
        &headers,
        query.as_deref(),
        &camera,
        &[MediaAction::Record, MediaAction::View],
    )?;
    source(&gw, &camera).await?;
    status_body(&gw.recording, &camera).await.map(Json)
}

async fn status_body(recordings: &Recordings, camera: &CameraId) -> Result<Value> {
    let recorder = recordings.recorder(camera);
    let state = recorder
        .as_ref()
        .map_or(RecorderState::Stopped, |r| r.state());
    let shared = recordings.shared.clone();
    let cam = camera.to_string();
    let (totals, last, holds) = tokio::task::spawn_blocking(move || {
        shared.index(|ix| Ok((ix.totals(&cam)?, ix.last(&cam)?, ix.holds(&cam)?)))
    })
    .await
    .map_err(|e| Error::internal("reading the recording index", e))?
    .map_err(|e| Error::internal("reading the recording index", e))?;
    let alarm = match &state {
        RecorderState::StorageFull { reason } => json!({"kind": "storageFull", "reason": reason}),
        _ => Value::Null,
    };
    let last = last.map(|e| {
        json!({
            "kind": if e.path.is_some() { "segment" } else { "gap" },
            "start": rfc3339(e.start_ms), "end": rfc3339(e.end_ms),
            "path": e.path, "size": e.size, "sha256": e.sha256, "prevHash": e.prev_hash,
            "reason": e.reason, "held": e.held,
        })
    });
    Ok(json!({
        "v": 1,
        "camera": camera.as_str(),
        "recording": state,
        "mode": if recorder.as_ref().is_some_and(|r| r.continuous) { "continuous" } else { "onRequest" },
        "alarm": alarm,
        "segments": totals.0,
        "bytes": totals.1,
        "lastEntry": last,
        "holds": holds.iter().map(hold_json).collect::<Vec<_>>(),
    }))
}
