//! Where an edge's registered device key comes from. Today: the `[[edge]]` entries of the config file
//! ([`ConfigEdgeKeys`]). When dispatch's internal API serves enrolled edges, an implementation that asks
//! it takes this one's place in [`crate::run`] — a one-line switch, as nothing else sees the source.

use std::collections::HashMap;

use bl_proto::{EdgeId, VerifyingKey};
use futures::future::BoxFuture;

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
}
