//! Issue 7's automatic voice warning, every part real: camsim serves the day kitchen (cooks with
//! and without chef hats, drawn in colour) with an ONVIF audio backchannel that it records; an
//! `edge-agent` process enrolled with a one-time code watches it with the real person model, and
//! its `[[talk.warning]]` rule for school canteens during opening hours speaks an espeak-ng
//! Mandarin message through the camera's backchannel at the no-hat episode's start; the outcome
//! travels through mosquitto to dispatch, which writes it on the incident's timeline.
//!
//! The second test configures the warning in the CENTER only: a WAV recording and a rule set in
//! admin reach the box in its retained EdgeConfig; the box fetches the recording by hash from
//! dispatch (signed with its device key), refuses a later revision whose recording does not match
//! its hash (keeping the set in force), and plays the center's recording at the no-hat episode.

#[path = "../../../dispatch/tests/common/mod.rs"]
mod common;
mod edge_box;

use bl_test_support::broker::PrivateBroker;
use common::voice::{put_bytes, wav};
use common::{ADMIN_PASSWORD, Server, TestDb};
use edge_box::{Agent, enrol, http, logged, register, text};
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

/// A school canteen in 大峪街道 at a real dispatch (private broker, fresh database): its box
/// registered (`code` enrols it) and its kitchen camera with a speaker.
struct Canteen {
    work: tempfile::TempDir,
    bin: PathBuf,
    _broker: PrivateBroker,
    db: TestDb,
    pool: PgPool,
    server: Server,
    admin: common::Client,
    code: String,
}

/// The canteen, or `None` (test skipped, said on stderr) when the person model is not installed.
/// `poll_ms` sets how often dispatch's timers (and its EdgeConfig publisher) run.
async fn school_canteen(edge: &str, camera: &str, poll_ms: Option<u64>) -> Option<Canteen> {
    if !models_dir()
        .join("yolov3-tiny/yolov3-tiny.weights")
        .is_file()
    {
        eprintln!(
            "SKIPPED: the person model is not installed under {} (`make deps`, or set BL_MODELS_DIR)",
            models_dir().display()
        );
        return None;
    }
    let work = tempfile::tempdir().unwrap();
    let bin = edge_box::agent_binary(work.path());
    let broker = PrivateBroker::start();
    let db = TestDb::new().await;
    let pool = db.pool().await;
    let mut c = edge_box::config(&db, &work);
    c.enrolment = Some(edge_box::enrolment_config(&broker));
    c.mqtt = Some(edge_box::mqtt_config(&broker, "dispatch-1", "dispatch"));
    if let Some(ms) = poll_ms {
        c.escalation.poll_interval_ms = ms;
    }
    let server = Server::start(c).await;
    let mut admin = server.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let mut body = common::premises_body("dayu", "大峪中学食堂");
    body["kind"] = "schoolCanteen".into();
    let (status, premises) = admin.post("/api/premises", body).await;
    assert_eq!(status, StatusCode::CREATED, "{premises}");
    let premises = premises["id"].as_str().unwrap().to_owned();
    let code = register(&mut admin, edge, &premises).await;
    register_camera(&pool, &premises, edge, camera).await;
    Some(Canteen {
        work,
        bin,
        _broker: broker,
        db,
        pool,
        server,
        admin,
        code,
    })
}

/// `HH:MM` of the local time `minutes` from now at the agent's default offset (UTC+8).
fn local_clock(minutes: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::minutes(480 + minutes);
    t.format("%H:%M").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cook_without_a_hat_in_a_school_canteen_hears_the_warning_and_the_incident_says_so() {
    let (edge, camera) = ("dy-school-box", "dy-school-kitchen");
    let Some(Canteen {
        work,
        bin,
        db,
        pool,
        server,
        mut admin,
        code,
        _broker,
    }) = school_canteen(edge, camera, None).await
    else {
        return;
    };

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
                camsim::backchannel::heard(&record, camera).len()
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
    let samples = camsim::backchannel::heard(&record, camera);
    let secs = samples.len() as f64 / 8000.0;
    assert!(
        (1.0..15.0).contains(&secs),
        "a short sentence: {secs:.2} s recorded"
    );
    assert!(
        camsim::tone::rms(&samples) > 300.0,
        "not silent: rms {:.0}",
        camsim::tone::rms(&samples)
    );

    drop(kitchen);
    server.stop().await;
    pool.close().await;
    db.drop_now().await;
}

/// The tone's frequency from its zero crossings between its first and last loud sample, Hz
/// (the near-silence around it would add crossings of its own).
fn frequency(samples: &[i16], rate: f64) -> f64 {
    let loud = |s: &&i16| s.unsigned_abs() > 2000;
    let first = samples.iter().position(|s| loud(&s)).unwrap_or(0);
    let last = samples.iter().rposition(|s| loud(&s)).unwrap_or(0);
    let samples = &samples[first..=last.max(first)];
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / rate)
}

/// The box's config revision as its retained state reports it.
async fn reported_revision(pool: &PgPool, edge: &str) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT (state ->> 'configRevision')::bigint FROM edge_status WHERE edge_id = $1",
    )
    .bind(edge)
    .fetch_optional(pool)
    .await
    .unwrap()
    .flatten()
}

