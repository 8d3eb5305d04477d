//! An H.265 camera (camsim's `cam-265`, pulled over real RTSP, or pushed by an edge's
//! `rtspclientsink`): browsers that offer only H.264 get one shared H.264 transcode, made only while
//! such a viewer watches; a viewer that offers H.265 gets the camera's own packets.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bl_proto::token::MediaAction;
use camsim::{CameraConfig, Codec, Config as CamsimConfig, Scenario, Stream};
use common::whep::{self, CLIENT_H264_PT, CLIENT_H265_PT};
use common::{EDGE, NODE, TestGateway, token_for};
use gstreamer as gst;
use gstreamer::prelude::*;
use media_gateway::config::SourcesConfig;
use media_gateway::live::source::Source;

const CAM: &str = "cam-265";

async fn setup() -> (camsim::Server, TestGateway, tempfile::TempDir) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-day.toml"
    );
    let mut camera = CameraConfig::new(CAM, Scenario::load(Path::new(path)).unwrap());
    camera.codec = Codec::H265;
    let cams = camsim::serve(CamsimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![camera],
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.sources = SourcesConfig::File(vec![(
        CAM.parse().unwrap(),
        Source::Pull {
            url: cams.url(CAM, Stream::Main),
            sub_url: None,
            username: None,
            password: None,
        },
    )]);
    let gw = TestGateway::start_with(config).await;
    (cams, gw, dir)
}

async fn status(gw: &TestGateway) -> serde_json::Value {
    gw.client
        .get(gw.url(&format!("/live/{CAM}/status")))
        .bearer_auth(token_for(CAM, MediaAction::View, NODE, 300))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls the status until `ok` holds (at most 30 s); returns the last status.
async fn status_until(
    gw: &TestGateway,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(gw).await;
        if ok(&s) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn h264_only_viewers_of_an_h265_camera_share_one_transcode_that_stops_after_the_last_and_h265_viewers_get_it_as_is()
 {
    let (_cams, gw, _dir) = setup().await;
    let token = token_for(CAM, MediaAction::View, NODE, 300);
    let path = format!("/whep/{CAM}?stream=main");

    // Two viewers that offer only H.264: one transcode, decodable H.264 for both.
    let a = whep::connect(&gw.client, &gw.base, &path, &token).await;
    let b = whep::connect(&gw.client, &gw.base, &path, &token).await;
    for v in [&a, &b] {
        let frames = v.wait_frames(25, Duration::from_secs(60)).await;
        assert!(
            frames >= 25,
            "an H.264 viewer got {frames} frames after a keyframe"
        );
        assert_eq!(
            *v.received.payload_types.lock().unwrap(),
            vec![CLIENT_H264_PT]
        );
    }
    let packets = a.received.rtp.lock().unwrap().clone();
    let decoded = whep::decode_h264(&packets);
    assert!(
        decoded >= 20,
        "decoded {decoded} pictures from {} packets",
        packets.len()
    );
    let s = status(&gw).await;
    assert_eq!(s["streams"]["main"]["codec"], "H265", "{s}");
    assert_eq!(s["streams"]["main"]["transcode"]["viewers"], 2, "{s}");
    assert_eq!(
        s["streams"]["main"]["transcode"]["state"]["state"], "live",
        "{s}"
    );
    assert_eq!(
        s["streams"]["main"]["viewers"], 1,
        "only the transcode watches the camera: {s}"
    );
    assert!(gw.metrics().await.contains("bl_gateway_live_transcodes 1"));

    // A viewer that offers H.265 gets the camera's packets, not the transcode.
    let c = whep::connect_with(&gw.client, &gw.base, &path, &token, true).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.received.frames.load(std::sync::atomic::Ordering::Relaxed) < 25
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(c.received.frames.load(std::sync::atomic::Ordering::Relaxed) >= 25);
    assert_eq!(
        *c.received.payload_types.lock().unwrap(),
        vec![CLIENT_H265_PT]
    );
    let s = status(&gw).await;
    assert_eq!(
        s["streams"]["main"]["viewers"], 2,
        "the transcode and the H.265 viewer: {s}"
    );
    assert_eq!(s["streams"]["main"]["transcode"]["viewers"], 2, "{s}");

    // The H.264 viewers leave: after the linger the transcode stops; the H.265 viewer keeps watching.
    for v in [&a, &b] {
        let r = gw.client.delete(&v.location).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // The transcode goes, then its place among the camera's viewers (a moment later).
    let s = status_until(&gw, |s| {
        s["streams"]["main"]["transcode"].is_null() && s["streams"]["main"]["viewers"] == 1
    })
    .await;
    assert!(
        s["streams"]["main"]["transcode"].is_null(),
        "the transcode still runs: {s}"
    );
    assert_eq!(s["streams"]["main"]["viewers"], 1, "{s}");
    assert!(gw.metrics().await.contains("bl_gateway_live_transcodes 0"));
    let before = c.received.frames.load(std::sync::atomic::Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.received.frames.load(std::sync::atomic::Ordering::Relaxed) < before + 10
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(c.received.frames.load(std::sync::atomic::Ordering::Relaxed) >= before + 10);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edge_push_of_an_h265_camera_is_accepted_and_an_h264_only_viewer_decodes_it() {
    let (cams, _gw, dir) = setup().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = common::config(&dir.path().join("edge"));
    config.live.push_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    config.live.start_timeout = Duration::from_secs(30);
    config.sources = SourcesConfig::File(vec![(
        "cam-edge".parse().unwrap(),
        Source::Edge {
            edge_id: EDGE.into(),
        },
    )]);
    let gw = TestGateway::start_with(config).await;

    // A viewer offering only H.264 asks first; then the edge pushes the H.265 camera unchanged.
    let (client, base) = (gw.client.clone(), gw.base.clone());
    let view = token_for("cam-edge", MediaAction::View, NODE, 300);
    let viewer = tokio::spawn(async move {
        whep::connect(&client, &base, "/whep/cam-edge?stream=sub", &view).await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    gst::init().unwrap();
    let push_token = token_for("cam-edge", MediaAction::Push, NODE, 300);
    let pusher = gst::parse::launch(&format!(
        "rtspsrc location={} protocols=tcp latency=0 ! rtph265depay ! h265parse ! \
         rtspclientsink location=\"rtsp://127.0.0.1:{port}/push/cam-edge/sub/{push_token}\" \
         protocols=tcp latency=0",
        cams.url(CAM, Stream::Main)
    ))
    .unwrap();
    pusher.set_state(gst::State::Playing).unwrap();
    let viewer = tokio::time::timeout(Duration::from_secs(40), viewer)
        .await
        .expect("the viewer's WHEP request was answered")
        .unwrap();
    let frames = viewer.wait_frames(20, Duration::from_secs(60)).await;
    assert!(frames >= 20, "the viewer got {frames} frames");
    let decoded = whep::decode_h264(&viewer.received.rtp.lock().unwrap().clone());
    assert!(decoded >= 10, "decoded {decoded} pictures");
    let s: serde_json::Value = gw
        .client
        .get(gw.url("/live/cam-edge/status"))
        .bearer_auth(token_for("cam-edge", MediaAction::View, NODE, 300))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["streams"]["sub"]["codec"], "H265", "{s}");
    assert_eq!(s["streams"]["sub"]["transcode"]["viewers"], 1, "{s}");
    let _ = pusher.set_state(gst::State::Null);
    gw.stop().await;
}
