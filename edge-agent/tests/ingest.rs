//! Camera ingest against camsim's real RTSP cameras: frames reach detection at the agreed size and
//! rate, health is visible, and a camera that goes away and comes back is reported both ways —
//! through the outbox, like every event — without its credentials ever showing.

use bl_proto::CameraId;
use bl_proto::event::{CameraEventKind, EdgeEvent};
use bl_service::secret::Secret;
use camsim::{CameraConfig, Config as CamsimConfig, Scenario};
use edge_agent::ingest::health::Thresholds;
use edge_agent::ingest::pipeline::FrameFormat;
use edge_agent::ingest::{self, CameraSource, Frame, HealthBoard, IngestContext};
use edge_agent::outbox::Outbox;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn kitchen() -> Scenario {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-day.toml"
    );
    Scenario::load(std::path::Path::new(path)).unwrap()
}

fn serve(listen: SocketAddr) -> camsim::Server {
    camsim::serve(CamsimConfig {
        listen,
        truth_dir: None,
        cameras: vec![CameraConfig::new("kitchen", kitchen())],
    })
    .unwrap()
}

async fn context(dir: &std::path::Path) -> (IngestContext, mpsc::Receiver<Frame>) {
    let (frames, rx) = mpsc::channel(64);
    let cx = IngestContext {
        edge: bl_proto::EdgeId::new("ingest-test").unwrap(),
        outbox: Outbox::open(&dir.join("outbox.db"), 16 << 20)
            .await
            .unwrap(),
        board: HealthBoard::default(),
        frames,
        format: FrameFormat::default(),
        recorders: Default::default(),
        colour: None,
        thresholds: Thresholds {
            offline_after_ms: 3_000,
            ..Thresholds::default()
        },
    };
    (cx, rx)
}

async fn camera_events(outbox: &Outbox) -> Vec<(CameraEventKind, Option<String>)> {
    outbox
        .after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(
            |e| match bl_proto::decode::<EdgeEvent>(&e.payload).unwrap() {
                EdgeEvent::Camera(c) => Some((c.kind, c.detail)),
                EdgeEvent::Detection(_) | EdgeEvent::Warning(_) => None,
            },
        )
        .collect()
}

