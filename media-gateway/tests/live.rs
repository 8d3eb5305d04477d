//! Live relay end to end: camsim serves cameras over real RTSP, the gateway pulls them through a
//! TCP proxy that counts connections, and webrtc-rs WHEP clients watch.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use bl_proto::token::MediaAction;
use camsim::{CameraConfig, Codec, Config as CamsimConfig, Scenario, Stream};
use common::whep::{self, CLIENT_H264_PT};
use common::{CAMERA, NODE, TestGateway, error_code, token_for};
use media_gateway::config::SourcesConfig;
use media_gateway::live::source::Source;

/// Counts RTSP connections to the camera: accepted so far and open now.
#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    open: AtomicUsize,
}

/// A TCP proxy on 127.0.0.1:0 in front of `upstream`.
async fn counting_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<Counts>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let c2 = counts.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            c2.accepted.fetch_add(1, Relaxed);
            c2.open.fetch_add(1, Relaxed);
            let c3 = c2.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                c3.open.fetch_sub(1, Relaxed);
            });
        }
    });
    (addr, counts)
}

fn camsim_server() -> camsim::Server {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-day.toml"
    );
    let scenario = Scenario::load(Path::new(path)).unwrap();
    let mut h265 = CameraConfig::new("cam-265", scenario.clone());
    h265.codec = Codec::H265;
    camsim::serve(CamsimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![CameraConfig::new(CAMERA, scenario), h265],
    })
    .unwrap()
}

fn pull(url: String) -> Source {
    Source::Pull {
        sub_url: Some(format!("{url}/sub")),
        url,
        username: None,
        password: None,
    }
}

