//! `POST /internal/cameras/{id}/live-start` and `…/live-stop` against the real server, PostgreSQL
//! and mosquitto: the gateway node that owns an edge camera gets `startLive` (with a `push` token
//! for that node, camera and stream, signed by dispatch's media key) and `stopLive` delivered to
//! the edge's command topic; other nodes and pulled cameras are refused.

mod common;

use std::time::Duration;

use bl_proto::command::CommandAction;
use bl_proto::stream::Stream;
use bl_proto::token::{self, MediaAction};
use bl_test_support::stack::{Stack, random_token};
use common::edge::{edge_commands, mqtt_config, register_edge};
use common::gateway::{GATEWAYS, internal_post, media_with_services, owner};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn the_owning_gateway_has_the_edge_push_with_a_push_token_and_stop_and_others_are_refused() {
    let stack = Stack::from_env();
    let run = random_token();
    let mqtt = mqtt_config(&stack, &run);
    let (db, _dir, server, _admin) = setup_with(|c| {
        c.media = Some(media_with_services());
        c.mqtt = Some(mqtt);
    })
    .await;
    let pool = db.pool().await;
    let (edge, camera) = (format!("le-{}", &run[..8]), format!("lc-{}", &run[..8]));
    let premises = register_edge(&pool, &edge, &camera, "restaurant", "斋堂镇农家院", None).await;
    insert_camera(&db, &premises.to_string(), "zt-pull-9", false).await;
    let (_client, mut commands) = edge_commands(&stack, &edge).await;
    let node = owner(&camera);
    let other = GATEWAYS
        .iter()
        .map(|(n, _)| *n)
        .find(|n| *n != node)
        .unwrap();
    let start = format!("/internal/cameras/{camera}/live-start");
    let push_url = format!("rtsp://gw.test:8554/push/{camera}/sub");

    // The MQTT consumer attaches its client shortly after start.
    let mut answer = (StatusCode::SERVICE_UNAVAILABLE, Value::Null);
    for _ in 0..100 {
        answer = internal_post(
            &server,
            &start,
            &node,
            json!({"stream": "sub", "pushUrl": push_url}),
        )
        .await;
        if answer.0 != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer.0, StatusCode::ACCEPTED, "{}", answer.1);
    let cmd = tokio::time::timeout(Duration::from_secs(10), commands.recv())
        .await
        .expect("startLive reaches the edge")
        .unwrap();
    let CommandAction::StartLive(live) = &cmd.action else {
        panic!("{cmd:?}")
    };
    assert_eq!(
        (live.camera_id.as_str(), live.stream),
        (camera.as_str(), Stream::Sub)
    );
    assert_eq!(live.push_url, push_url);
    assert!(cmd.expires_at.is_some(), "a live command expires");
    let claims = token::verify(
        live.token.expose(),
        &media_public_key(),
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    assert_eq!(claims.action, MediaAction::Push);
    assert_eq!(claims.node.as_str(), node);
    assert_eq!(claims.camera.as_str(), camera);
    assert_eq!(claims.stream, Some(Stream::Sub));
    assert_eq!(claims.sub, format!("edge:{edge}"));

    let (status, body) = internal_post(
        &server,
        &format!("/internal/cameras/{camera}/live-stop"),
        &node,
        json!({"stream": "sub"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let cmd = tokio::time::timeout(Duration::from_secs(10), commands.recv())
        .await
        .expect("stopLive reaches the edge")
        .unwrap();
    assert!(
        matches!(&cmd.action, CommandAction::StopLive(s) if s.camera_id.as_str() == camera && s.stream == Stream::Sub),
        "{cmd:?}"
    );

    // Refusals: another node, a pulled camera, a push URL with credentials, a bad stream.
    let (status, body) = internal_post(
        &server,
        &start,
        other,
        json!({"stream": "sub", "pushUrl": push_url}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_owner")),
        "{body}"
    );
    let pulled_owner = owner("zt-pull-9");
    let (status, body) = internal_post(
        &server,
        "/internal/cameras/zt-pull-9/live-start",
        &pulled_owner,
        json!({"stream": "sub", "pushUrl": "rtsp://gw.test:8554/push/zt-pull-9/sub"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_pushed")),
        "{body}"
    );
    for bad in [
        json!({"stream": "sub", "pushUrl": "rtsp://u:p@gw.test/push"}),
        json!({"stream": "sub", "pushUrl": "http://gw.test/push"}),
        json!({"stream": "sub"}),
        json!({"stream": "hd", "pushUrl": push_url}),
    ] {
        let (status, body) = internal_post(&server, &start, &node, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'camera.live' AND details->>'push' = 'true'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1, "each push token issued is audited");
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
