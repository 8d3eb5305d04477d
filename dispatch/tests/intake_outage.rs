//! DESIGN.md §7 under a database crash: PostgreSQL is stopped with `pg_ctl stop -m immediate` while
//! an edge is reporting. The API says 503 (never a false success), the consumer acknowledges nothing
//! it has not committed, and once the database is back every event is there exactly once.
//! Private PostgreSQL and mosquitto, so crashing them disturbs no other test.

mod common;

use bl_service::secret::Secret;
use bl_test_support::broker::PrivateBroker;
use bl_test_support::postgres::PrivatePostgres;
use common::{ADMIN_PASSWORD, Server};
use dispatch::config::{Config, MqttConfig};
use reqwest::StatusCode;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::time::{Duration, Instant};
use uuid::Uuid;

const EVENTS: usize = 120;

async fn count(url: &str) -> Option<(i64, i64)> {
    let pool = sqlx::PgPool::connect(url).await.ok()?;
    let row: (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM edge_events")
            .fetch_one(&pool)
            .await
            .ok()?;
    pool.close().await;
    Some(row)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_during_intake_loses_and_doubles_nothing() {
    let pg = PrivatePostgres::start();
    let broker = PrivateBroker::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::with_database_url(Secret::new(pg.url.clone()));
    config.towns_file = common::towns_file();
    let admin_pw = dir.path().join("admin.pw");
    std::fs::write(&admin_pw, ADMIN_PASSWORD).unwrap();
    config.admin_password_file = Some(admin_pw);
    config.password.argon2_memory_kib = 8192;
    config.password.argon2_iterations = 1;
    config.database.acquire_timeout_secs = 1;
    config.mqtt = Some(MqttConfig {
        host: "127.0.0.1".into(),
        port: broker.port,
        username: broker.service_user.clone(),
        password_file: "unused".into(),
        password: Some(Secret::new(broker.service_password.clone())),
        client_id: "dispatch-outage".into(),
        share_group: "dispatch".into(),
    });
    let server = Server::start(config).await;

    // One premises with an edge and its camera.
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let premises = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO premises (id, name, licence_no, kind, address, town_id, risk_grade, person_in_charge, phone)
         VALUES ($1, '大峪街道某餐厅', 'JY11101090000001', 'restaurant', '北京市门头沟区大峪街道', 'dayu', 'C', '张伟', '13900000000')",
    )
    .bind(premises)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO edges (id, premises_id) VALUES ('outage-edge', $1)")
        .bind(premises)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO cameras (id, premises_id, name, source, edge_id, main_stream)
         VALUES ('outage-cam', $1, '后厨', 'edge', 'outage-edge', 'main')",
    )
    .bind(premises)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await; // the consumer subscribes

    // The edge reports steadily for the whole test.
    let password = broker.add_user("outage-edge");
    let mut options = MqttOptions::new("outage-edge", "127.0.0.1", broker.port);
    options.set_credentials("outage-edge", &password);
    let (edge, mut edge_events) = AsyncClient::new(options, 64);
    tokio::spawn(async move { while edge_events.poll().await.is_ok() {} });
    let publisher = tokio::spawn(async move {
        for _ in 0..EVENTS {
            let payload = format!(
                r#"{{"type":"detection","v":1,"eventId":"{}","episodeId":"{}","phase":"start","edgeId":"outage-edge","cameraId":"outage-cam","kind":"rodent","at":"2026-11-23T22:15:30.123Z","confidence":0.9,"boxes":[],"snapshot":null,"clip":null,"model":{{"name":"m","version":"1"}},"exercise":null}}"#,
                Uuid::now_v7(),
                Uuid::now_v7()
            );
            edge.publish(
                "bl/v1/edge/outage-edge/events",
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });

    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.crash();
    // The API never pretends: without its database it answers 503.
    let mut client = server.client();
    let (status, body) = client.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.start_again();
    publisher.await.unwrap();

    let start = Instant::now();
    loop {
        if let Some((rows, distinct)) = count(&pg.url).await {
            assert_eq!(rows, distinct, "an event was stored twice");
            if rows == EVENTS as i64 {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not every event arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;
}