async fn desired_revision(pool: &PgPool, edge: &str) -> i64 {
    sqlx::query_scalar("SELECT revision FROM edge_configs WHERE edge_id = $1")
        .bind(edge)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recording_set_in_the_center_is_fetched_by_hash_and_played_and_a_wrong_hash_keeps_the_set_in_force()
 {
    let (edge, camera) = ("dy-center-box", "dy-center-kitchen");
    // The EdgeConfig publisher polls fast, so each revision goes out at once.
    let Some(Canteen {
        work,
        bin,
        db,
        pool,
        server,
        mut admin,
        code,
        _broker,
    }) = school_canteen(edge, camera, Some(50)).await
    else {
        return;
    };

    // In the center: a 440 Hz recording and the canteens' no-hat rule for the hours around now.
    let tone = wav(16_000, 2_000);
    let (status, m) = put_bytes(
        server.addr,
        &admin,
        "/api/voice-messages/wear-hat-tone?name=tone",
        "audio/wav",
        tone,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    let rule = |message: &str| {
        serde_json::json!({"rules": [{"premisesKind": "schoolCanteen", "kind": "noChefHat",
            "messageId": message, "from": local_clock(-60), "to": local_clock(60)}]})
    };
    let (status, body) = admin.put("/api/warning-rules", rule("wear-hat-tone")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = desired_revision(&pool, edge).await;

    // The box: enrolled (which writes [center]), with no [talk] rule or message of its own.
    let box_dir = work.path().join("box");
    let out = enrol(&bin, &http(server.addr), edge, &code, &box_dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("[center]"),
        "{}",
        text(&out.stdout)
    );
    let record = work.path().join("backchannel");
    std::fs::create_dir_all(&record).unwrap();
    let kitchen = day_kitchen(camera, &record);
    let cameras = format!(
        "[[camera]]\nid = \"{camera}\"\nurl = \"{}\"\nbackchannel_url = \"{}\"\nno_chef_hat = true\n",
        kitchen.url(camera, camsim::Stream::Sub),
        kitchen.url(camera, camsim::Stream::Main),
    );
    let log = work.path().join("agent.log");
    let _agent = Agent::start_logged(&bin, &box_dir, &text(&out.stdout), &cameras, &log);

    // It fetches the recording and reports the revision in force.
    let start = Instant::now();
    while reported_revision(&pool, edge).await < Some(first) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the box never reported revision {first}; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cached = box_dir.join("voice-cache/center");
    assert_eq!(
        std::fs::read_dir(&cached).unwrap().count(),
        1,
        "one recording cached by hash"
    );

    // A second recording whose stored bytes no longer match their hash (same size): the box
    // refuses that revision, says why, and keeps the first in force.
    let (status, m) = put_bytes(
        server.addr,
        &admin,
        "/api/voice-messages/wear-hat-bad?name=bad",
        "audio/wav",
        wav(16_000, 1_000),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    sqlx::query(
        "UPDATE voice_messages SET audio = overlay(audio placing '\\x00000000'::bytea from 100) \
         WHERE id = 'wear-hat-bad'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (status, body) = admin.put("/api/warning-rules", rule("wear-hat-bad")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = desired_revision(&pool, edge).await;
    assert!(refused > first);
    let line = logged(
        &log,
        &["center config not ready", "wear-hat-bad", "SHA-256"],
        Duration::from_secs(60),
    )
    .await;
    assert!(
        line.contains(&format!("revision={refused}")) || line.contains(&refused.to_string()),
        "{line}"
    );
    assert_eq!(
        reported_revision(&pool, edge).await,
        Some(first),
        "the first stays in force"
    );

    // The no-hat episode plays the center's recording (the set in force) at the camera.
    let start = Instant::now();
    let (incident, _) = loop {
        assert!(
            start.elapsed() < Duration::from_secs(150),
            "no voice warning on an incident within 150 s; camsim recorded {} samples; the box's log:\n{}",
            camsim::backchannel::heard(&record, camera).len(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
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
    let (status, d) = admin.get(&format!("/api/incidents/{incident}")).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let warned = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"].as_str().unwrap().starts_with("voiceWarning"))
        .cloned()
        .unwrap();
    assert_eq!(warned["action"], "voiceWarning", "played: {warned}");
    assert_eq!(warned["refs"]["message"], "wear-hat-tone");
    assert_eq!(warned["refs"]["output"], "backchannel");

    // camsim's backchannel heard the recording: about 2 s of the 440 Hz tone.
    let samples = camsim::backchannel::heard(&record, camera);
    let secs = samples.len() as f64 / 8000.0;
    assert!((1.5..6.0).contains(&secs), "{secs:.2} s recorded");
    let hz = frequency(&samples, 8000.0);
    assert!(
        (400.0..480.0).contains(&hz),
        "the tone is {hz:.0} Hz, not 440"
    );
    assert_eq!(reported_revision(&pool, edge).await, Some(first));

    drop(kitchen);
    server.stop().await;
    pool.close().await;
    db.drop_now().await;
}
