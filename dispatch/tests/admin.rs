//! The admin screens' API against the real server and PostgreSQL: cameras with write-only
//! credentials, user changes, teams and rosters that route the next incident, the escalation
//! policies, and errors that name the field a form shows them next to.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TOWN: &str = "zhaitang";
const SECRET: &str = "cam-pass-Zx81";

fn pull_camera(id: &str, premises: &str) -> Value {
    json!({"id": id, "premisesId": premises, "name": "营业厅", "source": "pull",
           "mainStream": "rtsp://192.0.2.10/Streaming/Channels/101",
           "subStream": "rtsp://192.0.2.10/Streaming/Channels/102",
           "credentials": {"username": "viewer", "password": SECRET}})
}

async fn stored_credentials(pool: &sqlx::PgPool, id: &str) -> (Option<String>, Option<String>) {
    sqlx::query_as("SELECT pull_username, pull_password FROM cameras WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_camera_is_created_changed_and_deleted_and_its_credentials_are_never_returned() {
    let (db, _dir, server, mut admin) = setup().await;
    let pool = db.pool().await;
    let (_, premises) = create_premises(&mut admin, TOWN, "斋堂镇大药房").await;
    let premises = premises["id"].as_str().unwrap();

    let (status, cam) = admin
        .post("/api/cameras", pull_camera("zt-pharm-c1", premises))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cam}");
    assert_eq!(cam["hasCredentials"], true);
    assert_eq!(cam["townId"], TOWN);
    assert!(!cam.to_string().contains(SECRET), "{cam}");
    let (_, list) = admin
        .get(&format!("/api/cameras?premises={premises}"))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(SECRET) && !list.to_string().contains("viewer"));
    assert_eq!(
        stored_credentials(&pool, "zt-pharm-c1").await,
        (Some("viewer".into()), Some(SECRET.into()))
    );

    // a change without credentials keeps them; empty ones clear them
    let mut change = pull_camera("zt-pharm-c1", premises);
    change.as_object_mut().unwrap().remove("credentials");
    change["name"] = json!("收银台");
    change["talk"] = json!(true);
    let (status, cam) = admin.put("/api/cameras/zt-pharm-c1", change.clone()).await;
    assert_eq!(status, StatusCode::OK, "{cam}");
    assert_eq!(
        (cam["name"].as_str(), cam["talk"].as_bool()),
        (Some("收银台"), Some(true))
    );
    assert_eq!(
        stored_credentials(&pool, "zt-pharm-c1").await.1.as_deref(),
        Some(SECRET)
    );
    change["credentials"] = json!({"username": "", "password": ""});
    let (_, cam) = admin.put("/api/cameras/zt-pharm-c1", change).await;
    assert_eq!(cam["hasCredentials"], false);
    assert_eq!(stored_credentials(&pool, "zt-pharm-c1").await, (None, None));

    // each write is audited, never with the password
    let (_, audit) = admin.get("/api/audit?object=camera:zt-pharm-c1").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["camera.update", "camera.update", "camera.create"]);
    assert_eq!(audit["items"][2]["details"]["credentials"], "set");
    assert_eq!(audit["items"][0]["details"]["credentials"], "cleared");
    assert!(!audit.to_string().contains(SECRET));

    let (status, _) = admin
        .send(Method::DELETE, "/api/cameras/zt-pharm-c1", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = admin
        .send(Method::DELETE, "/api/cameras/zt-pharm-c1", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn camera_errors_name_the_field_that_is_wrong() {
    let (db, _dir, server, mut admin) = setup().await;
    let (_, a) = create_premises(&mut admin, TOWN, "斋堂镇饭店甲").await;
    let (_, b) = create_premises(&mut admin, TOWN, "斋堂镇饭店乙").await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let (status, edge) = admin
        .post("/api/edges", json!({"id": "zt-box-b", "premisesId": b}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{edge}");

    let field_of = |answer: &Value| answer["error"]["field"].as_str().map(str::to_owned);
    let mut with_url = pull_camera("zt-a-c1", a);
    with_url["mainStream"] = json!("rtsp://admin:12345@192.0.2.10/101");
    let (status, answer) = admin.post("/api/cameras", with_url).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field_of(&answer).as_deref(), Some("mainStream"), "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("credentials")
    );
    assert!(
        !answer.to_string().contains("12345"),
        "the URL's password is not echoed"
    );

    let foreign_box = json!({"id": "zt-a-c1", "premisesId": a, "name": "后厨", "source": "edge",
                             "edgeId": "zt-box-b", "mainStream": "main"});
    let (status, answer) = admin.post("/api/cameras", foreign_box).await;
    assert_eq!(
        (status, field_of(&answer).as_deref()),
        (StatusCode::BAD_REQUEST, Some("edgeId")),
        "{answer}"
    );

    let nowhere = pull_camera("zt-a-c1", &uuid::Uuid::now_v7().to_string());
    let (status, answer) = admin.post("/api/cameras", nowhere).await;
    assert_eq!(
        (status, field_of(&answer).as_deref()),
        (StatusCode::BAD_REQUEST, Some("premisesId"))
    );

    let (status, _) = admin.post("/api/cameras", pull_camera("zt-a-c1", a)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, answer) = admin.post("/api/cameras", pull_camera("zt-a-c1", a)).await;
    assert_eq!(
        (status, field_of(&answer).as_deref()),
        (StatusCode::CONFLICT, Some("id")),
        "{answer}"
    );

    let mut renamed = pull_camera("zt-a-c2", a);
    renamed["source"] = json!("pull");
    let (status, answer) = admin.put("/api/cameras/zt-a-c1", renamed).await;
    assert_eq!(
        (status, field_of(&answer).as_deref()),
        (StatusCode::BAD_REQUEST, Some("id"))
    );
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn an_admin_changes_a_users_role_towns_team_and_phone_and_disabling_ends_their_sessions() {
    let (db, _dir, server, mut admin) = setup().await;
    let pool = db.pool().await;
    let zt_team = team_on_duty(&pool, TOWN, "斋堂镇全天组").await;
    let qs_team = team_on_duty(&pool, "qingshui", "清水镇全天组").await;
    let (status, user) = admin
        .post(
            "/api/users",
            json!({"username": "zt.wang", "displayName": "王伟", "role": "field", "scopeTowns": [TOWN],
                   "teamId": zt_team, "phone": "13800000009", "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(
        (user["phone"].as_str(), user["teamId"].as_str()),
        (Some("13800000009"), Some(zt_team.to_string().as_str()))
    );
    let id = user["id"].as_str().unwrap().to_owned();
    let mut wang = server.client();
    assert_eq!(wang.login("zt.wang", USER_PASSWORD).await.0, StatusCode::OK);

    // a team of a town outside the user's scope, a bad phone: named fields
    let change = |team: uuid::Uuid, phone: &str, disabled: bool| {
        json!({"displayName": "王伟", "role": "townOfficer", "scopeTowns": [TOWN, "qingshui"],
               "teamId": team, "phone": phone, "disabled": disabled})
    };
    let mut narrow = change(qs_team, "", false);
    narrow["scopeTowns"] = json!([TOWN]);
    let (status, answer) = admin.put(&format!("/api/users/{id}"), narrow).await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("teamId")),
        "{answer}"
    );
    let (status, answer) = admin
        .put(
            &format!("/api/users/{id}"),
            change(zt_team, "call me", false),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("phone"))
    );

    let (status, user) = admin
        .put(
            &format!("/api/users/{id}"),
            change(zt_team, "+86 10-6980 1234", false),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["role"], "townOfficer");
    assert_eq!(user["scopeTowns"], json!([TOWN, "qingshui"]));
    assert_eq!(
        wang.get("/api/session").await.0,
        StatusCode::OK,
        "a change keeps the session"
    );
    assert_eq!(
        wang.get("/api/session").await.1["user"]["role"],
        "townOfficer"
    );

    let (status, user) = admin
        .put(&format!("/api/users/{id}"), change(zt_team, "", true))
        .await;
    assert_eq!(
        (status, user["disabled"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    assert_eq!(wang.get("/api/session").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.client().login("zt.wang", USER_PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );

    // a new password, and the user is back
    let mut back = change(zt_team, "", false);
    back["password"] = json!("a-brand-new-password-7");
    assert_eq!(
        admin.put(&format!("/api/users/{id}"), back).await.0,
        StatusCode::OK
    );
    assert_eq!(
        server
            .client()
            .login("zt.wang", "a-brand-new-password-7")
            .await
            .0,
        StatusCode::OK
    );

    // an admin cannot lock themselves out
    let (_, me) = admin.get("/api/session").await;
    let me_id = me["user"]["id"].as_str().unwrap().to_owned();
    let (status, answer) = admin
        .put(
            &format!("/api/users/{me_id}"),
            json!({"displayName": "管理员", "role": "admin", "disabled": true}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("own_account"))
    );

    let (_, audit) = admin
        .get(&format!("/api/audit?object=user:{id}&action=user.*"))
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["user.update", "user.update", "user.update", "user.create"]
    );
    assert!(!audit.to_string().contains("a-brand-new-password-7"));
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_team_made_through_the_api_with_a_roster_gets_the_next_incident_of_its_town() {
    let (db, _dir, server, mut admin) = setup().await;
    let (status, team) = admin
        .post(
            "/api/teams",
            json!({"townId": TOWN, "name": "斋堂镇夜班", "phone": "010-69816000"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let id = team["id"].as_str().unwrap().to_owned();
    assert_eq!(team["onDuty"], false, "no shifts yet");
    let (status, answer) = admin
        .post("/api/teams", json!({"townId": TOWN, "name": "斋堂镇夜班"}))
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (StatusCode::CONFLICT, Some("name"))
    );

    let (status, answer) = admin
        .put(
            &format!("/api/teams/{id}/roster"),
            json!({"shifts": [{"weekdays": 127, "starts": "08:00:00", "ends": "20:00:00"},
                               {"weekdays": 0, "starts": "20:00:00", "ends": "08:00:00"}]}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("shifts[1].weekdays")),
        "{answer}"
    );

    let now = chrono::Utc::now();
    let roster = json!({
        "shifts": [{"weekdays": 127, "starts": "00:00:00", "ends": "00:00:00"}],
        "overrides": [{"startsAt": now + chrono::Duration::days(2), "endsAt": now + chrono::Duration::days(3), "reason": "春节值守"}],
    });
    let (status, team) = admin.put(&format!("/api/teams/{id}/roster"), roster).await;
    assert_eq!(status, StatusCode::OK, "{team}");
    assert_eq!(team["onDuty"], true);
    assert_eq!(team["shifts"].as_array().unwrap().len(), 1);
    assert_eq!(team["overrides"][0]["reason"], "春节值守");

    let (status, team) = admin
        .put(
            &format!("/api/teams/{id}"),
            json!({"name": "斋堂镇全天组", "phone": ""}),
        )
        .await;
    assert_eq!(
        (status, team["name"].as_str()),
        (StatusCode::OK, Some("斋堂镇全天组"))
    );

    create_user(&mut admin, "op.zt", "operator", None).await;
    let mut op = server.client();
    op.login("op.zt", USER_PASSWORD).await;
    let (status, incident) = op
        .post("/api/incidents", json!({"source": "manual", "townId": TOWN, "address": "北京市门头沟区斋堂镇1号", "kind": "rodent"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    assert_eq!(incident["routedTeamId"].as_str(), Some(id.as_str()));

    let (_, audit) = admin.get(&format!("/api/audit?object=team:{id}")).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["team.update", "team.roster", "team.create"]);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn the_escalation_policies_show_each_tier_and_the_schedule_it_makes() {
    let (db, _dir, server, mut admin) = setup().await;
    let (status, policies) = admin.get("/api/escalation/policies").await;
    assert_eq!(status, StatusCode::OK);
    let tiers: Vec<&str> = policies
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tier"].as_str().unwrap())
        .collect();
    assert_eq!(tiers, ["immediate", "deadline", "routine"]);
    let immediate = &policies[0];
    assert_eq!(immediate["source"], "config");
    assert_eq!(
        immediate["steps"][0],
        json!({"step": "notify", "target": "team"})
    );
    let schedule = immediate["schedule"].as_array().unwrap();
    assert_eq!(schedule.len(), 7);
    assert_eq!(
        schedule[1],
        json!({"afterSecs": 120, "target": "townOfficers"})
    );
    assert_eq!(policies[2]["schedule"], json!([]));
    server.stop().await;
    db.drop_now().await;
}

/// Opens an immediate-tier incident at a free address; returns (id, openedAt, pendingEscalation).
async fn rodent(op: &mut Client, n: u32) -> (String, chrono::DateTime<chrono::Utc>, Value) {
    let (status, i) = op
        .post("/api/incidents", json!({"source": "manual", "townId": TOWN,
                                      "address": format!("北京市门头沟区斋堂镇{n}号"), "kind": "rodent"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{i}");
    let id = i["id"].as_str().unwrap().to_owned();
    let (_, detail) = op.get(&format!("/api/incidents/{id}")).await;
    let opened = detail["openedAt"].as_str().unwrap().parse().unwrap();
    (id, opened, detail["pendingEscalation"].clone())
}

fn due_after(pending: &Value, opened: chrono::DateTime<chrono::Utc>) -> (String, i64) {
    let due: chrono::DateTime<chrono::Utc> = pending["dueAt"].as_str().unwrap().parse().unwrap();
    (
        pending["target"].as_str().unwrap().to_owned(),
        (due - opened).num_seconds(),
    )
}

#[tokio::test]
async fn a_changed_escalation_policy_runs_for_new_incidents_while_running_ones_keep_their_steps() {
    let (db, dir, server, mut admin) = setup().await;
    let pool = db.pool().await;
    team_on_duty(&pool, TOWN, "斋堂镇全天组").await;
    create_user(&mut admin, "op.esc", "operator", None).await;
    let mut op = server.client();
    op.login("op.esc", USER_PASSWORD).await;
    let (before, before_opened, pending) = rodent(&mut op, 1).await;
    assert_eq!(
        due_after(&pending, before_opened),
        ("townOfficers".into(), 120)
    );

    // a town admin may not; a repeat without a wait is named by its step
    create_user(&mut admin, "zt.admin", "admin", Some(&[TOWN])).await;
    let mut town_admin = server.client();
    town_admin.login("zt.admin", USER_PASSWORD).await;
    let quick = json!({"steps": [{"step": "notify", "target": "team"}, {"step": "wait", "secs": 30},
                                 {"step": "notify", "target": "districtSupervisors"}]});
    let (status, _) = town_admin
        .put("/api/escalation/policies/immediate", quick.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let looping = json!({"steps": [{"step": "notify", "target": "team"}, {"step": "repeat", "from_step": 0, "times": 1}]});
    let (status, answer) = admin
        .put("/api/escalation/policies/immediate", looping)
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("steps[1]")),
        "{answer}"
    );
    let (status, _) = admin
        .put("/api/escalation/policies/urgent", quick.clone())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, policy) = admin.put("/api/escalation/policies/immediate", quick).await;
    assert_eq!(status, StatusCode::OK, "{policy}");
    assert_eq!(policy["source"], "admin");
    assert_eq!(
        policy["schedule"],
        json!([{"afterSecs": 0, "target": "team"}, {"afterSecs": 30, "target": "districtSupervisors"}])
    );

    let (after, after_opened, pending) = rodent(&mut op, 2).await;
    assert_eq!(
        due_after(&pending, after_opened),
        ("districtSupervisors".into(), 30)
    );

    // fire everything due in the next ten minutes: the new incident's policy ends after its
    // second step, the earlier one goes on with the configured steps it started with
    let config = common::config(&db, &dir).escalation;
    let later = chrono::Utc::now() + chrono::Duration::seconds(600);
    while dispatch::escalation::store::fire_one(&pool, &config, later, "test")
        .await
        .unwrap()
    {}
    let (_, detail) = op.get(&format!("/api/incidents/{after}")).await;
    assert!(
        detail["pendingEscalation"].is_null(),
        "{}",
        detail["pendingEscalation"]
    );
    let targets: Vec<String> = sqlx::query_scalar(
        "SELECT action ->> 'target' FROM escalation_timers WHERE incident_id = $1::uuid AND state = 'fired' ORDER BY step",
    )
    .bind(&before)
    .fetch_all(&pool)
    .await
    .unwrap();
    // the configured policy: 0 team, 120 officers, 420 supervisors, then again from the first wait
    assert_eq!(
        targets,
        [
            "team",
            "townOfficers",
            "districtSupervisors",
            "townOfficers"
        ]
    );
    let (_, detail) = op.get(&format!("/api/incidents/{before}")).await;
    assert_eq!(
        due_after(&detail["pendingEscalation"], before_opened),
        ("districtSupervisors".into(), 840)
    );

    let (status, policy) = admin
        .send(Method::DELETE, "/api/escalation/policies/immediate", None)
        .await;
    assert_eq!(
        (status, policy["source"].as_str()),
        (StatusCode::OK, Some("config"))
    );
    let (_, audit) = admin.get("/api/audit?action=escalation.*").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["escalation.policyReset", "escalation.policySet"]);
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
