//! Issue 3 item 4 end to end, every part real: camsim's night kitchen over RTSP → the `edge-agent`
//! binary (pre-roll, rodent episode, clip and snapshots, signed, spooled) → the `media-gateway`
//! binary's `PUT /evidence/{sha256}`; events through a private mosquitto. The gateway is down while
//! the episode happens and starts afterwards: nothing is lost, the uploads arrive then.

use bl_e2e::{Running, keygen, night_kitchen};
use bl_proto::event::{DetectionEvent, EdgeEvent, EpisodePhase};
use bl_proto::evidence::{self, EvidenceKind, EvidenceMeta};
use bl_test_support::broker::{PrivateBroker, free_port};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const EDGE: &str = "evidence-edge";
const PRE_ROLL_SECS: i64 = 4;
const POST_ROLL_SECS: i64 = 3;

/// The gateway's config: this edge registered with its key; dispatch's token key made up.
fn gateway_config(dir: &Path, port: u16, edge_public: &str) -> PathBuf {
    let token = bl_proto::SigningKey::from_bytes(&[5; 32]).verifying_key();
    std::fs::write(dir.join("token.pub"), bl_proto::keys::encode_public(&token)).unwrap();
    let file = dir.join("gw.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{port}\"\nnode_id = \"gw-1\"\ndata_dir = \"data\"\n\
             token_public_key_file = \"token.pub\"\n[[edge]]\nid = \"{EDGE}\"\npublic_key = \"{edge_public}\"\n"
        ),
    )
    .unwrap();
    file
}

fn edge_config(dir: &Path, broker: &PrivateBroker, camera_url: &str, gateway_port: u16) -> PathBuf {
    std::fs::write(dir.join("mqtt.password"), broker.add_user(EDGE)).unwrap();
    let file = dir.join("edge.toml");
    std::fs::write(
        &file,
        format!(
            "edge_id = \"{EDGE}\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\npassword_file = \"mqtt.password\"\n\
             [evidence]\nurl = \"http://127.0.0.1:{gateway_port}\"\npre_roll_secs = {PRE_ROLL_SECS}\n\
             post_roll_secs = {POST_ROLL_SECS}\nretry_max_secs = 2\n\
             [[camera]]\nid = \"night\"\nurl = \"{camera_url}\"\nrodent = true\n",
            broker.port
        ),
    )
    .unwrap();
    file
}

/// A blob as the gateway stored it: its bytes and its record's metadata and signature.
fn stored(data: &Path, sha256: &str) -> Option<(Vec<u8>, EvidenceMeta, String)> {
    let folder = data.join("evidence/blobs").join(&sha256[..2]);
    let record = std::fs::read(folder.join(format!("{sha256}.json"))).ok()?;
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    let meta: EvidenceMeta = serde_json::from_value(record["meta"].clone()).unwrap();
    let signature = record["signature"].as_str().unwrap().to_owned();
    Some((std::fs::read(folder.join(sha256)).unwrap(), meta, signature))
}

