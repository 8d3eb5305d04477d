//! Incident clocks against the real PostgreSQL, in simulated time: real servers whose handlers and
//! timer workers read one `SimulatedClock`, so a moment fires at its simulated instant. An
//! immediate incident's ack clock goes at risk, then overdue, once each even with two servers;
//! acknowledging stops it; the health report meets a poisoning's 2-hour clock; a 12315 complaint
//! opened before the 2026 Spring Festival is due on the right working day.

mod common;

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use common::*;
use dispatch::clocks::Calendar;
use dispatch::escalation::SimulatedClock;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).unwrap()
}

/// A team on duty around the clock in 斋堂镇, a town officer and an operator there; returns the
/// operator, logged in.
async fn staff(db: &TestDb, server: &Server) -> Client {
    let pool = db.pool().await;
    let team = Uuid::now_v7();
    sqlx::query("INSERT INTO teams (id, town_id, name) VALUES ($1, 'zhaitang', '斋堂镇全天组')")
        .bind(team)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO roster_shifts (id, team_id, weekdays, starts, ends) VALUES ($1, $2, 127, '00:00', '00:00')",
    )
    .bind(Uuid::now_v7())
    .bind(team)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let mut admin = server.client();
    assert_eq!(admin.login("admin", ADMIN_PASSWORD).await.0, StatusCode::OK);
    create_user(&mut admin, "zt-officer", "townOfficer", Some(&["zhaitang"])).await;
    create_user(&mut admin, "zt-operator", "operator", Some(&["zhaitang"])).await;
    let mut op = server.client();
    assert_eq!(
        op.login("zt-operator", USER_PASSWORD).await.0,
        StatusCode::OK
    );
    op
}

/// Reports `kind` at a free address in 斋堂镇 through the API; the new incident.
async fn report(op: &mut Client, body: Value) -> Value {
    let mut body = body;
    body["townId"] = json!("zhaitang");
    body["address"] = json!(format!("斋堂镇西街{}号", &Uuid::now_v7().to_string()[..6]));
    let (status, d) = op.post("/api/incidents", body).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    d
}

fn clock<'a>(d: &'a Value, kind: &str) -> &'a Value {
    d["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} clock in {}", d["clocks"]))
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn count(pool: &PgPool, sql: &str, incident: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(Uuid::parse_str(incident).unwrap())
        .fetch_one(pool)
        .await
        .unwrap()
}

const AT_RISK: &str =
    "SELECT count(*) FROM incident_timeline WHERE incident_id = $1 AND action = 'clockAtRisk'";
const OVERDUE: &str =
    "SELECT count(*) FROM incident_timeline WHERE incident_id = $1 AND action = 'clockOverdue'";

/// Waits until `sql` counts `n` for `incident`, then lets the workers poll a few more times and
/// checks it is still `n` (nothing fired twice).
async fn settles_at(pool: &PgPool, sql: &str, incident: &str, n: i64) {
    let start = Instant::now();
    while count(pool, sql, incident).await < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not {n} within 10 s: {sql}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(pool, sql, incident).await, n, "{sql}");
}

