//! The control endpoint plays another scene on a running camera and gives the camera back: a
//! GStreamer client decodes the scene's frames (numbered from the scene's start) while it plays,
//! the camera's own frames after it, and bad requests are refused naming what was wrong.

mod common;

use std::time::{Duration, Instant};

use camsim::{Codec, Renderer, Stream, read_frame_number};
use serde_json::{Value, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Sends `body` (or none) with `method` to `url`; the status and the JSON answer.
fn call(
    rt: &tokio::runtime::Runtime,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.request(method.parse().unwrap(), url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    })
}

/// The best PSNR of the decoded frames against `renderer`'s frame of their number.
fn matches(frames: &[common::Decoded], renderer: &Renderer) -> Vec<(u64, f64)> {
    frames
        .iter()
        .map(|f| {
            let n = read_frame_number(&f.luma, f.width, f.height).expect("a numbered frame");
            (n, common::psnr(&f.luma, renderer.render(n).luma()))
        })
        .collect()
}

#[test]
fn a_day_scene_played_on_a_night_camera_shows_from_its_first_frame_and_the_night_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = common::start(
        dir.path(),
        vec![common::camera(
            "n1",
            "kitchen-night-quiet.toml",
            Codec::H264,
        )],
    );
    let control = server
        .start_control(
            "127.0.0.1:0".parse().unwrap(),
            vec![common::scenario("kitchen-day.toml")],
        )
        .unwrap();
    let rt = runtime();
    let scene_url = format!("{control}/cameras/n1/scene");

    // Refusals name the field and what is known.
    let (status, body) = call(
        &rt,
        "POST",
        &scene_url,
        Some(json!({"scene": "moon", "secs": 5})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("kitchen-day"),
        "{body}"
    );
    let (status, body) = call(
        &rt,
        "POST",
        &scene_url,
        Some(json!({"scene": "kitchen-day", "secs": 0})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("secs"),
        "{body}"
    );
    let (status, _) = call(
        &rt,
        "POST",
        &format!("{control}/cameras/n9/scene"),
        Some(json!({"scene": "kitchen-day", "secs": 5})),
    );
    assert_eq!(status, 404);

    // Playing: the decoded frames are the day scene's, numbered from its start.
    let (status, body) = call(
        &rt,
        "POST",
        &scene_url,
        Some(json!({"scene": "kitchen-day", "secs": 600})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["scene"].as_str(), body["played"].as_bool()),
        (Some("kitchen-day"), Some(true))
    );
    let played = common::read_frames(&server.url("n1", Stream::Main), 5, Duration::from_secs(60));
    let day = Renderer::new(common::scenario("kitchen-day.toml"));
    for (n, psnr) in matches(&played, &day) {
        assert!(n < 600, "frame {n} is not numbered from the scene's start");
        assert!(
            psnr > 28.0,
            "scene frame {n}: PSNR {psnr:.1} dB against the day scene"
        );
    }

    // Stopped: the camera's own night again, at its own frame numbers.
    let (status, body) = call(&rt, "DELETE", &scene_url, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["played"], false, "{body}");
    let own = common::read_frames(&server.url("n1", Stream::Main), 5, Duration::from_secs(60));
    let night = Renderer::new(common::scenario("kitchen-night-quiet.toml"));
    for (n, psnr) in matches(&own, &night) {
        assert!(
            psnr > 28.0,
            "own frame {n}: PSNR {psnr:.1} dB against the quiet night"
        );
    }

    // A short play ends by itself.
    let (status, _) = call(
        &rt,
        "POST",
        &scene_url,
        Some(json!({"scene": "kitchen-day", "secs": 1})),
    );
    assert_eq!(status, 200);
    let start = Instant::now();
    loop {
        let (_, list) = call(&rt, "GET", &format!("{control}/cameras"), None);
        if list["cameras"][0]["played"] == false {
            assert_eq!(list["cameras"][0]["scene"], "kitchen-night-quiet");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still playing: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
}
