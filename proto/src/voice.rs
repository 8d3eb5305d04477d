//! The center's automatic voice warnings for one edge (issue 7 item 4), carried in
//! [`crate::config::EdgeConfig`]'s `warnings`, and the signed request with which the edge downloads
//! a recorded message's audio from dispatch.
//!
//! A message is a text (the box speaks it with espeak-ng, Mandarin) or a WAV file named by its
//! SHA-256 and size: the edge fetches `GET {center}/api/edge-voice/{sha256}` once, signed with its
//! device key ([`sign_fetch`]), checks hash and size, and keeps it in its cache by hash.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check;
use crate::config::HoursRange;
use crate::decode::Violation;
use crate::event::ViolationKind;
use crate::evidence::Sha256Hex;
use crate::id::{CameraId, EdgeId};

/// Longest text a box synthesises, bytes.
pub const MAX_TEXT_BYTES: usize = 1000;

/// Largest audio file a box downloads, bytes (60 s of 48 kHz 16-bit stereo fits).
pub const MAX_AUDIO_BYTES: u64 = 16 * 1024 * 1024;

/// The path under dispatch's base URL from which an edge downloads message audio by hash.
pub const FETCH_PATH: &str = "/api/edge-voice";

/// Header carrying the signing time of a fetch (UTC milliseconds since the epoch).
pub const HEADER_AT: &str = "X-Bl-At";

/// A fetch signed longer ago (or further ahead) than this is refused, seconds.
pub const FETCH_MAX_SKEW_SECS: i64 = 300;

/// Domain tag of a fetch signature, so it can never pass for an evidence signature or the reverse.
pub const FETCH_DOMAIN: &str = "brightline-voice-fetch-v1\n";

/// The center's warnings for one edge: the rules for its cameras and the messages they name.
/// Whole each time; empty (the default) leaves the box with its own `[talk]` rules only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WarningSet {
    /// The messages the rules name. Default empty.
    #[serde(default)]
    pub messages: Vec<VoiceMessage>,
    /// The rules. For a (camera, kind) named here the center's rule wins over the box's own.
    /// Default empty.
    #[serde(default)]
    pub rules: Vec<WarningRule>,
}

impl WarningSet {
    /// Whether the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.rules.is_empty()
    }
}

/// One stored voice message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoiceMessage {
    /// The message id (like `wear-hat-zh`); named by rules and by the edge's `warning` events.
    pub id: String,
    /// What is played.
    pub content: VoiceContent,
}

/// A text to synthesise on the box, or a recording to download.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum VoiceContent {
    /// Spoken by espeak-ng's Mandarin voice on the box.
    Text {
        /// The words, 1 to 1000 bytes.
        text: String,
    },
    /// A WAV file, fetched from the center by its hash.
    Audio {
        /// SHA-256 of the file.
        sha256: Sha256Hex,
        /// Its size in bytes (at most 16 MiB).
        size: u64,
    },
}

/// When to warn: an episode of `kind` starting on one of `cameras` within `activeHours`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WarningRule {
    /// The cameras (all of this edge) the rule is for; at least one.
    pub cameras: Vec<CameraId>,
    /// The violation.
    pub kind: ViolationKind,
    /// The message id to play (one of `messages`).
    pub message: String,
    /// Local hours in which it applies (the opening hours); `null` is all day.
    #[serde(default)]
    pub active_hours: Option<HoursRange>,
}

