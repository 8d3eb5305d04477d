//! One recording run of one camera: a GStreamer pipeline
//! `rtspsrc` (TCP) → `rtph264depay`/`rtph265depay` → `h264parse`/`h265parse` → `splitmuxsink`
//! (`mp4mux` with `fragment-duration`: fragmented MP4, cut at the first keyframe after the segment
//! length). Nothing is decoded or re-encoded.
//!
//! Why its own RTSP session rather than the live relay's ingest: the relay re-payloads to RTP for
//! WebRTC and drops packets for a slow consumer (right for live, wrong for evidence), lives only while
//! someone watches, and handles H.264 only; a recording wants the camera's own elementary stream and
//! timestamps, from H.264 or H.265, for as long as it runs. The price is one more RTSP session per
//! recorded camera, which cameras and NVRs routinely allow.
//!
//! Runs on a blocking thread; each finished segment is handed to `on_closed` on that thread (which
//! makes it durable and indexes it) before the next bus message is read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gst::prelude::*;
use gstreamer as gst;

use super::segment;

/// Where to pull from. No `Debug`: it may hold a password.
#[derive(Clone)]
pub struct Target {
    /// RTSP URL (log only through `redact_url`).
    pub url: String,
    /// RTSP login.
    pub username: Option<String>,
    /// RTSP password.
    pub password: Option<String>,
}

/// A finished segment file, not yet durable.
#[derive(Debug, Clone)]
pub struct Closed {
    /// The partial file splitmuxsink wrote.
    pub partial: PathBuf,
    /// Wall-clock time of its first frame.
    pub start: DateTime<Utc>,
    /// Wall-clock time it was closed.
    pub end: DateTime<Utc>,
}

/// Why handing over a segment failed.
#[derive(Debug)]
pub enum CommitError {
    /// No room to make it durable or index it.
    StorageFull(String),
    /// Anything else.
    Failed(String),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Asked to stop; the segment in progress was finished and handed over.
    Stopped,
    /// The disk is full; the segment in progress was discarded.
    StorageFull(String),
    /// The source failed, went quiet or sends a codec that cannot be recorded.
    Failed(String),
}

/// Silence after which a source counts as dead.
const QUIET_LIMIT: Duration = Duration::from_secs(10);
/// Fragment length inside a segment file (mp4mux `fragment-duration`, ms).
const FRAGMENT_MS: u32 = 1000;

/// Records `target` into `{recordings}/{camera}/` in segments of `segment_len` until `stop` is set
/// or something fails.
pub fn run(
    target: &Target,
    recordings: &Path,
    camera: &str,
    segment_len: Duration,
    stop: &AtomicBool,
    on_closed: &mut dyn FnMut(Closed) -> Result<(), CommitError>,
) -> Ended {
    let frames = Arc::new(AtomicU64::new(0));
    let pipeline = match build(target, recordings, camera, segment_len, &frames) {
        Ok(p) => p,
        Err(e) => return Ended::Failed(e),
    };
    let ended = watch(&pipeline, stop, &frames, on_closed);
    let _ = pipeline.set_state(gst::State::Null);
    ended
}

fn build(
    target: &Target,
    recordings: &Path,
    camera: &str,
    segment_len: Duration,
    frames: &Arc<AtomicU64>,
) -> Result<gst::Pipeline, String> {
    gst::init().map_err(|e| format!("gstreamer init: {e}"))?;
    std::fs::create_dir_all(recordings.join(camera))
        .map_err(|e| format!("cannot create the camera's recording folder: {e}"))?;
    let src = make("rtspsrc")?;
    src.set_property("location", &target.url);
    src.set_property_from_str("protocols", "tcp");
    src.set_property("latency", 200u32);
    src.set_property("tcp-timeout", 5_000_000u64);
    if let Some(u) = &target.username {
        src.set_property("user-id", u);
    }
    if let Some(p) = &target.password {
        src.set_property("user-pw", p);
    }
    let mux = make("mp4mux")?;
    mux.set_property("fragment-duration", FRAGMENT_MS);
    let split = make("splitmuxsink")?;
    split.set_property("muxer", &mux);
    split.set_property(
        "max-size-time",
        u64::try_from(segment_len.as_nanos()).unwrap_or(u64::MAX),
    );
    let (root, cam) = (recordings.to_owned(), camera.to_owned());
    split.connect("format-location", false, move |_| {
        Some(
            segment::partial_path(&root, &cam)
                .to_string_lossy()
                .into_owned()
                .to_value(),
        )
    });
    let pipeline = gst::Pipeline::new();
    pipeline
        .add_many([&src, &split])
        .map_err(|e| e.to_string())?;

    let weak_pipeline = pipeline.downgrade();
    let weak_split = split.downgrade();
    let frames = frames.clone();
    src.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(split)) = (weak_pipeline.upgrade(), weak_split.upgrade()) else {
            return;
        };
        if let Err(e) = link_video(&pipeline, &split, pad, &frames) {
            tracing::error!(err = %e, "cannot record the camera's stream");
            let _ =
                pipeline.post_message(gst::message::Error::new(gst::CoreError::Negotiation, &e));
        }
    });
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot start the recording pipeline: {e}"))?;
    Ok(pipeline)
}

