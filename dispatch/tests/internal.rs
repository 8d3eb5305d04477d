//! `GET /internal/cameras/{id}/source` against the real server and PostgreSQL: only the gateway
//! node that owns a camera, authenticated with its own service token, gets the camera's source;
//! each fetch is audited without the credentials; sessions and service tokens never cross between
//! `/api` and `/internal`.

mod common;

use bl_proto::{CameraId, GatewayNodeId};
use common::*;
use dispatch::auth::service::ServiceToken;
use dispatch::media::choose_gateway;
use reqwest::StatusCode;
use serde_json::{Value, json};

const NODES: [&str; 3] = ["gw-1", "gw-2", "gw-3"];
const PASSWORD: &str = "kitchen-cam-secret-77";

fn token_of(node: &str) -> String {
    format!("{node}-service-token-0123456789abcdef0123456789")
}

fn owner(camera: &str) -> String {
    let nodes: Vec<GatewayNodeId> = NODES
        .iter()
        .map(|n| GatewayNodeId::new(*n).unwrap())
        .collect();
    choose_gateway(&CameraId::new(camera).unwrap(), &nodes)
        .as_str()
        .to_owned()
}

fn other_than(node: &str) -> &'static str {
    NODES.into_iter().find(|n| *n != node).unwrap()
}

