//! The change feed: LISTEN on `bl_changes` (migration 0005) and hand each change to the hub.
//! PostgreSQL delivers a notification when its transaction commits, to every replica's listener,
//! so sockets on any replica see changes made through any other. Notifications sent while the
//! listening connection is down are lost, so after a reconnect every socket is told to resync.

use super::hub::{Event, Hub};
use super::message::Change;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The channel the triggers notify.
pub const CHANNEL: &str = "bl_changes";

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(10);

/// A connection from `pool` listening on [`CHANNEL`]. Made before the server accepts sockets, so
/// no change after start-up is missed.
pub async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Forwards changes from `listener` to `hub` until `stop`; a lost connection is re-established
/// with doubling backoff (0.1 s to 10 s), then sockets are told to resync.
pub async fn run(pool: PgPool, listener: PgListener, hub: Arc<Hub>, stop: CancellationToken) {
    let mut current = Some(listener);
    let mut retry = FIRST_RETRY;
    loop {
        let mut listener = match current.take() {
            Some(l) => l,
            None => {
                let attempt = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = listen(&pool) => r,
                };
                match attempt {
                    Ok(l) => {
                        tracing::info!("change feed listening again; clients told to resync");
                        hub.publish(resync());
                        retry = FIRST_RETRY;
                        l
                    }
                    Err(e) => {
                        tracing::warn!(err = %e, retry_ms = retry.as_millis() as u64, "change feed cannot listen; retrying");
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(retry) => {}
                        }
                        retry = (retry * 2).min(LONGEST_RETRY);
                        continue;
                    }
                }
            }
        };
        loop {
            let received = tokio::select! {
                _ = stop.cancelled() => return,
                r = listener.try_recv() => r,
            };
            match received {
                Ok(Some(n)) => forward(&hub, n.payload()),
                // the connection was lost and re-established at once: what was sent meanwhile is gone
                Ok(None) => {
                    tracing::warn!("change feed lost its connection; clients told to resync");
                    hub.publish(resync());
                }
                Err(e) => {
                    tracing::warn!(err = %e, "change feed lost its connection");
                    break;
                }
            }
        }
    }
}

fn resync() -> Event {
    Event::Resync("the change feed was interrupted; reload what you show".into())
}

/// Decodes one notification and publishes it; one that cannot be decoded is logged and skipped.
fn forward(hub: &Hub, payload: &str) {
    match serde_json::from_str::<Change>(payload) {
        Ok(change) => hub.publish(Event::Change(change)),
        Err(e) => {
            tracing::warn!(err = %e, len = payload.len(), "undecodable change notification skipped")
        }
    }
}
