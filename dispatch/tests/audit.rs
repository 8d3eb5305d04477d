//! The audit log against the real server and PostgreSQL: what people do becomes one hash chain,
//! auditors read it within their towns, `dispatch audit-verify` checks it (and finds a row changed
//! behind the trigger's back), and two servers appending at once keep it linear.

mod common;

use common::*;
use dispatch::audit::verify::{self, Outcome};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every row, oldest first, read through the API by a district auditor.
async fn all_rows(server: &Server, admin: &mut Client) -> Vec<Value> {
    if admin
        .get("/api/users")
        .await
        .1
        .as_array()
        .is_some_and(|u| !u.iter().any(|u| u["username"] == "district-auditor"))
    {
        create_user(admin, "district-auditor", "auditor", None).await;
    }
    let mut auditor = server.client();
    assert_eq!(
        auditor.login("district-auditor", USER_PASSWORD).await.0,
        StatusCode::OK
    );
    let (status, page) = auditor.get("/api/audit?perPage=500").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut rows = page["items"].as_array().unwrap().clone();
    rows.reverse();
    rows
}

fn actions(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["action"].as_str().unwrap()).collect()
}

fn find<'a>(rows: &'a [Value], action: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r["action"] == action).collect()
}

/// A premises in 斋堂镇 with camera `zt-kitchen-1`; returns the premises id.
async fn kitchen(db: &TestDb, admin: &mut Client) -> String {
    let (status, p) = create_premises(admin, "zhaitang", "斋堂镇中心小学食堂").await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    insert_camera(db, &id, "zt-kitchen-1", true).await;
    id
}

