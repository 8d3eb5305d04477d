//! The S3-compatible backend (through the `object_store` crate): the same layout and rules as the
//! filesystem store ([`super::fs`]) in a bucket — `{prefix}blobs/{ab}/{sha256}` holds the bytes and
//! `{prefix}blobs/{ab}/{sha256}.json` the [`StoredEvidence`] record.
//!
//! Write order (the crash behaviour):
//! 1. stream the body into the blob's key as a multipart upload (or one `PUT` for a small blob) while
//!    hashing; on a wrong size or hash the upload is aborted, so nothing becomes visible;
//! 2. complete the upload (identical bytes from concurrent uploads of one hash replace each other);
//! 3. write the record with `If-None-Match: *`: the first record wins, also across gateways.
//!
//! As on a filesystem, a blob counts as stored only once its record exists; a crash between 2 and 3
//! leaves a blob without a record, which reads as "not stored" and is completed by the edge's retry.
//! An aborted or crashed multipart upload leaves parts the bucket's lifecycle rule
//! (`AbortIncompleteMultipartUpload`) should clean up.

use std::ops::Range;
use std::sync::Arc;

use bl_proto::evidence::{EvidenceMeta, Sha256Hex};
use bl_service::secret::Secret;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, PutMode, PutOptions, PutPayload};
use sha2::{Digest as _, Sha256};

use super::{
    BodyStream, EvidenceStore, Put, RECORD_VERSION, ReadStream, Seal, StoreError, StoredEvidence,
};

/// Part size of multipart uploads (S3's minimum is 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;

/// Where the bucket is and how to sign requests to it (the `[evidence]` table with `store = "s3"`).
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// The bucket (it must exist).
    pub bucket: String,
    /// `http(s)://host:port` of an S3-compatible server; None: AWS's own endpoint for `region`.
    pub endpoint: Option<String>,
    /// The region to sign for (`us-east-1` for most S3-compatible servers).
    pub region: String,
    /// Key prefix inside the bucket, empty or ending in `/`.
    pub prefix: String,
    /// Access key id.
    pub access_key_id: Secret,
    /// Secret access key.
    pub secret_access_key: Secret,
}

/// Evidence in an S3-compatible bucket.
pub struct S3Store {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl S3Store {
    /// A store in `settings.bucket`, checked by reading from it once (so a wrong endpoint, bucket or
    /// key fails at start, not at the first upload).
    pub async fn open(settings: &S3Settings) -> Result<Self, StoreError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(settings.access_key_id.expose())
            .with_secret_access_key(settings.secret_access_key.expose());
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|e| s3_error("configuring S3", e))?;
        let store = Self {
            store: Arc::new(store),
            prefix: settings.prefix.clone(),
        };
        // A listing (unlike a HEAD) tells a missing bucket from a missing key.
        let probe = store.key("blobs");
        match store.store.list_with_delimiter(Some(&probe)).await {
            Ok(_) => Ok(store),
            Err(e) => Err(s3_error("reaching the evidence bucket", e)),
        }
    }

    fn key(&self, rest: &str) -> ObjectPath {
        ObjectPath::from(format!("{}{rest}", self.prefix))
    }

    fn blob_key(&self, sha: &Sha256Hex) -> ObjectPath {
        self.key(&format!("blobs/{}/{sha}", sha.shard()))
    }

    fn record_key(&self, sha: &Sha256Hex) -> ObjectPath {
        self.key(&format!("blobs/{}/{sha}.json", sha.shard()))
    }

    async fn record(&self, sha: &Sha256Hex) -> Result<Option<StoredEvidence>, StoreError> {
        let bytes = match self.store.get(&self.record_key(sha)).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| s3_error("reading an evidence record", e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(s3_error("reading an evidence record", e)),
        };
        let corrupt = |detail: String| StoreError::Corrupt {
            sha256: sha.clone(),
            detail,
        };
        let stored: StoredEvidence =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if &stored.meta.sha256 != sha {
            return Err(corrupt(format!("it names {}", stored.meta.sha256)));
        }
        Ok(Some(stored))
    }

    async fn put_inner(
        &self,
        meta: EvidenceMeta,
        seal: Seal,
        stored_at: DateTime<Utc>,
        body: BodyStream<'_>,
    ) -> Result<Put, StoreError> {
        let sha = meta.sha256.clone();
        if let Some(existing) = self.record(&sha).await? {
            return Ok(Put::Existing(existing));
        }

        // 1–2. The bytes, visible only if they are the signed ones.
        let mut upload =
            BufWriter::with_capacity(self.store.clone(), self.blob_key(&sha), PART_BYTES);
        if let Err(e) = upload_verified(&mut upload, &meta, body).await {
            if let Err(abort) = upload.abort().await {
                tracing::warn!(sha256 = %sha, err = %abort, "cannot abort a refused upload");
            }
            return Err(e);
        }
        tokio::io::AsyncWriteExt::shutdown(&mut upload)
            .await
            .map_err(|e| StoreError::Io {
                context: "completing the blob upload",
                source: e,
            })?;

        // 3. The record, first one wins.
        let stored = StoredEvidence {
            v: RECORD_VERSION,
            meta,
            signature: seal.signature,
            signer: seal.signer,
            stored_at,
        };
        let json = serde_json::to_vec_pretty(&stored)
            .map_err(|e| StoreError::io("encoding the record", std::io::Error::other(e)))?;
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.record_key(&sha), PutPayload::from(json), create)
            .await
        {
            Ok(_) => Ok(Put::Created(stored)),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let existing = self
                    .record(&sha)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt {
                        sha256: sha.clone(),
                        detail: "the record vanished while it was being written".into(),
                    })?;
                Ok(Put::Existing(existing))
            }
            Err(e) => Err(s3_error("writing the record", e)),
        }
    }
}

