//! Clip grants (issue 7, consult rooms): dispatch decides that an incident's evidence clip is
//! played into one of its rooms — or paused, resumed, stopped — and signs a short grant for that
//! one step, which the member's browser hands to the gateway. The gateway only verifies it, so
//! every step is dispatch's decision and in its audit log.
//!
//! Same format and key as [`crate::token`] media tokens, other claims (`deny_unknown_fields`, and
//! fields the other tokens lack), so no token stands in for another.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::evidence::Sha256Hex;
use crate::id::{CameraId, GatewayNodeId};
use crate::token::{NodeGrant, TokenError, sign_claims, verify_grant};

/// What a clip grant lets its holder do to the room's clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClipStep {
    /// Play `sha256` from its start (replacing any clip playing in the room).
    Play,
    /// Hold the clip where it is.
    Pause,
    /// Go on from where it was held.
    Resume,
    /// End it: the clip leaves the room.
    Stop,
}

/// The signed content of a clip grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClipClaims {
    /// Who shared it (`user:{username}`), shown to the room as `clip:{sha256}` by {sub}.
    pub sub: String,
    /// The gateway room.
    pub room: CameraId,
    /// The evidence blob (an MP4 clip in the gateway's evidence store).
    pub sha256: Sha256Hex,
    /// What to do.
    pub step: ClipStep,
    /// The gateway node that must accept it (the one owning the room).
    pub node: GatewayNodeId,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds (exclusive): a grant is for one step now, so short.
    pub exp: i64,
    /// Unique token id, for the audit log.
    pub jti: String,
}

/// Signs `claims` with dispatch's token key.
pub fn sign(claims: &ClipClaims, key: &SigningKey) -> String {
    sign_claims(claims, key)
}

impl NodeGrant for ClipClaims {
    const NOT_THESE_CLAIMS: &'static str = "claims are not valid clip claims";
    fn node(&self) -> &GatewayNodeId {
        &self.node
    }
    fn times(&self) -> (i64, i64) {
        (self.iat, self.exp)
    }
}

/// Verifies a clip grant at `now_unix` (seconds): shape, signature, claims, times, and that it is
/// for `node`.
pub fn verify(
    token: &str,
    key: &VerifyingKey,
    node: &GatewayNodeId,
    now_unix: i64,
) -> Result<ClipClaims, TokenError> {
    verify_grant(token, key, node, now_unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000;

    #[test]
    fn a_clip_grant_verifies_for_its_node_and_no_floor_grant_passes_for_one() {
        let key = SigningKey::from_bytes(&[6; 32]);
        let node: GatewayNodeId = "gw-1".parse().unwrap();
        let claims = ClipClaims {
            sub: "user:op".into(),
            room: "room-1".parse().unwrap(),
            sha256: crate::evidence::sha256_hex(b"clip"),
            step: ClipStep::Play,
            node: node.clone(),
            iat: NOW - 1,
            exp: NOW + 60,
            jti: "j".into(),
        };
        let t = sign(&claims, &key);
        assert_eq!(verify(&t, &key.verifying_key(), &node, NOW), Ok(claims));
        assert!(matches!(
            verify(&t, &key.verifying_key(), &node, NOW + 60),
            Err(TokenError::Expired { .. })
        ));
        let floor = crate::floor_token::sign(
            &crate::floor_token::FloorClaims {
                sub: "user:op".into(),
                room: "room-1".parse().unwrap(),
                floor_session: 1,
                node: node.clone(),
                iat: NOW - 1,
                exp: NOW + 60,
                jti: "j".into(),
            },
            &key,
        );
        assert!(matches!(
            verify(&floor, &key.verifying_key(), &node, NOW),
            Err(TokenError::Malformed(_))
        ));
    }
}
