//! An ONVIF client (rtspsrc backchannel=onvif) talks to a camera with a backchannel; camsim records
//! what it hears to a WAV file.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camsim::{CameraConfig, Codec, Stream};
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;

/// Power of `freq` in 16-bit mono PCM at 8 kHz.
fn tone_power(samples: &[i16], freq: f64) -> f64 {
    camsim::tone::tone_power(samples, 8000, freq)
}

#[test]
fn a_1khz_tone_pushed_on_the_onvif_backchannel_is_recorded_to_a_wav_file() {
    common::require_elements(&[
        "rtspsrc",
        "audiotestsrc",
        "mulawenc",
        "rtppcmupay",
        "rtppcmudepay",
        "mulawdec",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let cam = CameraConfig {
        backchannel_dir: Some(rec.clone()),
        ..common::camera("k9", "kitchen-day.toml", Codec::H264)
    };
    let server = common::start(dir.path(), vec![cam]);

    let client = gst::Pipeline::new();
    let src = gst::ElementFactory::make("rtspsrc")
        .property("location", server.url("k9", Stream::Main))
        .property_from_str("backchannel", "onvif")
        .property_from_str("protocols", "tcp")
        .property("latency", 0u32)
        .build()
        .unwrap();
    client.add(&src).unwrap();
    let backchannel: Arc<Mutex<Option<u32>>> = Arc::default();
    let bc = backchannel.clone();
    src.connect("select-stream", false, move |args| {
        let num = args[1].get::<u32>().unwrap();
        let caps = args[2].get::<gst::Caps>().unwrap();
        if caps.structure(0).is_some_and(|s| s.has_field("a-sendonly")) {
            *bc.lock().unwrap() = Some(num);
        }
        Some(true.to_value())
    });
    let got_media = Arc::new(Mutex::new(false));
    let gm = got_media.clone();
    let c2 = client.downgrade();
    src.connect_pad_added(move |_, pad| {
        let Some(client) = c2.upgrade() else { return };
        let sink = gst::ElementFactory::make("fakesink")
            .property("async", false)
            .build()
            .unwrap();
        client.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        *gm.lock().unwrap() = true;
    });
    client.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !*got_media.lock().unwrap() {
        assert!(Instant::now() < deadline, "no media from the ONVIF camera");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stream = backchannel
        .lock()
        .unwrap()
        .expect("the camera offers a backchannel (a-sendonly) stream");

    // 2 s of a 1 kHz tone as PCMU RTP packets of 20 ms
    let tone = gst::parse::launch(
        "audiotestsrc wave=sine freq=1000 volume=0.5 is-live=true samplesperbuffer=160 num-buffers=100 ! \
         audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay ! appsink name=rtp sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let rtp = tone
        .by_name("rtp")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    tone.set_state(gst::State::Playing).unwrap();
    let mut pushed = 0;
    while let Some(sample) = rtp.try_pull_sample(gst::ClockTime::from_seconds(5)) {
        // GStreamer 1.22.0's rtspsrc declares this signal's argument as a GstSample and unrefs it in the
        // handler (transfer full, as C callers pass the pulled sample on), while an emission from Rust
        // keeps its own reference. Hand it one extra reference so the counts stay balanced.
        std::mem::forget(sample.clone());
        let ret =
            src.emit_by_name::<gst::FlowReturn>("push-backchannel-buffer", &[&stream, &sample]);
        assert_eq!(ret, gst::FlowReturn::Ok, "push-backchannel-buffer");
        pushed += 1;
        if rtp.is_eos() {
            break;
        }
    }
    assert!(pushed >= 90, "pushed {pushed} packets");
    std::thread::sleep(Duration::from_millis(500));
    tone.set_state(gst::State::Null).unwrap();
    client.set_state(gst::State::Null).unwrap();
    // the client left: the recording is complete
    std::thread::sleep(Duration::from_millis(500));
    server.stop();

    let wavs: Vec<_> = std::fs::read_dir(&rec)
        .expect("the record dir exists")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(wavs.len(), 1, "{wavs:?}");
    let name = wavs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("k9-backchannel-") && name.ends_with(".wav"),
        "{name}"
    );
    let bytes = std::fs::read(&wavs[0]).unwrap();
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let data_len = u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
    assert_eq!(data_len, bytes.len() - 44, "the header is finalised");
    let samples: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert!(
        samples.len() >= 8000,
        "at least 1 s recorded, got {} samples",
        samples.len()
    );
    let at_1k = tone_power(&samples, 1000.0);
    for other in [400.0, 2500.0] {
        let p = tone_power(&samples, other);
        assert!(
            at_1k > 100.0 * p,
            "energy at 1 kHz ({at_1k:.1}) dominates {other} Hz ({p:.1})"
        );
    }
    assert!(at_1k > 1000.0, "the tone is loud enough: {at_1k:.1}");
}
