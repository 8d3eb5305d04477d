//! `make bench`: talk-down at the edge — set-up time (`startTalk` → first audio at the camera's
//! backchannel) and mouth-to-ear latency (a tone let through at a known moment at the talk source →
//! its arrival in the camera's backchannel recording). Real GStreamer on both sides: a camsim ONVIF
//! camera and an RTSP server serving Opus like the gateway. Prints a table; passes or fails nothing.
//!
//! The latency covers the gateway's RTSP serving, the pull, the box's decoding to G.711 and the
//! camera's side; the browser's microphone and WHIP to the gateway come on top.

#[path = "../tests/talk_support/mod.rs"]
mod talk_support;

use bl_proto::CameraId;
use bl_proto::command::{StartTalk, TalkOutput};
use bl_proto::token::MediaToken;
use bl_service::secret::Secret;
use edge_agent::talk::Talk;
use std::time::{Duration, Instant};
use talk_support::*;

const RUNS: usize = 7;
const RATE: f64 = 8000.0;

#[tokio::main]
async fn main() {
    bl_service::telemetry::init("bench-talk");
    let dir = tempfile::tempdir().unwrap();
    let server = camsim(&[("bench", true)], dir.path());
    let camera = CameraId::new("bench").unwrap();
    let talk = Talk::new(
        vec![(
            camera.clone(),
            Some(Secret::new(server.url("bench", camsim::Stream::Main))),
        )],
        None,
    );
    let (mut setups, mut latencies, mut failed) = (Vec::new(), Vec::new(), 0);
    for run in 0..RUNS {
        let token = format!("bench-{run}");
        let source = TalkSource::start("bench", &token, 1000.0, true);
        let before = recordings(dir.path(), "bench").len();
        let started = Instant::now();
        talk.start(&StartTalk {
            camera_id: camera.clone(),
            pull_url: source.pull_url("bench"),
            token: MediaToken::new(token),
            output: TalkOutput::Backchannel,
        })
        .await
        .expect("talk starts");
        // Set-up: until camsim writes the first samples of a new recording.
        let file = tokio::task::spawn_blocking({
            let d = dir.path().to_path_buf();
            move || {
                while started.elapsed() < Duration::from_secs(15) {
                    let file = recordings(&d, "bench")
                        .get(before)
                        .filter(|p| !wav_samples(p).is_empty())
                        .cloned();
                    if file.is_some() {
                        return file;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                None
            }
        })
        .await
        .unwrap();
        let Some(file) = file else {
            eprintln!(
                "run {run}: no audio at the camera within 15 s ({:?})",
                talk.status(&camera)
            );
            failed += 1;
            talk.stop(&camera).await;
            continue;
        };
        setups.push(started.elapsed());
        eprintln!("run {run}: set-up {:?}", started.elapsed());

        // Mouth-to-ear: unmute the tone, note when each length of the recording was reached.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let (marked, growth) = tokio::task::spawn_blocking({
            let file = file.clone();
            move || {
                let marked = source.unmute();
                let mut growth = Vec::new();
                while marked.elapsed() < Duration::from_millis(1500) {
                    let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                    growth.push((Instant::now(), len.saturating_sub(44) / 2));
                    std::thread::sleep(Duration::from_millis(2));
                }
                (marked, growth)
            }
        })
        .await
        .unwrap();
        talk.stop(&camera).await;
        let samples = wav_samples(&file);
        let Some(onset) = onset(&samples) else {
            eprintln!("run {run}: the tone never arrived");
            continue;
        };
        if let Some((arrived, _)) = growth.iter().find(|(_, len)| *len as usize > onset) {
            latencies.push(arrived.saturating_duration_since(marked));
        }
    }
    println!(
        "talk-down at the edge ({RUNS} runs, {failed} of them without audio at the camera; camsim ONVIF backchannel, Opus pulled over RTSP/TCP)"
    );
    println!("{:<52} {:>8} {:>8} {:>8}", "", "median", "max", "target");
    row(
        "set-up: startTalk → first audio at the camera",
        &setups,
        2000,
    );
    row("mouth-to-ear: tone at the source → camera", &latencies, 400);
}

/// The first sample of the first 10 ms window that is loud (the tone), if any.
fn onset(samples: &[i16]) -> Option<usize> {
    let window = (RATE / 100.0) as usize;
    samples
        .chunks(window)
        .position(|w| rms(w) > 1000.0)
        .map(|i| i * window)
}

fn row(name: &str, values: &[Duration], target_ms: u64) {
    let mut ms: Vec<u64> = values.iter().map(|d| d.as_millis() as u64).collect();
    ms.sort_unstable();
    if ms.is_empty() {
        println!("{name:<52} {:>8} {:>8} {:>5} ms", "-", "-", target_ms);
        return;
    }
    println!(
        "{name:<52} {:>5} ms {:>5} ms {:>5} ms",
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        target_ms
    );
}
