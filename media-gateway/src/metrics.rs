//! Prometheus counters as plain atomics, rendered as text at `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why an upload was refused; each is a `reason` label of `bl_gateway_evidence_rejected_total`
/// and equals the error `code` the edge received (any other code counts as `other`).
pub const REJECT_REASONS: [&str; 14] = [
    "bad_sha256",
    "missing_header",
    "bad_header",
    "length_required",
    "too_large",
    "unknown_edge",
    "bad_signature",
    "hash_mismatch",
    "size_mismatch",
    "upload_incomplete",
    "storage_full",
    "busy",
    "internal",
    "other",
];

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    stored: AtomicU64,
    stored_bytes: AtomicU64,
    duplicates: AtomicU64,
    rejected: [AtomicU64; REJECT_REASONS.len()],
    served: AtomicU64,
    served_bytes: AtomicU64,
}

impl Metrics {
    /// A new blob was stored.
    pub fn stored(&self, bytes: u64) {
        self.stored.fetch_add(1, Relaxed);
        self.stored_bytes.fetch_add(bytes, Relaxed);
    }

    /// An upload of a blob that was already stored.
    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Relaxed);
    }

    /// An upload refused with error `code`; codes not in [`REJECT_REASONS`] count as `other`.
    pub fn rejected(&self, code: &str) {
        let i = REJECT_REASONS
            .iter()
            .position(|r| *r == code)
            .unwrap_or(REJECT_REASONS.len() - 1);
        self.rejected[i].fetch_add(1, Relaxed);
    }

    /// A read of `bytes` bytes was answered.
    pub fn served(&self, bytes: u64) {
        self.served.fetch_add(1, Relaxed);
        self.served_bytes.fetch_add(bytes, Relaxed);
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Relaxed));
        };
        counter(
            "bl_gateway_evidence_stored_total",
            "Evidence blobs newly stored.",
            &self.stored,
        );
        counter(
            "bl_gateway_evidence_bytes_total",
            "Bytes of evidence newly stored.",
            &self.stored_bytes,
        );
        counter(
            "bl_gateway_evidence_duplicate_total",
            "Uploads of evidence that was already stored (answered 200, nothing written).",
            &self.duplicates,
        );
        counter(
            "bl_gateway_evidence_served_total",
            "Evidence reads answered (GET, including ranges).",
            &self.served,
        );
        counter(
            "bl_gateway_evidence_served_bytes_total",
            "Bytes of evidence sent to readers.",
            &self.served_bytes,
        );
        let name = "bl_gateway_evidence_rejected_total";
        let _ = writeln!(
            out,
            "# HELP {name} Evidence uploads refused, by reason.\n# TYPE {name} counter"
        );
        for (reason, value) in REJECT_REASONS.iter().zip(&self.rejected) {
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {}", value.load(Relaxed));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_text_format_with_their_labels() {
        let m = Metrics::default();
        m.stored(100);
        m.stored(20);
        m.rejected("hash_mismatch");
        let text = m.render();
        assert!(
            text.contains("bl_gateway_evidence_stored_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("bl_gateway_evidence_bytes_total 120\n"),
            "{text}"
        );
        assert!(
            text.contains("bl_gateway_evidence_rejected_total{reason=\"hash_mismatch\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE bl_gateway_evidence_rejected_total counter"));
    }
}
