//! Issue 8's rodent drill, every part real: camsim shows a restaurant kitchen in 大峪街道 on an
//! ordinary night, an `edge-agent` process enrolled with a one-time code watches it, and dispatch
//! (PostgreSQL, mosquitto) runs the shipped `dayu-restaurant-rodent` scenario. Its scene inject
//! stages the exercise on the box through the retained EdgeConfig, has camsim play the rodent
//! scene once the box confirmed, and the box's **real** rodent detector raises the drill's
//! incident: marked with the run, routed to Dayu's team, never among the real ones. After ENDEX
//! the staging is cleared, and a rodent on the same camera is real again.

#[path = "../../../dispatch/tests/common/mod.rs"]
mod common;
mod edge_box;

use bl_test_support::broker::PrivateBroker;
use common::{ADMIN_PASSWORD, Client, Server, TestDb, USER_PASSWORD, create_premises, create_user};
use edge_box::{Agent, enrol, http, register, register_camera, text, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

const SCENARIO: &str = "dayu-restaurant-rodent";

fn scenario(file: &str) -> camsim::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../camsim/scenarios")
        .join(file);
    camsim::Scenario::load(&path).unwrap()
}

/// camsim serving `camera` with the quiet night kitchen, and its control endpoint that can play
/// the night kitchen with rodents; returns the server and the endpoint's URL.
fn restaurant_camera(camera: &str) -> (camsim::Server, String) {
    let mut server = camsim::serve(camsim::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![camsim::CameraConfig::new(
            camera,
            scenario("kitchen-night-quiet.toml"),
        )],
    })
    .unwrap();
    let control = server
        .start_control(
            "127.0.0.1:0".parse().unwrap(),
            vec![scenario("kitchen-night.toml")],
        )
        .unwrap();
    (server, control)
}

