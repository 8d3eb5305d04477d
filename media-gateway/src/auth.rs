//! Media-token checks (DESIGN §3.3): dispatch decides and signs, the gateway only verifies.
//!
//! The token comes as `Authorization: Bearer <token>` or, for a `<video src>` that cannot set headers,
//! as the query parameter `access_token=<token>` (RFC 6750 §2.3). Missing, malformed, forged, expired
//! or not-yet-valid tokens answer 401; a valid token for another camera, action or node answers 403.
//! Every refusal is a JSON error whose code names what was wrong.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use bl_proto::token::{self, MediaAction, MediaClaims, TokenError};
use bl_proto::{CameraId, GatewayNodeId, VerifyingKey};

use crate::error::{Error, Kind, Result};

/// The time in Unix seconds; injected so tests can move it.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp())
}

/// Checks media tokens for one gateway node.
#[derive(Clone)]
pub struct TokenVerifier {
    key: VerifyingKey,
    node: GatewayNodeId,
    clock: Clock,
}

impl TokenVerifier {
    /// A verifier for tokens signed by dispatch's `key` and bound to `node`.
    pub fn new(key: VerifyingKey, node: GatewayNodeId, clock: Clock) -> Self {
        Self { key, node, clock }
    }

    /// Finds and verifies the token of a request (signature and times), before anything is looked up,
    /// so an unauthenticated caller learns nothing about what is stored.
    pub fn authenticate(&self, headers: &HeaderMap, query: Option<&str>) -> Result<MediaClaims> {
        self.verify_raw(bearer(headers, query)?)
    }

    /// Verifies a token given as text (signature and times), e.g. the password of an edge's push.
    pub fn verify_raw(&self, raw: &str) -> Result<MediaClaims> {
        token::verify(raw, &self.key, (self.clock)()).map_err(token_error)
    }

    /// Finds and verifies a broadcast token (issue 7): signature, times, and this node.
    pub fn authenticate_broadcast(
        &self,
        headers: &HeaderMap,
    ) -> Result<bl_proto::broadcast_token::BroadcastClaims> {
        let raw = bearer(headers, None)?;
        bl_proto::broadcast_token::verify(raw, &self.key, &self.node, (self.clock)())
            .map_err(token_error)
    }

    /// Finds and verifies a clip grant (an evidence clip in a room): signature, times, this node.
    pub fn authenticate_clip(
        &self,
        headers: &HeaderMap,
    ) -> Result<bl_proto::clip_token::ClipClaims> {
        let raw = bearer(headers, None)?;
        bl_proto::clip_token::verify(raw, &self.key, &self.node, (self.clock)())
            .map_err(token_error)
    }

    /// Finds and verifies a floor grant (push-to-talk): signature, times, and this node.
    pub fn authenticate_floor(
        &self,
        headers: &HeaderMap,
    ) -> Result<bl_proto::floor_token::FloorClaims> {
        let raw = bearer(headers, None)?;
        bl_proto::floor_token::verify(raw, &self.key, &self.node, (self.clock)())
            .map_err(token_error)
    }

    /// Checks that verified claims cover `action` on `camera` at this node.
    pub fn authorize(
        &self,
        claims: &MediaClaims,
        camera: &CameraId,
        action: MediaAction,
    ) -> Result<()> {
        claims
            .permits(camera, action, &self.node)
            .map_err(token_error)
    }
}

fn bearer<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Result<&'a str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or("");
        return match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
            _ => Err(Error::new(
                Kind::Unauthenticated,
                "token_malformed",
                "the Authorization header must be `Bearer <media token>`",
            )),
        };
    }
    query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::new(
                Kind::Unauthenticated,
                "token_missing",
                "no media token: send `Authorization: Bearer <token>` (or `?access_token=`); \
                 dispatch issues tokens",
            )
        })
}

/// The one place a token refusal becomes a coded error.
fn token_error(e: TokenError) -> Error {
    let (kind, code) = match &e {
        TokenError::Malformed(_) => (Kind::Unauthenticated, "token_malformed"),
        TokenError::BadSignature => (Kind::Unauthenticated, "token_bad_signature"),
        TokenError::Expired { .. } => (Kind::Unauthenticated, "token_expired"),
        TokenError::NotYetValid { .. } => (Kind::Unauthenticated, "token_not_yet_valid"),
        TokenError::WrongCamera { .. } => (Kind::Forbidden, "token_wrong_camera"),
        TokenError::WrongAction { .. } => (Kind::Forbidden, "token_wrong_action"),
        TokenError::WrongNode { .. } => (Kind::Forbidden, "token_wrong_node"),
    };
    let advice = match kind {
        Kind::Unauthenticated => "ask dispatch for a new token",
        _ => "ask dispatch for a token for this camera, action and gateway",
    };
    Error::new(kind, code, format!("{e}; {advice}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use bl_proto::SigningKey;

    const NOW: i64 = 1_750_000_000;

    fn verifier() -> TokenVerifier {
        let key = SigningKey::from_bytes(&[5; 32]).verifying_key();
        TokenVerifier::new(key, "gw-1".parse().unwrap(), Arc::new(|| NOW))
    }

    fn token(exp: i64) -> String {
        let claims = MediaClaims {
            sub: "user-1".into(),
            camera: "cam-1".parse().unwrap(),
            action: MediaAction::View,
            node: "gw-1".parse().unwrap(),
            stream: None,
            iat: NOW - 10,
            exp,
            jti: "t1".into(),
        };
        token::sign(&claims, &SigningKey::from_bytes(&[5; 32]))
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn a_token_is_read_from_the_header_or_from_the_query() {
        let v = verifier();
        let t = token(NOW + 60);
        assert!(
            v.authenticate(&headers(&format!("Bearer {t}")), None)
                .is_ok()
        );
        let q = format!("x=1&access_token={t}");
        assert!(v.authenticate(&HeaderMap::new(), Some(&q)).is_ok());
    }

    #[test]
    fn the_injected_clock_decides_expiry() {
        let e = verifier()
            .authenticate(&headers(&format!("Bearer {}", token(NOW))), None)
            .unwrap_err();
        assert_eq!((e.kind, e.code), (Kind::Unauthenticated, "token_expired"));
    }

    #[test]
    fn another_scheme_or_no_token_is_unauthenticated() {
        let e = verifier()
            .authenticate(&headers("Basic abc"), None)
            .unwrap_err();
        assert_eq!(e.code, "token_malformed");
        let e = verifier()
            .authenticate(&HeaderMap::new(), Some("access_token="))
            .unwrap_err();
        assert_eq!(e.code, "token_missing");
    }

    #[test]
    fn a_token_for_another_node_is_forbidden() {
        let other = TokenVerifier::new(
            SigningKey::from_bytes(&[5; 32]).verifying_key(),
            "gw-2".parse().unwrap(),
            Arc::new(|| NOW),
        );
        let claims = other
            .authenticate(&headers(&format!("Bearer {}", token(NOW + 60))), None)
            .unwrap();
        let e = other
            .authorize(&claims, &"cam-1".parse().unwrap(), MediaAction::View)
            .unwrap_err();
        assert_eq!((e.kind, e.code), (Kind::Forbidden, "token_wrong_node"));
    }
}
