//! Incidents through the API against the real PostgreSQL: hotline and manual intake, the state
//! machine's answers, triage's false positives, the append-only timeline, town scope.

mod common;

use common::*;
use dispatch::escalation::EscalationConfig;
use dispatch::incident::policy::IncidentsConfig;
use dispatch::intake::{self, EdgeReport, Stored};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// An operator and a field user of 斋堂镇 (zhaitang), logged in.
async fn staff(admin: &mut Client, server: &Server) -> (Client, Client) {
    create_user(admin, "zt-operator", "operator", Some(&["zhaitang"])).await;
    create_user(admin, "zt-field", "field", Some(&["zhaitang"])).await;
    let (mut op, mut field) = (server.client(), server.client());
    assert_eq!(
        op.login("zt-operator", USER_PASSWORD).await.0,
        StatusCode::OK
    );
    assert_eq!(
        field.login("zt-field", USER_PASSWORD).await.0,
        StatusCode::OK
    );
    (op, field)
}

/// Puts zt-field in `team` (field users work only their own team's incidents).
async fn join_team(pool: &sqlx::PgPool, team: Uuid) {
    sqlx::query("UPDATE users SET team_id = $1 WHERE username = 'zt-field'")
        .bind(team)
        .execute(pool)
        .await
        .unwrap();
}

async fn premises(admin: &mut Client, kind: &str, name: &str) -> String {
    let mut body = premises_body("zhaitang", name);
    body["kind"] = json!(kind);
    let (status, p) = admin.post("/api/premises", body).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    p["id"].as_str().unwrap().to_owned()
}

