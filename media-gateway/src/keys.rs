//! Where an edge's registered device key comes from: the `[[edge]]` entries of the config file
//! ([`ConfigEdgeKeys`]) and, when `[dispatch]` is set, dispatch's `GET /internal/edges/{id}/key`
//! ([`DispatchEdgeKeys`], answers cached briefly) behind them ([`FirstOf`]). `crate::edge_keys` is
//! the one line that picks; nothing else sees the source.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bl_proto::{EdgeId, GatewayNodeId, VerifyingKey};
use futures::future::BoxFuture;
use serde::Deserialize;

/// Why the key source could not answer (not "unknown edge", which is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
#[error("edge key lookup failed: {0}")]
pub struct KeysError(pub String);

/// The registered Ed25519 device key of an edge.
pub trait EdgeKeys: Send + Sync + 'static {
    /// The key registered for `edge`, or `None` if the edge is not registered.
    fn key(&self, edge: &EdgeId) -> BoxFuture<'_, Result<Option<VerifyingKey>, KeysError>>;
}

/// Edge keys from the config file.
#[derive(Debug, Clone, Default)]
pub struct ConfigEdgeKeys(HashMap<EdgeId, VerifyingKey>);

impl ConfigEdgeKeys {
    /// Builds the lookup from `[[edge]]` entries.
    pub fn new(edges: impl IntoIterator<Item = (EdgeId, VerifyingKey)>) -> Self {
        Self(edges.into_iter().collect())
    }
}

impl EdgeKeys for ConfigEdgeKeys {
    fn key(&self, edge: &EdgeId) -> BoxFuture<'_, Result<Option<VerifyingKey>, KeysError>> {
        let found = self.0.get(edge).copied();
        Box::pin(async move { Ok(found) })
    }
}

/// How long dispatch's answer about a key is trusted: a re-enrolled box (new key) is accepted this
/// soon, and a burst of uploads asks dispatch once.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// An edge dispatch does not know is asked about again after this long.
pub const UNKNOWN_CACHE_TTL: Duration = Duration::from_secs(5);

/// Edge keys from dispatch's internal API, authenticated with this node's service token and
/// `X-BL-Node`.
pub struct DispatchEdgeKeys {
    base: String,
    token: Arc<str>,
    node: GatewayNodeId,
    http: reqwest::Client,
    cache: Mutex<HashMap<EdgeId, (Instant, Option<VerifyingKey>)>>,
}

impl DispatchEdgeKeys {
    /// A client for dispatch at `base` (e.g. `http://dispatch:8080`).
    pub fn new(base: &str, token: &str, node: GatewayNodeId) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.into(),
            node,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, edge: &EdgeId) -> Option<Option<VerifyingKey>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (at, key) = cache.get(edge)?;
        let ttl = if key.is_some() {
            KEY_CACHE_TTL
        } else {
            UNKNOWN_CACHE_TTL
        };
        (at.elapsed() < ttl).then_some(*key)
    }

    async fn ask(&self, edge: &EdgeId) -> Result<Option<VerifyingKey>, KeysError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            public_key: String,
        }
        let url = format!("{}/internal/edges/{edge}/key", self.base);
        let response = self
            .http
            .get(&url)
            .bearer_auth(&*self.token)
            .header("X-BL-Node", self.node.as_str())
            .send()
            .await
            .map_err(|e| KeysError(format!("dispatch: {}", e.without_url())))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            s => return Err(KeysError(format!("dispatch answered {s}"))),
        }
        let wire: Wire = response
            .json()
            .await
            .map_err(|e| KeysError(format!("dispatch's answer: {}", e.without_url())))?;
        bl_proto::keys::parse_public(&wire.public_key)
            .map(Some)
            .map_err(|e| KeysError(format!("dispatch's key for {edge}: {e}")))
    }
}