async fn login(server: &Server, user: &str) -> Client {
    let mut c = server.client();
    let (status, body) = c.login(user, USER_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    c
}

/// The run's scene inject as the run page shows it.
async fn scene_inject(c: &mut Client, run: &str) -> Value {
    let (status, v) = c.get(&format!("/api/drills/runs/{run}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["injects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "rodent-on-camera")
        .cloned()
        .expect("the scene inject")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dayu_rodent_drill_plays_a_scene_that_the_real_detector_raises_as_the_runs_incident() {
    let work = tempfile::tempdir().unwrap();
    let bin = edge_box::agent_binary(work.path());
    let broker = PrivateBroker::start();
    let db = TestDb::new().await;
    let pool = db.pool().await;
    let (edge, camera) = ("dy-chuanwei-box", "dy-chuanwei-kitchen");
    let (kitchen, camsim_control) = restaurant_camera(camera);

    let mut c = edge_box::config(&db, &work);
    c.enrolment = Some(edge_box::enrolment_config(&broker));
    c.escalation.poll_interval_ms = 50;
    c.mqtt = Some(edge_box::mqtt_config(&broker, "dispatch-1", "dispatch"));
    c.drills.camsim_url = Some(camsim_control.clone());
    c.drills.stage_timeout_secs = 60;
    let server = Server::start(c).await;

    // The registry: a restaurant in 大峪街道, its box and camera, the night team, the drill's people.
    let mut admin = server.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let (status, premises) = create_premises(&mut admin, "dayu", "大峪街道新桥大街川味小馆").await;
    assert_eq!(status, StatusCode::CREATED, "{premises}");
    let premises = premises["id"].as_str().unwrap().to_owned();
    let code = register(&mut admin, edge, &premises).await;
    register_camera(&pool, &premises, edge, camera).await;
    let team = common::team_on_duty(&pool, "dayu", "大峪街道夜班").await;
    create_user(&mut admin, "dy-drill", "drillCoordinator", Some(&["dayu"])).await;

    // The box, enrolled for real, its rodent detector on, reporting its state every second.
    let box_dir = work.path().join("box");
    let out = enrol(&bin, &http(server.addr), edge, &code, &box_dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let url = kitchen.url(camera, camsim::Stream::Sub);
    let head = format!("{}state_interval_secs = 1\n", text(&out.stdout));
    let cameras = format!("[[camera]]\nid = \"{camera}\"\nurl = \"{url}\"\nrodent = true\n");
    let _agent = Agent::start(&bin, &box_dir, &head, &cameras);
    wait_until(
        &pool,
        "SELECT count(*) FROM edge_status WHERE online",
        1,
        Duration::from_secs(60),
        "the box reported its state",
    )
    .await;
    // Dispatch plays the scene only to a camera the box reports online; waiting here keeps the
    // scene's timing below off a slow camera start on a loaded machine.
    wait_until(
        &pool,
        r#"SELECT count(*) FROM edge_status WHERE online AND state -> 'cameras' @> '[{"online": true}]'"#,
        1,
        Duration::from_secs(120),
        "the box gets the camera's frames",
    )
    .await;

    // STARTEX.
    let mut coordinator = login(&server, "dy-drill").await;
    let (status, run) = coordinator
        .post(
            &format!("/api/drills/scenarios/{SCENARIO}/runs"),
            json!({ "places": { "restaurant": premises } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();
    let exercise = run["exercise"].as_str().unwrap().to_owned();

    // The box confirms the staging, camsim plays the rodents, the real detector raises the drill's
    // incident: the first rodent runs from the scene's 5th to its 14th second.
    wait_until(
        &pool,
        "SELECT count(*) FROM incidents",
        1,
        Duration::from_secs(120),
        "the played rodent became an incident",
    )
    .await;
    let (id, kind, town, routed, marked): (Uuid, String, String, Option<Uuid>, Option<String>) =
        sqlx::query_as("SELECT id, kind, town_id, routed_team_id, exercise FROM incidents")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((kind.as_str(), town.as_str()), ("rodent", "dayu"));
    assert_eq!(
        marked.as_deref(),
        Some(exercise.as_str()),
        "the drill's incident"
    );
    assert_eq!(routed, Some(team), "routed to Dayu's on-duty team");
    let (drill_events, real_events): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE exercise = $1), count(*) FILTER (WHERE exercise IS NULL) \
         FROM edge_events WHERE type = 'detection'",
    )
    .bind(&exercise)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        drill_events >= 1,
        "the box marked its detections with the run"
    );
    assert_eq!(real_events, 0, "no detection of the scene was real");
    let (status, list) = admin.get("/api/incidents").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert!(
        !list.to_string().contains(&id.to_string()),
        "the drill's incident is not among the real ones: {list}"
    );

    // The run shows the scene played and judges its expectations on that incident.
    let start = Instant::now();
    let inject = loop {
        let inject = scene_inject(&mut coordinator, &run_id).await;
        if inject["incidentId"] == json!(id.to_string()) {
            break inject;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not linked: {inject}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(inject["type"], "scene");
    assert_eq!(inject["outcome"], "opened");
    let shown = inject["text"].as_str().unwrap();
    assert!(
        shown.contains("已在摄像头播放") && shown.contains(camera),
        "{shown}"
    );

    // ENDEX: the staging leaves the box's config and the box applies it.
    let (status, ended) = coordinator
        .post(
            &format!("/api/drills/runs/{run_id}/control"),
            json!({ "action": "end" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    wait_until(
        &pool,
        "SELECT count(*) FROM drill_stagings WHERE state = 'cleared'",
        1,
        Duration::from_secs(30),
        "the staging was cleared",
    )
    .await;
    wait_until(
        &pool,
        "SELECT count(*) FROM edge_status e JOIN edge_configs c USING (edge_id) \
         WHERE c.published = c.revision AND (e.state ->> 'configRevision')::bigint = c.revision",
        1,
        Duration::from_secs(30),
        "the box applied the config without the staging",
    )
    .await;

    // A rodent on the same camera now is real (once the drill episode's cooldown has passed).
    let played = reqwest::Client::new()
        .post(format!("{camsim_control}/cameras/{camera}/scene"))
        .json(&json!({ "scene": "kitchen-night", "secs": 300 }))
        .send()
        .await
        .unwrap();
    assert_eq!(played.status(), StatusCode::OK);
    wait_until(
        &pool,
        "SELECT count(*) FROM incidents WHERE exercise IS NULL",
        1,
        Duration::from_secs(200),
        "a rodent after ENDEX became a real incident",
    )
    .await;
    let (real_kind, real_premises): (String, Uuid) =
        sqlx::query_as("SELECT kind, premises_id FROM incidents WHERE exercise IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(real_kind, "rodent");
    assert_eq!(real_premises.to_string(), premises);
    let drill_incidents: i64 =
        sqlx::query_scalar("SELECT count(*) FROM incidents WHERE exercise IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(drill_incidents, 1, "the real rodent did not join the drill");

    server.stop().await;
    pool.close().await;
    db.drop_now().await;
}