#[tokio::test]
async fn logins_views_reports_transitions_and_live_tokens_become_one_chain_that_verifies() {
    let (db, _dir, server, mut admin) =
        setup_with(|c| c.media = Some(media_config(&[("gw-1", "http://127.0.0.1:8090")]))).await;
    let premises = kitchen(&db, &mut admin).await;
    create_user(&mut admin, "zt-op", "operator", Some(&["zhaitang"])).await;
    let mut op = server.client();
    assert_eq!(
        op.login("zt-op", "wrong-password-123").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        op.login("nobody", USER_PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(op.login("zt-op", USER_PASSWORD).await.0, StatusCode::OK);
    let (status, incident) = op
        .post(
            "/api/incidents",
            json!({"source": "hotline", "hotline": "12331", "premisesId": premises,
                   "kind": "suspectedPoisoning", "caseCount": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    let id = incident["id"].as_str().unwrap().to_owned();
    let (status, body) = op
        .post(
            &format!("/api/incidents/{id}/transition"),
            json!({"to": "triaged"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        op.get(&format!("/api/incidents/{id}")).await.0,
        StatusCode::OK
    );
    let (status, grant) = op
        .post("/api/cameras/zt-kitchen-1/live", json!({"stream": "main"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    let (status, _) = op.send(reqwest::Method::DELETE, "/api/session", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let rows = all_rows(&server, &mut admin).await;
    let seen = actions(&rows);
    for action in [
        "session.login",
        "user.create",
        "premises.create",
        "session.loginFailed",
        "incident.create",
        "incident.transition",
        "incident.view",
        "camera.live",
        "session.logout",
    ] {
        assert!(seen.contains(&action), "{action} missing from {seen:?}");
    }
    let failures: Vec<(&str, &str)> = find(&rows, "session.loginFailed")
        .iter()
        .map(|r| {
            (
                r["actorName"].as_str().unwrap(),
                r["details"]["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        vec![("zt-op", "wrong_password"), ("nobody", "unknown_user")]
    );
    assert!(
        find(&rows, "session.loginFailed")
            .iter()
            .all(|r| r["actorKind"] == "anonymous" && r["clientAddr"] == "127.0.0.1")
    );
    let moved = find(&rows, "incident.transition")[0];
    assert_eq!(moved["actorName"], "zt-op");
    assert_eq!(moved["actorRole"], "operator");
    assert_eq!(moved["objectType"], "incident");
    assert_eq!(moved["objectId"], id.as_str());
    assert_eq!(moved["town"], "zhaitang");
    assert_eq!(
        moved["details"],
        json!({"from": "new", "to": "triaged", "action": "confirm"})
    );
    let live = find(&rows, "camera.live")[0];
    assert_eq!(live["objectId"], "zt-kitchen-1");
    assert_eq!(live["details"]["node"], "gw-1");
    assert_eq!(live["details"]["stream"], "main");
    assert!(
        !live.to_string().contains(grant["token"].as_str().unwrap()),
        "the token itself must not be recorded"
    );
    // one linear chain: seq 1, 2, 3, … each linked to the one before
    for (i, pair) in rows.windows(2).enumerate() {
        assert_eq!(pair[0]["seq"], json!(i + 1));
        assert_eq!(pair[1]["prevHash"], pair[0]["hash"]);
    }
    let pool = db.pool().await;
    match verify::run(&pool).await.unwrap() {
        // the auditor's own query is the last row
        Outcome::Intact { count, .. } => assert_eq!(count as usize, rows.len() + 1),
        broken => panic!("{}", broken.report()),
    }
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_lock_out_is_recorded_with_its_key_and_a_refused_attempt_names_it_as_the_reason() {
    let (db, _dir, server, mut admin) = setup_with(|c| c.login.max_failures = 2).await;
    create_user(&mut admin, "zt-op", "operator", Some(&["zhaitang"])).await;
    let mut op = server.client();
    for _ in 0..2 {
        assert_eq!(
            op.login("zt-op", "wrong-password-123").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        op.login("zt-op", USER_PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let rows = all_rows(&server, &mut admin).await;
    let locked = find(&rows, "session.lockedOut");
    assert_eq!(locked.len(), 1, "{rows:?}");
    assert_eq!(locked[0]["details"]["key"], "user:zt-op");
    assert_eq!(locked[0]["details"]["secs"], 60);
    let reasons: Vec<&str> = find(&rows, "session.loginFailed")
        .iter()
        .map(|r| r["details"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["wrong_password", "wrong_password", "locked_out"]);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_town_auditor_reads_only_its_towns_rows_filtered_and_each_query_is_itself_recorded() {
    let (db, _dir, server, mut admin) = setup().await;
    create_premises(&mut admin, "zhaitang", "斋堂镇餐馆").await;
    create_premises(&mut admin, "qingshui", "清水镇餐馆").await;
    create_user(&mut admin, "zt-auditor", "auditor", Some(&["zhaitang"])).await;
    let mut auditor = server.client();
    assert_eq!(
        auditor.login("zt-auditor", USER_PASSWORD).await.0,
        StatusCode::OK
    );
    let (status, page) = auditor.get("/api/audit").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(items[0]["action"], "premises.create");
    assert_eq!(items[0]["town"], "zhaitang");

    let all = all_rows(&server, &mut admin).await;
    let mut district = server.client();
    assert_eq!(
        district.login("district-auditor", USER_PASSWORD).await.0,
        StatusCode::OK
    );
    let count = |v: &Value| v["total"].as_i64().unwrap();
    let (_, by_admin) = district.get("/api/audit?actor=admin").await;
    assert!(count(&by_admin) >= 4, "{by_admin}");
    assert!(
        by_admin["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["actorName"] == "admin")
    );
    let (_, sessions) = district.get("/api/audit?action=session.*").await;
    assert!(
        sessions["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"].as_str().unwrap().starts_with("session."))
    );
    let (_, premises) = district.get("/api/audit?object=premises").await;
    assert_eq!(count(&premises), 2, "{premises}");
    let one = &premises["items"][0]["objectId"];
    let (_, exact) = district
        .get(&format!(
            "/api/audit?object=premises:{}",
            one.as_str().unwrap()
        ))
        .await;
    assert_eq!(count(&exact), 1, "{exact}");
    let first_at = all[0]["at"].as_str().unwrap();
    let (_, before) = district
        .get(&format!("/api/audit?to={}", first_at.replace('+', "%2B")))
        .await;
    assert_eq!(count(&before), 0, "{before}");
    let (_, queries) = district.get("/api/audit?action=audit.query").await;
    assert!(count(&queries) >= 6, "{queries}");

    let (status, body) = district.get("/api/audit?action=incident.burn").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_query");
    let (status, body) = district.get("/api/audit?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = district
        .get("/api/audit?from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    server.stop().await;
    db.drop_now().await;
}

/// Runs `dispatch audit-verify --config FILE` on `db`; returns the exit code and stdout.
fn audit_verify(db: &TestDb, dir: &tempfile::TempDir) -> (i32, String) {
    let url = dir.path().join("db.url");
    std::fs::write(&url, &db.url).unwrap();
    let config = dir.path().join("dispatch.toml");
    std::fs::write(&config, format!("[database]\nurl_file = {url:?}\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["audit-verify", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn audit_verify_passes_on_a_real_chain_and_names_the_seq_changed_behind_the_triggers_back() {
    let (db, dir, server, mut admin) = setup().await;
    create_premises(&mut admin, "zhaitang", "斋堂镇餐馆").await;
    create_premises(&mut admin, "qingshui", "清水镇餐馆").await;
    create_user(&mut admin, "zt-op", "operator", Some(&["zhaitang"])).await;
    server.stop().await;
    let pool = db.pool().await;
    let last: String = sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (code, out) = audit_verify(&db, &dir);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.trim(),
        format!("audit chain OK: 4 entries, last hash {last}")
    );

    // The trigger refuses changes, removal and truncation.
    for sql in [
        "UPDATE audit_log SET details = '{}' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 4",
        "TRUNCATE audit_log",
    ] {
        let e = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    // As the database owner, with the trigger off for a moment, a record is changed.
    sqlx::raw_sql(
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete; \
         UPDATE audit_log SET details = jsonb_set(details, '{name}', '\"改过的餐馆\"') WHERE seq = 3; \
         ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_or_delete;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (code, out) = audit_verify(&db, &dir);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("BROKEN at seq 3: hash mismatch"),
        "the report names the changed row: {out}"
    );
    assert!(out.contains("2 entries before it are intact"), "{out}");
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn transitions_through_two_servers_at_once_keep_one_linear_chain() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let c = config(&db, &dir);
    let one = Server::start(c.clone()).await;
    let two = Server::start(c).await;
    let mut admin = one.client();
    assert_eq!(admin.login("admin", ADMIN_PASSWORD).await.0, StatusCode::OK);
    create_user(&mut admin, "op-1", "operator", None).await;
    create_user(&mut admin, "op-2", "operator", None).await;
    let mut a = one.client();
    let mut b = two.client();
    assert_eq!(a.login("op-1", USER_PASSWORD).await.0, StatusCode::OK);
    assert_eq!(b.login("op-2", USER_PASSWORD).await.0, StatusCode::OK);
    const N: usize = 12;
    let mut ids = Vec::new();
    for i in 0..2 * N {
        let (status, body) = a
            .post(
                "/api/incidents",
                json!({"source": "manual", "townId": "zhaitang",
                       "address": format!("北京市门头沟区并发路{i}号"), "kind": "complaint"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    // each server takes half the incidents through three steps, both at the same time
    async fn work(client: &mut Client, ids: &[String]) {
        for to in ["triaged", "dispatched", "acknowledged"] {
            for id in ids {
                let (status, body) = client
                    .post(
                        &format!("/api/incidents/{id}/transition"),
                        json!({ "to": to }),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }
    }
    tokio::join!(work(&mut a, &ids[..N]), work(&mut b, &ids[N..]));
    let pool = db.pool().await;
    let transitions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'incident.transition'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(transitions, 3 * 2 * N as i64);
    let by_server: Vec<(String, i64)> = sqlx::query_as(
        "SELECT actor_name, count(*) FROM audit_log WHERE action = 'incident.transition' \
         GROUP BY actor_name ORDER BY actor_name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        by_server,
        vec![("op-1".into(), 3 * N as i64), ("op-2".into(), 3 * N as i64)]
    );
    // the two servers' appends really interleaved
    let order: Vec<String> = sqlx::query_scalar(
        "SELECT actor_name FROM audit_log WHERE action = 'incident.transition' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches > 1, "{order:?}");
    match verify::run(&pool).await.unwrap() {
        Outcome::Intact { count, .. } => {
            let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(count, rows);
        }
        broken => panic!("{}", broken.report()),
    }
    pool.close().await;
    one.stop().await;
    two.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn an_incident_opened_by_an_edge_report_is_recorded_with_the_edge_as_actor_once() {
    use dispatch::escalation::EscalationConfig;
    use dispatch::incident::policy::IncidentsConfig;
    use dispatch::intake::{self, EdgeReport};
    let (db, _dir, server, mut admin) = setup().await;
    let premises = kitchen(&db, &mut admin).await;
    let pool = db.pool().await;
    sqlx::query("INSERT INTO edges (id, premises_id) VALUES ('zt-edge-1', $1::uuid)")
        .bind(&premises)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO cameras (id, premises_id, name, source, edge_id, main_stream) \
         VALUES ('zt-edge-cam', $1::uuid, '后厨', 'edge', 'zt-edge-1', 'main')",
    )
    .bind(&premises)
    .execute(&pool)
    .await
    .unwrap();
    let event = uuid::Uuid::now_v7();
    let payload = common::edge::Detection {
        event_id: event,
        episode_id: uuid::Uuid::now_v7(),
        phase: "start",
        edge: "zt-edge-1",
        camera: "zt-edge-cam",
        kind: "rodent",
        at: chrono::Utc::now(),
        exercise: None,
    }
    .json();
    let report: EdgeReport = intake::edge::parse("bl/v1/edge/zt-edge-1/events", &payload).unwrap();
    // the same event twice (a resend): one incident, one record
    for _ in 0..2 {
        intake::record(
            &pool,
            &IncidentsConfig::default(),
            &EscalationConfig::default(),
            &dispatch::clocks::ClocksConfig::default(),
            &report,
        )
        .await
        .unwrap()
        .unwrap();
    }
    let rows: Vec<(String, String, Option<String>, Value)> = sqlx::query_as(
        "SELECT actor_kind, actor_name, town_id, details FROM audit_log \
         WHERE action = 'incident.create' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![(
            "service".into(),
            "edge:zt-edge-1".into(),
            Some("zhaitang".into()),
            json!({"eventId": event, "cameraId": "zt-edge-cam"})
        )]
    );
    assert!(matches!(
        verify::run(&pool).await.unwrap(),
        Outcome::Intact { .. }
    ));
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
