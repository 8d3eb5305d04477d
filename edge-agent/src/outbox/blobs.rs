//! Evidence uploads in the outbox: one row per blob waiting for `PUT /evidence/{sha256}`, the bytes
//! in a spool file the row names. The row is written after the file is on disk (fsynced and renamed
//! into place) and removed before the file, so a crash leaves at worst a file without a row, which
//! the spool removes at the next start ([`Outbox::blob_files`]).
//!
//! Rows are handed out by due time: a blob whose upload failed waits for its retry time without
//! holding up the others. A blob the gateway refused for good is marked rejected and kept aside.

use super::{Outbox, OutboxError};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use std::path::PathBuf;

/// A blob to queue: already signed, its bytes already in `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlob {
    pub sha256: String,
    pub file: PathBuf,
    pub size: u64,
    /// `bl_proto::evidence::EvidenceMeta` as JSON.
    pub meta: String,
    /// The `X-Bl-Signature` value.
    pub signature: String,
}

/// A queued blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub seq: i64,
    pub sha256: String,
    pub file: PathBuf,
    pub size: u64,
    pub meta: String,
    pub signature: String,
    /// Failed attempts so far.
    pub attempts: u32,
}

pub(super) async fn create_table(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS uploads (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            sha256 TEXT NOT NULL,
            file TEXT NOT NULL,
            size INTEGER NOT NULL,
            meta TEXT NOT NULL,
            signature TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_ms INTEGER NOT NULL DEFAULT 0,
            rejected TEXT,
            queued_at_ms INTEGER NOT NULL
        )",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Makes room for `needed` bytes under `quota` (see the drop order in the module above):
/// rejected blobs go first and, when `for_event`, then queued blobs, oldest first. Returns the
/// spool files of the dropped rows, to remove once the transaction commits.
pub(super) async fn make_room(
    tx: &mut Transaction<'_, Sqlite>,
    needed: u64,
    quota: u64,
    for_event: bool,
) -> Result<Vec<PathBuf>, OutboxError> {
    let used: i64 = sqlx::query_scalar(
        "SELECT (SELECT COALESCE(SUM(length(payload)), 0) FROM outbox)
              + (SELECT COALESCE(SUM(size), 0) FROM uploads)",
    )
    .fetch_one(&mut **tx)
    .await?;
    let mut used = used as u64;
    let mut evicted = Vec::new();
    if used + needed <= quota {
        return Ok(evicted);
    }
    let order = if for_event {
        "SELECT seq, file, size, sha256, rejected IS NOT NULL FROM uploads ORDER BY rejected IS NULL, seq"
    } else {
        "SELECT seq, file, size, sha256, rejected IS NOT NULL FROM uploads WHERE rejected IS NOT NULL ORDER BY seq"
    };
    let candidates = sqlx::query(order).fetch_all(&mut **tx).await?;
    let mut dropped = Vec::new();
    for row in candidates {
        if used + needed <= quota {
            break;
        }
        let size = row.get::<i64, _>(2) as u64;
        used -= size;
        dropped.push(row.get::<i64, _>(0));
        evicted.push(PathBuf::from(row.get::<String, _>(1)));
        tracing::error!(
            sha256 = %row.get::<String, _>(3),
            bytes = size,
            rejected = row.get::<bool, _>(4),
            "outbox disk quota reached: evidence dropped without upload"
        );
    }
    if used + needed > quota {
        // Nothing is dropped unless the newcomer then fits.
        return Err(OutboxError::Full { used, quota });
    }
    for seq in dropped {
        sqlx::query("DELETE FROM uploads WHERE seq = ?")
            .bind(seq)
            .execute(&mut **tx)
            .await?;
    }
    Ok(evicted)
}

/// Removes spool files of dropped rows (a missing file is no error: a crash may have removed it).
pub(super) fn remove_files(files: &[PathBuf]) {
    for file in files {
        if let Err(e) = std::fs::remove_file(file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %file.display(), err = %e, "cannot remove a spool file");
        }
    }
}

fn blob(row: &sqlx::sqlite::SqliteRow) -> Blob {
    Blob {
        seq: row.get(0),
        sha256: row.get(1),
        file: PathBuf::from(row.get::<String, _>(2)),
        size: row.get::<i64, _>(3) as u64,
        meta: row.get(4),
        signature: row.get(5),
        attempts: row.get::<i64, _>(6) as u32,
    }
}

