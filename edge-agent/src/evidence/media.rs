//! GStreamer at the evidence end: encoded units from the pre-roll into an MP4 file without
//! re-encoding, and into one decoded picture for a snapshot.
//!
//! ```text
//! clip:     appsrc (byte-stream, au) ─▶ h264parse|h265parse ─▶ mp4mux ─▶ filesink
//! snapshot: appsrc (byte-stream, au) ─▶ h264parse|h265parse ─▶ avdec_h264|avdec_h265 ─▶ videoconvert ─▶ BGR appsink
//! ```
//! Both are short-lived pipelines run to EOS on the evidence worker's blocking thread.

use super::preroll::Unit;
use super::recorder::Codec;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::path::Path;
use std::time::Duration;

/// How long a remux or decode may take before it is given up.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot build the evidence pipeline: {0}")]
    Build(String),
    #[error("the evidence pipeline failed: {0}")]
    Run(String),
    #[error("the evidence pipeline did not finish within {0:?}")]
    Timeout(Duration),
    #[error("no picture could be decoded")]
    NoPicture,
}

fn parser(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 => "h264parse",
        Codec::H265 => "h265parse",
    }
}

fn caps(codec: Codec) -> gst::Caps {
    let name = match codec {
        Codec::H264 => "video/x-h264",
        Codec::H265 => "video/x-h265",
    };
    gst::Caps::builder(name)
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .build()
}

/// Writes `units` (starting at a keyframe) as an MP4 file at `out`.
pub fn remux_mp4(codec: Codec, units: &[Unit], out: &Path) -> Result<(), MediaError> {
    let description = format!(
        "appsrc name=src ! {} ! mp4mux ! filesink name=sink",
        parser(codec)
    );
    let pipeline = launch(&description)?;
    let sink = pipeline
        .by_name("sink")
        .ok_or_else(|| MediaError::Build("no filesink".into()))?;
    sink.set_property("location", out.to_string_lossy().to_string());
    let src = appsrc(&pipeline, codec)?;
    run(&pipeline, || feed(&src, units))?;
    Ok(())
}

/// A decoded picture: BGR, `width * height * 3` bytes, no padding.
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub bgr: Vec<u8>,
}

/// Decodes `units` (a keyframe and the frames after it) and returns the last picture.
pub fn decode_last(codec: Codec, units: &[Unit]) -> Result<Picture, MediaError> {
    let decoder = match codec {
        Codec::H264 => "avdec_h264",
        Codec::H265 => "avdec_h265",
    };
    let description = format!(
        "appsrc name=src ! {} ! {decoder} ! videoconvert ! video/x-raw,format=BGR ! appsink name=sink sync=false",
        parser(codec)
    );
    let pipeline = launch(&description)?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| MediaError::Build("no appsink".into()))?;
    let last = std::sync::Arc::new(std::sync::Mutex::new(None::<gst::Sample>));
    let keep = last.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                *keep.lock().unwrap_or_else(|e| e.into_inner()) = Some(sample);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let src = appsrc(&pipeline, codec)?;
    run(&pipeline, || feed(&src, units))?;
    let sample = last
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or(MediaError::NoPicture)?;
    picture(&sample)
}

fn picture(sample: &gst::Sample) -> Result<Picture, MediaError> {
    let caps = sample.caps().ok_or(MediaError::NoPicture)?;
    let info = gstreamer_video::VideoInfo::from_caps(caps).map_err(|_| MediaError::NoPicture)?;
    let buffer = sample.buffer().ok_or(MediaError::NoPicture)?;
    let map = buffer.map_readable().map_err(|_| MediaError::NoPicture)?;
    let (width, height) = (info.width() as usize, info.height() as usize);
    let stride = info.stride()[0] as usize;
    let mut bgr = Vec::with_capacity(width * height * 3);
    for row in 0..height {
        let start = row * stride;
        bgr.extend_from_slice(
            map.get(start..start + width * 3)
                .ok_or(MediaError::NoPicture)?,
        );
    }
    Ok(Picture {
        width: width as u32,
        height: height as u32,
        bgr,
    })
}

fn launch(description: &str) -> Result<gst::Pipeline, MediaError> {
    gst::init().map_err(|e| MediaError::Build(e.to_string()))?;
    gst::parse::launch(description)
        .map_err(|e| MediaError::Build(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| MediaError::Build("not a pipeline".into()))
}

fn appsrc(pipeline: &gst::Pipeline, codec: Codec) -> Result<gst_app::AppSrc, MediaError> {
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| MediaError::Build("no appsrc".into()))?;
    src.set_caps(Some(&caps(codec)));
    src.set_format(gst::Format::Time);
    // Everything is pushed up front; the queue must take it all rather than block.
    src.set_max_bytes(0);
    src.set_block(false);
    Ok(src)
}

