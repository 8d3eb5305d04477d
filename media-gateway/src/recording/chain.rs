//! The per-camera hash chain, as plain logic: every index entry (a segment or a gap) has a hash and
//! names the hash of the entry before it (`prevHash`); the first entry of a camera names
//! [`GENESIS`]. A segment's hash is the SHA-256 of its file; a gap's is computed from what it says
//! ([`gap_hash`]), so a gap cannot be rewritten or dropped without breaking the chain.

use sha2::{Digest as _, Sha256};

/// The `prevHash` of a camera's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of a gap entry: SHA-256 over a versioned, line-separated form of its fields.
pub fn gap_hash(camera: &str, start_ms: i64, end_ms: i64, reason: &str, prev_hash: &str) -> String {
    let text = format!("brightline-gap-v1\n{camera}\n{start_ms}\n{end_ms}\n{reason}\n{prev_hash}");
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Where one entry breaks the chain: its `prevHash` is not the previous entry's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// Position of the entry in the camera's chain (0 = first).
    pub position: usize,
    /// What the entry names.
    pub prev_hash: String,
    /// What it should name.
    pub expected: String,
}

/// Checks that each of `(hash, prev_hash)` names the hash before it, the first naming [`GENESIS`].
pub fn breaks<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Break> {
    let mut expected = GENESIS;
    let mut out = Vec::new();
    for (position, (hash, prev)) in entries.into_iter().enumerate() {
        if prev != expected {
            out.push(Break {
                position,
                prev_hash: prev.to_owned(),
                expected: expected.to_owned(),
            });
        }
        expected = hash;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intact_chain_has_no_breaks_and_a_removed_entry_is_one_break() {
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let chain = [
            (a.as_str(), GENESIS),
            (b.as_str(), a.as_str()),
            (c.as_str(), b.as_str()),
        ];
        assert!(breaks(chain).is_empty());
        let without_b = [chain[0], chain[2]];
        assert_eq!(
            breaks(without_b),
            [Break {
                position: 1,
                prev_hash: b.clone(),
                expected: a.clone(),
            }]
        );
    }

    #[test]
    fn a_gap_hash_covers_every_field() {
        let h = gap_hash("cam-1", 1, 2, "source dropped", GENESIS);
        assert_ne!(h, gap_hash("cam-1", 1, 3, "source dropped", GENESIS));
        assert_ne!(h, gap_hash("cam-1", 1, 2, "restart", GENESIS));
        assert_ne!(h, gap_hash("cam-2", 1, 2, "source dropped", GENESIS));
        assert_eq!(h.len(), 64);
    }
}
