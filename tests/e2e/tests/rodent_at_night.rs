//! Issue 5's end-to-end case, every part real: camsim serves the night kitchen over RTSP, an
//! `edge-agent` process enrolled with a one-time code watches it, its rodent reports travel through
//! a mosquitto set up like the dev stack's to TWO dispatch servers sharing one PostgreSQL database
//! (consuming through one shared subscription, as deployed, or both taking every report). The rodent at a restaurant in 斋堂镇 becomes one incident routed to
//! Zhaitang's on-duty team; nobody acknowledges, so the town officer is told at the configured
//! second; the acknowledgement then cancels the district step. Each step fires once across both
//! dispatches.

#[path = "../../../dispatch/tests/common/mod.rs"]
mod common;
mod edge_box;

use bl_e2e::night_kitchen;
use bl_test_support::broker::PrivateBroker;
use common::{ADMIN_PASSWORD, Client, Server, TestDb, USER_PASSWORD, create_premises, create_user};
use dispatch::escalation::{Step, Target};
use edge_box::{Agent, enrol, http, register, register_camera, text, wait_until};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The policy under test: the team at once, the town officers after `OFFICER_SECS`, the district
/// after as long again.
const OFFICER_SECS: u64 = 5;

fn policy() -> Vec<Step> {
    vec![
        Step::Notify {
            target: Target::Team,
        },
        Step::Wait { secs: OFFICER_SECS },
        Step::Notify {
            target: Target::TownOfficers,
        },
        Step::Wait { secs: OFFICER_SECS },
        Step::Notify {
            target: Target::DistrictSupervisors,
        },
    ]
}

