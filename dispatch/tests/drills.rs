//! Drills against the real PostgreSQL, in simulated time: the school-poisoning scenario in 斋堂镇
//! played through the real intake, routing, escalation and notifications, with scripted
//! responders (API clients acting as phones: one on time, one late, one never), a pause, a real
//! incident in the middle of it, and ENDEX with its report.

mod common;

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use common::*;
use dispatch::escalation::SimulatedClock;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCENARIO: &str = "zhaitang-school-poisoning";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 4, 0, 0).unwrap()
}

async fn login(server: &Server, name: &str) -> Client {
    let mut c = server.client();
    let (status, body) = c.login(name, USER_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{name}: {body}");
    c
}

/// The people of the drill, all scoped to 斋堂镇; field users on its team on duty.
struct Cast {
    coordinator: Client,
    operator: Client,
    supervisor: Client,
    field_a: Client,
    field_b: Client,
    school: String,
    restaurant: String,
}

async fn cast(db: &TestDb, server: &Server) -> Cast {
    let pool = db.pool().await;
    let team = team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    let mut admin = server.client();
    assert_eq!(admin.login("admin", ADMIN_PASSWORD).await.0, StatusCode::OK);
    let mut school = premises_body("zhaitang", "斋堂镇中心小学食堂");
    school["kind"] = json!("schoolCanteen");
    let (status, school) = admin.post("/api/premises", school).await;
    assert_eq!(status, StatusCode::CREATED, "{school}");
    let (_, restaurant) = create_premises(&mut admin, "zhaitang", "斋堂镇老王饭店").await;
    let zt = Some(&["zhaitang"][..]);
    for (name, role) in [
        ("zt-drill", "drillCoordinator"),
        ("zt-operator", "operator"),
        ("zt-officer", "townOfficer"),
        ("zt-field-a", "field"),
        ("zt-field-b", "field"),
    ] {
        create_user(&mut admin, name, role, zt).await;
    }
    create_user(&mut admin, "district-sup", "supervisor", None).await;
    sqlx::query("UPDATE users SET team_id = $1 WHERE username LIKE 'zt-field-%'")
        .bind(team)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    Cast {
        coordinator: login(server, "zt-drill").await,
        operator: login(server, "zt-operator").await,
        supervisor: login(server, "district-sup").await,
        field_a: login(server, "zt-field-a").await,
        field_b: login(server, "zt-field-b").await,
        school: school["id"].as_str().unwrap().to_owned(),
        restaurant: restaurant["id"].as_str().unwrap().to_owned(),
    }
}

/// Polls the run until `done` holds (the workers poll every 20 ms).
async fn run_until(c: &mut Client, run: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, v) = c.get(&format!("/api/drills/runs/{run}")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} not within 10 s: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn inject<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["injects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no inject {id}: {v}"))
}

fn expectation<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no expectation {id}: {v}"))
}

