//! The field API against the real server, PostgreSQL and mosquitto: a field user of the routed
//! team works an incident from the phone list to resolved with a photo, every write replayed with
//! its Idempotency-Key changes nothing; another team's field user sees none of it; photos are
//! checked; camera re-checks reach the owning edge over its real broker account, and its answer
//! (or silence) decides.

mod common;

use bl_proto::command::{Command, CommandAction, CommandResult, Outcome};
use bl_test_support::stack::{Stack, random_token};
use common::edge::{count, edge_commands, mqtt_config, register_edge};
use common::*;
use reqwest::{Method, StatusCode};
use rumqttc::{AsyncClient, QoS};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

/// A small JPEG-looking body (the magic bytes are what is checked).
fn jpeg(tag: &str) -> Vec<u8> {
    [&[0xFF, 0xD8, 0xFF, 0xE0][..], tag.as_bytes()].concat()
}

/// A request with the client's session, an optional Idempotency-Key and raw bytes; the status,
/// whether it was a replay, and the JSON answer.
async fn send(
    addr: SocketAddr,
    c: &Client,
    method: Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
    key: Option<Uuid>,
) -> (StatusCode, bool, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{addr}{path}"))
        .header(
            "cookie",
            format!("__Host-bl_session={}", c.cookie.as_ref().unwrap()),
        )
        .header("x-csrf-token", c.csrf.as_ref().unwrap());
    if let Some(k) = key {
        req = req.header("idempotency-key", k.to_string());
    }
    if let Some((content_type, bytes)) = body {
        req = req.header("content-type", content_type).body(bytes);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let replayed = resp.headers().contains_key("idempotent-replayed");
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, replayed, json)
}

async fn post_json(
    addr: SocketAddr,
    c: &Client,
    path: &str,
    body: Value,
    key: Option<Uuid>,
) -> (StatusCode, bool, Value) {
    let body = Some(("application/json", body.to_string().into_bytes()));
    send(addr, c, Method::POST, path, body, key).await
}

/// A logged-in user of 斋堂镇 with `role`, in `team` if given.
async fn user(
    admin: &mut Client,
    server: &Server,
    pool: &PgPool,
    name: &str,
    role: &str,
    team: Option<Uuid>,
) -> Client {
    create_user(admin, name, role, Some(&["zhaitang"])).await;
    sqlx::query("UPDATE users SET team_id = $1 WHERE username = $2")
        .bind(team)
        .bind(name)
        .execute(pool)
        .await
        .unwrap();
    let mut c = server.client();
    assert_eq!(c.login(name, USER_PASSWORD).await.0, StatusCode::OK);
    c
}

