//! `GET`/`HEAD /evidence/{sha256}`: ranges for seeking, and the media-token checks.

mod common;

use bl_proto::evidence::sha256_hex;
use bl_proto::token::MediaAction;
use common::*;
use reqwest::StatusCode;

async fn stored(gw: &TestGateway, len: usize) -> (Vec<u8>, String) {
    let body = bytes(len, 42);
    assert_eq!(gw.upload(&body).await.status(), StatusCode::CREATED);
    let path = format!("/evidence/{}", sha256_hex(&body));
    (body, path)
}

#[tokio::test]
async fn a_range_request_gets_exactly_those_bytes_with_206_and_content_range() {
    let gw = TestGateway::start().await;
    let (body, path) = stored(&gw, 10_000).await;
    let cases = [
        ("bytes=0-99", 0..100, "bytes 0-99/10000"),
        ("bytes=4000-4999", 4000..5000, "bytes 4000-4999/10000"),
        ("bytes=-100", 9900..10_000, "bytes 9900-9999/10000"),
        ("bytes=9990-", 9990..10_000, "bytes 9990-9999/10000"),
        ("bytes=9000-20000", 9000..10_000, "bytes 9000-9999/10000"),
    ];
    for (range, want, content_range) in cases {
        let r = gw.get(&path, Some(range)).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(r.headers()["content-range"], content_range, "{range}");
        assert_eq!(
            r.headers()["content-length"],
            want.len().to_string().as_str(),
            "{range}"
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), &body[want], "{range}");
    }
}

#[tokio::test]
async fn a_range_past_the_end_is_416_with_the_size() {
    let gw = TestGateway::start().await;
    let (_, path) = stored(&gw, 1_000).await;
    for range in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
        let r = gw.get(&path, Some(range)).await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(r.headers()["content-range"], "bytes */1000");
        assert_eq!(error_code(r).await, "range_not_satisfiable");
    }
}

#[tokio::test]
async fn several_ranges_at_once_are_answered_with_the_whole_blob() {
    let gw = TestGateway::start().await;
    let (body, path) = stored(&gw, 1_000).await;
    let r = gw.get(&path, Some("bytes=0-1,5-6")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), body.len());
}

#[tokio::test]
async fn head_gives_the_headers_of_get_without_a_body() {
    let gw = TestGateway::start().await;
    let (_, path) = stored(&gw, 5_000).await;
    let r = gw
        .client
        .head(gw.url(&path))
        .bearer_auth(token_for(CAMERA, MediaAction::View, NODE, 60))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], "5000");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_token_in_the_query_string_works_for_a_video_element() {
    let gw = TestGateway::start().await;
    let (body, path) = stored(&gw, 1_000).await;
    let token = token_for(CAMERA, MediaAction::View, NODE, 60);
    let r = gw
        .client
        .get(gw.url(&format!("{path}?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
}

#[tokio::test]
async fn reading_without_a_token_is_401_token_missing() {
    let gw = TestGateway::start().await;
    let (_, path) = stored(&gw, 100).await;
    for p in [path.clone(), format!("{path}/meta")] {
        let r = gw.client.get(gw.url(&p)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{p}");
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(error_code(r).await, "token_missing");
    }
}

async fn status_and_code(gw: &TestGateway, path: &str, token: &str) -> (StatusCode, String) {
    let r = gw
        .client
        .get(gw.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status(), error_code(r).await)
}

#[tokio::test]
async fn a_forged_token_is_401_token_bad_signature() {
    let gw = TestGateway::start().await;
    let (_, path) = stored(&gw, 100).await;
    let forged = token_signed_by(
        &bl_proto::SigningKey::from_bytes(&[66; 32]),
        CAMERA,
        MediaAction::View,
        NODE,
        60,
    );
    let got = status_and_code(&gw, &path, &forged).await;
    assert_eq!(
        got,
        (StatusCode::UNAUTHORIZED, "token_bad_signature".into())
    );
    let got = status_and_code(&gw, &path, "garbage").await;
    assert_eq!(got, (StatusCode::UNAUTHORIZED, "token_malformed".into()));
}

#[tokio::test]
async fn an_expired_token_is_401_token_expired() {
    let gw = TestGateway::start().await;
    let (_, path) = stored(&gw, 100).await;
    let expired = token_for(CAMERA, MediaAction::View, NODE, -1);
    let got = status_and_code(&gw, &path, &expired).await;
    assert_eq!(got, (StatusCode::UNAUTHORIZED, "token_expired".into()));
}

#[tokio::test]
async fn a_token_for_another_camera_is_403_token_wrong_camera() {
    let gw = TestGateway::start().await;
    let (_, path) = stored(&gw, 100).await;
    let other = token_for("cam-2", MediaAction::View, NODE, 60);
    let got = status_and_code(&gw, &path, &other).await;
    assert_eq!(got, (StatusCode::FORBIDDEN, "token_wrong_camera".into()));
    let got = status_and_code(&gw, &format!("{path}/meta"), &other).await;
    assert_eq!(got, (StatusCode::FORBIDDEN, "token_wrong_camera".into()));
}

#[tokio::test]
async fn a_token_for_another_action_is_403_token_wrong_action() {
    let gw = TestGateway::start().await;
    let (_, path) = stored(&gw, 100).await;
    let talk = token_for(CAMERA, MediaAction::Talk, NODE, 60);
    let got = status_and_code(&gw, &path, &talk).await;
    assert_eq!(got, (StatusCode::FORBIDDEN, "token_wrong_action".into()));
}

#[tokio::test]
async fn a_token_for_another_gateway_node_is_403_token_wrong_node() {
    let gw = TestGateway::start().await;
    let (_, path) = stored(&gw, 100).await;
    let elsewhere = token_for(CAMERA, MediaAction::View, "gw-2", 60);
    let got = status_and_code(&gw, &path, &elsewhere).await;
    assert_eq!(got, (StatusCode::FORBIDDEN, "token_wrong_node".into()));
}

#[tokio::test]
async fn an_unknown_hash_is_404_for_a_token_holder_and_401_for_anyone_else() {
    let gw = TestGateway::start().await;
    let path = format!("/evidence/{}", sha256_hex(b"never uploaded"));
    let r = gw.get(&path, None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "not_found");
    let r = gw.client.get(gw.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
