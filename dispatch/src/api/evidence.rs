//! `POST /api/incidents/{id}/evidence`: the incident's evidence — the snapshots and clips its
//! edge events reference (DESIGN §3.2) — each with a URL the browser loads straight from the
//! gateway's evidence store (`<img>`, a seekable `<video>`: the store answers HTTP Range). The URL
//! carries a short-lived media token for the blob's camera (`?access_token=`, since a media
//! element cannot set headers), signed only after the caller's access to the incident is checked
//! and recorded in the audit log. An event may name a blob that has not reached the store yet;
//! the gateway answers 404 until it has ("evidence arriving").

use super::Path;
use super::media::{Signed, media_config, sign};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::field::access;
use crate::incident::IncidentId;
use crate::incident::store::{self, LinkedEvent};
use axum::Extension;
use axum::extract::State;
use bl_proto::CameraId;
use bl_proto::evidence::BlobRef;
use bl_proto::token::MediaAction;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// One blob of the incident's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceItem {
    /// `snapshot` or `clip`.
    pub kind: &'static str,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    /// The media time range of a clip (null for a snapshot).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub camera_id: String,
    /// The first edge event that referenced it.
    pub event_id: Uuid,
    pub at: DateTime<Utc>,
    /// `GET` it from the gateway (token included) until `expiresAt`.
    pub url: String,
    /// For a snapshot, the boxes of the detection it shows (normalised to the frame; the console
    /// draws them over the picture); `[]` for a clip.
    #[schema(value_type = Vec<Object>)]
    pub boxes: serde_json::Value,
}

/// The answer of `POST /api/incidents/{id}/evidence`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// Oldest first; each blob once.
    pub items: Vec<EvidenceItem>,
    /// When the URLs' tokens expire (ask again after).
    pub expires_at: Option<DateTime<Utc>>,
}

/// The blobs `events` reference, each once, in the events' order (plain logic). A reference that
/// does not parse (an edge's bug) is left out: it could not be fetched anyway.
pub fn blobs(events: &[LinkedEvent]) -> Vec<(&'static str, BlobRef, &LinkedEvent)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for e in events {
        for (kind, value) in [("snapshot", &e.snapshot), ("clip", &e.clip)] {
            let Some(value) = value else { continue };
            let Ok(blob) = serde_json::from_value::<BlobRef>(value.clone()) else {
                continue;
            };
            if seen.insert(blob.sha256.to_string()) {
                out.push((kind, blob, e));
            }
        }
    }
    out
}

/// `POST /api/incidents/{id}/evidence`
#[utoipa::path(
    post,
    path = "/api/incidents/{id}/evidence",
    summary = "Get the incident's evidence with short-lived URLs",
    params(("id" = Uuid, Path, description = "The incident's id")),
    responses(
        (status = 200, description = "The snapshots and clips of the incident's edge events, each with a gateway URL carrying a media token", body = Evidence),
        (status = 404, description = "`not_found`: no such incident"),
        (status = 503, description = "`media_not_configured`: no `[media]` section"),
    )
)]
pub async fn incident_evidence(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<IncidentId>,
) -> Result<axum::Json<Evidence>> {
    let mut conn = app.pool.acquire().await?;
    let incident = store::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found("incident"))?;
    access::check_incident(&mut conn, &caller, &incident).await?;
    let events = store::events(&mut conn, id).await?;
    drop(conn);
    let blobs = blobs(&events);
    if blobs.is_empty() {
        return Ok(axum::Json(Evidence {
            items: Vec::new(),
            expires_at: None,
        }));
    }
    let media = media_config(&app)?;
    // One token per camera serves all of its blobs.
    let mut tokens: BTreeMap<&str, Signed> = BTreeMap::new();
    for (_, _, e) in &blobs {
        if tokens.contains_key(e.camera_id.as_str()) {
            continue;
        }
        let camera = CameraId::new(e.camera_id.clone())
            .map_err(|err| Error::internal("camera id of a stored event", err))?;
        let signed = sign(&app, media, &caller, camera, MediaAction::View, None)?;
        tokens.insert(&e.camera_id, signed);
    }
    let issued: Vec<_> = tokens
        .iter()
        .map(|(camera, s)| serde_json::json!({"camera": camera, "node": s.claims.node.as_str(), "jti": s.claims.jti, "exp": s.claims.exp}))
        .collect();
    // The grant is recorded before it is handed out: no token leaves without its audit row.
    audit
        .record(
            &app,
            Event::new(Action::EvidenceView)
                .object("incident", id)
                .town(&incident.town_id)
                .details(serde_json::json!({"blobs": blobs.len(), "tokens": issued})),
        )
        .await?;
    let expires_at = tokens
        .values()
        .map(|s| s.claims.exp)
        .min()
        .and_then(|exp| DateTime::<Utc>::from_timestamp(exp, 0));
    let items = blobs
        .into_iter()
        .map(|(kind, blob, e)| {
            let signed = &tokens[e.camera_id.as_str()];
            EvidenceItem {
                kind,
                url: format!(
                    "{}/evidence/{}?access_token={}",
                    signed.base, blob.sha256, signed.token
                ),
                sha256: blob.sha256.to_string(),
                size: blob.size,
                content_type: blob.content_type,
                from: blob.from,
                to: blob.to,
                camera_id: e.camera_id.clone(),
                event_id: e.event_id,
                at: e.at,
                boxes: if kind == "snapshot" {
                    e.boxes.clone()
                } else {
                    serde_json::Value::Array(Vec::new())
                },
            }
        })
        .collect();
    Ok(axum::Json(Evidence { items, expires_at }))
}
