//! Edge intake through the real broker (the dev stack's mosquitto, real edge credentials and ACL)
//! into the real PostgreSQL: each event stored once by its id, whatever the edge resends; bad
//! messages dropped without stopping the consumer.

mod common;

use bl_test_support::stack::{Stack, random_token};
use common::edge::{self, Detection, camera_event, count, mqtt_config, register_edge};
use common::{Server, TestDb, config};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn detection(event_id: Uuid, edge: &str, camera: &str) -> Vec<u8> {
    Detection {
        event_id,
        episode_id: Uuid::now_v7(),
        phase: "start",
        edge,
        camera,
        kind: "rodent",
        at: "2026-11-23T22:15:30.123Z".parse().unwrap(),
        exercise: None,
    }
    .json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_events_are_stored_once_each_and_bad_messages_are_dropped() {
    let stack = Stack::from_env();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&db, &dir);
    let run = random_token();
    c.mqtt = Some(mqtt_config(&stack, &run));
    let server = Server::start(c).await;
    let pool = db.pool().await;
    let edge = format!("intake-{}", &run[..8]);
    let camera = format!("{edge}-cam1");
    register_edge(
        &pool,
        &edge,
        &camera,
        "schoolCanteen",
        "斋堂镇中心小学食堂",
        None,
    )
    .await;
    // The edge logs in with its own broker account, as an enrolled box does.
    let client = edge::connect(&stack, &pool, &edge).await;

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
        camera_event(
            offline,
            &edge,
            &camera,
            "offline",
            "2026-11-23T22:16:00Z".parse().unwrap(),
        ),
        detection(marker, &edge, &camera),
    ];
    for m in messages {
        client
            .publish(&events_topic, QoS::AtLeastOnce, false, m)
            .await
            .unwrap();
    }

    // One publisher's messages are consumed in order: once the last is stored, all were handled.
    edge::wait_for_event(&pool, marker).await;
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
    let mqtt = mqtt_config(&stack, &run);
    let mut c = config(&db, &dir);
    c.mqtt = Some(mqtt.clone());
    let server = Server::start(c).await;
    let pool = db.pool().await;
    let edge = format!("down-{}", &run[..8]);
    let camera = format!("{edge}-cam1");
    register_edge(
        &pool,
        &edge,
        &camera,
        "schoolCanteen",
        "斋堂镇中心小学食堂",
        None,
    )
    .await;
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
