//! Issue 7's automatic voice warning, every part real: camsim serves the day kitchen (cooks with
//! and without chef hats, drawn in colour) with an ONVIF audio backchannel that it records; an
//! `edge-agent` process enrolled with a one-time code watches it with the real person model, and
//! its `[[talk.warning]]` rule for school canteens during opening hours speaks an espeak-ng
//! Mandarin message through the camera's backchannel at the no-hat episode's start; the outcome
//! travels through mosquitto to dispatch, which writes it on the incident's timeline.

#[path = "../../../dispatch/tests/common/mod.rs"]
mod common;
mod edge_box;

use bl_test_support::broker::PrivateBroker;
use common::{ADMIN_PASSWORD, Server, TestDb};
use edge_box::{Agent, enrol, http, register, text};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Where the agent finds the person model: as the agent looks (`$BL_MODELS_DIR`, else the
/// repository's `.data/models`).
fn models_dir() -> PathBuf {
    std::env::var_os("BL_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.data/models"))
}

/// camsim's day kitchen as `camera`, its main stream with a backchannel recorded into `record`.
fn day_kitchen(camera: &str, record: &Path) -> camsim::Server {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../camsim/scenarios/kitchen-day.toml");
    camsim::serve(camsim::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![camsim::CameraConfig {
            backchannel_dir: Some(record.to_path_buf()),
            ..camsim::CameraConfig::new(camera, camsim::Scenario::load(&path).unwrap())
        }],
    })
    .unwrap()
}

