//! Video walls against the real server and PostgreSQL: a layout set at the desk reaches every
//! socket following walls and reads back with a new revision; bad layouts are refused naming the
//! field; scope decides which cameras one may put on (or take off) a wall; the camera list carries
//! what the wall's camera tree needs (premises name, online state from the edge).

mod common;

use common::*;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn put(client: &mut Client, wall: &str, layout: Value) -> (StatusCode, Value) {
    client
        .send(
            Method::PUT,
            &format!("/api/walls/{wall}"),
            Some(("application/json", layout.to_string())),
        )
        .await
}

/// A logged-in client's socket, subscribed to `walls`.
async fn follow_walls(addr: SocketAddr, client: &Client) -> Socket {
    let mut request = format!("ws://{addr}/api/ws").into_client_request().unwrap();
    let cookie = format!("__Host-bl_session={}", client.cookie.as_deref().unwrap());
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", format!("http://{addr}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = next(&mut ws).await;
    assert!(
        hello["topics"]
            .as_array()
            .unwrap()
            .contains(&json!("walls")),
        "{hello}"
    );
    let subscribe = json!({"type": "subscribe", "topics": ["walls"]}).to_string();
    ws.send(Message::text(subscribe)).await.unwrap();
    assert_eq!(next(&mut ws).await["type"], "subscribed");
    ws
}

async fn next(ws: &mut Socket) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .expect("a valid frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Premises in 斋堂镇 and 清水镇 with two cameras each; returns the server pieces and the premises ids.
async fn world() -> (TestDb, tempfile::TempDir, Server, Client, String, String) {
    let (db, dir, server, mut admin) = setup().await;
    let (_, own) = create_premises(&mut admin, "zhaitang", "斋堂镇中心小学食堂").await;
    let (_, other) = create_premises(&mut admin, "qingshui", "清水镇中心小学食堂").await;
    let own = own["id"].as_str().unwrap().to_owned();
    let other = other["id"].as_str().unwrap().to_owned();
    for (premises, cams) in [(&own, ["zt-1", "zt-2"]), (&other, ["qs-1", "qs-2"])] {
        for c in cams {
            insert_camera(&db, premises, c, false).await;
        }
    }
    (db, dir, server, admin, own, other)
}

async fn user(
    server: &Server,
    admin: &mut Client,
    name: &str,
    role: &str,
    town: Option<&str>,
) -> Client {
    let towns = town.map(|t| vec![t]);
    create_user(admin, name, role, towns.as_deref()).await;
    let mut c = server.client();
    assert_eq!(c.login(name, USER_PASSWORD).await.0, StatusCode::OK);
    c
}

#[tokio::test]
async fn a_layout_set_at_the_desk_reaches_the_wall_window_and_reads_back_with_a_new_revision() {
    let (_db, _dir, server, mut admin, _, _) = world().await;
    let mut desk = user(&server, &mut admin, "desk", "operator", None).await;
    let window = user(&server, &mut admin, "window", "operator", None).await;
    let mut ws = follow_walls(server.addr, &window).await;

    let (status, fresh) = desk.get("/api/walls/main").await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(fresh["revision"], 0);
    assert_eq!(fresh["layout"]["tiles"], json!([null, null, null, null]));

    let layout = json!({"tiles": ["zt-1", null, "qs-1", "zt-2", null, null, null, null, "qs-2"],
                        "maximised": 2});
    let (status, stored) = put(&mut desk, "main", layout.clone()).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["revision"], 1);
    assert_eq!(stored["updatedBy"], "desk");

    let change = next(&mut ws).await;
    assert_eq!(change["type"], "wall", "{change}");
    assert_eq!(change["v"], 1);
    assert_eq!(change["id"], "main");
    assert_eq!(change["revision"], 1);
    let mut window = window;
    let (_, read) = window.get("/api/walls/main").await;
    assert_eq!(read["layout"]["tiles"], layout["tiles"]);
    assert_eq!(read["layout"]["maximised"], 2);
    assert_eq!(read["layout"]["tour"], Value::Null);

    let tour = json!({"tiles": [null, null, null, null],
                      "tour": {"cameras": ["zt-1", "zt-2", "qs-1"], "intervalSecs": 15}});
    let (status, stored) = put(&mut desk, "main", tour).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["revision"], 2);
    assert_eq!(next(&mut ws).await["revision"], 2);
    // another wall is another row
    assert_eq!(desk.get("/api/walls/annex").await.1["revision"], 0);
}

