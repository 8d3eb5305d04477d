//! Voice recordings as the tests read them: the pending reports a gateway writes and the stereo
//! audio of a stored recording.

use std::path::Path;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use media_gateway::voicerec::VoiceReport;

/// Decodes a recording to 16 kHz 16-bit stereo; returns (left, right).
pub fn decode_stereo(bytes: Vec<u8>) -> (Vec<i16>, Vec<i16>) {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(
        "appsrc name=src ! matroskademux ! opusdec ! audioconvert ! audioresample ! \
         audio/x-raw,format=S16LE,rate=16000,channels=2 ! appsink name=pcm sync=false",
    )
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
    src.push_buffer(gst::Buffer::from_mut_slice(bytes)).unwrap();
    src.end_of_stream().unwrap();
    let (mut left, mut right) = (Vec::new(), Vec::new());
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(5)) {
        let map = sample.buffer().unwrap().map_readable().unwrap();
        for frame in map.chunks_exact(4) {
            left.push(i16::from_le_bytes([frame[0], frame[1]]));
            right.push(i16::from_le_bytes([frame[2], frame[3]]));
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (left, right)
}

/// Waits for the pending reports of `n` recordings.
pub async fn reports(dir: &Path, n: usize) -> Vec<VoiceReport> {
    let pending = dir.join("voicerec/pending");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found: Vec<VoiceReport> = std::fs::read_dir(&pending)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
                    .collect()
            })
            .unwrap_or_default();
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} recordings reported",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
