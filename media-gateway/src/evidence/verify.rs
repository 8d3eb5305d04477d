//! Offline verification of an export: no server, no config, only the folder (and optionally the
//! gateway key the checker trusts). Every mismatch is named with the file it concerns.
//!
//! Checks: `manifest.sig` verifies over `manifest.json` with `gateway.pub`; `gateway.pub` is the key
//! the manifest names (and the trusted key, if one is given); each listed file exists, has the listed
//! size and SHA-256; each edge signature verifies with the edge key in the manifest; no other file
//! is present.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bl_proto::VerifyingKey;
use ed25519_dalek::Signature;

use super::Signer;
use super::export::{self, GATEWAY_PUB, MANIFEST, Manifest, SIGNATURE};
use crate::durable::{hash_file, list_files};
use crate::keyfile;

/// One thing that does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A file the export needs is absent.
    MissingFile(String),
    /// A file's size or SHA-256 differs from the manifest.
    AlteredFile {
        /// The file.
        file: String,
        /// What differs.
        detail: String,
    },
    /// A file the manifest does not list.
    ExtraFile(String),
    /// `manifest.json` is not what the gateway signed (or `manifest.sig` is garbled).
    BadManifestSignature(String),
    /// `manifest.json` cannot be read as a manifest.
    UnreadableManifest(String),
    /// `gateway.pub` is not the key the manifest names, or not the trusted key.
    GatewayKey(String),
    /// An edge signature does not verify.
    BadEdgeSignature {
        /// The blob's file.
        file: String,
        /// Why.
        detail: String,
    },
    /// The signature of a blob the gateway made (a talk recording) does not verify with
    /// `gateway.pub`.
    BadGatewaySignature {
        /// The blob's file.
        file: String,
        /// Why.
        detail: String,
    },
    /// A listed file name that could escape the export folder.
    UnsafePath(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingFile(file) => write!(f, "missing file: {file}"),
            Problem::AlteredFile { file, detail } => write!(f, "altered file: {file}: {detail}"),
            Problem::ExtraFile(file) => write!(f, "extra file: {file} is not in the manifest"),
            Problem::BadManifestSignature(d) => write!(f, "bad signature: {MANIFEST}: {d}"),
            Problem::UnreadableManifest(d) => write!(f, "unreadable manifest: {MANIFEST}: {d}"),
            Problem::GatewayKey(d) => write!(f, "gateway key: {GATEWAY_PUB}: {d}"),
            Problem::BadEdgeSignature { file, detail } => {
                write!(f, "bad edge signature: {file}: {detail}")
            }
            Problem::BadGatewaySignature { file, detail } => {
                write!(f, "bad gateway signature: {file}: {detail}")
            }
            Problem::UnsafePath(file) => write!(f, "unsafe file name in manifest: {file:?}"),
        }
    }
}

/// The result of a verification.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// What does not match; empty means the export is intact.
    pub problems: Vec<Problem>,
    /// Facts worth printing (the signing key, unchecked edge signatures).
    pub notes: Vec<String>,
    /// Blobs whose bytes and size matched.
    pub blobs_ok: usize,
}

