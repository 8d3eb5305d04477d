//! The MQTT uplink: drains the [`Outbox`] to the broker in order, keeps the retained state fresh,
//! and reconnects with backoff when the link or the broker goes away.
//!
//! Delivery is at least once: an entry leaves the outbox only after the broker's PUBACK for it.
//! The connection uses a clean session, so after a reconnect the client library drops whatever
//! was unacknowledged and this loop resends it from the outbox itself, oldest first. A message whose
//! PUBACK was lost with the connection is therefore sent again; the center keys on `eventId`.
//!
//! The client library's event loop runs in a task of its own that is never cancelled mid-poll (a
//! cancelled poll can cut a write in half). It hands every event to the link task, which alone
//! publishes, keeps the acknowledgement books and decides when to reconnect: after a failure the
//! poller waits for the link's go-ahead, then discards every request queued in the meantime before
//! dialling, so no stale publish can ever be mistaken for a fresh one.

use crate::ingest::HealthBoard;
use crate::outbox::{Outbox, OutboxError};
use crate::remote::AppliedRevision;
use bl_proto::EdgeId;
use bl_proto::state::{DiskUsage, EdgeState};
use bl_proto::topic::Topic;
use bl_service::secret::Secret;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Outbox entries written by other processes are found by looking this often.
const OUTBOX_POLL: Duration = Duration::from_millis(250);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What the uplink needs to know.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    pub edge_id: EdgeId,
    pub host: String,
    pub port: u16,
    pub password: Secret,
    pub keep_alive: Duration,
    /// Most outbox entries published and not yet acknowledged.
    pub window: usize,
    pub state_interval: Duration,
    /// Where the outbox lives: its file system's free space goes into the state.
    pub data_dir: PathBuf,
    /// Where the center's config payloads go (to [`crate::remote`]); the newest replaces any
    /// not yet applied.
    pub config_payloads: watch::Sender<Vec<u8>>,
    /// The config revision in force, reported in the state.
    pub applied_revision: AppliedRevision,
    /// Where the center's commands go (to [`crate::command`]); `None`: the box takes no commands
    /// (tools and benchmarks).
    pub commands: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// What a publish in flight carries, in the order the client sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Entry(i64),
    State,
}

/// Runs until `shutdown` is cancelled. Returns an error only when the outbox itself fails.
pub async fn run(
    config: UplinkConfig,
    outbox: Outbox,
    board: HealthBoard,
    shutdown: CancellationToken,
) -> Result<(), UplinkError> {
    let mut options = MqttOptions::new(config.edge_id.as_str(), &config.host, config.port);
    options
        .set_credentials(config.edge_id.as_str(), config.password.expose())
        .set_keep_alive(config.keep_alive)
        .set_clean_session(true)
        .set_inflight(config.window.min(u16::MAX as usize) as u16)
        .set_last_will(LastWill::new(
            Topic::EdgeState(config.edge_id.clone()).to_string(),
            bl_proto::encode(&EdgeState::offline(
                config.edge_id.clone(),
                chrono::Utc::now(),
            )),
            QoS::AtLeastOnce,
            true,
        ));
    let (client, events) = AsyncClient::new(options, config.window + 8);
    let (event_tx, event_rx) = tokio::sync::mpsc::channel(256);
    let (go_tx, go_rx) = tokio::sync::mpsc::channel(1);
    let poller = tokio::spawn(poll_events(events, event_tx, go_rx));
    let mut link = Link {
        config,
        outbox,
        board,
        client,
        events: event_rx,
        reconnect: go_tx,
        connected: false,
        sent_after: 0,
        unnumbered: VecDeque::new(),
        by_packet: HashMap::new(),
        delivered: Vec::new(),
    };
    let result = link.run(shutdown).await;
    poller.abort();
    result
}

/// Turns the client's event loop and forwards what happens. After a failure it waits for the
/// go-ahead, then drops queued requests (`clean` moves them to the pending list, which the next
/// clean session discards) and dials again.
async fn poll_events(
    mut events: EventLoop,
    tx: tokio::sync::mpsc::Sender<Result<Event, ConnectionError>>,
    mut go: tokio::sync::mpsc::Receiver<()>,
) {
    loop {
        let event = events.poll().await;
        let failed = event.is_err();
        if tx.send(event).await.is_err() {
            return;
        }
        if failed {
            if go.recv().await.is_none() {
                return;
            }
            events.clean();
        }
    }
}

