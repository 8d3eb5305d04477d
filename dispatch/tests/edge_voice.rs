//! The center's voice warnings reach the edge boxes (issue 7 item 4) through real mosquitto: a
//! recording and a warning rule set in admin are published in the retained EdgeConfig of exactly
//! the boxes whose cameras are at premises of that kind, a rule change publishes a new revision,
//! and the box fetches the recording by hash with a request signed by its device key.

mod common;

use bl_proto::config::EdgeConfig;
use bl_proto::event::ViolationKind;
use bl_proto::voice::{self, VoiceContent};
use bl_test_support::stack::{Stack, random_token};
use common::edge::{mqtt_config, register_edge};
use common::voice::{put_bytes, wav};
use common::*;
use reqwest::StatusCode;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use std::time::Duration;

/// The edge's own broker account subscribed to its retained config: the configs as they come.
async fn edge_configs(
    stack: &Stack,
    edge: &str,
) -> (AsyncClient, tokio::sync::mpsc::Receiver<EdgeConfig>) {
    let password = stack.add_mqtt_user(edge);
    let mut options = MqttOptions::new(edge, &stack.mqtt_host, stack.mqtt_port);
    options.set_credentials(edge, &password);
    let (client, mut events) = AsyncClient::new(options, 32);
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event
                && !p.payload.is_empty()
            {
                let config = bl_proto::decode(&p.payload).expect("a valid edge config");
                let _ = tx.send(config).await;
            }
        }
    });
    client
        .subscribe(format!("bl/v1/edge/{edge}/config"), QoS::AtLeastOnce)
        .await
        .unwrap();
    (client, rx)
}

/// The next config whose revision is above `after`.
async fn next_config(rx: &mut tokio::sync::mpsc::Receiver<EdgeConfig>, after: u64) -> EdgeConfig {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let c = rx.recv().await.expect("the subscription lasts");
            if c.revision > after {
                return c;
            }
        }
    })
    .await
    .expect("a new edge config is published within 30 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_for_school_canteens_reaches_their_boxes_with_its_recording_and_a_change_publishes_a_new_revision()
 {
    let stack = Stack::from_env();
    let run = random_token();
    let mqtt = mqtt_config(&stack, &run);
    let (db, _dir, server, admin) = setup_with(|c| {
        c.escalation.poll_interval_ms = 50;
        c.mqtt = Some(mqtt);
    })
    .await;
    let mut admin = admin;
    let pool = db.pool().await;
    let (edge, camera) = (format!("ve-{}", &run[..8]), format!("vc-{}", &run[..8]));
    let (other_edge, other_camera) = (format!("vr-{}", &run[..8]), format!("vq-{}", &run[..8]));
    register_edge(&pool, &edge, &camera, "schoolCanteen", "斋堂中学食堂", None).await;
    register_edge(
        &pool,
        &other_edge,
        &other_camera,
        "restaurant",
        "斋堂镇农家院",
        None,
    )
    .await;
    let key = bl_proto::SigningKey::from_bytes(&[9; 32]);
    sqlx::query("UPDATE edges SET public_key = $2 WHERE id = $1")
        .bind(&edge)
        .bind(key.verifying_key().to_bytes().to_vec())
        .execute(&pool)
        .await
        .unwrap();
    let (_client, mut configs) = edge_configs(&stack, &edge).await;

    // A recording and the canteens' no-hat rule during opening hours.
    let recording = wav(8_000, 1_500);
    let (status, m) = put_bytes(
        server.addr,
        &admin,
        "/api/voice-messages/wear-hat-zh?name=hat",
        "audio/wav",
        recording.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    let rule = |from: &str| {
        json!({"rules": [{"premisesKind": "schoolCanteen", "kind": "noChefHat",
                          "messageId": "wear-hat-zh", "from": from, "to": "20:00"}]})
    };
    let (status, body) = admin.put("/api/warning-rules", rule("06:00")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let first = next_config(&mut configs, 0).await;
    assert_eq!(first.edge_id.as_str(), edge);
    let set = &first.warnings;
    assert_eq!(set.rules.len(), 1, "{set:?}");
    assert_eq!(set.rules[0].cameras[0].as_str(), camera);
    assert_eq!(set.rules[0].kind, ViolationKind::NoChefHat);
    assert_eq!(set.rules[0].message, "wear-hat-zh");
    assert_eq!(set.rules[0].active_hours.unwrap().from.to_string(), "06:00");
    let sha = bl_proto::evidence::sha256_hex(&recording);
    assert_eq!(
        set.messages[0].content,
        VoiceContent::Audio {
            sha256: sha.clone(),
            size: recording.len() as u64
        }
    );
    let others: i64 = sqlx::query_scalar("SELECT count(*) FROM edge_configs WHERE edge_id = $1")
        .bind(&other_edge)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(others, 0, "the restaurant's box has no canteen rule to get");

    // The box fetches the recording, signed; unsigned, badly signed or another hash is refused.
    let http = reqwest::Client::new();
    let url = |sha: &str| format!("http://{}{}/{sha}", server.addr, voice::FETCH_PATH);
    let fetch = |sha: bl_proto::evidence::Sha256Hex, signer: bl_proto::SigningKey| {
        let (http, url, edge) = (http.clone(), url(sha.as_str()), edge.clone());
        async move {
            let at = chrono::Utc::now().timestamp_millis();
            let edge_id = bl_proto::EdgeId::new(edge.as_str()).unwrap();
            http.get(url)
                .header(bl_proto::evidence::HEADER_EDGE, edge)
                .header(voice::HEADER_AT, at.to_string())
                .header(
                    bl_proto::evidence::HEADER_SIGNATURE,
                    voice::sign_fetch(&edge_id, &sha, at, &signer),
                )
                .send()
                .await
                .unwrap()
        }
    };
    let got = fetch(sha.clone(), key.clone()).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().to_vec(), recording);
    let forged = fetch(sha.clone(), bl_proto::SigningKey::from_bytes(&[1; 32])).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let unsigned = http.get(url(sha.as_str())).send().await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let elsewhere = fetch(bl_proto::evidence::sha256_hex(b"other"), key.clone()).await;
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);

    // A change of the rule's hours is a new revision with the new hours.
    let (status, body) = admin.put("/api/warning-rules", rule("07:30")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = next_config(&mut configs, first.revision).await;
    assert_eq!(
        second.warnings.rules[0]
            .active_hours
            .unwrap()
            .from
            .to_string(),
        "07:30"
    );

    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
