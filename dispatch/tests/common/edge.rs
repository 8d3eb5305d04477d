//! A test edge box: a premises with an edge and a camera in the registry, the edge's own broker
//! account (as enrolment issues it), and the JSON it publishes.

use bl_service::secret::Secret;
use bl_test_support::stack::{Stack, random_token};
use chrono::{DateTime, Utc};
use dispatch::config::MqttConfig;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// dispatch's broker settings for one test: its own client id and share group, so that tests
/// running at the same time never take each other's events.
pub fn mqtt_config(stack: &Stack, run: &str) -> MqttConfig {
    MqttConfig {
        host: stack.mqtt_host.clone(),
        port: stack.mqtt_port,
        username: stack.mqtt_service_user.clone(),
        password_file: "unused".into(),
        password: Some(Secret::new(stack.mqtt_service_password.clone())),
        client_id: format!("dispatch-test-{run}"),
        share_group: format!("t{run}"),
    }
}

/// A premises of `kind` named `name` in 斋堂镇 (in `grid`, if given) with one edge box and one
/// camera on it; returns the premises id.
pub async fn register_edge(
    pool: &PgPool,
    edge: &str,
    camera: &str,
    kind: &str,
    name: &str,
    grid: Option<&str>,
) -> Uuid {
    let premises = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO premises (id, name, licence_no, kind, address, town_id, grid_id, risk_grade, person_in_charge, phone)
         VALUES ($1, $2, $3, $4, '北京市门头沟区斋堂镇', 'zhaitang', $5, 'B', '李红', '13800000000')",
    )
    .bind(premises)
    .bind(name)
    .bind(format!("JY{}", &random_token()[..14]))
    .bind(kind)
    .bind(grid)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO edges (id, premises_id) VALUES ($1, $2)")
        .bind(edge)
        .bind(premises)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO cameras (id, premises_id, name, source, edge_id, main_stream) VALUES ($1, $2, '后厨', 'edge', $3, 'main')",
    )
    .bind(camera)
    .bind(premises)
    .bind(edge)
    .execute(pool)
    .await
    .unwrap();
    premises
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Logs `edge` in to the broker with an account of its own and returns once dispatch consumes
/// its reports (a state report shows up in `edge_status`).
pub async fn connect(stack: &Stack, pool: &PgPool, edge: &str) -> AsyncClient {
    let password = stack.add_mqtt_user(edge);
    let mut options = MqttOptions::new(edge, &stack.mqtt_host, stack.mqtt_port);
    options.set_credentials(edge, &password);
    let (client, mut events) = AsyncClient::new(options, 32);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let state_topic = format!("bl/v1/edge/{edge}/state");
    let state = format!(
        r#"{{"type":"edgeState","v":1,"edgeId":"{edge}","online":true,"agentVersion":"0.1.0","at":"2026-11-23T22:15:00.000Z","cameras":[],"disk":{{"totalBytes":1000,"freeBytes":500}},"outboxDepth":0,"configRevision":null}}"#
    );
    let sql = format!("SELECT count(*) FROM edge_status WHERE edge_id = '{edge}'");
    let start = Instant::now();
    while count(pool, &sql).await == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "dispatch never consumed the edge's state"
        );
        client
            // not retained: test edges leave nothing behind on the shared broker
            .publish(
                &state_topic,
                QoS::AtLeastOnce,
                false,
                state.clone().into_bytes(),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client
}

/// Publishes `payloads` on the edge's events topic, in order.
pub async fn publish(client: &AsyncClient, edge: &str, payloads: Vec<Vec<u8>>) {
    for p in payloads {
        client
            .publish(
                format!("bl/v1/edge/{edge}/events"),
                QoS::AtLeastOnce,
                false,
                p,
            )
            .await
            .unwrap();
    }
}

/// Waits until the event `id` is stored (one publisher's events are consumed in order, so all
/// published before it were handled).
pub async fn wait_for_event(pool: &PgPool, id: Uuid) {
    let sql = format!("SELECT count(*) FROM edge_events WHERE event_id = '{id}'");
    let start = Instant::now();
    while count(pool, &sql).await == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "event {id} never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn millis(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A detection event as an edge publishes it.
pub struct Detection<'a> {
    pub event_id: Uuid,
    pub episode_id: Uuid,
    pub phase: &'a str,
    pub edge: &'a str,
    pub camera: &'a str,
    pub kind: &'a str,
    pub at: DateTime<Utc>,
    pub exercise: Option<&'a str>,
}

impl Detection<'_> {
    pub fn json(&self) -> Vec<u8> {
        let exercise = match self.exercise {
            Some(run) => format!("\"{run}\""),
            None => "null".into(),
        };
        let snapshot = format!(
            r#"{{"sha256":"{}","size":48213,"contentType":"image/jpeg","from":null,"to":null}}"#,
            "ab".repeat(32)
        );
        format!(
            r#"{{"type":"detection","v":1,"eventId":"{}","episodeId":"{}","phase":"{}","edgeId":"{}","cameraId":"{}","kind":"{}","at":"{}","confidence":0.93,"boxes":[{{"x":0.4,"y":0.7,"w":0.03,"h":0.02,"label":"rodent","confidence":0.93}}],"snapshot":{snapshot},"clip":null,"model":{{"name":"rodent-mog2","version":"0.1.0"}},"exercise":{exercise}}}"#,
            self.event_id,
            self.episode_id,
            self.phase,
            self.edge,
            self.camera,
            self.kind,
            millis(self.at)
        )
        .into_bytes()
    }
}

/// A camera event (`offline`, `online`, …) as an edge publishes it.
pub fn camera_event(
    event_id: Uuid,
    edge: &str,
    camera: &str,
    kind: &str,
    at: DateTime<Utc>,
) -> Vec<u8> {
    format!(
        r#"{{"type":"camera","v":1,"eventId":"{event_id}","edgeId":"{edge}","cameraId":"{camera}","at":"{}","kind":"{kind}","detail":"no frame for 30 s","exercise":null}}"#,
        millis(at)
    )
    .into_bytes()
}

/// The edge's own broker account (as enrolment issues it), subscribed to its `cmd` topic: the
/// client (to answer on `cmd/result`) and the commands dispatch sends it, decoded.
pub async fn edge_commands(
    stack: &Stack,
    edge: &str,
) -> (
    AsyncClient,
    tokio::sync::mpsc::Receiver<bl_proto::command::Command>,
) {
    use rumqttc::{Event, Packet};
    let password = stack.add_mqtt_user(edge);
    let mut options = MqttOptions::new(edge, &stack.mqtt_host, stack.mqtt_port);
    options.set_credentials(edge, &password);
    let (client, mut events) = AsyncClient::new(options, 32);
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let (subscribed_tx, mut subscribed) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    let _ = subscribed_tx.try_send(());
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let cmd = bl_proto::decode(&p.payload).expect("a valid command");
                    let _ = tx.send(cmd).await;
                }
                _ => {}
            }
        }
    });
    client
        .subscribe(format!("bl/v1/edge/{edge}/cmd"), QoS::AtLeastOnce)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), subscribed.recv())
        .await
        .expect("the edge subscribes to its commands");
    (client, rx)
}
