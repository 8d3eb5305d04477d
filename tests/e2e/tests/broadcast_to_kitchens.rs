//! Group broadcast (issue 7), every part real: dispatch (in this process) with PostgreSQL and a
//! private mosquitto, the `media-gateway` binary, an `edge-agent` binary serving six camsim
//! cameras — five with an ONVIF audio backchannel that camsim records, one without. An operator
//! broadcasts to 斋堂镇's school canteens; ONE WHIP ingest (media-gateway's webrtc-rs test client
//! sending a GStreamer Opus tone) reaches all five backchannel recordings, checked by frequency,
//! while the sixth kitchen is reported `noSpeaker` by its box; `DELETE` ends every kitchen.

#[path = "../../../dispatch/tests/common/mod.rs"]
mod common;
mod edge_box;
#[allow(dead_code)]
#[path = "../../../media-gateway/tests/common/whip.rs"]
mod whip;

use bl_test_support::broker::{PrivateBroker, free_port};
use common::{Client, USER_PASSWORD, create_user, media_config};
use dispatch::auth::service::ServiceToken;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;
use uuid::Uuid;

const EDGE: &str = "bc-box";
const NODE: &str = "gw-1";
const SERVICE_TOKEN: &str = "e2e-gw-1-service-token-0123456789abcdef0123";
/// The kitchens: five cameras with a speaker, the last without.
const CAMERAS: [&str; 6] = ["bc-k1", "bc-k2", "bc-k3", "bc-k4", "bc-k5", "bc-k6"];
const TONE_HZ: u32 = 600;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// camsim's day kitchen as the six cameras; the first five record what their backchannel hears.
fn kitchens(record_dir: &Path) -> camsim::Server {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../camsim/scenarios/kitchen-day.toml");
    let scenario = camsim::Scenario::load(&path).unwrap();
    camsim::serve(camsim::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: CAMERAS
            .iter()
            .enumerate()
            .map(|(i, id)| camsim::CameraConfig {
                backchannel_dir: (i < 5).then(|| record_dir.to_path_buf()),
                ..camsim::CameraConfig::new(id, scenario.clone())
            })
            .collect(),
    })
    .unwrap()
}

/// Six school canteens of 斋堂镇, each with its camera, all served by one box.
async fn register(pool: &PgPool) {
    let mut premises_of_box = None;
    for (i, camera) in CAMERAS.iter().enumerate() {
        let premises = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO premises (id, name, licence_no, kind, address, town_id, risk_grade, person_in_charge, phone) \
             VALUES ($1, $2, $3, 'schoolCanteen', '北京市门头沟区斋堂镇', 'zhaitang', 'B', '李红', '13800000000')",
        )
        .bind(premises)
        .bind(format!("斋堂镇第{}小学食堂", i + 1))
        .bind(format!("JYBC{}{i}", &Uuid::now_v7().simple().to_string()[20..]))
        .execute(pool)
        .await
        .unwrap();
        if premises_of_box.is_none() {
            sqlx::query("INSERT INTO edges (id, premises_id) VALUES ($1, $2)")
                .bind(EDGE)
                .bind(premises)
                .execute(pool)
                .await
                .unwrap();
            premises_of_box = Some(premises);
        }
        sqlx::query(
            "INSERT INTO cameras (id, premises_id, name, source, edge_id, main_stream, talk) \
             VALUES ($1, $2, '后厨', 'edge', $3, 'main', true)",
        )
        .bind(camera)
        .bind(premises)
        .bind(EDGE)
        .execute(pool)
        .await
        .unwrap();
    }
}