/// camsim, the proxy in front of it, and a gateway that knows `cam-1` (through the proxy), `cam-265`
/// and `cam-dead` (nothing listens there).
async fn setup() -> (camsim::Server, Arc<Counts>, TestGateway, tempfile::TempDir) {
    let cams = camsim_server();
    let (proxy, counts) = counting_proxy(cams.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    config.sources = SourcesConfig::File(vec![
        (
            CAMERA.parse().unwrap(),
            pull(format!("rtsp://{proxy}/cam/{CAMERA}")),
        ),
        (
            "cam-265".parse().unwrap(),
            pull(cams.url("cam-265", Stream::Main)),
        ),
        (
            "cam-dead".parse().unwrap(),
            pull(format!("rtsp://{dead}/cam/x")),
        ),
    ]);
    let gw = TestGateway::start_with(config).await;
    (cams, counts, gw, dir)
}

fn view_token(camera: &str) -> String {
    token_for(camera, MediaAction::View, NODE, 300)
}

async fn status(gw: &TestGateway, camera: &str) -> serde_json::Value {
    gw.client
        .get(gw.url(&format!("/live/{camera}/status")))
        .bearer_auth(view_token(camera))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_viewers_share_one_camera_connection_start_at_a_keyframe_at_once_and_the_last_to_leave_stops_it_after_the_linger()
 {
    let (_cams, counts, gw, _dir) = setup().await;
    let token = view_token(CAMERA);
    let path = format!("/whep/{CAMERA}?stream=sub");

    // Cold start: the first viewer starts the ingest.
    let a = whep::connect(&gw.client, &gw.base, &path, &token).await;
    let frames = a.wait_frames(20, Duration::from_secs(8)).await;
    assert!(frames >= 20, "first viewer got {frames} decodable frames");
    eprintln!(
        "cold: first keyframe after {:?}",
        a.time_to_keyframe().unwrap()
    );
    let pts = a.received.payload_types.lock().unwrap().clone();
    assert_eq!(
        pts,
        vec![CLIENT_H264_PT],
        "H.264 arrives under the payload type the client offered"
    );

    // Warm start: the second viewer starts from the GOP cache.
    let b = whep::connect(&gw.client, &gw.base, &path, &token).await;
    let frames = b.wait_frames(10, Duration::from_secs(5)).await;
    assert!(frames >= 10, "second viewer got {frames} decodable frames");
    let warm = b.time_to_keyframe().unwrap();
    eprintln!("warm: first keyframe after {warm:?}");
    assert!(
        warm < Duration::from_millis(1500),
        "second viewer waited {warm:?} for a keyframe"
    );
    assert_eq!(
        counts.accepted.load(Relaxed),
        1,
        "one camera connection for both viewers"
    );

    // A viewer's PLI reaches the relay (which asks its source for a keyframe).
    b.send_pli().await;
    let requests =
        format!("bl_gateway_live_keyframe_requests_total{{camera=\"{CAMERA}\",stream=\"sub\"}} 1");
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = gw.metrics().await;
        if metrics.contains(&requests) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.contains(&requests), "{metrics}");

    let s = status(&gw, CAMERA).await;
    assert_eq!(s["streams"]["sub"]["source"]["state"], "live", "{s}");
    assert_eq!(s["streams"]["sub"]["viewers"], 2, "{s}");
    assert_eq!(s["streams"]["main"]["source"]["state"], "idle", "{s}");
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(&format!(
            "bl_gateway_live_viewers{{camera=\"{CAMERA}\",stream=\"sub\"}} 2"
        )),
        "{metrics}"
    );

    // Leaving: DELETE ends a session; after the last one and the linger the camera is released.
    for v in [&a, &b] {
        let r = gw.client.delete(&v.location).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = gw.client.delete(&a.location).send().await.unwrap();
    assert_eq!(error_code(r).await, "unknown_session");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(counts.open.load(Relaxed), 1, "the ingest lingers");
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    while counts.open.load(Relaxed) > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        counts.open.load(Relaxed),
        0,
        "the camera connection closes after the linger"
    );
    let s = status(&gw, CAMERA).await;
    assert_eq!(s["streams"]["sub"]["source"]["state"], "idle", "{s}");
    a.pc.close().await.unwrap();
    b.pc.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_401_a_token_for_another_camera_or_node_is_403_and_an_unknown_camera_is_404()
{
    let (_cams, counts, gw, _dir) = setup().await;
    let url = gw.url(&format!("/whep/{CAMERA}"));
    let (_pc, sdp) = whep::offer(Default::default()).await;
    let forged = common::token_signed_by(
        &bl_proto::SigningKey::from_bytes(&[99; 32]),
        CAMERA,
        MediaAction::View,
        NODE,
        300,
    );
    let cases = [
        (None, 401, "token_missing"),
        (Some("not-a-token".to_owned()), 401, "token_malformed"),
        (Some(forged), 401, "token_bad_signature"),
        (
            Some(token_for(CAMERA, MediaAction::View, NODE, -10)),
            401,
            "token_expired",
        ),
        (Some(view_token("cam-265")), 403, "token_wrong_camera"),
        (
            Some(token_for(CAMERA, MediaAction::View, "gw-2", 300)),
            403,
            "token_wrong_node",
        ),
        (
            Some(token_for(CAMERA, MediaAction::Talk, NODE, 300)),
            403,
            "token_wrong_action",
        ),
    ];
    for (token, status, code) in cases {
        let r = whep::post(&gw.client, &url, token.as_deref(), sdp.clone()).await;
        assert_eq!(r.status(), status, "{code}");
        assert_eq!(error_code(r).await, code);
    }
    let r = whep::post(
        &gw.client,
        &gw.url("/whep/cam-nope"),
        Some(&view_token("cam-nope")),
        sdp.clone(),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "unknown_camera");
    assert_eq!(
        counts.accepted.load(Relaxed),
        0,
        "no refused request touched the camera"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_camera_is_503_source_offline() {
    let (_cams, _counts, gw, _dir) = setup().await;
    let (_pc, sdp) = whep::offer(Default::default()).await;
    let r = whep::post(
        &gw.client,
        &gw.url("/whep/cam-dead"),
        Some(&view_token("cam-dead")),
        sdp.clone(),
    )
    .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(error_code(r).await, "source_offline");
}

#[tokio::test]
async fn a_browser_on_the_console_origin_may_call_whep_and_read_the_location() {
    let (_cams, _counts, gw, _dir) = setup().await;
    let r = gw
        .client
        .request(reqwest::Method::OPTIONS, gw.url(&format!("/whep/{CAMERA}")))
        .header("Origin", "http://console.test")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "http://console.test");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );

    let r = gw
        .client
        .post(gw.url(&format!("/whep/{CAMERA}")))
        .header("Origin", "http://console.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let expose = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(expose.contains("location"), "{expose}");

    let r = gw
        .client
        .request(reqwest::Method::OPTIONS, gw.url(&format!("/whep/{CAMERA}")))
        .header("Origin", "http://evil.test")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_comes_back_is_picked_up_by_the_retry_and_then_serves_viewers() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.sources = SourcesConfig::File(vec![(
        CAMERA.parse().unwrap(),
        pull(format!("rtsp://{addr}/cam/{CAMERA}")),
    )]);
    let gw = TestGateway::start_with(config).await;
    let (_pc, sdp) = whep::offer(Default::default()).await;
    let url = gw.url(&format!("/whep/{CAMERA}"));
    let r = whep::post(&gw.client, &url, Some(&view_token(CAMERA)), sdp).await;
    assert_eq!(error_code(r).await, "source_offline");
    let s = status(&gw, CAMERA).await;
    assert_eq!(s["streams"]["sub"]["source"]["state"], "offline", "{s}");

    // The camera appears while the ingest lingers and retries.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-day.toml"
    );
    let _cams = camsim::serve(CamsimConfig {
        listen: addr,
        truth_dir: None,
        cameras: vec![CameraConfig::new(
            CAMERA,
            Scenario::load(Path::new(path)).unwrap(),
        )],
    })
    .unwrap();
    let v = whep::connect(
        &gw.client,
        &gw.base,
        &format!("/whep/{CAMERA}?stream=sub"),
        &view_token(CAMERA),
    )
    .await;
    assert!(v.wait_frames(10, Duration::from_secs(8)).await >= 10);
    v.pc.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_share_one_port_of_the_configured_range_and_a_taken_range_is_503_no_port() {
    let cams = camsim_server();
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    config.live.peer.ports = Some((port, port));
    config.sources = SourcesConfig::File(vec![(
        CAMERA.parse().unwrap(),
        pull(cams.url(CAMERA, Stream::Main)),
    )]);
    let gw = TestGateway::start_with(config).await;
    let path = format!("/whep/{CAMERA}?stream=sub");
    let (_pc, sdp) = whep::offer(Default::default()).await;
    let r = whep::post(&gw.client, &gw.url(&path), Some(&view_token(CAMERA)), sdp).await;
    assert_eq!(r.status(), 503);
    assert_eq!(error_code(r).await, "no_port");

    // the port freed, every viewer is answered on it
    drop(taken);
    let a = whep::connect(&gw.client, &gw.base, &path, &view_token(CAMERA)).await;
    let b = whep::connect(&gw.client, &gw.base, &path, &view_token(CAMERA)).await;
    assert!(a.wait_frames(5, Duration::from_secs(8)).await >= 5);
    assert!(b.wait_frames(5, Duration::from_secs(8)).await >= 5);
    let (_pc, sdp) = whep::offer(Default::default()).await;
    let r = whep::post(&gw.client, &gw.url(&path), Some(&view_token(CAMERA)), sdp).await;
    assert_eq!(r.status(), 201);
    let answer = r.text().await.unwrap();
    assert!(
        answer.contains(&format!(" {port} typ host")),
        "the one port: {answer}"
    );
    a.pc.close().await.unwrap();
    b.pc.close().await.unwrap();
}