impl EdgeKeys for DispatchEdgeKeys {
    fn key(&self, edge: &EdgeId) -> BoxFuture<'_, Result<Option<VerifyingKey>, KeysError>> {
        let edge = edge.clone();
        Box::pin(async move {
            if let Some(known) = self.cached(&edge) {
                return Ok(known);
            }
            // Failures are not cached: the next upload asks again.
            let key = self.ask(&edge).await?;
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(edge, (Instant::now(), key));
            Ok(key)
        })
    }
}

/// The first source that knows the edge: the config file's entries win over dispatch.
pub struct FirstOf(pub Vec<Arc<dyn EdgeKeys>>);

impl EdgeKeys for FirstOf {
    fn key(&self, edge: &EdgeId) -> BoxFuture<'_, Result<Option<VerifyingKey>, KeysError>> {
        let edge = edge.clone();
        Box::pin(async move {
            for source in &self.0 {
                if let Some(key) = source.key(&edge).await? {
                    return Ok(Some(key));
                }
            }
            Ok(None)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bl_proto::SigningKey;

    #[tokio::test]
    async fn a_configured_edge_has_its_key_and_any_other_edge_has_none() {
        let key = SigningKey::from_bytes(&[3; 32]).verifying_key();
        let keys = ConfigEdgeKeys::new([(EdgeId::new("e1").unwrap(), key)]);
        assert_eq!(
            keys.key(&EdgeId::new("e1").unwrap()).await.unwrap(),
            Some(key)
        );
        assert_eq!(keys.key(&EdgeId::new("e2").unwrap()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn dispatch_is_asked_with_the_service_token_once_per_edge_and_the_config_file_wins() {
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::get;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dispatch_key = SigningKey::from_bytes(&[5; 32]).verifying_key();
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let encoded = bl_proto::keys::encode_public(&dispatch_key);
        let app = axum::Router::new().route(
            "/internal/edges/{id}/key",
            get(
                move |axum::extract::Path(id): axum::extract::Path<String>, headers: HeaderMap| {
                    let counter = counter.clone();
                    let encoded = encoded.clone();
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let authorized = headers["authorization"] == "Bearer svc-token"
                            && headers["x-bl-node"] == "gw-1";
                        match (authorized, id.as_str()) {
                            (false, _) => (StatusCode::UNAUTHORIZED, String::new()),
                            (true, "e-enrolled") => (
                                StatusCode::OK,
                                format!(r#"{{"edgeId":"e-enrolled","publicKey":"{encoded}"}}"#),
                            ),
                            _ => (StatusCode::NOT_FOUND, String::new()),
                        }
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let base = format!("http://{addr}");
        let node = GatewayNodeId::new("gw-1").unwrap();
        let dispatch = DispatchEdgeKeys::new(&base, "svc-token", node.clone());
        let enrolled = EdgeId::new("e-enrolled").unwrap();
        assert_eq!(dispatch.key(&enrolled).await.unwrap(), Some(dispatch_key));
        assert_eq!(dispatch.key(&enrolled).await.unwrap(), Some(dispatch_key));
        assert_eq!(
            asked.load(Ordering::SeqCst),
            1,
            "the second lookup is cached"
        );
        assert_eq!(
            dispatch.key(&EdgeId::new("e-new").unwrap()).await.unwrap(),
            None
        );

        let wrong = DispatchEdgeKeys::new(&base, "not-the-token", node);
        let e = wrong.key(&enrolled).await.unwrap_err().to_string();
        assert!(e.contains("401"), "{e}");

        let config_key = SigningKey::from_bytes(&[6; 32]).verifying_key();
        let keys = FirstOf(vec![
            Arc::new(ConfigEdgeKeys::new([(enrolled.clone(), config_key)])),
            Arc::new(dispatch),
        ]);
        assert_eq!(keys.key(&enrolled).await.unwrap(), Some(config_key));
        let before = asked.load(Ordering::SeqCst);
        assert_eq!(
            keys.key(&EdgeId::new("e-new").unwrap()).await.unwrap(),
            None
        );
        assert_eq!(
            asked.load(Ordering::SeqCst),
            before,
            "an unknown edge is cached briefly too"
        );
    }
}
