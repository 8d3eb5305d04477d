//! The hash chain, plain: the canonical encoding of a row, its hash, and the check of a chain read
//! in `seq` order.
//!
//! **Encoding (version 1).** A row's hash is the lowercase hex SHA-256 of the UTF-8 bytes of the
//! canonical JSON ([`super::canonical`]) of this array:
//!
//! ```text
//! ["brightline-audit-v1", seq, at, actorKind, actorId, actorName, actorRole, clientAddr,
//!  action, objectType, objectId, town, details, prevHash]
//! ```
//!
//! `seq` is an integer; `at` is UTC in RFC 3339 with exactly six fractional digits and `Z`
//! (`2025-03-01T08:00:00.123456Z`); `actorId` is a hyphenated lowercase UUID; absent optional
//! fields are `null`; `details` is the canonical JSON value itself (not a string); `prevHash` is
//! the previous row's `hash`, or 64 zeros for row 1. Being a JSON array, the encoding cannot be
//! made ambiguous by a field's content.

use super::canonical::{self, NotCanonical};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The tag that starts every encoding; a new encoding gets a new tag.
const VERSION: &str = "brightline-audit-v1";

/// One row of the audit log, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = AuditEntry)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_name: String,
    pub actor_role: Option<String>,
    pub client_addr: Option<String>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    #[sqlx(rename = "town_id")]
    pub town: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// `at` as the encoding writes it.
pub fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The canonical encoding of `entry` (every field but `hash`).
pub fn encode(entry: &Entry) -> Result<String, NotCanonical> {
    let s = |v: &str| Value::String(v.to_owned());
    let opt = |v: &Option<String>| v.as_deref().map_or(Value::Null, s);
    let fields = Value::Array(vec![
        s(VERSION),
        Value::from(entry.seq),
        s(&time_text(entry.at)),
        s(&entry.actor_kind),
        entry
            .actor_id
            .map_or(Value::Null, |id| s(&id.hyphenated().to_string())),
        s(&entry.actor_name),
        opt(&entry.actor_role),
        opt(&entry.client_addr),
        s(&entry.action),
        opt(&entry.object_type),
        opt(&entry.object_id),
        opt(&entry.town),
        entry.details.clone(),
        s(&entry.prev_hash),
    ]);
    canonical::to_string(&fields)
}

/// The hash `entry` should carry.
pub fn hash(entry: &Entry) -> Result<String, NotCanonical> {
    Ok(hex::encode(Sha256::digest(encode(entry)?.as_bytes())))
}

/// How a chain is broken at a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    #[error("gap: expected seq {expected}, found {found} (rows were removed)")]
    Gap { expected: i64, found: i64 },
    #[error("bad prev link: prev_hash is {found}, the previous row's hash is {expected}")]
    BadPrevLink { expected: String, found: String },
    #[error(
        "hash mismatch: stored {stored}, the row's fields hash to {computed} (the row was changed)"
    )]
    HashMismatch { stored: String, computed: String },
    #[error("the row cannot be encoded: {0}")]
    NotCanonical(#[from] NotCanonical),
}

/// The first broken row of a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seq {seq}: {reason}")]
pub struct Break {
    pub seq: i64,
    pub reason: Broken,
}

/// Checks rows fed in `seq` order from the first one.
#[derive(Debug, Clone)]
pub struct Check {
    next_seq: i64,
    last_hash: String,
}

impl Default for Check {
    fn default() -> Self {
        Self {
            next_seq: 1,
            last_hash: GENESIS.to_owned(),
        }
    }
}

impl Check {
    /// Checks the next row: its seq follows, it links to the previous hash, and its own hash is
    /// right. After a `Break` the check should not be fed further.
    pub fn push(&mut self, entry: &Entry) -> Result<(), Break> {
        let broken = |reason| Break {
            seq: entry.seq,
            reason,
        };
        if entry.seq != self.next_seq {
            return Err(broken(Broken::Gap {
                expected: self.next_seq,
                found: entry.seq,
            }));
        }
        if entry.prev_hash != self.last_hash {
            return Err(broken(Broken::BadPrevLink {
                expected: self.last_hash.clone(),
                found: entry.prev_hash.clone(),
            }));
        }
        let computed = hash(entry).map_err(|e| broken(e.into()))?;
        if computed != entry.hash {
            return Err(broken(Broken::HashMismatch {
                stored: entry.hash.clone(),
                computed,
            }));
        }
        self.next_seq += 1;
        self.last_hash = computed;
        Ok(())
    }

    /// Rows checked so far.
    pub fn count(&self) -> i64 {
        self.next_seq - 1
    }

