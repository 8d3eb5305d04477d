//! Media tokens (DESIGN §3.3): dispatch decides who may watch or talk and signs a short-lived token;
//! the gateway only verifies it.
//!
//! Format: `base64url(claims JSON) "." base64url(Ed25519 signature over the first part's ASCII)`,
//! unpadded. The signature is checked before the claims are parsed, so the JSON parser only ever sees
//! bytes dispatch wrote. A token carries ids only, never camera credentials.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::decode::Violation;
use crate::id::{CameraId, GatewayNodeId};
use crate::stream::Stream;

/// Tokens longer than this are refused unread; real ones are about 400 characters.
pub const MAX_TOKEN_LEN: usize = 4096;

/// How far a token's `iat` may lie in the verifier's future: dispatch's and the gateway's clocks differ
/// a little, and a fresh token must not bounce for that.
pub const CLOCK_SKEW_SECS: i64 = 30;

/// What a media token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MediaAction {
    /// Watch live video (WHEP).
    View,
    /// Send voice to the premises (WHIP), or pull it (an edge answering `startTalk`).
    Talk,
    /// Start or export a recording.
    Record,
    /// Push live video into the gateway (RTSP RECORD by an edge answering `startLive`). Its own
    /// action so that a viewer's token can never feed video to other viewers.
    Push,
    /// Join a consult room or an incident's voice channel (`/rooms/{room}` on the gateway): send
    /// one's microphone and camera, receive the others'. The token's `camera` field names the room.
    Room,
}

/// The signed content of a media token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaClaims {
    /// Subject: the user id (or `edge:{id}` for an edge pushing on command).
    pub sub: String,
    /// The one camera this token is for.
    pub camera: CameraId,
    /// What it allows.
    pub action: MediaAction,
    /// The gateway node that must accept it (the one owning the camera).
    pub node: GatewayNodeId,
    /// Which stream, when it matters (`view`).
    #[serde(default)]
    pub stream: Option<Stream>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds (exclusive).
    pub exp: i64,
    /// Unique token id, for the audit log and replay tracking.
    pub jti: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not two base64url parts, too long, or (after a good signature) claims that do not parse.
    #[error("media token is malformed: {0}")]
    Malformed(&'static str),
    /// The signature does not match: tampered, or signed by another key.
    #[error("media token signature does not verify")]
    BadSignature,
    /// Past its expiry.
    #[error("media token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// Issued in the future beyond [`CLOCK_SKEW_SECS`].
    #[error("media token is not valid yet: issued at {iat}, now {now}")]
    NotYetValid {
        /// The token's `iat`.
        iat: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// Valid, but for another camera.
    #[error("media token is for camera {token}, not {requested}")]
    WrongCamera {
        /// Camera in the token.
        token: CameraId,
        /// Camera requested.
        requested: CameraId,
    },
    /// Valid, but allows another action.
    #[error("media token allows {token:?}, not {requested:?}")]
    WrongAction {
        /// Action in the token.
        token: MediaAction,
        /// Action requested.
        requested: MediaAction,
    },
    /// Valid, but for another gateway node.
    #[error("media token is for gateway node {token}, not {requested}")]
    WrongNode {
        /// Node in the token.
        token: GatewayNodeId,
        /// This node.
        requested: GatewayNodeId,
    },
}

impl MediaClaims {
    /// Checks that a verified token covers this request; the caller supplies what is being asked.
    pub fn permits(
        &self,
        camera: &CameraId,
        action: MediaAction,
        node: &GatewayNodeId,
    ) -> Result<(), TokenError> {
        if &self.camera != camera {
            return Err(TokenError::WrongCamera {
                token: self.camera.clone(),
                requested: camera.clone(),
            });
        }
        if self.action != action {
            return Err(TokenError::WrongAction {
                token: self.action,
                requested: action,
            });
        }
        if &self.node != node {
            return Err(TokenError::WrongNode {
                token: self.node.clone(),
                requested: node.clone(),
            });
        }
        Ok(())
    }
}

/// Signs `claims` with dispatch's token key.
pub fn sign(claims: &MediaClaims, key: &SigningKey) -> String {
    sign_claims(claims, key)
}

/// Verifies a token at `now_unix` (seconds): shape, then signature, then claims, then times.
pub fn verify(token: &str, key: &VerifyingKey, now_unix: i64) -> Result<MediaClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("longer than 4096 characters"));
    }
    let claims: MediaClaims = serde_json::from_slice(&signed_body(token, key)?)
        .map_err(|_| TokenError::Malformed("claims are not valid JSON claims"))?;
    check_times(claims.iat, claims.exp, now_unix)?;
    Ok(claims)
}

