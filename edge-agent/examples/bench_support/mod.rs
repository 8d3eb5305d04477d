//! What the edge benchmarks share: CPU and memory readings from `/proc` and the thread clock, camsim
//! in a process of its own, and a small agent — the real ingest and detection worker of
//! `edge-agent run` — with a count of the frames each camera's detector analysed.
//!
//! Included by `#[path]` from `bench-*.rs`; not an example of its own (cargo only builds
//! `examples/*.rs` and `examples/*/main.rs`).

#![allow(dead_code)] // each bench uses part of it

use bl_proto::{CameraId, EdgeId};
use bl_service::secret::Secret;
use edge_agent::detect::{Detection, Detector, Frame, RodentConfig, RodentDetector};
use edge_agent::episode::Episodes;
use edge_agent::evidence::Recorder;
use edge_agent::ingest::health::Thresholds;
use edge_agent::ingest::pipeline::FrameFormat;
use edge_agent::ingest::{self, CameraSource, HealthBoard, IngestContext};
use edge_agent::outbox::Outbox;
use edge_agent::watch::{self, CameraWatch, EventSink};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// CPU time of the calling thread, milliseconds (`CLOCK_THREAD_CPUTIME_ID`): what a call costs
/// whatever else the loaded machine runs meanwhile.
pub fn thread_cpu_ms() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 * 1000.0 + t.tv_nsec as f64 / 1e6
}

/// Median and 95th percentile of some samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spread {
    pub n: usize,
    pub median: f64,
    pub p95: f64,
}

impl Spread {
    pub fn of(mut v: Vec<f64>) -> Spread {
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let at = |q: f64| v[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
        Spread {
            n,
            median: at(0.5),
            p95: at(0.95),
        }
    }
}

/// CPU time (user + system) a process has used so far, milliseconds; `None` once it is gone.
pub fn process_cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), closed by the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 1000.0 / rustix::param::clock_ticks_per_second() as f64)
}

/// Resident memory of a process, bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// How busy the whole machine is: (busy, total) jiffies of all CPUs since boot, from `/proc/stat`.
pub fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The repository's root (scenarios are taken from it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scenario file of the repository rewritten at another size and rate: sizes in pixels (rodent
/// bodies, insects) are scaled with the picture, so the scene looks the same, only smaller.
pub fn scaled_scenario(path: &Path, width: u32, height: u32, fps: u32) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut doc: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let old_width = doc
        .get("width")
        .and_then(|v| v.as_integer())
        .unwrap_or(1280) as f64;
    let factor = width as f64 / old_width;
    doc.insert("width".into(), i64::from(width).into());
    doc.insert("height".into(), i64::from(height).into());
    doc.insert("fps".into(), i64::from(fps).into());
    for list in ["actor", "distractor"] {
        let Some(items) = doc.get_mut(list).and_then(|v| v.as_array_mut()) else {
            continue;
        };
        for item in items.iter_mut().filter_map(|i| i.as_table_mut()) {
            for key in ["body_length_px", "size_px", "jitter_px"] {
                if let Some(v) = item
                    .get(key)
                    .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
                {
                    item.insert(key.into(), (v * factor).max(1.0).into());
                }
            }
        }
    }
    toml::to_string(&doc).expect("a TOML table serialises")
}

/// camsim serving cameras from a process of its own, so its CPU is counted apart from the agent's.
/// Stopped (SIGTERM, then killed) when dropped.
pub struct Camsim {
    child: Child,
    pub port: u16,
}

impl Camsim {
    /// Starts `camsim` with `cameras` (id, scenario file); waits for its listening line.
    pub fn start(cameras: &[(String, PathBuf)]) -> Camsim {
        let bin = camsim_binary();
        let mut cmd = Command::new(&bin);
        cmd.arg("--listen").arg("127.0.0.1:0");
        for (id, scenario) in cameras {
            cmd.arg("--camera")
                .arg(format!("{id}={}", scenario.display()));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines
                .next()
                .and_then(|l| l.ok())
                .expect("camsim exited before it listened");
            if let Some(rest) = line.split("rtsp://127.0.0.1:").nth(1) {
                let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                break digits.parse().expect("camsim's port");
            }
        };
        // Keep reading its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Camsim { child, port }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The sub stream (or the main one) of a camera.
    pub fn url(&self, id: &str, sub: bool) -> String {
        let tail = if sub { "/sub" } else { "" };
        format!("rtsp://127.0.0.1:{}/cam/{id}{tail}", self.port)
    }
}

impl Drop for Camsim {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The camsim binary: `$CAMSIM`, else beside this example's folder (`cargo build --release -p
/// camsim` puts it there).
fn camsim_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CAMSIM") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("camsim"))
        .expect("a target folder");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (cargo build --release -p camsim) or set CAMSIM",
        bin.display()
    );
    bin
}

