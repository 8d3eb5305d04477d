//! The filesystem backend: `{root}/blobs/{ab}/{sha256}` holds the bytes and `{sha256}.json` beside it
//! the [`StoredEvidence`] record (a JSON sidecar, so every blob describes itself without a database).
//!
//! Write order (the crash behaviour, also in the README):
//! 1. stream the body into `.{sha256}.{uuid}.tmp` in the shard folder while hashing; refuse on a
//!    wrong size or hash;
//! 2. `fsync` the temp file, `rename` it to `{sha256}`, `fsync` the folder;
//! 3. write the record to `.{sha256}.json.{uuid}.tmp`, `fsync` it, hard-link it to `{sha256}.json`
//!    (which fails if the name exists: the first record wins, also across processes), `fsync` the
//!    folder.
//!
//! A blob counts as stored only once its record exists. A crash before step 3 leaves at most a
//! complete blob without a record, which reads as "not stored" and is completed by the edge's retry;
//! temp files left by a crash are removed at start. Concurrent uploads of one hash each write their
//! own temp file; the renames put identical bytes in place and only one link of the record succeeds.

use std::io::ErrorKind;
use std::ops::Range;
use std::path::{Path, PathBuf};

use bl_proto::evidence::{EvidenceMeta, Sha256Hex};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _, BufWriter};

use super::{
    BodyStream, EvidenceStore, Put, RECORD_VERSION, ReadStream, Seal, StoreError, StoredEvidence,
};

/// Write buffer for uploads: few, large writes.
const WRITE_BUFFER: usize = 256 * 1024;
/// Read chunk for downloads.
const READ_CHUNK: usize = 64 * 1024;

/// Evidence in a local folder.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    /// Opens (creating if needed) the store at `root` and removes temp files a crash left behind.
    pub async fn open(root: &Path) -> Result<Self, StoreError> {
        let blobs = root.join("blobs");
        tokio::fs::create_dir_all(&blobs)
            .await
            .map_err(|e| StoreError::io("creating the evidence folder", e))?;
        let store = Self {
            root: root.to_owned(),
        };
        let removed = tokio::task::spawn_blocking(move || remove_stale_temp_files(&blobs))
            .await
            .map_err(|e| StoreError::io("cleaning temp files", std::io::Error::other(e)))?
            .map_err(|e| StoreError::io("cleaning temp files", e))?;
        if removed > 0 {
            tracing::warn!(
                removed,
                "removed temp files of uploads interrupted by a crash"
            );
        }
        Ok(store)
    }

    fn shard_dir(&self, sha: &Sha256Hex) -> PathBuf {
        self.root.join("blobs").join(sha.shard())
    }

    /// Where the bytes of `sha` live.
    pub fn blob_path(&self, sha: &Sha256Hex) -> PathBuf {
        self.shard_dir(sha).join(sha.as_str())
    }

    /// Where the record of `sha` lives.
    pub fn record_path(&self, sha: &Sha256Hex) -> PathBuf {
        self.shard_dir(sha).join(format!("{sha}.json"))
    }

    async fn record(&self, sha: &Sha256Hex) -> Result<Option<StoredEvidence>, StoreError> {
        let bytes = match tokio::fs::read(self.record_path(sha)).await {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("reading an evidence record", e)),
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
        mut body: BodyStream<'_>,
    ) -> Result<Put, StoreError> {
        let sha = meta.sha256.clone();
        if let Some(existing) = self.record(&sha).await? {
            return Ok(Put::Existing(existing));
        }
        let dir = self.shard_dir(&sha);
        self.ensure_shard(&dir).await?;

        // 1. Stream to a temp file beside the final name, hashing as we go.
        let tmp = TempFile(dir.join(format!(".{sha}.{}.tmp", uuid::Uuid::now_v7())));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp.0)
            .await
            .map_err(|e| StoreError::io("creating the upload temp file", e))?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
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
            out.write_all(&chunk)
                .await
                .map_err(|e| StoreError::io("writing the blob", e))?;
        }
        if received != meta.size {
            return Err(StoreError::SizeMismatch {
                expected: meta.size,
                actual: received,
            });
        }
        let actual = hex::encode(hasher.finalize());
        if actual != sha.as_str() {
            return Err(StoreError::HashMismatch {
                expected: sha,
                actual,
            });
        }

        // 2. Make the bytes durable, then give them their name.
        out.flush()
            .await
            .map_err(|e| StoreError::io("writing the blob", e))?;
        let file = out.into_inner();
        file.sync_all()
            .await
            .map_err(|e| StoreError::io("syncing the blob", e))?;
        drop(file);
        tokio::fs::rename(&tmp.0, self.blob_path(&sha))
            .await
            .map_err(|e| StoreError::io("naming the blob", e))?;
        tmp.disarm();
        sync_dir(&dir).await?;

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
        let tmp = TempFile(dir.join(format!(".{sha}.json.{}.tmp", uuid::Uuid::now_v7())));
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp.0)
            .await
            .map_err(|e| StoreError::io("creating the record temp file", e))?;
        file.write_all(&json)
            .await
            .map_err(|e| StoreError::io("writing the record", e))?;
        file.flush()
            .await
            .map_err(|e| StoreError::io("writing the record", e))?;
        file.sync_all()
            .await
            .map_err(|e| StoreError::io("syncing the record", e))?;
        drop(file);
        match tokio::fs::hard_link(&tmp.0, self.record_path(&sha)).await {
            Ok(()) => {
                drop(tmp);
                sync_dir(&dir).await?;
                Ok(Put::Created(stored))
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                drop(tmp);
                let existing = self
                    .record(&sha)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt {
                        sha256: sha.clone(),
                        detail: "the record vanished while it was being written".into(),
                    })?;
                Ok(Put::Existing(existing))
            }
            Err(e) => Err(StoreError::io("naming the record", e)),
        }
    }

    /// Creates the shard folder if needed, and makes its name durable.
    async fn ensure_shard(&self, dir: &Path) -> Result<(), StoreError> {
        match tokio::fs::create_dir(dir).await {
            Ok(()) => sync_dir(&self.root.join("blobs")).await,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(StoreError::io("creating a shard folder", e)),
        }
    }
}

