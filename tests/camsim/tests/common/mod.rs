//! Shared helpers of camsim's integration tests: a real server on 127.0.0.1 port 0 and a real
//! GStreamer RTSP client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use camsim::{CameraConfig, Codec, Config, Scenario, Server};
use gst_video::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

pub const INSTALL_HINT: &str = "run deploy/dev/install-deps.sh to install GStreamer and ffmpeg";

pub fn scenario(name: &str) -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(&p).unwrap()
}

/// A camera from a shipped scenario file.
pub fn camera(id: &str, scenario_file: &str, codec: Codec) -> CameraConfig {
    CameraConfig {
        codec,
        ..CameraConfig::new(id, scenario(scenario_file))
    }
}

/// Starts camsim on 127.0.0.1:0 writing its truth into `truth_dir`.
pub fn start(truth_dir: &Path, cameras: Vec<CameraConfig>) -> Server {
    let listen = "127.0.0.1:0".parse().unwrap();
    camsim::serve(Config {
        listen,
        truth_dir: Some(truth_dir.to_path_buf()),
        cameras,
    })
    .unwrap()
}

/// Fails (never skips) when a command-line tool is missing.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: {INSTALL_HINT}"))
}

/// Fails (never skips) when a GStreamer element is missing.
pub fn require_elements(names: &[&str]) {
    gst::init().unwrap();
    for n in names {
        assert!(
            gst::ElementFactory::find(n).is_some(),
            "GStreamer element {n} is missing: {INSTALL_HINT}"
        );
    }
}

/// A decoded picture: its tight luma plane.
pub struct Decoded {
    pub width: usize,
    pub height: usize,
    pub luma: Vec<u8>,
}

/// Reads `count` decoded frames from `url` with rtspsrc over TCP, within `timeout`.
pub fn read_frames(url: &str, count: usize, timeout: Duration) -> Vec<Decoded> {
    require_elements(&["rtspsrc", "decodebin", "videoconvert", "appsink"]);
    let pipeline = gst::parse::launch(&format!(
        "rtspsrc location={url} protocols=tcp latency=0 ! decodebin ! videoconvert ! \
         video/x-raw,format=I420 ! appsink name=sink sync=false max-buffers=200"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + timeout;
    let mut frames = Vec::new();
    while frames.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {} of {count} frames from {url} within {timeout:?}",
            frames.len()
        );
        let Some(sample) =
            sink.try_pull_sample(gst::ClockTime::from_mseconds(left.as_millis() as u64))
        else {
            continue;
        };
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let buffer = sample.buffer().unwrap();
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
        let (w, h) = (info.width() as usize, info.height() as usize);
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).unwrap();
        let mut luma = Vec::with_capacity(w * h);
        for y in 0..h {
            luma.extend_from_slice(&data[y * stride..y * stride + w]);
        }
        frames.push(Decoded {
            width: w,
            height: h,
            luma,
        });
    }
    pipeline.set_state(gst::State::Null).unwrap();
    frames
}

/// Mean absolute difference of two luma planes over the pixels where `keep(x, y)` holds.
pub fn mean_abs_diff(a: &[u8], b: &[u8], width: usize, keep: impl Fn(usize, usize) -> bool) -> f64 {
    let (mut sum, mut n) = (0u64, 0u64);
    for (i, (&p, &q)) in a.iter().zip(b).enumerate() {
        if keep(i % width, i / width) {
            sum += (p as i32 - q as i32).unsigned_abs() as u64;
            n += 1;
        }
    }
    sum as f64 / n.max(1) as f64
}

/// PSNR in dB of two luma planes.
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(&p, &q)| (p as f64 - q as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
}
