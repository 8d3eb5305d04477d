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

/// An incident's evidence: the blobs its edge events name, each once, with a gateway URL whose
/// token is for that blob's camera on the node that owns it; another town's operator gets none.
#[tokio::test]
async fn incident_evidence_comes_with_a_view_token_for_its_camera_and_stays_in_scope() {
    use common::edge::{Detection, register_edge};
    use dispatch::intake::edge;
    let (db, dir, server, mut admin) = setup_with(|c| c.media = Some(media_config(GATEWAYS))).await;
    let c = config(&db, &dir);
    let pool = db.pool().await;
    register_edge(&pool, "ev-edge", "ev-cam", "restaurant", "证据餐馆", None).await;
    let episode = uuid::Uuid::now_v7();
    for (phase, minute) in [("start", 0), ("update", 1)] {
        let d = Detection {
            event_id: uuid::Uuid::now_v7(),
            episode_id: episode,
            phase,
            edge: "ev-edge",
            camera: "ev-cam",
            kind: "rodent",
            at: chrono::Utc::now() - chrono::Duration::minutes(5 - minute),
            exercise: None,
        };
        let report = edge::parse("bl/v1/edge/ev-edge/events", &d.json()).unwrap();
        edge::record(&pool, &c.incidents, &c.escalation, &c.clocks, &report)
            .await
            .unwrap()
            .unwrap();
    }
    let incident: uuid::Uuid = sqlx::query_scalar("SELECT id FROM incidents")
        .fetch_one(&pool)
        .await
        .unwrap();
    create_user(&mut admin, "op-zt", "operator", Some(&["zhaitang"])).await;
    create_user(&mut admin, "op-qs", "operator", Some(&["qingshui"])).await;
    let mut zt = server.client();
    zt.login("op-zt", USER_PASSWORD).await;
    let path = format!("/api/incidents/{incident}/evidence");

    let (status, body) = zt.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "both events name one snapshot: {body}");
    assert_eq!(items[0]["kind"], "snapshot");
    assert_eq!(items[0]["cameraId"], "ev-cam");
    let camera = CameraId::new("ev-cam").unwrap();
    let node = choose_gateway(&camera, &nodes()).clone();
    let url = items[0]["url"].as_str().unwrap();
    let prefix = format!(
        "{}/evidence/{}?access_token=",
        url_of(&node),
        "ab".repeat(32)
    );
    assert!(url.starts_with(&prefix), "{url}");
    let claims = token::verify(&url[prefix.len()..], &media_public_key(), now()).unwrap();
    claims.permits(&camera, MediaAction::View, &node).unwrap();
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'evidence.view' AND object_id = $1",
    )
    .bind(incident.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    let mut qs = server.client();
    qs.login("op-qs", USER_PASSWORD).await;
    let (status, body) = qs.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
