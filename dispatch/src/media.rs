//! Live view and talk (DESIGN §3.3, §8): which gateway node owns a camera (rendezvous hashing over
//! the configured nodes, pure) and dispatch's media-token signing key.

use bl_proto::{CameraId, GatewayNodeId, SigningKey};
use sha2::{Digest, Sha256};
use std::fmt;

/// dispatch's Ed25519 media-token key; its `Debug` shows only the public half.
#[derive(Clone)]
pub struct MediaKey(SigningKey);

impl MediaKey {
    /// Wraps a key held in memory (config loading, tests).
    pub fn new(key: SigningKey) -> Self {
        Self(key)
    }

    /// Parses the 32-byte seed written as hex or base64 (see [`bl_proto::keys`]).
    pub fn parse(text: &str) -> Result<Self, bl_proto::keys::KeyTextError> {
        Ok(Self(SigningKey::from_bytes(&bl_proto::keys::decode_bytes(
            text,
        )?)))
    }

    /// The key, at the point of signing.
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }
}

impl fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MediaKey(public = {})",
            bl_proto::keys::encode_public(&self.0.verifying_key())
        )
    }
}

/// The rendezvous (highest random weight) score of `node` for `camera`: the first 8 bytes of
/// SHA-256(node ‖ 0x00 ‖ camera), big-endian.
pub fn score(node: &GatewayNodeId, camera: &CameraId) -> u64 {
    let mut h = Sha256::new();
    h.update(node.as_str().as_bytes());
    h.update([0u8]);
    h.update(camera.as_str().as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The gateway node that owns `camera`: the one with the highest [`score`] (ties, practically
/// impossible, go to the greater node id). Removing a node moves only the cameras it owned.
///
/// Panics when `nodes` is empty; the config guarantees at least one node.
pub fn choose_gateway<'a>(camera: &CameraId, nodes: &'a [GatewayNodeId]) -> &'a GatewayNodeId {
    nodes
        .iter()
        .max_by_key(|n| (score(n, camera), *n))
        .expect("at least one gateway node is configured")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> Vec<GatewayNodeId> {
        names
            .iter()
            .map(|n| GatewayNodeId::new(*n).unwrap())
            .collect()
    }

    fn camera(i: usize) -> CameraId {
        CameraId::new(format!("cam-{i}")).unwrap()
    }

    #[test]
    fn the_same_camera_and_nodes_always_give_the_same_node_whatever_their_order() {
        let a = nodes(&["gw-1", "gw-2", "gw-3"]);
        let b = nodes(&["gw-3", "gw-1", "gw-2"]);
        for i in 0..200 {
            assert_eq!(
                choose_gateway(&camera(i), &a),
                choose_gateway(&camera(i), &a)
            );
            assert_eq!(
                choose_gateway(&camera(i), &a),
                choose_gateway(&camera(i), &b)
            );
        }
    }

    #[test]
    fn removing_a_node_moves_only_the_cameras_it_owned() {
        let all = nodes(&["gw-1", "gw-2", "gw-3"]);
        let without = nodes(&["gw-1", "gw-3"]);
        let mut moved = 0;
        for i in 0..1000 {
            let before = choose_gateway(&camera(i), &all);
            let after = choose_gateway(&camera(i), &without);
            if before.as_str() == "gw-2" {
                moved += 1;
            } else {
                assert_eq!(
                    before, after,
                    "camera {i} moved although gw-2 did not own it"
                );
            }
        }
        assert!(moved > 0);
    }

    #[test]
    fn three_nodes_each_own_between_a_quarter_and_forty_two_percent_of_three_thousand_cameras() {
        let all = nodes(&["gw-1", "gw-2", "gw-3"]);
        let mut counts = std::collections::HashMap::new();
        for i in 0..3000 {
            *counts
                .entry(choose_gateway(&camera(i), &all).clone())
                .or_insert(0) += 1;
        }
        for n in &all {
            let share = f64::from(counts.get(n).copied().unwrap_or(0)) / 3000.0;
            assert!((0.25..=0.42).contains(&share), "{n:?} owns {share}");
        }
    }

    #[test]
    fn a_media_key_never_prints() {
        let key = MediaKey::new(SigningKey::from_bytes(&[9; 32]));
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex::encode([9u8; 32])), "{shown}");
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([9u8; 32]);
        assert!(!shown.contains(&b64), "{shown}");
    }
}