/// Pushes `units` with [`timestamps`], then EOS.
fn feed(src: &gst_app::AppSrc, units: &[Unit]) -> Result<(), MediaError> {
    for (unit, ns) in units.iter().zip(timestamps(units)) {
        let mut buffer = gst::Buffer::from_slice(unit.data.to_vec());
        {
            let b = buffer.get_mut().expect("a new buffer is writable");
            b.set_pts(gst::ClockTime::from_nseconds(ns));
            b.set_dts(gst::ClockTime::from_nseconds(ns));
            if !unit.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        src.push_buffer(buffer)
            .map_err(|e| MediaError::Run(format!("push: {e:?}")))?;
    }
    src.end_of_stream()
        .map_err(|e| MediaError::Run(format!("eos: {e:?}")))?;
    Ok(())
}

/// Each unit's time in the file, nanoseconds from zero, never decreasing (mp4mux refuses time going
/// backwards; camera streams have no B-frames, so PTS = DTS). The stream's own presentation times
/// are used when every unit has one (steady even when packets arrived in bursts), rebased where
/// they jump back (the camera reconnected mid-clip: the gap is taken from the arrival times);
/// otherwise the arrival times.
pub fn timestamps(units: &[Unit]) -> Vec<u64> {
    let ms = |a: i64, b: i64| (a - b).max(0) as u64 * 1_000_000;
    let first_at = units.first().map_or(0, |u| u.at_ms);
    if units.iter().any(|u| u.pts_ns.is_none()) {
        return units.iter().map(|u| ms(u.at_ms, first_at)).collect();
    }
    let mut out = Vec::with_capacity(units.len());
    // (stream time, file time) of the current run of steady timestamps
    let mut base: Option<(u64, u64)> = None;
    let (mut prev_pts, mut prev_at, mut last) = (0u64, first_at, 0u64);
    for unit in units {
        let pts = unit.pts_ns.unwrap_or(0);
        let (base_pts, base_ns) = match base {
            Some(b) if pts >= prev_pts => b,
            Some(_) => {
                let b = (pts, last + ms(unit.at_ms, prev_at).max(1_000_000));
                base = Some(b);
                b
            }
            None => {
                base = Some((pts, 0));
                (pts, 0)
            }
        };
        let ns = (base_ns + (pts - base_pts)).max(last);
        out.push(ns);
        (prev_pts, prev_at, last) = (pts, unit.at_ms, ns);
    }
    out
}

/// Plays `pipeline`, lets `feed` push, and waits for EOS or an error.
fn run(
    pipeline: &gst::Pipeline,
    feed: impl FnOnce() -> Result<(), MediaError>,
) -> Result<(), MediaError> {
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| MediaError::Run(e.to_string()))?;
        feed()?;
        let bus = pipeline
            .bus()
            .ok_or_else(|| MediaError::Build("no bus".into()))?;
        let message = bus
            .timed_pop_filtered(
                gst::ClockTime::from_mseconds(RUN_TIMEOUT.as_millis() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .ok_or(MediaError::Timeout(RUN_TIMEOUT))?;
        match message.view() {
            gst::MessageView::Error(e) => Err(MediaError::Run(e.error().to_string())),
            _ => Ok(()),
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(at_ms: i64, pts_ms: Option<u64>) -> Unit {
        Unit {
            at_ms,
            pts_ns: pts_ms.map(|p| p * 1_000_000),
            keyframe: false,
            data: vec![0].into(),
        }
    }

    fn in_ms(units: &[Unit]) -> Vec<u64> {
        timestamps(units)
            .into_iter()
            .map(|ns| ns / 1_000_000)
            .collect()
    }

    #[test]
    fn stream_times_start_at_zero_and_a_reconnect_continues_after_the_gap() {
        // Steady stream times although the packets arrived in a burst.
        let burst = [
            unit(1_000, Some(5_000)),
            unit(1_300, Some(5_100)),
            unit(1_301, Some(5_200)),
        ];
        assert_eq!(in_ms(&burst), vec![0, 100, 200]);
        // The camera reconnected 2 s later and its times restarted near zero.
        let reconnect = [
            unit(1_000, Some(5_000)),
            unit(1_100, Some(5_100)),
            unit(3_100, Some(40)),
            unit(3_200, Some(140)),
        ];
        assert_eq!(in_ms(&reconnect), vec![0, 100, 2_100, 2_200]);
    }

    #[test]
    fn without_stream_times_the_arrival_times_are_used() {
        let units = [unit(1_000, None), unit(1_100, Some(9)), unit(1_250, None)];
        assert_eq!(in_ms(&units), vec![0, 100, 250]);
    }
}