impl Report {
    /// True when nothing mismatched.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the export in `dir`; `trusted` pins the gateway key the checker expects.
pub fn verify(dir: &Path, trusted: Option<&VerifyingKey>) -> Report {
    let mut report = Report::default();
    let problems = &mut report.problems;
    let json = read(dir, MANIFEST, problems);
    let sig = read(dir, SIGNATURE, problems);
    let public = read(dir, GATEWAY_PUB, problems).and_then(|text| {
        match keyfile::parse_public(&String::from_utf8_lossy(&text)) {
            Ok(k) => Some(k),
            Err(e) => {
                problems.push(Problem::GatewayKey(e.to_string()));
                None
            }
        }
    });
    if let Some(key) = &public {
        report.notes.push(format!(
            "signed by gateway key {}",
            keyfile::encode_public(key)
        ));
        if trusted.is_some_and(|t| t != key) {
            problems.push(Problem::GatewayKey(
                "is not the trusted gateway key given with --gateway-key".into(),
            ));
        }
    }
    if let (Some(json), Some(sig), Some(key)) = (&json, &sig, &public)
        && let Err(d) = check_signature(json, sig, key)
    {
        problems.push(Problem::BadManifestSignature(d));
    }
    let Some(json) = json else {
        return report;
    };
    let manifest: Manifest = match serde_json::from_slice(&json) {
        Ok(m) => m,
        Err(e) => {
            problems.push(Problem::UnreadableManifest(e.to_string()));
            return report;
        }
    };
    if let Some(key) = &public
        && manifest.gateway.public_key != keyfile::encode_public(key)
    {
        problems.push(Problem::GatewayKey(
            "differs from gateway.publicKey in the manifest".into(),
        ));
    }
    let mut expected: BTreeSet<String> =
        [MANIFEST, SIGNATURE, GATEWAY_PUB].map(String::from).into();
    for blob in &manifest.blobs {
        if !safe_name(&blob.file) {
            problems.push(Problem::UnsafePath(blob.file.clone()));
            continue;
        }
        expected.insert(blob.file.clone());
        match hash_file(&dir.join(&blob.file)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(Problem::MissingFile(blob.file.clone()));
            }
            Err(e) => problems.push(Problem::AlteredFile {
                file: blob.file.clone(),
                detail: format!("cannot be read: {e}"),
            }),
            Ok((size, sha)) => {
                let mut wrong = Vec::new();
                if size != blob.size {
                    wrong.push(format!("size is {size}, manifest says {}", blob.size));
                }
                if sha != blob.sha256.as_str() {
                    wrong.push(format!("sha256 is {sha}, manifest says {}", blob.sha256));
                }
                if wrong.is_empty() {
                    report.blobs_ok += 1;
                } else {
                    problems.push(Problem::AlteredFile {
                        file: blob.file.clone(),
                        detail: wrong.join("; "),
                    });
                }
            }
        }
        if blob.signer == Signer::Gateway {
            // Gateway-made evidence is signed by the gateway key that signed the manifest.
            let checked = match &public {
                None => Err("gateway.pub is missing or unreadable".to_owned()),
                Some(key) => bl_proto::evidence::verify(&blob.meta(), &blob.edge_signature, key)
                    .map_err(|e| e.to_string()),
            };
            if let Err(detail) = checked {
                problems.push(Problem::BadGatewaySignature {
                    file: blob.file.clone(),
                    detail,
                });
            }
            continue;
        }
        match &blob.edge_public_key {
            None => report.notes.push(format!(
                "{}: edge {} key not in the manifest, edge signature not checked",
                blob.file, blob.edge_id
            )),
            Some(text) => {
                let checked = keyfile::parse_public(text)
                    .map_err(|e| format!("edge key {e}"))
                    .and_then(|key| {
                        bl_proto::evidence::verify(&blob.meta(), &blob.edge_signature, &key)
                            .map_err(|e| e.to_string())
                    });
                if let Err(detail) = checked {
                    problems.push(Problem::BadEdgeSignature {
                        file: blob.file.clone(),
                        detail: format!("edge {}: {detail}", blob.edge_id),
                    });
                }
            }
        }
    }
    for file in list_files(dir) {
        if !expected.contains(&file) {
            problems.push(Problem::ExtraFile(file));
        }
    }
    report
}

fn read(dir: &Path, name: &str, problems: &mut Vec<Problem>) -> Option<Vec<u8>> {
    match std::fs::read(dir.join(name)) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problems.push(Problem::MissingFile(name.into()));
            None
        }
        Err(e) => {
            problems.push(Problem::AlteredFile {
                file: name.into(),
                detail: format!("cannot be read: {e}"),
            });
            None
        }
    }
}

fn check_signature(json: &[u8], sig: &[u8], key: &VerifyingKey) -> Result<(), String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(String::from_utf8_lossy(sig).trim())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or_else(|| format!("{SIGNATURE} is not a base64url Ed25519 signature"))?;
    key.verify_strict(
        &export::signed_payload(json),
        &Signature::from_bytes(&bytes),
    )
    .map_err(|_| "does not match manifest.sig and gateway.pub: the manifest was changed".into())
}

/// `blobs/` followed by a plain file name: no `..`, no absolute path, no hidden file.
fn safe_name(file: &str) -> bool {
    file.strip_prefix("blobs/").is_some_and(|name| {
        !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_under_blobs_are_accepted_from_a_manifest() {
        assert!(safe_name(&format!("blobs/{}.mp4", "a".repeat(64))));
        for bad in [
            "manifest.json",
            "blobs/",
            "blobs/../x",
            "blobs/a/b",
            "/etc/passwd",
            "blobs/.x",
        ] {
            assert!(!safe_name(bad), "{bad}");
        }
    }
}
