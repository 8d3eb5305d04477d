//! The timer worker: every replica runs one. It polls for due timers every
//! `escalation.poll_interval_ms` and fires up to `escalation.batch` of them, each claimed with
//! `FOR UPDATE SKIP LOCKED` and fired in a transaction of its own ([`super::store::fire_one`]), so
//! replicas share the work and each step fires once. Timers are rows: a restart loses none, and a
//! step that came due while every replica was down fires at the next poll.
//!
//! Supervised: a database error (or a panic) in a poll is logged and retried with backoff
//! (doubling from the poll interval up to 10 s); the loop ends only at shutdown.

use super::store;
use super::{Clock, EscalationConfig};
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Longest wait between two attempts while the database fails.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// How long to wait before the next poll: at once when the last poll fired a whole batch (more
/// are due), the poll interval after a normal poll, doubling backoff after a failure.
pub fn next_wait(
    interval: Duration,
    outcome: Result<usize, ()>,
    batch: usize,
    backoff: &mut Option<Duration>,
) -> Duration {
    match outcome {
        Ok(fired) => {
            *backoff = None;
            if fired >= batch {
                Duration::ZERO
            } else {
                interval
            }
        }
        Err(()) => {
            let next = backoff.map_or(interval, |b| (b * 2).min(BACKOFF_MAX));
            *backoff = Some(next);
            next
        }
    }
}

/// A name for this worker in `escalation_timers.claimed_by`: process id and a random suffix (two
/// servers in one process differ).
pub fn worker_id() -> String {
    format!(
        "dispatch-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Fires due items one at a time (`fire_one` claims one, fires it in a transaction of its own and
/// says whether there was one) until none is due or `batch` have fired; returns how many fired.
/// Escalation timers and incident clocks both drain through it.
pub async fn drain<F, Fut>(batch: usize, mut fire_one: F) -> Result<usize, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, sqlx::Error>>,
{
    let mut fired = 0;
    while fired < batch {
        if !fire_one().await? {
            break;
        }
        fired += 1;
    }
    Ok(fired)
}

/// Fires up to `batch` due timers, one transaction each; returns how many fired.
pub async fn fire_due(
    pool: &PgPool,
    config: &EscalationConfig,
    clock: &dyn Clock,
    by: &str,
) -> Result<usize, sqlx::Error> {
    drain(config.batch as usize, || {
        store::fire_one(pool, config, clock.now(), by)
    })
    .await
}

/// The supervised poll loop of a timer worker, shared by escalation and incident clocks: calls
/// `poll` (which fires what is due and says how many) every `interval`, at once again after a
/// full `batch`, with doubling backoff after an error or a panic, until `shutdown`.
pub async fn supervise<P, Fut>(
    what: &'static str,
    interval: Duration,
    batch: usize,
    shutdown: CancellationToken,
    poll: P,
) where
    P: Fn() -> Fut,
    Fut: Future<Output = Result<usize, sqlx::Error>> + Send + 'static,
{
    let mut backoff = None;
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "{what} timers running"
    );
    loop {
        let outcome = match tokio::spawn(poll().in_current_span()).await {
            Ok(Ok(fired)) => Ok(fired),
            Ok(Err(e)) => {
                tracing::warn!(err = %e, "cannot fire {what} timers; retrying");
                Err(())
            }
            Err(e) => {
                tracing::error!(err = %e, "{what} poll panicked; retrying");
                Err(())
            }
        };
        let wait = next_wait(interval, outcome, batch, &mut backoff);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!("{what} timers stopped");
}

/// Runs until `shutdown` is cancelled.
pub async fn run(
    pool: PgPool,
    config: EscalationConfig,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let me = worker_id();
    let span = tracing::info_span!("escalation", worker = %me);
    let interval = Duration::from_millis(config.poll_interval_ms);
    let batch = config.batch as usize;
    let config = Arc::new(config);
    let poll = move || {
        let (pool, config, clock, me) = (pool.clone(), config.clone(), clock.clone(), me.clone());
        async move { fire_due(&pool, &config, clock.as_ref(), &me).await }
    };
    supervise("escalation", interval, batch, shutdown, poll)
        .instrument(span)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_batch_polls_again_at_once_and_a_short_one_waits_the_interval() {
        let i = Duration::from_millis(200);
        let mut b = None;
        assert_eq!(next_wait(i, Ok(64), 64, &mut b), Duration::ZERO);
        assert_eq!(next_wait(i, Ok(3), 64, &mut b), i);
    }

    #[test]
    fn failures_back_off_doubling_up_to_ten_seconds_and_a_success_resets() {
        let i = Duration::from_millis(200);
        let mut b = None;
        let waits: Vec<u128> = (0..9)
            .map(|_| next_wait(i, Err(()), 64, &mut b).as_millis())
            .collect();
        assert_eq!(
            waits,
            [200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000]
        );
        assert_eq!(next_wait(i, Ok(0), 64, &mut b), i);
        assert_eq!(next_wait(i, Err(()), 64, &mut b), i);
    }
}
