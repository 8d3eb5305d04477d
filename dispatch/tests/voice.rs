//! The automatic voice warning's admin API against the real server: voice messages as a text for
//! espeak-ng or an uploaded WAV (checked: format, length, size; refused with a code and what to
//! do), warning rules per premises kind and violation, and who may change them.

mod common;

use common::voice::{put_bytes, wav};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_wav_recording_is_stored_with_its_length_and_anything_else_is_refused_saying_what_to_do()
{
    let (db, _dir, server, admin) = setup().await;
    let path = "/api/voice-messages/wear-hat-zh?name=%E8%AF%B7%E6%88%B4%E5%B8%BD";

    let (status, e) = put_bytes(
        server.addr,
        &admin,
        path,
        "audio/wav",
        b"ID3\x03mp3 bytes".to_vec(),
    )
    .await;
    assert_eq!(
        (status, code(&e)),
        (StatusCode::BAD_REQUEST, "not_audio"),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("ffmpeg"),
        "{e}"
    );

    let (status, e) = put_bytes(server.addr, &admin, path, "audio/wav", wav(8_000, 65_000)).await;
    assert_eq!(
        (status, code(&e)),
        (StatusCode::BAD_REQUEST, "audio_duration"),
        "{e}"
    );

    let (status, e) = put_bytes(
        server.addr,
        &admin,
        path,
        "audio/wav",
        vec![0; 5 * 1024 * 1024],
    )
    .await;
    assert_eq!(
        (status, code(&e)),
        (StatusCode::PAYLOAD_TOO_LARGE, "audio_too_large"),
        "{e}"
    );

    let (status, e) = put_bytes(
        server.addr,
        &admin,
        "/api/voice-messages/Wear%20Hat?name=x",
        "audio/wav",
        wav(16_000, 2_000),
    )
    .await;
    assert_eq!(
        (status, code(&e)),
        (StatusCode::BAD_REQUEST, "invalid_field"),
        "{e}"
    );

    let recording = wav(16_000, 2_000);
    let (status, m) = put_bytes(server.addr, &admin, path, "audio/wav", recording.clone()).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["name"], "请戴帽");
    assert_eq!(m["durationMs"], 2000);
    assert_eq!(m["text"], Value::Null);
    assert_eq!(m["sha256"].as_str().unwrap().len(), 64);

    // the admin screen plays it back, byte for byte
    let resp = reqwest::Client::new()
        .get(format!(
            "http://{}/api/voice-messages/wear-hat-zh/audio",
            server.addr
        ))
        .header(
            "cookie",
            format!("__Host-bl_session={}", admin.cookie.as_ref().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), recording);

    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn rules_name_their_bad_field_and_a_message_a_rule_plays_cannot_be_deleted() {
    let (db, _dir, server, mut admin) = setup().await;
    let (status, e) = admin
        .put(
            "/api/voice-messages/wear-hat-zh",
            json!({"name": "请戴厨师帽", "text": ""}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("text")),
        "{e}"
    );
    let (status, m) = admin
        .put(
            "/api/voice-messages/wear-hat-zh",
            json!({"name": "请戴厨师帽", "text": "请戴好厨师帽，注意食品安全。"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["text"], "请戴好厨师帽，注意食品安全。");

    let rule = |message: &str, from: Value| {
        json!({"premisesKind": "schoolCanteen", "kind": "noChefHat", "messageId": message,
               "from": from, "to": "20:00"})
    };
    let (status, e) = admin
        .put(
            "/api/warning-rules",
            json!({"rules": [rule("no-such", json!("06:00"))]}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("rules[0].messageId")),
        "{e}"
    );
    let (status, e) = admin
        .put(
            "/api/warning-rules",
            json!({"rules": [rule("wear-hat-zh", json!("6 o'clock"))]}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("rules[0].from")),
        "{e}"
    );
    let (status, rules) = admin
        .put(
            "/api/warning-rules",
            json!({"rules": [rule("wear-hat-zh", json!("06:00"))]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    assert_eq!(rules, json!([rule("wear-hat-zh", json!("06:00"))]));

    let (status, e) = admin
        .send(
            reqwest::Method::DELETE,
            "/api/voice-messages/wear-hat-zh",
            None,
        )
        .await;
    assert_eq!(
        (status, code(&e)),
        (StatusCode::CONFLICT, "message_in_use"),
        "{e}"
    );
    admin.put("/api/warning-rules", json!({"rules": []})).await;
    let (status, _) = admin
        .send(
            reqwest::Method::DELETE,
            "/api/voice-messages/wear-hat-zh",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // a town's admin reads them but may not change what holds for the whole district
    create_user(&mut admin, "zt-admin", "admin", Some(&["zhaitang"])).await;
    let mut town_admin = server.client();
    town_admin.login("zt-admin", USER_PASSWORD).await;
    let (status, _) = town_admin.get("/api/warning-rules").await;
    assert_eq!(status, StatusCode::OK);
    let (status, e) = town_admin
        .put("/api/warning-rules", json!({"rules": []}))
        .await;
    assert_eq!(
        (status, code(&e)),
        (StatusCode::FORBIDDEN, "out_of_scope"),
        "{e}"
    );

    server.stop().await;
    db.drop_now().await;
}
