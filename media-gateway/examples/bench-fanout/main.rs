//! `make bench`: how many viewers of one 2 Mbps 720p H.264 stream the gateway holds, beside Janus
//! (the Debian package's streaming plugin) fed the same RTP, with the same load client. Prints one
//! table; passes or fails nothing.
//!
//! Both servers run as their own processes, so their CPU (user + system, all threads, from /proc)
//! and resident memory are theirs alone; the load client (this process: camsim, the tap, every
//! viewer's webrtc-rs peer with DTLS-SRTP) shares the same 2 cores and its CPU is printed too.
//! For each step the viewers are added, left to settle, then measured over a window:
//! - loss: per viewer, 1 − packets received / sequence numbers spanned (after NACK repair, as a
//!   browser sees it); "held" = every viewer connected and receiving, mean loss < 1 %;
//! - CPU % of one core (total, and per viewer = total / viewers); RSS per viewer = growth over the
//!   server's RSS before the first viewer, / viewers;
//! - added latency p50, p99 and p99 of the packets outside keyframes (a keyframe is a burst):
//!   viewer 0's arrival minus the tap's for the same packet (the tap is a
//!   second RTSP client of the same camsim media, so this includes the gateway's own RTSP pull
//!   and the client's receive path: an upper bound). Packets are matched by payload; a payload
//!   the tap saw more than once (a still picture repeats P-frame fragments byte for byte) is
//!   ambiguous and not measured ("unmatched %").
//!
//! First frame: from asking to watch (creating the peer) to the first keyframe packet; "cold" =
//! the gateway's first viewer (it starts the camera pull), "warm" = the median of 5 later ones.
//!
//! Janus skips loopback interfaces when gathering ICE candidates, so the benchmark re-runs itself
//! in a private network namespace (`unshare --net`, needs root) with a veth address from the
//! benchmarking range (198.18.0.1): every packet stays inside that namespace, and both servers
//! and all viewers use that one address (and a multicast route: webrtc-rs joins the mDNS group).
//!
//! `BENCH_FANOUT_VIEWERS` (default `1,100,200,300,400`) lists the steps; `BENCH_FANOUT_PEERS`
//! (default `gateway,janus`); `BENCH_FANOUT_WINDOW_SECS` (default 10); `BENCH_FANOUT_SOAK_SECS`
//! (default 0): afterwards hold the gateway's last held step that long and print its RSS each
//! minute (memory flat or not); `BENCH_FANOUT_CLIENT_THREADS` (default 16): the load client's
//! tokio workers.

mod feed;
mod gateway;
mod janus;
mod process;
mod runtime;
mod viewer;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use camsim::{CameraConfig, Config as CamsimConfig, Scenario, Stream};
use futures::StreamExt as _;

use feed::{Arrivals, Tap};
use viewer::Viewer;

/// The namespace's interface and address (RFC 2544's benchmarking range).
const IFACE: &str = "bench0";
const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
const TAP_PORT: u16 = 15_002;
const JANUS_RTP_PORT: u16 = 15_004;
const NETNS_ENV: &str = "BENCH_FANOUT_IN_NETNS";
/// Viewers connecting at once.
const CONNECTING: usize = 8;
const SETTLE: Duration = Duration::from_secs(4);

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

/// Re-runs this benchmark inside a new network namespace with `IFACE` up at `IP`.
fn reexec_in_netns() -> ! {
    let exe = std::env::current_exe().expect("own path");
    let script = format!(
        "set -e; ip link set lo up; ip link add {IFACE} type veth peer name {IFACE}p; \
         ip addr add {IP}/32 dev {IFACE}; ip link set {IFACE}p up; ip link set {IFACE} up; \
         ip route add 224.0.0.0/4 dev {IFACE}; exec \"$0\" \"$@\""
    );
    let status = std::process::Command::new("unshare")
        .args(["--net", "--", "sh", "-c", &script])
        .arg(exe)
        .args(std::env::args().skip(1))
        .env(NETNS_ENV, "1")
        .status();
    match status {
        Ok(s) => std::process::exit(s.code().unwrap_or(1)),
        Err(e) => {
            eprintln!("bench-fanout: cannot run `unshare --net` (root needed): {e}");
            std::process::exit(1);
        }
    }
}