/// Seconds of video in an MP4, by ffprobe.
fn duration_secs(file: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe is installed (deploy/dev/install-deps.sh)");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Frames ffprobe decodes from the video stream (proves it plays, not only that it parses).
fn decoded_frames(file: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames,codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("h264"),
        "an H.264 stream, as the camera sent: {text}"
    );
    text.trim().rsplit(',').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rodent_episode_yields_a_signed_clip_and_snapshots_that_reach_a_gateway_started_late() {
    let dir = tempfile::tempdir().unwrap();
    let agent_bin = bl_e2e::binary("edge-agent", "edge-agent", dir.path());
    let gateway_bin = bl_e2e::binary("media-gateway", "media-gateway", dir.path());
    let camsim = night_kitchen("night");
    let broker = PrivateBroker::start();
    let edge_dir = dir.path().join("box");
    let gw_dir = dir.path().join("gw");
    std::fs::create_dir_all(&edge_dir).unwrap();
    std::fs::create_dir_all(&gw_dir).unwrap();
    let edge_public = keygen(&agent_bin, &edge_dir);
    let edge_key = bl_proto::keys::parse_public(&edge_public).unwrap();
    let port = free_port();
    let gw_config = gateway_config(&gw_dir, port, &edge_public);
    let edge_config = edge_config(
        &edge_dir,
        &broker,
        &camsim.url("night", camsim::Stream::Sub),
        port,
    );

    let mut options = MqttOptions::new("test-center", "127.0.0.1", broker.port);
    options.set_credentials(&broker.service_user, &broker.service_password);
    let (center, mut events) = AsyncClient::new(options, 64);
    center
        .subscribe("bl/v1/edge/+/events", QoS::AtLeastOnce)
        .await
        .unwrap();
    let agent_started = chrono::Utc::now();
    let _agent = Running(
        Command::new(&agent_bin)
            .args(["run", "--config"])
            .arg(&edge_config)
            .spawn()
            .unwrap(),
    );

    // The gateway is down: the episode's events still arrive, naming evidence not stored yet.
    let mut seen: Vec<DetectionEvent> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let Ok(Ok(event)) = tokio::time::timeout(Duration::from_secs(1), events.poll()).await
        else {
            continue;
        };
        if let Event::Incoming(Packet::Publish(p)) = event
            && let EdgeEvent::Detection(d) = bl_proto::decode::<EdgeEvent>(&p.payload).unwrap()
        {
            let end = d.phase == EpisodePhase::End;
            seen.push(d);
            if end {
                break;
            }
        }
    }
    let start = seen
        .iter()
        .find(|d| d.phase == EpisodePhase::Start)
        .expect("the episode started");
    let end = seen
        .iter()
        .find(|d| d.phase == EpisodePhase::End)
        .unwrap_or_else(|| panic!("the episode ended: {seen:?}"));
    assert_eq!(start.episode_id, end.episode_id);
    let snapshot = start
        .snapshot
        .clone()
        .expect("the start names its snapshot");
    assert_eq!(snapshot.content_type, "image/jpeg");
    let clip = end.clip.clone().expect("the end names its clip");
    assert_eq!(clip.content_type, "video/mp4");
    let (from, to) = (clip.from.unwrap(), clip.to.unwrap());
    // The clip runs from the pre-roll before the start (back to the keyframe before it: up to one
    // 2 s GOP more; or from the stream's first keyframe when the rodent came sooner after the
    // agent connected) to the post-roll after the end.
    let before = (start.at - from).num_milliseconds();
    let stream_age = (from - agent_started).num_milliseconds();
    assert!(
        (PRE_ROLL_SECS * 1000..=PRE_ROLL_SECS * 1000 + 2_500).contains(&before)
            || (0..PRE_ROLL_SECS * 1000).contains(&before) && stream_age < 5_000,
        "clip starts {before} ms before the episode, {stream_age} ms after the agent started"
    );
    let after = (to - end.at).num_milliseconds();
    assert!(
        (POST_ROLL_SECS * 1000 - 500..=POST_ROLL_SECS * 1000 + 500).contains(&after),
        "clip ends {after} ms after the episode"
    );
    let spool = edge_dir.join("evidence-spool");
    let waiting = std::fs::read_dir(&spool).unwrap().count();
    assert!(
        waiting >= 4,
        "clip, two snapshots and rejected/ wait in the spool: {waiting}"
    );

    // Now the gateway starts; the uploads come in without anyone asking again.
    let _gateway = Running(
        Command::new(&gateway_bin)
            .args(["run", "--config"])
            .arg(&gw_config)
            .spawn()
            .unwrap(),
    );
    let data = gw_dir.join("data");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut clip_blob, mut snapshot_blob) = (None, None);
    while Instant::now() < deadline && (clip_blob.is_none() || snapshot_blob.is_none()) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        clip_blob = stored(&data, clip.sha256.as_str());
        snapshot_blob = stored(&data, snapshot.sha256.as_str());
    }
    for (blob, reference, kind) in [
        (&clip_blob, &clip, EvidenceKind::Clip),
        (&snapshot_blob, &snapshot, EvidenceKind::Snapshot),
    ] {
        let (bytes, meta, signature) = blob.clone().unwrap_or_else(|| panic!("{kind:?} stored"));
        assert_eq!(evidence::sha256_hex(&bytes), reference.sha256);
        assert_eq!(bytes.len() as u64, reference.size);
        assert_eq!(
            (meta.kind, meta.edge_id.as_str(), meta.camera_id.as_str()),
            (kind, EDGE, "night")
        );
        evidence::verify(&meta, &signature, &edge_key).expect("signed by the edge's device key");
    }
    // The annotated snapshots travel too: a clip plus a clean and an annotated still for the start
    // and each update (they may still be on their way: uploads go one at a time).
    let updates = seen
        .iter()
        .filter(|d| d.phase == EpisodePhase::Update)
        .count();
    let stored_count = || {
        walk(&data.join("evidence/blobs"))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_count() < 3 + 2 * updates && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        stored_count(),
        3 + 2 * updates,
        "clip + clean and annotated snapshot per start/update"
    );

    // The clip plays and lasts what its time range says.
    let mp4 = dir.path().join("clip.mp4");
    std::fs::write(&mp4, &clip_blob.unwrap().0).unwrap();
    let secs = duration_secs(&mp4);
    let expected = (to - from).num_milliseconds() as f64 / 1000.0;
    assert!(
        (secs - expected).abs() < 1.0,
        "clip lasts {secs} s, its range {expected} s"
    );
    let frames = decoded_frames(&mp4);
    assert!(
        frames as f64 >= secs * 10.0 * 0.8,
        "{frames} frames decode in {secs} s at 10 fps"
    );

    // Delivered blobs leave the spool; nothing is kept aside.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && std::fs::read_dir(&spool).unwrap().count() > 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("rejected")], "{left:?}");
    assert_eq!(
        std::fs::read_dir(spool.join("rejected")).unwrap().count(),
        0
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Rows of `table` in the agent's outbox file (read by a second process, as SQLite allows).
async fn rows(outbox: &Path, table: &str) -> i64 {
    let Ok(pool) = sqlx::SqlitePool::connect(&format!("sqlite://{}", outbox.display())).await
    else {
        return 0;
    };
    let query = match table {
        "held" => "SELECT COUNT(*) FROM held",
        _ => "SELECT COUNT(*) FROM uploads",
    };
    let n = sqlx::query_scalar(query)
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
    pool.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_event_waiting_for_its_clip_survives_a_sigkill_and_goes_out_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let agent_bin = bl_e2e::binary("edge-agent", "edge-agent", dir.path());
    let camsim = night_kitchen("night");
    let broker = PrivateBroker::start();
    let edge_dir = dir.path().join("box");
    std::fs::create_dir_all(&edge_dir).unwrap();
    keygen(&agent_bin, &edge_dir);
    // No gateway at all, and a post-roll long enough to kill the agent inside it.
    let config = edge_config(
        &edge_dir,
        &broker,
        &camsim.url("night", camsim::Stream::Sub),
        free_port(),
    );
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("post_roll_secs = {POST_ROLL_SECS}"),
        "post_roll_secs = 300",
    );
    std::fs::write(&config, text).unwrap();
    let mut options = MqttOptions::new("test-center-2", "127.0.0.1", broker.port);
    options.set_credentials(&broker.service_user, &broker.service_password);
    let (center, mut events) = AsyncClient::new(options, 64);
    center
        .subscribe("bl/v1/edge/+/events", QoS::AtLeastOnce)
        .await
        .unwrap();
    let run = || {
        Running(
            Command::new(&agent_bin)
                .args(["run", "--config"])
                .arg(&config)
                .env("BL_LOG", "warn")
                .spawn()
                .unwrap(),
        )
    };
    let mut agent = run();
    let outbox = edge_dir.join("outbox.db");
    let mut start_id = None;
    let mut end = None;
    let mut killed = false;
    let started = Instant::now();
    while end.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the end event never came"
        );
        if !killed && rows(&outbox, "held").await > 0 {
            // SIGKILL in the middle of the post-roll, and start again.
            drop(std::mem::replace(&mut agent, run()));
            killed = true;
        }
        let Ok(Ok(event)) = tokio::time::timeout(Duration::from_millis(500), events.poll()).await
        else {
            continue;
        };
        if let Event::Incoming(Packet::Publish(p)) = event
            && let EdgeEvent::Detection(d) = bl_proto::decode::<EdgeEvent>(&p.payload).unwrap()
        {
            match d.phase {
                EpisodePhase::Start => start_id = Some(d.episode_id),
                EpisodePhase::End => end = Some(d),
                EpisodePhase::Update => {}
            }
        }
    }
    let end = end.unwrap();
    assert!(killed, "the end went out only after the restart");
    assert_eq!(
        Some(end.episode_id),
        start_id,
        "the end of the episode that started"
    );
    assert!(
        end.clip.is_none(),
        "its pre-roll died with the process: no clip"
    );
    assert_eq!(rows(&outbox, "held").await, 0);
    assert!(
        rows(&outbox, "uploads").await >= 2,
        "the start's snapshots still wait for a gateway"
    );
}