#[tokio::test]
async fn bad_layouts_are_refused_naming_the_field_and_the_wall_keeps_its_layout() {
    let (_db, _dir, server, mut admin, _, _) = world().await;
    let mut desk = user(&server, &mut admin, "desk", "operator", None).await;
    let good = json!({"tiles": ["zt-1"]});
    assert_eq!(put(&mut desk, "main", good).await.0, StatusCode::OK);
    let cases = [
        (
            json!({"tiles": ["zt-1", null]}),
            "invalid_layout",
            "field tiles",
        ),
        (
            json!({"tiles": [null, "Zt 1", null, null]}),
            "invalid_layout",
            "tiles[1]",
        ),
        (
            json!({"tiles": [null], "maximised": 1}),
            "invalid_layout",
            "maximised",
        ),
        (
            json!({"tiles": [null], "tour": {"cameras": ["zt-1"], "intervalSecs": 1}}),
            "invalid_layout",
            "tour.intervalSecs",
        ),
        (
            json!({"tiles": ["no-such-camera"]}),
            "unknown_camera",
            "no-such-camera",
        ),
        (
            json!({"tiles": [null], "colour": "red"}),
            "invalid_body",
            "colour",
        ),
    ];
    for (layout, code, names) in cases {
        let (status, body) = put(&mut desk, "main", layout.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{layout} → {body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{message}");
    }
    let (status, body) = put(&mut desk, "Main Wall", json!({"tiles": [null]})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_id"))
    );
    let (_, kept) = desk.get("/api/walls/main").await;
    assert_eq!(kept["revision"], 1);
    assert_eq!(kept["layout"]["tiles"], json!(["zt-1"]));
}

#[tokio::test]
async fn a_town_officer_may_neither_put_nor_take_off_another_towns_cameras_and_field_users_have_no_wall()
 {
    let (_db, _dir, server, mut admin, _, _) = world().await;
    let mut officer = user(
        &server,
        &mut admin,
        "zt-officer",
        "townOfficer",
        Some("zhaitang"),
    )
    .await;
    let mut desk = user(&server, &mut admin, "desk", "operator", None).await;
    let mut field = user(&server, &mut admin, "zt-field", "field", Some("zhaitang")).await;

    let (status, body) = put(
        &mut officer,
        "zhaitang",
        json!({"tiles": ["zt-1", "zt-2", null, null]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = put(
        &mut officer,
        "zhaitang",
        json!({"tiles": ["qs-1", null, null, null]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = put(
        &mut officer,
        "zhaitang",
        json!({"tiles": [null],
        "tour": {"cameras": ["zt-1", "qs-2"], "intervalSecs": 10}}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // the command center's wall shows 清水镇: the officer may read it but not clear it
    assert_eq!(
        put(&mut desk, "main", json!({"tiles": ["qs-1"]})).await.0,
        StatusCode::OK
    );
    assert_eq!(officer.get("/api/walls/main").await.0, StatusCode::OK);
    let (status, body) = put(&mut officer, "main", json!({"tiles": ["zt-1"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("outside your towns"),
        "{body}"
    );
    assert_eq!(
        desk.get("/api/walls/main").await.1["layout"]["tiles"],
        json!(["qs-1"])
    );

    assert_eq!(field.get("/api/walls/main").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        put(&mut field, "main", json!({"tiles": ["zt-1"]})).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_camera_list_names_the_premises_and_each_cameras_online_state_from_its_edge() {
    let (db, _dir, server, mut admin, own, _) = world().await;
    let pool = db.pool().await;
    sqlx::query("INSERT INTO edges (id, premises_id) VALUES ('zt-box', $1::uuid)")
        .bind(&own)
        .execute(&pool)
        .await
        .unwrap();
    for (id, edge) in [
        ("zt-box-c1", "zt-box"),
        ("zt-box-c2", "zt-box"),
        ("zt-box-c3", "zt-box"),
    ] {
        sqlx::query(
            "INSERT INTO cameras (id, premises_id, name, source, edge_id, main_stream, sub_stream) \
             VALUES ($1, $2::uuid, '后厨', 'edge', $3, 'main', 'sub')",
        )
        .bind(id)
        .bind(&own)
        .bind(edge)
        .execute(&pool)
        .await
        .unwrap();
    }
    let mut op = user(&server, &mut admin, "op", "operator", None).await;
    let online = |list: &Value, id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} listed"))["online"]
            .clone()
    };
    // before the box ever reports, nothing is known
    let (_, list) = op.get("/api/cameras?town=zhaitang").await;
    assert_eq!(online(&list, "zt-box-c1"), Value::Null);
    assert_eq!(list[0]["premisesName"], "斋堂镇中心小学食堂", "{list}");

    // the box's state as intake stores it: c1 up, c2 down, c3 not reported
    let state = json!({"cameras": [{"cameraId": "zt-box-c1", "online": true},
                                   {"cameraId": "zt-box-c2", "online": false}]});
    sqlx::query("INSERT INTO edge_status (edge_id, online, state, reported_at) VALUES ('zt-box', true, $1, now())")
        .bind(&state)
        .execute(&pool)
        .await
        .unwrap();
    let (_, list) = op.get("/api/cameras?town=zhaitang").await;
    assert_eq!(online(&list, "zt-box-c1"), json!(true));
    assert_eq!(online(&list, "zt-box-c2"), json!(false));
    assert_eq!(online(&list, "zt-box-c3"), Value::Null);
    // a pull camera: nothing reports on it
    assert_eq!(online(&list, "zt-1"), Value::Null);

    // the box goes offline (its will): every camera of it is offline
    sqlx::query("UPDATE edge_status SET online = false WHERE edge_id = 'zt-box'")
        .execute(&pool)
        .await
        .unwrap();
    let (_, list) = op.get("/api/cameras?town=zhaitang").await;
    assert_eq!(online(&list, "zt-box-c1"), json!(false));
    assert_eq!(online(&list, "zt-box-c3"), json!(false));
}
