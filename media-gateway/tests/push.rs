//! Push ingest end to end: a GStreamer `rtspclientsink` pipeline — what an edge box runs on
//! `startLive` — pulls a camsim camera and pushes it with RTSP RECORD to the gateway, and a
//! webrtc-rs WHEP client watching the edge camera decodes frames. Pushes without a valid `push`
//! token are refused.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bl_proto::token::MediaAction;
use camsim::{CameraConfig, Config as CamsimConfig, Scenario, Stream};
use common::whep;
use common::{EDGE, NODE, TestGateway, token_for};
use gstreamer as gst;
use gstreamer::prelude::*;
use media_gateway::config::SourcesConfig;
use media_gateway::live::source::Source;

const EDGE_CAMERA: &str = "cam-edge";

fn camsim_server() -> camsim::Server {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-day.toml"
    );
    let scenario = Scenario::load(Path::new(path)).unwrap();
    camsim::serve(CamsimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![CameraConfig::new("cam-src", scenario)],
    })
    .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The edge's side: pull `from` and push it unchanged to `to` (RTSP RECORD over TCP).
struct Pusher(gst::Pipeline);

impl Pusher {
    fn start(from: &str, to: &str) -> Self {
        gst::init().unwrap();
        let p = gst::parse::launch(&format!(
            "rtspsrc location={from} protocols=tcp latency=0 ! rtph264depay ! h264parse ! \
             rtspclientsink location=\"{to}\" protocols=tcp latency=0"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        p.set_state(gst::State::Playing).unwrap();
        Self(p)
    }

    /// The first error, end of stream or warning (`rtspclientsink` reports a connection closed by
    /// the server as a warning) the pipeline reports within `within`, if any.
    fn ended_within(&self, within: Duration) -> Option<String> {
        let bus = self.0.bus().unwrap();
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(within.as_millis() as u64),
            &[
                gst::MessageType::Error,
                gst::MessageType::Eos,
                gst::MessageType::Warning,
            ],
        )?;
        Some(match msg.view() {
            gst::MessageView::Error(e) => e.error().to_string(),
            gst::MessageView::Warning(w) => w.error().to_string(),
            _ => "end of stream".into(),
        })
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

async fn status(gw: &TestGateway, camera: &str) -> serde_json::Value {
    gw.client
        .get(gw.url(&format!("/live/{camera}/status")))
        .bearer_auth(token_for(camera, MediaAction::View, NODE, 300))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_state(
    gw: &TestGateway,
    camera: &str,
    want: &str,
    within: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let s = status(gw, camera).await;
        if s["streams"]["sub"]["source"]["state"] == want || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a refused push to completion off the async threads; returns why it ended.
async fn refused(from: String, to: String) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        Pusher::start(&from, &to).ended_within(Duration::from_secs(8))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edge_push_with_a_push_token_reaches_a_whep_viewer_and_pushes_without_one_are_refused() {
    let cams = camsim_server();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = common::config(dir.path());
    config.live.push_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    config.live.start_timeout = Duration::from_secs(30);
    config.sources = SourcesConfig::File(vec![(
        EDGE_CAMERA.parse().unwrap(),
        Source::Edge {
            edge_id: EDGE.into(),
        },
    )]);
    let gw = TestGateway::start_with(config).await;
    let source = cams.url("cam-src", Stream::Sub);
    let push_url = format!("rtsp://127.0.0.1:{port}/push/{EDGE_CAMERA}/sub");

    // Nobody watches yet: nothing is mounted, even a valid push is turned away.
    let push_token = token_for(EDGE_CAMERA, MediaAction::Push, NODE, 300);
    let why = refused(source.clone(), format!("{push_url}/{push_token}")).await;
    assert!(why.is_some(), "a push nobody asked for was accepted");

    // The first viewer asks for the edge camera; the gateway waits for the edge's push.
    let (client, base) = (gw.client.clone(), gw.base.clone());
    let view = token_for(EDGE_CAMERA, MediaAction::View, NODE, 300);
    let viewer = tokio::spawn(async move {
        whep::connect(
            &client,
            &base,
            &format!("/whep/{EDGE_CAMERA}?stream=sub"),
            &view,
        )
        .await
    });
    let s = wait_state(&gw, EDGE_CAMERA, "connecting", Duration::from_secs(5)).await;
    assert_eq!(s["streams"]["sub"]["source"]["state"], "connecting", "{s}");

    // Pushes without the right token are refused while the viewer waits.
    let view_token = token_for(EDGE_CAMERA, MediaAction::View, NODE, 300);
    let other_camera = token_for("cam-other", MediaAction::Push, NODE, 300);
    let other_node = token_for(EDGE_CAMERA, MediaAction::Push, "gw-9", 300);
    let expired = token_for(EDGE_CAMERA, MediaAction::Push, NODE, -10);
    for (what, url) in [
        ("no token", push_url.clone()),
        ("a viewer's token", format!("{push_url}/{view_token}")),
        (
            "another camera's token",
            format!("{push_url}/{other_camera}"),
        ),
        ("another node's token", format!("{push_url}/{other_node}")),
        ("an expired token", format!("{push_url}/{expired}")),
        ("a forged token", format!("{push_url}/{push_token}x")),
    ] {
        let why = refused(source.clone(), url).await;
        assert!(why.is_some(), "a push with {what} was accepted");
        eprintln!("push with {what} refused: {}", why.unwrap());
    }
    let s = status(&gw, EDGE_CAMERA).await;
    assert_eq!(s["streams"]["sub"]["source"]["state"], "connecting", "{s}");
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(&format!(
            "bl_gateway_live_ingest_packets_total{{camera=\"{EDGE_CAMERA}\",stream=\"sub\"}} 0"
        )),
        "a refused push delivered packets: {metrics}"
    );

    // The edge pushes with its push token: the waiting viewer gets video.
    let pusher = Pusher::start(&source, &format!("{push_url}/{push_token}"));
    let viewer = tokio::time::timeout(Duration::from_secs(20), viewer)
        .await
        .expect("the viewer's WHEP request was answered")
        .unwrap();
    let frames = viewer.wait_frames(20, Duration::from_secs(10)).await;
    assert!(
        frames >= 20,
        "the viewer got {frames} decodable frames from the push"
    );
    let s = status(&gw, EDGE_CAMERA).await;
    assert_eq!(s["streams"]["sub"]["source"]["state"], "live", "{s}");
    assert_eq!(s["streams"]["sub"]["viewers"], 1, "{s}");

    // A second viewer starts from the GOP cache of the pushed stream.
    let second = whep::connect(
        &gw.client,
        &gw.base,
        &format!("/whep/{EDGE_CAMERA}?stream=sub"),
        &token_for(EDGE_CAMERA, MediaAction::View, NODE, 300),
    )
    .await;
    assert!(second.wait_frames(10, Duration::from_secs(5)).await >= 10);

    // The last viewer leaves: after the linger the gateway unmounts the path and drops the push.
    for v in [&viewer, &second] {
        assert_eq!(
            gw.client.delete(&v.location).send().await.unwrap().status(),
            200
        );
    }
    let ended = tokio::task::spawn_blocking(move || pusher.ended_within(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(
        ended.is_some(),
        "the push was still running after the linger"
    );
    let s = wait_state(&gw, EDGE_CAMERA, "idle", Duration::from_secs(5)).await;
    assert_eq!(s["streams"]["sub"]["source"]["state"], "idle", "{s}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edge_that_does_not_push_within_the_start_timeout_leaves_its_viewers_a_source_offline_with_the_reason()
 {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.live.push_listen = Some(format!("127.0.0.1:{}", free_port()).parse().unwrap());
    config.live.start_timeout = Duration::from_secs(2);
    config.sources = SourcesConfig::File(vec![(
        EDGE_CAMERA.parse().unwrap(),
        Source::Edge {
            edge_id: EDGE.into(),
        },
    )]);
    let gw = TestGateway::start_with(config).await;
    let received = std::sync::Arc::new(whep::Received::default());
    let (_pc, sdp) = whep::offer(received).await;
    let r = whep::post(
        &gw.client,
        &gw.url(&format!("/whep/{EDGE_CAMERA}?stream=sub")),
        Some(&token_for(EDGE_CAMERA, MediaAction::View, NODE, 300)),
        sdp,
    )
    .await;
    assert_eq!(r.status(), 503);
    assert_eq!(common::error_code(r).await, "source_offline");
    let s = wait_state(&gw, EDGE_CAMERA, "offline", Duration::from_secs(5)).await;
    let source = &s["streams"]["sub"]["source"];
    assert_eq!(source["state"], "offline", "{s}");
    assert!(
        source["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("edge box {EDGE} did not push within 2 s")),
        "{s}"
    );
    gw.stop().await;
}

/// What the fake dispatch saw: `live-start` / `live-stop` calls as (path, body).
type Calls = std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>;

/// dispatch and the edge box in one: serves the camera's source as "pushed by edge-1", and on
/// `live-start` starts the push the edge would (to `{pushUrl}/{push token}`); `live-stop` ends it.
async fn fake_dispatch_and_edge(source_url: String) -> (String, Calls) {
    use axum::extract::{Path as AxPath, State};
    use axum::routing::{get, post};
    type Shared = (
        Calls,
        String,
        std::sync::Arc<std::sync::Mutex<Option<Pusher>>>,
    );
    async fn source(AxPath(id): AxPath<String>) -> axum::Json<serde_json::Value> {
        axum::Json(
            serde_json::json!({"kind": "edge", "camera": id, "edgeId": EDGE,
                                      "stream": "main", "subStream": null}),
        )
    }
    async fn live(
        State((calls, from, pusher)): State<Shared>,
        AxPath((id, what)): AxPath<(String, String)>,
        headers: axum::http::HeaderMap,
        axum::Json(body): axum::Json<serde_json::Value>,
    ) -> axum::http::StatusCode {
        assert_eq!(headers["authorization"], "Bearer svc-token");
        assert_eq!(headers["x-bl-node"], NODE);
        calls.lock().unwrap().push((what.clone(), body.clone()));
        let mut p = pusher.lock().unwrap();
        if what == "live-start" {
            let token = token_for(&id, MediaAction::Push, NODE, 300);
            let to = format!("{}/{token}", body["pushUrl"].as_str().unwrap());
            *p = Some(Pusher::start(&from, &to));
        } else {
            *p = None;
        }
        axum::http::StatusCode::ACCEPTED
    }
    let calls = Calls::default();
    let app = axum::Router::new()
        .route("/internal/cameras/{id}/source", get(source))
        .route("/internal/cameras/{id}/{what}", post(live))
        .with_state((calls.clone(), source_url, Default::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_viewer_makes_the_gateway_ask_dispatch_for_the_push_and_the_linger_ends_it() {
    let cams = camsim_server();
    let (dispatch, calls) = fake_dispatch_and_edge(cams.url("cam-src", Stream::Main)).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = common::config(dir.path());
    config.live.push_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    config.sources = SourcesConfig::Dispatch {
        url: dispatch,
        token: "svc-token".into(),
        cameras: Vec::new(),
    };
    let gw = TestGateway::start_with(config).await;

    let viewer = whep::connect(
        &gw.client,
        &gw.base,
        &format!("/whep/{EDGE_CAMERA}?stream=main"),
        &token_for(EDGE_CAMERA, MediaAction::View, NODE, 300),
    )
    .await;
    let frames = viewer.wait_frames(20, Duration::from_secs(10)).await;
    assert!(frames >= 20, "the viewer got {frames} decodable frames");
    assert_eq!(
        calls.lock().unwrap().clone(),
        vec![(
            "live-start".to_owned(),
            serde_json::json!({"stream": "main",
                               "pushUrl": format!("rtsp://127.0.0.1:{port}/push/{EDGE_CAMERA}/main")})
        )]
    );

    assert_eq!(
        gw.client
            .delete(&viewer.location)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls.lock().unwrap().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].0, "live-stop");
    assert_eq!(calls[1].1["stream"], "main");
    gw.stop().await;
}