async fn scalar(pool: &PgPool, sql: &str, id: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn transition(c: &mut Client, incident: &str, to: &str) {
    let (status, d) = c
        .post(
            &format!("/api/incidents/{incident}/transition"),
            json!({ "to": to }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{to}: {d}");
}

/// What a real incident looks like to the console, minus what time alone changes.
async fn real_snapshot(c: &mut Client, id: &str) -> Value {
    let (status, mut d) = c.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    for volatile in ["clocks", "clock", "pendingEscalation"] {
        d.as_object_mut().unwrap().remove(volatile);
    }
    d
}

#[tokio::test]
async fn the_school_poisoning_drill_times_each_responder_and_leaves_real_incidents_alone() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedClock::new(t0()));
    let server = Server::simulated(&db, &dir, &sim).await;
    let pool = db.pool().await;
    let mut cast = cast(&db, &server).await;

    // A real incident before the drill, and the real statistics as they stand.
    let (status, real_before) = cast
        .operator
        .post(
            "/api/incidents",
            json!({"source": "hotline", "hotline": "12315", "premisesId": cast.restaurant,
                   "kind": "complaint", "description": "顾客投诉菜品不洁"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{real_before}");
    let real_before_id = real_before["id"].as_str().unwrap().to_owned();
    let snapshot_before = real_snapshot(&mut cast.operator, &real_before_id).await;
    let (_, list) = cast.operator.get("/api/incidents").await;
    assert_eq!(list["total"], 1, "{list}");

    // STARTEX: the first call fires at once through the real intake.
    let (status, run) = cast
        .coordinator
        .post(&format!("/api/drills/scenarios/{SCENARIO}/runs"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();
    let exercise = run["exercise"].as_str().unwrap().to_owned();
    assert_eq!(
        run["places"][0]["premisesId"],
        cast.school.as_str(),
        "{run}"
    );
    let v = run_until(&mut cast.coordinator, &run_id, "first call", |v| {
        inject(v, "first-call")["outcome"] == "opened"
    })
    .await;
    let drill_incident = inject(&v, "first-call")["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(time(&inject(&v, "first-call")["firedAt"]), t0());
    let (_, d) = cast
        .operator
        .get(&format!("/api/incidents/{drill_incident}"))
        .await;
    assert_eq!(d["exercise"], exercise.as_str(), "{d}");
    assert_eq!(d["kind"], "suspectedPoisoning");
    assert!(d["routedTeamId"].is_string(), "routed for real: {d}");
    let first = &d["timeline"][0];
    assert!(first["note"].as_str().unwrap().contains("DRILL"), "{first}");
    // the team was notified for real, marked as a drill
    assert!(
        scalar(
            &pool,
            "SELECT count(*) FROM notifications WHERE incident_id = $1::uuid AND exercise IS NOT NULL",
            &drill_incident
        )
        .await
            >= 1
    );
    // the console's real lists never show it
    let (_, list) = cast.operator.get("/api/incidents").await;
    assert_eq!(list["total"], 1, "{list}");

    // The command center triages and dispatches at T+30; nobody acknowledges until T+200, so the
    // escalation to the town officers fires at T+120, marked as a drill.
    sim.advance(Span::seconds(30));
    transition(&mut cast.operator, &drill_incident, "triaged").await;
    transition(&mut cast.operator, &drill_incident, "dispatched").await;
    sim.advance(Span::seconds(100));
    let sql = "SELECT count(*) FROM incident_timeline WHERE incident_id = $1::uuid \
               AND action = 'escalated' AND note LIKE '%DRILL%'";
    let start = Instant::now();
    while scalar(&pool, sql, &drill_incident).await < 1 {
        assert!(start.elapsed() < Duration::from_secs(10), "no escalation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Phone A acknowledges on time (T+200).
    sim.advance(Span::seconds(70));
    transition(&mut cast.field_a, &drill_incident, "acknowledged").await;

    // Pause at T+250 for 100 s: the script stands still, so the message due at T+600 comes at T+700.
    sim.advance(Span::seconds(50));
    let (status, v) = cast
        .coordinator
        .post(
            &format!("/api/drills/runs/{run_id}/control"),
            json!({"action": "pause"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "paused");
    // A real poisoning report at the same school during the drill: its own incident, routed and
    // notified normally.
    sim.advance(Span::seconds(50));
    let (status, real) = cast
        .operator
        .post(
            "/api/incidents",
            json!({"source": "hotline", "hotline": "12331", "premisesId": cast.school,
                   "kind": "suspectedPoisoning", "caseCount": 2,
                   "description": "真实来电：两名教师腹泻"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a real report never joins a drill incident: {real}"
    );
    let real_id = real["id"].as_str().unwrap().to_owned();
    assert!(real["exercise"].is_null(), "{real}");
    assert_eq!(real["routedTeamId"], d["routedTeamId"], "{real}");
    assert!(
        scalar(
            &pool,
            "SELECT count(*) FROM notifications WHERE incident_id = $1::uuid AND exercise IS NULL",
            &real_id
        )
        .await
            >= 1,
        "the real incident's team is notified"
    );
    sim.advance(Span::seconds(50));
    let (status, v) = cast
        .coordinator
        .post(
            &format!("/api/drills/runs/{run_id}/control"),
            json!({"action": "resume"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["pausedSecs"], 100);
    assert_eq!(
        time(&inject(&v, "parents-at-gate")["dueAt"]),
        t0() + Span::seconds(700)
    );
    sim.advance(Span::seconds(340)); // T+690
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, v) = cast
        .coordinator
        .get(&format!("/api/drills/runs/{run_id}"))
        .await;
    assert!(
        inject(&v, "parents-at-gate")["outcome"].is_null(),
        "fired early: {v}"
    );
    sim.advance(Span::seconds(10)); // T+700
    run_until(&mut cast.coordinator, &run_id, "message", |v| {
        inject(v, "parents-at-gate")["outcome"] == "message"
    })
    .await;

    // The case count rises at T+1300: the report joins the drill incident and the suggested
    // severity rises (35 cases at a school canteen: II).
    sim.advance(Span::seconds(600));
    let v = run_until(&mut cast.coordinator, &run_id, "case update", |v| {
        inject(v, "more-cases")["outcome"] == "attached"
    })
    .await;
    assert_eq!(
        inject(&v, "more-cases")["incidentId"],
        drill_incident.as_str()
    );
    let (_, d) = cast
        .operator
        .get(&format!("/api/incidents/{drill_incident}"))
        .await;
    assert_eq!(d["reportCount"], 2, "{d}");
    assert_eq!(d["suggestedSeverity"], "II", "{d}");

    // Phone B arrives late (T+2400, target 1800); nobody files the health report.
    sim.advance(Span::seconds(1100));
    transition(&mut cast.field_b, &drill_incident, "enRoute").await;
    transition(&mut cast.field_b, &drill_incident, "onScene").await;
    let (_, v) = cast
        .coordinator
        .get(&format!("/api/drills/runs/{run_id}"))
        .await;
    assert_eq!(expectation(&v, "ack")["status"], "met", "{v}");
    assert_eq!(expectation(&v, "arrive")["status"], "late", "{v}");
    assert_eq!(expectation(&v, "health-report")["status"], "pending", "{v}");

    // Observations and ratings, by the coordinator and an observer from the command center.
    for (who, body) in [
        (
            "coordinator",
            json!({"expectationId": "ack", "rating": "P", "text": "接报迅速"}),
        ),
        (
            "coordinator",
            json!({"expectationId": "arrive", "rating": "M", "text": "车辆调度耗时过长"}),
        ),
        ("supervisor", json!({"text": "家长聚集时无人出面说明情况"})),
    ] {
        let c = if who == "coordinator" {
            &mut cast.coordinator
        } else {
            &mut cast.supervisor
        };
        let (status, v) = c
            .post(&format!("/api/drills/runs/{run_id}/observations"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let (status, e) = cast
        .coordinator
        .post(
            &format!("/api/drills/runs/{run_id}/observations"),
            json!({"expectationId": "ack", "rating": "X"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["field"], "rating", "{e}");
    let (status, e) = cast
        .coordinator
        .get(&format!("/api/drills/runs/{run_id}/report"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "no report before ENDEX: {e}");

    // ENDEX at T+7300 (the health report's 2 hours have passed).
    sim.advance(Span::seconds(4900));
    let (status, v) = cast
        .coordinator
        .post(
            &format!("/api/drills/runs/{run_id}/control"),
            json!({"action": "end"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "ended");
    assert!(v["hasReport"].as_bool().unwrap());
    let ack = expectation(&v, "ack");
    assert_eq!(
        (ack["status"].clone(), ack["elapsedSecs"].clone()),
        (json!("met"), json!(200))
    );
    assert_eq!(ack["by"], "zt-field-a");
    assert_eq!(ack["rating"], "P");
    let arrive = expectation(&v, "arrive");
    assert_eq!(arrive["status"], "late");
    assert_eq!(arrive["elapsedSecs"], 2400);
    assert_eq!(arrive["overSecs"], 600);
    assert_eq!(arrive["by"], "zt-field-b");
    let health = expectation(&v, "health-report");
    assert_eq!(health["status"], "missed");
    assert_eq!(health["overSecs"], 100);
    assert!(health["by"].is_null());
    let (status, again) = cast
        .coordinator
        .post(
            &format!("/api/drills/runs/{run_id}/control"),
            json!({"action": "end"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    // The report says what the phones did, in Chinese.
    let resp = reqwest::Client::new()
        .get(format!(
            "http://{}/api/drills/runs/{run_id}/report",
            server.addr
        ))
        .header(
            "cookie",
            format!(
                "__Host-bl_session={}",
                cast.supervisor.cookie.clone().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = resp.text().await.unwrap();
    std::fs::write(std::env::temp_dir().join("drill-report.html"), &html).unwrap();
    for needle in [
        "【演练 DRILL】",
        "斋堂镇中心小学食堂集体食物中毒应急演练",
        "一、演练概况",
        "三、按指标评估",
        "五、改进计划",
        "3分20秒（zt-field-a）", // ack: 200 s
        "40分0秒（zt-field-b）", // arrival: 2400 s
        "超时",
        "10分0秒", // arrival over by 600 s
        "未完成",
        "车辆调度耗时过长",
        "家长聚集时无人出面说明情况",
        "<svg",
        "演练时间线",
        "ENDEX",
        "GB/T 46792-2025",
    ] {
        assert!(html.contains(needle), "report lacks {needle:?}");
    }

    // The improvement plan starts from the problems: the late arrival (also rated M) and the
    // missed health report, each owned by its role in 斋堂镇 and due 30 days after ENDEX.
    let items = v["improvements"].as_array().unwrap().clone();
    let from: Vec<&str> = items
        .iter()
        .map(|i| i["expectationId"].as_str().unwrap())
        .collect();
    assert_eq!(from, ["arrive", "health-report"], "{items:?}");
    assert!(
        items
            .iter()
            .all(|i| i["state"] == "open" && i["overdue"] == false)
    );
    assert_eq!(items[0]["owner"], "一线处置人员（斋堂镇）");
    assert_eq!(
        items[0]["dueDate"], "2026-12-23",
        "ENDEX 2026-11-23 + 30 days"
    );
    assert!(
        html.contains(items[1]["problem"].as_str().unwrap()),
        "the report lists the items"
    );

    // ENDEX stopped the drill's escalation; nothing real changed.
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM escalation_timers WHERE incident_id = $1::uuid AND state = 'pending'",
            &drill_incident
        )
        .await,
        0
    );
    assert_eq!(
        real_snapshot(&mut cast.operator, &real_before_id).await,
        snapshot_before
    );
    let (_, list) = cast.operator.get("/api/incidents").await;
    assert_eq!(
        list["total"], 2,
        "the earlier real incident and the one during the drill: {list}"
    );
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["exercise"].is_null()),
        "{list}"
    );
    let (_, real_now) = cast
        .operator
        .get(&format!("/api/incidents/{real_id}"))
        .await;
    assert!(
        !real_now["timeline"].to_string().contains("ENDEX"),
        "ENDEX touches only the drill's incidents: {real_now}"
    );
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE object_id = $1 ORDER BY seq")
            .bind(&run_id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        actions,
        [
            "drill.start",
            "drill.pause",
            "drill.resume",
            "drill.observe",
            "drill.observe",
            "drill.observe",
            "drill.end",
        ]
    );

    // The PDF is printed by headless Chromium shortly after ENDEX; its first page is not blank.
    let pdf = report_pdf(&server, &cast.supervisor, &run_id).await;
    let png = first_page(&pdf);
    assert!(
        ink(&png) > 0.02,
        "page 1 of the PDF is nearly blank ({:.3} ink)",
        ink(&png)
    );
    // Last, as it moves the clock days on.
    improvement_plan_is_tracked_to_closure(&mut cast, &sim, &run_id, &items).await;
    for (action, n) in [("drill.improvementAdd", 1), ("drill.improvementState", 3)] {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = $1")
            .bind(action)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(count, n, "{action}");
    }
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn each_inject_fires_once_with_two_servers_and_after_a_restart() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedClock::new(t0()));
    let a = Server::simulated(&db, &dir, &sim).await;
    let mut cast = cast(&db, &a).await;
    let pool = db.pool().await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (status, run) = cast
            .coordinator
            .post(&format!("/api/drills/scenarios/{SCENARIO}/runs"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{run}");
        runs.push(run["id"].as_str().unwrap().to_owned());
    }
    let fired =
        "SELECT count(*) FROM drill_injects WHERE run_id = $1::uuid AND outcome IS NOT NULL";
    for run in &runs {
        let start = Instant::now();
        while scalar(&pool, fired, run).await < 1 {
            assert!(start.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Two runs at once: two drill incidents at the same school, never merged.
    let incidents: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT incident_id) FROM drill_injects WHERE incident_id IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(incidents, 2);
    // Every replica stops; the rest of the script comes due meanwhile; two replicas start.
    a.stop().await;
    sim.advance(Span::seconds(1300));
    let b = Server::simulated(&db, &dir, &sim).await;
    let c = Server::simulated(&db, &dir, &sim).await;
    for run in &runs {
        let start = Instant::now();
        while scalar(&pool, fired, run).await < 3 {
            assert!(start.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for run in &runs {
        let reports = "SELECT count(*) FROM incident_timeline t JOIN drill_injects j \
                       ON j.incident_id = t.incident_id AND j.inject_id = 'first-call' \
                       WHERE j.run_id = $1::uuid AND t.action IN ('opened', 'repeat')";
        assert_eq!(
            scalar(&pool, reports, run).await,
            2,
            "one opening and one repeat"
        );
    }
    pool.close().await;
    b.stop().await;
    c.stop().await;
    db.drop_now().await;
}

/// Items move on with who and when; a step out of order is refused; one added by hand is
/// checked; past its due date an open item is overdue in the plan across runs.
async fn improvement_plan_is_tracked_to_closure(
    cast: &mut Cast,
    sim: &SimulatedClock,
    run: &str,
    items: &[Value],
) {
    let first = items[0]["id"].as_str().unwrap();
    let state = |id: &str| format!("/api/drills/improvements/{id}/state");
    let (status, e) = cast
        .coordinator
        .post(&state(first), json!({"state": "verified"}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "nothing is verified before it is done: {e}"
    );
    assert_eq!(e["error"]["code"], "invalid_improvement_state", "{e}");
    let (status, e) = cast
        .coordinator
        .post(&state(first), json!({"state": "closed"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["field"], "state", "{e}");
    for (who, to) in [
        ("coordinator", "inProgress"),
        ("coordinator", "done"),
        ("supervisor", "verified"),
    ] {
        let c = if who == "coordinator" {
            &mut cast.coordinator
        } else {
            &mut cast.supervisor
        };
        let (status, item) = c
            .post(
                &state(first),
                json!({"state": to, "note": format!("{to} 说明")}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{item}");
        assert_eq!(item["state"], to);
    }
    let (_, list) = cast.coordinator.get("/api/drills/improvements").await;
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == first)
        .unwrap()
        .clone();
    let history: Vec<(String, String)> = item["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["state"].as_str().unwrap().into(),
                h["by"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("open".into(), "zt-drill".into()),
            ("inProgress".into(), "zt-drill".into()),
            ("done".into(), "zt-drill".into()),
            ("verified".into(), "district-sup".into())
        ]
    );
    // by hand: bad input is named, good input is open
    let path = format!("/api/drills/runs/{run}/improvements");
    let (status, e) = cast
        .coordinator
        .post(
            &path,
            json!({"problem": " ", "action": "a", "owner": "o", "dueDate": "2026-12-01"}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("problem")),
        "{e}"
    );
    let (status, e) = cast
        .coordinator
        .post(
            &path,
            json!({"problem": "p", "action": "a", "owner": "o", "dueDate": "2026-12-01",
                             "expectationId": "teleport"}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("expectationId")),
        "{e}"
    );
    let (status, by_hand) = cast
        .coordinator
        .post(
            &path,
            json!({"problem": "现场家长疏导无人负责", "action": "明确学校与镇街分工",
                             "owner": "斋堂镇政府", "dueDate": "2026-12-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{by_hand}");
    assert_eq!(by_hand["state"], "open");
    // 2026-12-02 in Beijing: the hand-made item (due 12-01) is overdue, the others are not yet
    sim.advance(Span::days(9));
    let (_, overdue) = cast
        .coordinator
        .get("/api/drills/improvements?overdue=true")
        .await;
    let ids: Vec<&str> = overdue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [by_hand["id"].as_str().unwrap()], "{overdue}");
    assert_eq!(overdue["items"][0]["overdue"], true);
    let (_, runs) = cast.coordinator.get("/api/drills/runs").await;
    assert_eq!(runs["items"][0]["overdueImprovements"], 1, "{runs}");
}

/// Polls the PDF until the worker has printed it (Chromium takes seconds on a loaded machine).
async fn report_pdf(server: &Server, who: &Client, run: &str) -> Vec<u8> {
    let start = Instant::now();
    loop {
        let resp = reqwest::Client::new()
            .get(format!(
                "http://{}/api/drills/runs/{run}/report.pdf",
                server.addr
            ))
            .header(
                "cookie",
                format!("__Host-bl_session={}", who.cookie.clone().unwrap()),
            )
            .send()
            .await
            .unwrap();
        let status = resp.status();
        if status == StatusCode::OK {
            assert_eq!(resp.headers()["content-type"], "application/pdf");
            let pdf = resp.bytes().await.unwrap().to_vec();
            assert!(pdf.starts_with(b"%PDF-"));
            return pdf;
        }
        let body = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no PDF within 120 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Page 1 of `pdf` as a PNG (pdftoppm from poppler-utils), kept beside the HTML in the temp dir.
fn first_page(pdf: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir();
    let file = dir.join("drill-report.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = dir.join("drill-report-page1");
    let status = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&file)
        .arg(&out)
        .status()
        .expect("pdftoppm (poppler-utils, deploy/dev/install-deps.sh) runs");
    assert!(status.success());
    let png = out.with_extension("png");
    println!("page 1 of the report: {}", png.display());
    png
}

/// Share of page 1 that is not white, read through pdftoppm's plain grey map of the same page.
fn ink(png: &std::path::Path) -> f64 {
    let pgm = png.with_extension("pgm");
    let pdf = std::env::temp_dir().join("drill-report.pdf");
    let status = std::process::Command::new("pdftoppm")
        .args(["-gray", "-r", "30", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&pdf)
        .arg(pgm.with_extension(""))
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&pgm).unwrap();
    // P5 header: "P5\n<w> <h>\n<max>\n", then one byte per pixel
    let mut fields = 0;
    let mut at = 0;
    while fields < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields += 1;
    }
    let pixels = &bytes[at + 1..];
    assert!(png.exists() && !pixels.is_empty());
    pixels.iter().filter(|&&p| p < 200).count() as f64 / pixels.len() as f64
}

#[tokio::test]
async fn only_participants_are_notified_and_a_scenarios_runs_are_compared_over_time() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedClock::new(t0()));
    let server = Server::simulated(&db, &dir, &sim).await;
    let pool = db.pool().await;
    let mut cast = cast(&db, &server).await;

    // Run 1: nobody acknowledges, so every escalation step fires (team at once, the town
    // officers at T+120, the district supervisors at T+420).
    let (status, run) = cast
        .coordinator
        .post(&format!("/api/drills/scenarios/{SCENARIO}/runs"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let first = run["id"].as_str().unwrap().to_owned();
    let v = run_until(&mut cast.coordinator, &first, "first call", |v| {
        inject(v, "first-call")["outcome"] == "opened"
    })
    .await;
    let incident = inject(&v, "first-call")["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.advance(Span::seconds(430));
    let sql = "SELECT count(*) FROM incident_timeline WHERE incident_id = $1::uuid AND action = 'escalated'";
    let start = Instant::now();
    while scalar(&pool, sql, &incident).await < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "escalation steps did not fire"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reached: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT target_kind, target_name FROM notifications WHERE incident_id = $1::uuid ORDER BY 1, 2",
    )
    .bind(&incident)
    .fetch_all(&pool)
    .await
    .unwrap();
    let reached: Vec<(&str, &str)> = reached
        .iter()
        .map(|(k, n)| (k.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        reached,
        [
            ("team", "斋堂镇全天组"),
            ("user", "zt-drill"),
            ("user", "zt-officer")
        ],
        "the participant team and town officer and the coordinator; never the district supervisor, \
         who does not take part"
    );
    let note: String = sqlx::query_scalar(
        "SELECT note FROM incident_timeline WHERE incident_id = $1::uuid AND action = 'escalated' ORDER BY seq DESC LIMIT 1",
    )
    .bind(&incident)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        note.contains("participants only: sent to zt-drill"),
        "{note}"
    );
    // a real incident at the same time still reaches the district supervisor
    let (status, real) = cast
        .operator
        .post(
            "/api/incidents",
            json!({"source": "hotline", "hotline": "12331", "premisesId": cast.school,
                   "kind": "suspectedPoisoning", "caseCount": 2, "description": "真实来电"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{real}");
    let real_id = real["id"].as_str().unwrap().to_owned();
    sim.advance(Span::seconds(430));
    let sql = "SELECT count(*) FROM notifications WHERE incident_id = $1::uuid AND target_name = 'district-sup'";
    let start = Instant::now();
    while scalar(&pool, sql, &real_id).await < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the real incident did not reach the district"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = cast
        .coordinator
        .post(
            &format!("/api/drills/runs/{first}/control"),
            json!({"action": "end"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Run 2, a day later: phone A acknowledges after 100 s.
    sim.advance(Span::days(1));
    let (_, run) = cast
        .coordinator
        .post(&format!("/api/drills/scenarios/{SCENARIO}/runs"), json!({}))
        .await;
    let second = run["id"].as_str().unwrap().to_owned();
    let v = run_until(&mut cast.coordinator, &second, "first call", |v| {
        inject(v, "first-call")["outcome"] == "opened"
    })
    .await;
    let incident = inject(&v, "first-call")["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    transition(&mut cast.operator, &incident, "triaged").await;
    transition(&mut cast.operator, &incident, "dispatched").await;
    sim.advance(Span::seconds(100));
    transition(&mut cast.field_a, &incident, "acknowledged").await;
    let (status, _) = cast
        .coordinator
        .post(
            &format!("/api/drills/runs/{second}/control"),
            json!({"action": "end"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // 斋堂镇 is getting faster: the history has both runs, oldest first, with each task's seconds.
    let (status, h) = cast
        .supervisor
        .get(&format!("/api/drills/scenarios/{SCENARIO}/history"))
        .await;
    assert_eq!(status, StatusCode::OK, "{h}");
    let runs = h["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{h}");
    assert_eq!(
        (runs[0]["id"].as_str(), runs[1]["id"].as_str()),
        (Some(first.as_str()), Some(second.as_str()))
    );
    let ack = |r: &Value| {
        r["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == "ack")
            .unwrap()
            .clone()
    };
    assert_eq!(ack(&runs[0])["status"], "missed");
    assert!(ack(&runs[0])["elapsedSecs"].is_null());
    assert_eq!(ack(&runs[1])["status"], "met");
    assert_eq!(ack(&runs[1])["elapsedSecs"], 100);
    assert_eq!(runs[0]["score"], 0.0);
    let tasks = h["tasks"].as_array().unwrap().len() as f64;
    assert_eq!(runs[1]["score"], 1.0 / tasks);
    assert_eq!(h["tasks"][0]["id"], "ack");
    let (status, e) = cast
        .supervisor
        .get("/api/drills/scenarios/nope/history")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
