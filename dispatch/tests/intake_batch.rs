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

/// The same reports about two premises, one at a time at the first and in batches at the second,
/// leave the same incident: counts, times, episodes, and a timeline with the same entries in order.
#[tokio::test]
async fn batches_leave_the_same_incident_and_timeline_as_one_report_at_a_time() {
    let (db, dir, server, _admin) = setup().await;
    let c = config(&db, &dir);
    let pool = db.pool().await;
    let run = &random_token()[..8];
    let sites: Vec<(String, String)> = (0..2)
        .map(|k| (format!("eq{k}-{run}"), format!("eqc{k}-{run}")))
        .collect();
    for (k, (edge, camera)) in sites.iter().enumerate() {
        register_edge(
            &pool,
            edge,
            camera,
            "restaurant",
            &format!("同样餐馆{k}"),
            None,
        )
        .await;
    }
    let (a, b, d) = (0, 1, 2); // episodes, made anew for each site (episode ids are global)
    let script = [
        (a, "start", 0),
        (a, "update", 1),
        (b, "start", 2), // joins the incident of a
        (a, "end", 3),
        (b, "update", 4),
        (d, "start", 5), // joins too; its update follows in the same batch
        (d, "update", 6),
        (b, "end", 7),
    ];
    let reports = |(edge, camera): &(String, String)| -> Vec<EdgeReport> {
        let episodes = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
        script
            .iter()
            .map(|(k, phase, minute)| detection(edge, camera, episodes[*k], phase, *minute))
            .collect()
    };
    for r in reports(&sites[0]) {
        edge::record(&pool, &c.incidents, &c.escalation, &c.clocks, &r)
            .await
            .unwrap()
            .unwrap();
    }
    for batch in reports(&sites[1]).chunks(3) {
        record_batch(&pool, &c.incidents, &c.escalation, &c.clocks, batch)
            .await
            .unwrap();
    }

    let mut seen = Vec::new();
    for (edge, camera) in &sites {
        let (id, count, opened, last): (Uuid, i32, chrono::DateTime<Utc>, chrono::DateTime<Utc>) =
            sqlx::query_as(
                "SELECT i.id, i.report_count, i.opened_at, i.last_report_at FROM incidents i \
                   JOIN cameras c ON c.premises_id = i.premises_id WHERE c.id = $1",
            )
            .bind(camera)
            .fetch_one(&pool)
            .await
            .unwrap();
        let timeline: Vec<(String, String)> = sqlx::query_as(
            "SELECT action, note FROM incident_timeline WHERE incident_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&pool)
        .await
        .unwrap();
        let timeline: Vec<(String, String)> = timeline
            .into_iter()
            .map(|(action, note)| (action, note.replace(camera, "CAM").replace(edge, "EDGE")))
            .collect();
        let episodes: Vec<bool> = sqlx::query_scalar(
            "SELECT ended_at IS NOT NULL FROM incident_episodes WHERE incident_id = $1 \
              ORDER BY started_at",
        )
        .bind(id)
        .fetch_all(&pool)
        .await
        .unwrap();
        let linked: i64 =
            sqlx::query_scalar("SELECT count(*) FROM incident_events WHERE incident_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
        // whole seconds: each report's `at` is made from its own `now()` and kept to the millisecond
        let span = ((last - opened).num_milliseconds() as f64 / 1000.0).round() as i64;
        seen.push((count, span, timeline, episodes, linked));
    }
    assert_eq!(seen[0].0, 3, "three episodes, one incident");
    assert_eq!(seen[0].3, [true, true, false]);
    assert_eq!(seen[0].4, script.len() as i64);
    assert_eq!(seen[0], seen[1]);

    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
