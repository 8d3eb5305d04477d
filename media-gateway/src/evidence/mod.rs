//! The content-addressed evidence store (DESIGN §3.2): what is kept ([`StoredEvidence`]), the store
//! boundary ([`EvidenceStore`]) with its filesystem ([`fs::FsStore`]) and S3-compatible
//! ([`s3::S3Store`]) backends, chosen by [`backend`], the HTTP handlers, case export and the offline
//! verifier.
//!
//! A blob is stored only after its body hashed to its name and its edge's device signature verified;
//! once stored it never changes. The first metadata stored for a hash is the one kept.

use std::ops::Range;

use axum::body::Bytes;
use bl_proto::evidence::{EvidenceMeta, Sha256Hex};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

pub mod backend;
pub mod export;
pub mod fs;
pub mod http;
pub mod range;
pub mod s3;
pub mod verify;

/// Version of the [`StoredEvidence`] record format.
pub const RECORD_VERSION: u32 = 1;

/// What the store keeps beside each blob, and what `GET /evidence/{sha256}/meta` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvidence {
    /// Record format version, [`RECORD_VERSION`].
    pub v: u32,
    /// The signed metadata, as uploaded.
    pub meta: EvidenceMeta,
    /// The signature over [`bl_proto::evidence::signing_payload`] of `meta`: the edge's device
    /// key, or this gateway's own key for evidence the gateway made ([`Signer::Gateway`]).
    pub signature: String,
    /// Whose key signed: absent (the edge) for uploads.
    #[serde(default, skip_serializing_if = "Signer::is_edge")]
    pub signer: Signer,
    /// When the gateway stored it.
    #[serde(with = "bl_proto::time::millis")]
    pub stored_at: DateTime<Utc>,
}

/// Whose key signed a blob's record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Signer {
    /// The uploading edge's registered device key (`meta.edgeId` names the edge).
    #[default]
    Edge,
    /// The gateway's own Ed25519 key (the one exports are signed with), for evidence the gateway
    /// itself made, such as talk recordings ([`crate::voicerec`]); `meta.edgeId` then names the
    /// gateway node.
    Gateway,
}

impl Signer {
    /// True for [`Signer::Edge`] (the default, left out of records).
    pub fn is_edge(&self) -> bool {
        *self == Signer::Edge
    }
}

/// A signature and whose key made it, as [`EvidenceStore::put`] keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seal {
    /// base64url Ed25519 signature over the signing payload.
    pub signature: String,
    /// Whose key.
    pub signer: Signer,
}

impl From<String> for Seal {
    /// An edge's signature.
    fn from(signature: String) -> Self {
        Self {
            signature,
            signer: Signer::Edge,
        }
    }
}

impl From<&str> for Seal {
    /// An edge's signature.
    fn from(signature: &str) -> Self {
        signature.to_owned().into()
    }
}

/// The bytes of an upload, streamed.
pub type BodyStream<'a> = BoxStream<'a, Result<Bytes, std::io::Error>>;

/// The bytes of a stored blob (or a range of it), streamed.
pub type ReadStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// The outcome of a successful upload.
#[derive(Debug, Clone, PartialEq)]
pub enum Put {
    /// Stored now (HTTP 201).
    Created(StoredEvidence),
    /// Already stored; nothing written, the first record returned (HTTP 200).
    Existing(StoredEvidence),
}

/// Why the store refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The body does not hash to the name it was uploaded under.
    #[error("the body's SHA-256 is {actual}, not {expected} as the path says")]
    HashMismatch {
        /// The hash from the path (and the signature).
        expected: Sha256Hex,
        /// The hash of the bytes received.
        actual: String,
    },
    /// The body is longer or shorter than the signed size.
    #[error("the body has {actual} bytes, but {expected} were declared and signed")]
    SizeMismatch {
        /// The signed size.
        expected: u64,
        /// Bytes received (at least).
        actual: u64,
    },
    /// Reading the upload failed (the client went away or sent less than `Content-Length`).
    #[error("the upload ended early: {0}")]
    Body(#[source] std::io::Error),
    /// The disk (or quota) is full; nothing partial was kept.
    #[error("no space left while {context}: {source}")]
    StorageFull {
        /// What was being written.
        context: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A stored record cannot be read back.
    #[error("the stored record of {sha256} is unreadable: {detail}")]
    Corrupt {
        /// The blob.
        sha256: Sha256Hex,
        /// What is wrong.
        detail: String,
    },
    /// Any other I/O failure.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Classifies an I/O error: a full disk or quota becomes [`StoreError::StorageFull`].
    pub fn io(context: &'static str, source: std::io::Error) -> Self {
        if crate::durable::is_storage_full(&source) {
            Self::StorageFull { context, source }
        } else {
            Self::Io { context, source }
        }
    }
}

/// A content-addressed, immutable blob store. Implementations must make [`put`](Self::put) safe under
/// concurrent uploads of the same hash and must never expose a blob whose record is not complete.
pub trait EvidenceStore: Send + Sync + 'static {
    /// Stores `body` under `meta.sha256` if it hashes to it and has `meta.size` bytes. The caller has
    /// verified (or made) the signature in `seal` already. If the hash is stored, returns [`Put::Existing`] without
    /// reading the body.
    fn put<'a>(
        &'a self,
        meta: EvidenceMeta,
        seal: Seal,
        stored_at: DateTime<Utc>,
        body: BodyStream<'a>,
    ) -> BoxFuture<'a, Result<Put, StoreError>>;

    /// The record of a stored blob, or `None`.
    fn get<'a>(
        &'a self,
        sha256: &'a Sha256Hex,
    ) -> BoxFuture<'a, Result<Option<StoredEvidence>, StoreError>>;

    /// The bytes `range` of a stored blob; the caller has clamped the range to its size.
    fn read<'a>(
        &'a self,
        sha256: &'a Sha256Hex,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<ReadStream, StoreError>>;
}
