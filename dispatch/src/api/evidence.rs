//! `POST /api/incidents/{id}/evidence`: the incident's evidence — the snapshots and clips its
//! edge events reference (DESIGN §3.2) — each with a URL the browser loads straight from the
//! gateway's evidence store (`<img>`, a seekable `<video>`: the store answers HTTP Range). The URL
//! carries a short-lived media token for the blob's camera (`?access_token=`, since a media
//! element cannot set headers), signed only after the caller's access to the incident is checked
//! and recorded in the audit log. An event may name a blob that has not reached the store yet;
//! the gateway answers 404 until it has ("evidence arriving").

use super::Path;
use super::blob_urls::{About, BlobUrls};
use crate::AppState;
use crate::audit::Audit;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::field::access;
use crate::incident::IncidentId;
use crate::incident::store::{self, LinkedEvent};
use axum::Extension;
use axum::extract::State;
use bl_proto::evidence::BlobRef;
use chrono::{DateTime, Utc};
use serde::Serialize;
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
    let mut what = serde_json::Map::new();
    what.insert("blobs".into(), blobs.len().into());
    let cameras = blobs.iter().map(|(_, _, e)| e.camera_id.as_str());
    let urls = BlobUrls::grant(
        &app,
        &caller,
        &audit,
        (About::Incident(id), &incident.town_id),
        cameras,
        what,
    )
    .await?;
    let expires_at = urls.expires_at();
    let items = blobs
        .into_iter()
        .map(|(kind, blob, e)| EvidenceItem {
            kind,
            url: urls.url(&e.camera_id, blob.sha256.as_str()),
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
        })
        .collect();
    Ok(axum::Json(Evidence { items, expires_at }))
}
