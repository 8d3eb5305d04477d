//! The sender: every replica runs one. Each poll it plans the deliveries of new notifications,
//! settles sends interrupted by a stopped worker, and claims due deliveries (up to `notify.batch`
//! in flight) which it sends concurrently, each in a task of its own. Rows, not memory, hold
//! every state, so a restart loses nothing.
//!
//! Supervised like the escalation timers: a failed poll is logged and retried with doubling
//! backoff; the loop ends only at shutdown, after the sends in flight have finished (each is
//! bounded by its channel's timeout).

use super::retry::{self, Backoff};
use super::{Channel, NotifyConfig, http, store};
use crate::escalation::Clock;
use crate::escalation::worker::{next_wait, worker_id};
use chrono::Duration as Span;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Everything a send needs, shared by the tasks.
struct Sender {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    channels: HashMap<String, (Box<dyn Channel>, Duration)>,
    backoff: Backoff,
    me: String,
}

impl Sender {
    /// Sends one claimed delivery and records its outcome.
    async fn deliver(&self, d: store::Claimed) -> Result<(), sqlx::Error> {
        let Some((channel, timeout)) = self.channels.get(&d.channel) else {
            return Ok(()); // claimed only for configured channels
        };
        let msg = store::message(&self.pool, d.notification_id).await?;
        let outcome = http::send(
            &self.http,
            channel.as_ref(),
            &msg,
            d.id,
            self.clock.now(),
            *timeout,
        )
        .await;
        let now = self.clock.now();
        let settled = retry::settle(
            outcome,
            channel.kind(),
            d.attempts as u32,
            &self.backoff,
            now,
        );
        let held = store::finish(&self.pool, d.id, &self.me, &settled, now).await?;
        match (held, settled.state) {
            (false, _) => tracing::warn!(delivery = %d.id, channel = %d.channel,
                "lease lost before the outcome was recorded; another worker settled it"),
            (true, "sent") => tracing::info!(delivery = %d.id, channel = %d.channel,
                incident = %msg.incident_id, attempts = d.attempts, "notification delivered"),
            (true, state) => tracing::warn!(delivery = %d.id, channel = %d.channel, state,
                attempts = d.attempts, err = settled.error.as_deref().unwrap_or(""),
                "notification not delivered"),
        }
        Ok(())
    }
}

/// One poll: plan, recover, claim as many as there is room for and start sending them. Returns
/// how many it claimed.
async fn poll(
    sender: &Arc<Sender>,
    config: &NotifyConfig,
    names: &[String],
    in_flight: &mut JoinSet<()>,
) -> Result<usize, sqlx::Error> {
    let now = sender.clock.now();
    store::plan(&sender.pool, config, now).await?;
    store::recover(&sender.pool, &sender.backoff, now).await?;
    let room = config.batch as usize - in_flight.len().min(config.batch as usize);
    if room == 0 || names.is_empty() {
        return Ok(0);
    }
    let lease = Span::seconds(config.lease_secs as i64);
    let claimed = store::claim(&sender.pool, names, now, lease, &sender.me, room as i64).await?;
    let n = claimed.len();
    for d in claimed {
        let sender = sender.clone();
        in_flight.spawn(
            async move {
                let id = d.id;
                if let Err(e) = sender.deliver(d).await {
                    // the row stays `sending` until its lease expires, then recovery settles it
                    tracing::warn!(delivery = %id, err = %e, "cannot record a delivery");
                }
            }
            .in_current_span(),
        );
    }
    Ok(n)
}

/// Runs until `shutdown` is cancelled, then lets the sends in flight finish.
pub async fn run(
    pool: PgPool,
    config: NotifyConfig,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let me = worker_id();
    let span = tracing::info_span!("notify", worker = %me);
    async move {
        let console = config.console_url.as_deref();
        let sender = Arc::new(Sender {
            pool,
            clock,
            http: http::client(),
            channels: config
                .channel
                .iter()
                .map(|c| {
                    let timeout = Duration::from_millis(c.timeout_ms);
                    (c.name.clone(), (super::build(c, console), timeout))
                })
                .collect(),
            backoff: Backoff {
                max_attempts: config.max_attempts,
                base_ms: config.retry_base_ms,
                max_ms: config.retry_max_ms,
            },
            me,
        });
        let names: Vec<String> = config.channel.iter().map(|c| c.name.clone()).collect();
        let interval = Duration::from_millis(config.poll_interval_ms);
        let mut backoff = None;
        let mut in_flight = JoinSet::new();
        tracing::info!(channels = names.len(), "notification sender running");
        loop {
            while in_flight.try_join_next().is_some() {}
            let outcome = match poll(&sender, &config, &names, &mut in_flight).await {
                Ok(n) => Ok(n),
                Err(e) => {
                    tracing::warn!(err = %e, "cannot poll notification deliveries; retrying");
                    Err(())
                }
            };
            // every interval: sends in flight never hold the loop
            let wait = next_wait(interval, outcome, usize::MAX, &mut backoff);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let draining = in_flight.len();
        while in_flight.join_next().await.is_some() {}
        tracing::info!(drained = draining, "notification sender stopped");
    }
    .instrument(span)
    .await
}