/// Streams `body` into `upload`, hashing it; refuses a body of another size or hash than `meta`'s.
async fn upload_verified(
    upload: &mut BufWriter,
    meta: &EvidenceMeta,
    mut body: BodyStream<'_>,
) -> Result<(), StoreError> {
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(StoreError::Body)?;
        received += chunk.len() as u64;
        if received > meta.size {
            return Err(StoreError::SizeMismatch {
                expected: meta.size,
                actual: received,
            });
        }
        hasher.update(&chunk);
        upload
            .put(chunk)
            .await
            .map_err(|e| s3_error("uploading the blob", e))?;
    }
    if received != meta.size {
        return Err(StoreError::SizeMismatch {
            expected: meta.size,
            actual: received,
        });
    }
    let actual = hex::encode(hasher.finalize());
    if actual != meta.sha256.as_str() {
        return Err(StoreError::HashMismatch {
            expected: meta.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// An `object_store` failure as a store error (the message names the operation; credentials are
/// never part of it).
fn s3_error(context: &'static str, e: object_store::Error) -> StoreError {
    StoreError::Io {
        context,
        source: std::io::Error::other(e),
    }
}

impl EvidenceStore for S3Store {
    fn put<'a>(
        &'a self,
        meta: EvidenceMeta,
        seal: Seal,
        stored_at: DateTime<Utc>,
        body: BodyStream<'a>,
    ) -> BoxFuture<'a, Result<Put, StoreError>> {
        Box::pin(self.put_inner(meta, seal, stored_at, body))
    }

    fn get<'a>(
        &'a self,
        sha256: &'a Sha256Hex,
    ) -> BoxFuture<'a, Result<Option<StoredEvidence>, StoreError>> {
        Box::pin(self.record(sha256))
    }

    fn read<'a>(
        &'a self,
        sha256: &'a Sha256Hex,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<ReadStream, StoreError>> {
        Box::pin(async move {
            // S3 has no empty range; an empty blob or range reads as nothing.
            if range.is_empty() {
                return Ok(futures::stream::empty().boxed());
            }
            let options = GetOptions {
                range: Some(GetRange::Bounded(range)),
                ..Default::default()
            };
            let got = self
                .store
                .get_opts(&self.blob_key(sha256), options)
                .await
                .map_err(|e| s3_error("opening a stored blob", e))?;
            Ok(got
                .into_stream()
                .map(|r| r.map_err(std::io::Error::other))
                .boxed())
        })
    }
}
