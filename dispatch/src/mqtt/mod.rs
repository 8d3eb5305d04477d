//! The MQTT consumer of edge reports (DESIGN.md §3.1, §7): events through the shared subscription
//! (each event to one replica), states through a plain one (retained messages are not delivered to
//! shared subscriptions). Acknowledgements are manual: a message is acknowledged only after its row
//! is committed, so a database outage or a crash leaves it with the broker, which keeps this
//! replica's session (clean session off) and delivers it again.
//!
//! While the database is away the consumer waits and retries the same message with backoff; the
//! broker holds the rest. Messages that can never be stored (bad topic, bad payload, another edge's
//! name, an unregistered camera) are counted, logged without their bytes, and acknowledged, so they
//! cannot block the queue.
//!
//! Edges' answers to commands (`$share/{group}/bl/v1/edge/+/cmd/result`) go the same way to
//! [`crate::field::recheck::consume`]; the consumer's client is also the one commands go out on
//! ([`crate::field::recheck::EdgeLink`]).

use crate::AppState;
use crate::clocks::ClocksConfig;
use crate::config::MqttConfig;
use crate::escalation::EscalationConfig;
use crate::field::recheck::{self};
use crate::incident::policy::IncidentsConfig;
use crate::intake::{self, Rejected, Stored};
use bl_proto::topic::{CMD_RESULT_FILTER, EVENTS_FILTER, STATE_FILTER};
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// What the consumer has done since start (for `/metrics` and tests).
#[derive(Debug, Default)]
pub struct IntakeStats {
    pub stored: AtomicU64,
    pub already_known: AtomicU64,
    pub rejected_topic: AtomicU64,
    pub rejected_payload: AtomicU64,
    pub rejected_wrong_edge: AtomicU64,
    pub rejected_unregistered: AtomicU64,
    pub database_retries: AtomicU64,
}

impl IntakeStats {
    fn count_rejected(&self, r: &Rejected) {
        let counter = match r {
            Rejected::Topic(_) => &self.rejected_topic,
            Rejected::Payload(_) => &self.rejected_payload,
            Rejected::WrongEdge { .. } => &self.rejected_wrong_edge,
            Rejected::Unregistered { .. } | Rejected::UnknownEdge(_) => &self.rejected_unregistered,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self) -> u64 {
        [
            &self.rejected_topic,
            &self.rejected_payload,
            &self.rejected_wrong_edge,
            &self.rejected_unregistered,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// Consumes until `shutdown` is cancelled.
pub async fn run(config: MqttConfig, app: Arc<AppState>, shutdown: CancellationToken) {
    let (incidents, escalation, clocks) = (
        &app.config.incidents,
        &app.config.escalation,
        &app.config.clocks,
    );
    let (pool, stats, edge_link) = (&app.pool, &app.intake, &app.edge_link);
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    let password = config.password.as_ref().map(|p| p.expose()).unwrap_or("");
    options
        .set_credentials(&config.username, password)
        .set_keep_alive(Duration::from_secs(15))
        .set_clean_session(false)
        .set_manual_acks(true);
    let (client, events) = AsyncClient::new(options, 64);
    edge_link.attach(client.clone());
    let (tx, mut rx) = mpsc::channel(64);
    let poller = tokio::spawn(poll_events(events, tx));
    let events_filter = format!("$share/{}/{EVENTS_FILTER}", config.share_group);
    let results_filter = format!("$share/{}/{CMD_RESULT_FILTER}", config.share_group);
    tracing::info!(broker = %config.host, port = config.port, client = %config.client_id, "edge intake starting");

    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            event = rx.recv() => match event {
                Some(event) => event,
                None => break,
            },
        };
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                tracing::info!(client = %config.client_id, "edge intake connected");
                for filter in [
                    events_filter.as_str(),
                    STATE_FILTER,
                    results_filter.as_str(),
                ] {
                    if let Err(e) = client.subscribe(filter, QoS::AtLeastOnce).await {
                        tracing::error!(filter, err = %e, "cannot subscribe");
                    }
                }
            }
            Event::Incoming(Packet::Publish(publish)) => {
                let stored = if recheck::is_result_topic(&publish.topic) {
                    recheck::consume(pool, &publish, &shutdown).await
                } else {
                    store(
                        pool, incidents, escalation, clocks, stats, &publish, &shutdown,
                    )
                    .await
                };
                if !stored {
                    break; // shutting down with this message unacknowledged: the broker keeps it
                }
                if let Err(e) = client.ack(&publish).await {
                    tracing::warn!(err = %e, "cannot acknowledge; the broker will deliver again");
                }
            }
            _ => {}
        }
    }
    let _ = client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    poller.abort();
    tracing::info!("edge intake stopped");
}

/// Stores one message, retrying while the database is away. Returns false only when shutdown
/// interrupted the retries.
async fn store(
    pool: &PgPool,
    incidents: &IncidentsConfig,
    escalation: &EscalationConfig,
    clocks: &ClocksConfig,
    stats: &IntakeStats,
    publish: &Publish,
    shutdown: &CancellationToken,
) -> bool {
    let report = match intake::edge::parse(&publish.topic, &publish.payload) {
        Ok(report) => report,
        Err(rejected) => {
            reject(stats, &publish.topic, &rejected);
            return true;
        }
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        match intake::record(pool, incidents, escalation, clocks, &report).await {
            Ok(Ok(Stored::New)) => {
                stats.stored.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            Ok(Ok(Stored::AlreadyKnown)) => {
                stats.already_known.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            Ok(Err(rejected)) => {
                reject(stats, &publish.topic, &rejected);
                return true;
            }
            Err(e) => {
                stats.database_retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(err = %e, retry_in = ?backoff, "cannot store an edge report; holding it");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

fn reject(stats: &IntakeStats, topic: &str, rejected: &Rejected) {
    stats.count_rejected(rejected);
    // An unparsable topic is untrusted text: log a bounded prefix of it.
    let topic: String = topic.chars().take(120).collect();
    tracing::warn!(topic = %topic, reason = rejected.reason(), err = %rejected, "dropped an edge report");
}

/// Turns the client's event loop in a task of its own (a poll cancelled midway could cut a write
/// in half) and forwards what happens; reconnects with backoff.
async fn poll_events(mut events: EventLoop, tx: mpsc::Sender<Event>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match events.poll().await {
            Ok(event) => {
                if matches!(event, Event::Incoming(Packet::ConnAck(_))) {
                    backoff = BACKOFF_MIN;
                }
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                log_connection_error(&e, backoff);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

fn log_connection_error(e: &ConnectionError, retry_in: Duration) {
    tracing::warn!(err = %e, ?retry_in, "edge intake: broker connection failed");
}
