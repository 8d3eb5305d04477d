//! Detections become incidents end to end: an edge box publishes through the real broker (its own
//! account and ACL), dispatch stores each event once in the real PostgreSQL and, in the same
//! transaction, opens, deduplicates and routes the incident.

mod common;

use bl_test_support::stack::{Stack, random_token};
use chrono::{DateTime, Duration, TimeZone, Utc};
use common::edge::{self, Detection, camera_event, mqtt_config, register_edge};
use common::{Server, TestDb, USER_PASSWORD, config, create_user};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// A wall-clock time in Beijing on 2026-11-23.
fn cst(h: u32, m: u32) -> DateTime<Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 11, 23, h, m, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// Zhaitang's day (08-20) and night (20-08) teams and a Qingshui team on duty all day; returns
/// the Zhaitang night team's id.
async fn roster(pool: &PgPool) -> Uuid {
    let mut night = Uuid::nil();
    for (town, name, starts, ends) in [
        ("zhaitang", "斋堂镇白班", "08:00", "20:00"),
        ("zhaitang", "斋堂镇夜班", "20:00", "08:00"),
        ("qingshui", "清水镇值班组", "00:00", "00:00"),
    ] {
        let team = Uuid::now_v7();
        sqlx::query("INSERT INTO teams (id, town_id, name) VALUES ($1, $2, $3)")
            .bind(team)
            .bind(town)
            .bind(name)
            .execute(pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO roster_shifts (id, team_id, weekdays, starts, ends) VALUES ($1, $2, 127, $3::time, $4::time)",
        )
        .bind(Uuid::now_v7())
        .bind(team)
        .bind(starts)
        .bind(ends)
        .execute(pool)
        .await
        .unwrap();
        if name == "斋堂镇夜班" {
            night = team;
        }
    }
    night
}

type Row = (Uuid, String, String, Option<Uuid>, i32, Option<String>);

