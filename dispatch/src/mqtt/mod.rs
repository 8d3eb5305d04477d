//! The MQTT consumer of edge reports (DESIGN.md §3.1, §7): events through the shared subscription
//! (each event to one replica), states through a plain one (retained messages are not delivered to
//! shared subscriptions). Acknowledgements are manual: a message is acknowledged only after its row
//! is committed, so a database outage or a crash leaves it with the broker, which keeps this
//! replica's session (clean session off) and delivers it again.
//!
//! Reports are stored in batches: what has arrived (up to [`MAX_BATCH`]) is split by edge into
//! [`SHARDS`] transactions stored at once ([`crate::intake::batch`]), then every message of it is
//! acknowledged. While the database is away
//! the consumer waits and retries the same batch with backoff; the broker holds the rest. Messages
//! that can never be stored (bad topic, bad payload, another edge's name, an unregistered camera)
//! are counted, logged without their bytes, and acknowledged, so they cannot block the queue; a
//! batch that PostgreSQL refuses for its data is stored again message by message to find them.
//!
//! Edges' answers to commands (`$share/{group}/bl/v1/edge/+/cmd/result`) go the same way to
//! [`crate::field::recheck::consume`]; the consumer's client is also the one commands go out on
//! ([`crate::field::recheck::EdgeLink`]).

use crate::AppState;
use crate::config::MqttConfig;
use crate::field::recheck::{self};
use crate::intake::{self, EdgeReport, Rejected, Stored};
use bl_proto::topic::{CMD_RESULT_FILTER, EVENTS_FILTER, STATE_FILTER};
use rumqttc::{
    AsyncClient, ClientError, ConnectionError, Event, EventLoop, MqttOptions, Packet, Publish, QoS,
};
use std::collections::VecDeque;
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
            Rejected::Unstorable(_) => &self.rejected_payload,
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

/// Transactions a batch is stored in at once. A batch is split by edge, so each edge's reports stay
/// in order in one transaction, and the parts are stored concurrently: PostgreSQL works on one
/// while the other waits for a round trip. (Different edges' reports about one incident queue on
/// its advisory lock, see [`crate::intake::batch`].)
const SHARDS: usize = 2;
/// Most messages stored in one transaction. The broker feeds at most its in-flight limit
/// (`max_inflight_messages`) unacknowledged messages, so a batch is also bounded by that.
const MAX_BATCH: usize = 1000;
/// Room in the client's request queue (acknowledgements, subscriptions, commands to edges).
const REQUESTS: usize = 1024;
/// How long acknowledgements that found the request queue full wait before the next try.
const ACK_RETRY: Duration = Duration::from_millis(5);

/// Consumes until `shutdown` is cancelled.
///
/// The loop never waits for room in the client's request queue: that queue is drained only inside
/// `EventLoop::poll`, which returns the packets it has buffered before it takes requests, while
/// the poller task waits for this loop to take its events — awaiting `client.ack` there can
/// deadlock both (and then no keep-alive goes out either, so the broker drops the connection).
/// Acknowledgements go out with `try_ack`; those that find the queue full wait in `unacked`.
pub async fn run(config: MqttConfig, app: Arc<AppState>, shutdown: CancellationToken) {
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    let password = config.password.as_ref().map(|p| p.expose()).unwrap_or("");
    options
        .set_credentials(&config.username, password)
        .set_keep_alive(Duration::from_secs(15))
        .set_clean_session(false)
        .set_manual_acks(true);
    let (client, events) = AsyncClient::new(options, REQUESTS);
    app.edge_link.attach(client.clone());
    let (tx, mut rx) = mpsc::channel(MAX_BATCH);
    let poller = tokio::spawn(poll_events(events, tx));
    let filters = vec![
        format!("$share/{}/{EVENTS_FILTER}", config.share_group),
        STATE_FILTER.to_owned(),
        format!("$share/{}/{CMD_RESULT_FILTER}", config.share_group),
    ];
    tracing::info!(broker = %config.host, port = config.port, client = %config.client_id, "edge intake starting");

    let mut unacked: VecDeque<Publish> = VecDeque::new();
    loop {
        send_acks(&client, &mut unacked);
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            event = rx.recv() => match event {
                Some(event) => event,
                None => break,
            },
            _ = tokio::time::sleep(ACK_RETRY), if !unacked.is_empty() => continue,
        };
        // Take what has arrived meanwhile: under load that is a full batch.
        let mut publishes = Vec::new();
        let mut next = Some(first);
        while let Some(event) = next.take() {
            match event {
                Event::Incoming(Packet::ConnAck(_)) => {
                    tracing::info!(client = %config.client_id, "edge intake connected");
                    tokio::spawn(subscribe(client.clone(), filters.clone()));
                }
                Event::Incoming(Packet::Publish(publish)) => publishes.push(publish),
                _ => {}
            }
            if publishes.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if publishes.is_empty() {
            continue;
        }
        if !handle_sharded(&app, &publishes, &shutdown).await {
            break; // shutting down with these messages unacknowledged: the broker keeps them
        }
        unacked.extend(publishes);
    }
    send_acks(&client, &mut unacked);
    let _ = client.try_disconnect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    poller.abort();
    tracing::info!("edge intake stopped");
}