async fn login(server: &Server, user: &str) -> Client {
    let mut c = server.client();
    let (status, body) = c.login(user, USER_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rodent_at_night_in_zhaitang_becomes_one_incident_that_escalates_once_until_acknowledged()
{
    // As deployed: the replicas share one subscription, so each report reaches one of them.
    rodent_at_night(["dispatch", "dispatch"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_every_report_reaching_both_dispatch_replicas_it_is_still_one_incident_and_each_step_once()
 {
    // The harshest redelivery: both replicas take every report at the same moment.
    rodent_at_night(["dispatch-a", "dispatch-b"]).await;
}

/// The whole story, with the two replicas' MQTT share groups.
async fn rodent_at_night(groups: [&str; 2]) {
    let work = tempfile::tempdir().unwrap();
    let bin = edge_box::agent_binary(work.path());
    let broker = PrivateBroker::start();
    let db = TestDb::new().await;
    let pool = db.pool().await;

    // Two dispatch replicas: one database, each its own client id.
    let mut c = edge_box::config(&db, &work);
    c.enrolment = Some(edge_box::enrolment_config(&broker));
    c.escalation.poll_interval_ms = 50;
    c.escalation.immediate = policy();
    let mut c1 = c.clone();
    c1.mqtt = Some(edge_box::mqtt_config(&broker, "dispatch-1", groups[0]));
    let mut c2 = c;
    c2.mqtt = Some(edge_box::mqtt_config(&broker, "dispatch-2", groups[1]));
    let one = Server::start(c1).await;
    let two = Server::start(c2).await;

    // The registry: a restaurant in 斋堂镇, its box and camera, the night team, the town's staff.
    let mut admin = one.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let (status, premises) = create_premises(&mut admin, "zhaitang", "斋堂镇灵水农家饭庄").await;
    assert_eq!(status, StatusCode::CREATED, "{premises}");
    let premises = premises["id"].as_str().unwrap().to_owned();
    let (edge, camera) = ("zt-lingshui-box", "zt-lingshui-kitchen");
    let code = register(&mut admin, edge, &premises).await;
    register_camera(&pool, &premises, edge, camera).await;
    let team = common::team_on_duty(&pool, "zhaitang", "斋堂镇夜班").await;
    create_user(&mut admin, "zt-officer", "townOfficer", Some(&["zhaitang"])).await;
    create_user(&mut admin, "zt-operator", "operator", Some(&["zhaitang"])).await;

    // The box: enrolled for real against the second replica, then started on the camera.
    let box_dir = work.path().join("box");
    let out = enrol(&bin, &http(two.addr), edge, &code, &box_dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let kitchen = night_kitchen(camera);
    let url = kitchen.url(camera, camsim::Stream::Sub);
    let cameras = format!("[[camera]]\nid = \"{camera}\"\nurl = \"{url}\"\nrodent = true\n");
    let _agent = Agent::start(&bin, &box_dir, &text(&out.stdout), &cameras);

    // camsim's first rodent runs from 5 s to 14 s, the second from 24 s: allow for both.
    wait_until(
        &pool,
        "SELECT count(*) FROM incidents",
        1,
        Duration::from_secs(60),
        "the rodent became an incident",
    )
    .await;
    let (id, kind, town, routed, opened_at): (
        Uuid,
        String,
        String,
        Option<Uuid>,
        chrono::DateTime<chrono::Utc>,
    ) = sqlx::query_as("SELECT id, kind, town_id, routed_team_id, opened_at FROM incidents")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((kind.as_str(), town.as_str()), ("rodent", "zhaitang"));
    assert_eq!(routed, Some(team), "routed to Zhaitang's on-duty team");

    // Nobody acknowledges: the town officer is told at the configured second.
    let officer_notes = format!(
        "SELECT count(*) FROM notifications WHERE incident_id = '{id}' AND reason LIKE 'townOfficers:%'"
    );
    wait_until(
        &pool,
        &officer_notes,
        1,
        Duration::from_secs(OFFICER_SECS + 5),
        "the town officer was notified",
    )
    .await;
    let after: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM created_at - $2)::float8 FROM notifications \
         WHERE incident_id = $1 AND reason LIKE 'townOfficers:%'",
    )
    .bind(id)
    .bind(opened_at)
    .fetch_one(&pool)
    .await
    .unwrap();
    let due = OFFICER_SECS as f64;
    assert!(
        (due - 1.0..=due + 1.0).contains(&after),
        "the town officer was told {after:.2} s after the opening, not at {due} s"
    );

    // The officer's operator acknowledges (on the other replica): the district step never fires.
    let mut op = login(&one, "zt-operator").await;
    for to in ["triaged", "dispatched", "acknowledged"] {
        let (status, body) = op
            .post(
                &format!("/api/incidents/{id}/transition"),
                json!({ "to": to }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{to}: {body}");
    }
    let ack_at = Instant::now();
    // Past the district step's due second, with the agent still reporting the episode.
    tokio::time::sleep(Duration::from_secs(OFFICER_SECS + 2).saturating_sub(ack_at.elapsed()))
        .await;

    let incidents: i64 = sqlx::query_scalar("SELECT count(*) FROM incidents")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(incidents, 1, "both replicas, every report: one incident");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM edge_events WHERE edge_id = $1")
        .bind(edge)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(events >= 1, "the box's reports are stored");
    let timers: Vec<(i32, String)> = sqlx::query_as(
        "SELECT step, state FROM escalation_timers WHERE incident_id = $1 ORDER BY step",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        timers,
        [
            (0, "fired".to_owned()),
            (1, "fired".to_owned()),
            (2, "cancelled".to_owned())
        ],
        "each step once: the team at intake, the officer by one replica, the district never"
    );
    let notified: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT target_kind, target_name, count(*) FROM notifications WHERE incident_id = $1 \
         GROUP BY target_kind, target_name ORDER BY target_kind",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        notified,
        [
            ("team".to_owned(), "斋堂镇夜班".to_owned(), 1),
            ("user".to_owned(), "zt-officer".to_owned(), 1)
        ]
    );

    let (status, d) = op.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["state"], "acknowledged");
    assert_eq!(d["pendingEscalation"], serde_json::Value::Null);
    let timeline = d["timeline"].as_array().unwrap();
    let routed = timeline
        .iter()
        .find(|t| t["action"] == "routed")
        .expect("a routing entry");
    assert!(
        routed["note"]
            .as_str()
            .unwrap()
            .starts_with("routed to team 斋堂镇夜班"),
        "{routed}"
    );
    let ack = timeline
        .iter()
        .find(|t| t["action"] == "acknowledge")
        .expect("the acknowledgement is on the timeline");
    assert_eq!(ack["refs"]["escalationCancelled"], 1, "{ack}");

    one.stop().await;
    two.stop().await;
    pool.close().await;
    db.drop_now().await;
}
