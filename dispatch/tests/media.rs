//! Live view and talk tokens against the real server and PostgreSQL: the token verifies with
//! dispatch's public key, names the rendezvous node, and is refused by scope, capability and time.

mod common;

use bl_proto::token::{self, MediaAction, TokenError};
use bl_proto::{CameraId, GatewayNodeId};
use common::*;
use dispatch::media::choose_gateway;
use reqwest::StatusCode;
use serde_json::{Value, json};

const GATEWAYS: &[(&str, &str)] = &[
    ("gw-1", "http://127.0.0.1:8090"),
    ("gw-2", "http://127.0.0.1:8091"),
    ("gw-3", "http://127.0.0.1:8092/"),
];

fn nodes() -> Vec<GatewayNodeId> {
    GATEWAYS
        .iter()
        .map(|(n, _)| GatewayNodeId::new(*n).unwrap())
        .collect()
}

fn url_of(node: &GatewayNodeId) -> &'static str {
    let url = GATEWAYS
        .iter()
        .find(|(n, _)| *n == node.as_str())
        .unwrap()
        .1;
    url.trim_end_matches('/')
}

/// dispatch with three gateways, a premises in 斋堂镇 with a talk camera and a silent one, and a
/// logged-in client of `role` scoped to `town`.
async fn world(role: &str, town: &str) -> (TestDb, tempfile::TempDir, Server, Client, String) {
    let (db, dir, server, mut admin) = setup_with(|c| c.media = Some(media_config(GATEWAYS))).await;
    let (status, p) = create_premises(&mut admin, "zhaitang", "斋堂镇中心小学食堂").await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let premises = p["id"].as_str().unwrap().to_owned();
    insert_camera(&db, &premises, "zt-kitchen-1", true).await;
    insert_camera(&db, &premises, "zt-store-1", false).await;
    create_user(&mut admin, "u1", role, Some(&[town])).await;
    let mut client = server.client();
    assert_eq!(client.login("u1", USER_PASSWORD).await.0, StatusCode::OK);
    let user = client.get("/api/session").await.1["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (db, dir, server, client, user)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn an_operator_gets_a_view_token_for_the_rendezvous_node_that_verifies_with_the_public_key() {
    let (db, _dir, server, mut op, user) = world("operator", "zhaitang").await;
    let (status, body) = op.post("/api/cameras/zt-kitchen-1/live", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let camera = CameraId::new("zt-kitchen-1").unwrap();
    let node = choose_gateway(&camera, &nodes()).clone();
    assert_eq!(body["node"], node.as_str());
    assert_eq!(
        body["whepUrl"],
        format!("{}/whep/zt-kitchen-1", url_of(&node))
    );
    assert!(body.get("whipUrl").is_none(), "{body}");
    let claims =
        token::verify(body["token"].as_str().unwrap(), &media_public_key(), now()).unwrap();
    claims.permits(&camera, MediaAction::View, &node).unwrap();
    assert_eq!(claims.sub, user);
    assert_eq!(claims.stream, Some(bl_proto::stream::Stream::Sub));
    assert_eq!(claims.exp - claims.iat, 60);
    let expires: chrono::DateTime<chrono::Utc> =
        body["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires.timestamp(), claims.exp);

    // the main stream on request, and a new token id each time
    let (status, main) = op
        .post("/api/cameras/zt-kitchen-1/live", json!({"stream": "main"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{main}");
    let second =
        token::verify(main["token"].as_str().unwrap(), &media_public_key(), now()).unwrap();
    assert_eq!(second.stream, Some(bl_proto::stream::Stream::Main));
    assert_ne!(second.jti, claims.jti);
    let (status, bad) = op
        .post("/api/cameras/zt-kitchen-1/live", json!({"stream": "hd"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_town_officer_of_another_town_gets_403_and_an_unknown_camera_404() {
    let (db, _dir, server, mut officer, _) = world("townOfficer", "qingshui").await;
    let (status, body) = officer
        .post("/api/cameras/zt-kitchen-1/live", json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "out_of_scope");
    let (status, body) = officer
        .post("/api/cameras/zt-kitchen-1/talk", json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = officer
        .post("/api/cameras/no-such-cam/live", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn talk_gives_a_whip_url_and_a_talk_token_and_a_camera_without_talk_answers_409() {
    let (db, _dir, server, mut op, _) = world("operator", "zhaitang").await;
    let (status, body) = op.post("/api/cameras/zt-kitchen-1/talk", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let camera = CameraId::new("zt-kitchen-1").unwrap();
    let node = choose_gateway(&camera, &nodes()).clone();
    assert_eq!(
        body["whipUrl"],
        format!("{}/whip/zt-kitchen-1", url_of(&node))
    );
    let claims =
        token::verify(body["token"].as_str().unwrap(), &media_public_key(), now()).unwrap();
    claims.permits(&camera, MediaAction::Talk, &node).unwrap();
    assert!(matches!(
        claims.permits(&camera, MediaAction::View, &node),
        Err(TokenError::WrongAction { .. })
    ));

    let (status, body) = op.post("/api/cameras/zt-store-1/talk", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "talk_unsupported");
    // viewing it is fine
    let (status, body) = op.post("/api/cameras/zt-store-1/live", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn without_a_media_section_live_and_talk_answer_503_naming_the_section() {
    let (db, _dir, server, mut admin) = setup().await;
    create_user(&mut admin, "op", "operator", None).await;
    let mut op = server.client();
    assert_eq!(op.login("op", USER_PASSWORD).await.0, StatusCode::OK);
    for action in ["live", "talk"] {
        let (status, body): (StatusCode, Value) = op
            .post(&format!("/api/cameras/any-cam/{action}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], "media_not_configured");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("[media]"),
            "{body}"
        );
    }
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn the_token_expires_after_its_ttl() {
    let (db, _dir, server, mut op, _) = world("operator", "zhaitang").await;
    let (status, body) = op.post("/api/cameras/zt-kitchen-1/live", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let t = body["token"].as_str().unwrap();
    let claims = token::verify(t, &media_public_key(), now()).unwrap();
    assert!(token::verify(t, &media_public_key(), claims.exp - 1).is_ok());
    assert!(matches!(
        token::verify(t, &media_public_key(), claims.iat + 60),
        Err(TokenError::Expired { .. })
    ));
    // another key does not verify it
    let other = bl_proto::SigningKey::from_bytes(&[1; 32]).verifying_key();
    assert_eq!(
        token::verify(t, &other, now()).unwrap_err(),
        TokenError::BadSignature
    );
    server.stop().await;
    db.drop_now().await;
}
