//! Floor grants (issue 7, push-to-talk): dispatch decides who holds an incident voice channel's
//! floor (`voice_floor`) and signs a short grant that the talker's browser presents to the
//! gateway; **the gateway forwards a participant's audio in a push-to-talk room only under a
//! valid grant**, and a grant with a higher `session` (a supervisor's take-over) revokes the
//! older one at once.
//!
//! Same format and key as [`crate::token`] media tokens, other claims (`deny_unknown_fields`, and
//! fields a media or broadcast token lacks), so no token stands in for another.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::id::{CameraId, GatewayNodeId};
use crate::token::{NodeGrant, TokenError, sign_claims, verify_grant};

/// The signed content of a floor grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FloorClaims {
    /// The talker as the room lists them (`user:{username}`, the room token's subject).
    pub sub: String,
    /// The gateway room (an incident's voice channel).
    pub room: CameraId,
    /// dispatch's holding (`voice_floor.id`): grows with every new holding, so a later one
    /// supersedes an earlier one; a renewal keeps it and moves `exp`.
    pub floor_session: i64,
    /// The gateway node that must accept it (the one owning the room).
    pub node: GatewayNodeId,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds (exclusive): the holding's own expiry.
    pub exp: i64,
    /// Unique token id, for the audit log.
    pub jti: String,
}

/// Signs `claims` with dispatch's token key.
pub fn sign(claims: &FloorClaims, key: &SigningKey) -> String {
    sign_claims(claims, key)
}

impl NodeGrant for FloorClaims {
    const NOT_THESE_CLAIMS: &'static str = "claims are not valid floor claims";
    fn node(&self) -> &GatewayNodeId {
        &self.node
    }
    fn times(&self) -> (i64, i64) {
        (self.iat, self.exp)
    }
}

/// Verifies a floor grant at `now_unix` (seconds): shape, signature, claims, times, and that it is
/// for `node`.
pub fn verify(
    token: &str,
    key: &VerifyingKey,
    node: &GatewayNodeId,
    now_unix: i64,
) -> Result<FloorClaims, TokenError> {
    verify_grant(token, key, node, now_unix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{MediaAction, MediaClaims};

    const NOW: i64 = 1_750_000_000;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[5; 32])
    }

    fn claims() -> FloorClaims {
        FloorClaims {
            sub: "user:li".into(),
            room: "voice-1".parse().unwrap(),
            floor_session: 42,
            node: "gw-1".parse().unwrap(),
            iat: NOW - 1,
            exp: NOW + 120,
            jti: "j".into(),
        }
    }

    #[test]
    fn a_grant_verifies_for_its_node_until_it_expires() {
        let t = sign(&claims(), &key());
        let node: GatewayNodeId = "gw-1".parse().unwrap();
        assert_eq!(verify(&t, &key().verifying_key(), &node, NOW), Ok(claims()));
        assert!(matches!(
            verify(&t, &key().verifying_key(), &"gw-2".parse().unwrap(), NOW),
            Err(TokenError::WrongNode { .. })
        ));
        assert!(matches!(
            verify(&t, &key().verifying_key(), &node, NOW + 120),
            Err(TokenError::Expired { .. })
        ));
        let forged = sign(&claims(), &SigningKey::from_bytes(&[1; 32]));
        assert_eq!(
            verify(&forged, &key().verifying_key(), &node, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_room_token_is_no_floor_grant_and_a_grant_no_room_token() {
        let node: GatewayNodeId = "gw-1".parse().unwrap();
        let media = MediaClaims {
            sub: "user:li".into(),
            camera: "voice-1".parse().unwrap(),
            action: MediaAction::Room,
            node: node.clone(),
            stream: None,
            iat: NOW - 1,
            exp: NOW + 60,
            jti: "j".into(),
        };
        let m = crate::token::sign(&media, &key());
        assert!(matches!(
            verify(&m, &key().verifying_key(), &node, NOW),
            Err(TokenError::Malformed(_))
        ));
        let f = sign(&claims(), &key());
        assert!(matches!(
            crate::token::verify(&f, &key().verifying_key(), NOW),
            Err(TokenError::Malformed(_))
        ));
    }
}
