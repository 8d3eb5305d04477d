//! `PUT /evidence/{sha256}` against a real gateway: what is stored, what is refused and why.

mod common;

use bl_proto::evidence::{self, EvidenceKind, sha256_hex};
use common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn an_uploaded_clip_reads_back_byte_for_byte_with_its_metadata() {
    let gw = TestGateway::start().await;
    let body = bytes(300_000, 1);
    let r = gw.upload(&body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let sha = sha256_hex(&body);
    assert_eq!(r.headers()["location"], format!("/evidence/{sha}"));

    let r = gw.get(&format!("/evidence/{sha}"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(r.headers()["etag"], format!("\"{sha}\""));
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());

    let r = gw.get(&format!("/evidence/{sha}/meta"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["meta"]["sha256"], sha.as_str());
    assert_eq!(v["meta"]["size"], 300_000);
    assert_eq!(v["meta"]["edgeId"], EDGE);
    assert_eq!(v["meta"]["cameraId"], CAMERA);
    assert_eq!(v["meta"]["kind"], "clip");
    assert_eq!(v["meta"]["capturedAt"], "2025-03-01T08:15:30.123Z");
    assert!(v["signature"].as_str().is_some_and(|s| s.len() == 86));
}

#[tokio::test]
async fn the_same_upload_twice_is_stored_once_and_answered_200_the_second_time() {
    let gw = TestGateway::start().await;
    let body = bytes(10_000, 2);
    let first = gw.upload(&body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.unwrap();
    let second = gw.upload(&body).await;
    assert_eq!(second.status(), StatusCode::OK);
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(first, second, "the second answer is the stored record");
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("bl_gateway_evidence_stored_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bl_gateway_evidence_bytes_total 10000\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bl_gateway_evidence_duplicate_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_second_upload_with_other_metadata_keeps_the_first_and_answers_it() {
    let gw = TestGateway::start().await;
    let body = bytes(5_000, 3);
    assert_eq!(gw.upload(&body).await.status(), StatusCode::CREATED);
    let mut meta = meta_for(&body);
    meta.kind = EvidenceKind::Audio;
    meta.content_type = "audio/ogg".into();
    let sig = evidence::sign(&meta, &edge_key());
    let r = gw.put_signed(&meta, &sig, body.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["meta"]["kind"], "clip");
    assert_eq!(v["meta"]["contentType"], "video/mp4");
}

#[tokio::test]
async fn a_body_that_does_not_hash_to_its_name_is_refused_with_hash_mismatch_and_not_kept() {
    let gw = TestGateway::start().await;
    let claimed = bytes(4_000, 4);
    let mut sent = claimed.clone();
    sent[1234] ^= 1;
    let meta = meta_for(&claimed);
    let sig = evidence::sign(&meta, &edge_key());
    let r = gw.put_signed(&meta, &sig, sent).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(r).await, "hash_mismatch");
    assert_eq!(
        files_under(&gw.data_dir.join("evidence")),
        Vec::<String>::new()
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("bl_gateway_evidence_rejected_total{reason=\"hash_mismatch\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_upload_from_an_unregistered_edge_is_forbidden_as_unknown_edge() {
    let gw = TestGateway::start().await;
    let body = bytes(1_000, 5);
    let mut meta = meta_for(&body);
    meta.edge_id = "edge-stranger".parse().unwrap();
    let stranger = bl_proto::SigningKey::from_bytes(&[99; 32]);
    let sig = evidence::sign(&meta, &stranger);
    let r = gw.put_signed(&meta, &sig, body).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(r).await, "unknown_edge");
}

#[tokio::test]
async fn an_unknown_edge_while_dispatch_is_unreachable_is_503_to_retry_not_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Keys not in the config are asked of dispatch, which is down (nothing listens on port 1).
    config.sources = media_gateway::config::SourcesConfig::Dispatch {
        url: "http://127.0.0.1:1".into(),
        token: "gw-service-token-0123456789abcdef0123456789".into(),
        cameras: Vec::new(),
    };
    let gw = TestGateway::start_with(config).await;
    let body = bytes(1_000, 6);
    let mut meta = meta_for(&body);
    meta.edge_id = "edge-new".parse().unwrap();
    let key = bl_proto::SigningKey::from_bytes(&[98; 32]);
    let sig = evidence::sign(&meta, &key);
    let r = gw.put_signed(&meta, &sig, body).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(error_code(r).await, "keys_unavailable");
}

#[tokio::test]
async fn an_upload_signed_with_another_key_is_forbidden_as_bad_signature() {
    let gw = TestGateway::start().await;
    let body = bytes(1_000, 6);
    let meta = meta_for(&body);
    let forged = evidence::sign(&meta, &bl_proto::SigningKey::from_bytes(&[98; 32]));
    let r = gw.put_signed(&meta, &forged, body.clone()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(r).await, "bad_signature");
    let r = gw.put_signed(&meta, "not-a-signature", body).await;
    assert_eq!(error_code(r).await, "bad_signature");
}

#[tokio::test]
async fn changing_any_signed_field_after_signing_is_forbidden_as_bad_signature() {
    let gw = TestGateway::start().await;
    let body = bytes(2_000, 7);
    let meta = meta_for(&body);
    let sig = evidence::sign(&meta, &edge_key());
    let header = |name: &str, value: &str| {
        let mut headers = meta.headers(&sig);
        for h in &mut headers {
            if h.0 == name {
                h.1 = value.to_owned();
            }
        }
        headers
    };
    let altered = [
        ("camera", header(evidence::HEADER_CAMERA, "cam-2")),
        ("kind", header(evidence::HEADER_KIND, "snapshot")),
        (
            "captured-at",
            header(evidence::HEADER_CAPTURED_AT, "2025-03-01T08:15:30.124Z"),
        ),
        (
            "content-type",
            header(evidence::HEADER_CONTENT_TYPE, "video/quicktime"),
        ),
        ("edge", header(evidence::HEADER_EDGE, OTHER_EDGE)),
    ];
    for (field, headers) in altered {
        let mut req = gw.client.put(gw.url(&format!("/evidence/{}", meta.sha256)));
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let r = req.body(body.clone()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{field}");
        assert_eq!(error_code(r).await, "bad_signature", "{field}");
    }
    // The size and the hash are signed too: a body one byte shorter, under its own true hash.
    let shorter = &body[..body.len() - 1];
    let mut moved = meta.clone();
    moved.sha256 = sha256_hex(shorter);
    let r = gw.put_signed(&moved, &sig, shorter.to_vec()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "sha256 and size");
    assert_eq!(error_code(r).await, "bad_signature");
    let mut resized = meta.clone();
    resized.size += 1;
    let signed_bigger = evidence::sign(&resized, &edge_key());
    let r = gw.put_signed(&meta, &signed_bigger, body.clone()).await;
    assert_eq!(error_code(r).await, "bad_signature", "size");
    assert_eq!(
        files_under(&gw.data_dir.join("evidence")),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn an_upload_above_the_size_limit_is_refused_before_its_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.max_evidence_bytes = 1_000;
    let gw = TestGateway::start_with(config).await;
    let r = gw.upload(&bytes(1_001, 8)).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(r).await, "too_large");
    assert_eq!(
        gw.upload(&bytes(1_000, 8)).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_path_that_is_not_a_lowercase_sha256_is_a_bad_request() {
    let gw = TestGateway::start().await;
    let body = bytes(100, 9);
    let meta = meta_for(&body);
    let sig = evidence::sign(&meta, &edge_key());
    for bad in [
        meta.sha256.as_str().to_uppercase(),
        "abc".into(),
        "g".repeat(64),
    ] {
        let mut req = gw.client.put(gw.url(&format!("/evidence/{bad}")));
        for (name, value) in meta.headers(&sig) {
            req = req.header(name, value);
        }
        let r = req.body(body.clone()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error_code(r).await, "bad_sha256");
    }
}

#[tokio::test]
async fn a_missing_evidence_header_is_named() {
    let gw = TestGateway::start().await;
    let body = bytes(100, 10);
    let meta = meta_for(&body);
    let r = gw
        .client
        .put(gw.url(&format!("/evidence/{}", meta.sha256)))
        .header(evidence::HEADER_EDGE, EDGE)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "missing_header");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Bl-Camera"),
        "{v}"
    );
}

#[tokio::test]
async fn eight_identical_uploads_at_once_leave_one_intact_blob_and_one_201() {
    let gw = TestGateway::start().await;
    let body = bytes(2_000_000, 11);
    let sha = sha256_hex(&body);
    let uploads = (0..8).map(|_| gw.upload(&body));
    let statuses: Vec<_> = futures::future::join_all(uploads)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses.iter().all(|s| s.is_success()), "{statuses:?}");
    let shard = format!("blobs/{}", sha.shard());
    assert_eq!(
        files_under(&gw.data_dir.join("evidence")),
        vec![format!("{shard}/{sha}"), format!("{shard}/{sha}.json")],
        "one blob, one record, no temp files"
    );
    let stored =
        std::fs::read(gw.data_dir.join("evidence").join(&shard).join(sha.as_str())).unwrap();
    assert_eq!(sha256_hex(&stored), sha);
    let r = gw.get(&format!("/evidence/{sha}"), None).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
}

#[tokio::test]
async fn health_is_open_and_says_ok() {
    let gw = TestGateway::start().await;
    let r = gw.client.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "ok");
    gw.stop().await;
}

#[tokio::test]
async fn re_uploading_a_large_stored_clip_gets_its_200_answer() {
    let gw = TestGateway::start().await;
    let body = bytes(6 << 20, 12);
    assert_eq!(gw.upload(&body).await.status(), StatusCode::CREATED);
    for _ in 0..3 {
        assert_eq!(gw.upload(&body).await.status(), StatusCode::OK);
    }
}

/// Sends raw HTTP/1.1 bytes (what reqwest will not send) and returns the response head, if any.
async fn raw(gw: &TestGateway, request: &[u8], close_early: bool) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = gw.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    if close_early {
        drop(s);
        return String::new();
    }
    let mut buf = vec![0; 4096];
    let n = s.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn raw_put(meta: &bl_proto::evidence::EvidenceMeta, sig: &str, length: Option<u64>) -> String {
    let mut head = format!("PUT /evidence/{} HTTP/1.1\r\nHost: gw\r\n", meta.sha256);
    for (name, value) in meta.headers(sig) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match length {
        Some(n) => head.push_str(&format!("Content-Length: {n}\r\n\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
    }
    head
}

#[tokio::test]
async fn an_upload_without_content_length_is_411_because_the_size_is_signed() {
    let gw = TestGateway::start().await;
    let body = bytes(100, 13);
    let meta = meta_for(&body);
    let sig = evidence::sign(&meta, &edge_key());
    let mut request = raw_put(&meta, &sig, None).into_bytes();
    request.extend_from_slice(b"64\r\n");
    request.extend_from_slice(&body);
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    let response = raw(&gw, &request, false).await;
    assert!(response.starts_with("HTTP/1.1 411"), "{response}");
    assert!(response.contains("length_required"), "{response}");
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_no_file_behind() {
    let gw = TestGateway::start().await;
    let body = bytes(1 << 20, 14);
    let meta = meta_for(&body);
    let sig = evidence::sign(&meta, &edge_key());
    let mut request = raw_put(&meta, &sig, Some(meta.size)).into_bytes();
    request.extend_from_slice(&body[..300_000]);
    raw(&gw, &request, true).await;
    let evidence = gw.data_dir.join("evidence");
    for _ in 0..100 {
        let metrics = gw.metrics().await;
        if metrics.contains("reason=\"upload_incomplete\"} 1\n") {
            assert_eq!(files_under(&evidence), Vec::<String>::new());
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the cut-off upload was not counted as upload_incomplete");
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let gw = TestGateway::start().await;
    let r = gw.client.get(gw.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "no_route");
}
