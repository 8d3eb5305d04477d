//! The gateway learns an edge's device key from dispatch: a box enrolled with `edge-agent enrol`
//! at a real dispatch uploads evidence to a real `media-gateway` whose config lists no edges but has
//! `[dispatch]` — the upload is accepted; another key's signature and an unknown edge are refused.

#[path = "../../../dispatch/tests/common/mod.rs"]
mod common;
mod edge_box;

use bl_e2e::Running;
use bl_proto::evidence::{self, EvidenceKind, EvidenceMeta};
use bl_proto::{CameraId, EdgeId, SigningKey};
use bl_test_support::broker::{PrivateBroker, free_port};
use common::{ADMIN_PASSWORD, Server, TestDb, create_premises, media_config};
use edge_box::{config, enrol, http, register, text};
use reqwest::StatusCode;
use std::process::Command;
use std::time::{Duration, Instant};

const SERVICE_TOKEN: &str = "gw-1-service-token-0123456789abcdef0123456789";

/// Uploads `body` as a snapshot of `edge`'s camera signed with `key`; the status and error code.
async fn upload(gateway: &str, edge: &str, key: &SigningKey, body: &[u8]) -> (StatusCode, String) {
    let meta = EvidenceMeta {
        sha256: evidence::sha256_hex(body),
        size: body.len() as u64,
        edge_id: EdgeId::new(edge).unwrap(),
        camera_id: CameraId::new("zt-cam-1").unwrap(),
        kind: EvidenceKind::Snapshot,
        content_type: "image/jpeg".into(),
        captured_at: chrono::Utc::now(),
    };
    let mut request = reqwest::Client::new().put(format!("{gateway}/evidence/{}", meta.sha256));
    for (name, value) in meta.headers(&evidence::sign(&meta, key)) {
        request = request.header(name, value);
    }
    let response = request.body(body.to_vec()).send().await.unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_dispatch_accepts_evidence_signed_by_an_enrolled_box_and_no_other() {
    let work = tempfile::tempdir().unwrap();
    let agent = edge_box::agent_binary(work.path());
    let gateway_bin = bl_e2e::binary("media-gateway", "media-gateway", work.path());
    let broker = PrivateBroker::start();
    let db = TestDb::new().await;
    let gw_port = free_port();
    let mut c = config(&db, &work);
    c.enrolment = Some(edge_box::enrolment_config(&broker));
    let mut media = media_config(&[("gw-1", &format!("http://127.0.0.1:{gw_port}"))]);
    media.gateway[0].service_token =
        Some(dispatch::auth::service::ServiceToken::from_secret(SERVICE_TOKEN).unwrap());
    c.media = Some(media);
    let server = Server::start(c).await;
    let mut admin = server.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let (status, premises) = create_premises(&mut admin, "zhaitang", "斋堂镇老街饭馆").await;
    assert_eq!(status, StatusCode::CREATED, "{premises}");
    let edge = "zt-evidence-box";
    let code = register(&mut admin, edge, premises["id"].as_str().unwrap()).await;
    let box_dir = work.path().join("box");
    let out = enrol(&agent, &http(server.addr), edge, &code, &box_dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seed = std::fs::read_to_string(box_dir.join("device.key")).unwrap();
    let device_key = SigningKey::from_bytes(&bl_proto::keys::decode_bytes(&seed).unwrap());

    // The gateway lists no edges: it asks dispatch with its service token.
    let gw_dir = work.path().join("gw");
    std::fs::create_dir_all(&gw_dir).unwrap();
    std::fs::write(
        gw_dir.join("token.pub"),
        bl_proto::keys::encode_public(&common::media_public_key()),
    )
    .unwrap();
    std::fs::write(gw_dir.join("service.token"), SERVICE_TOKEN).unwrap();
    std::fs::write(
        gw_dir.join("gw.toml"),
        format!(
            "listen = \"127.0.0.1:{gw_port}\"\nnode_id = \"gw-1\"\ndata_dir = \"data\"\n\
             token_public_key_file = \"token.pub\"\n\
             [dispatch]\nurl = \"{}\"\nservice_token_file = \"service.token\"\n",
            http(server.addr)
        ),
    )
    .unwrap();
    let _gateway = Running(
        Command::new(&gateway_bin)
            .args(["run", "--config"])
            .arg(gw_dir.join("gw.toml"))
            .env("BL_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let gateway = format!("http://127.0.0.1:{gw_port}");
    let started = Instant::now();
    while reqwest::get(format!("{gateway}/healthz")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the gateway did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(
        upload(&gateway, edge, &device_key, b"a real snapshot").await,
        (StatusCode::CREATED, String::new())
    );
    let stored = gw_dir.join("data/evidence/blobs");
    assert!(stored.exists(), "the blob is in the store");
    assert_eq!(
        upload(&gateway, edge, &SigningKey::from_bytes(&[9; 32]), b"forged").await,
        (StatusCode::FORBIDDEN, "bad_signature".into())
    );
    assert_eq!(
        upload(&gateway, "zt-stranger", &device_key, b"who?").await,
        (StatusCode::FORBIDDEN, "unknown_edge".into())
    );
}
