//! The spool: evidence bytes on disk, signed and queued in the outbox for upload.
//!
//! **Crash behaviour.** A blob is written to a temporary name, fsynced, renamed to
//! `{spool}/{sha256}.{ext}`, the folder fsynced, and only then queued in the outbox; a blob counts
//! as stored when its row exists. At start, files no row names (a crash between rename and row) are
//! removed. The signature is made here, once, so the uploader only does I/O.

use crate::outbox::blobs::NewBlob;
use crate::outbox::{Outbox, OutboxError};
use bl_proto::evidence::{self, BlobRef, EvidenceKind, EvidenceMeta};
use bl_proto::{CameraId, EdgeId, SigningKey};
use chrono::{DateTime, Utc};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where rejected blobs are kept aside, inside the spool.
pub const REJECTED_DIR: &str = "rejected";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// What a blob is, besides its bytes.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub camera: CameraId,
    pub kind: EvidenceKind,
    pub content_type: &'static str,
    /// When the capture started (a clip's first frame, the snapshot's moment).
    pub captured_at: DateTime<Utc>,
    /// A clip's time range; `None` for a snapshot.
    pub range: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The spool folder with the key that signs what goes in.
#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    outbox: Outbox,
    edge: EdgeId,
    key: SigningKey,
}

impl Spool {
    /// Opens (creating) the folder and removes files left by a crash before their row was written.
    pub async fn open(
        dir: &Path,
        outbox: Outbox,
        edge: EdgeId,
        key: SigningKey,
    ) -> Result<Spool, SpoolError> {
        let file_error = |source| SpoolError::File {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir.join(REJECTED_DIR)).map_err(file_error)?;
        let known: std::collections::HashSet<PathBuf> =
            outbox.blob_files().await?.into_iter().collect();
        for entry in std::fs::read_dir(dir).map_err(file_error)? {
            let path = entry.map_err(file_error)?.path();
            if path.is_file() && !known.contains(&path) {
                tracing::info!(file = %path.display(), "removing a spool file no upload names (left by a crash)");
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(Spool {
            dir: dir.to_owned(),
            outbox,
            edge,
            key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh temporary path in the spool (for a remux to write into).
    pub fn temp_path(&self) -> PathBuf {
        self.dir.join(format!(".{}.tmp", uuid::Uuid::now_v7()))
    }

    /// Stores `bytes`; see [`Spool::store_file`].
    pub async fn store_bytes(&self, info: &BlobInfo, bytes: &[u8]) -> Result<BlobRef, SpoolError> {
        let tmp = self.temp_path();
        let written = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(source) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(SpoolError::File { path: tmp, source });
        }
        self.store_file(info, &tmp).await
    }

    /// Hashes and signs the finished file at `tmp` (in the spool), moves it to its content name
    /// and queues its upload. Returns the reference for events.
    pub async fn store_file(&self, info: &BlobInfo, tmp: &Path) -> Result<BlobRef, SpoolError> {
        let result = self.place(info, tmp).await;
        let _ = std::fs::remove_file(tmp); // gone after a rename; cleaned up after a failure
        result
    }

    async fn place(&self, info: &BlobInfo, tmp: &Path) -> Result<BlobRef, SpoolError> {
        let file_error = |path: &Path| {
            let path = path.to_owned();
            move |source| SpoolError::File { path, source }
        };
        let bytes = std::fs::read(tmp).map_err(file_error(tmp))?;
        std::fs::File::open(tmp)
            .and_then(|f| f.sync_all())
            .map_err(file_error(tmp))?;
        let sha256 = evidence::sha256_hex(&bytes);
        let meta = EvidenceMeta {
            sha256: sha256.clone(),
            size: bytes.len() as u64,
            edge_id: self.edge.clone(),
            camera_id: info.camera.clone(),
            kind: info.kind,
            content_type: info.content_type.to_owned(),
            captured_at: info.captured_at,
        };
        let signature = evidence::sign(&meta, &self.key);
        let ext = match info.kind {
            EvidenceKind::Clip => "mp4",
            EvidenceKind::Snapshot => "jpg",
            EvidenceKind::Audio => "audio",
        };
        let file = self.dir.join(format!("{sha256}.{ext}"));
        std::fs::rename(tmp, &file).map_err(file_error(&file))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(file_error(&self.dir))?;
        let queued = self
            .outbox
            .push_blob(&NewBlob {
                sha256: sha256.to_string(),
                file: file.clone(),
                size: meta.size,
                meta: serde_json::to_string(&meta).expect("evidence meta serialises"),
                signature,
            })
            .await;
        if let Err(e) = queued {
            let _ = std::fs::remove_file(&file);
            return Err(e.into());
        }
        Ok(BlobRef {
            sha256,
            size: meta.size,
            content_type: meta.content_type,
            from: info.range.map(|r| r.0),
            to: info.range.map(|r| r.1),
        })
    }
}