struct Link {
    config: UplinkConfig,
    outbox: Outbox,
    board: HealthBoard,
    client: AsyncClient,
    events: tokio::sync::mpsc::Receiver<Result<Event, ConnectionError>>,
    /// Tells the poller it may dial again.
    reconnect: tokio::sync::mpsc::Sender<()>,
    connected: bool,
    /// The last outbox seq handed to the client in this connection.
    sent_after: i64,
    /// Publishes handed to the client whose packet id is not known yet, oldest first.
    unnumbered: VecDeque<Sent>,
    /// Publishes on the wire, by packet id.
    by_packet: HashMap<u16, Sent>,
    /// Acknowledged entries not yet removed from the outbox.
    delivered: Vec<i64>,
}

impl Link {
    async fn run(&mut self, shutdown: CancellationToken) -> Result<(), UplinkError> {
        let edge = self.config.edge_id.clone();
        let mut backoff = BACKOFF_MIN;
        let mut state_timer = tokio::time::interval(self.config.state_interval);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                event = self.events.recv() => match event {
                    None => break, // the poller is gone; nothing left to drive
                    Some(Ok(event)) => {
                        if self.on_event(event).await? {
                            backoff = BACKOFF_MIN;
                            tracing::info!(edge = %edge, broker = %self.config.host, "uplink connected");
                        }
                    }
                    Some(Err(e)) => {
                        if self.connected {
                            tracing::warn!(edge = %edge, err = %e, "uplink lost; reconnecting");
                        } else {
                            tracing::warn!(edge = %edge, err = %e, retry_in = ?backoff, "uplink cannot connect");
                        }
                        self.on_disconnect().await?;
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        let _ = self.reconnect.try_send(());
                    }
                },
                _ = self.outbox.pushed(), if self.connected => {}
                _ = tokio::time::sleep(OUTBOX_POLL), if self.connected => {}
                _ = state_timer.tick(), if self.connected => self.publish_state(true).await?,
                // A new config in force is reported at once: the center may be waiting for it.
                _ = self.config.applied_revision.changed(), if self.connected => self.publish_state(true).await?,
            }
            if self.connected {
                // Deletions are batched (each commit is an fsync); a crash before one only means
                // those messages are sent once more.
                if self.delivered.len() >= self.config.window / 2 || self.events.is_empty() {
                    self.remove_delivered().await?;
                }
                self.fill_window().await?;
            }
        }
        self.remove_delivered().await?;
        if self.connected {
            // A clean goodbye: the retained state says offline without waiting for the will.
            self.publish_state(false).await?;
            let _ = self.client.disconnect().await;
            let drain = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(Ok(_)) = self.events.recv().await {}
            });
            let _ = drain.await;
        }
        Ok(())
    }

    /// Handles one event; returns true when a connection was just established.
    async fn on_event(&mut self, event: Event) -> Result<bool, UplinkError> {
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                self.connected = true;
                self.restart_from_outbox();
                // A clean session: subscribe again each time. The retained config comes at once.
                let config = Topic::EdgeConfig(self.config.edge_id.clone()).to_string();
                if let Err(e) = self.client.try_subscribe(config, QoS::AtLeastOnce) {
                    tracing::warn!(err = %e, "cannot subscribe to the center's config");
                }
                if self.config.commands.is_some() {
                    let cmd = Topic::EdgeCmd(self.config.edge_id.clone()).to_string();
                    if let Err(e) = self.client.try_subscribe(cmd, QoS::AtLeastOnce) {
                        tracing::warn!(err = %e, "cannot subscribe to the center's commands");
                    }
                }
                self.publish_state(true).await?;
                return Ok(true);
            }
            Event::Incoming(Packet::Publish(p))
                if matches!(Topic::parse(&p.topic), Ok(Topic::EdgeConfig(_))) =>
            {
                // Only the newest config matters: the watch channel keeps the latest one.
                self.config.config_payloads.send_replace(p.payload.to_vec());
            }
            Event::Incoming(Packet::Publish(p))
                if matches!(Topic::parse(&p.topic), Ok(Topic::EdgeCmd(_))) =>
            {
                // Never wait here: the link must keep turning. The command worker is quick to
                // take them (each command runs in a task of its own), so a full queue means a flood.
                if let Some(commands) = &self.config.commands
                    && commands.try_send(p.payload.to_vec()).is_err()
                {
                    tracing::error!(
                        bytes = p.payload.len(),
                        "command queue full or closed; a command was dropped unanswered"
                    );
                }
            }
            Event::Outgoing(Outgoing::Publish(packet)) => {
                if let Some(sent) = self.unnumbered.pop_front() {
                    self.by_packet.insert(packet, sent);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(Sent::Entry(seq)) = self.by_packet.remove(&ack.pkid) {
                    self.delivered.push(seq);
                }
            }
            _ => {}
        }
        Ok(false)
    }

    async fn on_disconnect(&mut self) -> Result<(), UplinkError> {
        self.connected = false;
        self.remove_delivered().await?;
        self.restart_from_outbox();
        Ok(())
    }

    /// Forgets what was in flight: the client drops it with the session, and the next connection
    /// sends everything still in the outbox again from the start.
    fn restart_from_outbox(&mut self) {
        self.sent_after = 0;
        self.unnumbered.clear();
        self.by_packet.clear();
    }

    async fn remove_delivered(&mut self) -> Result<(), UplinkError> {
        if !self.delivered.is_empty() {
            self.outbox.remove(&self.delivered).await?;
            self.delivered.clear();
        }
        Ok(())
    }

    /// Hands the client the next outbox entries, up to the window.
    async fn fill_window(&mut self) -> Result<(), UplinkError> {
        let in_flight = self.unnumbered.len() + self.by_packet.len();
        let room = self.config.window.saturating_sub(in_flight);
        if room == 0 || (in_flight > 0 && room < self.config.window.div_ceil(4)) {
            return Ok(()); // refill in batches, not one query per acknowledgement
        }
        for entry in self.outbox.after(self.sent_after, room).await? {
            if self
                .client
                .try_publish(entry.topic, QoS::AtLeastOnce, false, entry.payload)
                .is_err()
            {
                break; // the request queue is full; the next turn continues from here
            }
            self.unnumbered.push_back(Sent::Entry(entry.seq));
            self.sent_after = entry.seq;
        }
        Ok(())
    }

    async fn publish_state(&mut self, online: bool) -> Result<(), UplinkError> {
        let depth = self.outbox.depth().await?;
        // The state's depth counts what waits to leave the box: events and evidence uploads.
        let (blobs_waiting, _rejected) = self.outbox.blob_depth().await?;
        let cameras = self
            .board
            .lock()
            .expect("health board")
            .values()
            .cloned()
            .collect();
        let state = EdgeState {
            online,
            cameras,
            outbox_depth: depth.messages + blobs_waiting,
            disk: disk_usage(&self.config.data_dir),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            config_revision: self.config.applied_revision.get(),
            ..EdgeState::offline(self.config.edge_id.clone(), chrono::Utc::now())
        };
        let topic = Topic::EdgeState(self.config.edge_id.clone()).to_string();
        if self
            .client
            .try_publish(topic, QoS::AtLeastOnce, true, bl_proto::encode(&state))
            .is_ok()
        {
            self.unnumbered.push_back(Sent::State);
        }
        Ok(())
    }
}

/// Total and free bytes of the file system holding `dir` (zeros if it cannot be read).
fn disk_usage(dir: &std::path::Path) -> DiskUsage {
    match rustix::fs::statvfs(dir) {
        Ok(s) => DiskUsage {
            total_bytes: s.f_blocks * s.f_frsize,
            free_bytes: s.f_bavail * s.f_frsize,
        },
        Err(e) => {
            tracing::warn!(dir = %dir.display(), err = %e, "cannot read disk usage");
            DiskUsage {
                total_bytes: 0,
                free_bytes: 0,
            }
        }
    }
}
