//! The evidence media path on real GStreamer, for both codecs cameras send: encoded units as the
//! ingest tap delivers them (byte-stream, parameter sets at each keyframe) become an MP4 that ffprobe
//! reads with the right codec and duration, without re-encoding, and a decoded still.

use edge_agent::evidence::Codec;
use edge_agent::evidence::media::{decode_last, remux_mp4};
use edge_agent::evidence::preroll::Unit;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::process::Command;

/// `secs` of a 320x240 test pattern at 10 fps, a keyframe every second, as access units.
fn encoded(codec: Codec, secs: u32) -> Vec<Unit> {
    gst::init().unwrap();
    let (encoder, parser, caps) = match codec {
        Codec::H264 => (
            "x264enc key-int-max=10 tune=zerolatency speed-preset=ultrafast",
            "h264parse",
            "video/x-h264",
        ),
        Codec::H265 => (
            "x265enc key-int-max=10 tune=zerolatency speed-preset=ultrafast",
            "h265parse",
            "video/x-h265",
        ),
    };
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={} ! video/x-raw,width=320,height=240,framerate=10/1 ! {encoder} ! \
         {parser} config-interval=-1 ! {caps},stream-format=byte-stream,alignment=au ! appsink name=sink sync=false",
        secs * 10
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut units = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().unwrap();
        let pts = buffer.pts().unwrap().nseconds();
        units.push(Unit {
            at_ms: (pts / 1_000_000) as i64,
            pts_ns: Some(pts),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            data: buffer.map_readable().unwrap().as_slice().into(),
        });
    }
    pipeline.set_state(gst::State::Null).unwrap();
    units
}

fn probe(file: &std::path::Path) -> (String, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args([
            "stream=codec_name:format=duration",
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let codec = lines.next().unwrap_or_default().to_owned();
    let secs = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0.0);
    (codec, secs)
}

#[test]
fn h264_and_h265_units_become_a_playable_mp4_of_their_length_and_a_still() {
    for (codec, name) in [(Codec::H264, "h264"), (Codec::H265, "hevc")] {
        let units = encoded(codec, 4);
        assert!(
            units[0].keyframe && units.len() == 40,
            "{name}: {} units",
            units.len()
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("clip.mp4");
        remux_mp4(codec, &units, &out).unwrap();
        let (found, secs) = probe(&out);
        assert_eq!(found, name, "the camera's codec, not re-encoded");
        assert!((3.7..=4.2).contains(&secs), "{name}: {secs} s");
        let bytes: usize = units.iter().map(Unit::len).sum();
        let size = std::fs::metadata(&out).unwrap().len() as usize;
        assert!(
            size >= bytes && size < bytes + 64 * 1024,
            "{name}: the units plus a container"
        );

        let still = decode_last(codec, &units[..15]).unwrap();
        assert_eq!((still.width, still.height), (320, 240));
        assert_eq!(still.bgr.len(), 320 * 240 * 3);
    }
}
