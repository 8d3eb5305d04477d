//! The batched intake against the real PostgreSQL: a batch leaves the same rows as its reports
//! one at a time would — each event once, an episode's updates on its incident, the newest state —
//! and a repeated batch changes nothing.

mod common;

use bl_test_support::stack::random_token;
use chrono::{Duration, Utc};
use common::edge::{Detection, register_edge};
use common::{config, setup};
use dispatch::intake::batch::record_batch;
use dispatch::intake::{EdgeReport, Stored, edge};
use uuid::Uuid;

fn detection(edge: &str, camera: &str, episode: Uuid, phase: &str, minutes: i64) -> EdgeReport {
    let d = Detection {
        event_id: Uuid::now_v7(),
        episode_id: episode,
        phase,
        edge,
        camera,
        kind: "rodent",
        at: Utc::now() - Duration::minutes(10) + Duration::minutes(minutes),
        exercise: None,
    };
    edge::parse(&format!("bl/v1/edge/{edge}/events"), &d.json()).unwrap()
}

fn state(edge: &str, minutes: i64) -> EdgeReport {
    let at = Utc::now() - Duration::minutes(10) + Duration::minutes(minutes);
    let s = bl_proto::state::EdgeState::offline(bl_proto::EdgeId::new(edge).unwrap(), at);
    EdgeReport::State(s)
}

fn event_id(r: &EdgeReport) -> Uuid {
    match r {
        EdgeReport::Event(e) => e.event_id(),
        EdgeReport::State(_) => panic!("not an event"),
    }
}

#[tokio::test]
async fn a_batch_stores_each_event_once_links_updates_to_their_episode_and_a_repeat_changes_nothing()
 {
    let (db, dir, server, _admin) = setup().await;
    let c = config(&db, &dir);
    let pool = db.pool().await;
    let run = &random_token()[..8];
    let (edge, camera) = (format!("bb-{run}"), format!("bc-{run}"));
    register_edge(&pool, &edge, &camera, "restaurant", "批量餐馆", None).await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let record = |reports: Vec<EdgeReport>| {
        let (pool, c) = (pool.clone(), c.clone());
        async move {
            record_batch(&pool, &c.incidents, &c.escalation, &c.clocks, &reports)
                .await
                .unwrap()
        }
    };

    let first = record(vec![detection(&edge, &camera, a, "start", 0)]).await;
    assert!(matches!(first[..], [Ok(Stored::New)]));

    let update_b = detection(&edge, &camera, b, "update", 3);
    let batch = vec![
        detection(&edge, &camera, a, "update", 1), // an episode known before the batch
        detection(&edge, &camera, b, "start", 2),  // another episode: joins the open incident
        update_b.clone(),                          // of an episode started in this batch
        update_b,                                  // the same event again
        detection(&edge, &camera, a, "end", 4),
        detection(&edge, "no-such-camera", a, "update", 5),
        state(&edge, 1),
        state(&edge, 6),
    ];
    let verdicts = record(batch.clone()).await;
    let labels: Vec<&str> = verdicts
        .iter()
        .map(|v| match v {
            Ok(Stored::New) => "new",
            Ok(Stored::AlreadyKnown) => "known",
            Err(r) => r.reason(),
        })
        .collect();
    assert_eq!(
        labels,
        [
            "new",
            "new",
            "new",
            "known",
            "new",
            "unregistered",
            "known",
            "new"
        ]
    );

    let incidents: Vec<(Uuid, i32)> = sqlx::query_as("SELECT id, report_count FROM incidents")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(incidents.len(), 1, "one incident for both episodes");
    assert_eq!(incidents[0].1, 2, "episode b's start is a repeat");
    let linked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM incident_events WHERE incident_id = $1")
            .bind(incidents[0].0)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(linked, 5);
    let ended: Vec<(Uuid, bool)> = sqlx::query_as(
        "SELECT episode_id, ended_at IS NOT NULL FROM incident_episodes ORDER BY started_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(ended, [(a, true), (b, false)]);
    let (last, reported): (chrono::DateTime<Utc>, chrono::DateTime<Utc>) = sqlx::query_as(
        "SELECT i.last_report_at, s.reported_at FROM incidents i, edge_status s WHERE s.edge_id = $1",
    )
    .bind(&edge)
    .fetch_one(&pool)
    .await
    .unwrap();
    let end_at: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT at FROM edge_events WHERE event_id = $1")
            .bind(event_id(&batch[4]))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(last, end_at, "the incident's latest report is the end");
    assert!(reported > end_at, "the newer state was kept");

    // The broker delivers the whole batch again: no event or link is added (a state of the same
    // time is written again, as one at a time would).
    let counts = "SELECT (SELECT count(*) FROM edge_events) + 1000 * (SELECT count(*) FROM incident_events) \
                  + 1000000 * (SELECT count(*) FROM incident_timeline)";
    let before: i64 = sqlx::query_scalar(counts).fetch_one(&pool).await.unwrap();
    let again = record(batch).await;
    assert!(
        again[..6]
            .iter()
            .all(|v| matches!(v, Ok(Stored::AlreadyKnown) | Err(_))),
        "{again:?}"
    );
    let after: i64 = sqlx::query_scalar(counts).fetch_one(&pool).await.unwrap();
    assert_eq!(before, after);

    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