/// A detector that counts the frames it analysed and their thread CPU time.
pub struct Counted<D> {
    pub inner: D,
    pub frames: Arc<AtomicU64>,
    pub cpu_us: Arc<AtomicU64>,
}

impl<D: Detector> Detector for Counted<D> {
    fn model_name(&self) -> &str {
        self.inner.model_name()
    }

    fn model_version(&self) -> &str {
        self.inner.model_version()
    }

    fn process(&mut self, frame: &Frame<'_>) -> Vec<Detection> {
        let started = thread_cpu_ms();
        let out = self.inner.process(frame);
        let spent = ((thread_cpu_ms() - started) * 1000.0) as u64;
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.cpu_us.fetch_add(spent, Ordering::Relaxed);
        out
    }
}

/// One camera of a [`BenchAgent`]: frames its rodent detector analysed, and their CPU time.
#[derive(Clone, Default)]
pub struct CameraCounters {
    pub frames: Arc<AtomicU64>,
    pub cpu_us: Arc<AtomicU64>,
}

/// The agent's camera path as `edge-agent run` builds it — [`ingest::spawn`] per camera (RTSP,
/// decode to grey 320x180 at 5 fps, health, the pre-roll when a recorder is given) and the one
/// detection worker ([`watch::run`]) with a rodent detector per camera, active all day — without
/// the uplink (events stay in a throw-away outbox).
pub struct BenchAgent {
    pub cameras: Vec<(CameraId, CameraCounters)>,
    pub board: HealthBoard,
    pub recorders: HashMap<CameraId, Recorder>,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Kept open like the agent's config channel (the center's rule updates).
    _updates: tokio::sync::mpsc::Sender<edge_agent::remote::Update>,
    _dir: tempfile::TempDir,
}

impl BenchAgent {
    /// Starts watching `cameras` (id, RTSP URL); with `recorder`, each camera gets its own evidence
    /// recorder made by it.
    pub async fn start(
        cameras: &[(String, String)],
        recorder: Option<&dyn Fn() -> Recorder>,
    ) -> BenchAgent {
        let dir = tempfile::tempdir().expect("temp dir");
        let outbox = Outbox::open(&dir.path().join("outbox.db"), 256 << 20)
            .await
            .expect("outbox");
        let edge = EdgeId::new("bench-edge").expect("edge id");
        let shutdown = CancellationToken::new();
        // The detection queue of `edge-agent run` (main.rs): 16 frames, full = frame dropped.
        let (frames, frames_rx) = tokio::sync::mpsc::channel(16);
        let board = HealthBoard::default();
        let mut recorders = HashMap::new();
        let mut watches = HashMap::new();
        let mut counted = Vec::new();
        let mut sources = Vec::new();
        for (id, url) in cameras {
            let id = CameraId::new(id.clone()).expect("camera id");
            if let Some(make) = recorder {
                recorders.insert(id.clone(), make());
            }
            let counters = CameraCounters::default();
            let rodent = RodentDetector::new(RodentConfig::default()).expect("rodent detector");
            let detector = Counted {
                inner: rodent,
                frames: counters.frames.clone(),
                cpu_us: counters.cpu_us.clone(),
            };
            watches.insert(
                id.clone(),
                CameraWatch {
                    detectors: vec![Box::new(detector)],
                    episodes: Episodes::new(),
                    rolls: None,
                },
            );
            counted.push((id.clone(), counters));
            sources.push(CameraSource {
                id,
                url: Secret::new(url.clone()),
            });
        }
        let context = IngestContext {
            edge: edge.clone(),
            outbox: outbox.clone(),
            board: board.clone(),
            frames,
            format: FrameFormat::default(),
            thresholds: Thresholds::default(),
            recorders: recorders.clone(),
            // rodents only: the grey frames
            colour: None,
        };
        let mut tasks: Vec<_> = sources
            .into_iter()
            .map(|s| ingest::spawn(s, context.clone(), shutdown.clone()))
            .collect();
        drop(context);
        let (updates, updates_rx) = tokio::sync::mpsc::channel(1);
        tasks.push(tokio::spawn(watch::run(
            edge,
            EventSink {
                outbox,
                evidence: None,
                sightings: None,
                talk: None,
            },
            watches,
            480,
            frames_rx,
            updates_rx,
            shutdown.clone(),
        )));
        BenchAgent {
            cameras: counted,
            board,
            recorders,
            shutdown,
            tasks,
            _updates: updates,
            _dir: dir,
        }
    }