/// Subscribes (again, after a reconnect) in a task of its own, since it may wait for room in the
/// request queue.
async fn subscribe(client: AsyncClient, filters: Vec<String>) {
    for filter in filters {
        if let Err(e) = client.subscribe(&filter, QoS::AtLeastOnce).await {
            tracing::error!(filter, err = %e, "cannot subscribe");
        }
    }
}

/// Hands committed messages' acknowledgements to the client, in order, while it has room.
fn send_acks(client: &AsyncClient, unacked: &mut VecDeque<Publish>) {
    while let Some(publish) = unacked.front() {
        match client.try_ack(publish) {
            Ok(()) => {
                unacked.pop_front();
            }
            Err(ClientError::TryRequest(_)) => return, // full: the poller drains it
            Err(e) => {
                tracing::warn!(err = %e, "cannot acknowledge; the broker will deliver again");
                unacked.pop_front();
            }
        }
    }
}

/// Stores a batch in [`SHARDS`] parts at once; false when shutdown interrupted any part.
async fn handle_sharded(
    app: &AppState,
    publishes: &[Publish],
    shutdown: &CancellationToken,
) -> bool {
    let mut shards: Vec<Vec<Publish>> = vec![Vec::new(); SHARDS];
    for publish in publishes {
        shards[shard_of(&publish.topic)].push(publish.clone());
    }
    let parts = shards
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| handle(app, s, shutdown));
    futures::future::join_all(parts)
        .await
        .into_iter()
        .all(|ok| ok)
}

/// The shard of a topic's edge (`bl/v1/edge/{edge}/…`); a topic without one goes to the first.
fn shard_of(topic: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let edge = topic.split('/').nth(3).unwrap_or("");
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    edge.hash(&mut hasher);
    (hasher.finish() % SHARDS as u64) as usize
}

