//! Consult rooms and an incident's voice channel against the real server and PostgreSQL: an
//! operator opens a room from an incident, joins it with a `room` token for the gateway room of
//! the same id, invites an outside expert whose link works until it expires (an expired or forged
//! link is refused by name), shares a camera; on the voice channel two field users of the
//! assigned team press to talk and the second is refused while the first holds the floor, until
//! the first lets go; a supervisor takes over, each holding with a floor grant for the gateway.
//! Every step is audited, and the rooms are listed on the incident's timeline with note codes.

mod common;

use bl_proto::token::{self, MediaAction};
use common::*;
use dispatch::rooms::{Invite, sign_invite};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOWN: &str = "zhaitang";

fn claims(grant: &Value) -> bl_proto::token::MediaClaims {
    token::verify(
        grant["token"].as_str().unwrap(),
        &media_public_key(),
        chrono::Utc::now().timestamp(),
    )
    .unwrap()
}

fn floor_claims(body: &Value) -> bl_proto::floor_token::FloorClaims {
    bl_proto::floor_token::verify(
        body["grant"].as_str().unwrap(),
        &media_public_key(),
        &"gw-1".parse().unwrap(),
        chrono::Utc::now().timestamp(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_room_opened_from_an_incident_admits_its_team_and_invited_guests_until_the_link_expires()
{
    let (db, _dir, server, mut admin) = setup_with(|c| {
        c.media = Some(media_config(&[("gw-1", "http://127.0.0.1:8090")]));
    })
    .await;
    let pool = db.pool().await;
    let team = team_on_duty(&pool, TOWN, "斋堂镇全天组").await;
    let (_, premises) = create_premises(&mut admin, TOWN, "斋堂镇中心小学食堂").await;
    insert_camera(&db, premises["id"].as_str().unwrap(), "zt-kitchen-1", true).await;
    for (name, role) in [
        ("op", "operator"),
        ("sup", "supervisor"),
        ("f1", "field"),
        ("f2", "field"),
    ] {
        create_user(&mut admin, name, role, Some(&[TOWN])).await;
    }
    sqlx::query("UPDATE users SET team_id = $1 WHERE username IN ('f1', 'f2')")
        .bind(team)
        .execute(&pool)
        .await
        .unwrap();
    let mut op = server.client();
    op.login("op", USER_PASSWORD).await;
    let (status, incident) = op
        .post(
            "/api/incidents",
            json!({"source": "manual", "townId": TOWN, "address": "北京市门头沟区斋堂镇1号",
                   "kind": "complaint"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    let incident = incident["id"].as_str().unwrap().to_owned();
    for to in ["triaged", "dispatched"] {
        let (status, body) = op
            .post(
                &format!("/api/incidents/{incident}/transition"),
                json!({"to": to}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Open, list, join.
    let (status, room) = op
        .post(
            &format!("/api/incidents/{incident}/rooms"),
            json!({"title": "专家会商"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    let room_id = room["id"].as_str().unwrap().to_owned();
    assert!(room_id.starts_with("room-"), "{room}");
    let (status, rooms) = op.get(&format!("/api/incidents/{incident}/rooms")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rooms[0]["title"], "专家会商", "{rooms}");
    let (status, grant) = op
        .post(&format!("/api/rooms/{room_id}/join"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(
        grant["roomUrl"],
        format!("http://127.0.0.1:8090/rooms/{room_id}")
    );
    let c = claims(&grant);
    assert_eq!(
        (c.action, c.camera.as_str(), c.sub.as_str()),
        (MediaAction::Room, room_id.as_str(), "user:op")
    );

    // Share a camera: every join now carries its live view.
    let (status, body) = op
        .put(
            &format!("/api/rooms/{room_id}/share"),
            json!({"cameraId": "zt-kitchen-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An invite opens the room to a guest without a login, with the shared camera.
    let (status, link) = op
        .post(
            &format!("/api/rooms/{room_id}/invites"),
            json!({"name": "区疾控王专家", "validMins": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let path = link["path"].as_str().unwrap();
    assert!(path.starts_with("/join/"), "{link}");
    let mut guest = server.client();
    let (status, grant) = guest
        .post(
            "/api/room-invites/join",
            json!({"invite": &path["/join/".len()..]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(grant["me"], "guest:区疾控王专家");
    assert_eq!(grant["share"]["cameraId"], "zt-kitchen-1", "{grant}");
    let share = token::verify(
        grant["share"]["token"].as_str().unwrap(),
        &media_public_key(),
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    assert_eq!(
        (share.action, share.camera.as_str()),
        (MediaAction::View, "zt-kitchen-1")
    );

    // The same invite past its expiry, and one signed by another key, are refused by name.
    let expired = sign_invite(
        &Invite {
            room: room_id.clone(),
            name: "过期专家".into(),
            exp: chrono::Utc::now().timestamp() - 1,
            jti: "expired".into(),
        },
        &bl_proto::SigningKey::from_bytes(&MEDIA_SEED),
    );
    let (status, body) = guest
        .post("/api/room-invites/join", json!({"invite": expired}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invite_expired", "{body}");
    let forged = sign_invite(
        &Invite {
            room: room_id.clone(),
            name: "冒名者".into(),
            exp: chrono::Utc::now().timestamp() + 3600,
            jti: "forged".into(),
        },
        &bl_proto::SigningKey::from_bytes(&[9; 32]),
    );
    let (status, body) = guest
        .post("/api/room-invites/join", json!({"invite": forged}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invite_invalid", "{body}");

    // One of the incident's evidence clips plays into the room for all; paused, stopped.
    let premises_id = premises["id"].as_str().unwrap();
    let sha = "ab".repeat(32);
    sqlx::query("INSERT INTO edges (id, premises_id) VALUES ('zt-edge', $1::uuid)")
        .bind(premises_id)
        .execute(&pool)
        .await
        .unwrap();
    let event = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO edge_events (event_id, edge_id, camera_id, type, kind, episode_id, phase, at, payload) \
         VALUES ($1, 'zt-edge', 'zt-kitchen-1', 'detection', 'noChefHat', $1, 'end', now(), \
                 jsonb_build_object('clip', jsonb_build_object('sha256', $2::text, 'size', 1000, \
                   'contentType', 'video/mp4', 'from', '2025-06-15T08:00:00.000Z', 'to', '2025-06-15T08:00:10.000Z')))",
    )
    .bind(event)
    .bind(&sha)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO incident_events (event_id, incident_id) VALUES ($1, $2::uuid)")
        .bind(event)
        .bind(&incident)
        .execute(&pool)
        .await
        .unwrap();
    let clip = format!("/api/rooms/{room_id}/clip");
    let (status, body) = op.post(&clip, json!({"step": "pause"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "no_clip");
    let (status, body) = op
        .post(&clip, json!({"step": "play", "sha256": "cd".repeat(32)}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "unknown_clip");
    let (status, body) = op
        .post(&clip, json!({"step": "play", "sha256": &sha}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["clipUrl"],
        format!("http://127.0.0.1:8090/rooms/{room_id}/clip")
    );
    assert_eq!(body["room"]["sharedClip"], sha.as_str());
    let grant = bl_proto::clip_token::verify(
        body["grant"].as_str().unwrap(),
        &media_public_key(),
        &"gw-1".parse().unwrap(),
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    assert_eq!(
        (grant.step, grant.sha256.as_str(), grant.room.as_str()),
        (
            bl_proto::clip_token::ClipStep::Play,
            sha.as_str(),
            room_id.as_str()
        )
    );
    let (status, body) = op.post(&clip, json!({"step": "pause"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sha256"], sha.as_str());
    let (status, body) = op.post(&clip, json!({"step": "stop"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["room"]["sharedClip"].is_null(), "{body}");

    // A closed room admits nobody, guests included.
    let r = op
        .send(
            reqwest::Method::DELETE,
            &format!("/api/rooms/{room_id}"),
            None,
        )
        .await;
    assert_eq!(r.0, StatusCode::NO_CONTENT);
    let (status, body) = guest
        .post(
            "/api/room-invites/join",
            json!({"invite": &path["/join/".len()..]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "room_closed", "{body}");

    // The voice channel: the team's field users press to talk; one at a time.
    let mut f1 = server.client();
    f1.login("f1", USER_PASSWORD).await;
    let mut f2 = server.client();
    f2.login("f2", USER_PASSWORD).await;
    let (status, grant) = f1
        .post(&format!("/api/incidents/{incident}/voice"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(
        claims(&grant).camera.as_str(),
        grant["room"]["id"].as_str().unwrap()
    );
    let floor = format!("/api/incidents/{incident}/voice/floor");
    let (status, body) = f1.post(&floor, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let f1_grant = floor_claims(&body);
    assert_eq!(
        (f1_grant.sub.as_str(), f1_grant.room.as_str()),
        ("user:f1", grant["room"]["id"].as_str().unwrap())
    );
    assert_eq!(f1_grant.floor_session, body["sessionId"].as_i64().unwrap());
    // Asking again renews the same holding, with a fresh grant.
    let (status, body) = f1.post(&floor, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(floor_claims(&body).floor_session, f1_grant.floor_session);
    let (status, body) = f2.post(&floor, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "floor_taken");
    assert_eq!(body["error"]["holder"]["username"], "f1", "{body}");
    // Asking to take over is for supervisors only.
    let (status, _) = f2.post(&floor, json!({"takeover": true})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The holder is shown to whoever joins.
    let (_, grant) = f2
        .post(&format!("/api/incidents/{incident}/voice"), json!({}))
        .await;
    assert_eq!(grant["floor"]["username"], "f1", "{grant}");
    let (status, _) = f1.send(reqwest::Method::DELETE, &floor, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = f2.post(&floor, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut sup = server.client();
    sup.login("sup", USER_PASSWORD).await;
    let (status, body) = sup.post(&floor, json!({"takeover": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The take-over's holding is newer, so the gateway lets it supersede the field user's.
    assert!(floor_claims(&body).floor_session > f1_grant.floor_session);
    let (status, _) = f2.post(&floor, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let actions: Vec<(String, i64)> = sqlx::query_as(
        "SELECT action, count(*) FROM audit_log WHERE action LIKE 'room.%' OR action LIKE 'voice.%' \
         GROUP BY action ORDER BY action",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let count = |a: &str| actions.iter().find(|(x, _)| x == a).map_or(0, |(_, n)| *n);
    assert_eq!(count("room.open"), 1, "{actions:?}");
    assert_eq!(count("room.invite"), 1);
    assert_eq!(count("room.share"), 1);
    assert_eq!(count("room.clip"), 3, "{actions:?}");
    assert_eq!(count("room.close"), 1);
    assert_eq!(count("voice.talk"), 3, "{actions:?}");
    assert_eq!(count("voice.release"), 1);
    assert!(count("room.join") >= 4, "{actions:?}");

    // The incident lists its rooms: each person's first join only, in both rooms.
    let codes: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT action, note_code, note_params FROM incident_timeline \
          WHERE incident_id = $1::uuid AND action IN ('room', 'voice') ORDER BY seq",
    )
    .bind(&incident)
    .fetch_all(&pool)
    .await
    .unwrap();
    let seen: Vec<(&str, &str)> = codes
        .iter()
        .map(|(a, c, _)| (a.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("room", "roomOpened"),
            ("room", "roomJoined"),
            ("room", "roomCameraShared"),
            ("room", "roomGuestJoined"),
            ("room", "roomClipShared"),
            ("room", "roomClipStopped"),
            ("room", "roomClosed"),
            ("voice", "voiceOpened"),
            ("voice", "voiceJoined"),
            ("voice", "voiceJoined"),
        ],
        "{codes:?}"
    );
    assert_eq!(codes[3].2["who"], "区疾控王专家");
    assert_eq!(codes[2].2["camera"], "zt-kitchen-1");
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