impl WarningSet {
    /// Checks ids, texts, sizes, that rules name listed messages and that a (camera, kind) has one
    /// rule; `at` prefixes the paths of the errors (`warnings`).
    pub fn validate(&self, at: &str) -> Result<(), Violation> {
        let mut ids = HashSet::new();
        for (i, m) in self.messages.iter().enumerate() {
            let path = |f: &str| format!("{at}.messages[{i}].{f}");
            crate::id::validate_id("message id", &m.id)
                .map_err(|e| Violation::new(path("id"), e.to_string()))?;
            if !ids.insert(m.id.as_str()) {
                return Err(Violation::new(
                    path("id"),
                    format!("{} is listed twice", m.id),
                ));
            }
            match &m.content {
                VoiceContent::Text { text } => {
                    check::text(&path("content.text"), text, MAX_TEXT_BYTES)?;
                }
                VoiceContent::Audio { size, .. } if *size == 0 || *size > MAX_AUDIO_BYTES => {
                    return Err(Violation::new(
                        path("content.size"),
                        format!("{size} is not 1 to {MAX_AUDIO_BYTES} bytes"),
                    ));
                }
                VoiceContent::Audio { .. } => {}
            }
        }
        let mut pairs = HashSet::new();
        for (r, rule) in self.rules.iter().enumerate() {
            let path = |f: &str| format!("{at}.rules[{r}].{f}");
            if !ids.contains(rule.message.as_str()) {
                return Err(Violation::new(
                    path("message"),
                    format!("{:?} is not one of the listed messages", rule.message),
                ));
            }
            if rule.cameras.is_empty() {
                return Err(Violation::new(path("cameras"), "names no camera"));
            }
            if let Some(h) = rule.active_hours
                && h.from == h.to
            {
                return Err(Violation::new(
                    path("activeHours"),
                    "`from` equals `to`; leave activeHours null for all day",
                ));
            }
            for camera in &rule.cameras {
                if !pairs.insert((camera, rule.kind)) {
                    return Err(Violation::new(
                        path("cameras"),
                        format!("{camera} has a second rule for {:?}", rule.kind),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The exact bytes an edge signs to fetch audio `sha256` at `at_ms`: [`FETCH_DOMAIN`] and a compact
/// JSON array of the fields.
pub fn fetch_payload(edge: &EdgeId, sha256: &Sha256Hex, at_ms: i64) -> Vec<u8> {
    let fields = serde_json::json!([edge.as_str(), sha256.as_str(), at_ms]);
    let mut out = FETCH_DOMAIN.as_bytes().to_vec();
    out.extend_from_slice(fields.to_string().as_bytes());
    out
}

/// Signs a fetch with the edge's device key; the result goes in `X-Bl-Signature`.
pub fn sign_fetch(edge: &EdgeId, sha256: &Sha256Hex, at_ms: i64, key: &SigningKey) -> String {
    URL_SAFE_NO_PAD.encode(key.sign(&fetch_payload(edge, sha256, at_ms)).to_bytes())
}

/// Why a fetch's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchRefused {
    /// Not 64 bytes of unpadded base64url.
    #[error("the fetch signature is malformed: expected 64 bytes in unpadded base64url")]
    Malformed,
    /// Signed too long ago or too far ahead.
    #[error(
        "the fetch was signed {0} s away from the center's clock (at most {FETCH_MAX_SKEW_SECS} s); check the box's clock"
    )]
    Skew(i64),
    /// Not made by the edge's registered device key over these fields.
    #[error("the fetch signature does not match the edge's device key and these fields")]
    BadSignature,
}

/// Checks a fetch's signature against the edge's registered key and its time against `now_ms`.
pub fn verify_fetch(
    edge: &EdgeId,
    sha256: &Sha256Hex,
    at_ms: i64,
    now_ms: i64,
    signature: &str,
    key: &VerifyingKey,
) -> Result<(), FetchRefused> {
    let skew = (now_ms - at_ms) / 1000;
    if skew.abs() > FETCH_MAX_SKEW_SECS {
        return Err(FetchRefused::Skew(skew));
    }
    if signature.len() > 128 {
        return Err(FetchRefused::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| FetchRefused::Malformed)?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| FetchRefused::Malformed)?;
    key.verify_strict(
        &fetch_payload(edge, sha256, at_ms),
        &Signature::from_bytes(&bytes),
    )
    .map_err(|_| FetchRefused::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha() -> Sha256Hex {
        crate::evidence::sha256_hex(b"RIFF")
    }

    #[test]
    fn a_fetch_signed_by_the_edge_now_verifies_and_any_change_is_refused() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let edge = EdgeId::new("box-1").unwrap();
        let now = 1_800_000_000_000;
        let sig = sign_fetch(&edge, &sha(), now, &key);
        let public = key.verifying_key();
        assert_eq!(
            verify_fetch(&edge, &sha(), now, now + 2_000, &sig, &public),
            Ok(())
        );
        let other = EdgeId::new("box-2").unwrap();
        assert_eq!(
            verify_fetch(&other, &sha(), now, now, &sig, &public),
            Err(FetchRefused::BadSignature)
        );
        let stale = now + (FETCH_MAX_SKEW_SECS + 1) * 1000;
        assert!(matches!(
            verify_fetch(&edge, &sha(), now, stale, &sig, &public),
            Err(FetchRefused::Skew(_))
        ));
        assert_eq!(
            verify_fetch(&edge, &sha(), now, now, "nope", &public),
            Err(FetchRefused::Malformed)
        );
    }
}