async fn move_to(c: &mut Client, id: &str, body: Value) -> (StatusCode, Value) {
    c.post(&format!("/api/incidents/{id}/transition"), body)
        .await
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
async fn a_hotline_poisoning_report_at_a_school_canteen_gets_a_suggested_severity_and_repeats_raise_it()
 {
    let (db, _dir, server, mut admin) = setup().await;
    let (mut op, _) = staff(&mut admin, &server).await;
    let school = premises(&mut admin, "schoolCanteen", "斋堂镇中心小学食堂").await;
    let report = |cases: u32| {
        json!({"source": "hotline", "hotline": "12331", "premisesId": school, "kind": "suspectedPoisoning",
               "caseCount": cases, "description": "家长来电：多名学生午餐后呕吐"})
    };
    let (status, d) = op.post("/api/incidents", report(32)).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    assert_eq!(d["suggestedSeverity"], "II");
    assert_eq!(d["tier"], "immediate");
    assert_eq!(
        (d["source"].as_str(), d["hotline"].as_str()),
        (Some("hotline"), Some("12331"))
    );
    assert_eq!(d["state"], "new");
    assert_eq!(
        actions(&d),
        ["opened", "severitySuggested", "routed", "notified"]
    );
    let why = d["timeline"][1]["note"].as_str().unwrap();
    assert!(
        why.contains("32 cases ≥ 30") && why.contains("schoolCanteen"),
        "{why}"
    );
    // No Zhaitang team is on the roster: the town has it, and the timeline says so.
    assert_eq!(d["routedTeamId"], Value::Null);
    let routed = d["timeline"][2]["note"].as_str().unwrap();
    assert!(
        routed.starts_with("no team on duty in zhaitang"),
        "{routed}"
    );

    // A second call about the same canteen attaches, and more cases raise the suggestion.
    let (status, again) = op.post("/api/incidents", report(120)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], d["id"]);
    assert_eq!(
        (again["reportCount"].as_i64(), again["caseCount"].as_i64()),
        (Some(2), Some(120))
    );
    assert_eq!(again["suggestedSeverity"], "I");
    assert_eq!(
        actions(&again),
        [
            "opened",
            "severitySuggested",
            "routed",
            "notified",
            "repeat",
            "severitySuggested"
        ]
    );
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_report_is_routed_to_the_team_on_duty_and_walks_the_whole_path_to_closed() {
    let (db, _dir, server, mut admin) = setup().await;
    let pool = db.pool().await;
    let team = team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    let (mut op, mut field) = staff(&mut admin, &server).await;
    join_team(&pool, team).await;
    let body = json!({"source": "manual", "townId": "zhaitang", "address": "斋堂镇东街12号",
                      "kind": "complaint", "description": "巡查发现后厨卫生差"});
    let (status, d) = op.post("/api/incidents", body).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    assert_eq!(d["routedTeamId"], team.to_string());
    assert_eq!(d["tier"], "routine");
    let id = d["id"].as_str().unwrap().to_owned();
    for (by_field, to) in [
        (false, "triaged"),
        (false, "dispatched"),
        (true, "acknowledged"),
        (true, "enRoute"),
    ] {
        let client = if by_field { &mut field } else { &mut op };
        let (status, d) = move_to(client, &id, json!({ "to": to })).await;
        assert_eq!(status, StatusCode::OK, "{to}: {d}");
    }
    let here =
        json!({"to": "onScene", "note": "已到达", "location": {"lat": 39.972, "lon": 115.69}});
    assert_eq!(move_to(&mut field, &id, here).await.0, StatusCode::OK);
    assert_eq!(
        move_to(&mut field, &id, json!({"to": "resolved"})).await.0,
        StatusCode::OK
    );
    let (status, d) = move_to(&mut op, &id, json!({"to": "closed"})).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["state"], "closed");
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
            "resolve",
            "close"
        ]
    );
    let arrive = &d["timeline"][6];
    assert_eq!(
        (arrive["actor"].as_str(), arrive["role"].as_str()),
        (Some("zt-field"), Some("field"))
    );
    assert_eq!(
        (arrive["fromState"].as_str(), arrive["toState"].as_str()),
        (Some("enRoute"), Some("onScene"))
    );
    assert_eq!(arrive["lat"], 39.972);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn an_invalid_transition_answers_409_naming_both_states_and_a_wrong_role_or_body_is_refused()
{
    let (db, _dir, server, mut admin) = setup().await;
    let pool = db.pool().await;
    let team = team_on_duty(&pool, "zhaitang", "斋堂镇全天组").await;
    let (mut op, mut field) = staff(&mut admin, &server).await;
    join_team(&pool, team).await;
    let body = json!({"source": "manual", "townId": "zhaitang", "address": "斋堂镇西街3号", "kind": "smoking"});
    let (_, d) = op.post("/api/incidents", body).await;
    let id = d["id"].as_str().unwrap().to_owned();

    let (status, e) = move_to(&mut op, &id, json!({"to": "closed"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "invalid_transition");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("from new to closed") && message.contains("triaged, rejected"),
        "{message}"
    );

    let (status, e) = move_to(&mut op, &id, json!({"to": "done"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (status, e) = move_to(&mut op, &id, json!({"to": "rejected"})).await;
    assert_eq!(
        (
            status,
            e["error"]["message"].as_str().unwrap().contains("reason")
        ),
        (StatusCode::BAD_REQUEST, true)
    );
    let (status, e) = move_to(&mut field, &id, json!({"to": "triaged"})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_forbidden"))
    );
    let (status, e) = op
        .post(
            "/api/incidents",
            json!({"source": "hotline", "townId": "zhaitang", "address": "x", "kind": "complaint"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (status, _) = move_to(
        &mut op,
        &Uuid::now_v7().to_string(),
        json!({"to": "triaged"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, d) = op.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(
        (d["state"].as_str(), actions(&d).len()),
        (Some("new"), 2),
        "nothing changed: {d}"
    );
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_rejected_detection_is_kept_as_a_labelled_false_positive_with_its_evidence_until_reopened()
 {
    let (db, _dir, server, mut admin) = setup().await;
    let pool = db.pool().await;
    let (mut op, _) = staff(&mut admin, &server).await;
    let restaurant = premises(&mut admin, "restaurant", "斋堂镇农家院").await;
    sqlx::query("INSERT INTO edges (id, premises_id) VALUES ('fp-edge', $1::uuid)")
        .bind(&restaurant)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO cameras (id, premises_id, name, source, edge_id, main_stream) VALUES ('fp-cam', $1::uuid, '后厨', 'edge', 'fp-edge', 'main')",
    )
    .bind(&restaurant)
    .execute(&pool)
    .await
    .unwrap();
    // The consumer's own path, without the broker: parse, then record (event + incident, one transaction).
    let event = Uuid::now_v7();
    let payload = common::edge::Detection {
        event_id: event,
        episode_id: Uuid::now_v7(),
        phase: "start",
        edge: "fp-edge",
        camera: "fp-cam",
        kind: "rodent",
        at: chrono::Utc::now(),
        exercise: None,
    }
    .json();
    let report: EdgeReport = intake::edge::parse("bl/v1/edge/fp-edge/events", &payload).unwrap();
    let stored = intake::record(
        &pool,
        &IncidentsConfig::default(),
        &EscalationConfig::default(),
        &dispatch::clocks::ClocksConfig::default(),
        &report,
    )
    .await
    .unwrap();
    assert_eq!(stored.unwrap(), Stored::New);
    let (_, list) = op.get("/api/incidents?kind=rodent").await;
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();

    let reject = json!({"to": "rejected", "reason": "是猫，不是老鼠", "note": "回看录像确认"});
    let (status, d) = move_to(&mut op, &id, reject).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let fp = &d["falsePositive"];
    assert_eq!(fp["reason"], "是猫，不是老鼠");
    assert_eq!(fp["evidence"][0]["eventId"], event.to_string());
    assert_eq!(fp["evidence"][0]["snapshot"]["sha256"], "ab".repeat(32));
    assert_eq!(fp["evidence"][0]["model"]["version"], "0.1.0");
    let last = d["timeline"].as_array().unwrap().last().unwrap();
    assert_eq!(last["note"], "false alarm: 是猫，不是老鼠; 回看录像确认");
    assert_eq!(last["refs"]["falsePositiveId"], fp["id"]);

    let (status, d) = move_to(
        &mut op,
        &id,
        json!({"to": "triaged", "note": "复核：确有鼠迹"}),
    )
    .await;
    assert_eq!(
        (status, d["state"].as_str()),
        (StatusCode::OK, Some("triaged")),
        "{d}"
    );
    assert_eq!(d["falsePositive"], Value::Null);
    let withdrawn: i64 =
        sqlx::query_scalar("SELECT count(*) FROM false_positives WHERE withdrawn_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(withdrawn, 1);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn the_timeline_is_append_only_even_for_the_database_owner() {
    let (db, _dir, server, mut admin) = setup().await;
    let (mut op, _) = staff(&mut admin, &server).await;
    let body =
        json!({"source": "manual", "townId": "zhaitang", "address": "斋堂镇1号", "kind": "noMask"});
    assert_eq!(op.post("/api/incidents", body).await.0, StatusCode::CREATED);
    let pool = db.pool().await;
    for sql in [
        "UPDATE incident_timeline SET note = 'rewritten'",
        "DELETE FROM incident_timeline",
        "TRUNCATE incident_timeline",
    ] {
        let e = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    let notes: Vec<String> = sqlx::query_scalar("SELECT note FROM incident_timeline")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        notes.len() == 2 && !notes.contains(&"rewritten".to_owned()),
        "{notes:?}"
    );
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_town_officer_of_another_town_can_neither_see_nor_report_nor_transition_it() {
    let (db, _dir, server, mut admin) = setup().await;
    let (mut op, _) = staff(&mut admin, &server).await;
    let school = premises(&mut admin, "schoolCanteen", "斋堂镇中学食堂").await;
    let (_, d) = op
        .post(
            "/api/incidents",
            json!({"source": "manual", "premisesId": school, "kind": "uncoveredBin"}),
        )
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    create_user(&mut admin, "qs-officer", "townOfficer", Some(&["qingshui"])).await;
    let mut qs = server.client();
    qs.login("qs-officer", USER_PASSWORD).await;
    let (status, e) = qs.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("out_of_scope"))
    );
    assert_eq!(
        move_to(&mut qs, &id, json!({"to": "triaged"})).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = qs
        .post(
            "/api/incidents",
            json!({"source": "manual", "premisesId": school, "kind": "noMask"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = qs.get("/api/incidents").await;
    assert_eq!(list["total"], 0);
    let (_, d) = op.get(&format!("/api/incidents/{id}")).await;
    assert_eq!((d["state"].as_str(), actions(&d).len()), (Some("new"), 2));
    server.stop().await;
    db.drop_now().await;
}
