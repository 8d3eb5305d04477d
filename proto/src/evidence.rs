//! Evidence blobs (DESIGN §3.2): content hashes, references from events, and the signed upload
//! `PUT /evidence/{sha256}` from an edge to the gateway.
//!
//! The edge signs [`signing_payload`] of an [`EvidenceMeta`] with its device key (registered at
//! enrolment); the gateway rebuilds the same bytes from the URL and headers, checks the body's hash and
//! the signature, and only then stores the blob. Any field changed in transit breaks the signature.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::check;
use crate::decode::Violation;
use crate::id::{CameraId, EdgeId};

/// Header naming the uploading edge.
pub const HEADER_EDGE: &str = "X-Bl-Edge";
/// Header naming the camera the evidence comes from.
pub const HEADER_CAMERA: &str = "X-Bl-Camera";
/// Header with the [`EvidenceKind`] (`clip`, `snapshot`, `audio`).
pub const HEADER_KIND: &str = "X-Bl-Kind";
/// Header with the capture time (RFC 3339, milliseconds, UTC).
pub const HEADER_CAPTURED_AT: &str = "X-Bl-Captured-At";
/// Header with the base64url Ed25519 signature over [`signing_payload`].
pub const HEADER_SIGNATURE: &str = "X-Bl-Signature";
/// The standard header carrying [`EvidenceMeta::content_type`].
pub const HEADER_CONTENT_TYPE: &str = "Content-Type";

/// Domain tag that starts every signed evidence payload, so a device signature over evidence can never
/// be replayed as a signature over anything else.
pub const SIGNING_DOMAIN: &str = "brightline-evidence-v1\n";

/// Lowercase hex SHA-256 of `bytes`: the content address of a blob.
pub fn sha256_hex(bytes: &[u8]) -> Sha256Hex {
    Sha256Hex(hex::encode(Sha256::digest(bytes)))
}

/// A SHA-256 digest as exactly 64 lowercase hex characters; safe as a file name and URL segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Hex(String);

/// A string that is not 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid sha256 {value:?}: expected 64 lowercase hex characters (0-9, a-f)")]
pub struct Sha256Error {
    /// The rejected value (cut to 80 characters).
    pub value: String,
}

impl Sha256Hex {
    /// Validates and wraps a hex digest.
    pub fn new(value: impl Into<String>) -> Result<Self, Sha256Error> {
        let value = value.into();
        let ok = value.len() == 64
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(Self(value))
        } else {
            Err(Sha256Error {
                value: value.chars().take(80).collect(),
            })
        }
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Two-character fan-out prefix for content-addressed directories (`ab/abcdef…`).
    pub fn shard(&self) -> &str {
        &self.0[..2]
    }
}

impl FromStr for Sha256Hex {
    type Err = Sha256Error;
    fn from_str(s: &str) -> Result<Self, Sha256Error> {
        Self::new(s)
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Sha256Hex {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Sha256Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sha256Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Sha256Hex {
    fn schema_name() -> Cow<'static, str> {
        "Sha256Hex".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "SHA-256 digest as 64 lowercase hex characters.",
            "pattern": "^[0-9a-f]{64}$",
        })
    }
}

/// A reference from a message to a blob that is (or will soon be) in the evidence store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlobRef {
    /// Content address of the blob.
    pub sha256: Sha256Hex,
    /// Size in bytes.
    pub size: u64,
    /// MIME type, e.g. `video/mp4`, `image/jpeg`.
    pub content_type: String,
    /// Start of the media time range covered (clips, audio); `null` for a snapshot.
    #[serde(default, with = "crate::time::millis_opt")]
    #[schemars(with = "Option<DateTime<Utc>>")]
    pub from: Option<DateTime<Utc>>,
    /// End of the media time range covered; `null` for a snapshot.
    #[serde(default, with = "crate::time::millis_opt")]
    #[schemars(with = "Option<DateTime<Utc>>")]
    pub to: Option<DateTime<Utc>>,
}

impl BlobRef {
    /// Checks the content type and that the time range is not reversed.
    pub fn validate(&self) -> Result<(), Violation> {
        check::text("contentType", &self.content_type, 127)?;
        if let (Some(from), Some(to)) = (self.from, self.to)
            && to < from
        {
            return Err(Violation::new("to", "is before `from`"));
        }
        Ok(())
    }
}

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EvidenceKind {
    /// A video clip (pre-roll + episode + post-roll), MP4.
    Clip,
    /// A still image, JPEG.
    Snapshot,
    /// An audio recording (talk-down, intercom).
    Audio,
}

impl EvidenceKind {
    /// The wire name, as in the `X-Bl-Kind` header.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Clip => "clip",
            EvidenceKind::Snapshot => "snapshot",
            EvidenceKind::Audio => "audio",
        }
    }
}

impl FromStr for EvidenceKind {
    type Err = EvidenceError;
    fn from_str(s: &str) -> Result<Self, EvidenceError> {
        match s {
            "clip" => Ok(EvidenceKind::Clip),
            "snapshot" => Ok(EvidenceKind::Snapshot),
            "audio" => Ok(EvidenceKind::Audio),
            _ => Err(bad_header(
                HEADER_KIND,
                format_args!(
                    "{:?} is not one of clip, snapshot, audio",
                    s.chars().take(80).collect::<String>()
                ),
            )),
        }
    }
}

