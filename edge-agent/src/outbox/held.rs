//! Events held back on disk: an episode's `end` waits for its clip (the post-roll is still being
//! recorded), but it must survive a crash meanwhile. It is written here at once and moved into the
//! outbox, with the clip's reference, in one transaction; whatever is still held when the agent
//! starts goes to the outbox as it was (its pre-roll died with the process, so no clip is coming).

use super::{Outbox, OutboxError};
use bl_proto::topic::Topic;
use sqlx::SqlitePool;

pub(super) async fn create_table(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS held (
            key TEXT PRIMARY KEY,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL
        )",
    )
    .execute(pool)
    .await?;
    Ok(())
}

impl Outbox {
    /// Keeps `payload` under `key` until [`Outbox::release`]; durable once this returns.
    pub async fn hold(&self, key: &str, topic: &Topic, payload: &[u8]) -> Result<(), OutboxError> {
        sqlx::query("INSERT OR REPLACE INTO held (key, topic, payload) VALUES (?, ?, ?)")
            .bind(key)
            .bind(topic.to_string())
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Queues `payload` (the held message as it is now) and forgets the held one, atomically.
    pub async fn release(
        &self,
        key: &str,
        topic: &Topic,
        payload: &[u8],
    ) -> Result<i64, OutboxError> {
        let seq = self.push_with(topic, payload, Some(key)).await?;
        Ok(seq)
    }

    /// Queues every held message as it was held (at start: nothing will complete them now).
    /// Returns how many.
    pub async fn release_all_held(&self) -> Result<usize, OutboxError> {
        let rows: Vec<(String, String, Vec<u8>)> =
            sqlx::query_as("SELECT key, topic, payload FROM held ORDER BY rowid")
                .fetch_all(&self.pool)
                .await?;
        for (key, topic, payload) in &rows {
            let topic = Topic::parse(topic).map_err(|e| {
                OutboxError::Db(sqlx::Error::Protocol(format!("held topic {topic:?}: {e}")))
            })?;
            self.push_with(&topic, payload, Some(key)).await?;
        }
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bl_proto::EdgeId;

    #[tokio::test]
    async fn a_held_event_survives_a_restart_and_is_queued_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let topic = Topic::EdgeEvents(EdgeId::new("canteen-1").unwrap());
        let outbox = Outbox::open(&path, 1 << 20).await.unwrap();
        outbox
            .hold("ep-1", &topic, b"end without clip")
            .await
            .unwrap();
        outbox.hold("ep-2", &topic, b"end 2").await.unwrap();
        outbox
            .release("ep-2", &topic, b"end 2 with clip")
            .await
            .unwrap();
        assert_eq!(
            outbox.after(0, 10).await.unwrap().len(),
            1,
            "nothing held goes out early"
        );
        drop(outbox);

        let outbox = Outbox::open(&path, 1 << 20).await.unwrap();
        assert_eq!(outbox.release_all_held().await.unwrap(), 1);
        assert_eq!(outbox.release_all_held().await.unwrap(), 0, "released once");
        let queued: Vec<Vec<u8>> = outbox
            .after(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.payload)
            .collect();
        assert_eq!(
            queued,
            vec![b"end 2 with clip".to_vec(), b"end without clip".to_vec()]
        );
    }
}