async fn move_to(op: &mut Client, id: &str, states: &[&str]) -> Value {
    let mut last = Value::Null;
    for to in states {
        let (status, d) = op
            .post(
                &format!("/api/incidents/{id}/transition"),
                json!({ "to": to }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{to}: {d}");
        last = d;
    }
    last
}

#[tokio::test]
async fn an_immediate_incidents_ack_clock_goes_at_risk_then_overdue_at_its_instants_once_with_two_servers()
 {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedClock::new(t0()));
    let one = Server::simulated(&db, &dir, &sim).await;
    let two = Server::simulated(&db, &dir, &sim).await;
    let pool = db.pool().await;
    let mut op = staff(&db, &one).await;
    let d = report(&mut op, json!({"source": "manual", "kind": "rodent"})).await;
    let id = d["id"].as_str().unwrap().to_owned();
    let ack = clock(&d, "ack");
    assert_eq!(time(&ack["startedAt"]), t0());
    assert_eq!(time(&ack["atRiskAt"]), t0() + Span::seconds(240));
    assert_eq!(time(&ack["dueAt"]), t0() + Span::seconds(300));
    assert_eq!(ack["state"], "running");
    assert_eq!(ack["stoppedAt"], Value::Null);

    sim.advance(Span::milliseconds(239_999));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(&pool, AT_RISK, &id).await,
        0,
        "not a millisecond early"
    );
    sim.advance(Span::milliseconds(1));
    settles_at(&pool, AT_RISK, &id, 1).await;
    let told: Vec<(String, String)> = sqlx::query_as(
        "SELECT target_kind, target_name FROM notifications WHERE incident_id = $1 \
         AND clock_moment = 'atRisk'",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(told, [("team".to_owned(), "斋堂镇全天组".to_owned())]);
    let (_, d) = op.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(clock(&d, "ack")["state"], "atRisk");
    let entry = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] == "clockAtRisk")
        .unwrap();
    assert_eq!(entry["actor"], "system");
    assert_eq!(
        entry["note"],
        "ack clock at risk: 1 min left, due 2026-11-23 22:05 (Beijing); notified team 斋堂镇全天组"
    );
    assert_eq!(entry["refs"]["secsToDue"], 60);

    sim.advance(Span::seconds(60));
    settles_at(&pool, OVERDUE, &id, 1).await;
    assert_eq!(count(&pool, AT_RISK, &id).await, 1);
    let told: Vec<(String, String)> = sqlx::query_as(
        "SELECT target_kind, target_name FROM notifications WHERE incident_id = $1 \
         AND clock_moment = 'overdue'",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(told, [("user".to_owned(), "zt-officer".to_owned())]);
    let (_, d) = op.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(clock(&d, "ack")["state"], "overdue");
    let n = d["notifications"].as_array().unwrap();
    assert!(
        n.iter()
            .any(|n| n["clockMoment"] == "overdue" && n["step"].is_null()),
        "{n:?}"
    );
    let (_, list) = op.get("/api/incidents").await;
    assert_eq!(list["items"][0]["clock"]["kind"], "ack");
    assert_eq!(list["items"][0]["clock"]["state"], "overdue");

    // a late acknowledgement stops it as met late and starts the arrival clock
    sim.advance(Span::seconds(10));
    let d = move_to(&mut op, &id, &["triaged", "dispatched", "acknowledged"]).await;
    assert_eq!(clock(&d, "ack")["state"], "metLate");
    assert_eq!(
        time(&clock(&d, "ack")["stoppedAt"]),
        t0() + Span::seconds(310)
    );
    let arrival = clock(&d, "arrival");
    assert_eq!(arrival["state"], "running");
    assert_eq!(time(&arrival["dueAt"]), t0() + Span::seconds(310 + 1800));
    let (_, list) = op.get("/api/incidents").await;
    assert_eq!(list["items"][0]["clock"]["kind"], "arrival");
    one.stop().await;
    two.stop().await;
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn acknowledging_before_the_at_risk_point_stops_the_ack_clock_as_met_and_it_never_fires() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedClock::new(t0()));
    let server = Server::simulated(&db, &dir, &sim).await;
    let pool = db.pool().await;
    let mut op = staff(&db, &server).await;
    let d = report(&mut op, json!({"source": "manual", "kind": "rodent"})).await;
    let id = d["id"].as_str().unwrap().to_owned();
    sim.advance(Span::seconds(60));
    let d = move_to(&mut op, &id, &["triaged", "dispatched", "acknowledged"]).await;
    let ack = clock(&d, "ack");
    assert_eq!(ack["state"], "met");
    assert_eq!(time(&ack["stoppedAt"]), t0() + Span::seconds(60));
    let entry = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] == "acknowledge")
        .unwrap();
    assert_eq!(
        entry["refs"]["clocks"],
        json!([{"clock": "ack", "state": "met"}, {"clock": "arrival", "state": "started"}])
    );
    sim.advance(Span::seconds(600));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&pool, AT_RISK, &id).await, 0);
    assert_eq!(count(&pool, OVERDUE, &id).await, 0);
    let (_, d) = op.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(clock(&d, "ack")["state"], "met", "it stays met");
    server.stop().await;
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_suspected_poisonings_two_hour_clock_is_met_by_the_health_report_and_a_retry_records_nothing()
 {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedClock::new(t0()));
    let server = Server::simulated(&db, &dir, &sim).await;
    let pool = db.pool().await;
    let mut op = staff(&db, &server).await;
    let d = report(
        &mut op,
        json!({"source": "manual", "kind": "suspectedPoisoning", "caseCount": 6,
               "description": "午餐后多名学生腹痛呕吐"}),
    )
    .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let health = clock(&d, "healthReport");
    assert_eq!(time(&health["dueAt"]), t0() + Span::hours(2));
    assert_eq!(time(&health["atRiskAt"]), t0() + Span::minutes(96));

    sim.advance(Span::minutes(90));
    let path = format!("/api/incidents/{id}/health-report");
    let (status, e) = op.post(&path, json!({"note": "  "})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "invalid_field");
    let body = json!({"note": "电话报告区卫健委值班室", "clientId": "hr-1"});
    let (status, d) = op.post(&path, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let health = clock(&d, "healthReport");
    assert_eq!(health["state"], "met");
    assert_eq!(time(&health["stoppedAt"]), t0() + Span::minutes(90));
    let entry = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] == "healthReported")
        .unwrap();
    assert_eq!(entry["actor"], "zt-operator");
    assert_eq!(entry["note"], "电话报告区卫健委值班室");
    assert_eq!(entry["refs"]["clock"], "met");
    let (status, _) = op.post(&path, body).await;
    assert_eq!(status, StatusCode::OK, "the same clientId again");
    let reported = count(
        &pool,
        "SELECT count(*) FROM incident_timeline WHERE incident_id = $1 AND action = 'healthReported'",
        &id,
    )
    .await;
    assert_eq!(reported, 1);

    // two hours pass: the ack clock (never acknowledged) fires, the met health report does not
    sim.advance(Span::hours(2));
    settles_at(&pool, OVERDUE, &id, 1).await;
    let fired: Vec<String> = sqlx::query_scalar(
        "SELECT refs ->> 'clock' FROM incident_timeline WHERE incident_id = $1 \
         AND action IN ('clockAtRisk', 'clockOverdue')",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        fired,
        ["ack"],
        "the at-risk moment was missed and gave way to overdue"
    );
    server.stop().await;
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_12315_complaint_opened_the_friday_before_the_2026_spring_festival_is_due_at_the_end_of_2_march()
 {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    // Friday 13 February 2026, 10:00 Beijing time
    let opened = Utc.with_ymd_and_hms(2026, 2, 13, 2, 0, 0).unwrap();
    let sim = Arc::new(SimulatedClock::new(opened));
    let server = Server::simulated(&db, &dir, &sim).await;
    let pool = db.pool().await;
    let mut op = staff(&db, &server).await;
    let d = report(
        &mut op,
        json!({"source": "hotline", "hotline": "12315", "kind": "complaint",
               "description": "外卖餐品有异物"}),
    )
    .await;
    let id = d["id"].as_str().unwrap().to_owned();
    assert_eq!(d["clocks"].as_array().unwrap().len(), 1, "{}", d["clocks"]);
    let acceptance = clock(&d, "complaintAcceptance");
    assert_eq!(acceptance["workingDays"], 7);
    // working days: Feb 14 (a make-up Saturday), 24, 25, 26, 27, 28 (a make-up Saturday), Mar 2
    assert_eq!(
        time(&acceptance["dueAt"]),
        Utc.with_ymd_and_hms(2026, 3, 2, 16, 0, 0).unwrap(),
        "24:00 on Monday 2 March, Beijing time"
    );
    let at_risk = Utc.with_ymd_and_hms(2026, 2, 28, 6, 24, 0).unwrap();
    assert_eq!(
        time(&acceptance["atRiskAt"]),
        at_risk,
        "80 % of the working time"
    );

    sim.advance(at_risk - opened);
    settles_at(&pool, AT_RISK, &id, 1).await;
    let note: String = sqlx::query_scalar(
        "SELECT note FROM incident_timeline WHERE incident_id = $1 AND action = 'clockAtRisk'",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        note.starts_with("complaintAcceptance clock at risk: 2 d 9 h left, due 2026-03-03 00:00"),
        "{note}"
    );

    // accepting it meets the acceptance clock and starts 45 working days of handling
    let d = move_to(&mut op, &id, &["triaged"]).await;
    assert_eq!(clock(&d, "complaintAcceptance")["state"], "met");
    let handling = clock(&d, "complaintHandling");
    assert_eq!(handling["workingDays"], 45);
    let (_, due) = Calendar::builtin().working_deadline(at_risk, 45);
    assert_eq!(time(&handling["dueAt"]), due);
    assert_eq!(due, Utc.with_ymd_and_hms(2026, 5, 7, 16, 0, 0).unwrap());
    server.stop().await;
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_moment_that_came_due_while_dispatch_was_down_fires_once_after_the_restart() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedClock::new(t0()));
    let first = Server::simulated(&db, &dir, &sim).await;
    let pool = db.pool().await;
    let mut op = staff(&db, &first).await;
    let d = report(&mut op, json!({"source": "manual", "kind": "rodent"})).await;
    let id = d["id"].as_str().unwrap().to_owned();
    first.stop().await;

    sim.advance(Span::seconds(250)); // past the at-risk point, while nobody runs
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        count(&pool, AT_RISK, &id).await,
        0,
        "nobody fired it while down"
    );
    let second = Server::simulated(&db, &dir, &sim).await;
    settles_at(&pool, AT_RISK, &id, 1).await;
    assert_eq!(count(&pool, OVERDUE, &id).await, 0);
    second.stop().await;
    pool.close().await;
    db.drop_now().await;
}