/// A server under test.
enum Server {
    Gateway(gateway::Gateway),
    Janus(janus::Janus),
}

impl Server {
    fn name(&self) -> &'static str {
        match self {
            Server::Gateway(_) => "gateway",
            Server::Janus(_) => "janus",
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Server::Gateway(g) => g.pid(),
            Server::Janus(j) => j.pid(),
        }
    }

    async fn connect(&self, probe: bool) -> anyhow::Result<Viewer> {
        match self {
            Server::Gateway(g) => g.connect(probe).await,
            Server::Janus(j) => j.connect(probe).await,
        }
    }
}

struct Row {
    viewers: usize,
    connected: usize,
    mean_loss: f64,
    worst_loss: f64,
    cpu: f64,
    client_cpu: f64,
    rss: u64,
    rss_per_viewer: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// p99 of the packets outside keyframes.
    p99_delta_ms: Option<f64>,
    /// Share of the probe's packets that came late (after a higher sequence number).
    probe_late: f64,
    /// Share of the probe's packets whose payload reached the tap more than once: not measured.
    probe_unmatched: f64,
    /// Datagrams the kernel dropped for full receive buffers (viewers' or servers').
    udp_drops: u64,
    held: bool,
}

fn percentile(mut v: Vec<u32>, p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    Some(f64::from(v[i]) / 1000.0)
}

/// Measures `viewers` over `window`.
async fn measure(
    server: &Server,
    viewers: &[Viewer],
    tap: &Arrivals,
    base_rss: u64,
    window: Duration,
) -> Row {
    let pid = server.pid();
    let me = std::process::id();
    let snapshot = |v: &Viewer| {
        (
            v.stats.packets.load(Relaxed),
            v.stats.highest_seq.load(Relaxed),
        )
    };
    let before: Vec<_> = viewers.iter().map(snapshot).collect();
    let late0 = viewers.first().map_or(0, |v| v.stats.late.load(Relaxed));
    let probe_packets0 = before.first().map_or(0, |b| b.0);
    if let Some(v) = viewers.first() {
        v.stats.take_latencies(tap);
    }
    let drops0 = process::udp_receive_drops();
    let (cpu0, me0, t0) = (
        process::cpu_seconds(pid),
        process::cpu_seconds(me),
        Instant::now(),
    );
    tokio::time::sleep(window).await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = (process::cpu_seconds(pid) - cpu0) / secs;
    let client_cpu = (process::cpu_seconds(me) - me0) / secs;
    let rss = process::rss_bytes(pid);
    let mut losses = Vec::with_capacity(viewers.len());
    let mut connected = 0;
    for (v, (p0, h0)) in viewers.iter().zip(before) {
        let (p1, h1) = snapshot(v);
        let expected = h1.saturating_sub(h0);
        let received = p1.saturating_sub(p0);
        if v.stats.connected.load(Relaxed) && received > 0 {
            connected += 1;
        }
        losses.push(if expected == 0 {
            1.0
        } else {
            1.0 - (received.min(expected) as f64 / expected as f64)
        });
    }
    let n = viewers.len().max(1);
    let mean_loss = losses.iter().sum::<f64>() / n as f64;
    let worst_loss = losses.iter().copied().fold(0.0, f64::max);
    let (latencies, unmatched) = viewers.first().map_or((Vec::new(), 0), |v| {
        let l = v.stats.take_latencies(tap);
        (l.samples, l.unmatched)
    });
    let probe_unmatched = unmatched as f64 / (latencies.len() + unmatched).max(1) as f64;
    let probe_late = viewers.first().map_or(0.0, |v| {
        let late = v.stats.late.load(Relaxed).saturating_sub(late0);
        late as f64 / (v.stats.packets.load(Relaxed).saturating_sub(probe_packets0)).max(1) as f64
    });
    let all: Vec<u32> = latencies.iter().map(|l| l.0).collect();
    let deltas: Vec<u32> = latencies.iter().filter(|l| !l.1).map(|l| l.0).collect();
    let p50_ms = percentile(all.clone(), 0.5);
    let p99_ms = percentile(all, 0.99);
    let p99_delta_ms = percentile(deltas, 0.99);
    Row {
        viewers: viewers.len(),
        connected,
        mean_loss,
        worst_loss,
        cpu,
        client_cpu,
        rss,
        rss_per_viewer: rss.saturating_sub(base_rss) as f64 / n as f64,
        p50_ms,
        p99_ms,
        p99_delta_ms,
        probe_late,
        probe_unmatched,
        udp_drops: process::udp_receive_drops().saturating_sub(drops0),
        held: connected == viewers.len() && mean_loss < 0.01,
    }
}

