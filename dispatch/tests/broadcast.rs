//! Group broadcast against the real server, PostgreSQL and mosquitto: a broadcast to a town's
//! school canteens takes the floor of each camera that can play; one another operator talks to is
//! `busy`, one without a speaker `noSpeaker`; the owning gateway's `talk-start` sends `startTalk`
//! and the edge's answer moves its kitchen to `playing` (or `failed`), streamed on the WebSocket;
//! `DELETE` ends it and frees the floors. Audited.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bl_proto::command::{Command, CommandAction, CommandResult, Outcome, codes};
use bl_proto::{EdgeId, V1, broadcast_token};
use bl_test_support::stack::{Stack, random_token};
use common::edge::{mqtt_config, register_edge};
use common::*;
use dispatch::auth::service::ServiceToken;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const NODE: &str = "gw-1";
const GATEWAYS: &[(&str, &str)] = &[(NODE, "http://127.0.0.1:8090")];

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn service_token(node: &str) -> String {
    format!("{node}-service-token-0123456789abcdef0123456789")
}

async fn login(server: &Server, username: &str) -> Client {
    let mut c = server.client();
    assert_eq!(c.login(username, USER_PASSWORD).await.0, StatusCode::OK);
    c
}

/// A logged-in user's socket, subscribed to `broadcasts`.
async fn broadcast_socket(addr: SocketAddr, client: &Client) -> Socket {
    let mut request = format!("ws://{addr}/api/ws").into_client_request().unwrap();
    let h = request.headers_mut();
    h.insert(
        "cookie",
        format!("__Host-bl_session={}", client.cookie.as_deref().unwrap())
            .parse()
            .unwrap(),
    );
    h.insert("origin", format!("http://{addr}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = next(&mut ws).await;
    assert!(
        hello["topics"]
            .as_array()
            .unwrap()
            .contains(&json!("broadcasts")),
        "{hello}"
    );
    ws.send(Message::text(
        json!({"type": "subscribe", "topics": ["broadcasts"]}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["type"], "subscribed");
    ws
}

async fn next(ws: &mut Socket) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a message within 60 s")
            .expect("the socket is open")
            .expect("a valid frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// The next `broadcast` message about `camera` in `state`.
async fn next_state(ws: &mut Socket, camera: &str, state: &str) -> Value {
    loop {
        let m = next(ws).await;
        if m["type"] == "broadcast" && m["cameraId"] == camera && m["state"] == state {
            return m;
        }
    }
}

/// An edge box on the broker: its commands arrive on the receiver; it can answer.
async fn edge_box(stack: &Stack, edge: &str) -> (AsyncClient, mpsc::Receiver<Command>) {
    let password = stack.add_mqtt_user(edge);
    let mut options = MqttOptions::new(edge, &stack.mqtt_host, stack.mqtt_port);
    options.set_credentials(edge, &password);
    let (client, mut events) = AsyncClient::new(options, 32);
    let (tx, rx) = mpsc::channel(8);
    let (subscribed_tx, mut subscribed) = mpsc::channel(1);
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    let _ = subscribed_tx.try_send(());
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let _ = tx
                        .send(bl_proto::decode::<Command>(&p.payload).unwrap())
                        .await;
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

async fn answer(client: &AsyncClient, edge: &str, cmd: &Command, outcome: Outcome) {
    let result = CommandResult {
        v: V1,
        cmd_id: cmd.cmd_id,
        edge_id: EdgeId::new(edge).unwrap(),
        at: chrono::Utc::now(),
        outcome,
    };
    client
        .publish(
            format!("bl/v1/edge/{edge}/cmd/result"),
            QoS::AtLeastOnce,
            false,
            bl_proto::encode(&result),
        )
        .await
        .unwrap();
}

/// The gateway asking dispatch to have the camera's edge pull (retried while MQTT attaches).
async fn talk_start(server: &Server, camera: &str) {
    for _ in 0..100 {
        let resp = reqwest::Client::new()
            .post(format!(
                "http://{}/internal/cameras/{camera}/talk-start",
                server.addr
            ))
            .bearer_auth(service_token(NODE))
            .header("x-bl-node", NODE)
            .json(&json!({"pullUrl": format!("rtsp://gw.test:8554/talk/{camera}")}))
            .send()
            .await
            .unwrap();
        match resp.status() {
            StatusCode::ACCEPTED => return,
            StatusCode::SERVICE_UNAVAILABLE => tokio::time::sleep(Duration::from_millis(100)).await,
            s => panic!("talk-start {camera}: {s} {}", resp.text().await.unwrap()),
        }
    }
    panic!("talk-start {camera} stayed unavailable");
}

async fn start_talk_cmd(commands: &mut mpsc::Receiver<Command>) -> Command {
    let cmd = tokio::time::timeout(Duration::from_secs(10), commands.recv())
        .await
        .expect("startTalk reaches the edge")
        .unwrap();
    assert!(matches!(cmd.action, CommandAction::StartTalk(_)), "{cmd:?}");
    cmd
}

fn target<'a>(view: &'a Value, camera: &str) -> &'a Value {
    view["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["cameraId"] == camera)
        .unwrap_or_else(|| panic!("{camera} is not a target: {view}"))
}

#[tokio::test]
async fn a_broadcast_reaches_each_kitchen_reports_busy_and_no_speaker_and_ends_with_its_floors() {
    let stack = Stack::from_env();
    let run = random_token();
    let mqtt = mqtt_config(&stack, &run);
    let (db, _dir, server, mut admin) = setup_with(|c| {
        let mut media = media_config(GATEWAYS);
        for g in &mut media.gateway {
            g.service_token = Some(ServiceToken::from_secret(&service_token(&g.node)).unwrap());
        }
        c.media = Some(media);
        c.mqtt = Some(mqtt);
    })
    .await;
    let pool = db.pool().await;
    let short = &run[..8];
    // Four school canteens of 斋堂镇 (three with a speaker) and a restaurant the filter leaves out.
    let kitchens: Vec<(String, String, &str, bool)> = [
        ("a", "schoolCanteen", true),
        ("b", "schoolCanteen", true),
        ("c", "schoolCanteen", true),
        ("d", "schoolCanteen", false),
        ("e", "restaurant", true),
    ]
    .into_iter()
    .map(|(n, kind, talk)| {
        (
            format!("be-{n}-{short}"),
            format!("bc-{n}-{short}"),
            kind,
            talk,
        )
    })
    .collect();
    for (edge, camera, kind, talk) in &kitchens {
        register_edge(
            &pool,
            edge,
            camera,
            kind,
            &format!("斋堂镇食堂{camera}"),
            None,
        )
        .await;
        sqlx::query("UPDATE cameras SET talk = $2 WHERE id = $1")
            .bind(camera)
            .bind(talk)
            .execute(&pool)
            .await
            .unwrap();
    }
    let cam = |i: usize| kitchens[i].1.clone();
    create_user(&mut admin, "op-a", "operator", Some(&["zhaitang"])).await;
    create_user(&mut admin, "op-b", "operator", Some(&["zhaitang"])).await;
    let (mut a, mut b) = (login(&server, "op-a").await, login(&server, "op-b").await);
    let (edge_a, mut commands_a) = edge_box(&stack, &kitchens[0].0).await;
    let (edge_b, mut commands_b) = edge_box(&stack, &kitchens[1].0).await;

    // B talks to canteen c already.
    let (status, grant) = b
        .post(&format!("/api/cameras/{}/talk", cam(2)), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{grant}");

    let mut ws = broadcast_socket(server.addr, &a).await;
    let (status, started) = a
        .post(
            "/api/broadcasts",
            json!({"town": "zhaitang", "premisesKind": "schoolCanteen"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(started["targets"].as_array().unwrap().len(), 4, "{started}");
    for i in [0, 1] {
        assert_eq!(target(&started, &cam(i))["state"], "connecting");
    }
    let busy = target(&started, &cam(2));
    assert_eq!(
        (&busy["state"], &busy["reason"]),
        (&json!("failed"), &json!("busy"))
    );
    assert!(busy["detail"].as_str().unwrap().contains("op-b"), "{busy}");
    let mute = target(&started, &cam(3));
    assert_eq!(
        (&mute["state"], &mute["reason"]),
        (&json!("failed"), &json!("noSpeaker"))
    );
    // One ingest for the one node, its token naming exactly the cameras that can play.
    let ingests = started["ingests"].as_array().unwrap();
    assert_eq!(ingests.len(), 1, "{started}");
    assert_eq!(
        ingests[0]["whipUrl"],
        format!("http://127.0.0.1:8090/whip-broadcast/{id}")
    );
    let claims = broadcast_token::verify(
        ingests[0]["token"].as_str().unwrap(),
        &media_public_key(),
        &NODE.parse().unwrap(),
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    let mut named: Vec<String> = claims.cameras.iter().map(|c| c.to_string()).collect();
    named.sort();
    assert_eq!(named, vec![cam(0), cam(1)]);
    assert_eq!(claims.broadcast.to_string(), id);
    // The broadcast holds a and b's floors: B is refused on a.
    let (status, refused) = b
        .post(&format!("/api/cameras/{}/talk", cam(0)), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["holder"]["username"], "op-a");

    // The gateway fans the voice out: each edge is asked; a plays, b's camera has no backchannel.
    talk_start(&server, &cam(0)).await;
    talk_start(&server, &cam(1)).await;
    let cmd_a = start_talk_cmd(&mut commands_a).await;
    let cmd_b = start_talk_cmd(&mut commands_b).await;
    answer(
        &edge_a,
        &kitchens[0].0,
        &cmd_a,
        Outcome::Ok {
            detail: Some("talking".into()),
        },
    )
    .await;
    answer(
        &edge_b,
        &kitchens[1].0,
        &cmd_b,
        Outcome::Error {
            code: codes::UNSUPPORTED.into(),
            message: "camera has no speaker: its RTSP answer offers no ONVIF backchannel".into(),
        },
    )
    .await;
    let playing = next_state(&mut ws, &cam(0), "playing").await;
    assert_eq!(playing["broadcastId"], id.as_str());
    let failed = next_state(&mut ws, &cam(1), "failed").await;
    assert_eq!(failed["reason"], "noSpeaker", "{failed}");
    let (status, view) = a.get(&format!("/api/broadcasts/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(target(&view, &cam(0))["state"], "playing");
    assert_eq!(target(&view, &cam(1))["reason"], "noSpeaker");
    assert!(view.get("ingests").is_none());
    // b's floor was given back at once; the other operator sees A's broadcast but may not end it.
    let (status, grant) = b
        .post(&format!("/api/cameras/{}/talk", cam(1)), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    let (status, _) = b.get(&format!("/api/broadcasts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = b
        .send(Method::DELETE, &format!("/api/broadcasts/{id}"), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_your_broadcast"))
    );

    // DELETE ends it: a ends, its floor is free again; c stays B's.
    let (status, _) = a
        .send(Method::DELETE, &format!("/api/broadcasts/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    next_state(&mut ws, &cam(0), "ended").await;
    let (_, view) = a.get(&format!("/api/broadcasts/{id}")).await;
    assert!(!view["endedAt"].is_null(), "{view}");
    assert_eq!(target(&view, &cam(0))["state"], "ended");
    assert_eq!(target(&view, &cam(2))["reason"], "busy");
    let (status, grant) = b
        .post(&format!("/api/cameras/{}/talk", cam(0)), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM talk_sessions WHERE ended_at IS NULL AND username = 'op-a'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(open, 0, "the broadcast left a floor held");
    let (status, _) = a
        .send(Method::DELETE, &format!("/api/broadcasts/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "ending twice is fine");

    // Refusals: nothing matches; a camera outside the caller's towns; both ways of choosing.
    let (status, body) = a
        .post(
            "/api/broadcasts",
            json!({"town": "zhaitang", "premisesKind": "pharmacy"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("broadcast_no_targets")),
        "{body}"
    );
    let (status, body) = a.post("/api/broadcasts", json!({"town": "yongding"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = a
        .post(
            "/api/broadcasts",
            json!({"cameras": [cam(0)], "town": "zhaitang"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("cameras")),
        "{body}"
    );
    let (status, body) = a
        .post("/api/broadcasts", json!({"premisesKind": "canteen"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT action, count(*) FROM audit_log WHERE action LIKE 'broadcast.%' GROUP BY action ORDER BY action",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        counts,
        vec![
            ("broadcast.end".to_owned(), 1),
            ("broadcast.start".to_owned(), 1)
        ]
    );
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
