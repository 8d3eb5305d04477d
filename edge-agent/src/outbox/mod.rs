//! The durable outbox (DESIGN.md §7): every message the edge must get to the center is written here
//! first and removed only after the broker's PUBACK, so a dead link, a dead broker or a power cut loses
//! nothing — after a restart the uplink sends what is left, oldest first.
//!
//! **Crash behaviour.** SQLite in WAL mode with `synchronous = FULL`: when [`Outbox::push`] returns the
//! row is on disk. Removal after PUBACK may be lost in a crash, which resends that message once more;
//! the center inserts by `eventId`, so a resend never doubles a case. Several processes may open the
//! same file (the agent and a test or tool), SQLite serialises their writes.
//!
//! Evidence uploads wait here too ([`blobs`]): a row per blob, the bytes in a spool file.
//!
//! **When the disk quota is reached** (queued event payloads plus spooled evidence bytes), what goes
//! first, each drop logged as an error:
//! 1. evidence refused for good by the gateway and kept aside (oldest first);
//! 2. for a new *event*: queued evidence not yet uploaded, oldest first — the facts matter more than
//!    the pictures, and an event can name a blob that never arrives (the console says so);
//! 3. if that is not enough (or the newcomer is itself evidence), the new message is refused with
//!    [`OutboxError::Full`]. Queued events are never dropped; the agent's state reports the depth.

pub mod blobs;
mod held;

use bl_proto::topic::Topic;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the queue; sending follows it.
    pub seq: i64,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// How much is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Depth {
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox is full ({used} of {quota} bytes queued); the message was not stored")]
    Full { used: u64, quota: u64 },
    #[error("outbox database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("outbox database: {0}")]
    Db(#[from] sqlx::Error),
}

/// The queue. Cheap to clone; clones share the database and the wake-up signal.
#[derive(Clone)]
pub struct Outbox {
    pool: SqlitePool,
    quota_bytes: u64,
    pushed: Arc<Notify>,
    blob_pushed: Arc<Notify>,
}

impl Outbox {
    /// Opens (creating if needed) the outbox at `path`.
    pub async fn open(path: &Path, quota_bytes: u64) -> Result<Outbox, OutboxError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let open_error = |source| OutboxError::Open {
            path: path.display().to_string(),
            source,
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS outbox (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                topic TEXT NOT NULL,
                payload BLOB NOT NULL,
                queued_at_ms INTEGER NOT NULL
            )",
        )
        .execute(&pool)
        .await
        .map_err(open_error)?;
        blobs::create_table(&pool).await.map_err(open_error)?;
        held::create_table(&pool).await.map_err(open_error)?;
        Ok(Outbox {
            pool,
            quota_bytes,
            pushed: Arc::new(Notify::new()),
            blob_pushed: Arc::new(Notify::new()),
        })
    }

    /// Queues `payload` for `topic`; durable once this returns.
    pub async fn push(&self, topic: &Topic, payload: &[u8]) -> Result<i64, OutboxError> {
        self.push_with(topic, payload, None).await
    }

    /// Queues `payload`, removing the held message `release` in the same transaction.
    async fn push_with(
        &self,
        topic: &Topic,
        payload: &[u8],
        release: Option<&str>,
    ) -> Result<i64, OutboxError> {
        // IMMEDIATE takes the write lock up front: a read-then-write transaction that found another
        // process's commit in between would fail at once instead of waiting its turn.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let evicted =
            blobs::make_room(&mut tx, payload.len() as u64, self.quota_bytes, true).await?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (topic, payload, queued_at_ms) VALUES (?, ?, ?) RETURNING seq",
        )
        .bind(topic.to_string())
        .bind(payload)
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_one(&mut *tx)
        .await?;
        if let Some(key) = release {
            sqlx::query("DELETE FROM held WHERE key = ?")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        blobs::remove_files(&evicted);
        self.pushed.notify_one();
        Ok(seq)
    }

    /// Up to `limit` entries after `seq`, oldest first.
    pub async fn after(&self, seq: i64, limit: usize) -> Result<Vec<Entry>, OutboxError> {
        let rows = sqlx::query(
            "SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(seq)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Entry {
                seq: r.get(0),
                topic: r.get(1),
                payload: r.get(2),
            })
            .collect())
    }

    /// Removes delivered entries, in one transaction.
    pub async fn remove(&self, seqs: &[i64]) -> Result<(), OutboxError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for seq in seqs {
            sqlx::query("DELETE FROM outbox WHERE seq = ?")
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn depth(&self) -> Result<Depth, OutboxError> {
        let row = sqlx::query("SELECT COUNT(*), COALESCE(SUM(length(payload)), 0) FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(Depth {
            messages: row.get::<i64, _>(0) as u64,
            bytes: row.get::<i64, _>(1) as u64,
        })
    }

    /// Resolves after the next [`Outbox::push`] in this process (or at once if one happened since the
    /// last call). Other processes' pushes are found by polling.
    pub async fn pushed(&self) {
        self.pushed.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bl_proto::EdgeId;

    fn events_topic() -> Topic {
        Topic::EdgeEvents(EdgeId::new("canteen-1").unwrap())
    }

    #[tokio::test]
    async fn entries_come_back_in_order_and_removed_ones_stay_removed_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let outbox = Outbox::open(&path, 1 << 20).await.unwrap();
        for i in 0..5u8 {
            outbox.push(&events_topic(), &[i]).await.unwrap();
        }
        let all = outbox.after(0, 10).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.payload[0]).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(all[0].topic, "bl/v1/edge/canteen-1/events");
        outbox.remove(&[all[0].seq, all[2].seq]).await.unwrap();
        drop(outbox);

        let reopened = Outbox::open(&path, 1 << 20).await.unwrap();
        let left = reopened.after(0, 10).await.unwrap();
        assert_eq!(
            left.iter().map(|e| e.payload[0]).collect::<Vec<_>>(),
            [1, 3, 4]
        );
        assert_eq!(
            reopened.depth().await.unwrap(),
            Depth {
                messages: 3,
                bytes: 3
            }
        );
        let later = reopened.after(left[1].seq, 10).await.unwrap();
        assert_eq!(later.len(), 1);
    }

    #[tokio::test]
    async fn a_full_outbox_refuses_new_messages_and_keeps_the_queued_ones() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("o.db"), 10).await.unwrap();
        outbox.push(&events_topic(), b"12345678").await.unwrap();
        let e = outbox.push(&events_topic(), b"abc").await.unwrap_err();
        assert!(matches!(e, OutboxError::Full { used: 8, quota: 10 }), "{e}");
        assert!(e.to_string().contains("not stored"));
        assert_eq!(outbox.depth().await.unwrap().messages, 1);
    }
}