/// Everything the device signature covers about one uploaded blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceMeta {
    /// Content address; the `{sha256}` of the URL, checked against the body.
    pub sha256: Sha256Hex,
    /// Body size in bytes (`Content-Length`).
    pub size: u64,
    /// The uploading edge; must be the owner of the verifying key.
    pub edge_id: EdgeId,
    /// The camera that captured it.
    pub camera_id: CameraId,
    /// Clip, snapshot or audio.
    pub kind: EvidenceKind,
    /// MIME type of the body.
    pub content_type: String,
    /// When the capture started (UTC, milliseconds).
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "DateTime<Utc>")]
    pub captured_at: DateTime<Utc>,
}

/// Why upload headers could not be read or a signature not checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// A required header is absent.
    #[error("evidence upload is missing the {0} header")]
    MissingHeader(&'static str),
    /// A header is present but its value is unusable.
    #[error("evidence upload header {header} is invalid: {detail}")]
    BadHeader {
        /// The header name.
        header: &'static str,
        /// What is wrong with its value.
        detail: String,
    },
    /// The `{sha256}` in the URL is not a digest.
    #[error("evidence upload path: {0}")]
    BadSha256(#[from] Sha256Error),
    /// The signature is malformed or does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// Why a device signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not base64url, or not 64 bytes.
    #[error("evidence signature is malformed: expected 64 bytes in unpadded base64url")]
    Malformed,
    /// Well-formed but made by another key or over other fields.
    #[error("evidence signature does not match the edge's device key and these fields")]
    BadSignature,
}

impl EvidenceMeta {
    /// Checks the content type (it is signed and sent as a header, so it must be plain text).
    pub fn validate(&self) -> Result<(), Violation> {
        check::text("contentType", &self.content_type, 127)?;
        if !self.content_type.is_ascii() {
            return Err(Violation::new("contentType", "must be ASCII"));
        }
        Ok(())
    }

    /// The upload headers, in a fixed order, including the signature.
    pub fn headers(&self, signature: &str) -> Vec<(&'static str, String)> {
        vec![
            (HEADER_EDGE, self.edge_id.to_string()),
            (HEADER_CAMERA, self.camera_id.to_string()),
            (HEADER_KIND, self.kind.as_str().to_string()),
            (HEADER_CAPTURED_AT, crate::time::format(&self.captured_at)),
            (HEADER_CONTENT_TYPE, self.content_type.clone()),
            (HEADER_SIGNATURE, signature.to_string()),
        ]
    }

    /// Rebuilds the metadata on the gateway from the URL's `{sha256}`, the body size and a header
    /// lookup (case-insensitive lookups are the caller's HTTP library's job). Returns it with the
    /// signature header value, ready for [`verify`].
    pub fn from_headers<'a>(
        sha256: &str,
        size: u64,
        header: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<(EvidenceMeta, &'a str), EvidenceError> {
        let get = |name: &'static str| header(name).ok_or(EvidenceError::MissingHeader(name));
        let meta = EvidenceMeta {
            sha256: Sha256Hex::new(sha256)?,
            size,
            edge_id: EdgeId::new(get(HEADER_EDGE)?).map_err(|e| bad_header(HEADER_EDGE, e))?,
            camera_id: CameraId::new(get(HEADER_CAMERA)?)
                .map_err(|e| bad_header(HEADER_CAMERA, e))?,
            kind: get(HEADER_KIND)?.parse()?,
            content_type: get(HEADER_CONTENT_TYPE)?.to_string(),
            captured_at: crate::time::parse(get(HEADER_CAPTURED_AT)?)
                .map_err(|e| bad_header(HEADER_CAPTURED_AT, e))?,
        };
        meta.validate()
            .map_err(|v| bad_header(HEADER_CONTENT_TYPE, v.detail))?;
        Ok((meta, get(HEADER_SIGNATURE)?))
    }
}

fn bad_header(header: &'static str, detail: impl fmt::Display) -> EvidenceError {
    EvidenceError::BadHeader {
        header,
        detail: detail.to_string(),
    }
}

/// The exact bytes the device key signs: [`SIGNING_DOMAIN`] followed by a compact JSON array of the
/// fields in a fixed order. JSON string escaping makes the encoding unambiguous whatever a field holds.
pub fn signing_payload(meta: &EvidenceMeta) -> Vec<u8> {
    let fields = serde_json::json!([
        meta.sha256.as_str(),
        meta.size,
        meta.edge_id.as_str(),
        meta.camera_id.as_str(),
        meta.kind.as_str(),
        meta.content_type,
        crate::time::format(&meta.captured_at),
    ]);
    let mut out = SIGNING_DOMAIN.as_bytes().to_vec();
    out.extend_from_slice(fields.to_string().as_bytes());
    out
}

/// Signs `meta` with an edge's device key; the result goes in the `X-Bl-Signature` header.
pub fn sign(meta: &EvidenceMeta, key: &SigningKey) -> String {
    URL_SAFE_NO_PAD.encode(key.sign(&signing_payload(meta)).to_bytes())
}

/// Checks an `X-Bl-Signature` value against `meta` and the edge's registered key.
pub fn verify(
    meta: &EvidenceMeta,
    signature: &str,
    key: &VerifyingKey,
) -> Result<(), SignatureError> {
    // A valid signature is 86 characters; refuse anything much longer before decoding it.
    if signature.len() > 128 {
        return Err(SignatureError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| SignatureError::Malformed)?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| SignatureError::Malformed)?;
    key.verify_strict(&signing_payload(meta), &Signature::from_bytes(&bytes))
        .map_err(|_| SignatureError::BadSignature)
}
