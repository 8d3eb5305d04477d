//! Edge intake through the real broker (the dev stack's mosquitto, real edge credentials and ACL)
//! into the real PostgreSQL: each event stored once by its id, whatever the edge resends; bad
//! messages dropped without stopping the consumer.

mod common;

use bl_service::secret::Secret;
use bl_test_support::stack::{Stack, random_token};
use common::{Server, TestDb, config};
use dispatch::config::MqttConfig;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A premises in 斋堂镇 with one edge box and one camera on it.
async fn register_edge(pool: &PgPool, edge: &str, camera: &str) {
    let premises = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO premises (id, name, licence_no, kind, address, town_id, risk_grade, person_in_charge, phone)
         VALUES ($1, '斋堂镇中心小学食堂', $2, 'schoolCanteen', '北京市门头沟区斋堂镇', 'zhaitang', 'B', '李红', '13800000000')",
    )
    .bind(premises)
    .bind(format!("JY{}", &random_token()[..14]))
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
}

fn detection(event_id: Uuid, edge: &str, camera: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"detection","v":1,"eventId":"{event_id}","episodeId":"{}","phase":"start","edgeId":"{edge}","cameraId":"{camera}","kind":"rodent","at":"2026-11-23T22:15:30.123Z","confidence":0.93,"boxes":[{{"x":0.4,"y":0.7,"w":0.03,"h":0.02,"label":"rodent","confidence":0.93}}],"snapshot":null,"clip":null,"model":{{"name":"rodent-mog2","version":"0.1.0"}},"exercise":null}}"#,
        Uuid::now_v7()
    )
    .into_bytes()
}

fn camera_event(event_id: Uuid, edge: &str, camera: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"camera","v":1,"eventId":"{event_id}","edgeId":"{edge}","cameraId":"{camera}","at":"2026-11-23T22:16:00.000Z","kind":"offline","detail":"no frame for 30 s","exercise":null}}"#
    )
    .into_bytes()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_events_are_stored_once_each_and_bad_messages_are_dropped() {
    let stack = Stack::from_env();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&db, &dir);
    let run = random_token();
    c.mqtt = Some(MqttConfig {
        host: stack.mqtt_host.clone(),
        port: stack.mqtt_port,
        username: stack.mqtt_service_user.clone(),
        password_file: "unused".into(),
        password: Some(Secret::new(stack.mqtt_service_password.clone())),
        client_id: format!("dispatch-test-{run}"),
        share_group: format!("t{run}"),
    });
    let server = Server::start(c).await;
    let pool = db.pool().await;
    let edge = format!("intake-{}", &run[..8]);
    let camera = format!("{edge}-cam1");
    register_edge(&pool, &edge, &camera).await;

    // The edge logs in with its own broker account, as an enrolled box does.
    let password = stack.add_mqtt_user(&edge);
    let mut options = MqttOptions::new(&edge, &stack.mqtt_host, stack.mqtt_port);
    options.set_credentials(&edge, &password);
    let (client, mut events) = AsyncClient::new(options, 32);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    // Wait until dispatch's subscription is live: a state report shows up in edge_status.
    let state_topic = format!("bl/v1/edge/{edge}/state");
    let state = format!(
        r#"{{"type":"edgeState","v":1,"edgeId":"{edge}","online":true,"agentVersion":"0.1.0","at":"2026-11-23T22:15:00.000Z","cameras":[],"disk":{{"totalBytes":1000,"freeBytes":500}},"outboxDepth":0,"configRevision":null}}"#
    );
    let start = Instant::now();
    while count(&pool, "SELECT count(*) FROM edge_status").await == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "dispatch never consumed the edge's state"
        );
        client
            .publish(
                &state_topic,
                QoS::AtLeastOnce,
                true,
                state.clone().into_bytes(),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let events_topic = format!("bl/v1/edge/{edge}/events");
    let rodent = Uuid::now_v7();
    let offline = Uuid::now_v7();
    let marker = Uuid::now_v7();
    let messages: Vec<Vec<u8>> = vec![
        detection(rodent, &edge, &camera),
        detection(rodent, &edge, &camera), // a resend after a lost PUBACK
        b"{ not json".to_vec(),
        br#"{"v":2,"type":"detection"}"#.to_vec(),
        detection(Uuid::now_v7(), "some-other-edge", &camera), // speaks for another edge
        detection(Uuid::now_v7(), &edge, "not-this-edges-camera"),
        camera_event(offline, &edge, &camera),
        detection(marker, &edge, &camera),
    ];
    for m in messages {
        client
            .publish(&events_topic, QoS::AtLeastOnce, false, m)
            .await
            .unwrap();
    }

    // One publisher's messages are consumed in order: once the last is stored, all were handled.
    let start = Instant::now();
    let marker_sql = format!("SELECT count(*) FROM edge_events WHERE event_id = '{marker}'");
    while count(&pool, &marker_sql).await == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the last event never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT event_id, type, kind FROM edge_events ORDER BY event_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        vec![
            (rodent, "detection".into(), "rodent".into()),
            (offline, "camera".into(), "offline".into()),
            (marker, "detection".into(), "rodent".into()),
        ]
    );
    let online: bool = sqlx::query_scalar("SELECT online FROM edge_status WHERE edge_id = $1")
        .bind(&edge)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(online);

    server.stop().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sent_while_dispatch_is_down_are_stored_after_it_returns() {
    let stack = Stack::from_env();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let run = random_token();
    let mqtt = MqttConfig {
        host: stack.mqtt_host.clone(),
        port: stack.mqtt_port,
        username: stack.mqtt_service_user.clone(),
        password_file: "unused".into(),
        password: Some(Secret::new(stack.mqtt_service_password.clone())),
        client_id: format!("dispatch-test-{run}"),
        share_group: format!("t{run}"),
    };
    let mut c = config(&db, &dir);
    c.mqtt = Some(mqtt.clone());
    let server = Server::start(c).await;
    let pool = db.pool().await;
    let edge = format!("down-{}", &run[..8]);
    let camera = format!("{edge}-cam1");
    register_edge(&pool, &edge, &camera).await;
    // Let the consumer's subscription and persistent session settle before it goes away.
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.stop().await;

    // The edge reports while dispatch is away: the broker holds the events for dispatch's session.
    let password = stack.add_mqtt_user(&edge);
    let mut options = MqttOptions::new(&edge, &stack.mqtt_host, stack.mqtt_port);
    options.set_credentials(&edge, &password);
    let (client, mut events) = AsyncClient::new(options, 32);
    let ids: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    for id in &ids {
        client
            .publish(
                format!("bl/v1/edge/{edge}/events"),
                QoS::AtLeastOnce,
                false,
                detection(*id, &edge, &camera),
            )
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < ids.len() {
        if let Event::Incoming(Packet::PubAck(_)) = events.poll().await.unwrap() {
            acked += 1;
        }
    }

    let mut c = config(&db, &dir);
    c.mqtt = Some(mqtt);
    let server = Server::start(c).await;
    let start = Instant::now();
    while count(&pool, "SELECT count(DISTINCT event_id) FROM edge_events").await < ids.len() as i64
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "events held by the broker never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        count(&pool, "SELECT count(*) FROM edge_events").await,
        ids.len() as i64
    );
    server.stop().await;
    db.drop_now().await;
}
