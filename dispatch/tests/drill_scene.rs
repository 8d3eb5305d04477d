//! Scene injects without what they need are skipped, saying why, and never stage anything: the
//! shipped Dayu rodent drill on a dispatch without `[drills] camsim_url`, and on one whose
//! restaurant has no camera an edge box watches. (The played scene itself: tests/e2e drill_rodent.)

mod common;

use common::{USER_PASSWORD, create_premises, create_user, setup_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Starts the Dayu drill on a fresh dispatch and waits for its scene inject to fire; returns it.
async fn fired_scene(camsim_url: Option<&str>) -> Value {
    let url = camsim_url.map(str::to_owned);
    let (db, _dir, server, mut admin) = setup_with(|c| {
        c.escalation.poll_interval_ms = 50;
        c.drills.camsim_url = url;
    })
    .await;
    let (status, premises) = create_premises(&mut admin, "dayu", "大峪街道滨河路小饭馆").await;
    assert_eq!(status, StatusCode::CREATED, "{premises}");
    create_user(&mut admin, "dy-drill", "drillCoordinator", Some(&["dayu"])).await;
    let mut coordinator = server.client();
    assert_eq!(
        coordinator.login("dy-drill", USER_PASSWORD).await.0,
        StatusCode::OK
    );
    let (status, run) = coordinator
        .post(
            "/api/drills/scenarios/dayu-restaurant-rodent/runs",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let start = Instant::now();
    let inject = loop {
        let (_, v) = coordinator
            .get(&format!("/api/drills/runs/{}", run["id"].as_str().unwrap()))
            .await;
        let inject = v["injects"][0].clone();
        if !inject["outcome"].is_null() {
            break inject;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "not fired: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let pool = db.pool().await;
    let configs: i64 = sqlx::query_scalar("SELECT count(*) FROM edge_configs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(configs, 0, "nothing was staged on any edge");
    pool.close().await;
    server.stop().await;
    inject
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scene_without_camsim_is_skipped_naming_the_missing_setting() {
    let inject = fired_scene(None).await;
    assert_eq!(inject["type"], "scene");
    assert_eq!(inject["outcome"], "skipped");
    let text = inject["text"].as_str().unwrap();
    assert!(
        text.contains("camsim_url") && text.contains("未播放"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scene_at_premises_without_an_edge_camera_is_skipped_saying_so() {
    let inject = fired_scene(Some("http://127.0.0.1:9")).await;
    assert_eq!(inject["outcome"], "skipped");
    let text = inject["text"].as_str().unwrap();
    assert!(text.contains("no camera watched by an edge box"), "{text}");
}
