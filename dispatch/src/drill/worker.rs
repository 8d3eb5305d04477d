//! The inject worker: every replica runs one, on the escalation worker's supervised poll loop
//! ([`crate::escalation::worker::supervise`]) with its poll interval and batch. Each due inject is
//! claimed with its run's row under `FOR UPDATE SKIP LOCKED` and fired in a transaction of its
//! own ([`super::store::fire_one`]); injects are rows, so each fires once across replicas and
//! restarts, and one that came due while every replica was down fires at the next poll.
//!
//! Each poll then sweeps the scene injects' stagings ([`super::scene::sweep`]): publishes edge
//! configs, plays confirmed scenes, links their incidents, clears what ENDEX ended.

use super::scene::{self, SceneLinks};
use super::store::{self, IntakeConfig};
use crate::escalation::Clock;
use crate::escalation::worker::{drain, supervise};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Runs until `shutdown` is cancelled.
pub async fn run(
    pool: PgPool,
    config: IntakeConfig,
    poll_interval_ms: u64,
    batch: u32,
    clock: Arc<dyn Clock>,
    scenes: SceneLinks,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("drill");
    let interval = Duration::from_millis(poll_interval_ms);
    let batch = batch as usize;
    let config = Arc::new(config);
    let scenes = Arc::new(scenes);
    let poll = move || {
        let (pool, config, clock) = (pool.clone(), config.clone(), clock.clone());
        let scenes = scenes.clone();
        async move {
            let fired = drain(batch, || store::fire_one(&pool, &config, clock.now())).await?;
            scene::sweep(&pool, &scenes, clock.now()).await?;
            Ok(fired)
        }
    };
    supervise("drill inject", interval, batch, shutdown, poll)
        .instrument(span)
        .await
}
