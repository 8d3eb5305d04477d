//! Escalation against the real PostgreSQL: a rodent report notifies the routed team at once and the
//! town officers when nobody acknowledges; an acknowledgement cancels what is pending; two servers
//! on one database fire each step once; a step that came due while dispatch was down fires after
//! the restart; and, in simulated time, a step fires at its second and not before.

mod common;

use chrono::{Duration as Span, TimeZone, Utc};
use common::*;
use dispatch::config::Config;
use dispatch::escalation::{EscalationConfig, SimulatedClock, Step, Target, worker};
use dispatch::incident::Actor;
use dispatch::intake::{self, Report, Source};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Notify the team now, wait `secs`, notify the town officers; polled every 50 ms.
fn short_policy(c: &mut Config, secs: u64) {
    c.escalation.poll_interval_ms = 50;
    c.escalation.immediate = vec![
        Step::Notify {
            target: Target::Team,
        },
        Step::Wait { secs },
        Step::Notify {
            target: Target::TownOfficers,
        },
    ];
}

/// A town officer and an operator of 斋堂镇; returns the operator, logged in.
async fn staff(admin: &mut Client, server: &Server) -> Client {
    create_user(admin, "zt-officer", "townOfficer", Some(&["zhaitang"])).await;
    create_user(admin, "zt-operator", "operator", Some(&["zhaitang"])).await;
    let mut op = server.client();
    assert_eq!(
        op.login("zt-operator", USER_PASSWORD).await.0,
        StatusCode::OK
    );
    op
}

/// A rodent seen at a new restaurant in 斋堂镇, reported through the manual API; the new incident.
async fn rodent(admin: &mut Client, op: &mut Client, name: &str) -> Value {
    let (status, p) = create_premises(admin, "zhaitang", name).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let body = json!({"source": "manual", "premisesId": p["id"], "kind": "rodent",
                      "description": "夜间后厨发现老鼠"});
    let (status, d) = op.post("/api/incidents", body).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    d
}

async fn count(pool: &PgPool, sql: &str, incident: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(Uuid::parse_str(incident).unwrap())
        .fetch_one(pool)
        .await
        .unwrap()
}

const OFFICER_NOTES: &str =
    "SELECT count(*) FROM notifications WHERE incident_id = $1 AND reason LIKE 'townOfficers:%'";