fn make(name: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(name).build().map_err(|_| {
        format!("GStreamer element {name} is missing (install gstreamer1.0-plugins-good/-bad)")
    })
}

/// Links the camera's first video pad through depayloader and parser into splitmuxsink; audio and
/// further video pads are ignored.
fn link_video(
    pipeline: &gst::Pipeline,
    split: &gst::Element,
    pad: &gst::Pad,
    frames: &Arc<AtomicU64>,
) -> Result<(), String> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let Some(s) = caps.structure(0) else {
        return Ok(());
    };
    if s.get::<&str>("media").ok() != Some("video") || split.static_pad("video").is_some() {
        return Ok(());
    }
    let encoding = s
        .get::<&str>("encoding-name")
        .unwrap_or("?")
        .to_ascii_uppercase();
    let (depay, parse) = match encoding.as_str() {
        "H264" => (make("rtph264depay")?, make("h264parse")?),
        "H265" => (make("rtph265depay")?, make("h265parse")?),
        other => {
            return Err(format!(
                "the camera sends {other}; recording takes H.264 or H.265"
            ));
        }
    };
    pipeline
        .add_many([&depay, &parse])
        .map_err(|e| e.to_string())?;
    depay.link(&parse).map_err(|e| e.to_string())?;
    let sinkpad = split
        .request_pad_simple("video")
        .ok_or("splitmuxsink has no video pad")?;
    parse
        .static_pad("src")
        .ok_or("parser has no src pad")?
        .link(&sinkpad)
        .map_err(|e| format!("{e:?}"))?;
    let counter = frames.clone();
    sinkpad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        counter.fetch_add(1, Relaxed);
        gst::PadProbeReturn::Ok
    });
    depay.sync_state_with_parent().map_err(|e| e.to_string())?;
    parse.sync_state_with_parent().map_err(|e| e.to_string())?;
    pad.link(
        &depay
            .static_pad("sink")
            .ok_or("depayloader has no sink pad")?,
    )
    .map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// The wall-clock time of a running time the pipeline reported a moment ago.
fn wall_time(pipeline: &gst::Pipeline, running: Option<u64>) -> DateTime<Utc> {
    let now = Utc::now();
    let (Some(then), Some(current)) = (running, pipeline.current_running_time()) else {
        return now;
    };
    let ago = current.nseconds().saturating_sub(then);
    now - chrono::Duration::nanoseconds(i64::try_from(ago).unwrap_or(0))
}

fn watch(
    pipeline: &gst::Pipeline,
    stop: &AtomicBool,
    frames: &AtomicU64,
    on_closed: &mut dyn FnMut(Closed) -> Result<(), CommitError>,
) -> Ended {
    let Some(bus) = pipeline.bus() else {
        return Ended::Failed("pipeline has no bus".into());
    };
    let mut opened: Option<(PathBuf, DateTime<Utc>)> = None;
    let mut last_frames = 0;
    let mut quiet_since = Instant::now();
    let mut stopping: Option<Instant> = None;
    loop {
        if stop.load(Relaxed) && stopping.is_none() {
            // Finish the segment in progress: EOS makes splitmuxsink close and announce it.
            stopping = Some(Instant::now());
            pipeline.send_event(gst::event::Eos::new());
        }
        if stopping.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            return Ended::Stopped;
        }
        let now_frames = frames.load(Relaxed);
        if now_frames != last_frames {
            last_frames = now_frames;
            quiet_since = Instant::now();
        } else if stopping.is_none() && quiet_since.elapsed() > QUIET_LIMIT {
            return Ended::Failed(format!(
                "no video from the camera for {} s",
                QUIET_LIMIT.as_secs()
            ));
        }
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[
                gst::MessageType::Error,
                gst::MessageType::Eos,
                gst::MessageType::Element,
            ],
        ) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                let location = s.get::<String>("location").ok().map(PathBuf::from);
                let running = s.get::<u64>("running-time").ok();
                match (s.name().as_str(), location) {
                    ("splitmuxsink-fragment-opened", Some(path)) => {
                        opened = Some((path, wall_time(pipeline, running)));
                    }
                    ("splitmuxsink-fragment-closed", Some(path)) => {
                        let start = match opened.take() {
                            Some((p, t)) if p == path => t,
                            _ => wall_time(pipeline, running),
                        };
                        let end = wall_time(pipeline, running).max(start);
                        let closed = Closed {
                            partial: path,
                            start,
                            end,
                        };
                        match on_closed(closed) {
                            Ok(()) => {}
                            Err(CommitError::StorageFull(why)) => return Ended::StorageFull(why),
                            Err(CommitError::Failed(why)) => return Ended::Failed(why),
                        }
                    }
                    _ => {}
                }
            }
            gst::MessageView::Eos(_) => {
                return if stopping.is_some() {
                    Ended::Stopped
                } else {
                    Ended::Failed("the camera ended the stream".into())
                };
            }
            gst::MessageView::Error(e) => {
                let why = format!("{}", e.error());
                return if e.error().matches(gst::ResourceError::NoSpaceLeft) {
                    Ended::StorageFull(why)
                } else {
                    Ended::Failed(why)
                };
            }
            _ => {}
        }
    }
}