/// dispatch with three gateways that each have a token, a pull camera with credentials and an edge
/// camera in 斋堂镇.
async fn world() -> (TestDb, tempfile::TempDir, Server, Client) {
    let (db, dir, server, mut admin) = setup_with(|c| {
        let mut media = media_config(&[
            ("gw-1", "http://127.0.0.1:8090"),
            ("gw-2", "http://127.0.0.1:8091"),
            ("gw-3", "http://127.0.0.1:8092"),
        ]);
        for g in &mut media.gateway {
            g.service_token = Some(ServiceToken::from_secret(&token_of(&g.node)).unwrap());
        }
        c.media = Some(media);
    })
    .await;
    let (status, p) = create_premises(&mut admin, "zhaitang", "斋堂镇中心小学食堂").await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let premises = p["id"].as_str().unwrap().to_owned();
    insert_camera(&db, &premises, "zt-pull-1", false).await;
    let pool = db.pool().await;
    sqlx::query(
        "UPDATE cameras SET pull_username = 'viewer', pull_password = $1 WHERE id = 'zt-pull-1'",
    )
    .bind(PASSWORD)
    .execute(&pool)
    .await
    .unwrap();
    let mut tx = pool.begin().await.unwrap();
    dispatch::registry::cameras::insert_edge(
        &mut tx,
        "zt-edge-1",
        premises.parse().unwrap(),
        chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    dispatch::registry::cameras::insert(
        &mut tx,
        &dispatch::registry::cameras::NewCamera {
            id: "zt-edge-cam-1",
            premises_id: premises.parse().unwrap(),
            name: "后厨",
            edge_id: Some("zt-edge-1"),
            main_stream: "kitchen-main",
            sub_stream: Some("kitchen-sub"),
            talk: true,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    pool.close().await;
    (db, dir, server, admin)
}

/// GETs `path` with the given bearer token and node header (either may be absent) and cookie.
async fn fetch(
    server: &Server,
    path: &str,
    token: Option<&str>,
    node: Option<&str>,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = reqwest::Client::new().get(format!("http://{}{path}", server.addr));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(n) = node {
        req = req.header("x-bl-node", n);
    }
    if let Some(c) = cookie {
        req = req.header("cookie", format!("__Host-bl_session={c}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let cache = resp
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    (
        status,
        cache,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const PULL: &str = "/internal/cameras/zt-pull-1/source";

#[tokio::test]
async fn the_owning_node_gets_the_pull_url_and_credentials_uncached_and_the_fetch_is_audited_without_them()
 {
    let (db, _dir, server, _admin) = world().await;
    let node = owner("zt-pull-1");
    let (status, cache, body) =
        fetch(&server, PULL, Some(&token_of(&node)), Some(&node), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(
        body,
        json!({"kind": "pull", "camera": "zt-pull-1", "url": "rtsp://10.0.0.5/main",
               "subStream": "rtsp://10.0.0.5/sub", "username": "viewer", "password": PASSWORD})
    );

    let edge_node = owner("zt-edge-cam-1");
    let (status, _, body) = fetch(
        &server,
        "/internal/cameras/zt-edge-cam-1/source",
        Some(&token_of(&edge_node)),
        Some(&edge_node),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"kind": "edge", "camera": "zt-edge-cam-1", "edgeId": "zt-edge-1",
               "stream": "kitchen-main", "subStream": "kitchen-sub"})
    );

    let pool = db.pool().await;
    let rows: Vec<(String, String, String, Option<String>, Value)> = sqlx::query_as(
        "SELECT actor_kind, actor_name, object_id, town_id, details FROM audit_log \
         WHERE action = 'camera.source' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "service".into(),
                format!("gateway:{node}"),
                "zt-pull-1".into(),
                Some("zhaitang".into()),
                json!({"node": node, "kind": "pull"})
            ),
            (
                "service".into(),
                format!("gateway:{edge_node}"),
                "zt-edge-cam-1".into(),
                Some("zhaitang".into()),
                json!({"node": edge_node, "kind": "edge"})
            ),
        ]
    );
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE details::text LIKE '%' || $1 || '%'",
    )
    .bind(PASSWORD)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn another_node_with_its_own_valid_token_is_refused_as_not_owner_and_learns_the_owner() {
    let (db, _dir, server, _admin) = world().await;
    let node = owner("zt-pull-1");
    let other = other_than(&node);
    let (status, _, body) = fetch(&server, PULL, Some(&token_of(other)), Some(other), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "not_owner");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&node),
        "{body}"
    );
    assert!(!body.to_string().contains(PASSWORD));
    let (status, _, body) = fetch(
        &server,
        "/internal/cameras/no-such-cam/source",
        Some(&token_of(&node)),
        Some(&node),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_or_one_of_another_node_is_401_and_a_user_session_never_gets_in() {
    let (db, _dir, server, admin) = world().await;
    let node = owner("zt-pull-1");
    let other = other_than(&node);
    let cases = [
        (None, Some(node.as_str())),
        (Some(token_of(&node)), None),
        (Some("x".repeat(64)), Some(node.as_str())),
        (Some(token_of(other)), Some(node.as_str())),
        (Some(token_of(&node)), Some("gw-9")),
    ];
    for (token, n) in cases {
        let (status, _, body) = fetch(&server, PULL, token.as_deref(), n, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?} {n:?}: {body}");
        assert_eq!(body["error"]["code"], "service_unauthenticated");
    }
    // an admin's session is no service credential
    let cookie = admin.cookie.as_deref();
    let (status, _, body) = fetch(&server, PULL, None, None, cookie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // and a service token opens no /api route
    let (status, _, body) = fetch(
        &server,
        "/api/cameras",
        Some(&token_of(&node)),
        Some(&node),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let pool = db.pool().await;
    let fetched: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'camera.source'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(fetched, 0);
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn any_gateway_node_gets_an_enrolled_edges_device_key_and_an_unenrolled_edge_has_none() {
    let (db, _dir, server, _admin) = world().await;
    let path = "/internal/edges/zt-edge-1/key";
    let (status, _, body) = fetch(&server, path, Some(&token_of("gw-2")), Some("gw-2"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_enrolled");

    let key = bl_proto::SigningKey::from_bytes(&[4; 32]).verifying_key();
    let pool = db.pool().await;
    sqlx::query("UPDATE edges SET public_key = $1, enrolled_at = now() WHERE id = 'zt-edge-1'")
        .bind(key.as_bytes().to_vec())
        .execute(&pool)
        .await
        .unwrap();
    for node in NODES {
        let (status, _, body) = fetch(&server, path, Some(&token_of(node)), Some(node), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["edgeId"], "zt-edge-1");
        let got = bl_proto::keys::parse_public(body["publicKey"].as_str().unwrap()).unwrap();
        assert_eq!(got, key);
    }
    let (status, _, body) = fetch(
        &server,
        "/internal/edges/nobody/key",
        Some(&token_of("gw-1")),
        Some("gw-1"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _, _) = fetch(&server, path, None, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