/// The box's camera in the registry, with a speaker.
async fn register_camera(pool: &PgPool, premises: &str, edge: &str, camera: &str) {
    let mut tx = pool.begin().await.unwrap();
    dispatch::registry::cameras::insert(
        &mut tx,
        &dispatch::registry::cameras::NewCamera {
            id: camera,
            premises_id: premises.parse().unwrap(),
            name: "后厨操作间",
            edge_id: Some(edge),
            main_stream: "main",
            sub_stream: Some("sub"),
            talk: true,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// The samples of camsim's backchannel recordings of `camera` in `dir` (16-bit mono WAV, 8 kHz).
fn recorded(dir: &Path, camera: &str) -> Vec<i16> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&format!("{camera}-backchannel-")))
    });
    files
        .iter()
        .flat_map(|f| {
            let bytes = std::fs::read(f).unwrap_or_default();
            bytes
                .get(44..)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| (s as f64).powi(2)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// `HH:MM` of the local time `minutes` from now at the agent's default offset (UTC+8).
fn local_clock(minutes: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::minutes(480 + minutes);
    t.format("%H:%M").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cook_without_a_hat_in_a_school_canteen_hears_the_warning_and_the_incident_says_so() {
    if !models_dir()
        .join("yolov3-tiny/yolov3-tiny.weights")
        .is_file()
    {
        eprintln!(
            "SKIPPED: the person model is not installed under {} (`make deps`, or set BL_MODELS_DIR)",
            models_dir().display()
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let bin = edge_box::agent_binary(work.path());
    let broker = PrivateBroker::start();
    let db = TestDb::new().await;
    let pool = db.pool().await;
    let mut c = edge_box::config(&db, &work);
    c.enrolment = Some(edge_box::enrolment_config(&broker));
    c.mqtt = Some(edge_box::mqtt_config(&broker, "dispatch-1", "dispatch"));
    let server = Server::start(c).await;

    // A school canteen in 大峪街道, its box and its kitchen camera (with a speaker).
    let mut admin = server.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let mut body = common::premises_body("dayu", "大峪中学食堂");
    body["kind"] = "schoolCanteen".into();
    let (status, premises) = admin.post("/api/premises", body).await;
    assert_eq!(status, StatusCode::CREATED, "{premises}");
    let premises = premises["id"].as_str().unwrap().to_owned();
    let (edge, camera) = ("dy-school-box", "dy-school-kitchen");
    let code = register(&mut admin, edge, &premises).await;
    register_camera(&pool, &premises, edge, camera).await;

    // The box: enrolled for real, watching the sub stream for hats, speaking on the main stream's
    // backchannel; the canteen's rule holds for the two hours around now (its opening hours).
    let box_dir = work.path().join("box");
    let out = enrol(&bin, &http(server.addr), edge, &code, &box_dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record = work.path().join("backchannel");
    std::fs::create_dir_all(&record).unwrap();
    let kitchen = day_kitchen(camera, &record);
    let cameras = format!(
        "[talk]\npremises_kind = \"schoolCanteen\"\n\
         [[talk.message]]\nid = \"wear-hat-zh\"\ntext = \"请戴好厨师帽，注意食品安全。\"\n\
         [[talk.warning]]\nkind = \"noChefHat\"\nmessage = \"wear-hat-zh\"\npremises = [\"schoolCanteen\"]\n\
         hours = {{ from = \"{}\", to = \"{}\" }}\n\
         [[camera]]\nid = \"{camera}\"\nurl = \"{}\"\nbackchannel_url = \"{}\"\nno_chef_hat = true\n",
        local_clock(-60),
        local_clock(60),
        kitchen.url(camera, camsim::Stream::Sub),
        kitchen.url(camera, camsim::Stream::Main),
    );
    let _agent = Agent::start(&bin, &box_dir, &text(&out.stdout), &cameras);

    // camsim's p2 (no hat) walks in at 8 s; the episode starts once the rule's duration is held.
    let start = Instant::now();
    let (incident, entry) = loop {
        if start.elapsed() > Duration::from_secs(150) {
            let events: Vec<(String, String)> =
                sqlx::query_as("SELECT type, payload::text FROM edge_events ORDER BY at")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            panic!(
                "no voice warning on an incident within 150 s; the box reported {events:?}; \
                 camsim recorded {} samples",
                recorded(&record, camera).len()
            );
        }
        let found: Option<(Uuid, Value)> = sqlx::query_as(
            "SELECT incident_id, refs FROM incident_timeline WHERE action LIKE 'voiceWarning%' LIMIT 1",
        )
        .fetch_optional(&pool)
        .await
        .unwrap();
        if let Some(found) = found {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The incident is the no-hat one, and its timeline says the warning played at the camera.
    let (status, d) = admin.get(&format!("/api/incidents/{incident}")).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["kind"], "noChefHat", "{d}");
    let timeline = d["timeline"].as_array().unwrap();
    let warned = timeline
        .iter()
        .find(|t| t["action"].as_str().unwrap().starts_with("voiceWarning"))
        .expect("the warning is on the incident's timeline");
    assert_eq!(warned["action"], "voiceWarning", "played: {warned}");
    assert_eq!(warned["refs"]["message"], "wear-hat-zh");
    assert_eq!(warned["refs"]["output"], "backchannel");
    assert_eq!(warned["refs"]["cameraId"], camera);
    assert_eq!(warned["actor"], format!("edge:{edge}"));
    assert_eq!(entry["eventId"], warned["refs"]["eventId"]);
    let opened = timeline.iter().position(|t| t["action"] == "opened");
    let warned_at = timeline.iter().position(|t| t == warned);
    assert!(
        opened < warned_at,
        "opened first, then warned: {timeline:?}"
    );

    // camsim heard it: a sentence of speech, not silence, on the camera's backchannel.
    let samples = recorded(&record, camera);
    let secs = samples.len() as f64 / 8000.0;
    assert!(
        (1.0..15.0).contains(&secs),
        "a short sentence: {secs:.2} s recorded"
    );
    assert!(
        rms(&samples) > 300.0,
        "not silent: rms {:.0}",
        rms(&samples)
    );

    drop(kitchen);
    server.stop().await;
    pool.close().await;
    db.drop_now().await;
}