/// Adds viewers until there are `n`; returns how many attempts failed (and prints the first error).
async fn grow(server: &Server, viewers: &mut Vec<Viewer>, n: usize) -> usize {
    let missing = n.saturating_sub(viewers.len());
    let results: Vec<_> = futures::stream::iter(0..missing)
        .map(|_| server.connect(false))
        .buffer_unordered(CONNECTING)
        .collect()
        .await;
    let mut failed = 0;
    for r in results {
        match r {
            Ok(v) => viewers.push(v),
            Err(e) => {
                if failed == 0 {
                    eprintln!("{}: a viewer failed to connect: {e:#}", server.name());
                }
                failed += 1;
            }
        }
    }
    failed
}

struct FirstFrames {
    cold: Option<Duration>,
    warm: Option<Duration>,
}

async fn run_server(
    server: &Server,
    tap: &Tap,
    steps: &[usize],
    window: Duration,
    soak: Duration,
) -> anyhow::Result<(Vec<Row>, FirstFrames)> {
    // Janus is fed from its start; let it settle before its baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base_rss = process::rss_bytes(server.pid());
    let mut viewers = Vec::new();
    // Viewer 0 is the latency probe; it is also the gateway's cold start.
    let probe = server.connect(true).await?;
    let cold = probe.first_frame(Duration::from_secs(15)).await;
    viewers.push(probe);
    let mut warm = Vec::new();
    for _ in 0..5 {
        let v = server.connect(false).await?;
        if let Some(t) = v.first_frame(Duration::from_secs(15)).await {
            warm.push(t);
        }
        viewers.push(v);
        // Spread the joins over the GOP: a join right after a keyframe is the worst case for a
        // server without a GOP cache, right before one the best.
        tokio::time::sleep(Duration::from_millis(370)).await;
    }
    warm.sort();
    let firsts = FirstFrames {
        cold: if matches!(server, Server::Gateway(_)) {
            cold
        } else {
            None
        },
        warm: warm.get(warm.len() / 2).copied(),
    };
    let mut rows = Vec::new();
    let mut last_held = None;
    for &n in steps {
        let failed = grow(server, &mut viewers, n).await;
        tokio::time::sleep(SETTLE).await;
        // Steps below the warm-up viewers measure them all.
        let row = measure(server, &viewers, &tap.arrivals, base_rss, window).await;
        print_row(server.name(), &row);
        let held = row.held && failed == 0;
        rows.push(row);
        if !held {
            break;
        }
        last_held = Some(viewers.len());
    }
    if !soak.is_zero()
        && let Some(n) = last_held
    {
        viewers.truncate(n);
        println!("soak: {} viewers on {} for {soak:?}", n, server.name());
        let t0 = Instant::now();
        while t0.elapsed() < soak {
            let row = measure(
                server,
                &viewers,
                &tap.arrivals,
                base_rss,
                Duration::from_secs(60),
            )
            .await;
            println!(
                "  {:>5.1} min  RSS {:>7.1} MB  CPU {:>6.1} %  mean loss {:.2} %  connected {}",
                t0.elapsed().as_secs_f64() / 60.0,
                row.rss as f64 / 1e6,
                row.cpu * 100.0,
                row.mean_loss * 100.0,
                row.connected
            );
        }
    }
    for v in &viewers {
        v.close().await;
    }
    Ok((rows, firsts))
}

