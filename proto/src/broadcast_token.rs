//! Broadcast tokens (issue 7, group broadcast): one operator's voice to many cameras of one gateway
//! node through ONE WHIP ingest. dispatch takes the talk floor of every target, then signs the
//! list of cameras that node may fan the voice out to; the gateway only verifies it.
//!
//! Same format and key as [`crate::token`] media tokens (base64url claims "." Ed25519 signature),
//! but other claims: a media token never parses as a broadcast token nor the other way round (each
//! lacks the other's required fields), so neither can stand in for the other.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::id::{CameraId, GatewayNodeId};
use crate::token::{NodeGrant, TokenError, sign_claims, verify_grant};

/// Most cameras one broadcast token may name (per gateway node), which also bounds its length.
pub const MAX_BROADCAST_CAMERAS: usize = 200;
/// Broadcast tokens longer than this are refused unread (200 camera ids fit).
pub const MAX_BROADCAST_TOKEN_LEN: usize = 16_384;

/// The signed content of a broadcast token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BroadcastClaims {
    /// The operator's user id.
    pub sub: String,
    /// The broadcast at dispatch (`POST /api/broadcasts`).
    pub broadcast: Uuid,
    /// The cameras of this node the voice goes to (their floor is the broadcaster's).
    pub cameras: Vec<CameraId>,
    /// The gateway node that must accept it (owning all of `cameras`).
    pub node: GatewayNodeId,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds (exclusive).
    pub exp: i64,
    /// Unique token id, for the audit log.
    pub jti: String,
}

/// Signs `claims` with dispatch's token key.
pub fn sign(claims: &BroadcastClaims, key: &SigningKey) -> String {
    sign_claims(claims, key)
}

impl NodeGrant for BroadcastClaims {
    const NOT_THESE_CLAIMS: &'static str = "claims are not valid broadcast claims";
    const MAX_LEN: (usize, &'static str) =
        (MAX_BROADCAST_TOKEN_LEN, "longer than 16384 characters");
    fn node(&self) -> &GatewayNodeId {
        &self.node
    }
    fn times(&self) -> (i64, i64) {
        (self.iat, self.exp)
    }
    fn check(&self) -> Result<(), TokenError> {
        if self.cameras.is_empty() || self.cameras.len() > MAX_BROADCAST_CAMERAS {
            return Err(TokenError::Malformed("a broadcast names 1 to 200 cameras"));
        }
        Ok(())
    }
}

/// Verifies a broadcast token at `now_unix` (seconds): shape, signature, claims, times, and that it
/// is for `node`.
pub fn verify(
    token: &str,
    key: &VerifyingKey,
    node: &GatewayNodeId,
    now_unix: i64,
) -> Result<BroadcastClaims, TokenError> {
    verify_grant(token, key, node, now_unix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{MediaAction, MediaClaims};

    const NOW: i64 = 1_750_000_000;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn claims() -> BroadcastClaims {
        BroadcastClaims {
            sub: "user-1".into(),
            broadcast: Uuid::from_u128(7),
            cameras: vec!["cam-1".parse().unwrap(), "cam-2".parse().unwrap()],
            node: "gw-1".parse().unwrap(),
            iat: NOW - 5,
            exp: NOW + 60,
            jti: "j1".into(),
        }
    }

    #[test]
    fn a_signed_broadcast_verifies_for_its_node_only() {
        let t = sign(&claims(), &key());
        let node: GatewayNodeId = "gw-1".parse().unwrap();
        assert_eq!(verify(&t, &key().verifying_key(), &node, NOW), Ok(claims()));
        let other: GatewayNodeId = "gw-2".parse().unwrap();
        assert!(matches!(
            verify(&t, &key().verifying_key(), &other, NOW),
            Err(TokenError::WrongNode { .. })
        ));
        assert!(matches!(
            verify(&t, &key().verifying_key(), &node, NOW + 60),
            Err(TokenError::Expired { .. })
        ));
        let forged = sign(&claims(), &SigningKey::from_bytes(&[1; 32]));
        assert_eq!(
            verify(&forged, &key().verifying_key(), &node, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn media_tokens_and_broadcast_tokens_never_stand_in_for_each_other() {
        let media = MediaClaims {
            sub: "user-1".into(),
            camera: "cam-1".parse().unwrap(),
            action: MediaAction::Talk,
            node: "gw-1".parse().unwrap(),
            stream: None,
            iat: NOW - 5,
            exp: NOW + 60,
            jti: "j1".into(),
        };
        let node: GatewayNodeId = "gw-1".parse().unwrap();
        let m = crate::token::sign(&media, &key());
        assert!(matches!(
            verify(&m, &key().verifying_key(), &node, NOW),
            Err(TokenError::Malformed(_))
        ));
        let b = sign(&claims(), &key());
        assert!(matches!(
            crate::token::verify(&b, &key().verifying_key(), NOW),
            Err(TokenError::Malformed(_))
        ));
    }
}
