//! Talk recordings reported by the gateway (issue 7 item 6), against the real server and
//! PostgreSQL: an operator takes a camera's floor from an incident; the owning gateway reports the
//! stored recording; it lands once on that incident's timeline with note code `voiceRecorded`
//! (a second report of the same SHA-256 changes nothing), is audited, and the incident's
//! recordings come with a gateway URL carrying a view token for the camera. Another node, a bad
//! report and a stranger are refused. A push-to-talk transmission, named by its voice channel,
//! lands on the channel's incident the same way. A broadcast's recording is listed with the broadcast
//! (`GET /api/broadcasts`) and played from there by the operators of its towns only.

mod common;

use bl_proto::token::{self, MediaAction};
use common::gateway::{GATEWAYS, internal_post, media_with_services, owner};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CAM: &str = "zt-kitchen-rec";

fn report(talker: &str, sha: &str) -> Value {
    json!({
        "v": 1, "sha256": sha, "size": 48_213, "contentType": "audio/webm", "kind": "talk",
        "talker": talker, "cameras": [CAM], "broadcast": null,
        "startedAt": "2026-11-24T08:00:00.000Z", "endedAt": "2026-11-24T08:00:12.000Z",
        "directions": ["center", "premises"], "premisesNote": null
    })
}

#[tokio::test]
async fn a_reported_talk_recording_is_on_its_incidents_timeline_once_with_a_playable_url() {
    let (db, _dir, server, mut admin) = setup_with(|c| c.media = Some(media_with_services())).await;
    let (status, p) = create_premises(&mut admin, "zhaitang", "斋堂镇中心小学食堂").await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    insert_camera(&db, p["id"].as_str().unwrap(), CAM, true).await;
    create_user(&mut admin, "op-rec", "operator", Some(&["zhaitang"])).await;
    let mut op = server.client();
    assert_eq!(op.login("op-rec", USER_PASSWORD).await.0, StatusCode::OK);
    let (status, incident) = op
        .post(
            "/api/incidents",
            json!({"source": "manual", "townId": "zhaitang", "address": "斋堂镇录音街1号", "kind": "rodent"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    let incident_id = incident["id"].as_str().unwrap().to_owned();

    // The talk is started from the incident: its floor holding names it.
    let (status, grant) = op
        .post(
            &format!("/api/cameras/{CAM}/talk"),
            json!({"incidentId": incident_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    let now = chrono::Utc::now();
    let talker = token::verify(
        grant["token"].as_str().unwrap(),
        &media_public_key(),
        now.timestamp(),
    )
    .unwrap()
    .sub;
    // The recording's times are the gateway's: near the holding.
    let sha = "c".repeat(64);
    let mut body = report(&talker, &sha);
    body["startedAt"] = json!(now.to_rfc3339());
    body["endedAt"] = json!((now + chrono::Duration::seconds(12)).to_rfc3339());

    // Only the camera's owner reports it; a malformed report names its field.
    let node = owner(CAM);
    let other = GATEWAYS.iter().map(|g| g.0).find(|n| *n != node).unwrap();
    let (status, refused) =
        internal_post(&server, "/internal/voice-recordings", other, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "not_owner");
    let mut bad = body.clone();
    bad["directions"] = json!(["left"]);
    let (status, refused) = internal_post(&server, "/internal/voice-recordings", &node, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("directions"),
        "{refused}"
    );

    let (status, first) =
        internal_post(&server, "/internal/voice-recordings", &node, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["stored"], true);
    assert_eq!(first["incidentId"].as_str(), Some(incident_id.as_str()));
    // The gateway retries until it hears back: a second report changes nothing.
    let (status, again) = internal_post(&server, "/internal/voice-recordings", &node, body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["stored"], false);

    let (status, detail) = op.get(&format!("/api/incidents/{incident_id}")).await;
    assert_eq!(status, StatusCode::OK);
    let recorded: Vec<&Value> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["noteCode"] == "voiceRecorded")
        .collect();
    assert_eq!(recorded.len(), 1, "{}", detail["timeline"]);
    let entry = recorded[0];
    assert_eq!(entry["actor"], "op-rec");
    assert_eq!(entry["noteParams"]["secs"], 12);
    assert_eq!(entry["noteParams"]["premises"], true);
    assert_eq!(entry["refs"]["voiceRecording"]["sha256"], sha);
    assert_eq!(
        entry["refs"]["voiceRecording"]["directions"],
        json!(["center", "premises"])
    );

    // Playback: a gateway URL with a view token for the camera, audited.
    let (status, list) = op
        .post(
            &format!("/api/incidents/{incident_id}/voice-recordings"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["sha256"], sha);
    assert_eq!(items[0]["cameras"], json!([CAM]));
    let url = items[0]["url"].as_str().unwrap();
    let base = GATEWAYS.iter().find(|g| g.0 == node).unwrap().1;
    assert!(
        url.starts_with(&format!("{base}/evidence/{sha}?access_token=")),
        "{url}"
    );
    let token = url.split("access_token=").nth(1).unwrap();
    let claims = token::verify(token, &media_public_key(), chrono::Utc::now().timestamp()).unwrap();
    assert_eq!(claims.action, MediaAction::View);
    assert_eq!(claims.camera.as_str(), CAM);
    assert_eq!(claims.node.as_str(), node);

    let pool = db.pool().await;
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action IN ('voice.recorded', 'evidence.view') ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audited, ["voice.recorded", "evidence.view"]);
}

#[tokio::test]
async fn a_push_to_talk_transmission_is_on_its_voice_channels_incident_with_a_playable_url() {
    let (_db, _dir, server, mut admin) =
        setup_with(|c| c.media = Some(media_with_services())).await;
    create_user(&mut admin, "op-ptt", "operator", Some(&["zhaitang"])).await;
    let mut op = server.client();
    assert_eq!(op.login("op-ptt", USER_PASSWORD).await.0, StatusCode::OK);
    let (status, incident) = op
        .post(
            "/api/incidents",
            json!({"source": "manual", "townId": "zhaitang", "address": "斋堂镇对讲街2号", "kind": "rodent"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    let incident_id = incident["id"].as_str().unwrap().to_owned();
    let (status, joined) = op
        .post(&format!("/api/incidents/{incident_id}/voice"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    let room = joined["room"]["id"].as_str().unwrap().to_owned();

    // The gateway names a transmission by its channel and the talker by their room token's subject.
    let sha = "d".repeat(64);
    let mut body = report("user:op-ptt", &sha);
    body["kind"] = json!("ptt");
    body["cameras"] = json!([room]);
    body["directions"] = json!(["center"]);
    body["endedAt"] = json!("2026-11-24T08:00:04.000Z");
    let node = owner(&room);
    let other = GATEWAYS.iter().map(|g| g.0).find(|n| *n != node).unwrap();
    let (status, refused) =
        internal_post(&server, "/internal/voice-recordings", other, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "not_owner");
    let mut unknown = body.clone();
    unknown["cameras"] = json!(["voice-0000nosuchroom"]);
    let (status, refused) = internal_post(
        &server,
        "/internal/voice-recordings",
        &owner("voice-0000nosuchroom"),
        unknown,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");

    let (status, first) =
        internal_post(&server, "/internal/voice-recordings", &node, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["incidentId"].as_str(), Some(incident_id.as_str()));

    let (_, detail) = op.get(&format!("/api/incidents/{incident_id}")).await;
    let recorded: Vec<&Value> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["noteCode"] == "voiceRecorded")
        .collect();
    assert_eq!(recorded.len(), 1, "{}", detail["timeline"]);
    let entry = recorded[0];
    assert_eq!(entry["actor"], "op-ptt");
    assert_eq!(entry["noteParams"]["kind"], "ptt");
    assert_eq!(entry["noteParams"]["secs"], 4);
    assert_eq!(entry["refs"]["voiceRecording"]["sha256"], sha);
    assert_eq!(entry["refs"]["room"], room);
    assert!(
        entry["note"].as_str().unwrap().contains("push-to-talk"),
        "{entry}"
    );

    // Playback: a view token for the channel, under whose id the gateway stored the blob.
    let (status, list) = op
        .post(
            &format!("/api/incidents/{incident_id}/voice-recordings"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["kind"], "ptt");
    let url = items[0]["url"].as_str().unwrap();
    let token = url.split("access_token=").nth(1).unwrap();
    let claims = token::verify(token, &media_public_key(), chrono::Utc::now().timestamp()).unwrap();
    assert_eq!(claims.action, MediaAction::View);
    assert_eq!(claims.camera.as_str(), room);
    assert_eq!(claims.node.as_str(), node);
}

#[tokio::test]
async fn a_consult_room_recorded_on_request_is_on_its_incident_and_the_room_says_so() {
    let (db, _dir, server, mut admin) = setup_with(|c| c.media = Some(media_with_services())).await;
    create_user(&mut admin, "op-room", "operator", Some(&["zhaitang"])).await;
    let mut op = server.client();
    assert_eq!(op.login("op-room", USER_PASSWORD).await.0, StatusCode::OK);
    let (status, incident) = op
        .post(
            "/api/incidents",
            json!({"source": "manual", "townId": "zhaitang", "address": "斋堂镇会商街3号", "kind": "rodent"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    let incident_id = incident["id"].as_str().unwrap().to_owned();
    let (status, opened) = op
        .post(
            &format!("/api/incidents/{incident_id}/rooms"),
            json!({"title": "专家会商"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let room = opened["room"]["id"]
        .as_str()
        .or(opened["id"].as_str())
        .unwrap()
        .to_owned();

    // Start: a one-minute record token of the room for its gateway; the room says since when.
    let (status, grant) = op
        .post(
            &format!("/api/rooms/{room}/recording"),
            json!({"record": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert!(grant["room"]["recordingSince"].is_string(), "{grant}");
    let node = owner(&room);
    let base = GATEWAYS.iter().find(|g| g.0 == node).unwrap().1;
    assert_eq!(
        grant["recordingUrl"],
        format!("{base}/rooms/{room}/recording")
    );
    let claims = token::verify(
        grant["token"].as_str().unwrap(),
        &media_public_key(),
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    assert_eq!(claims.action, MediaAction::Record);
    assert_eq!(claims.camera.as_str(), room);
    assert!(claims.exp - claims.iat <= 60);

    // The gateway reports the mixed recording: on the incident, and the room records no more.
    let sha = "e".repeat(64);
    let mut body = report("user:op-room", &sha);
    body["kind"] = json!("room");
    body["cameras"] = json!([room]);
    body["directions"] = json!(["center"]);
    body["startedAt"] = json!(chrono::Utc::now().to_rfc3339());
    body["endedAt"] = json!((chrono::Utc::now() + chrono::Duration::seconds(9)).to_rfc3339());
    let (status, first) =
        internal_post(&server, "/internal/voice-recordings", &node, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["incidentId"].as_str(), Some(incident_id.as_str()));
    let (_, detail) = op.get(&format!("/api/incidents/{incident_id}")).await;
    let entry = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["noteCode"] == "voiceRecorded")
        .unwrap_or_else(|| panic!("{}", detail["timeline"]))
        .clone();
    assert_eq!(entry["noteParams"]["kind"], "room");
    assert_eq!(entry["noteParams"]["title"], "专家会商");
    assert_eq!(entry["refs"]["room"], room);
    let (_, rooms) = op.get(&format!("/api/incidents/{incident_id}/rooms")).await;
    let listed = rooms
        .as_array()
        .or(rooms["items"].as_array())
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .unwrap()
        .clone();
    assert!(listed["recordingSince"].is_null(), "{listed}");

    // A voice channel is not recorded as a whole.
    let (_, voice) = op
        .post(&format!("/api/incidents/{incident_id}/voice"), json!({}))
        .await;
    let channel = voice["room"]["id"].as_str().unwrap();
    let (status, refused) = op
        .post(
            &format!("/api/rooms/{channel}/recording"),
            json!({"record": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "not_consult_room");

    let pool = db.pool().await;
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action IN ('room.record', 'voice.recorded') ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audited, ["room.record", "voice.recorded"]);
}

#[tokio::test]
async fn a_broadcasts_recording_is_listed_with_its_kitchens_and_plays_for_its_towns_only() {
    let (db, _dir, server, mut admin) = setup_with(|c| c.media = Some(media_with_services())).await;
    let (status, p) = create_premises(&mut admin, "zhaitang", "斋堂镇中心小学食堂").await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    insert_camera(&db, p["id"].as_str().unwrap(), CAM, true).await;
    create_user(&mut admin, "op-bc", "operator", Some(&["zhaitang"])).await;
    create_user(&mut admin, "op-far", "operator", Some(&["dayu"])).await;
    let pool = db.pool().await;
    let talker: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'op-bc'")
        .fetch_one(&pool)
        .await
        .unwrap();
    // A broadcast that reached the kitchen and ended (started the way POST /api/broadcasts does,
    // which needs the edges' broker: see tests/broadcast.rs).
    let broadcast = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO broadcasts (id, user_id, username, display_name, selection, started_at, ended_at) \
         VALUES ($1, $2, 'op-bc', '广播员', $3, now() - interval '1 minute', now())",
    )
    .bind(broadcast)
    .bind(talker)
    .bind(json!({"cameras": [CAM]}))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO broadcast_targets (broadcast_id, camera_id, town_id, state, updated_at) \
         VALUES ($1, $2, 'zhaitang', 'ended', now())",
    )
    .bind(broadcast)
    .bind(CAM)
    .execute(&pool)
    .await
    .unwrap();

    let mut op = server.client();
    assert_eq!(op.login("op-bc", USER_PASSWORD).await.0, StatusCode::OK);
    let (status, list) = op.get("/api/broadcasts").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1, "{list}");
    let item = &list["items"][0];
    assert_eq!(item["id"], broadcast.to_string());
    assert_eq!(item["displayName"], "广播员");
    assert_eq!(
        (item["kitchens"].as_i64(), item["heard"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(item["recordings"], json!([]), "not reported yet: {item}");

    // The gateway reports the recording of the operator's voice.
    let sha = "d".repeat(64);
    let mut body = report(&talker.to_string(), &sha);
    body["kind"] = json!("broadcast");
    body["broadcast"] = json!(broadcast);
    body["directions"] = json!(["center"]);
    let node = owner(CAM);
    let (status, reported) =
        internal_post(&server, "/internal/voice-recordings", &node, body).await;
    assert_eq!(status, StatusCode::CREATED, "{reported}");
    let (_, list) = op.get("/api/broadcasts").await;
    assert_eq!(list["items"][0]["recordings"], json!([sha]), "{list}");

    let (status, recordings) = op
        .post(
            &format!("/api/broadcasts/{broadcast}/voice-recordings"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{recordings}");
    let items = recordings["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{recordings}");
    assert_eq!(items[0]["kind"], "broadcast");
    let url = items[0]["url"].as_str().unwrap();
    let token = url.split("access_token=").nth(1).unwrap();
    let claims = token::verify(token, &media_public_key(), chrono::Utc::now().timestamp()).unwrap();
    assert_eq!(claims.action, MediaAction::View);
    assert_eq!(claims.camera.as_str(), CAM);
    let (object, town): (String, String) = sqlx::query_as(
        "SELECT object_id, town_id FROM audit_log WHERE action = 'evidence.view' AND object_type = 'broadcast'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((object, town), (broadcast.to_string(), "zhaitang".into()));

    // An operator of another town neither sees it nor gets its recording.
    let mut far = server.client();
    assert_eq!(far.login("op-far", USER_PASSWORD).await.0, StatusCode::OK);
    let (status, list) = far.get("/api/broadcasts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 0, "{list}");
    let (status, refused) = far
        .post(
            &format!("/api/broadcasts/{broadcast}/voice-recordings"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
}
