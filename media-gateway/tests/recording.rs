//! Recording end to end: camsim serves a camera over real RTSP, the gateway records it into fMP4
//! segments, ffprobe plays them, `media-gateway verify` checks the hash chain and names a deleted or
//! altered segment, retention spares held segments, and a full disk (a small tmpfs) stops recording
//! with an alarm without corrupting anything, then recording resumes when room returns.

mod common;

use common::tmpfs::Tmpfs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bl_proto::token::MediaAction;
use camsim::{CameraConfig, Config as CamsimConfig, Scenario, Stream};
use common::{CAMERA, NODE, TestGateway, files_under, token_for};
use media_gateway::config::{Config, SourcesConfig};
use media_gateway::live::source::Source;
use media_gateway::recording::index::{EntryKind, Index};
use media_gateway::recording::verify as recording_verify;
use media_gateway::recording::{INDEX_FILE, RecordingSettings, retention};
use reqwest::StatusCode;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_media-gateway");

fn camsim_server() -> camsim::Server {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-day.toml"
    );
    let scenario = Scenario::load(Path::new(path)).unwrap();
    camsim::serve(CamsimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![CameraConfig::new(CAMERA, scenario)],
    })
    .unwrap()
}

/// A gateway config that pulls `CAMERA` from camsim and records in 2 s segments (camsim's GOP).
fn config(data_dir: &Path, cams: &camsim::Server, continuous: bool) -> Config {
    let mut config = common::config(data_dir);
    config.sources = SourcesConfig::File(vec![(
        CAMERA.parse().unwrap(),
        Source::Pull {
            url: cams.url(CAMERA, Stream::Main),
            sub_url: None,
            username: None,
            password: None,
        },
    )]);
    config.recording = RecordingSettings {
        segment: Duration::from_secs(2),
        min_free_bytes: 256 << 10,
        room_poll: Duration::from_millis(300),
        continuous: if continuous {
            vec![CAMERA.parse().unwrap()]
        } else {
            Vec::new()
        },
        ..RecordingSettings::default()
    };
    config
}

fn record_token() -> String {
    token_for(CAMERA, MediaAction::Record, NODE, 300)
}