fn edge_config(dir: &Path, broker: &PrivateBroker, camsim: &camsim::Server) -> PathBuf {
    std::fs::write(dir.join("mqtt.password"), broker.add_user(EDGE)).unwrap();
    let mut text = format!(
        "edge_id = \"{EDGE}\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\npassword_file = \"mqtt.password\"\n",
        broker.port
    );
    for (i, camera) in CAMERAS.iter().enumerate() {
        text.push_str(&format!(
            "[[camera]]\nid = \"{camera}\"\nurl = \"{}\"\n",
            camsim.url(camera, camsim::Stream::Sub)
        ));
        if i < 5 {
            text.push_str(&format!(
                "backchannel_url = \"{}\"\n",
                camsim.url(camera, camsim::Stream::Main)
            ));
        }
    }
    let file = dir.join("edge.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn states(view: &Value) -> Vec<(String, String, String)> {
    view["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["cameraId"].as_str().unwrap().to_owned(),
                t["state"].as_str().unwrap().to_owned(),
                t["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_voice_reaches_five_kitchens_backchannels_and_the_kitchen_without_a_speaker_is_reported()
 {
    let work = tempfile::tempdir().unwrap();
    let agent_bin = edge_box::agent_binary(work.path());
    let gateway_bin = bl_e2e::binary("media-gateway", "media-gateway", work.path());
    let (records, gw_dir, box_dir) = (
        work.path().join("records"),
        work.path().join("gw"),
        work.path().join("box"),
    );
    for d in [&records, &gw_dir, &box_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let camsim = kitchens(&records);
    let broker = PrivateBroker::start();
    let db = common::TestDb::new().await;
    let pool = db.pool().await;

    // dispatch, signing for the one gateway node, which it knows by its service token.
    let (port, push_port) = (free_port(), free_port());
    let mut c = edge_box::config(&db, &work);
    c.mqtt = Some(edge_box::mqtt_config(&broker, "dispatch-bc", "dispatch"));
    let mut media = media_config(&[(NODE, &format!("http://127.0.0.1:{port}"))]);
    media.gateway[0].service_token = Some(ServiceToken::from_secret(SERVICE_TOKEN).unwrap());
    c.media = Some(media);
    let server = common::Server::start(c).await;
    // The registry after the server has migrated the database.
    register(&pool).await;
    let mut admin = server.client();
    admin.login("admin", common::ADMIN_PASSWORD).await;
    create_user(&mut admin, "op-bc", "operator", Some(&["zhaitang"])).await;
    let mut op: Client = server.client();
    assert_eq!(op.login("op-bc", USER_PASSWORD).await.0, StatusCode::OK);

    let gw_config = edge_box::gateway_config(
        &gw_dir,
        port,
        push_port,
        NODE,
        SERVICE_TOKEN,
        &edge_box::http(server.addr),
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
    let edge_config = edge_config(&box_dir, &broker, &camsim);
    let _agent = Running(
        Command::new(&agent_bin)
            .args(["run", "--config"])
            .arg(&edge_config)
            .env("BL_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    edge_box::wait_for(Duration::from_secs(60), "the gateway is up", async || {
        let r = http.get(format!("{base}/healthz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    // The box reports its cameras online (a broadcast reports an offline one `offline` at once).
    edge_box::wait_for(
        Duration::from_secs(120),
        "the box's six cameras online at dispatch",
        async || {
            let (_, cameras) = op.get("/api/cameras?town=zhaitang").await;
            let list = cameras.as_array().or(cameras["items"].as_array())?.clone();
            let online = list.iter().filter(|c| c["online"] == true).count();
            (online == CAMERAS.len()).then_some(())
        },
    )
    .await;

    // The broadcast to the town's school canteens: six kitchens connecting, one ingest.
    let (status, started) = op
        .post(
            "/api/broadcasts",
            json!({"town": "zhaitang", "premisesKind": "schoolCanteen"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    assert!(
        states(&started).iter().all(|(_, s, _)| s == "connecting"),
        "{started}"
    );
    let ingest = &started["ingests"][0];
    assert_eq!(started["ingests"].as_array().unwrap().len(), 1);
    let whip_url = ingest["whipUrl"].as_str().unwrap();
    let path = whip_url.strip_prefix(&base).expect("the gateway's URL");
    let talker = whip::talk_at(
        &http,
        &base,
        path,
        ingest["token"].as_str().unwrap(),
        TONE_HZ,
    )
    .await;

    // Each kitchen's state as dispatch has it: five playing, the sixth noSpeaker (from its box).
    let view = edge_box::wait_for(
        Duration::from_secs(90),
        "five kitchens playing, one noSpeaker",
        async || {
            let (_, view) = op.get(&format!("/api/broadcasts/{id}")).await;
            let s = states(&view);
            let playing = s.iter().filter(|(_, st, _)| st == "playing").count();
            let settled = s.iter().all(|(_, st, _)| st != "connecting");
            (settled && playing == 5).then_some(view)
        },
    )
    .await;
    let sixth = states(&view)
        .into_iter()
        .find(|(c, _, _)| c == CAMERAS[5])
        .unwrap();
    assert_eq!(
        (sixth.1.as_str(), sixth.2.as_str()),
        ("failed", "noSpeaker"),
        "{view}"
    );

    // The tone reaches all five backchannels: 2 s of audio each, its peak at the tone.
    for camera in &CAMERAS[..5] {
        let samples = edge_box::wait_for(
            Duration::from_secs(60),
            &format!("2 s of voice at {camera}"),
            async || {
                let s = camsim::backchannel::heard(&records, camera);
                (s.len() >= 16_000).then_some(s)
            },
        )
        .await;
        let tail = &samples[samples.len() - 8_000..];
        let peak = camsim::tone::peak_frequency(tail, 8000, 200, 2000, 5);
        assert!(
            peak.abs_diff(TONE_HZ) <= 15,
            "{camera} heard a peak at {peak} Hz, not the {TONE_HZ} Hz tone"
        );
    }
    assert!(
        camsim::backchannel::recordings(&records, CAMERAS[5]).is_empty(),
        "the camera without a backchannel recorded something"
    );

    // The operator lets go: the ingest and the broadcast end; every kitchen that played ends.
    let r = http.delete(&talker.location).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = op
        .send(Method::DELETE, &format!("/api/broadcasts/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, view) = op.get(&format!("/api/broadcasts/{id}")).await;
    let ended = states(&view)
        .iter()
        .filter(|(_, s, _)| s == "ended")
        .count();
    assert_eq!(ended, 5, "{view}");
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM talk_sessions WHERE ended_at IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(open, 0);
    drop(talker);
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
