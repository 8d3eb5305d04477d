//! Incident statistics against the real PostgreSQL, in simulated time: incidents reported and
//! moved through the real API at known simulated instants, so every median and p90 is known
//! exactly. Scope, the exercise separation, filters, bad input and the CSV (BOM, header language)
//! are checked on the same data.

mod common;

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use common::*;
use dispatch::escalation::{Clock, SimulatedClock};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap()
}

/// Moves the simulated clock to `secs` after t0.
fn at(sim: &SimulatedClock, secs: i64) {
    sim.advance(t0() + Span::seconds(secs) - sim.now());
}

async fn logged_in(server: &Server, name: &str) -> Client {
    let mut c = server.client();
    assert_eq!(c.login(name, USER_PASSWORD).await.0, StatusCode::OK);
    c
}

/// A rodent reported by hand at a free address of `town`; the new incident's id.
async fn report(c: &mut Client, town: &str, exercise: Option<&str>) -> String {
    let address = format!("西街{}号", &Uuid::now_v7().simple().to_string()[20..]);
    let (status, d) = c
        .post(
            "/api/incidents",
            json!({"source": "manual", "kind": "rodent", "townId": town, "address": address,
                   "exercise": exercise}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    d["id"].as_str().unwrap().to_owned()
}

async fn step(c: &mut Client, id: &str, body: Value) -> Value {
    let (status, d) = c
        .post(&format!("/api/incidents/{id}/transition"), body.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}: {d}");
    d
}

async fn to(c: &mut Client, id: &str, states: &[&str]) {
    for s in states {
        step(c, id, json!({ "to": s })).await;
    }
}

/// GET with the client's session and extra headers; status, headers and raw body.
async fn raw(
    addr: SocketAddr,
    c: &Client,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .header(
            "cookie",
            format!("__Host-bl_session={}", c.cookie.as_ref().unwrap()),
        );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let (status, h) = (resp.status(), resp.headers().clone());
    (status, h, resp.bytes().await.unwrap().to_vec())
}

fn timing(f: &Value, step: &str) -> (i64, Option<f64>, Option<f64>) {
    (
        f[step]["count"].as_i64().unwrap(),
        f[step]["medianSecs"].as_f64(),
        f[step]["p90Secs"].as_f64(),
    )
}

const PERIOD: &str = "from=2026-11-23&to=2026-11-23";

#[tokio::test]
async fn medians_p90s_and_rates_come_from_the_timelines_within_the_callers_towns_and_never_mix_drills()
 {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedClock::new(t0()));
    let server = Server::simulated(&db, &dir, &sim).await;
    let pool = db.pool().await;
    team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    team_on_duty(&pool, "qingshui", "清水镇全天组").await;
    let mut admin = server.client();
    assert_eq!(admin.login("admin", ADMIN_PASSWORD).await.0, StatusCode::OK);
    create_user(&mut admin, "zt-operator", "operator", Some(&["zhaitang"])).await;
    create_user(&mut admin, "district-sup", "supervisor", None).await;
    create_user(&mut admin, "zt-field", "field", Some(&["zhaitang"])).await;
    let mut op = logged_in(&server, "zt-operator").await;
    let mut sup = logged_in(&server, "district-sup").await;

    // Four real incidents in 斋堂镇 and a drill one, all opened at t0; one real one in 清水镇.
    let a = report(&mut op, "zhaitang", None).await;
    let b = report(&mut op, "zhaitang", None).await;
    let c = report(&mut op, "zhaitang", None).await;
    let d = report(&mut op, "zhaitang", None).await;
    let x = report(&mut op, "zhaitang", Some("drill-1")).await;
    report(&mut sup, "qingshui", None).await;
    for id in [&a, &b, &c, &x] {
        to(&mut op, id, &["triaged", "dispatched"]).await;
    }
    step(
        &mut op,
        &d,
        json!({"to": "rejected", "reason": "a cat, not a rat"}),
    )
    .await;
    // acknowledged after 60, 120 and 180 s; the drill one after 30 s
    sim.advance(Span::seconds(30));
    to(&mut op, &x, &["acknowledged"]).await;
    for id in [&a, &b, &c] {
        sim.advance(Span::seconds(if id == &a { 30 } else { 60 }));
        to(&mut op, id, &["acknowledged", "enRoute"]).await;
    }
    // on scene after 300 and 500 s; C never arrives
    at(&sim, 300);
    to(&mut op, &a, &["onScene"]).await;
    at(&sim, 500);
    to(&mut op, &b, &["onScene"]).await;
    // resolved after 600 s with a photo, and after 1000 s without one
    at(&sim, 600);
    let shot = [&[0xFF, 0xD8, 0xFF, 0xE0][..], b"rat hole sealed"].concat();
    let photo = reqwest::Client::new()
        .post(format!("http://{}/api/incidents/{a}/photos", server.addr))
        .header(
            "cookie",
            format!("__Host-bl_session={}", op.cookie.as_ref().unwrap()),
        )
        .header("x-csrf-token", op.csrf.as_ref().unwrap())
        .header("content-type", "image/jpeg")
        .body(shot.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(photo.status(), StatusCode::CREATED);
    let sha = dispatch::field::photos::sha256_hex(&shot);
    step(&mut op, &a, json!({"to": "resolved", "evidence": [sha]})).await;
    at(&sim, 1000);
    to(&mut op, &b, &["resolved"]).await;
    // C's arrival clock (1800 s from its acknowledgement at 180 s) is overdue by now, and so is
    // 清水镇's unacknowledged ack clock (300 s).
    at(&sim, 2400);

    let (status, s) = op.get(&format!("/api/stats/incidents?{PERIOD}")).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    let total = &s["total"];
    assert_eq!(total["incidents"], 4, "{s}");
    assert_eq!(timing(total, "ack"), (3, Some(120.0), Some(168.0)));
    assert_eq!(timing(total, "arrive"), (2, Some(400.0), Some(480.0)));
    assert_eq!(timing(total, "resolve"), (2, Some(800.0), Some(960.0)));
    assert_eq!(
        (&total["triaged"], &total["rejected"]),
        (&json!(3), &json!(1))
    );
    assert_eq!(total["falseAlarmRate"], 0.25);
    assert_eq!(
        (&total["resolved"], &total["rectified"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(total["rectificationRate"], 0.5);
    assert_eq!(total["overdueClocks"], 1, "{s}");
    assert_eq!(s["exercise"], false);
    assert_eq!(s["from"], "2026-11-22T16:00:00Z");
    assert_eq!(s["to"], "2026-11-23T16:00:00Z");
    // a town operator sees their town only, with the same figures; the kind likewise
    let towns = s["byTown"].as_array().unwrap();
    assert_eq!(towns.len(), 1, "{s}");
    assert_eq!(towns[0]["townId"], "zhaitang");
    assert_eq!(towns[0]["nameZh"], "斋堂镇");
    assert_eq!(timing(&towns[0], "ack"), timing(total, "ack"));
    let kinds = s["byKind"].as_array().unwrap();
    assert_eq!((kinds.len(), &kinds[0]["kind"]), (1, &json!("rodent")));
    assert_eq!(kinds[0]["incidents"], 4);

    // the district sees every town, zeros included; 清水镇's incident and its overdue clock count
    let (_, s) = sup.get(&format!("/api/stats/incidents?{PERIOD}")).await;
    assert_eq!(s["total"]["incidents"], 5, "{s}");
    assert_eq!(s["total"]["overdueClocks"], 2, "{s}");
    let towns = s["byTown"].as_array().unwrap();
    assert_eq!(towns.len(), 13);
    let of = |id: &str| towns.iter().find(|t| t["townId"] == id).unwrap().clone();
    assert_eq!(of("qingshui")["incidents"], 1);
    assert_eq!(of("qingshui")["ack"]["medianSecs"], Value::Null);
    assert_eq!(
        of("qingshui")["falseAlarmRate"],
        Value::Null,
        "nothing triaged"
    );
    assert_eq!(of("zhaitang")["incidents"], 4);
    assert_eq!(of("yongding")["incidents"], 0);
    let (_, one) = sup
        .get(&format!("/api/stats/incidents?{PERIOD}&town=qingshui"))
        .await;
    assert_eq!(one["total"]["incidents"], 1);
    assert_eq!(one["byTown"].as_array().unwrap().len(), 1);

    // drills only when asked, and then only drills
    let (_, drill) = op
        .get(&format!("/api/stats/incidents?{PERIOD}&exercise=true"))
        .await;
    assert_eq!(drill["total"]["incidents"], 1, "{drill}");
    assert_eq!(timing(&drill["total"], "ack"), (1, Some(30.0), Some(30.0)));
    // filters: another kind, another period
    let (_, none) = op
        .get(&format!("/api/stats/incidents?{PERIOD}&kind=smoking"))
        .await;
    assert_eq!(none["total"]["incidents"], 0);
    assert_eq!(none["total"]["rectificationRate"], Value::Null);
    assert_eq!(none["byKind"], json!([]));
    let (_, later) = op
        .get("/api/stats/incidents?from=2026-11-24T00:00:00Z&to=2026-11-25T00:00:00Z")
        .await;
    assert_eq!(later["total"]["incidents"], 0);
    // the default period is the last 30 days up to now
    let (_, default) = op.get("/api/stats/incidents").await;
    assert_eq!(default["total"]["incidents"], 4);

    // bad input names the parameter
    for (query, field) in [
        ("kind=mouse", "kind"),
        ("from=yesterday", "from"),
        ("from=2026-11-24&to=2026-11-23", "from"),
        ("town=atlantis", "town"),
        ("exercise=maybe", "exercise"),
        ("lang=en-US", "lang"),
    ] {
        let (status, e) = op.get(&format!("/api/stats/incidents?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{query}: {message}");
    }
    // field staff work their own cases; statistics are not theirs
    let mut field = logged_in(&server, "zt-field").await;
    assert_eq!(
        field.get("/api/stats/incidents").await.0,
        StatusCode::FORBIDDEN
    );

    // CSV: BOM, header in the browser's language or the one asked for, the same figures
    let path = format!("/api/stats/incidents.csv?{PERIOD}");
    let (status, h, body) = raw(
        server.addr,
        &op,
        &path,
        &[("accept-language", "en-US,en;q=0.9")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"incident-stats-20261123-20261123.csv\""
    );
    assert_eq!(&body[..3], b"\xEF\xBB\xBF", "UTF-8 byte-order mark");
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(
        lines[0].starts_with("Group,Name,Incidents,Ack median (s),Ack p90 (s),"),
        "{text}"
    );
    assert_eq!(
        lines[1],
        "Total,,4,120.0,168.0,400.0,480.0,800.0,960.0,3,1,0.2500,2,1,0.5000,1"
    );
    assert!(lines[2].starts_with("Town,Zhaitang Town,4,"), "{text}");
    assert!(lines[3].starts_with("Kind,Rodent,4,"), "{text}");
    let (_, _, body) = raw(
        server.addr,
        &op,
        &format!("{path}&lang=zh-CN"),
        &[("accept-language", "en-US")],
    )
    .await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.starts_with("\u{feff}分组,名称,事件数,确认用时中位数(秒)"),
        "{text}"
    );
    assert!(text.contains("\r\n镇街,斋堂镇,4,"), "{text}");
    let (status, _, body) = raw(server.addr, &op, &format!("{path}&lang=fr"), &[]).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    // every export is audited with its filters
    let exports: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'stats.export' AND actor_name = 'zt-operator'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(exports, 2);
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
