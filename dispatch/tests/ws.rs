//! The consoles' WebSocket against the real server and PostgreSQL (and mosquitto for edge state):
//! changes reach exactly the sockets whose users may see them, on any replica; the handshake
//! checks Origin; a session that ends closes its sockets.

mod common;

use bl_test_support::stack::{Stack, random_token};
use common::*;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use uuid::Uuid;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/api/ws` with the client's session cookie and `origin` (none: no header).
async fn open(
    addr: SocketAddr,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<Socket, tungstenite::Error> {
    let mut request = format!("ws://{addr}/api/ws").into_client_request().unwrap();
    if let Some(c) = cookie {
        request
            .headers_mut()
            .insert("cookie", format!("__Host-bl_session={c}").parse().unwrap());
    }
    if let Some(o) = origin {
        request.headers_mut().insert("origin", o.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// The server's own origin, as a browser on the console sends it.
fn own_origin(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A logged-in user's socket, past `hello`, subscribed to `topics`.
async fn subscribed(addr: SocketAddr, client: &Client, topics: &[&str]) -> Socket {
    let mut ws = open(addr, client.cookie.as_deref(), Some(&own_origin(addr)))
        .await
        .expect("the socket opens");
    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["v"], 1);
    send(&mut ws, json!({"type": "subscribe", "topics": topics})).await;
    let answer = next(&mut ws).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    ws
}

async fn send(ws: &mut Socket, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

/// The next text message (within 10 s).
async fn next(ws: &mut Socket) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .expect("a valid frame");
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(c) => panic!("socket closed: {c:?}"),
            _ => continue,
        }
    }
}

/// The first message for which `wanted` holds (within 10 s), skipping others.
async fn until(ws: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = tokio::time::timeout_at(deadline, next(ws))
            .await
            .expect("the awaited message within 10 s");
        if wanted(&m) {
            return m;
        }
    }
}

/// Every text message that arrives within `wait`.
async fn drain(ws: &mut Socket, wait: Duration) -> Vec<Value> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = m {
            seen.push(serde_json::from_str(t.as_str()).unwrap());
        }
    }
    seen
}

/// The close frame's code (within 10 s), skipping other messages.
async fn closed_with(ws: &mut Socket) -> u16 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the socket closes within 10 s");
        match m {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => return u16::from(CloseCode::Status),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket failed instead of closing: {e}"),
        }
    }
}

fn about(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |m| m["id"] == id || m["incidentId"] == id
}

/// A team in `town`; on duty around the clock when `on_duty`.
async fn team(db: &TestDb, town: &str, name: &str, on_duty: bool) -> Uuid {
    let pool = db.pool().await;
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO teams (id, town_id, name) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(town)
        .bind(name)
        .execute(&pool)
        .await
        .unwrap();
    if on_duty {
        sqlx::query(
            "INSERT INTO roster_shifts (id, team_id, weekdays, starts, ends) VALUES ($1, $2, 127, '00:00', '00:00')",
        )
        .bind(Uuid::now_v7())
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    id
}

/// A user created by the admin, logged in.
async fn user(
    server: &Server,
    admin: &mut Client,
    name: &str,
    role: &str,
    towns: Option<&[&str]>,
    team: Option<Uuid>,
) -> Client {
    let (status, body) = admin
        .post(
            "/api/users",
            json!({"username": name, "displayName": name, "role": role, "scopeTowns": towns,
                   "teamId": team, "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut client = server.client();
    assert_eq!(client.login(name, USER_PASSWORD).await.0, StatusCode::OK);
    client
}

/// A poisoning reported on the 12331 hotline about `premises`; returns the incident id.
async fn hotline_report(client: &mut Client, premises: &str) -> String {
    let (status, body) = client
        .post(
            "/api/incidents",
            json!({"source": "hotline", "hotline": "12331", "premisesId": premises,
                   "kind": "suspectedPoisoning", "caseCount": 4, "description": "四名学生午餐后呕吐"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hotline_report_reaches_the_operator_the_town_officer_and_the_routed_team_and_nobody_else()
 {
    let (db, _dir, server, mut admin) = setup().await;
    let addr = server.addr;
    let on_duty = team(&db, "zhaitang", "斋堂镇全天组", true).await;
    let off_duty = team(&db, "zhaitang", "斋堂镇备勤组", false).await;
    let (_, premises) = create_premises(&mut admin, "zhaitang", "斋堂镇中心小学食堂").await;
    let premises = premises["id"].as_str().unwrap().to_owned();

    let mut operator = user(&server, &mut admin, "ws-op", "operator", None, None).await;
    let own_officer = user(
        &server,
        &mut admin,
        "ws-zt",
        "townOfficer",
        Some(&["zhaitang"]),
        None,
    )
    .await;
    let other_officer = user(
        &server,
        &mut admin,
        "ws-qs",
        "townOfficer",
        Some(&["qingshui"]),
        None,
    )
    .await;
    let own_field = user(
        &server,
        &mut admin,
        "ws-f1",
        "field",
        Some(&["zhaitang"]),
        Some(on_duty),
    )
    .await;
    let other_field = user(
        &server,
        &mut admin,
        "ws-f2",
        "field",
        Some(&["zhaitang"]),
        Some(off_duty),
    )
    .await;

    let everything = ["incidents", "timeline", "notifications"];
    let mut op_ws = subscribed(addr, &operator, &everything).await;
    let mut zt_ws = subscribed(addr, &own_officer, &everything).await;
    let mut qs_ws = subscribed(addr, &other_officer, &everything).await;
    let mut f2_ws = subscribed(addr, &other_field, &everything).await;

    // a field user may not watch device health: the table refuses the topic, with the reason
    let mut f1_ws = open(addr, own_field.cookie.as_deref(), Some(&own_origin(addr)))
        .await
        .unwrap();
    let hello = next(&mut f1_ws).await;
    assert_eq!(
        hello["topics"],
        json!(["incidents", "timeline", "notifications"])
    );
    send(
        &mut f1_ws,
        json!({"type": "subscribe", "topics": ["incidents", "edges"]}),
    )
    .await;
    let refused = next(&mut f1_ws).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "topic_forbidden", "{refused}");
    send(
        &mut f1_ws,
        json!({"type": "subscribe", "topics": ["weather"]}),
    )
    .await;
    assert_eq!(next(&mut f1_ws).await["code"], "unknown_topic");
    send(
        &mut f1_ws,
        json!({"type": "subscribe", "topics": everything}),
    )
    .await;
    assert_eq!(next(&mut f1_ws).await["type"], "subscribed");
    send(&mut f1_ws, json!({"type": "ping", "id": "p1"})).await;
    let pong = next(&mut f1_ws).await;
    assert_eq!((&pong["type"], &pong["id"]), (&json!("pong"), &json!("p1")));

    let id = hotline_report(&mut operator, &premises).await;

    // the command center and the town's officer see the incident and its timeline
    for ws in [&mut op_ws, &mut zt_ws] {
        let incident = until(ws, |m| m["type"] == "incident" && m["id"] == id).await;
        assert_eq!(incident["townId"], "zhaitang");
        assert_eq!(incident["kind"], "suspectedPoisoning");
        assert!(incident["lastReportAt"].is_string(), "{incident}");
        until(ws, |m| m["type"] == "timeline" && m["incidentId"] == id).await;
    }
    // the routed team sees the incident once it is routed to it, and its notification
    let routed = until(&mut f1_ws, |m| m["type"] == "incident" && m["id"] == id).await;
    assert_eq!(routed["routedTeamId"], on_duty.to_string());
    let note = until(&mut f1_ws, |m| {
        m["type"] == "notification" && m["incidentId"] == id
    })
    .await;
    assert_eq!(
        (&note["targetKind"], &note["targetId"]),
        (&json!("team"), &json!(on_duty.to_string()))
    );
    until(&mut op_ws, |m| {
        m["type"] == "notification" && m["incidentId"] == id
    })
    .await;

    // every change went through one broadcast: what these two were going to get has arrived
    for ws in [&mut qs_ws, &mut f2_ws] {
        let leaked: Vec<Value> = drain(ws, Duration::from_millis(700))
            .await
            .into_iter()
            .filter(about(&id))
            .collect();
        assert!(leaked.is_empty(), "out-of-scope socket got {leaked:?}");
    }
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_needs_a_session_an_allowed_role_and_the_servers_own_or_a_configured_origin()
{
    let (db, _dir, server, mut admin) = setup_with(|c| {
        c.ws.allowed_origins = vec!["https://wall.example.cn".into()];
    })
    .await;
    let addr = server.addr;
    let operator = user(&server, &mut admin, "ws-op", "operator", None, None).await;
    let auditor = user(&server, &mut admin, "ws-au", "auditor", None, None).await;
    let cookie = operator.cookie.as_deref();

    let status_and_code = |e: tungstenite::Error| match e {
        tungstenite::Error::Http(response) => {
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            (response.status().as_u16(), body["error"]["code"].clone())
        }
        other => panic!("not an HTTP refusal: {other}"),
    };
    for origin in [None, Some("http://evil.example"), Some("null")] {
        let refused = open(addr, cookie, origin).await.unwrap_err();
        assert_eq!(
            status_and_code(refused),
            (403, json!("bad_origin")),
            "{origin:?}"
        );
    }
    let refused = open(addr, None, Some(&own_origin(addr))).await.unwrap_err();
    assert_eq!(status_and_code(refused), (401, json!("unauthenticated")));
    let refused = open(addr, auditor.cookie.as_deref(), Some(&own_origin(addr)))
        .await
        .unwrap_err();
    assert_eq!(status_and_code(refused), (403, json!("role_forbidden")));

    for origin in [own_origin(addr), "https://wall.example.cn".to_owned()] {
        let mut ws = open(addr, cookie, Some(&origin)).await.unwrap();
        assert_eq!(next(&mut ws).await["type"], "hello");
    }
    // a plain GET is not a handshake
    let mut plain = server.client();
    plain.cookie = operator.cookie.clone();
    let (status, body) = plain.send(Method::GET, "/api/ws", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "not_websocket");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_closes_the_socket_at_once_and_a_disabled_user_at_the_next_session_check() {
    let (db, _dir, server, mut admin) = setup_with(|c| c.ws.session_check_secs = 1).await;
    let addr = server.addr;
    let mut operator = user(&server, &mut admin, "ws-op", "operator", None, None).await;
    let officer = user(
        &server,
        &mut admin,
        "ws-zt",
        "townOfficer",
        Some(&["zhaitang"]),
        None,
    )
    .await;
    let mut op_ws = subscribed(addr, &operator, &["incidents"]).await;
    let mut zt_ws = subscribed(addr, &officer, &["incidents"]).await;

    let (status, _) = operator.send(Method::DELETE, "/api/session", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(closed_with(&mut op_ws).await, 4001);

    let pool = db.pool().await;
    sqlx::query("UPDATE users SET disabled = true WHERE username = 'ws-zt'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(closed_with(&mut zt_ws).await, 4001);
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_through_one_server_reaches_a_socket_on_another_server_of_the_same_database()
{
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let c = config(&db, &dir);
    let a = Server::start(c.clone()).await;
    let b = Server::start(c).await;
    let mut admin = a.client();
    assert_eq!(admin.login("admin", ADMIN_PASSWORD).await.0, StatusCode::OK);
    let mut on_a = user(&a, &mut admin, "ws-op", "operator", None, None).await;
    let mut on_b = b.client();
    assert_eq!(on_b.login("ws-op", USER_PASSWORD).await.0, StatusCode::OK);
    let mut ws = subscribed(b.addr, &on_b, &["incidents"]).await;

    let (_, premises) = create_premises(&mut on_a, "qingshui", "清水镇敬老院食堂").await;
    let id = hotline_report(&mut on_a, premises["id"].as_str().unwrap()).await;
    let m = until(&mut ws, |m| m["type"] == "incident" && m["id"] == id).await;
    assert_eq!(m["townId"], "qingshui");
    // and the session check of server B sees a logout made through server A
    let (status, _) = on_b.send(Method::DELETE, "/api/session", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(closed_with(&mut ws).await, 4001);
    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_feed_loses_its_database_connection_sockets_are_told_to_resync_and_changes_flow_again()
 {
    let (db, _dir, server, mut admin) = setup().await;
    let addr = server.addr;
    let mut operator = user(&server, &mut admin, "ws-op", "operator", None, None).await;
    let mut ws = subscribed(addr, &operator, &["incidents"]).await;

    let pool = db.pool().await;
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query = 'LISTEN \"bl_changes\"'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(ended, vec![true], "one listening connection per server");
    until(&mut ws, |m| m["type"] == "resync").await;

    let (_, premises) = create_premises(&mut operator, "zhaitang", "斋堂镇饭店").await;
    let id = hotline_report(&mut operator, premises["id"].as_str().unwrap()).await;
    until(&mut ws, |m| m["type"] == "incident" && m["id"] == id).await;
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_state_published_over_mqtt_shows_as_an_edge_message_in_its_town_only() {
    let stack = Stack::from_env();
    let run = random_token();
    let (db, _dir, server, mut admin) =
        setup_with(|c| c.mqtt = Some(common::edge::mqtt_config(&stack, &run))).await;
    let addr = server.addr;
    let pool = db.pool().await;
    let edge = format!("ws-{}", &run[..8]);
    let camera = format!("{edge}-cam1");
    common::edge::register_edge(
        &pool,
        &edge,
        &camera,
        "schoolCanteen",
        "斋堂镇中学食堂",
        None,
    )
    .await;
    let officer = user(
        &server,
        &mut admin,
        "ws-zt",
        "townOfficer",
        Some(&["zhaitang"]),
        None,
    )
    .await;
    let other = user(
        &server,
        &mut admin,
        "ws-qs",
        "townOfficer",
        Some(&["qingshui"]),
        None,
    )
    .await;
    let mut zt_ws = subscribed(addr, &officer, &["edges"]).await;
    let mut qs_ws = subscribed(addr, &other, &["edges"]).await;

    let client = common::edge::connect(&stack, &pool, &edge).await;
    let online = until(&mut zt_ws, |m| m["type"] == "edge" && m["edgeId"] == edge).await;
    assert_eq!(online["online"], true);
    assert_eq!(online["townId"], "zhaitang");

    // the camera stops delivering frames: the change of its flag is announced
    let state = format!(
        r#"{{"type":"edgeState","v":1,"edgeId":"{edge}","online":true,"agentVersion":"0.1.0","at":"2026-11-23T22:16:00.000Z","cameras":[{{"cameraId":"{camera}","online":false,"fps":0.0,"bitrateKbps":0,"lastFrameAt":null,"problem":"offline"}}],"disk":{{"totalBytes":1000,"freeBytes":500}},"outboxDepth":0,"configRevision":null}}"#
    );
    client
        .publish(
            format!("bl/v1/edge/{edge}/state"),
            rumqttc::QoS::AtLeastOnce,
            false,
            state.into_bytes(),
        )
        .await
        .unwrap();
    let camera_down = until(&mut zt_ws, |m| {
        m["type"] == "edge" && m["edgeId"] == edge && m["cameras"] != json!([])
    })
    .await;
    assert_eq!(
        camera_down["cameras"],
        json!([{"cameraId": camera, "online": false}])
    );
    let leaked: Vec<Value> = drain(&mut qs_ws, Duration::from_millis(700))
        .await
        .into_iter()
        .filter(|m| m["edgeId"] == edge)
        .collect();
    assert!(leaked.is_empty(), "another town's officer got {leaked:?}");
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_bigger_than_the_buffer_makes_sockets_resync_and_they_stay_open() {
    let (db, _dir, server, mut admin) = setup_with(|c| {
        c.ws.buffer = 16;
    })
    .await;
    let addr = server.addr;
    let operator = user(&server, &mut admin, "ws-op", "operator", None, None).await;
    let mut socket = subscribed(addr, &operator, &["timeline", "incidents"]).await;

    // one transaction of 3000 timeline entries: a burst far beyond the 16 changes held per socket
    let pool = db.pool().await;
    let incident = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO incidents (id, address, town_id, kind, tier, state, source, opened_at, last_report_at) \
         VALUES ($1, '北京市门头沟区斋堂镇1号', 'zhaitang', 'complaint', 'routine', 'new', 'manual', now(), now())",
    )
    .bind(incident)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO incident_timeline (incident_id, at, actor, action, note) \
         SELECT $1, now(), 'system', 'note', repeat('x', 200) FROM generate_series(1, 3000)",
    )
    .bind(incident)
    .execute(&pool)
    .await
    .unwrap();

    // the server holds 16 changes, not 3000: the socket learns it missed some and must reload
    let resync = until(&mut socket, |m| m["type"] == "resync").await;
    assert!(
        resync["reason"].as_str().unwrap().contains("missed"),
        "{resync}"
    );

    // and it is still connected: the next change arrives on it
    sqlx::query("UPDATE incidents SET state = 'triaged' WHERE id = $1")
        .bind(incident)
        .execute(&pool)
        .await
        .unwrap();
    let m = until(&mut socket, |m| {
        m["type"] == "incident" && m["id"] == incident.to_string() && m["state"] == "triaged"
    })
    .await;
    assert_eq!(m["state"], "triaged");
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_changes_reach_its_coordinator_and_participants_and_nobody_else() {
    let (db, _dir, server, mut admin) = setup().await;
    let addr = server.addr;
    team(&db, "zhaitang", "斋堂镇全天组", true).await;
    let mut school = premises_body("zhaitang", "斋堂镇中心小学食堂");
    school["kind"] = json!("schoolCanteen");
    let (status, body) = admin.post("/api/premises", school).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let zt = Some(&["zhaitang"][..]);
    let qs = Some(&["qingshui"][..]);
    let mut coordinator = user(
        &server,
        &mut admin,
        "ws-drill",
        "drillCoordinator",
        zt,
        None,
    )
    .await;
    let other_coordinator = user(
        &server,
        &mut admin,
        "ws-drill-qs",
        "drillCoordinator",
        qs,
        None,
    )
    .await;
    // the school scenario's roles are field, townOfficer and operator: not supervisor
    let officer = user(&server, &mut admin, "ws-zt", "townOfficer", zt, None).await;
    let other_officer = user(&server, &mut admin, "ws-qs", "townOfficer", qs, None).await;
    let observer = user(&server, &mut admin, "ws-sup", "supervisor", None, None).await;
    let field = user(&server, &mut admin, "ws-field", "field", zt, None).await;

    let mut ws_coordinator = subscribed(addr, &coordinator, &["drills"]).await;
    let mut ws_officer = subscribed(addr, &officer, &["drills"]).await;
    let mut ws_observer = subscribed(addr, &observer, &["drills"]).await;
    let mut ws_other_coordinator = subscribed(addr, &other_coordinator, &["drills"]).await;
    let mut ws_other_officer = subscribed(addr, &other_officer, &["drills"]).await;
    // field users have no drill console: the topic is not theirs
    let mut ws_field = open(addr, field.cookie.as_deref(), Some(&own_origin(addr)))
        .await
        .unwrap();
    let hello = next(&mut ws_field).await;
    assert!(
        !hello["topics"]
            .as_array()
            .unwrap()
            .contains(&json!("drills")),
        "{hello}"
    );
    send(
        &mut ws_field,
        json!({"type": "subscribe", "topics": ["drills"]}),
    )
    .await;
    assert_eq!(next(&mut ws_field).await["code"], "topic_forbidden");

    let (status, run) = coordinator
        .post(
            "/api/drills/scenarios/zhaitang-school-poisoning/runs",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    for ws in [&mut ws_coordinator, &mut ws_officer, &mut ws_observer] {
        let m = until(ws, |m| m["type"] == "drill" && m["what"] == "inject").await;
        assert_eq!(m["runId"], id.as_str(), "{m}");
        assert_eq!(m["towns"], json!(["zhaitang"]));
        assert_eq!(m["v"], 1);
    }
    let (status, _) = coordinator
        .post(
            &format!("/api/drills/runs/{id}/control"),
            json!({"action": "pause"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let m = until(&mut ws_coordinator, |m| {
        m["type"] == "drill" && m["what"] == "run"
    })
    .await;
    assert_eq!(m["state"], "paused", "{m}");
    for ws in [&mut ws_other_coordinator, &mut ws_other_officer] {
        let seen = drain(ws, Duration::from_millis(500)).await;
        assert!(seen.iter().all(|m| m["type"] != "drill"), "{seen:?}");
    }
    server.stop().await;
    db.drop_now().await;
}
