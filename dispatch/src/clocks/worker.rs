//! The clock worker: every replica runs one, on the escalation worker's supervised poll loop
//! ([`crate::escalation::worker::supervise`]) and with its poll interval and batch. Each due clock
//! is claimed with `FOR UPDATE SKIP LOCKED` and fired in a transaction of its own
//! ([`super::store::fire_one`]); clocks are rows, so a moment that came due while every replica
//! was down fires at the next poll after start.

use super::ClocksConfig;
use super::store;
use crate::escalation::Clock;
use crate::escalation::worker::{drain, supervise, worker_id};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Fires up to `batch` due clock moments, one transaction each; returns how many clocks fired.
pub async fn fire_due(
    pool: &PgPool,
    config: &ClocksConfig,
    batch: usize,
    clock: &dyn Clock,
    by: &str,
) -> Result<usize, sqlx::Error> {
    drain(batch, || store::fire_one(pool, config, clock.now(), by)).await
}

/// Runs until `shutdown` is cancelled, polling every `poll_interval_ms` (the escalation
/// worker's) and firing up to `batch` clocks per poll.
pub async fn run(
    pool: PgPool,
    config: ClocksConfig,
    poll_interval_ms: u64,
    batch: u32,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let me = worker_id();
    let span = tracing::info_span!("clocks", worker = %me);
    let interval = Duration::from_millis(poll_interval_ms);
    let batch = batch as usize;
    let config = Arc::new(config);
    let poll = move || {
        let (pool, config, clock, me) = (pool.clone(), config.clone(), clock.clone(), me.clone());
        async move { fire_due(&pool, &config, batch, clock.as_ref(), &me).await }
    };
    supervise("clock", interval, batch, shutdown, poll)
        .instrument(span)
        .await
}
