//! The registry through the API: towns imported from the shared file, premises lists filtered by
//! scope, details re-checked, CSV import all-or-nothing, and the demo data.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const CSV_HEADER: &str =
    "name,licence_no,kind,address,lat,lon,town,grid,risk_grade,person_in_charge,phone\n";

async fn premises_count(db: &TestDb) -> i64 {
    let pool = db.pool().await;
    let n = sqlx::query_scalar("SELECT count(*) FROM premises")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

#[tokio::test]
async fn the_thirteen_towns_are_imported_with_their_names_and_a_restart_adds_none() {
    let (db, dir, server, mut admin) = setup().await;
    let (status, towns) = admin.get("/api/towns").await;
    assert_eq!(status, StatusCode::OK);
    let towns = towns.as_array().unwrap();
    assert_eq!(towns.len(), 13);
    let name = |id: &str| {
        towns
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["nameZh"].clone())
    };
    assert_eq!(name("zhaitang"), Some(Value::from("斋堂镇")));
    assert_eq!(name("dayu"), Some(Value::from("大峪街道")));
    assert_eq!(name("qingshui"), Some(Value::from("清水镇")));
    let streets = towns.iter().filter(|t| t["kind"] == "street").count();
    assert_eq!(streets, 4);
    server.stop().await;
    let server = Server::start(config(&db, &dir)).await;
    let mut admin = server.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        admin.get("/api/towns").await.1.as_array().unwrap().len(),
        13
    );
    let pool = db.pool().await;
    let regions: i64 = sqlx::query_scalar("SELECT count(*) FROM regions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(regions, 14, "the district and 13 towns, once");
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_town_officer_lists_only_own_premises_and_gets_403_for_another_towns_detail() {
    let (db, _dir, server, mut admin) = setup().await;
    let (_, own) = create_premises(&mut admin, "zhaitang", "斋堂镇中心小学食堂").await;
    let (_, other) = create_premises(&mut admin, "qingshui", "清水镇中心小学食堂").await;
    create_user(
        &mut admin,
        "officer.zhaitang",
        "townOfficer",
        Some(&["zhaitang"]),
    )
    .await;
    let mut officer = server.client();
    officer.login("officer.zhaitang", USER_PASSWORD).await;

    let (_, page) = officer.get("/api/premises").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], own["id"]);
    let (_, page) = officer.get("/api/premises?town=qingshui").await;
    assert_eq!(page["total"], 0, "a town filter cannot widen the scope");
    let (_, page) = admin.get("/api/premises").await;
    assert_eq!(page["total"], 2, "the district admin sees both");

    let (status, _) = officer
        .get(&format!("/api/premises/{}", own["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = officer
        .get(&format!("/api/premises/{}", other["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "out_of_scope");
    let (status, _) = officer
        .get(&format!("/api/premises/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = officer.get("/api/premises/not-a-uuid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, towns) = officer.get("/api/towns").await;
    assert_eq!(towns.as_array().unwrap().len(), 1);
    assert_eq!(towns[0]["id"], "zhaitang");
    let (status, _) = create_premises(&mut officer, "qingshui", "越权餐馆").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn premises_are_filtered_by_kind_and_text_and_paged() {
    let (db, _dir, server, mut admin) = setup().await;
    for name in ["斋堂镇中心小学食堂", "斋堂镇中学食堂", "灵水村农家院"] {
        create_premises(&mut admin, "zhaitang", name).await;
    }
    let (_, page) = admin.get("/api/premises?q=%E9%A3%9F%E5%A0%82").await; // q=食堂
    assert_eq!(page["total"], 2);
    let (_, page) = admin.get("/api/premises?perPage=2&page=2").await;
    assert_eq!(
        (
            page["total"].clone(),
            page["items"].as_array().unwrap().len()
        ),
        (Value::from(3), 1)
    );
    let (_, page) = admin.get("/api/premises?kind=pharmacy").await;
    assert_eq!(page["total"], 0);
    let (status, body) = admin.get("/api/premises?kind=bakery").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bakery")
    );
    let (status, body) = admin.get("/api/premises?colour=red").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &Value::from("invalid_query"))
    );
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_premises_with_a_bad_field_is_refused_naming_the_field_and_a_duplicate_licence_is_409() {
    let (db, _dir, server, mut admin) = setup().await;
    let mut body = premises_body("zhaitang", "斋堂镇中心小学食堂");
    body["riskGrade"] = "E".into();
    let (status, answer) = admin.post("/api/premises", body.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // the JSON field's name, in the message and in `field` for the form to show it beside
    assert_eq!(answer["error"]["field"], "riskGrade", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("riskGrade"),
        "{answer}"
    );
    body["riskGrade"] = "A".into();
    assert_eq!(
        admin.post("/api/premises", body.clone()).await.0,
        StatusCode::CREATED
    );
    let (status, answer) = admin.post("/api/premises", body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    server.stop().await;
    db.drop_now().await;
}

async fn import(client: &mut Client, csv: String) -> (StatusCode, Value) {
    client
        .send(
            Method::POST,
            "/api/premises/import",
            Some(("text/csv", csv)),
        )
        .await
}

#[tokio::test]
async fn a_csv_import_adds_every_line_in_one_go() {
    let (db, _dir, server, mut admin) = setup().await;
    let csv = format!(
        "{CSV_HEADER}斋堂镇中心小学食堂,JY31101090010011,schoolCanteen,北京市门头沟区斋堂镇斋堂村1号,39.972,115.690,zhaitang,,B,王芳,13800000001\n\
         \"金象大药房（大峪店）\",京CB1090011,pharmacy,\"北京市门头沟区大峪街道新桥大街8号, 底商\",,,dayu,,A,李强,010-69841234\n"
    );
    let (status, body) = import(&mut admin, csv).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["imported"], 2);
    let (_, page) = admin.get("/api/premises?town=dayu").await;
    assert_eq!(page["items"][0]["name"], "金象大药房（大峪店）");
    assert_eq!(
        page["items"][0]["address"],
        "北京市门头沟区大峪街道新桥大街8号, 底商"
    );
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_csv_import_with_one_bad_line_names_line_and_column_and_changes_nothing() {
    let (db, _dir, server, mut admin) = setup().await;
    create_premises(&mut admin, "zhaitang", "已有餐馆").await;
    let before = premises_count(&db).await;
    let csv = format!(
        "{CSV_HEADER}斋堂镇中心小学食堂,JY31101090010011,schoolCanteen,斋堂村1号,,,zhaitang,,B,王芳,13800000001\n\
         清水镇中学食堂,JY31101090010012,schoolCanteen,清水村2号,north,,qingshui,,B,李强,13800000002\n\
         雁翅村农家院,JY21101090010013,restaurant,雁翅村3号,,,yanchi,,B,张伟,13800000003\n"
    );
    let (status, body) = import(&mut admin, csv).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_csv");
    let details = body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{body}");
    assert_eq!(
        (details[0]["line"].clone(), details[0]["column"].clone()),
        (Value::from(3), Value::from("lat"))
    );
    assert_eq!(premises_count(&db).await, before);

    // a line that only the database can judge (unknown town, grid of another town) is refused too
    let csv = format!(
        "{CSV_HEADER}好餐馆,JY21101090010021,restaurant,1号,,,zhaitang,,B,王芳,13800000001\n\
         坏餐馆,JY21101090010022,restaurant,2号,,,atlantis,,B,王芳,13800000001\n"
    );
    let (status, body) = import(&mut admin, csv).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let details = body["error"]["details"].as_array().unwrap();
    assert_eq!(
        (details[0]["line"].clone(), details[0]["column"].clone()),
        (Value::from(3), Value::from("town"))
    );
    assert_eq!(premises_count(&db).await, before);
    let (status, _) = admin
        .send(
            Method::POST,
            "/api/premises/import",
            Some(("application/json", "{}".into())),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn demo_data_fills_all_thirteen_towns_with_premises_teams_on_duty_and_users_of_every_role() {
    let (db, _dir, server, mut admin) = setup_with(|c| c.demo_data = true).await;
    let (_, page) = admin.get("/api/premises?perPage=500").await;
    let items = page["items"].as_array().unwrap();
    let (_, towns) = admin.get("/api/towns").await;
    for town in towns.as_array().unwrap() {
        let here: Vec<&Value> = items.iter().filter(|p| p["townId"] == town["id"]).collect();
        assert!(
            here.len() >= 10,
            "{} has {} premises",
            town["id"],
            here.len()
        );
        for kind in ["schoolCanteen", "restaurant", "centralKitchen", "pharmacy"] {
            assert!(
                here.iter().any(|p| p["kind"] == kind),
                "{} has no {kind}",
                town["id"]
            );
        }
    }
    assert!(items.iter().any(|p| p["name"] == "斋堂镇中心小学食堂"));
    assert!(items.iter().all(|p| {
        let l = p["licenceNo"].as_str().unwrap();
        l.starts_with("JY") && l[2..].starts_with(['2', '3']) && l[3..].starts_with("110109")
            || l.starts_with("京")
    }));
    let (_, teams) = admin.get("/api/teams").await;
    for town in towns.as_array().unwrap() {
        let team_list = teams.as_array().unwrap();
        let here: Vec<&Value> = team_list
            .iter()
            .filter(|t| t["townId"] == town["id"])
            .collect();
        assert!((1..=2).contains(&here.len()), "{}", town["id"]);
        let on_duty = here.iter().filter(|t| t["onDuty"] == true).count();
        assert_eq!(
            on_duty, 1,
            "exactly one team of {} is on duty now",
            town["id"]
        );
    }
    let (_, cameras) = admin.get("/api/cameras?town=zhaitang").await;
    assert!(
        cameras
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["talk"] == true && c["source"] == "edge")
    );
    let (_, users) = admin.get("/api/users").await;
    for role in dispatch::auth::Role::ALL {
        assert!(
            users
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["role"] == role.as_str()),
            "no {}",
            role.as_str()
        );
    }
    server.stop().await;
    // a second start with demo_data adds nothing
    let before = premises_count(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&db, &dir);
    c.demo_data = true;
    let server = Server::start(c).await;
    assert_eq!(server.client().get("/healthz").await.0, StatusCode::OK);
    server.stop().await;
    assert_eq!(premises_count(&db).await, before);
    db.drop_now().await;
}
