//! A client we did not write (ffprobe) sees the codecs and sizes camsim promises.

mod common;

use std::process::Command;

use camsim::{Codec, Stream};

fn probe(url: &str) -> (String, u64, u64) {
    let ffprobe = common::require_tool("ffprobe");
    let out = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-select_streams",
            "v:0",
        ])
        .args([
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "json",
            url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["streams"][0];
    (
        s["codec_name"].as_str().unwrap_or_default().to_string(),
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
    )
}

#[test]
fn ffprobe_sees_h264_720p_on_main_360p_on_sub_and_hevc_on_an_h265_camera() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(
        dir.path(),
        vec![
            common::camera("k1", "kitchen-day.toml", Codec::H264),
            common::camera("p5", "pharmacy.toml", Codec::H265),
        ],
    );
    assert_ne!(server.addr().port(), 0, "the bound port is reported");
    assert_eq!(
        probe(&server.url("k1", Stream::Main)),
        ("h264".into(), 1280, 720)
    );
    assert_eq!(
        probe(&server.url("k1", Stream::Sub)),
        ("h264".into(), 640, 360)
    );
    assert_eq!(
        probe(&server.url("p5", Stream::Main)),
        ("hevc".into(), 1280, 720)
    );
    assert_eq!(
        probe(&server.url("p5", Stream::Sub)),
        ("hevc".into(), 640, 360)
    );
    server.stop();
}
