//! Gateway URLs for the blobs of an incident (evidence and voice recordings) or of a broadcast
//! (its recording): one short-lived `view` token per camera (or room) serves all of its blobs, and
//! the grant is in the audit log before any URL leaves.

use super::media::{Signed, media_config, sign};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::incident::IncidentId;
use bl_proto::CameraId;
use bl_proto::token::MediaAction;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::BTreeMap;

/// What the blobs belong to.
#[derive(Debug, Clone, Copy)]
pub(super) enum About {
    Incident(IncidentId),
    Broadcast(uuid::Uuid),
}

impl About {
    fn kind(self) -> &'static str {
        match self {
            About::Incident(_) => "incident",
            About::Broadcast(_) => "broadcast",
        }
    }

    fn id(self) -> String {
        match self {
            About::Incident(id) => id.to_string(),
            About::Broadcast(id) => id.to_string(),
        }
    }
}

/// The tokens granted, by camera.
pub(super) struct BlobUrls {
    tokens: BTreeMap<String, Signed>,
}

impl BlobUrls {
    /// Signs one token per camera of `cameras` and audits it as `evidence.view` of `about` (an
    /// incident or a broadcast, in `town`), with `what` (e.g. `{"blobs": 3}`) beside the tokens
    /// issued.
    pub async fn grant<'a>(
        app: &AppState,
        caller: &Caller,
        audit: &Audit,
        (about, town): (About, &str),
        cameras: impl IntoIterator<Item = &'a str>,
        mut what: serde_json::Map<String, serde_json::Value>,
    ) -> Result<BlobUrls> {
        let media = media_config(app)?;
        let mut tokens = BTreeMap::new();
        for camera in cameras {
            if tokens.contains_key(camera) {
                continue;
            }
            let id = CameraId::new(camera.to_owned())
                .map_err(|e| Error::internal("camera id of a stored blob", e))?;
            let signed = sign(app, media, caller, id, MediaAction::View, None)?;
            tokens.insert(camera.to_owned(), signed);
        }
        let issued: Vec<_> = tokens
            .iter()
            .map(|(camera, s)| json!({"camera": camera, "node": s.claims.node.as_str(), "jti": s.claims.jti, "exp": s.claims.exp}))
            .collect();
        what.insert("tokens".into(), issued.into());
        audit
            .record(
                app,
                Event::new(Action::EvidenceView)
                    .object(about.kind(), about.id())
                    .town(town)
                    .details(what.into()),
            )
            .await?;
        Ok(BlobUrls { tokens })
    }

    /// The URL of blob `sha256` of `camera` (one of those granted).
    pub fn url(&self, camera: &str, sha256: &str) -> String {
        let signed = &self.tokens[camera];
        format!(
            "{}/evidence/{sha256}?access_token={}",
            signed.base, signed.token
        )
    }

    /// When the first of the tokens expires (ask again before).
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.tokens
            .values()
            .map(|s| s.claims.exp)
            .min()
            .and_then(|exp| DateTime::<Utc>::from_timestamp(exp, 0))
    }
}