impl Outbox {
    /// Queues an upload; durable once this returns. A blob already queued (same hash, not
    /// rejected) is not queued twice: `Ok(None)`.
    pub async fn push_blob(&self, new: &NewBlob) -> Result<Option<i64>, OutboxError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let queued: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM uploads WHERE sha256 = ? AND rejected IS NULL LIMIT 1",
        )
        .bind(&new.sha256)
        .fetch_optional(&mut *tx)
        .await?;
        if queued.is_some() {
            return Ok(None);
        }
        let evicted = make_room(&mut tx, new.size, self.quota_bytes, false).await?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO uploads (sha256, file, size, meta, signature, queued_at_ms)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
        )
        .bind(&new.sha256)
        .bind(new.file.to_string_lossy().to_string())
        .bind(new.size as i64)
        .bind(&new.meta)
        .bind(&new.signature)
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        remove_files(&evicted);
        self.blob_pushed.notify_one();
        Ok(Some(seq))
    }

    /// The oldest upload due at `now_ms` (not rejected, retry time passed).
    pub async fn next_blob(&self, now_ms: i64) -> Result<Option<Blob>, OutboxError> {
        let row = sqlx::query(
            "SELECT seq, sha256, file, size, meta, signature, attempts FROM uploads
             WHERE rejected IS NULL AND next_attempt_ms <= ? ORDER BY next_attempt_ms, seq LIMIT 1",
        )
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(blob))
    }

    /// When the next pending upload is due, if any is queued.
    pub async fn next_blob_due(&self) -> Result<Option<i64>, OutboxError> {
        Ok(
            sqlx::query_scalar("SELECT MIN(next_attempt_ms) FROM uploads WHERE rejected IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The upload succeeded: the row goes, then the file.
    pub async fn blob_delivered(&self, blob: &Blob) -> Result<(), OutboxError> {
        sqlx::query("DELETE FROM uploads WHERE seq = ?")
            .bind(blob.seq)
            .execute(&self.pool)
            .await?;
        remove_files(std::slice::from_ref(&blob.file));
        Ok(())
    }

    /// The upload failed for now: try again at `next_attempt_ms`.
    pub async fn blob_retry(&self, blob: &Blob, next_attempt_ms: i64) -> Result<(), OutboxError> {
        sqlx::query(
            "UPDATE uploads SET attempts = attempts + 1, next_attempt_ms = ? WHERE seq = ?",
        )
        .bind(next_attempt_ms)
        .bind(blob.seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The gateway refused the upload for good: kept aside (never retried) with the reason, its
    /// file moved to `file`.
    pub async fn blob_rejected(
        &self,
        blob: &Blob,
        reason: &str,
        file: &std::path::Path,
    ) -> Result<(), OutboxError> {
        sqlx::query(
            "UPDATE uploads SET rejected = ?, file = ?, attempts = attempts + 1 WHERE seq = ?",
        )
        .bind(reason)
        .bind(file.to_string_lossy().to_string())
        .bind(blob.seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Uploads waiting and uploads kept aside.
    pub async fn blob_depth(&self) -> Result<(u64, u64), OutboxError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE rejected IS NULL), COUNT(*) FILTER (WHERE rejected IS NOT NULL) FROM uploads",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get::<i64, _>(0) as u64, row.get::<i64, _>(1) as u64))
    }

    /// Every spool file a row names (the spool removes files no row names).
    pub async fn blob_files(&self) -> Result<Vec<PathBuf>, OutboxError> {
        let files: Vec<String> = sqlx::query_scalar("SELECT file FROM uploads")
            .fetch_all(&self.pool)
            .await?;
        Ok(files.into_iter().map(PathBuf::from).collect())
    }

    /// Resolves after the next [`Outbox::push_blob`] in this process.
    pub async fn blob_pushed(&self) {
        self.blob_pushed.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bl_proto::EdgeId;
    use bl_proto::topic::Topic;

    fn new_blob(dir: &std::path::Path, name: &str, size: u64) -> NewBlob {
        let file = dir.join(name);
        std::fs::write(&file, vec![0u8; size as usize]).unwrap();
        NewBlob {
            sha256: name.repeat(64 / name.len()),
            file,
            size,
            meta: "{}".into(),
            signature: "sig".into(),
        }
    }

    fn topic() -> Topic {
        Topic::EdgeEvents(EdgeId::new("canteen-1").unwrap())
    }

    #[tokio::test]
    async fn a_failed_upload_waits_its_turn_without_holding_up_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("o.db"), 1 << 20)
            .await
            .unwrap();
        outbox
            .push_blob(&new_blob(dir.path(), "a", 10))
            .await
            .unwrap();
        outbox
            .push_blob(&new_blob(dir.path(), "b", 10))
            .await
            .unwrap();
        assert_eq!(
            outbox
                .push_blob(&new_blob(dir.path(), "a", 10))
                .await
                .unwrap(),
            None,
            "queued once"
        );
        let first = outbox.next_blob(0).await.unwrap().unwrap();
        assert_eq!(first.sha256, "a".repeat(64));
        outbox.blob_retry(&first, 5_000).await.unwrap();
        let next = outbox.next_blob(1_000).await.unwrap().unwrap();
        assert_eq!(next.sha256, "b".repeat(64));
        outbox.blob_delivered(&next).await.unwrap();
        assert!(!next.file.exists(), "the spool file goes with the row");
        assert!(outbox.next_blob(1_000).await.unwrap().is_none());
        let again = outbox.next_blob(5_000).await.unwrap().unwrap();
        assert_eq!(
            (again.sha256.as_str(), again.attempts),
            (first.sha256.as_str(), 1)
        );
        outbox
            .blob_rejected(&again, "bad_signature", &again.file)
            .await
            .unwrap();
        assert!(
            outbox.next_blob(i64::MAX).await.unwrap().is_none(),
            "never retried"
        );
        assert_eq!(outbox.blob_depth().await.unwrap(), (0, 1));
    }

    #[tokio::test]
    async fn at_the_quota_an_event_pushes_out_evidence_but_evidence_never_pushes_out_an_event() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("o.db"), 100).await.unwrap();
        let old = new_blob(dir.path(), "a", 40);
        outbox.push_blob(&old).await.unwrap();
        outbox
            .push_blob(&new_blob(dir.path(), "b", 40))
            .await
            .unwrap();
        // 80 of 100 used: a 30-byte event drops the oldest blob, file and row.
        outbox.push(&topic(), &[1; 30]).await.unwrap();
        assert!(!old.file.exists());
        assert_eq!(
            outbox.next_blob(0).await.unwrap().unwrap().sha256,
            "b".repeat(64)
        );
        // 70 used: a 40-byte blob does not fit and drops nothing.
        let e = outbox
            .push_blob(&new_blob(dir.path(), "c", 40))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                OutboxError::Full {
                    used: 70,
                    quota: 100
                }
            ),
            "{e}"
        );
        assert_eq!(outbox.blob_depth().await.unwrap(), (1, 0));
        assert_eq!(outbox.depth().await.unwrap().messages, 1);
    }
}
