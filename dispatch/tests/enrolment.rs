//! Edge enrolment end to end: an admin registers a box and gets a one-time code; the box enrols
//! with the code and its Ed25519 key, gets its own account on the dev stack's real mosquitto
//! (written into the broker's password file, which the broker reloads), and its reports are
//! accepted by dispatch's intake. A code works once; a wrong code or key is refused by name.

mod common;

use bl_test_support::stack::{Stack, random_token};
use common::edge::{count, mqtt_config};
use common::{ADMIN_PASSWORD, Server, TestDb, USER_PASSWORD, config, create_premises, create_user};
use dispatch::enrolment::EnrolmentConfig;
use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use std::time::{Duration, Instant};

fn enrolment_config(stack: &Stack) -> EnrolmentConfig {
    EnrolmentConfig {
        code_ttl_secs: 3600,
        broker_host: stack.mqtt_host.clone(),
        broker_port: stack.mqtt_port,
        mosquitto_password_file: stack.mqtt_passwd_file.clone(),
        mosquitto_lock_file: Some(stack.mqtt_lock_file.clone()),
        mosquitto_pid_file: Some(stack.mqtt_pid_file.clone()),
    }
}

/// Connects with the issued account; the broker reloads its password file asynchronously after
/// the SIGHUP, so a refusal in the first moments is retried.
async fn connect_as(host: &str, port: u16, user: &str, password: &str) -> AsyncClient {
    let start = Instant::now();
    loop {
        let mut options = MqttOptions::new(format!("{user}-{}", &random_token()[..6]), host, port);
        options.set_credentials(user, password);
        let (client, mut events) = AsyncClient::new(options, 16);
        let accepted = loop {
            match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break true,
                Ok(Ok(_)) => continue,
                _ => break false,
            }
        };
        if accepted {
            tokio::spawn(async move { while events.poll().await.is_ok() {} });
            return client;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the broker never accepted the enrolled account {user}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_box_gets_its_own_broker_account_and_its_reports_are_accepted() {
    let stack = Stack::from_env();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let run = random_token();
    let mut c = config(&db, &dir);
    c.mqtt = Some(mqtt_config(&stack, &run));
    c.enrolment = Some(enrolment_config(&stack));
    let server = Server::start(c).await;
    let mut admin = server.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let (status, premises) = create_premises(&mut admin, "zhaitang", "斋堂镇川味小馆").await;
    assert_eq!(status, StatusCode::CREATED, "{premises}");
    let premises_id = premises["id"].as_str().unwrap();

    // A town officer of another town may not register a box here.
    create_user(&mut admin, "dayu-officer", "townOfficer", Some(&["dayu"])).await;
    let mut dayu = server.client();
    dayu.login("dayu-officer", USER_PASSWORD).await;
    let edge = format!("enrol-{}", &run[..8]);
    let (status, _) = dayu
        .post("/api/edges", json!({"id": edge, "premisesId": premises_id}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, created) = admin
        .post("/api/edges", json!({"id": edge, "premisesId": premises_id}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let code = created["enrolmentCode"].as_str().unwrap().to_owned();
    assert!(created["edge"]["enrolledAt"].is_null());
    let (status, again) = admin
        .post("/api/edges", json!({"id": edge, "premisesId": premises_id}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    let key = SigningKey::from_bytes(&[9; 32]);
    let public = bl_proto::keys::encode_public(&key.verifying_key());
    let mut anyone = server.client();
    let (status, body) = anyone
        .post(
            "/api/enrol",
            json!({"edgeId": edge, "code": "wrong-code", "publicKey": public}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "enrolment_refused");
    let (status, body) = anyone
        .post(
            "/api/enrol",
            json!({"edgeId": edge, "code": code, "publicKey": "not-a-key"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_public_key");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("publicKey")
    );

    let (status, enrolled) = anyone
        .post(
            "/api/enrol",
            json!({"edgeId": edge, "code": code, "publicKey": public}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    assert_eq!(enrolled["mqtt"]["username"], edge.as_str());
    assert_eq!(enrolled["mqtt"]["port"], stack.mqtt_port);
    // The code is used up.
    let (status, _) = anyone
        .post(
            "/api/enrol",
            json!({"edgeId": edge, "code": code, "publicKey": public}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, edges) = admin.get("/api/edges").await;
    let listed = edges
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == edge.as_str())
        .unwrap();
    assert_eq!(listed["publicKey"], public.as_str());
    assert!(listed["enrolledAt"].is_string());
    assert!(listed["codeExpiresAt"].is_null());

    // The box logs in with what it was given and reports; dispatch's intake accepts it.
    let password = enrolled["mqtt"]["password"].as_str().unwrap();
    let client = connect_as(&stack.mqtt_host, stack.mqtt_port, &edge, password).await;
    let state = format!(
        r#"{{"type":"edgeState","v":1,"edgeId":"{edge}","online":true,"agentVersion":"0.1.0","at":"2026-11-23T22:15:00.000Z","cameras":[],"disk":{{"totalBytes":1000,"freeBytes":500}},"outboxDepth":0,"configRevision":null}}"#
    );
    let pool = db.pool().await;
    let sql = format!("SELECT count(*) FROM edge_status WHERE edge_id = '{edge}' AND online");
    let start = Instant::now();
    while count(&pool, &sql).await == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the enrolled edge's state never arrived"
        );
        client
            .publish(
                format!("bl/v1/edge/{edge}/state"),
                QoS::AtLeastOnce,
                false,
                state.clone(),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A new code re-keys the box: the old account password stops working after it enrols again.
    let (status, fresh) = admin
        .post(&format!("/api/edges/{edge}/enrolment-code"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let (status, re) = anyone
        .post(
            "/api/enrol",
            json!({"edgeId": edge, "code": fresh["enrolmentCode"], "publicKey": public}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{re}");
    assert_ne!(re["mqtt"]["password"], enrolled["mqtt"]["password"]);

    server.stop().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_enrolment_section_enrol_says_it_is_not_configured() {
    let (db, _dir, server, _admin) = common::setup().await;
    let mut anyone = server.client();
    let (status, body) = anyone
        .post(
            "/api/enrol",
            json!({"edgeId": "x", "code": "y", "publicKey": "z"}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "enrolment_not_configured");
    server.stop().await;
    db.drop_now().await;
}