    /// The hash of the last row checked (64 zeros for an empty chain).
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A chain of `n` rows, hashed and linked.
    fn chain(n: i64) -> Vec<Entry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut e = Entry {
                    seq,
                    at: DateTime::from_timestamp_micros(1_740_816_000_123_456 + seq).unwrap(),
                    actor_kind: "user".into(),
                    actor_id: Some(Uuid::from_u128(7)),
                    actor_name: "zt-officer".into(),
                    actor_role: Some("townOfficer".into()),
                    client_addr: Some("10.1.2.3".into()),
                    action: "incident.view".into(),
                    object_type: Some("incident".into()),
                    object_id: Some(format!("inc-{seq}")),
                    town: Some("zhaitang".into()),
                    details: json!({"n": seq, "note": "斋堂"}),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = hash(&e).unwrap();
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn check_all(rows: &[Entry]) -> Result<Check, Break> {
        let mut c = Check::default();
        for r in rows {
            c.push(r)?;
        }
        Ok(c)
    }

    #[test]
    fn the_encoding_is_the_documented_array_with_microseconds_and_nulls() {
        let mut e = chain(1).remove(0);
        e.client_addr = None;
        e.details = json!({"z": 1, "a": "b"});
        assert_eq!(
            encode(&e).unwrap(),
            format!(
                "[\"brightline-audit-v1\",1,\"2025-03-01T08:00:00.123457Z\",\"user\",\
                 \"00000000-0000-0000-0000-000000000007\",\"zt-officer\",\"townOfficer\",null,\
                 \"incident.view\",\"incident\",\"inc-1\",\"zhaitang\",{{\"a\":\"b\",\"z\":1}},\"{GENESIS}\"]"
            )
        );
    }

    #[test]
    fn a_known_row_has_a_fixed_hash_that_another_language_reproduces() {
        // Pins the encoding: if this changes, stored chains no longer verify. The value was
        // computed independently with Python's json.dumps(row, ensure_ascii=False,
        // separators=(",", ":"), sort_keys=True) and hashlib.sha256.
        let e = chain(1).remove(0);
        assert_eq!(
            e.hash,
            "c5361154448e4ae69d214cae8e5d860a174c58a8ce58900448bee89027d13cb9"
        );
    }

    #[test]
    fn an_untouched_chain_checks_and_reports_its_count_and_last_hash() {
        let rows = chain(5);
        let c = check_all(&rows).unwrap();
        assert_eq!(c.count(), 5);
        assert_eq!(c.last_hash(), rows[4].hash);
        assert_eq!(Check::default().last_hash(), GENESIS);
    }

    #[test]
    fn a_changed_detail_breaks_the_chain_at_that_row_with_a_hash_mismatch() {
        let mut rows = chain(5);
        rows[2].details = json!({"n": 3, "note": "清水"});
        let b = check_all(&rows).unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(matches!(b.reason, Broken::HashMismatch { .. }), "{b}");
    }

    #[test]
    fn a_changed_row_with_a_recomputed_hash_breaks_the_link_of_the_next_row() {
        let mut rows = chain(5);
        rows[2].actor_name = "someone-else".into();
        rows[2].hash = hash(&rows[2]).unwrap();
        let b = check_all(&rows).unwrap_err();
        assert_eq!(b.seq, 4);
        assert!(matches!(b.reason, Broken::BadPrevLink { .. }), "{b}");
    }

    #[test]
    fn a_removed_row_is_a_gap_and_a_missing_first_row_too() {
        let mut rows = chain(5);
        rows.remove(3);
        let b = check_all(&rows).unwrap_err();
        assert_eq!(
            b,
            Break {
                seq: 5,
                reason: Broken::Gap {
                    expected: 4,
                    found: 5
                }
            }
        );
        let b = check_all(&chain(3)[1..]).unwrap_err();
        assert_eq!(b.seq, 2);
        assert!(matches!(b.reason, Broken::Gap { expected: 1, .. }));
    }

    #[test]
    fn every_field_takes_part_in_the_hash() {
        let base = chain(1).remove(0);
        type Change = Box<dyn Fn(&mut Entry)>;
        let variants: Vec<Change> = vec![
            Box::new(|e| e.seq = 2),
            Box::new(|e| e.at += chrono::Duration::microseconds(1)),
            Box::new(|e| e.actor_kind = "service".into()),
            Box::new(|e| e.actor_id = None),
            Box::new(|e| e.actor_name = "x".into()),
            Box::new(|e| e.actor_role = None),
            Box::new(|e| e.client_addr = Some("10.1.2.4".into())),
            Box::new(|e| e.action = "incident.create".into()),
            Box::new(|e| e.object_type = None),
            Box::new(|e| e.object_id = Some("inc-2".into())),
            Box::new(|e| e.town = Some("qingshui".into())),
            Box::new(|e| e.details = json!({})),
            Box::new(|e| e.prev_hash = "1".repeat(64)),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut e = base.clone();
            change(&mut e);
            assert_ne!(hash(&e).unwrap(), base.hash, "field {i} is not hashed");
        }
    }
}
