//! `make bench`: how many camera streams the gateway records at once on this machine, and the CPU
//! and resident memory each one costs. Prints a table; passes or fails nothing.
//!
//! One camsim camera (its RTSP media is shared, so it is encoded once however many sessions pull it)
//! is recorded by N recorders at once, each its own RTSP session, pipeline, segment files and index
//! rows, as N real cameras would be. CPU and memory are this process's, measured over a window with
//! N recorders plus one minus the same window with that one alone (camsim encodes only while a client
//! pulls, and the first recorder loads GStreamer's plugins), divided by N: the cost of one more stream.
//! A step "holds" when every recorder is recording and at least 80 % of the segments due in the window
//! were indexed.
//!
//! `BENCH_RECORD_STREAMS` (default `1,10,50,100,200`) lists the steps; `BENCH_RECORD_SUB=1` records
//! the 512 kbps sub-stream instead of the 2 Mbps 720p main stream.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bl_proto::CameraId;
use camsim::{CameraConfig, Config as CamsimConfig, Scenario, Stream};
use media_gateway::live::source::{ConfigSources, Source};
use media_gateway::recording::recorder::RecorderState;
use media_gateway::recording::{RecordingSettings, Recordings, retention};

const WARM_UP: Duration = Duration::from_secs(6);
const WINDOW: Duration = Duration::from_secs(12);
const SEGMENT: Duration = Duration::from_secs(2);

/// CPU seconds (user + system) this process has used.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; USER_HZ is 100.
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of this process in bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

struct Step {
    cpu: f64,
    rss: u64,
    segments: u64,
    recording: usize,
}

async fn measure(recordings: &Recordings, cameras: &[CameraId]) -> Step {
    tokio::time::sleep(WARM_UP).await;
    let (cpu0, seg0, t0) = (
        cpu_seconds(),
        recordings.shared.segments.load(Relaxed),
        Instant::now(),
    );
    tokio::time::sleep(WINDOW).await;
    let cpu = (cpu_seconds() - cpu0) / t0.elapsed().as_secs_f64();
    let recording = cameras
        .iter()
        .filter(|c| {
            recordings
                .recorder(c)
                .is_some_and(|r| r.state() == RecorderState::Recording)
        })
        .count();
    Step {
        cpu,
        rss: rss_bytes(),
        segments: recordings.shared.segments.load(Relaxed) - seg0,
        recording,
    }
}

#[tokio::main]
async fn main() {
    let steps: Vec<usize> = std::env::var("BENCH_RECORD_STREAMS")
        .unwrap_or_else(|_| "1,10,50,100,200".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let stream = if std::env::var("BENCH_RECORD_SUB").is_ok_and(|v| v == "1") {
        Stream::Sub
    } else {
        Stream::Main
    };
    let scenario_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-day.toml"
    );
    let scenario = Scenario::load(Path::new(scenario_path)).unwrap();
    let cams = camsim::serve(CamsimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![CameraConfig::new("bench-cam", scenario)],
    })
    .unwrap();
    let source = Source::Pull {
        url: cams.url("bench-cam", stream),
        sub_url: None,
        username: None,
        password: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let settings = RecordingSettings {
        segment: SEGMENT,
        // Keep the disk in check: the benchmark writes up to ~50 MB/s at 200 main streams.
        limits: retention::Limits {
            max_bytes: Some(1 << 30),
            max_age: None,
        },
        min_free_bytes: 64 << 20,
        ..RecordingSettings::default()
    };
    let recordings = Recordings::open(
        settings,
        dir.path(),
        Arc::new(ConfigSources::new(Vec::new())),
    )
    .unwrap();

    let label = if stream == Stream::Main {
        "720p 2 Mbps main"
    } else {
        "640x360 512 kbps sub"
    };
    println!(
        "recording: streams of one camsim camera ({label}) recorded at once, {SEGMENT:?} segments"
    );
    let first = CameraId::new("rec-base").unwrap();
    recordings.start(&first, &source, false).unwrap();
    let base = measure(&recordings, std::slice::from_ref(&first)).await;
    println!(
        "baseline (camsim encoding + one recorder): CPU {:.1} % of a core, RSS {:.1} MB",
        base.cpu * 100.0,
        base.rss as f64 / 1e6
    );
    println!(
        "{:>8} {:>10} {:>12} {:>14} {:>16} {:>14} {:>6}",
        "streams", "recording", "segments", "CPU total %", "CPU/stream %", "RSS/stream MB", "held"
    );
    for n in steps {
        let cameras: Vec<CameraId> = (0..n)
            .map(|i| CameraId::new(format!("rec-{i:04}")).unwrap())
            .collect();
        for c in &cameras {
            recordings.start(c, &source, false).unwrap();
        }
        let step = measure(&recordings, &cameras).await;
        // The baseline recorder indexes segments in the window too.
        let due = (n + 1) as f64 * WINDOW.as_secs_f64() / SEGMENT.as_secs_f64();
        let held = step.recording == n && step.segments as f64 >= 0.8 * due;
        println!(
            "{:>8} {:>10} {:>12} {:>14.1} {:>16.2} {:>14.2} {:>6}",
            n,
            step.recording,
            step.segments,
            step.cpu * 100.0,
            (step.cpu - base.cpu).max(0.0) * 100.0 / n as f64,
            step.rss.saturating_sub(base.rss) as f64 / 1e6 / n as f64,
            if held { "yes" } else { "NO" }
        );
        for c in &cameras {
            recordings.stop(c);
        }
        recordings.drained(Duration::from_secs(15)).await;
        // The next step starts from fresh recorders (a stopped one is replaced on start).
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !held {
            break;
        }
    }
    recordings.shutdown();
}
