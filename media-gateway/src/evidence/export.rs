//! Case export (DESIGN §3.2): the original bytes of each blob, a `manifest.json` describing them, its
//! Ed25519 signature by the gateway (`manifest.sig`) and the gateway's public key (`gateway.pub`).
//!
//! ```text
//! EXPORT/
//!   manifest.json        case, who, when, tool, gateway, cameras, time range, blobs
//!   manifest.sig         base64url Ed25519 over EXPORT_DOMAIN + the bytes of manifest.json
//!   gateway.pub          base64url public key of the signing gateway
//!   blobs/{sha256}.{ext} the original bytes, unchanged
//! ```
//!
//! Each blob entry carries the edge's signature and the edge's public key, so [`super::verify`] can
//! check the chain edge → gateway without any server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bl_proto::evidence::{EvidenceKind, EvidenceMeta, Sha256Hex};
use bl_proto::{CameraId, EdgeId, GatewayNodeId};
use chrono::{DateTime, Utc};
use ed25519_dalek::Signer as _;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use super::{EvidenceStore, Signer, StoreError};
use crate::keyfile::{self, PrivateKey};
use crate::keys::EdgeKeys;

/// Domain tag before the manifest bytes in the signed payload, so the gateway key's signature over
/// an export can never be taken for a signature over anything else.
pub const EXPORT_DOMAIN: &str = "brightline-export-v1\n";
/// The value of [`Manifest::format`].
pub const FORMAT: &str = "brightline-evidence-export";
/// Names of the fixed files of an export.
pub const MANIFEST: &str = "manifest.json";
/// See [`MANIFEST`].
pub const SIGNATURE: &str = "manifest.sig";
/// See [`MANIFEST`].
pub const GATEWAY_PUB: &str = "gateway.pub";

/// The signed description of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Manifest version, 1.
    pub v: u32,
    /// The case (incident) this export belongs to.
    pub case: String,
    /// Who asked for it (operator id).
    pub created_by: String,
    /// When it was made.
    #[serde(with = "bl_proto::time::millis")]
    pub created_at: DateTime<Utc>,
    /// The tool that made it.
    pub tool: Tool,
    /// The gateway that signed it.
    pub gateway: GatewayInfo,
    /// Cameras covered, sorted.
    pub cameras: Vec<CameraId>,
    /// Earliest and latest capture time among the blobs.
    pub time_range: Option<TimeRange>,
    /// The blobs, in the order asked for.
    pub blobs: Vec<ManifestBlob>,
}

/// Tool name and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// `media-gateway`.
    pub name: String,
    /// The crate version.
    pub version: String,
}

/// The signing gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayInfo {
    /// Its node id.
    pub node: GatewayNodeId,
    /// Its public key, base64url (the same as `gateway.pub`).
    pub public_key: String,
}

/// A span of capture times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeRange {
    /// Earliest capture.
    #[serde(with = "bl_proto::time::millis")]
    pub from: DateTime<Utc>,
    /// Latest capture.
    #[serde(with = "bl_proto::time::millis")]
    pub to: DateTime<Utc>,
}

/// One exported blob: its file, the edge-signed metadata and the edge's signature and key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestBlob {
    /// Path inside the export, `blobs/{sha256}.{ext}`.
    pub file: String,
    /// Content address.
    pub sha256: Sha256Hex,
    /// Size in bytes.
    pub size: u64,
    /// The uploading edge.
    pub edge_id: EdgeId,
    /// The camera.
    pub camera_id: CameraId,
    /// Clip, snapshot or audio.
    pub kind: EvidenceKind,
    /// MIME type.
    pub content_type: String,
    /// Capture time.
    #[serde(with = "bl_proto::time::millis")]
    pub captured_at: DateTime<Utc>,
    /// When the gateway stored it.
    #[serde(with = "bl_proto::time::millis")]
    pub stored_at: DateTime<Utc>,
    /// The edge's device signature (base64url) over the evidence signing payload.
    pub edge_signature: String,
    /// The edge's registered public key at export time (base64url); `null` if no longer registered.
    /// For a gateway-made blob: the gateway's key (`gateway.pub`).
    pub edge_public_key: Option<String>,
    /// Whose key made `edgeSignature`: absent for the edge, `"gateway"` for evidence the gateway
    /// made itself (talk recordings), whose signature verifies with `gateway.pub`.
    #[serde(default, skip_serializing_if = "Signer::is_edge")]
    pub signer: Signer,
}

