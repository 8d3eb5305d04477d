//! Service authentication for `/internal` routes: a gateway node presents its own token as
//! `Authorization: Bearer <token>` and names itself in `X-BL-Node`. dispatch keeps only the
//! SHA-256 of each node's token (read from `service_token_file` on its `[[media.gateway]]`) and
//! compares digests in constant time. A user session never authenticates here, and a service
//! token never opens an `/api` route (those need a session).

use crate::config::MediaConfig;
use crate::error::{Error, Kind};
use axum::http::{HeaderMap, header};
use bl_proto::GatewayNodeId;
use bl_service::config::{ConfigError, field_error};
use bl_service::secret::Secret;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

/// The header in which a gateway names its node.
pub const NODE_HEADER: &str = "x-bl-node";

/// Shortest accepted token, in characters (e.g. `openssl rand -hex 32` gives 64).
pub const MIN_TOKEN_CHARS: usize = 32;

/// What dispatch keeps of a node's service token: its SHA-256, never the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceToken([u8; 32]);

impl ServiceToken {
    /// From the token text (surrounding whitespace is dropped); refuses short tokens.
    pub fn from_secret(token: &str) -> Result<Self, String> {
        let token = token.trim();
        if token.chars().count() < MIN_TOKEN_CHARS {
            return Err(format!(
                "the token must have at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(Self(Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether `presented` is the token, in time independent of where it differs (digests of equal
    /// length are compared, so not even the token's length shows).
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        super::constant_time_eq(&digest, &self.0)
    }
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceToken([redacted])")
    }
}

/// Reads every gateway's `service_token_file` into its `service_token` (called by `Config::load`).
pub fn load_tokens(config_path: &Path, media: &mut MediaConfig) -> Result<(), ConfigError> {
    for (i, g) in media.gateway.iter_mut().enumerate() {
        let Some(file) = &g.service_token_file else {
            continue;
        };
        let field = format!("media.gateway[{i}].service_token_file");
        let text = Secret::from_file(file).map_err(|e| {
            field_error(
                config_path,
                &field,
                format!("cannot read {}: {e}", file.display()),
            )
        })?;
        let token = ServiceToken::from_secret(text.expose())
            .map_err(|m| field_error(config_path, &field, format!("{}: {m}", file.display())))?;
        g.service_token = Some(token);
    }
    Ok(())
}

/// An authenticated gateway node, put in the request's extensions by the policy middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCaller {
    pub node: GatewayNodeId,
}

impl ServiceCaller {
    /// The audit log's actor name: `gateway:<node>`.
    pub fn name(&self) -> String {
        format!("gateway:{}", self.node.as_str())
    }
}

fn unauthenticated() -> Error {
    Error::new(
        Kind::Unauthenticated,
        "service_unauthenticated",
        format!(
            "internal routes need a gateway's service token: send `Authorization: Bearer <token>` \
             and `{NODE_HEADER}: <node>` as configured in dispatch's [[media.gateway]]"
        ),
    )
}

/// Checks the request's service credentials against the configured gateways. The answer does not
/// say whether the node exists or the token was wrong.
pub fn authenticate(
    media: Option<&MediaConfig>,
    headers: &HeaderMap,
) -> Result<ServiceCaller, Error> {
    let Some(media) = media else {
        return Err(Error::new(
            Kind::Unavailable,
            "media_not_configured",
            "internal media routes need a [media] section with [[media.gateway]] service tokens",
        ));
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthenticated)?;
    let node = headers
        .get(NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthenticated)?;
    let gateway = media
        .gateway
        .iter()
        .find(|g| g.node == node)
        .ok_or_else(unauthenticated)?;
    let Some(expected) = &gateway.service_token else {
        return Err(unauthenticated());
    };
    if !expected.matches(token) {
        return Err(unauthenticated());
    }
    let node = GatewayNodeId::new(node.to_owned()).map_err(|_| unauthenticated())?;
    Ok(ServiceCaller { node })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayConfig;
    use axum::http::HeaderValue;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef-gw1";

    fn media() -> MediaConfig {
        let gateway = |node: &str, token: Option<&str>| GatewayConfig {
            node: node.into(),
            url: "http://127.0.0.1:8090".into(),
            service_token_file: None,
            service_token: token.map(|t| ServiceToken::from_secret(t).unwrap()),
        };
        MediaConfig {
            signing_key_file: "k".into(),
            signing_key: None,
            token_ttl_secs: 60,
            gateway: vec![gateway("gw-1", Some(TOKEN)), gateway("gw-2", None)],
        }
    }

    fn headers(token: Option<&str>, node: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(t) = token {
            h.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            );
        }
        if let Some(n) = node {
            h.insert(NODE_HEADER, HeaderValue::from_str(n).unwrap());
        }
        h
    }

    fn code(r: Result<ServiceCaller, Error>) -> &'static str {
        r.unwrap_err().code
    }

    #[test]
    fn the_right_token_for_the_named_node_authenticates_that_node() {
        let s = authenticate(Some(&media()), &headers(Some(TOKEN), Some("gw-1"))).unwrap();
        assert_eq!(s.node.as_str(), "gw-1");
        assert_eq!(s.name(), "gateway:gw-1");
    }

    #[test]
    fn a_missing_or_wrong_token_node_or_a_node_without_a_token_is_refused_alike() {
        let m = media();
        let refused = [
            headers(None, Some("gw-1")),
            headers(Some(TOKEN), None),
            headers(Some("wrong"), Some("gw-1")),
            headers(Some(TOKEN), Some("gw-2")),
            headers(Some(TOKEN), Some("gw-9")),
        ];
        for h in refused {
            assert_eq!(
                code(authenticate(Some(&m), &h)),
                "service_unauthenticated",
                "{h:?}"
            );
        }
        assert_eq!(
            code(authenticate(None, &headers(Some(TOKEN), Some("gw-1")))),
            "media_not_configured"
        );
    }

    #[test]
    fn config_load_keeps_each_gateways_token_digest_and_names_the_field_of_a_short_one() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let url = write("db.url", "postgres://x/y\n");
        let key = write("media.key", &hex::encode([5u8; 32]));
        let token = write("gw-1.token", &format!("{TOKEN}\n"));
        let text = format!(
            "[database]\nurl_file = {url:?}\n[media]\nsigning_key_file = {key:?}\n\
             [[media.gateway]]\nnode = \"gw-1\"\nurl = \"http://a\"\nservice_token_file = {token:?}\n\
             [[media.gateway]]\nnode = \"gw-2\"\nurl = \"http://b\"\n"
        );
        let cfg = write("d.toml", &text);
        let c = crate::config::Config::load(&cfg).unwrap();
        let m = c.media.unwrap();
        assert!(m.gateway[0].service_token.as_ref().unwrap().matches(TOKEN));
        assert!(m.gateway[1].service_token.is_none());
        std::fs::write(&token, "short").unwrap();
        let e = crate::config::Config::load(&cfg).unwrap_err().to_string();
        assert!(e.contains("media.gateway[0].service_token_file"), "{e}");
    }

    #[test]
    fn short_tokens_are_refused_and_a_token_never_prints() {
        assert!(ServiceToken::from_secret("short").is_err());
        let t = ServiceToken::from_secret(&format!("  {TOKEN}\n")).unwrap();
        assert!(t.matches(TOKEN));
        assert!(!t.matches(&format!("{TOKEN}x")));
        assert_eq!(format!("{t:?}"), "ServiceToken([redacted])");
    }
}
