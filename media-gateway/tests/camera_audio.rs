//! The camera's own audio reaches WHEP viewers as Opus: camsim serves a camera whose main stream
//! carries G.711 A-law (kitchen noise with its 700 Hz marker tone) and one without audio; the
//! gateway transcodes once per stream; two webrtc-rs viewers get Opus under the payload type they
//! offered, which decodes to the marker tone; the camera without audio gives no audio packets.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bl_proto::token::MediaAction;
use camsim::{Audio, CameraConfig, Config as CamsimConfig, MARKER_TONE_HZ, Scenario, Stream};
use common::whep::{self, AudioPacket, CLIENT_OPUS_PT};
use common::{NODE, TestGateway, token_for};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use media_gateway::config::SourcesConfig;
use media_gateway::live::source::Source;

const WITH_AUDIO: &str = "cam-mic";
const WITHOUT_AUDIO: &str = "cam-mute";

fn main_only(url: String) -> Source {
    Source::Pull {
        url,
        sub_url: None,
        username: None,
        password: None,
    }
}

/// Decodes received Opus packets (in order) to 16-bit mono PCM at 8 kHz.
fn decode_opus(packets: &[AudioPacket]) -> Vec<i16> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=\"application/x-rtp,media=audio,clock-rate=48000,\
         encoding-name=OPUS,payload={CLIENT_OPUS_PT}\" ! rtpopusdepay ! opusdec ! audioconvert ! \
         audioresample ! audio/x-raw,format=S16LE,rate=8000,channels=1 ! appsink name=pcm sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("pcm")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let first_ts = packets[0].1;
    for (seq, ts, pt, payload) in packets {
        let mut rtp = vec![0x80, *pt];
        rtp.extend_from_slice(&seq.to_be_bytes());
        rtp.extend_from_slice(&ts.to_be_bytes());
        rtp.extend_from_slice(&1u32.to_be_bytes());
        rtp.extend_from_slice(payload);
        let mut buffer = gst::Buffer::from_mut_slice(rtp);
        let pts = u64::from(ts.wrapping_sub(first_ts)) * 1_000_000_000 / 48_000;
        buffer
            .get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_nseconds(pts));
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    let mut samples = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(5)) {
        let map = sample.buffer().unwrap().map_readable().unwrap();
        samples.extend(
            map.chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]])),
        );
    }
    pipeline.set_state(gst::State::Null).unwrap();
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn g711_from_the_camera_reaches_every_viewer_as_opus_carrying_the_marker_tone() {
    let scenario = Scenario::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-day.toml"
    )))
    .unwrap();
    let cams = camsim::serve(CamsimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![
            CameraConfig {
                audio: Some(Audio::Pcma),
                ..CameraConfig::new(WITH_AUDIO, scenario.clone())
            },
            CameraConfig::new(WITHOUT_AUDIO, scenario),
        ],
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.sources = SourcesConfig::File(vec![
        (
            WITH_AUDIO.parse().unwrap(),
            main_only(cams.url(WITH_AUDIO, Stream::Main)),
        ),
        (
            WITHOUT_AUDIO.parse().unwrap(),
            main_only(cams.url(WITHOUT_AUDIO, Stream::Main)),
        ),
    ]);
    let gw = TestGateway::start_with(config).await;

    let path = format!("/whep/{WITH_AUDIO}?stream=main");
    let token = token_for(WITH_AUDIO, MediaAction::View, NODE, 300);
    let a = whep::connect_with_audio(&gw.client, &gw.base, &path, &token).await;
    let b = whep::connect_with_audio(&gw.client, &gw.base, &path, &token).await;
    // 3 s of 20 ms frames each
    let deadline = Instant::now() + Duration::from_secs(30);
    while [&a, &b]
        .iter()
        .any(|v| v.received.audio.lock().unwrap().len() < 150)
    {
        assert!(
            Instant::now() < deadline,
            "audio packets: {} and {}",
            a.received.audio.lock().unwrap().len(),
            b.received.audio.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        a.wait_frames(5, Duration::from_secs(10)).await >= 5,
        "video plays too"
    );
    for viewer in [&a, &b] {
        let packets = viewer.received.audio.lock().unwrap().clone();
        assert!(
            packets.iter().all(|p| p.2 == CLIENT_OPUS_PT),
            "Opus under the viewer's payload type"
        );
        let samples = tokio::task::spawn_blocking(move || decode_opus(&packets))
            .await
            .unwrap();
        let steady = &samples[samples.len() / 3..];
        assert!(
            camsim::tone::has_tone(steady, 8000, MARKER_TONE_HZ as f64, 20.0),
            "the decoded Opus carries the camera's {MARKER_TONE_HZ} Hz marker ({} samples, power {:.0})",
            steady.len(),
            camsim::tone::tone_power(steady, 8000, MARKER_TONE_HZ as f64)
        );
    }
    // transcoded once for both viewers: the Opus packets made are about the packets one received
    // (counted first: each is made before it is sent, so one read later may have arrived meanwhile)
    let got = a.received.audio.lock().unwrap().len() as u64;
    let metrics = gw.metrics().await;
    let made: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "bl_gateway_live_audio_packets_total{{camera=\"{WITH_AUDIO}\",stream=\"main\"}} "
            ))
        })
        .expect("the audio packets metric")
        .parse()
        .unwrap();
    assert!(
        made >= got && made < got + 100,
        "{made} Opus packets made for 2 viewers that got {got} each"
    );

    let mute_path = format!("/whep/{WITHOUT_AUDIO}?stream=main");
    let mute_token = token_for(WITHOUT_AUDIO, MediaAction::View, NODE, 300);
    let m = whep::connect_with_audio(&gw.client, &gw.base, &mute_path, &mute_token).await;
    assert!(m.wait_frames(10, Duration::from_secs(15)).await >= 10);
    assert!(
        m.received.audio.lock().unwrap().is_empty(),
        "a camera without audio sends none"
    );
    drop(cams);
}
