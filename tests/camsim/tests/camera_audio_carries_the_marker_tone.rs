//! A camera with an audio track: an RTSP client decodes its main stream's audio and hears the
//! marker tone (700 Hz) over the kitchen noise, for each codec camsim offers.

mod common;

use std::time::{Duration, Instant};

use camsim::{Audio, CameraConfig, Codec, MARKER_TONE_HZ, Stream};
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;

/// About `secs` seconds of the main stream's audio, decoded to 16-bit mono at 8 kHz.
fn read_audio(url: &str, secs: usize) -> Vec<i16> {
    let pipeline = gst::parse::launch(&format!(
        "rtspsrc name=src location={url} protocols=tcp latency=0 \
         src. ! application/x-rtp,media=audio ! decodebin ! audioconvert ! audioresample ! \
         audio/x-raw,format=S16LE,rate=8000,channels=1 ! appsink name=pcm sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("pcm")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut samples = Vec::new();
    while samples.len() < secs * 8000 {
        assert!(
            Instant::now() < deadline,
            "only {} samples of audio from {url}",
            samples.len()
        );
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(500)) else {
            continue;
        };
        let map = sample.buffer().unwrap().map_readable().unwrap();
        samples.extend(
            map.chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]])),
        );
    }
    pipeline.set_state(gst::State::Null).unwrap();
    samples
}

#[test]
fn the_main_stream_audio_carries_the_marker_tone_in_g711_and_aac() {
    common::require_elements(&["rtspsrc", "decodebin", "alawenc", "avenc_aac", "audiomixer"]);
    let dir = tempfile::tempdir().unwrap();
    let cam = |id: &str, audio| CameraConfig {
        audio: Some(audio),
        ..common::camera(id, "kitchen-day.toml", Codec::H264)
    };
    let server = common::start(
        dir.path(),
        vec![cam("ka", Audio::Pcma), cam("kb", Audio::Aac)],
    );
    for id in ["ka", "kb"] {
        let samples = read_audio(&server.url(id, Stream::Main), 2);
        // skip the decoder's start-up
        let steady = &samples[samples.len() / 4..];
        assert!(
            camsim::tone::has_tone(steady, 8000, MARKER_TONE_HZ as f64, 20.0),
            "camera {id}: the {MARKER_TONE_HZ} Hz marker dominates ({:.0} at the marker)",
            camsim::tone::tone_power(steady, 8000, MARKER_TONE_HZ as f64)
        );
    }
    server.stop();
}
