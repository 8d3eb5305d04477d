//! Talk-down through the gateway: a webrtc-rs WHIP client talks a 1 kHz Opus tone and a GStreamer
//! RTSP client — what an edge box runs on `startTalk` — pulls `/talk/{camera}/{token}`, decodes the
//! Opus it gets and hears the tone. Bad tokens are refused on both sides.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bl_proto::token::MediaAction;
use common::whip;
use common::{NODE, TestGateway, error_code, token_for};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

const CAM: &str = "cam-talk";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn talk_gateway() -> (TestGateway, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = common::config(dir.path());
    config.live.push_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let gw = TestGateway::start_with(config).await;
    (gw, port, dir)
}

/// What an edge does on `startTalk`: pull the talk audio over RTSP (TCP) and decode it.
struct Puller {
    pipeline: gst::Pipeline,
    samples: Arc<Mutex<Vec<i16>>>,
}

impl Puller {
    fn start(url: &str) -> Self {
        gst::init().unwrap();
        let p = gst::parse::launch(&format!(
            "rtspsrc location=\"{url}\" protocols=tcp latency=100 ! rtpopusdepay ! opusdec ! \
             audioconvert ! audioresample ! audio/x-raw,format=S16LE,channels=1,rate=48000 ! \
             appsink name=sink sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let sink = p
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        let s2 = samples.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(b) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                        s2.lock()
                            .unwrap()
                            .extend(b.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])));
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        p.set_state(gst::State::Playing).unwrap();
        Self {
            pipeline: p,
            samples,
        }
    }

    /// The first error or end of stream within `within`, if any.
    fn ended_within(&self, within: Duration) -> Option<String> {
        let bus = self.pipeline.bus().unwrap();
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(within.as_millis() as u64),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )?;
        Some(match msg.view() {
            gst::MessageView::Error(e) => e.error().to_string(),
            _ => "end of stream".into(),
        })
    }

    async fn wait_samples(&self, n: usize, within: Duration) -> Vec<i16> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.samples.lock().unwrap().clone();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Puller {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Relative power of `freq` in `samples` (48 kHz), Goertzel's algorithm.
fn power_at(samples: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.len().max(1) as f64
}

async fn talk_status(gw: &TestGateway) -> serde_json::Value {
    gw.client
        .get(gw.url(&format!("/talk/{CAM}/status")))
        .bearer_auth(token_for(CAM, MediaAction::View, NODE, 300))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_talk(
    gw: &TestGateway,
    ok: impl Fn(&serde_json::Value) -> bool,
    within: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let s = talk_status(gw).await;
        if ok(&s) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a pull that must fail off the async threads; returns why it ended.
async fn refused_pull(url: String) -> Option<String> {
    tokio::task::spawn_blocking(move || Puller::start(&url).ended_within(Duration::from_secs(8)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whip_requests_without_a_talk_token_for_the_camera_are_refused_with_json() {
    let (gw, _port, _dir) = talk_gateway().await;
    let url = gw.url(&format!("/whip/{CAM}"));
    let cases = [
        (None, 401, "token_missing"),
        (
            Some(token_for(CAM, MediaAction::View, NODE, 60)),
            403,
            "token_wrong_action",
        ),
        (
            Some(token_for("cam-other", MediaAction::Talk, NODE, 60)),
            403,
            "token_wrong_camera",
        ),
        (
            Some(token_for(CAM, MediaAction::Talk, "gw-9", 60)),
            403,
            "token_wrong_node",
        ),
        (
            Some(token_for(CAM, MediaAction::Talk, NODE, -10)),
            401,
            "token_expired",
        ),
    ];
    for (token, status, code) in cases {
        let (pc, _track, _ssrc, sdp) = whip::offer().await;
        let r = whip::post(&gw.client, &url, token.as_deref(), sdp).await;
        assert_eq!(r.status(), status, "{code}");
        assert_eq!(error_code(r).await, code);
        let _ = pc.close().await;
    }
    // A video-only offer has nothing to talk with.
    let r = whip::post(
        &gw.client,
        &url,
        Some(&token_for(CAM, MediaAction::Talk, NODE, 60)),
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
            .into(),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "bad_offer");
    let s = talk_status(&gw).await;
    assert_eq!(s["state"], "idle", "{s}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operators_tone_by_whip_reaches_an_rtsp_pull_with_the_talk_token_as_opus() {
    let (gw, port, _dir) = talk_gateway().await;
    let pull = format!("rtsp://127.0.0.1:{port}/talk/{CAM}");
    let edge_token = token_for(CAM, MediaAction::Talk, NODE, 300);

    // Nobody talks yet: nothing is mounted, even a valid pull is turned away.
    let why = refused_pull(format!("{pull}/{edge_token}")).await;
    assert!(why.is_some(), "a pull with nobody talking was served");

    let talker = whip::talk(
        &gw.client,
        &gw.base,
        CAM,
        &token_for(CAM, MediaAction::Talk, NODE, 60),
        1000,
    )
    .await;
    let s = wait_talk(
        &gw,
        |s| s["packetsIn"].as_u64() > Some(10),
        Duration::from_secs(20),
    )
    .await;
    assert!(s["packetsIn"].as_u64() > Some(10), "no Opus arrived: {s}");
    assert_eq!(s["state"], "connecting", "nobody pulls yet: {s}");
    assert_eq!(s["talker"], "operator-1");

    // Pulls without the right token are refused while the operator talks.
    let view_token = token_for(CAM, MediaAction::View, NODE, 300);
    let other_camera = token_for("cam-other", MediaAction::Talk, NODE, 300);
    let expired = token_for(CAM, MediaAction::Talk, NODE, -10);
    for (what, url) in [
        ("no token", pull.clone()),
        ("a viewer's token", format!("{pull}/{view_token}")),
        ("another camera's token", format!("{pull}/{other_camera}")),
        ("an expired token", format!("{pull}/{expired}")),
        ("a forged token", format!("{pull}/{edge_token}x")),
    ] {
        let why = refused_pull(url).await;
        assert!(why.is_some(), "a pull with {what} was served");
        eprintln!("pull with {what} refused: {}", why.unwrap());
    }

    // The edge pulls with its talk token: Opus that decodes to the operator's 1 kHz tone.
    let puller = Puller::start(&format!("{pull}/{edge_token}"));
    let samples = puller.wait_samples(48_000, Duration::from_secs(20)).await;
    assert!(
        samples.len() >= 48_000,
        "only {} samples pulled",
        samples.len()
    );
    let tail = &samples[samples.len() - 24_000..];
    let (tone, other) = (power_at(tail, 1000.0), power_at(tail, 700.0));
    assert!(
        tone > 100.0 * other,
        "the pulled audio is not the 1 kHz tone: {tone:.0} at 1 kHz, {other:.0} at 700 Hz"
    );
    let s = wait_talk(&gw, |s| s["state"] == "talking", Duration::from_secs(10)).await;
    assert_eq!(s["state"], "talking", "{s}");
    assert_eq!(s["pullers"], 1, "{s}");
    assert!(s["packetsOut"].as_u64() > Some(0), "{s}");
    let metrics = gw.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("bl_gateway_talk_packets_in_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );

    // The operator releases: the session ends and the edge's pull is disconnected.
    let r = gw.client.delete(&talker.location).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let s = wait_talk(&gw, |s| s["state"] == "ended", Duration::from_secs(10)).await;
    assert_eq!(s["state"], "ended", "{s}");
    let ended = tokio::task::spawn_blocking(move || puller.ended_within(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(ended.is_some(), "the edge's pull outlived the talk session");
    let r = gw.client.delete(&talker.location).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "unknown_session");
    drop(talker);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_talker_takes_the_camera_over_and_the_edges_pull_carries_on() {
    let (gw, port, _dir) = talk_gateway().await;
    let edge_token = token_for(CAM, MediaAction::Talk, NODE, 300);
    let first = whip::talk(
        &gw.client,
        &gw.base,
        CAM,
        &token_for(CAM, MediaAction::Talk, NODE, 60),
        1000,
    )
    .await;
    let puller = Puller::start(&format!("rtsp://127.0.0.1:{port}/talk/{CAM}/{edge_token}"));
    let before = puller
        .wait_samples(24_000, Duration::from_secs(20))
        .await
        .len();
    assert!(before >= 24_000, "only {before} samples pulled");

    let second = whip::talk(
        &gw.client,
        &gw.base,
        CAM,
        &token_for(CAM, MediaAction::Talk, NODE, 60),
        1500,
    )
    .await;
    // The first talker's session is over: its DELETE finds nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = gw.client.delete(&first.location).send().await.unwrap();
        if r.status() == 404 || Instant::now() > deadline {
            assert_eq!(r.status(), 404, "the first talker still holds the camera");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same pull now carries the second talker's 1.5 kHz tone.
    let samples = puller
        .wait_samples(before + 96_000, Duration::from_secs(20))
        .await;
    assert!(
        samples.len() >= before + 96_000,
        "the pull stalled at {} samples",
        samples.len()
    );
    let tail = &samples[samples.len() - 24_000..];
    let (new, old) = (power_at(tail, 1500.0), power_at(tail, 1000.0));
    assert!(
        new > 100.0 * old,
        "not the second talker: {new:.0} at 1.5 kHz, {old:.0} at 1 kHz"
    );
    let s = talk_status(&gw).await;
    assert_eq!(s["state"], "talking", "{s}");
    drop(second);
    drop(puller);
    gw.stop().await;
}