async fn wait_for_events(outbox: &Outbox, kinds: &[CameraEventKind], limit: Duration) {
    let start = Instant::now();
    loop {
        let seen: Vec<_> = camera_events(outbox)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        if seen == kinds {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "expected camera events {kinds:?}, saw {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_arrive_small_and_slow_and_an_outage_is_reported_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve("127.0.0.1:0".parse().unwrap());
    let addr = server.addr();
    let (cx, mut frames) = context(dir.path()).await;
    let (outbox, board) = (cx.outbox.clone(), cx.board.clone());
    let stop = CancellationToken::new();
    let camera = CameraSource {
        id: CameraId::new("kitchen").unwrap(),
        url: Secret::new(format!("rtsp://{addr}/cam/kitchen/sub")),
    };
    let task = ingest::spawn(camera, cx, stop.clone());

    // Frames: grey, 320x180, about 5 per second.
    let first = tokio::time::timeout(Duration::from_secs(30), frames.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.width, first.height, first.luma.len()),
        (320, 180, 320 * 180)
    );
    let start = Instant::now();
    let mut count = 0;
    while start.elapsed() < Duration::from_secs(3) {
        if tokio::time::timeout(Duration::from_secs(1), frames.recv())
            .await
            .is_ok()
        {
            count += 1;
        }
    }
    assert!((10..=20).contains(&count), "{count} frames in 3 s at 5 fps");
    wait_for_events(&outbox, &[CameraEventKind::Online], Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let health = board.lock().unwrap()[&CameraId::new("kitchen").unwrap()].clone();
    assert!(health.online && health.problem.is_none(), "{health:?}");
    assert!(health.fps > 3.0 && health.fps < 7.0, "fps {}", health.fps);
    assert!(health.bitrate_kbps > 0, "bitrate {}", health.bitrate_kbps);

    // The camera goes away: offline is reported once; it comes back: online again.
    drop(server);
    wait_for_events(
        &outbox,
        &[CameraEventKind::Online, CameraEventKind::Offline],
        Duration::from_secs(20),
    )
    .await;
    let _server = serve(addr);
    wait_for_events(
        &outbox,
        &[
            CameraEventKind::Online,
            CameraEventKind::Offline,
            CameraEventKind::Online,
        ],
        Duration::from_secs(60),
    )
    .await;

    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_camera_is_reported_offline_without_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (cx, _frames) = context(dir.path()).await;
    let outbox = cx.outbox.clone();
    let stop = CancellationToken::new();
    let port = bl_test_support::broker::free_port();
    let camera = CameraSource {
        id: CameraId::new("gone").unwrap(),
        url: Secret::new(format!("rtsp://admin:Sup3rSecret@127.0.0.1:{port}/ch1")),
    };
    let task = ingest::spawn(camera, cx, stop.clone());
    wait_for_events(
        &outbox,
        &[CameraEventKind::Offline],
        Duration::from_secs(30),
    )
    .await;
    let events = camera_events(&outbox).await;
    let detail = events[0].1.clone().unwrap_or_default();
    assert!(!detail.is_empty(), "the console is told why");
    assert!(
        !detail.contains("Sup3rSecret") && !detail.contains("admin"),
        "{detail}"
    );
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_encoded_stream_of_an_h264_or_h265_camera_fills_its_pre_roll_while_frames_still_flow() {
    use edge_agent::evidence::{Codec, Recorder, Rolls};
    for (codec, served) in [
        (Codec::H264, camsim::Codec::H264),
        (Codec::H265, camsim::Codec::H265),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut camera = CameraConfig::new("kitchen", kitchen());
        camera.codec = served;
        let server = camsim::serve(CamsimConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            truth_dir: None,
            cameras: vec![camera],
        })
        .unwrap();
        let (mut cx, mut frames) = context(dir.path()).await;
        let id = CameraId::new("kitchen").unwrap();
        let rolls = Rolls {
            pre_ms: 3_000,
            post_ms: 1_000,
        };
        let recorder = Recorder::new(8 << 20, rolls, 8 << 20);
        cx.recorders.insert(id.clone(), recorder.clone());
        let stop = CancellationToken::new();
        let task = ingest::spawn(
            CameraSource {
                id,
                url: Secret::new(format!("rtsp://{}/cam/kitchen/sub", server.addr())),
            },
            cx,
            stop.clone(),
        );
        tokio::time::timeout(Duration::from_secs(30), frames.recv())
            .await
            .unwrap()
            .expect("detection still gets frames");
        tokio::time::sleep(Duration::from_secs(4)).await;
        let now = chrono::Utc::now().timestamp_millis();
        let (found, units) = recorder.frame_at(now).expect("video in the pre-roll");
        assert_eq!(found, codec);
        assert!(
            units[0].keyframe,
            "{codec:?}: a still decodes from a keyframe"
        );
        assert!(
            recorder.preroll_bytes() > 10_000,
            "{codec:?}: {} bytes",
            recorder.preroll_bytes()
        );
        let picture = edge_agent::evidence::media::decode_last(codec, &units).unwrap();
        assert!(picture.width > 0 && picture.height > 0);
        stop.cancel();
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_frames_flow_only_while_a_rule_wants_them_and_the_grey_stream_keeps_its_pace() {
    use edge_agent::ingest::ColourFeed;
    use edge_agent::ingest::pipeline::ColourFormat;
    let dir = tempfile::tempdir().unwrap();
    let server = serve("127.0.0.1:0".parse().unwrap());
    let (mut cx, mut grey) = context(dir.path()).await;
    let id = CameraId::new("kitchen").unwrap();
    let (colour_tx, mut colour) = mpsc::channel(2);
    let wanted = edge_agent::ingest::ColourWanted::default();
    cx.colour = Some(ColourFeed {
        frames: colour_tx,
        wanted: wanted.clone(),
        formats: [(id.clone(), ColourFormat { width: 960, fps: 2 })].into(),
    });
    let stop = CancellationToken::new();
    let task = ingest::spawn(
        CameraSource {
            id: id.clone(),
            // the main stream (1280x720): colour frames are shrunk to 960 wide
            url: Secret::new(format!("rtsp://{}/cam/kitchen", server.addr())),
        },
        cx,
        stop.clone(),
    );
    tokio::time::timeout(Duration::from_secs(30), grey.recv())
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(colour.try_recv().is_err(), "no rule wants colour yet");

    wanted.lock().unwrap().insert(id.clone());
    let first = tokio::time::timeout(Duration::from_secs(10), colour.recv())
        .await
        .expect("colour frames once wanted")
        .unwrap();
    assert_eq!((first.width, first.height), (960, 540));
    let bgr = first.bgr.as_ref().expect("colour");
    assert_eq!(bgr.len(), 960 * 540 * 3);
    assert_eq!(first.luma.len(), 960 * 540);
    // camsim's kitchen by day is in colour (its floor is warm grey-brown): not B = G = R.
    let coloured = bgr
        .chunks_exact(3)
        .filter(|p| p[0].abs_diff(p[2]) > 10)
        .count();
    assert!(coloured > 960 * 540 / 20, "{coloured} coloured pixels");

    // Over 4 s: about 2 colour frames a second, and the grey stream still about 5.
    while grey.try_recv().is_ok() {}
    let start = Instant::now();
    let (mut n_colour, mut n_grey) = (0, 0);
    while start.elapsed() < Duration::from_secs(4) {
        tokio::select! {
            Some(_) = colour.recv() => n_colour += 1,
            Some(_) = grey.recv() => n_grey += 1,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    assert!(
        (5..=10).contains(&n_colour),
        "{n_colour} colour frames in 4 s at 2 fps"
    );
    assert!(
        (14..=24).contains(&n_grey),
        "{n_grey} grey frames in 4 s at 5 fps"
    );

    wanted.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_secs(1)).await;
    while colour.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        colour.try_recv().is_err(),
        "no colour frame once no rule wants it"
    );
    stop.cancel();
    task.await.unwrap();
}
