//! `make bench`: talk-down through the whole real chain (issue 7). An operator asks dispatch for
//! the talk floor, sends a tone over WHIP like a browser (media-gateway's webrtc-rs test client),
//! the `media-gateway` process tells dispatch, dispatch sends `startTalk` over MQTT to an enrolled
//! `edge-agent` process, which pulls the audio and plays it into a camsim ONVIF camera's
//! backchannel, which camsim records. Prints a table; passes or fails nothing.
//!
//! - set-up: the operator's `POST /api/cameras/{id}/talk` → the first audio in camsim's new
//!   recording (also shown from the moment the WHIP offer is made).
//! - mouth-to-ear: the WHIP sender talks silence, then switches its tone on at a noted instant;
//!   the bench notes when camsim's recording grew past the tone's onset sample (the method and
//!   its error bound: tests/e2e/README.md).

#[path = "../../../dispatch/tests/common/mod.rs"]
mod common;
#[path = "../tests/edge_box/mod.rs"]
mod edge_box;
#[allow(dead_code)]
#[path = "../../../media-gateway/tests/common/whip.rs"]
mod whip;

use bl_e2e::Running;
use bl_test_support::broker::{PrivateBroker, free_port};
use camsim::backchannel::{recordings, samples};
use common::{ADMIN_PASSWORD, USER_PASSWORD, create_user, media_config};
use dispatch::auth::service::ServiceToken;
use edge_box::{Agent, enrol, gateway_config, http, register, register_camera, text, wait_for};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const NODE: &str = "gw-bench";
const SERVICE_TOKEN: &str = "bench-gw-service-token-0123456789abcdef0123456";
const EDGE: &str = "bench-box";
const CAMERA: &str = "bench-kitchen";
const TONE_HZ: u32 = 1000;
/// camsim records its backchannel as 8 kHz mono.
const RATE: usize = 8000;

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let runs: usize = std::env::var("BENCH_TALK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let work = tempfile::tempdir().unwrap();
    let agent_bin = edge_box::agent_binary(work.path());
    let gateway_bin = bl_e2e::binary("media-gateway", "media-gateway", work.path());
    let (record, gw_dir, box_dir) = (
        work.path().join("record"),
        work.path().join("gw"),
        work.path().join("box"),
    );
    for d in [&record, &gw_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let broker = PrivateBroker::start();
    let db = common::TestDb::new().await;
    let pool = db.pool().await;

    // dispatch with enrolment, intake from the private broker, and the one gateway node.
    let (port, push_port) = (free_port(), free_port());
    let mut c = edge_box::config(&db, &work);
    c.enrolment = Some(edge_box::enrolment_config(&broker));
    c.mqtt = Some(edge_box::mqtt_config(&broker, "dispatch-bench", "dispatch"));
    let mut media = media_config(&[(NODE, &format!("http://127.0.0.1:{port}"))]);
    media.gateway[0].service_token = Some(ServiceToken::from_secret(SERVICE_TOKEN).unwrap());
    c.media = Some(media);
    let server = common::Server::start(c).await;

    // A school canteen, its box (enrolled for real) and its kitchen camera with a speaker.
    let mut admin = server.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let mut body = common::premises_body("dayu", "大峪中学食堂");
    body["kind"] = "schoolCanteen".into();
    let (status, premises) = admin.post("/api/premises", body).await;
    assert_eq!(status, StatusCode::CREATED, "{premises}");
    let premises = premises["id"].as_str().unwrap().to_owned();
    let code = register(&mut admin, EDGE, &premises).await;
    register_camera(&pool, &premises, EDGE, CAMERA).await;
    sqlx::query("UPDATE cameras SET talk = true WHERE id = $1")
        .bind(CAMERA)
        .execute(&pool)
        .await
        .unwrap();
    create_user(&mut admin, "op-bench", "operator", Some(&["dayu"])).await;
    let mut op = server.client();
    assert_eq!(op.login("op-bench", USER_PASSWORD).await.0, StatusCode::OK);

    let gw_config = gateway_config(
        &gw_dir,
        port,
        push_port,
        NODE,
        SERVICE_TOKEN,
        &http(server.addr),
    );
    let _gateway = Running(
        Command::new(&gateway_bin)
            .args(["run", "--config"])
            .arg(&gw_config)
            .current_dir(&gw_dir)
            .env("BL_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let out = enrol(&agent_bin, &http(server.addr), EDGE, &code, &box_dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let kitchen = day_kitchen(&record);
    let cameras = format!(
        "[[camera]]\nid = \"{CAMERA}\"\nurl = \"{}\"\nbackchannel_url = \"{}\"\n",
        kitchen.url(CAMERA, camsim::Stream::Sub),
        kitchen.url(CAMERA, camsim::Stream::Main),
    );
    let _agent = Agent::start(&agent_bin, &box_dir, &text(&out.stdout), &cameras);

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_for(Duration::from_secs(60), "the gateway is up", async || {
        let r = client.get(format!("{base}/healthz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    wait_for(
        Duration::from_secs(120),
        "the camera online at dispatch",
        async || {
            let (_, cameras) = op.get("/api/cameras?town=dayu").await;
            let list = cameras.as_array().or(cameras["items"].as_array())?.clone();
            list.iter()
                .any(|c| c["id"] == CAMERA && c["online"] == true)
                .then_some(())
        },
    )
    .await;

    let (mut setups, mut whip_setups, mut latencies, mut failed) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    for run in 0..runs {
        let before = recordings(&record, CAMERA).len();
        let asked = Instant::now();
        let (status, grant) = op
            .post(&format!("/api/cameras/{CAMERA}/talk"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{grant}");
        let whip_url = grant["whipUrl"].as_str().expect("a WHIP URL");
        let path = whip_url.strip_prefix(&base).expect("the gateway's URL");
        let offered = Instant::now();
        let talker = whip::talk_silently_at(
            &client,
            &base,
            path,
            grant["token"].as_str().unwrap(),
            TONE_HZ,
        )
        .await;

        // Set-up: until camsim has written the first samples of a new recording.
        let file = poll(Duration::from_secs(20), || {
            recordings(&record, CAMERA)
                .get(before)
                .filter(|p| written(p) > 0)
                .cloned()
        })
        .await;
        let measured = file.inspect(|_| {
            setups.push(asked.elapsed());
            whip_setups.push(offered.elapsed());
        });

        // Mouth-to-ear: after a while of silence the tone goes on; note each length reached.
        let mut growth = Vec::new();
        if measured.is_some() {
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        let marked = talker.unmute();
        if let Some(file) = &measured {
            while marked.elapsed() < Duration::from_millis(1500) {
                growth.push((Instant::now(), written(file)));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }

        // The operator lets go: the WHIP session ends and the floor is released.
        let _ = client.delete(&talker.location).send().await;
        let (status, _) = op
            .send(Method::DELETE, &format!("/api/cameras/{CAMERA}/talk"), None)
            .await;
        assert!(status.is_success(), "release the floor: {status}");
        drop(talker);

        let Some(file) = measured else {
            eprintln!("run {run}: no audio at the camera within 20 s");
            failed += 1;
            continue;
        };
        let arrived = onset(&samples(&file)).and_then(|at| {
            growth
                .iter()
                .find(|(_, len)| *len > at)
                .map(|(when, _)| when.saturating_duration_since(marked))
        });
        match arrived {
            Some(latency) => latencies.push(latency),
            None => eprintln!("run {run}: the tone did not arrive within 1.5 s"),
        }
        eprintln!(
            "run {run}: set-up {:?}, mouth-to-ear {arrived:?}",
            setups.last().unwrap()
        );
        // Let the box see the end of this talk before the next one starts.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    println!(
        "talk-down through the chain ({runs} runs, {failed} without audio at the camera; operator WHIP → media-gateway → dispatch startTalk over MQTT → edge-agent → camsim ONVIF backchannel; load average {load})"
    );
    println!("{:<58} {:>8} {:>8} {:>8}", "", "median", "max", "target");
    row(
        "set-up: POST /talk → first audio at the camera",
        &setups,
        2000,
    );
    row(
        "set-up: WHIP offer made → first audio at the camera",
        &whip_setups,
        2000,
    );
    row(
        "mouth-to-ear: tone on at the WHIP sender → camera",
        &latencies,
        400,
    );
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}

/// camsim's day kitchen as the bench camera, its main stream's backchannel recorded into `record`.
fn day_kitchen(record: &Path) -> camsim::Server {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../camsim/scenarios/kitchen-day.toml");
    camsim::serve(camsim::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![camsim::CameraConfig {
            backchannel_dir: Some(record.to_path_buf()),
            ..camsim::CameraConfig::new(CAMERA, camsim::Scenario::load(&path).unwrap())
        }],
    })
    .unwrap()
}

/// How many samples of a recording camsim has written (its size past the 44-byte header).
fn written(file: &Path) -> usize {
    let len = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    (len.saturating_sub(44) / 2) as usize
}

/// Checks every 2 ms until `check` gives a value or `within` has passed.
async fn poll<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(v) = check() {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

/// The first sample of the first 10 ms window that is loud (the tone), if any.
fn onset(samples: &[i16]) -> Option<usize> {
    let window = RATE / 100;
    samples
        .chunks(window)
        .position(|w| camsim::tone::rms(w) > 1000.0)
        .map(|i| i * window)
}

fn row(name: &str, values: &[Duration], target_ms: u64) {
    let mut ms: Vec<u64> = values.iter().map(|d| d.as_millis() as u64).collect();
    ms.sort_unstable();
    if ms.is_empty() {
        println!("{name:<58} {:>8} {:>8} {:>5} ms", "-", "-", target_ms);
        return;
    }
    println!(
        "{name:<58} {:>5} ms {:>5} ms {:>5} ms",
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        target_ms
    );
}