    /// Frames analysed so far, per camera.
    pub fn frames(&self) -> Vec<u64> {
        self.cameras
            .iter()
            .map(|(_, c)| c.frames.load(Ordering::Relaxed))
            .collect()
    }

    /// Detector CPU so far, all cameras, milliseconds.
    pub fn detector_cpu_ms(&self) -> f64 {
        self.cameras
            .iter()
            .map(|(_, c)| c.cpu_us.load(Ordering::Relaxed) as f64 / 1000.0)
            .sum()
    }

    /// Waits until every camera's detector has analysed a frame (at most `limit`); false if not.
    pub async fn wait_all_flowing(&self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.frames().iter().all(|&n| n > 0) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// Encoded bitrate of each camera as ingest measured it, kbit/s.
    pub fn bitrates_kbps(&self) -> Vec<u32> {
        let board = self.board.lock().expect("health board");
        self.cameras
            .iter()
            .map(|(id, _)| board.get(id).map_or(0, |h| h.bitrate_kbps))
            .collect()
    }

    /// Frames per second each camera's pipeline delivered to ingest, as its health reports it
    /// (before the detection queue).
    pub fn ingest_fps(&self) -> Vec<f64> {
        let board = self.board.lock().expect("health board");
        self.cameras
            .iter()
            .map(|(id, _)| board.get(id).map_or(0.0, |h| f64::from(h.fps)))
            .collect()
    }

    /// Stops every camera and the detection worker.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// Formats bytes as MiB.
pub fn mib(bytes: f64) -> String {
    format!("{:.1}", bytes / (1024.0 * 1024.0))
}

/// The CPU's model name, for the tables' heading.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The machine's load average (1, 5, 15 min): other engineers share it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Runs this example again as the agent under test (a fresh process per step, so its CPU and
/// memory are its own): `args` tell it what to watch. The child prints `measuring` when its
/// cameras flow and the measured window starts (`at_start` is called then), and `result {json}`
/// at the end, which is returned.
pub fn run_agent_child(args: &[String], at_start: impl FnOnce()) -> serde_json::Value {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the agent child starts");
    let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut at_start = Some(at_start);
    let mut result = None;
    for line in lines.map_while(Result::ok) {
        if line == "measuring" {
            if let Some(f) = at_start.take() {
                f();
            }
        } else if let Some(json) = line.strip_prefix("result ") {
            result = Some(serde_json::from_str(json).expect("the child's result is JSON"));
        }
    }
    let status = child.wait().expect("the agent child ends");
    assert!(status.success(), "the agent child failed: {status}");
    result.expect("the agent child printed no result")
}

/// The arguments after `flag` up to the next `--…` flag.
pub fn values_after(args: &[String], flag: &str) -> Vec<String> {
    args.iter()
        .skip_while(|a| *a != flag)
        .skip(1)
        .take_while(|a| !a.starts_with("--"))
        .cloned()
        .collect()
}

/// The one value after `flag`, parsed, or `default`.
pub fn value_after<T: std::str::FromStr>(args: &[String], flag: &str, default: T) -> T {
    values_after(args, flag)
        .first()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `main` of a two-process bench: the agent under test when run with `--agent`, the orchestrator
/// that starts it otherwise.
pub fn two_process_main(orchestrate: fn(&[String]), agent: fn(&[String])) {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--agent") {
        agent(&args);
    } else {
        orchestrate(&args);
    }
}

/// The camera counts after `--counts`, or `default`.
pub fn counts_arg(args: &[String], default: &[usize]) -> Vec<usize> {
    let counts: Vec<usize> = values_after(args, "--counts")
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    if counts.is_empty() {
        default.to_vec()
    } else {
        counts
    }
}

/// camsim serving `n` night kitchens scaled to `width`x`height` at `fps`, named `{prefix}01`…
/// (the scenario is written into `dir`); the ids and the server.
pub fn night_kitchens(
    dir: &Path,
    prefix: &str,
    n: usize,
    (width, height, fps): (u32, u32, u32),
) -> (Vec<String>, Camsim) {
    let scenario = dir.join(format!("night-{width}x{height}.toml"));
    let source = repo_root().join("tests/camsim/scenarios/kitchen-night.toml");
    std::fs::write(&scenario, scaled_scenario(&source, width, height, fps))
        .expect("write scenario");
    let ids: Vec<String> = (1..=n).map(|i| format!("{prefix}{i:02}")).collect();
    let cameras: Vec<_> = ids
        .iter()
        .map(|id| (id.clone(), scenario.clone()))
        .collect();
    let camsim = Camsim::start(&cameras);
    (ids, camsim)
}