/// A grant dispatch signs for one gateway node, in the media token's form but with claims of its
/// own (`deny_unknown_fields`, so no grant parses as another): broadcast, floor and clip grants.
pub(crate) trait NodeGrant: serde::de::DeserializeOwned {
    /// Said when a token's claims are not this grant's.
    const NOT_THESE_CLAIMS: &'static str;
    /// Tokens longer than this are refused unread, and what is said then.
    const MAX_LEN: (usize, &'static str) = (MAX_TOKEN_LEN, "longer than 4096 characters");
    fn node(&self) -> &GatewayNodeId;
    /// `(iat, exp)`, Unix seconds.
    fn times(&self) -> (i64, i64);
    /// The grant's own rules on its claims (e.g. how many cameras a broadcast names).
    fn check(&self) -> Result<(), TokenError> {
        Ok(())
    }
}

/// Verifies a [`NodeGrant`] at `now_unix` (seconds): length, signature, claims, the grant's own
/// rules, times, and that it is for `node`.
pub(crate) fn verify_grant<G: NodeGrant>(
    token: &str,
    key: &VerifyingKey,
    node: &GatewayNodeId,
    now_unix: i64,
) -> Result<G, TokenError> {
    if token.len() > G::MAX_LEN.0 {
        return Err(TokenError::Malformed(G::MAX_LEN.1));
    }
    let claims: G = serde_json::from_slice(&signed_body(token, key)?)
        .map_err(|_| TokenError::Malformed(G::NOT_THESE_CLAIMS))?;
    claims.check()?;
    let (iat, exp) = claims.times();
    check_times(iat, exp, now_unix)?;
    if claims.node() != node {
        return Err(TokenError::WrongNode {
            token: claims.node().clone(),
            requested: node.clone(),
        });
    }
    Ok(claims)
}

/// `base64url(JSON claims).base64url(Ed25519 signature of the first part)`: the one token form
/// dispatch signs (media tokens and every [`NodeGrant`]; their claims never parse as each other).
pub(crate) fn sign_claims(claims: &impl Serialize, key: &SigningKey) -> String {
    let json = serde_json::to_vec(claims).expect("token claims always serialise");
    let body = URL_SAFE_NO_PAD.encode(json);
    let sig = key.sign(body.as_bytes());
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// The claims' JSON of a token of [`sign_claims`]'s form, once its shape and signature check out.
pub(crate) fn signed_body(token: &str, key: &VerifyingKey) -> Result<Vec<u8>, TokenError> {
    let (body, sig) = token
        .split_once('.')
        .ok_or(TokenError::Malformed("expected two parts separated by '.'"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| TokenError::Malformed("signature is not 64 bytes"))?;
    key.verify_strict(body.as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| TokenError::BadSignature)?;
    URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| TokenError::Malformed("claims are not base64url"))
}

/// A token's validity window at `now_unix`, with [`CLOCK_SKEW_SECS`] of grace for `iat`.
pub(crate) fn check_times(iat: i64, exp: i64, now_unix: i64) -> Result<(), TokenError> {
    if exp <= iat {
        return Err(TokenError::Malformed("exp is not after iat"));
    }
    if now_unix >= exp {
        return Err(TokenError::Expired { exp, now: now_unix });
    }
    if iat > now_unix.saturating_add(CLOCK_SKEW_SECS) {
        return Err(TokenError::NotYetValid { iat, now: now_unix });
    }
    Ok(())
}

/// A media token as carried inside commands (`startLive`, `startTalk`): a string whose `Debug` is
/// redacted, because a live token in a log line is a working credential until it expires.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MediaToken(String);

impl MediaToken {
    /// Wraps a token string (from [`sign`]).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token, to hand to the gateway.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Basic shape check used when a command is decoded (the gateway does the real verification).
    pub(crate) fn validate(&self, path: &str) -> Result<(), Violation> {
        let ok = !self.0.is_empty()
            && self.0.len() <= MAX_TOKEN_LEN
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(())
        } else {
            Err(Violation::new(
                path,
                "is not a media token (base64url parts joined by '.')",
            ))
        }
    }
}

impl From<String> for MediaToken {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Debug for MediaToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MediaToken(<redacted>)")
    }
}

impl JsonSchema for MediaToken {
    fn schema_name() -> Cow<'static, str> {
        "MediaToken".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A media token: base64url(claims JSON) '.' base64url(Ed25519 signature).",
            "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$",
            "maxLength": MAX_TOKEN_LEN,
        })
    }
}