/// A no-chef-hat report (deadline tier: resolving needs evidence) at `premises`, triaged and
/// dispatched by the operator; its id.
async fn dispatched_no_hat(op: &mut Client, premises: &str) -> String {
    let (status, d) = op
        .post(
            "/api/incidents",
            json!({"source": "manual", "premisesId": premises, "kind": "noChefHat",
                   "description": "后厨厨师未戴帽"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let id = d["id"].as_str().unwrap().to_owned();
    for to in ["triaged", "dispatched"] {
        let (status, d) = op
            .post(
                &format!("/api/incidents/{id}/transition"),
                json!({ "to": to }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{d}");
    }
    id
}

fn actions(d: &Value) -> Vec<String> {
    d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_field_user_of_the_routed_team_works_an_incident_to_resolved_with_a_photo_and_replays_change_nothing()
 {
    let (db, _dir, server, mut admin) = setup_with(|c| c.field.photo_max_bytes = 2048).await;
    let addr = server.addr;
    let pool = db.pool().await;
    let team = team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    let other_team = team_on_duty(&pool, "zhaitang", "斋堂镇备勤组").await;
    let mut op = user(&mut admin, &server, &pool, "zt-op", "operator", None).await;
    let field = user(&mut admin, &server, &pool, "zt-field", "field", Some(team)).await;
    let mut other = user(
        &mut admin,
        &server,
        &pool,
        "zt-b",
        "field",
        Some(other_team),
    )
    .await;
    let (_, p) = create_premises(&mut admin, "zhaitang", "斋堂镇好味餐馆").await;
    let id = dispatched_no_hat(&mut op, p["id"].as_str().unwrap()).await;
    let base = format!("/api/incidents/{id}");

    // The phone's list: the incident with what is needed to get there and what may be done next.
    let (status, _, list) = send(
        addr,
        &field,
        Method::GET,
        "/api/field/incidents",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1, "{list}");
    let item = &list["items"][0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(
        (
            item["premisesName"].as_str(),
            item["personInCharge"].as_str(),
            item["phone"].as_str()
        ),
        (Some("斋堂镇好味餐馆"), Some("王芳"), Some("13800000001"))
    );
    assert_eq!(
        (item["lat"].as_f64(), item["state"].as_str()),
        (Some(39.97), Some("dispatched"))
    );
    assert_eq!(item["next"], json!(["acknowledged"]));

    // Acknowledge; the same request again (a lost answer) is replayed, not done twice.
    let ack = Uuid::now_v7();
    let (status, replayed, first) = post_json(
        addr,
        &field,
        &format!("{base}/transition"),
        json!({"to": "acknowledged"}),
        Some(ack),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::OK, false), "{first}");
    let (status, replayed, again) = post_json(
        addr,
        &field,
        &format!("{base}/transition"),
        json!({"to": "acknowledged"}),
        Some(ack),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::OK, true), "{again}");
    assert_eq!(again, first);
    let (status, _, e) = post_json(
        addr,
        &field,
        &format!("{base}/transition"),
        json!({"to": "enRoute"}),
        Some(ack),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("client_id_reused"))
    );

    for (to, location) in [
        ("enRoute", None),
        ("onScene", Some(json!({"lat": 39.9712, "lon": 115.6901}))),
    ] {
        let mut body = json!({ "to": to });
        if let Some(l) = location {
            body["location"] = l;
        }
        let key = Some(Uuid::now_v7());
        for _ in 0..2 {
            let (status, _, d) = post_json(
                addr,
                &field,
                &format!("{base}/transition"),
                body.clone(),
                key,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{to}: {d}");
        }
    }

    // Resolving a no-hat case needs rectification evidence.
    let (status, _, e) = post_json(
        addr,
        &field,
        &format!("{base}/transition"),
        json!({"to": "resolved"}),
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("evidence_required")),
        "{e}"
    );

    // Photos: checked by magic bytes and size; stored once; the upload replayed adds nothing.
    let photos =
        format!("{base}/photos?lat=39.9712&lon=115.6901&caption=%E5%B7%B2%E6%88%B4%E5%B8%BD");
    let (status, _, e) = send(
        addr,
        &field,
        Method::POST,
        &photos,
        Some(("image/jpeg", b"GIF89a....".to_vec())),
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_a_photo")),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("magic"),
        "{e}"
    );
    let (status, _, e) = send(
        addr,
        &field,
        Method::POST,
        &photos,
        Some(("image/jpeg", jpeg(&"x".repeat(3000)))),
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("photo_too_large")),
        "{e}"
    );
    let (status, _, e) = send(
        addr,
        &field,
        Method::POST,
        &photos,
        Some(("image/gif", b"GIF89a".to_vec())),
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_a_photo")),
        "{e}"
    );
    let shot = jpeg("hat on");
    let key = Some(Uuid::now_v7());
    let (status, _, up) = send(
        addr,
        &field,
        Method::POST,
        &photos,
        Some(("image/jpeg", shot.clone())),
        key,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    let sha = up["photo"]["sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha, dispatch::field::photos::sha256_hex(&shot));
    assert_eq!(
        (up["photo"]["caption"].as_str(), up["photo"]["lat"].as_f64()),
        (Some("已戴帽"), Some(39.9712))
    );
    let (status, replayed, again) = send(
        addr,
        &field,
        Method::POST,
        &photos,
        Some(("image/jpeg", shot.clone())),
        key,
    )
    .await;
    assert_eq!((status, replayed, &again), (StatusCode::CREATED, true, &up));
    let (status, _, _) = send(
        addr,
        &field,
        Method::POST,
        &photos,
        Some(("image/jpeg", shot.clone())),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same bytes again are attached already"
    );

    // A note, sent twice with one key.
    let key = Some(Uuid::now_v7());
    for _ in 0..2 {
        let (status, _, d) = post_json(
            addr,
            &field,
            &format!("{base}/notes"),
            json!({"text": "已督促整改"}),
            key,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{d}");
    }

    // A photo of another incident is no evidence for this one; its own photo is.
    let (status, _, e) = post_json(
        addr,
        &field,
        &format!("{base}/transition"),
        json!({"to": "resolved", "evidence": ["0".repeat(64)]}),
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field")),
        "{e}"
    );
    let key = Some(Uuid::now_v7());
    let resolve = json!({"to": "resolved", "evidence": [sha], "note": "整改完毕"});
    let (status, _, d) = post_json(
        addr,
        &field,
        &format!("{base}/transition"),
        resolve.clone(),
        key,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let (status, replayed, _) =
        post_json(addr, &field, &format!("{base}/transition"), resolve, key).await;
    assert_eq!((status, replayed), (StatusCode::OK, true));
    assert_eq!(d["state"], "resolved");
    assert_eq!(
        actions(&d),
        [
            "opened",
            "routed",
            "confirm",
            "dispatch",
            "acknowledge",
            "enRoute",
            "arrive",
            "photo",
            "note",
            "resolve"
        ]
    );
    let timeline = d["timeline"].as_array().unwrap();
    assert_eq!(timeline[6]["lat"], 39.9712, "arrive carries the location");
    assert_eq!(timeline[7]["refs"]["photo"], sha.as_str());
    assert_eq!(timeline[9]["refs"]["evidence"], json!([sha]));
    assert_eq!(d["photos"].as_array().unwrap().len(), 1);

    // The photo comes back byte for byte.
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/api/photos/{sha}"))
        .header(
            "cookie",
            format!("__Host-bl_session={}", field.cookie.as_ref().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), shot);

    // Another team's field user: not in its lists, and refused on the incident and its photo.
    let (_, list) = other.get("/api/field/incidents").await;
    assert_eq!(list["total"], 0, "{list}");
    let (_, list) = other.get("/api/incidents").await;
    assert_eq!(list["total"], 0, "{list}");
    for path in [base.clone(), format!("/api/photos/{sha}")] {
        let (status, e) = other.get(&path).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("not_your_team")),
            "{path}"
        );
    }
    let (status, _) = other
        .post(&format!("{base}/notes"), json!({"text": "x"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Stored once, immutable.
    assert_eq!(count(&pool, "SELECT count(*) FROM photos").await, 1);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM client_requests").await,
        6
    );
    let e = sqlx::query("UPDATE photos SET content_type = 'image/png'")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = sqlx::query("DELETE FROM incident_photos")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");

    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

/// An edge's own broker account: a client that receives the edge's commands, once dispatch
/// consumes its reports (its state shows up in `edge_status`).
/// The phone's list names the premises' cameras; a field user gets a live grant for them only while
/// an incident of their team there is open, and the timeline's system notes come with codes.
#[tokio::test]
async fn a_field_user_watches_the_premises_cameras_only_while_their_teams_incident_there_is_open() {
    let (db, _dir, server, mut admin) = setup_with(|c| {
        c.media = Some(media_config(&[("gw-1", "http://127.0.0.1:8090")]));
    })
    .await;
    let pool = db.pool().await;
    let team = team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    let mut op = user(&mut admin, &server, &pool, "zt-op", "operator", None).await;
    let mut field = user(&mut admin, &server, &pool, "zt-field", "field", Some(team)).await;
    let (_, p) = create_premises(&mut admin, "zhaitang", "斋堂镇好味餐馆").await;
    let (_, q) = create_premises(&mut admin, "zhaitang", "斋堂镇隔壁面馆").await;
    let (p, q) = (p["id"].as_str().unwrap(), q["id"].as_str().unwrap());
    insert_camera(&db, p, "cam-kitchen", false).await;
    insert_camera(&db, q, "cam-next-door", false).await;
    let watch = |camera: &str| format!("/api/cameras/{camera}/live");
    let refused = |(status, body): (StatusCode, Value)| {
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "not_your_team", "{body}");
    };

    refused(field.post(&watch("cam-kitchen"), json!({})).await);
    let id = dispatched_no_hat(&mut op, p).await;
    let (status, list) = field.get("/api/field/incidents").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        list["items"][0]["cameras"],
        json!([{"id": "cam-kitchen", "name": "cam-kitchen"}])
    );
    let (status, grant) = field.post(&watch("cam-kitchen"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert!(grant["whepUrl"].as_str().is_some(), "{grant}");
    // a premises without the team's incident stays closed to them
    refused(field.post(&watch("cam-next-door"), json!({})).await);

    let (_, detail) = op.get(&format!("/api/incidents/{id}")).await;
    let entry = |action: &str| {
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {detail}"))
            .clone()
    };
    let routed = entry("routed");
    assert_eq!(routed["noteCode"], "routedToTeam", "{routed}");
    assert_eq!(routed["noteParams"]["team"], "斋堂镇全天组", "{routed}");
    assert!(
        routed["note"]
            .as_str()
            .unwrap()
            .starts_with("routed to team")
    );
    assert_eq!(entry("opened")["noteCode"], "opened");
    assert_eq!(
        entry("confirm")["noteCode"],
        Value::Null,
        "a person's step has no coded note"
    );

    // once the incident is over, so is the live view
    sqlx::query("UPDATE incidents SET state = 'closed' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    refused(field.post(&watch("cam-kitchen"), json!({})).await);
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

async fn edge_box(
    stack: &Stack,
    pool: &PgPool,
    edge: &str,
) -> (AsyncClient, mpsc::Receiver<Command>) {
    let (client, rx) = edge_commands(stack, edge).await;
    let state = format!(
        r#"{{"type":"edgeState","v":1,"edgeId":"{edge}","online":true,"agentVersion":"0.1.0","at":"2026-11-23T22:15:00.000Z","cameras":[],"disk":{{"totalBytes":1000,"freeBytes":500}},"outboxDepth":0,"configRevision":null}}"#
    );
    let sql = format!("SELECT count(*) FROM edge_status WHERE edge_id = '{edge}'");
    let start = Instant::now();
    while count(pool, &sql).await == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "dispatch never consumed the edge's state"
        );
        client
            .publish(
                format!("bl/v1/edge/{edge}/state"),
                QoS::AtLeastOnce,
                false,
                state.clone().into_bytes(),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (client, rx)
}

async fn answer(client: &AsyncClient, edge: &str, cmd: &Command, outcome: Outcome) {
    let result = CommandResult {
        v: bl_proto::V1,
        cmd_id: cmd.cmd_id,
        edge_id: bl_proto::EdgeId::new(edge).unwrap(),
        at: chrono::Utc::now(),
        outcome,
    };
    client
        .publish(
            format!("bl/v1/edge/{edge}/cmd/result"),
            QoS::AtLeastOnce,
            false,
            bl_proto::encode(&result),
        )
        .await
        .unwrap();
}

async fn next_command(rx: &mut mpsc::Receiver<Command>) -> Command {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the edge receives the command")
        .unwrap()
}

/// Polls the incident until its timeline ends with `action`; returns it.
async fn wait_for_action(c: &mut Client, id: &str, action: &str) -> Value {
    let start = Instant::now();
    loop {
        let (_, d) = c.get(&format!("/api/incidents/{id}")).await;
        if actions(&d).last().map(String::as_str) == Some(action) {
            return d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no {action}: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// dispatch with the broker, a 1 s grace, a fast sweep; an edge box of a premises in 斋堂镇, its
/// team's field user and an operator; an incident there taken on scene by the field user.
struct Recheck {
    db: TestDb,
    _dir: tempfile::TempDir,
    server: Server,
    pool: PgPool,
    field: Client,
    id: String,
    edge: String,
    camera: String,
    stack: Stack,
}

async fn on_scene_with_an_edge() -> Recheck {
    let stack = Stack::from_env();
    let run = random_token();
    let mqtt = mqtt_config(&stack, &run);
    let (db, dir, server, mut admin) = setup_with(|c| {
        c.mqtt = Some(mqtt);
        c.field.recheck_grace_secs = 1;
        c.field.sweep_interval_ms = 100;
    })
    .await;
    let pool = db.pool().await;
    let (edge, camera) = (format!("fe-{}", &run[..8]), format!("fc-{}", &run[..8]));
    let premises = register_edge(&pool, &edge, &camera, "restaurant", "斋堂镇农家院", None).await;
    let team = team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    let mut op = user(&mut admin, &server, &pool, "zt-op", "operator", None).await;
    let mut field = user(&mut admin, &server, &pool, "zt-field", "field", Some(team)).await;
    let id = dispatched_no_hat(&mut op, &premises.to_string()).await;
    for to in ["acknowledged", "enRoute", "onScene"] {
        let (status, d) = field
            .post(
                &format!("/api/incidents/{id}/transition"),
                json!({ "to": to }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{d}");
    }
    Recheck {
        db,
        _dir: dir,
        server,
        pool,
        field,
        id,
        edge,
        camera,
        stack,
    }
}

#[tokio::test]
async fn a_camera_recheck_reaches_the_owning_edge_and_its_ok_resolves_the_incident() {
    let r = on_scene_with_an_edge().await;
    let (client, mut commands) = edge_box(&r.stack, &r.pool, &r.edge).await;
    let path = format!("/api/incidents/{}/recheck", r.id);
    let key = Some(Uuid::now_v7());
    let (status, _, first) =
        post_json(r.server.addr, &r.field, &path, json!({"forSecs": 5}), key).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(
        (first["state"].as_str(), first["edgeId"].as_str()),
        (Some("pending"), Some(r.edge.as_str()))
    );
    let (status, replayed, again) =
        post_json(r.server.addr, &r.field, &path, json!({"forSecs": 5}), key).await;
    assert_eq!(
        (status, replayed, &again),
        (StatusCode::ACCEPTED, true, &first)
    );
    assert_eq!(
        count(&r.pool, "SELECT count(*) FROM commands").await,
        1,
        "a replay sends nothing"
    );

    let cmd = next_command(&mut commands).await;
    assert_eq!(cmd.cmd_id.to_string(), first["cmdId"].as_str().unwrap());
    let CommandAction::Recheck(ask) = &cmd.action else {
        panic!("{cmd:?}")
    };
    assert_eq!(
        (ask.camera_id.as_str(), ask.for_secs),
        (r.camera.as_str(), 5)
    );
    assert_eq!(ask.kind, bl_proto::event::ViolationKind::NoChefHat);
    answer(&client, &r.edge, &cmd, Outcome::Ok { detail: None }).await;

    let mut field = r.field;
    let d = wait_for_action(&mut field, &r.id, "recheckPassed").await;
    assert_eq!(d["state"], "resolved");
    let last = d["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["actor"].as_str(), last["toState"].as_str()),
        (Some("system"), Some("resolved"))
    );
    assert_eq!(d["rechecks"][0]["state"], "passed");
    // A repeat of the answer changes nothing.
    answer(&client, &r.edge, &cmd, Outcome::Ok { detail: None }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, again) = field.get(&format!("/api/incidents/{}", r.id)).await;
    assert_eq!(actions(&again), actions(&d));
    let _ = client.disconnect().await;
    r.pool.close().await;
    r.server.stop().await;
    r.db.drop_now().await;
}

#[tokio::test]
async fn a_failed_recheck_leaves_the_incident_for_action_another_edge_cannot_answer_and_silence_times_out()
 {
    let r = on_scene_with_an_edge().await;
    let (client, mut commands) = edge_box(&r.stack, &r.pool, &r.edge).await;
    let intruder = format!("{}-x", r.edge);
    sqlx::query(
        "INSERT INTO edges (id, premises_id) SELECT $1, premises_id FROM edges WHERE id = $2",
    )
    .bind(&intruder)
    .bind(&r.edge)
    .execute(&r.pool)
    .await
    .unwrap();
    let (intruder_client, _) = edge_box(&r.stack, &r.pool, &intruder).await;
    let path = format!("/api/incidents/{}/recheck", r.id);
    let (status, _, _) = post_json(
        r.server.addr,
        &r.field,
        &path,
        json!({"forSecs": 1, "cameraId": r.camera}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let cmd = next_command(&mut commands).await;

    // Another edge's "ok" for this command is dropped; the owner's failure counts.
    answer(
        &intruder_client,
        &intruder,
        &cmd,
        Outcome::Ok { detail: None },
    )
    .await;
    answer(
        &client,
        &r.edge,
        &cmd,
        Outcome::Error {
            code: "cameraOffline".into(),
            message: "no frames for 30 s".into(),
        },
    )
    .await;
    let mut field = r.field;
    let d = wait_for_action(&mut field, &r.id, "recheckFailed").await;
    assert_eq!(d["state"], "onScene");
    assert!(!actions(&d).contains(&"recheckPassed".to_owned()), "{d}");
    let note = d["timeline"].as_array().unwrap().last().unwrap()["note"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(note.contains("cameraOffline"), "{note}");

    // Nobody answers the next one: it times out after its watch and the grace.
    let (status, _, _) = post_json(r.server.addr, &field, &path, json!({"forSecs": 1}), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let late = next_command(&mut commands).await;
    let d = wait_for_action(&mut field, &r.id, "recheckTimedOut").await;
    assert_eq!(d["state"], "onScene");
    assert_eq!(d["rechecks"][1]["state"], "timedOut");
    // A late answer is ignored.
    answer(&client, &r.edge, &late, Outcome::Ok { detail: None }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, again) = field.get(&format!("/api/incidents/{}", r.id)).await;
    assert_eq!(
        (again["state"].as_str(), actions(&again)),
        (Some("onScene"), actions(&d))
    );

    // Bad input is named.
    let (status, _, e) = post_json(r.server.addr, &field, &path, json!({"forSecs": 0}), None).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let (status, _, e) = post_json(
        r.server.addr,
        &field,
        &path,
        json!({"forSecs": 5, "cameraId": "nope"}),
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field")),
        "{e}"
    );
    let _ = client.disconnect().await;
    let _ = intruder_client.disconnect().await;
    r.pool.close().await;
    r.server.stop().await;
    r.db.drop_now().await;
}