async fn post(gw: &TestGateway, what: &str, body: Option<Value>) -> reqwest::Response {
    let mut req = gw
        .client
        .post(gw.url(&format!("/recording/{CAMERA}/{what}")))
        .bearer_auth(record_token());
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn status(gw: &TestGateway) -> Value {
    let r = gw
        .client
        .get(gw.url(&format!("/recording/{CAMERA}/status")))
        .bearer_auth(token_for(CAMERA, MediaAction::View, NODE, 300))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Polls the status until `done` holds, at most `secs`.
async fn wait_status(gw: &TestGateway, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = status(gw).await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "status never got there: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn recordings(data_dir: &Path) -> PathBuf {
    data_dir.join("recordings")
}

/// What `media-gateway verify DIR` prints for recordings, computed in this process (the binary in
/// the shared target folder may be another worktree's build; [`verify_cli`] runs the real one).
fn verify(dir: &Path) -> (bool, String) {
    let dir = recording_verify::find_recordings_dir(dir).expect("a recordings folder");
    let report = recording_verify::verify(&dir, None);
    (report.is_intact(), report.render(&dir))
}

/// `media-gateway verify DIR`: exit success and stdout.
fn verify_cli(dir: &Path) -> (bool, String) {
    let out = Command::new(BIN).arg("verify").arg(dir).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Kept segment paths of `CAMERA`, in chain order.
fn segments(data_dir: &Path) -> Vec<String> {
    let ix = Index::open_read_only(&recordings(data_dir).join(INDEX_FILE)).unwrap();
    ix.entries(CAMERA)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Segment && e.pruned_at_ms.is_none())
        .filter_map(|e| e.path)
        .collect()
}

/// ffprobe's codec and decoded frame count of a file.
fn probe(file: &Path) -> (String, u64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe is installed (deploy/dev/install-deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (codec, frames) = text.split_once(',').unwrap_or((&text, "0"));
    (codec.to_owned(), frames.parse().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recorded_segments_play_in_ffprobe_chain_across_a_gap_and_verify_names_a_deleted_or_altered_one()
 {
    let cams = camsim_server();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(config(dir.path(), &cams, false)).await;

    // A token for another action is refused; record starts it.
    let r = gw
        .client
        .post(gw.url(&format!("/recording/{CAMERA}/start")))
        .bearer_auth(token_for(CAMERA, MediaAction::View, NODE, 300))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(post(&gw, "start", None).await.status(), StatusCode::OK);
    wait_status(&gw, 40, |s| s["segments"].as_u64() >= Some(3)).await;
    let r = post(&gw, "stop", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["recording"]["state"], "stopped", "{s}");

    // Recording again after a stop: the chain states the gap.
    assert_eq!(post(&gw, "start", None).await.status(), StatusCode::OK);
    let before = segments(dir.path()).len() as u64;
    wait_status(&gw, 40, |s| s["segments"].as_u64() > Some(before)).await;
    assert_eq!(post(&gw, "stop", None).await.status(), StatusCode::OK);
    let ix = Index::open_read_only(&recordings(dir.path()).join(INDEX_FILE)).unwrap();
    let entries = ix.entries(CAMERA).unwrap();
    let gaps: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Gap)
        .collect();
    assert_eq!(gaps.len(), 1, "{entries:#?}");
    assert!(gaps[0].reason.as_deref().unwrap().contains("not recording"));

    let segs = segments(dir.path());
    assert!(segs.len() >= 4, "{segs:?}");
    let mut full = 0;
    for seg in &segs {
        let (codec, frames) = probe(&recordings(dir.path()).join(seg));
        assert_eq!(codec, "h264", "{seg}");
        assert!(frames >= 1, "{seg}: {frames} frames");
        // 10 fps, cut at keyframes every 2 s: a full segment holds a GOP or more (the last one of
        // a run ends at the stop, and may be short).
        full += usize::from(frames >= 10);
    }
    assert!(full >= 3, "{full} full segments of {}", segs.len());
    assert!(
        files_under(&recordings(dir.path()))
            .iter()
            .all(|f| !f.contains(".partial-")),
        "no partial file after a stop"
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(&format!(
            "bl_gateway_recording_segments_total {}\n",
            segs.len()
        )),
        "{metrics}"
    );
    gw.stop().await;

    let (ok, out) = verify_cli(dir.path());
    assert!(ok, "{out}");
    assert!(out.contains("OK "), "{out}");

    std::fs::remove_file(recordings(dir.path()).join(&segs[1])).unwrap();
    let altered = recordings(dir.path()).join(&segs[2]);
    let mut bytes = std::fs::read(&altered).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&altered, bytes).unwrap();
    let (ok, out) = verify_cli(&recordings(dir.path()));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("FAIL missing segment: {}\n", segs[1])),
        "{out}"
    );
    assert!(
        out.contains(&format!("FAIL altered segment: {}: sha256 is", segs[2])),
        "{out}"
    );
    assert_eq!(out.matches("FAIL ").count(), 2, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_removes_the_oldest_segments_but_never_a_held_one() {
    let cams = camsim_server();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(config(dir.path(), &cams, true)).await;
    let s = wait_status(&gw, 40, |s| s["segments"].as_u64() >= Some(4)).await;
    assert_eq!(s["mode"], "continuous");
    let ix = Index::open_read_only(&recordings(dir.path()).join(INDEX_FILE)).unwrap();
    let second = ix
        .entries(CAMERA)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Segment)
        .nth(1)
        .unwrap();
    let ms = |t: i64| {
        chrono::DateTime::from_timestamp_millis(t)
            .unwrap()
            .to_rfc3339()
    };
    let r = post(
        &gw,
        "hold",
        Some(json!({"from": ms(second.start_ms + 1), "to": ms(second.end_ms - 1), "caseId": "INC-2026-0042"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["segmentsHeld"], 1, "{v}");
    let r = post(
        &gw,
        "hold",
        Some(json!({"from": ms(5), "to": ms(1), "caseId": "x"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        post(&gw, "stop", None).await.status(),
        StatusCode::CONFLICT,
        "continuous recording is stopped by config only"
    );
    gw.stop().await;

    // The same data under a 1-byte quota: everything goes but the held segment.
    let mut cfg = config(dir.path(), &cams, false);
    cfg.recording.limits = retention::Limits {
        max_bytes: Some(1),
        max_age: None,
    };
    let gw = TestGateway::start_with(cfg).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while segments(dir.path()).len() > 1 {
        assert!(Instant::now() < deadline, "retention did not run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = second.path.clone().unwrap();
    assert_eq!(segments(dir.path()), std::slice::from_ref(&held));
    assert!(recordings(dir.path()).join(&held).exists());
    let s = status(&gw).await;
    assert_eq!(s["holds"][0]["caseId"], "INC-2026-0042", "{s}");
    gw.stop().await;
    let (ok, out) = verify(dir.path());
    assert!(ok, "pruned segments are stated, not failures: {out}");
    assert!(out.contains("pruned by retention"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_crash_the_unfinished_segment_is_removed_and_a_complete_one_without_its_row_is_indexed()
 {
    let cams = camsim_server();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(config(dir.path(), &cams, false)).await;
    assert_eq!(post(&gw, "start", None).await.status(), StatusCode::OK);
    wait_status(&gw, 40, |s| s["segments"].as_u64() >= Some(2)).await;
    assert_eq!(post(&gw, "stop", None).await.status(), StatusCode::OK);
    gw.stop().await;

    // What a power loss can leave: the segment in progress, and a complete, durable, named segment
    // whose index row was not committed.
    let ix = Index::open_read_only(&recordings(dir.path()).join(INDEX_FILE)).unwrap();
    let last = ix.entries(CAMERA).unwrap().pop().unwrap();
    drop(ix);
    let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap();
    let orphan = media_gateway::recording::segment::final_path(
        CAMERA,
        at(last.end_ms),
        at(last.end_ms + 2_000),
    );
    std::fs::copy(
        recordings(dir.path()).join(last.path.as_ref().unwrap()),
        recordings(dir.path()).join(&orphan),
    )
    .unwrap();
    let partial = recordings(dir.path())
        .join(CAMERA)
        .join(".partial-crash.mp4");
    std::fs::write(&partial, b"half a segment").unwrap();
    let (ok, out) = verify(dir.path());
    assert!(ok && out.contains("not indexed yet"), "{out}");

    let gw = TestGateway::start_with(config(dir.path(), &cams, false)).await;
    assert_eq!(post(&gw, "start", None).await.status(), StatusCode::OK);
    let s = wait_status(&gw, 40, |s| {
        s["lastEntry"]["end"].as_str()
            > Some(&*at(last.end_ms + 2_000).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
    .await;
    assert_eq!(post(&gw, "stop", None).await.status(), StatusCode::OK);
    gw.stop().await;
    assert!(!partial.exists(), "{s}");
    let entries = Index::open_read_only(&recordings(dir.path()).join(INDEX_FILE))
        .unwrap()
        .entries(CAMERA)
        .unwrap();
    let i = entries.iter().position(|e| e.id == last.id).unwrap();
    let adopted = &entries[i + 1];
    assert_eq!(adopted.path.as_deref(), Some(orphan.as_str()));
    assert_eq!(adopted.prev_hash, last.sha256, "it continues the chain");
    assert_eq!(
        entries[i + 2].kind,
        EntryKind::Gap,
        "then the restart's gap"
    );
    let (ok, out) = verify(dir.path());
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_stops_recording_with_an_alarm_corrupts_nothing_and_recording_resumes_when_room_returns()
 {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let _tmpfs = match Tmpfs::mount(&small, "4m") {
        Ok(t) => t,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a small tmpfs to fill ({why}); needs root");
            return;
        }
    };
    // Something else takes half the disk; recording fills the rest.
    let filler = small.join("filler");
    std::fs::write(&filler, vec![7u8; 2 << 20]).unwrap();
    let cams = camsim_server();
    let gw = TestGateway::start_with(config(&small, &cams, true)).await;

    let s = wait_status(&gw, 60, |s| s["alarm"]["kind"] == "storageFull").await;
    assert_eq!(s["recording"]["state"], "storageFull", "{s}");
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("bl_gateway_recording_storage_full 1\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("bl_gateway_recording_alarms_total 0\n"),
        "{metrics}"
    );
    let full_at = segments(&small).len();
    assert!(
        full_at >= 1,
        "some segments were recorded before the disk filled"
    );
    // Stopped: nothing partial left, and what is indexed is intact.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        files_under(&recordings(&small))
            .iter()
            .all(|f| !f.contains(".partial-")),
        "{:?}",
        files_under(&recordings(&small))
    );
    let (ok, out) = verify(&small);
    assert!(ok, "{out}\n{:?}", files_under(&small));

    std::fs::remove_file(&filler).unwrap();
    let s = wait_status(&gw, 40, |s| {
        s["recording"]["state"] == "recording" && s["segments"].as_u64() > Some(full_at as u64)
    })
    .await;
    assert!(s["alarm"].is_null(), "{s}");
    gw.stop().await;
    let ix = Index::open_read_only(&recordings(&small).join(INDEX_FILE)).unwrap();
    let reasons: Vec<String> = ix
        .entries(CAMERA)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Gap)
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("storage full")),
        "the time lost to the full disk is a gap entry: {reasons:?}"
    );
    let (ok, out) = verify(&small);
    assert!(ok, "{out}");
}
