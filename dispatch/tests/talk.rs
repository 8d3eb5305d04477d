//! Talk-down floor control against the real server and PostgreSQL (and mosquitto for the edge's
//! talk commands): one talker per camera; a second operator is refused 409 with who holds it; a
//! supervisor takes the floor and the holder's console hears of it on the WebSocket; holdings end
//! on release, timeout and logout; every step is audited. The owning gateway node has the edge
//! pull the audio with `startTalk` and stop with `stopTalk`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bl_proto::command::{CommandAction, TalkOutput};
use bl_proto::token::{self, MediaAction};
use bl_test_support::stack::{Stack, random_token};
use common::edge::{edge_commands, mqtt_config, register_edge};
use common::gateway::{GATEWAYS, internal_post, media_with_services, owner};
use common::*;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CAM: &str = "zt-kitchen-1";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A logged-in user's socket, subscribed to `talk`.
async fn talk_socket(addr: SocketAddr, client: &Client) -> Socket {
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
    assert_eq!(next(&mut ws).await["type"], "hello");
    ws.send(Message::text(
        json!({"type": "subscribe", "topics": ["talk"]}).to_string(),
    ))
    .await
    .unwrap();
    let answer = next(&mut ws).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    ws
}

async fn next(ws: &mut Socket) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .expect("a valid frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// The next `talk` message that ends a holding.
async fn next_end(ws: &mut Socket) -> Value {
    loop {
        let m = next(ws).await;
        if m["type"] == "talk" && !m["endedAt"].is_null() {
            return m;
        }
    }
}

async fn login(server: &Server, username: &str) -> Client {
    let mut c = server.client();
    assert_eq!(c.login(username, USER_PASSWORD).await.0, StatusCode::OK);
    c
}

async fn end_reason(db: &TestDb, session: i64) -> Option<String> {
    sqlx::query_scalar("SELECT end_reason FROM talk_sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&db.pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn one_talker_per_camera_a_supervisor_takes_the_floor_and_holdings_end_on_release_timeout_and_logout()
 {
    let (db, _dir, server, mut admin) =
        setup_with(|c| c.media = Some(media_config(GATEWAYS))).await;
    let (status, p) = create_premises(&mut admin, "zhaitang", "斋堂镇中心小学食堂").await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    insert_camera(&db, p["id"].as_str().unwrap(), CAM, true).await;
    create_user(&mut admin, "op-a", "operator", Some(&["zhaitang"])).await;
    create_user(&mut admin, "op-b", "operator", Some(&["zhaitang"])).await;
    create_user(&mut admin, "sup", "supervisor", None).await;
    let (mut a, mut b, mut sup) = (
        login(&server, "op-a").await,
        login(&server, "op-b").await,
        login(&server, "sup").await,
    );
    let talk = format!("/api/cameras/{CAM}/talk");

    // A takes the floor; asking again renews the same holding.
    let (status, grant) = a.post(&talk, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    let a_session = grant["talkSession"].as_i64().unwrap();
    assert!(
        grant["whipUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/whip/{CAM}"))
    );
    let (status, again) = a.post(&talk, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["talkSession"].as_i64(), Some(a_session));

    // B is refused with who holds it, even asking to take over (operators may not).
    for body in [json!({}), json!({"takeover": true})] {
        let (status, refused) = b.post(&talk, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["error"]["code"], "floor_taken");
        assert_eq!(refused["error"]["holder"]["username"], "op-a");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("op-a")
        );
        assert!(refused.get("token").is_none());
    }

    // The supervisor takes the floor: A's holding ends and A's console is told.
    let mut a_ws = talk_socket(server.addr, &a).await;
    let (status, taken) = sup.post(&talk, json!({"takeover": true})).await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    let sup_session = taken["talkSession"].as_i64().unwrap();
    assert_ne!(sup_session, a_session);
    assert_eq!(
        end_reason(&db, a_session).await.as_deref(),
        Some("takeover")
    );
    let told = next_end(&mut a_ws).await;
    assert_eq!(told["id"].as_i64(), Some(a_session), "{told}");
    assert_eq!(told["endReason"], "takeover", "{told}");
    assert_eq!(told["cameraId"], CAM);

    // Release: the supervisor lets go, B gets the floor.
    let (status, _) = sup.send(Method::DELETE, &talk, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        end_reason(&db, sup_session).await.as_deref(),
        Some("released")
    );
    let (status, grant) = b.post(&talk, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    let b_session = grant["talkSession"].as_i64().unwrap();

    // Logout: B's holding ends with B's login session; A gets the floor.
    let (status, _) = b.send(Method::DELETE, "/api/session", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(end_reason(&db, b_session).await.as_deref(), Some("logout"));
    let (status, grant) = a.post(&talk, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    let a_again = grant["talkSession"].as_i64().unwrap();

    // Timeout: a holding not renewed in time frees the floor for the next asker.
    sqlx::query("UPDATE talk_sessions SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(a_again)
        .execute(&db.pool().await)
        .await
        .unwrap();
    let (status, grant) = sup.post(&talk, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(end_reason(&db, a_again).await.as_deref(), Some("timeout"));

    let pool = db.pool().await;
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT action, count(*) FROM audit_log WHERE action LIKE 'talk.%' GROUP BY action ORDER BY action",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        counts,
        vec![
            ("talk.end".to_owned(), 1),
            ("talk.start".to_owned(), 5),
            ("talk.takeover".to_owned(), 1),
        ]
    );
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn the_owning_gateway_has_the_edge_pull_talk_audio_with_a_talk_token_and_stop() {
    let stack = Stack::from_env();
    let run = random_token();
    let mqtt = mqtt_config(&stack, &run);
    let (db, _dir, server, _admin) = setup_with(|c| {
        c.media = Some(media_with_services());
        c.mqtt = Some(mqtt);
    })
    .await;
    let pool = db.pool().await;
    let (edge, camera) = (format!("te-{}", &run[..8]), format!("tc-{}", &run[..8]));
    let premises = register_edge(&pool, &edge, &camera, "restaurant", "斋堂镇农家院", None).await;
    insert_camera(&db, &premises.to_string(), "zt-pull-9", true).await;
    sqlx::query("UPDATE cameras SET talk = true, talk_output = 'speaker' WHERE id = $1")
        .bind(&camera)
        .execute(&pool)
        .await
        .unwrap();
    let (_client, mut commands) = edge_commands(&stack, &edge).await;
    let node = owner(&camera);
    let other = GATEWAYS.iter().map(|g| g.0).find(|n| *n != node).unwrap();
    let start = format!("/internal/cameras/{camera}/talk-start");
    let pull_url = format!("rtsp://gw.test:8554/talk/{camera}");

    // The MQTT consumer attaches its client shortly after start.
    let mut answer = (StatusCode::SERVICE_UNAVAILABLE, Value::Null);
    for _ in 0..100 {
        answer = internal_post(&server, &start, &node, json!({"pullUrl": pull_url})).await;
        if answer.0 != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer.0, StatusCode::ACCEPTED, "{}", answer.1);
    let cmd = tokio::time::timeout(Duration::from_secs(10), commands.recv())
        .await
        .expect("startTalk reaches the edge")
        .unwrap();
    let CommandAction::StartTalk(talk) = &cmd.action else {
        panic!("{cmd:?}")
    };
    assert_eq!(talk.camera_id.as_str(), camera);
    assert_eq!(talk.pull_url, pull_url);
    assert_eq!(talk.output, TalkOutput::Speaker);
    let claims = token::verify(
        talk.token.expose(),
        &media_public_key(),
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    assert_eq!(claims.action, MediaAction::Talk);
    assert_eq!(claims.node.as_str(), node);
    assert_eq!(claims.camera.as_str(), camera);
    assert_eq!(claims.sub, format!("edge:{edge}"));

    let (status, body) = internal_post(
        &server,
        &format!("/internal/cameras/{camera}/talk-stop"),
        &node,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let cmd = tokio::time::timeout(Duration::from_secs(10), commands.recv())
        .await
        .expect("stopTalk reaches the edge")
        .unwrap();
    assert!(
        matches!(&cmd.action, CommandAction::StopTalk(s) if s.camera_id.as_str() == camera),
        "{cmd:?}"
    );

    // Refusals: another node, a camera no edge serves, a pull URL that is not the camera's.
    let (status, body) = internal_post(&server, &start, other, json!({"pullUrl": pull_url})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_owner")),
        "{body}"
    );
    let (status, body) = internal_post(
        &server,
        "/internal/cameras/zt-pull-9/talk-start",
        &owner("zt-pull-9"),
        json!({"pullUrl": "rtsp://gw.test:8554/talk/zt-pull-9"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("no_edge")),
        "{body}"
    );
    for bad in [
        json!({"pullUrl": format!("rtsp://u:p@gw.test/talk/{camera}")}),
        json!({"pullUrl": "rtsp://gw.test:8554/talk/another-cam"}),
        json!({"pullUrl": format!("http://gw.test/talk/{camera}")}),
        json!({}),
    ] {
        let (status, body) = internal_post(&server, &start, &node, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
