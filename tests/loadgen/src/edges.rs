//! Simulated edge boxes: their rows in dispatch's registry, their broker accounts, their MQTT
//! connections, and the reports they publish (the same JSON a real edge-agent sends).

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sqlx::PgPool;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

/// The password every simulated edge's account gets (the accounts live in a private broker).
pub const PASSWORD: &str = "bench-edge-password";

pub fn edge_id(i: usize) -> String {
    format!("bench-{i:05}")
}

pub fn camera_id(i: usize) -> String {
    format!("bench-{i:05}-cam1")
}

/// Writes `count` edge accounts into the private broker's password file at once and reloads it.
pub fn add_accounts(broker_data: &Path, count: usize) -> Result<()> {
    let names: Vec<String> = (0..count).map(edge_id).collect();
    let accounts: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), PASSWORD)).collect();
    dispatch::enrolment::mosquitto::PasswordFile {
        path: broker_data.join("mqtt/passwd"),
        lock: broker_data.join("mqtt.lock"),
        pid_file: Some(broker_data.join("mqtt/mosquitto.pid")),
    }
    .set_many(&accounts)
    .context("write the broker's password file")
}

/// `count` restaurants spread over the 13 towns, each with one edge and one camera.
pub async fn register(pool: &PgPool, count: usize) -> Result<()> {
    sqlx::query(
        "WITH towns AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n, count(*) OVER () AS total \
                        FROM regions WHERE kind <> 'district'), \
              p AS (SELECT gen_random_uuid() AS id, i FROM generate_series(0, $1 - 1) AS i) \
         INSERT INTO premises (id, name, licence_no, kind, address, town_id, risk_grade, person_in_charge, phone) \
         SELECT p.id, '压测餐馆' || p.i, 'BENCH' || lpad(p.i::text, 5, '0'), 'restaurant', '北京市门头沟区压测路' || p.i || '号', \
                t.id, 'B', '王芳', '13800000000' \
         FROM p JOIN towns t ON t.n = p.i % t.total",
    )
    .bind(count as i64)
    .execute(pool)
    .await
    .context("insert premises")?;
    sqlx::query(
        "INSERT INTO edges (id, premises_id) \
         SELECT 'bench-' || substr(licence_no, 6), id FROM premises WHERE licence_no LIKE 'BENCH%'",
    )
    .execute(pool)
    .await
    .context("insert edges")?;
    sqlx::query(
        "INSERT INTO cameras (id, premises_id, name, source, edge_id, main_stream) \
         SELECT e.id || '-cam1', e.premises_id, '后厨', 'edge', e.id, 'main' FROM edges e WHERE e.id LIKE 'bench-%'",
    )
    .execute(pool)
    .await
    .context("insert cameras")?;
    Ok(())
}

/// Connects edge `i` to the broker, trying a few times (a burst of handshakes may overflow the
/// broker's accept queue); returns once the broker accepted it.
pub async fn connect(host: &str, port: u16, i: usize) -> Result<AsyncClient> {
    let mut tries = 0;
    loop {
        match connect_once(host, port, i).await {
            Ok(client) => return Ok(client),
            Err(_) if tries < 5 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn connect_once(host: &str, port: u16, i: usize) -> Result<AsyncClient> {
    let id = edge_id(i);
    let mut options = MqttOptions::new(&id, host, port);
    options
        .set_credentials(&id, PASSWORD)
        .set_keep_alive(Duration::from_secs(60))
        .set_inflight(100);
    let (client, mut events) = AsyncClient::new(options, 1000);
    loop {
        match tokio::time::timeout(Duration::from_secs(20), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => anyhow::bail!("edge {id} cannot connect: {e}"),
            Err(_) => anyhow::bail!("edge {id}: no CONNACK within 20 s"),
        }
    }
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    Ok(client)
}

/// Connects edges `range` with at most 100 handshakes in flight.
pub async fn connect_all(
    host: &str,
    port: u16,
    range: std::ops::Range<usize>,
) -> Result<Vec<AsyncClient>> {
    use futures::StreamExt;
    futures::stream::iter(range.map(|i| connect(host, port, i)))
        .buffered(100)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

fn millis(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A rodent detection of edge `i`'s episode, stamped `at` (the latency is measured from it).
pub fn detection(i: usize, episode: Uuid, phase: &str, at: DateTime<Utc>) -> Vec<u8> {
    format!(
        r#"{{"type":"detection","v":1,"eventId":"{}","episodeId":"{episode}","phase":"{phase}","edgeId":"{}","cameraId":"{}","kind":"rodent","at":"{}","confidence":0.9,"boxes":[{{"x":0.4,"y":0.7,"w":0.03,"h":0.02,"label":"rodent","confidence":0.9}}],"snapshot":null,"clip":null,"model":{{"name":"rodent-mog2","version":"0.1.0"}},"exercise":null}}"#,
        Uuid::now_v7(),
        edge_id(i),
        camera_id(i),
        millis(at)
    )
    .into_bytes()
}

/// Now, to the millisecond, as reports carry it.
pub fn now_millis() -> DateTime<Utc> {
    use chrono::{DurationRound, TimeDelta};
    Utc::now()
        .duration_trunc(TimeDelta::milliseconds(1))
        .expect("now truncates")
}

/// Each edge's premises, by edge index.
pub async fn premises(pool: &PgPool, count: usize) -> Result<Vec<Uuid>> {
    let rows: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT id, premises_id FROM edges WHERE id LIKE 'bench-%'")
            .fetch_all(pool)
            .await?;
    let map: std::collections::HashMap<String, Uuid> = rows.into_iter().collect();
    (0..count)
        .map(|i| {
            map.get(&edge_id(i))
                .copied()
                .context("a bench edge is missing")
        })
        .collect()
}

/// Edge `i`'s retained state: online, one camera.
pub fn state(i: usize) -> Vec<u8> {
    format!(
        r#"{{"type":"edgeState","v":1,"edgeId":"{}","online":true,"agentVersion":"0.1.0","at":"{}","cameras":[],"disk":{{"totalBytes":1000,"freeBytes":500}},"outboxDepth":0,"configRevision":null}}"#,
        edge_id(i),
        millis(Utc::now())
    )
    .into_bytes()
}

/// One edge's stream of reports: an episode starts, then updates; a new episode every 20 reports.
pub struct Reporter {
    pub index: usize,
    episode: Uuid,
    sent: u64,
}

impl Reporter {
    pub fn new(index: usize) -> Self {
        Self {
            index,
            episode: Uuid::now_v7(),
            sent: 0,
        }
    }

    /// Publishes the next report; returns its `at`.
    pub async fn send(&mut self, client: &AsyncClient) -> Result<DateTime<Utc>> {
        let phase = if self.sent.is_multiple_of(20) {
            self.episode = Uuid::now_v7();
            "start"
        } else {
            "update"
        };
        self.sent += 1;
        let at = now_millis();
        client
            .publish(
                format!("bl/v1/edge/{}/events", edge_id(self.index)),
                QoS::AtLeastOnce,
                false,
                detection(self.index, self.episode, phase, at),
            )
            .await
            .context("publish")?;
        Ok(at)
    }
}