impl ManifestBlob {
    /// The signed metadata this entry describes.
    pub fn meta(&self) -> EvidenceMeta {
        EvidenceMeta {
            sha256: self.sha256.clone(),
            size: self.size,
            edge_id: self.edge_id.clone(),
            camera_id: self.camera_id.clone(),
            kind: self.kind,
            content_type: self.content_type.clone(),
            captured_at: self.captured_at,
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The case id (free text, 1-128 characters, no control characters).
    pub case: String,
    /// Who asks (same rule).
    pub created_by: String,
    /// The blobs; duplicates are exported once.
    pub blobs: Vec<Sha256Hex>,
    /// A folder that does not exist yet or is empty.
    pub out: PathBuf,
}

/// Why an export failed. A failed export may leave a partial folder; it has no `manifest.sig`.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A text field breaks the rule.
    #[error("{field} {detail}")]
    BadField {
        /// `case` or `created by`.
        field: &'static str,
        /// What is wrong.
        detail: &'static str,
    },
    /// Nothing to export.
    #[error("no blobs given: name at least one with --blob SHA256")]
    NoBlobs,
    /// The output folder is in use.
    #[error("{0} exists and is not empty; choose a new folder")]
    OutNotEmpty(PathBuf),
    /// A blob is not in the store.
    #[error("evidence {0} is not stored on this gateway")]
    NotStored(Sha256Hex),
    /// A stored blob no longer hashes to its name.
    #[error("stored evidence {sha256} is damaged: its bytes hash to {actual}; it was not exported")]
    Damaged {
        /// The blob.
        sha256: Sha256Hex,
        /// What its bytes hash to now.
        actual: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the export failed.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes an export of `request.blobs` signed by `signer`; returns its manifest.
pub async fn export(
    store: &dyn EvidenceStore,
    keys: &dyn EdgeKeys,
    signer: &PrivateKey,
    node: &GatewayNodeId,
    request: ExportRequest,
    now: DateTime<Utc>,
) -> Result<Manifest, ExportError> {
    check_text("case", &request.case)?;
    check_text("created by", &request.created_by)?;
    let mut seen = BTreeSet::new();
    let wanted: Vec<_> = request
        .blobs
        .into_iter()
        .filter(|s| seen.insert(s.clone()))
        .collect();
    if wanted.is_empty() {
        return Err(ExportError::NoBlobs);
    }
    let mut records = Vec::with_capacity(wanted.len());
    for sha in &wanted {
        let stored = store
            .get(sha)
            .await?
            .ok_or_else(|| ExportError::NotStored(sha.clone()))?;
        records.push(stored);
    }
    prepare_out(&request.out).await?;
    tokio::fs::create_dir_all(request.out.join("blobs")).await?;

    let mut blobs = Vec::with_capacity(records.len());
    for stored in records {
        let m = &stored.meta;
        let file = format!("blobs/{}.{}", m.sha256, extension(&m.content_type));
        copy_blob(store, &m.sha256, m.size, &request.out.join(&file)).await?;
        // Evidence the gateway made carries the gateway's own signature: its key is this one.
        let edge_public_key = match stored.signer {
            Signer::Gateway => Some(keyfile::encode_public(&signer.public())),
            Signer::Edge => keys
                .key(&m.edge_id)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?
                .map(|k| keyfile::encode_public(&k)),
        };
        blobs.push(ManifestBlob {
            file,
            sha256: m.sha256.clone(),
            size: m.size,
            edge_id: m.edge_id.clone(),
            camera_id: m.camera_id.clone(),
            kind: m.kind,
            content_type: m.content_type.clone(),
            captured_at: m.captured_at,
            stored_at: stored.stored_at,
            edge_signature: stored.signature.clone(),
            edge_public_key,
            signer: stored.signer,
        });
    }
    let cameras: BTreeSet<_> = blobs.iter().map(|b| b.camera_id.clone()).collect();
    let time_range = blobs
        .iter()
        .map(|b| b.captured_at)
        .min()
        .zip(blobs.iter().map(|b| b.captured_at).max())
        .map(|(from, to)| TimeRange { from, to });
    let public_key = keyfile::encode_public(&signer.public());
    let manifest = Manifest {
        format: FORMAT.into(),
        v: 1,
        case: request.case,
        created_by: request.created_by,
        created_at: bl_proto::time::to_millis(now),
        tool: Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        gateway: GatewayInfo {
            node: node.clone(),
            public_key: public_key.clone(),
        },
        cameras: cameras.into_iter().collect(),
        time_range,
        blobs,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    let signature = signer.signing_key().sign(&signed_payload(&json));
    write_synced(
        &request.out.join(GATEWAY_PUB),
        format!("{public_key}\n").as_bytes(),
    )
    .await?;
    write_synced(&request.out.join(MANIFEST), &json).await?;
    // The signature goes last: an export with a manifest.sig is complete.
    let sig = format!("{}\n", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    write_synced(&request.out.join(SIGNATURE), sig.as_bytes()).await?;
    std::fs::File::open(&request.out)?.sync_all()?;
    Ok(manifest)
}

/// The bytes the gateway signs for a manifest.
pub fn signed_payload(manifest_json: &[u8]) -> Vec<u8> {
    let mut out = EXPORT_DOMAIN.as_bytes().to_vec();
    out.extend_from_slice(manifest_json);
    out
}

/// File extension for a content type; `bin` when unknown.
pub fn extension(content_type: &str) -> &'static str {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    match essence.to_ascii_lowercase().as_str() {
        "video/mp4" => "mp4",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/webm" => "webm",
        "audio/wav" | "audio/x-wav" => "wav",
        "audio/mp4" | "audio/aac" => "m4a",
        _ => "bin",
    }
}

fn check_text(field: &'static str, value: &str) -> Result<(), ExportError> {
    let detail = if value.trim().is_empty() {
        "must not be empty"
    } else if value.chars().count() > 128 {
        "must be at most 128 characters"
    } else if value.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(ExportError::BadField { field, detail })
}

async fn prepare_out(out: &Path) -> Result<(), ExportError> {
    match tokio::fs::read_dir(out).await {
        Ok(mut entries) => {
            if entries.next_entry().await?.is_some() {
                return Err(ExportError::OutNotEmpty(out.to_owned()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(tokio::fs::create_dir_all(out).await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Copies a stored blob, hashing it on the way: a damaged blob is refused, never exported.
async fn copy_blob(
    store: &dyn EvidenceStore,
    sha: &Sha256Hex,
    size: u64,
    to: &Path,
) -> Result<(), ExportError> {
    let mut stream = store.read(sha, 0..size).await?;
    let mut file = tokio::fs::File::create_new(to).await?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    file.sync_all().await?;
    let actual = hex::encode(hasher.finalize());
    if actual != sha.as_str() {
        drop(file);
        tokio::fs::remove_file(to).await?;
        return Err(ExportError::Damaged {
            sha256: sha.clone(),
            actual,
        });
    }
    Ok(())
}

async fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = tokio::fs::File::create_new(path).await?;
    file.write_all(bytes).await?;
    file.flush().await?;
    file.sync_all().await
}