async fn incidents(pool: &PgPool) -> Vec<Row> {
    sqlx::query_as(
        "SELECT id, kind, tier, routed_team_id, report_count, exercise FROM incidents ORDER BY opened_at, kind",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

struct Edge {
    stack: Stack,
    db: TestDb,
    server: Server,
    pool: PgPool,
    edge: String,
    camera: String,
    client: rumqttc::AsyncClient,
    _dir: tempfile::TempDir,
}

/// dispatch consuming from the broker, a restaurant in 斋堂镇 (grid zt-01) with an edge box that is
/// connected, and Zhaitang's roster; returns the night team's id too.
async fn start() -> (Edge, Uuid) {
    start_with(|_| {}).await
}

async fn start_with(tweak: impl FnOnce(&mut dispatch::config::Config)) -> (Edge, Uuid) {
    let stack = Stack::from_env();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let run = random_token();
    let mut c = config(&db, &dir);
    c.mqtt = Some(mqtt_config(&stack, &run));
    tweak(&mut c);
    let server = Server::start(c).await;
    let pool = db.pool().await;
    sqlx::query("INSERT INTO grids (id, town_id, name) VALUES ('zt-01', 'zhaitang', '斋堂村网格')")
        .execute(&pool)
        .await
        .unwrap();
    let night = roster(&pool).await;
    let edge = format!("inc-{}", &run[..8]);
    let camera = format!("{edge}-cam1");
    register_edge(
        &pool,
        &edge,
        &camera,
        "restaurant",
        "斋堂镇爨底下农家院",
        Some("zt-01"),
    )
    .await;
    let client = edge::connect(&stack, &pool, &edge).await;
    let e = Edge {
        stack,
        db,
        server,
        pool,
        edge,
        camera,
        client,
        _dir: dir,
    };
    (e, night)
}

impl Edge {
    fn detection(
        &self,
        id: Uuid,
        episode: Uuid,
        phase: &'static str,
        at: DateTime<Utc>,
    ) -> Detection<'_> {
        Detection {
            event_id: id,
            episode_id: episode,
            phase,
            edge: &self.edge,
            camera: &self.camera,
            kind: "rodent",
            at,
            exercise: None,
        }
    }

    /// Publishes and waits until the last payload's event (`last`) is stored.
    async fn send(&self, payloads: Vec<Vec<u8>>, last: Uuid) {
        edge::publish(&self.client, &self.edge, payloads).await;
        edge::wait_for_event(&self.pool, last).await;
    }

    async fn stop(self) {
        let _ = &self.stack;
        self.server.stop().await;
        self.db.drop_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rodent_at_night_in_a_zhaitang_restaurant_becomes_one_incident_routed_to_zhaitangs_night_team()
 {
    let (e, night) = start().await;
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let ids: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    let marker = Uuid::now_v7();
    e.send(
        vec![
            e.detection(ids[0], a, "start", cst(22, 15)).json(),
            e.detection(ids[0], a, "start", cst(22, 15)).json(), // a resend after a lost PUBACK
            e.detection(ids[1], a, "update", cst(22, 15) + Duration::seconds(40))
                .json(),
            e.detection(ids[2], a, "end", cst(22, 16)).json(),
            // a new episode 24 minutes later, within the 30-minute cooldown
            e.detection(ids[3], b, "start", cst(22, 40)).json(),
            e.detection(ids[4], b, "end", cst(22, 45)).json(),
            // 35 minutes after the last report: a new case
            e.detection(ids[5], c, "start", cst(23, 20)).json(),
            Detection {
                kind: "noChefHat",
                ..e.detection(marker, Uuid::now_v7(), "start", cst(22, 50))
            }
            .json(),
        ],
        marker,
    )
    .await;

    let rows = incidents(&e.pool).await;
    let rodents: Vec<&Row> = rows.iter().filter(|r| r.1 == "rodent").collect();
    assert_eq!(rodents.len(), 2, "{rows:?}");
    let (first, second) = (rodents[0], rodents[1]);
    assert_eq!(
        (first.2.as_str(), first.3, first.4),
        ("immediate", Some(night), 2)
    );
    assert_eq!((second.3, second.4), (Some(night), 1));
    let hat = rows.iter().find(|r| r.1 == "noChefHat").unwrap();
    assert_eq!(hat.2, "deadline");

    // Every event of both episodes (and only once) is linked to the first incident.
    let linked: Vec<Uuid> = sqlx::query_scalar(
        "SELECT event_id FROM incident_events WHERE incident_id = $1 ORDER BY event_id",
    )
    .bind(first.0)
    .fetch_all(&e.pool)
    .await
    .unwrap();
    assert_eq!(linked, ids[..5].to_vec());

    // A Zhaitang officer sees it with its timeline; a Qingshui officer neither sees nor moves it.
    let mut admin = e.server.client();
    admin.login("admin", common::ADMIN_PASSWORD).await;
    create_user(&mut admin, "zt-officer", "townOfficer", Some(&["zhaitang"])).await;
    create_user(&mut admin, "qs-officer", "townOfficer", Some(&["qingshui"])).await;
    let mut zt = e.server.client();
    zt.login("zt-officer", USER_PASSWORD).await;
    let (status, d) = zt.get(&format!("/api/incidents/{}", first.0)).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["routedTeamName"], "斋堂镇夜班");
    assert_eq!(d["gridId"], "zt-01");
    assert_eq!(d["events"].as_array().unwrap().len(), 5);
    let actions: Vec<&str> = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["opened", "routed", "notified", "repeat"]);
    assert_eq!(d["timeline"][0]["actor"], format!("edge:{}", e.edge));
    let routed = d["timeline"][1]["note"].as_str().unwrap();
    assert!(routed.starts_with("routed to team 斋堂镇夜班"), "{routed}");
    // The immediate tier's first escalation step told the routed team at once.
    assert_eq!(d["timeline"][2]["note"], "notified team 斋堂镇夜班");
    assert_eq!(d["notifications"][0]["targetName"], "斋堂镇夜班");
    let (_, list) = zt.get("/api/incidents?kind=rodent").await;
    assert_eq!(list["total"], 2);

    let mut qs = e.server.client();
    qs.login("qs-officer", USER_PASSWORD).await;
    let (status, _) = qs.get(&format!("/api/incidents/{}", first.0)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = qs
        .post(
            &format!("/api/incidents/{}/transition", first.0),
            json!({"to": "triaged"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = qs.get("/api/incidents").await;
    assert_eq!(list["total"], 0);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exercise_detection_never_attaches_to_a_real_incident_and_an_offline_camera_opens_a_routine_one()
 {
    let (e, _) = start().await;
    let drill = "drill-2026-11";
    let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let exercise = |id, at| Detection {
        exercise: Some(drill),
        ..e.detection(id, Uuid::now_v7(), "start", at)
    };
    e.send(
        vec![
            e.detection(ids[0], Uuid::now_v7(), "start", cst(22, 15))
                .json(),
            exercise(ids[1], cst(22, 16)).json(),
            exercise(ids[2], cst(22, 20)).json(),
            camera_event(ids[3], &e.edge, &e.camera, "offline", cst(22, 30)),
            camera_event(ids[4], &e.edge, &e.camera, "online", cst(22, 35)),
        ],
        ids[4],
    )
    .await;

    let rows = incidents(&e.pool).await;
    let real: Vec<&Row> = rows
        .iter()
        .filter(|r| r.1 == "rodent" && r.5.is_none())
        .collect();
    let drills: Vec<&Row> = rows
        .iter()
        .filter(|r| r.5.as_deref() == Some(drill))
        .collect();
    assert_eq!((real.len(), real[0].4), (1, 1), "{rows:?}");
    assert_eq!((drills.len(), drills[0].4), (1, 2), "{rows:?}");
    let offline = rows.iter().find(|r| r.1 == "cameraOffline").unwrap();
    assert_eq!(offline.2, "routine");

    let mut admin = e.server.client();
    admin.login("admin", common::ADMIN_PASSWORD).await;
    let (_, list) = admin.get("/api/incidents").await;
    assert_eq!(list["total"], 2, "real incidents only: {list}");
    let (_, list) = admin.get(&format!("/api/incidents?exercise={drill}")).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["exercise"], drill);
    let (_, d) = admin.get(&format!("/api/incidents/{}", offline.0)).await;
    let last = d["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "cameraOnline", "{d}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rodent_detection_from_a_zhaitang_edge_escalates_to_the_town_officer_at_the_configured_second()
 {
    use dispatch::escalation::{Step, Target};
    let (e, night) = start_with(|c| {
        c.escalation.poll_interval_ms = 50;
        c.escalation.immediate = vec![
            Step::Notify {
                target: Target::Team,
            },
            Step::Wait { secs: 2 },
            Step::Notify {
                target: Target::TownOfficers,
            },
        ];
    })
    .await;
    let mut admin = e.server.client();
    admin.login("admin", common::ADMIN_PASSWORD).await;
    let officer = create_user(&mut admin, "zt-officer", "townOfficer", Some(&["zhaitang"])).await;
    let event = Uuid::now_v7();
    e.send(
        vec![
            e.detection(event, Uuid::now_v7(), "start", cst(22, 15))
                .json(),
        ],
        event,
    )
    .await;
    let stored = std::time::Instant::now();
    let rows = incidents(&e.pool).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let notified = |kind: &'static str| {
        let pool = e.pool.clone();
        async move {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT target_id, count(*) FROM notifications WHERE target_kind = $1 GROUP BY target_id",
            )
            .bind(kind)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(notified("team").await, [(night.to_string(), 1)]);
    assert_eq!(notified("user").await, []);
    while notified("user").await.is_empty() {
        assert!(
            stored.elapsed() < std::time::Duration::from_secs(6),
            "no escalation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        stored.elapsed() >= std::time::Duration::from_millis(1500),
        "{:?}",
        stored.elapsed()
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(notified("user").await, [(officer, 1)]);
    e.stop().await;
}