impl EvidenceStore for FsStore {
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
            let mut file = tokio::fs::File::open(self.blob_path(sha256))
                .await
                .map_err(|e| StoreError::io("opening a stored blob", e))?;
            file.seek(std::io::SeekFrom::Start(range.start))
                .await
                .map_err(|e| StoreError::io("seeking in a stored blob", e))?;
            let len = range.end.saturating_sub(range.start);
            let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), READ_CHUNK);
            Ok(stream.boxed())
        })
    }
}

/// A temp file removed when dropped, unless [`disarm`](TempFile::disarm)ed after its rename.
struct TempFile(PathBuf);

impl TempFile {
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), err = %e, "cannot remove a temp file");
        }
    }
}

async fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || crate::durable::sync_dir(&dir))
        .await
        .map_err(|e| StoreError::io("syncing a folder", std::io::Error::other(e)))?
        .map_err(|e| StoreError::io("syncing a folder", e))
}

fn remove_stale_temp_files(blobs: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for shard in std::fs::read_dir(blobs)? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(shard.path())? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bl_proto::evidence::{EvidenceKind, sha256_hex};

    fn meta(bytes: &[u8]) -> EvidenceMeta {
        EvidenceMeta {
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            edge_id: "e1".parse().unwrap(),
            camera_id: "cam-1".parse().unwrap(),
            kind: EvidenceKind::Snapshot,
            content_type: "image/jpeg".into(),
            captured_at: bl_proto::time::now(),
        }
    }

    fn body(bytes: &'static [u8]) -> BodyStream<'static> {
        futures::stream::iter(bytes.chunks(3).map(|c| Ok(axum::body::Bytes::from(c)))).boxed()
    }

    #[tokio::test]
    async fn a_stored_blob_reads_back_whole_and_in_part() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).await.unwrap();
        let m = meta(b"hello evidence");
        let put = store
            .put(
                m.clone(),
                "sig".into(),
                bl_proto::time::now(),
                body(b"hello evidence"),
            )
            .await
            .unwrap();
        assert!(matches!(put, Put::Created(_)));
        let mut s = store.read(&m.sha256, 6..14).await.unwrap();
        let mut got = Vec::new();
        while let Some(c) = s.next().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, b"evidence");
    }

    #[tokio::test]
    async fn a_refused_upload_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).await.unwrap();
        let m = meta(b"the real bytes");
        let e = store
            .put(
                m.clone(),
                "sig".into(),
                bl_proto::time::now(),
                body(b"other bytes!!!"),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::HashMismatch { .. }), "{e}");
        let shard = dir.path().join("blobs").join(m.sha256.shard());
        assert_eq!(std::fs::read_dir(shard).unwrap().count(), 0);
        assert!(store.get(&m.sha256).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn temp_files_of_a_crashed_upload_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let shard = dir.path().join("blobs").join("ab");
        std::fs::create_dir_all(&shard).unwrap();
        std::fs::write(shard.join(".abcd.0190.tmp"), b"partial").unwrap();
        FsStore::open(dir.path()).await.unwrap();
        assert_eq!(std::fs::read_dir(&shard).unwrap().count(), 0);
    }
}