fn print_header() {
    println!(
        "{:>8} {:>8} {:>9} {:>8} {:>9} {:>8} {:>10} {:>8} {:>10} {:>9} {:>9} {:>12} {:>7} {:>10} {:>9} {:>9} {:>5}",
        "server",
        "viewers",
        "receiving",
        "loss %",
        "worst %",
        "CPU %",
        "CPU/view %",
        "RSS MB",
        "MB/viewer",
        "p50 ms",
        "p99 ms",
        "p99 non-key",
        "late %",
        "unmatched %",
        "client %",
        "UDP drops",
        "held"
    );
}

fn print_row(name: &str, r: &Row) {
    println!(
        "{:>8} {:>8} {:>9} {:>8.2} {:>9.2} {:>8.1} {:>10.3} {:>8.1} {:>10.3} {:>9} {:>9} {:>12} {:>7.2} {:>10.1} {:>9.1} {:>9} {:>5}",
        name,
        r.viewers,
        r.connected,
        r.mean_loss * 100.0,
        r.worst_loss * 100.0,
        r.cpu * 100.0,
        r.cpu * 100.0 / r.viewers.max(1) as f64,
        r.rss as f64 / 1e6,
        r.rss_per_viewer / 1e6,
        r.p50_ms.map_or("-".into(), |p| format!("{p:.1}")),
        r.p99_ms.map_or("-".into(), |p| format!("{p:.1}")),
        r.p99_delta_ms.map_or("-".into(), |p| format!("{p:.1}")),
        r.probe_late * 100.0,
        r.probe_unmatched * 100.0,
        r.client_cpu * 100.0,
        r.udp_drops,
        if r.held { "yes" } else { "NO" }
    );
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os(NETNS_ENV).is_none() {
        reexec_in_netns();
    }
    // The viewers' webrtc-rs peers block their worker threads at times: with one worker per core
    // the client, not the server, lost packets first (kernel receive-buffer drops at 100 viewers
    // with both servers and the client mostly idle). More workers than cores fixed that.
    let workers = env_or("BENCH_FANOUT_CLIENT_THREADS", "16").parse()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    process::raise_open_files();
    let steps: Vec<usize> = env_or("BENCH_FANOUT_VIEWERS", "1,100,200,300,400")
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let peers = env_or("BENCH_FANOUT_PEERS", "gateway,janus");
    let window = Duration::from_secs(env_or("BENCH_FANOUT_WINDOW_SECS", "10").parse()?);
    let soak = Duration::from_secs(env_or("BENCH_FANOUT_SOAK_SECS", "0").parse()?);

    let scenario_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-day.toml"
    );
    let cams = camsim::serve(CamsimConfig {
        listen: "127.0.0.1:0".parse()?,
        truth_dir: None,
        cameras: vec![CameraConfig::new(
            gateway::CAMERA,
            Scenario::load(Path::new(scenario_path))?,
        )],
    })?;
    let url = cams.url(gateway::CAMERA, Stream::Main);
    let janus_rtp = SocketAddr::new(IP, JANUS_RTP_PORT);
    let tap = Tap::start(&url, SocketAddr::new(IP, TAP_PORT), janus_rtp).await?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "fan-out: viewers of one camsim camera (720p 2 Mbps H.264, {window:?} windows), gateway vs Janus {}; load average before: {}",
        janus_version(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    print_header();
    let mut firsts = Vec::new();
    for peer in peers.split(',') {
        let server = match peer.trim() {
            "gateway" => Server::Gateway(gateway::Gateway::start(&url, IP).await?),
            "janus" => Server::Janus(janus::Janus::start(IFACE, IP, janus_rtp).await?),
            other => anyhow::bail!("BENCH_FANOUT_PEERS: unknown server {other:?}"),
        };
        match run_server(&server, &tap, &steps, window, soak).await {
            Ok((_, f)) => firsts.push((server.name(), f)),
            Err(e) => println!("{}: {e:#}", server.name()),
        }
        drop(server);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for (name, f) in firsts {
        let ms = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{} ms", d.as_millis()));
        println!(
            "first frame, {name}: cold {} (the first viewer starts the camera pull), warm {} (median of 5)",
            ms(f.cold),
            ms(f.warm)
        );
    }
    Ok(())
}

fn janus_version() -> String {
    std::process::Command::new("janus")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Janus version: ").map(str::to_owned))
        })
        .unwrap_or_else(|| "(not installed)".into())
}