/// Waits until `sql` counts at least `n` for `incident`; returns how long that took.
async fn wait_for(pool: &PgPool, sql: &str, incident: &str, n: i64, within: Duration) -> Duration {
    let start = Instant::now();
    while count(pool, sql, incident).await < n {
        assert!(start.elapsed() < within, "not {n} within {within:?}: {sql}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    start.elapsed()
}

fn targets(d: &Value) -> Vec<(String, String)> {
    d["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["targetKind"].as_str().unwrap().to_owned(),
                n["targetName"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_rodent_notifies_the_routed_team_at_once_and_the_town_officers_when_nobody_acknowledges()
{
    let (db, _dir, server, mut admin) = setup_with(|c| short_policy(c, 2)).await;
    let pool = db.pool().await;
    team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    let mut op = staff(&mut admin, &server).await;
    let opened = Instant::now();
    let d = rodent(&mut admin, &mut op, "斋堂镇老街饭馆").await;
    let id = d["id"].as_str().unwrap().to_owned();
    // At once: the team, in the same transaction that opened the incident.
    assert_eq!(
        targets(&d),
        [("team".to_owned(), "斋堂镇全天组".to_owned())]
    );
    assert_eq!(d["pendingEscalation"]["target"], "townOfficers");
    assert_eq!(d["pendingEscalation"]["step"], 1);

    wait_for(&pool, OFFICER_NOTES, &id, 1, Duration::from_secs(10)).await;
    let took = opened.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    let after: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM n.created_at - i.opened_at)::float8 FROM notifications n \
         JOIN incidents i ON i.id = n.incident_id WHERE i.id = $1 AND n.target_kind = 'user'",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        (2.0..3.0).contains(&after),
        "the town officers were told {after} s after the opening, not after the 2 s wait"
    );

    let (_, d) = op.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(
        targets(&d),
        [
            ("team".to_owned(), "斋堂镇全天组".to_owned()),
            ("user".to_owned(), "zt-officer".to_owned())
        ]
    );
    assert_eq!(d["pendingEscalation"], Value::Null, "the policy is done");
    let last = d["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "escalated");
    assert_eq!(
        last["note"],
        "escalated to the town officers of 斋堂镇 (zt-officer)"
    );
    assert_eq!(last["actor"], "system");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn an_acknowledgement_before_the_second_step_cancels_it_and_no_town_officer_is_ever_notified()
{
    let (db, _dir, server, mut admin) = setup_with(|c| short_policy(c, 2)).await;
    let pool = db.pool().await;
    team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    let mut op = staff(&mut admin, &server).await;
    let d = rodent(&mut admin, &mut op, "斋堂镇川味馆").await;
    let id = d["id"].as_str().unwrap().to_owned();
    for to in ["triaged", "dispatched", "acknowledged"] {
        let (status, d) = op
            .post(
                &format!("/api/incidents/{id}/transition"),
                json!({ "to": to }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{to}: {d}");
    }
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(count(&pool, OFFICER_NOTES, &id).await, 0);
    let states: Vec<(i32, String)> = sqlx::query_as(
        "SELECT step, state FROM escalation_timers WHERE incident_id = $1 ORDER BY step",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        states,
        [(0, "fired".to_owned()), (1, "cancelled".to_owned())]
    );
    let (_, d) = op.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(d["pendingEscalation"], Value::Null);
    assert_eq!(d["notifications"].as_array().unwrap().len(), 1);
    let ack = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] == "acknowledge")
        .expect("the acknowledgement is on the timeline");
    assert_eq!(ack["refs"]["escalationCancelled"], 1, "{ack}");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_reopened_incident_escalates_again_from_the_reopening() {
    let (db, _dir, server, mut admin) = setup_with(|c| short_policy(c, 2)).await;
    let pool = db.pool().await;
    team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    let mut op = staff(&mut admin, &server).await;
    let d = rodent(&mut admin, &mut op, "斋堂镇回头馆").await;
    let id = d["id"].as_str().unwrap().to_owned();
    let transition = |to: &'static str| json!({ "to": to });
    for to in [
        "triaged",
        "dispatched",
        "acknowledged",
        "enRoute",
        "onScene",
        "resolved",
    ] {
        let (status, d) = op
            .post(&format!("/api/incidents/{id}/transition"), transition(to))
            .await;
        assert_eq!(status, StatusCode::OK, "{to}: {d}");
    }
    const TEAM_NOTES: &str =
        "SELECT count(*) FROM notifications WHERE incident_id = $1 AND reason LIKE 'team:%'";
    assert_eq!(count(&pool, TEAM_NOTES, &id).await, 1);

    // The rectification did not hold: back to the team, which is notified again at once and, as
    // nobody acknowledges, the town officers after the policy's wait — a second round.
    let (status, d) = op
        .post(
            &format!("/api/incidents/{id}/transition"),
            json!({"to": "dispatched", "note": "复查仍有鼠迹"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let reopen = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] == "reopen")
        .expect("the reopening is on the timeline");
    assert_eq!(reopen["refs"]["escalationRestarted"], true, "{reopen}");
    assert_eq!(count(&pool, TEAM_NOTES, &id).await, 2);
    assert_eq!(count(&pool, OFFICER_NOTES, &id).await, 0);
    wait_for(&pool, OFFICER_NOTES, &id, 1, Duration::from_secs(10)).await;
    let rounds: Vec<(i32, i32, String)> = sqlx::query_as(
        "SELECT round, step, state FROM escalation_timers WHERE incident_id = $1 ORDER BY round, step",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rounds,
        [
            (0, 0, "fired".to_owned()),
            (0, 1, "cancelled".to_owned()),
            (1, 0, "fired".to_owned()),
            (1, 1, "fired".to_owned()),
        ]
    );
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn two_dispatch_servers_on_one_database_fire_each_escalation_step_exactly_once() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&db, &dir);
    c.escalation.poll_interval_ms = 20;
    c.escalation.immediate = vec![
        Step::Notify {
            target: Target::Team,
        },
        Step::Wait { secs: 1 },
        Step::Notify {
            target: Target::TownOfficers,
        },
        Step::Wait { secs: 1 },
        Step::Notify {
            target: Target::DistrictSupervisors,
        },
    ];
    let one = Server::start(c.clone()).await;
    let two = Server::start(c).await;
    let pool = db.pool().await;
    team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    let mut admin = one.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let mut op = staff(&mut admin, &one).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let d = rodent(&mut admin, &mut op, &format!("斋堂镇饭馆{i}")).await;
        ids.push(d["id"].as_str().unwrap().to_owned());
    }
    let all = Instant::now();
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM escalation_timers WHERE state = 'pending'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            all.elapsed() < Duration::from_secs(15),
            "timers still pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &ids {
        // team, one town officer, and the district desk (no district supervisor exists): once each
        let per_kind: Vec<(String, i64)> = sqlx::query_as(
            "SELECT target_kind, count(*) FROM notifications WHERE incident_id = $1 \
             GROUP BY target_kind ORDER BY target_kind",
        )
        .bind(Uuid::parse_str(id).unwrap())
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            per_kind,
            [
                ("district".to_owned(), 1),
                ("team".to_owned(), 1),
                ("user".to_owned(), 1)
            ],
            "{id}"
        );
        let escalated = count(
            &pool,
            "SELECT count(*) FROM incident_timeline WHERE incident_id = $1 AND action = 'escalated'",
            id,
        )
        .await;
        assert_eq!(escalated, 2, "{id}");
    }
    let fired: i64 =
        sqlx::query_scalar("SELECT count(*) FROM escalation_timers WHERE state = 'fired'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(fired, 18);
    let workers: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT claimed_by) FROM escalation_timers WHERE claimed_by <> 'intake'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!((1..=2).contains(&workers), "{workers}");
    one.stop().await;
    two.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_step_that_came_due_while_dispatch_was_down_fires_after_the_restart() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&db, &dir);
    short_policy(&mut c, 2);
    let server = Server::start(c.clone()).await;
    let pool = db.pool().await;
    team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    let mut admin = server.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let mut op = staff(&mut admin, &server).await;
    let d = rodent(&mut admin, &mut op, "斋堂镇农家院").await;
    let id = d["id"].as_str().unwrap().to_owned();
    server.stop().await;

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        count(&pool, OFFICER_NOTES, &id).await,
        0,
        "nobody fired it while down"
    );
    let server = Server::start(c).await;
    wait_for(&pool, OFFICER_NOTES, &id, 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&pool, OFFICER_NOTES, &id).await, 1);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn in_simulated_time_a_drill_step_fires_at_its_second_and_not_before_with_the_exercise_id() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&db, &dir);
    short_policy(&mut c, 120);
    let app = dispatch::prepare(c).await.unwrap(); // no server, so no worker: the test is the clock
    let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).unwrap();
    let clock = SimulatedClock::new(t0);
    let report = Report {
        source: Source::Manual,
        premises: None,
        town: Some("zhaitang".into()),
        address: "斋堂镇西街8号".into(),
        kind: "rodent".into(),
        at: t0,
        received_at: t0,
        exercise: Some("drill-2026-11".into()),
        description: String::new(),
        case_count: None,
        deaths: None,
        setting: None,
        reporter: Actor::System,
        edge: None,
    };
    let mut tx = app.pool.begin().await.unwrap();
    let id = intake::incident(
        &mut tx,
        &app.config.incidents,
        &app.config.escalation,
        &app.config.clocks,
        &report,
    )
    .await
    .unwrap()
    .id();
    tx.commit().await.unwrap();
    let id = id.to_string();
    let config: &EscalationConfig = &app.config.escalation;
    let fire = || worker::fire_due(&app.pool, config, &clock, "simulated");

    // No team and no officer registered: the town itself was told at once, marked as a drill.
    let first: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT target_kind, target_id, exercise FROM notifications WHERE incident_id = $1",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        first,
        [(
            "town".to_owned(),
            "zhaitang".to_owned(),
            Some("drill-2026-11".to_owned())
        )]
    );
    clock.advance(Span::milliseconds(119_999));
    assert_eq!(fire().await.unwrap(), 0, "not a millisecond early");
    clock.advance(Span::milliseconds(1));
    assert_eq!(fire().await.unwrap(), 1);
    assert_eq!(fire().await.unwrap(), 0, "and only once");
    assert_eq!(count(&app.pool, OFFICER_NOTES, &id).await, 1);
    let note: String = sqlx::query_scalar(
        "SELECT note FROM incident_timeline WHERE incident_id = $1 AND action = 'escalated'",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        note,
        "escalated to the town officers of 斋堂镇 (nobody registered; sent to the duty desk) \
         — DRILL (exercise drill-2026-11)"
    );
    app.pool.close().await;
    db.drop_now().await;
}