/// Stores a batch of messages (edge reports in one transaction, command results one by one).
/// Returns false only when shutdown interrupted the retries.
async fn handle(app: &AppState, publishes: &[Publish], shutdown: &CancellationToken) -> bool {
    let stats = &app.intake;
    let mut reports = Vec::with_capacity(publishes.len());
    for publish in publishes {
        if recheck::is_result_topic(&publish.topic) {
            if broadcast_result(app, publish).await || unstored_result(app, publish) {
                continue;
            }
            if !recheck::consume(&app.pool, publish, shutdown).await {
                return false;
            }
            continue;
        }
        match intake::edge::parse(&publish.topic, &publish.payload) {
            Ok(report) => reports.push((publish, report)),
            Err(rejected) => reject(stats, &publish.topic, &rejected),
        }
    }
    if reports.is_empty() {
        return true;
    }
    let parsed: Vec<EdgeReport> = reports.iter().map(|(_, r)| r.clone()).collect();
    let config = &app.config;
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = std::time::Instant::now();
        match intake::batch::record_batch(
            &app.pool,
            &config.incidents,
            &config.escalation,
            &config.clocks,
            &parsed,
        )
        .await
        {
            Ok(verdicts) => {
                tracing::debug!(size = parsed.len(), took = ?started.elapsed(), "batch stored");
                for ((publish, _), verdict) in reports.iter().zip(verdicts) {
                    count(stats, &publish.topic, verdict);
                }
                return true;
            }
            // The server refused some value: find it by storing the messages one at a time.
            Err(e) if is_data_error(&e) => {
                tracing::warn!(err = %e, size = reports.len(), "a batch failed on its data; storing it message by message");
                for (publish, report) in &reports {
                    if !store(app, publish, report, shutdown).await {
                        return false;
                    }
                }
                return true;
            }
            Err(e) => {
                stats.database_retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(err = %e, size = reports.len(), retry_in = ?backoff, "cannot store edge reports; holding them");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// An edge's answer to a group broadcast's `startTalk` moves that kitchen's state; true when the
/// message was one (a database error leaves it to be dropped as unknown: the target then times
/// out as offline, which is what the console can honestly say).
async fn broadcast_result(app: &AppState, publish: &Publish) -> bool {
    let Ok(result) = bl_proto::decode::<bl_proto::command::CommandResult>(&publish.payload) else {
        return false;
    };
    match crate::intercom::broadcast::apply_result(&app.pool, &result).await {
        Ok(applied) => applied,
        Err(e) => {
            tracing::warn!(err = %e, cmd = %result.cmd_id, "cannot apply a broadcast's talk answer");
            false
        }
    }
}

/// An edge's answer to a live-video or talk command, which has no row to update: logged for what
/// it is (whether media then flows is the gateway's to see). False for any other message.
fn unstored_result(app: &AppState, publish: &Publish) -> bool {
    let Ok(result) = bl_proto::decode::<bl_proto::command::CommandResult>(&publish.payload) else {
        return false;
    };
    let Some(command) = app.edge_link.answered(result.cmd_id) else {
        return false;
    };
    let (edge, cmd, kind) = (command.edge.as_str(), result.cmd_id, command.kind);
    match &result.outcome {
        bl_proto::command::Outcome::Ok { .. } => {
            tracing::info!(edge, %cmd, kind, "the edge box did the command");
        }
        bl_proto::command::Outcome::Error { code, message } => {
            tracing::warn!(edge, %cmd, kind, code, message, "the edge box could not do the command");
        }
    }
    true
}

/// A data exception (class 22) or integrity violation (class 23): the same values fail again, so
/// retrying the batch would block the queue.
fn is_data_error(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if d.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")))
}

fn count(stats: &IntakeStats, topic: &str, verdict: Result<Stored, Rejected>) {
    match verdict {
        Ok(Stored::New) => stats.stored.fetch_add(1, Ordering::Relaxed),
        Ok(Stored::AlreadyKnown) => stats.already_known.fetch_add(1, Ordering::Relaxed),
        Err(rejected) => {
            reject(stats, topic, &rejected);
            0
        }
    };
}

/// Stores one message, retrying while the database is away. Returns false only when shutdown
/// interrupted the retries.
async fn store(
    app: &AppState,
    publish: &Publish,
    report: &EdgeReport,
    shutdown: &CancellationToken,
) -> bool {
    let config = &app.config;
    let mut backoff = BACKOFF_MIN;
    loop {
        let verdict = match intake::record(
            &app.pool,
            &config.incidents,
            &config.escalation,
            &config.clocks,
            report,
        )
        .await
        {
            Ok(verdict) => verdict,
            Err(e) if is_data_error(&e) => Err(Rejected::Unstorable(e.to_string())),
            Err(e) => {
                app.intake.database_retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(err = %e, retry_in = ?backoff, "cannot store an edge report; holding it");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        count(&app.intake, &publish.topic, verdict);
        return true;
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
