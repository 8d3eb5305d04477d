//! One camera's GStreamer pipeline: RTSP over TCP in, H.264 or H.265 decoded, grey frames out at a
//! low rate and small size for detection. The encoded bytes are counted on the way in (bitrate).
//!
//! ```text
//! rtspsrc (tcp) ─▶ decodebin ─▶ videorate ─▶ videoscale ─▶ videoconvert ─▶ GRAY8 WxH @ fps ─▶ appsink
//! ```
//! The appsink keeps at most two frames and drops older ones: a slow consumer never stalls the
//! stream.
//!
//! With a [`ColourFormat`] the decoded pictures are also offered, in colour and larger, to the
//! person detector:
//! ```text
//! decodebin ─▶ tee ─┬▶ queue ─▶ videorate ─▶ … GRAY8 320x180 @ 5 fps ─▶ appsink
//!                   └▶ queue (leaky) ─▶ videorate ─▶ videoscale ─▶ videoconvert ─▶ BGR W x H @ 1–2 fps ─▶ appsink
//! ```
//! The colour queue drops rather than waits and each appsink keeps one or two frames, so neither
//! branch can stall the other or the stream. The rate is cut before scaling, so an unused colour
//! branch costs one scale and conversion at 1–2 fps (a `valve` to shut it stalled the grey branch
//! too in GStreamer 1.22, so the caller simply leaves its pictures unread).
//!
//! With an evidence [`Recorder`], the encoded stream is tapped before decoding, so the pre-roll
//! holds the camera's own bytes (never re-encoded):
//! ```text
//! rtspsrc ─▶ rtph26Xdepay ─▶ h26Xparse (SPS/PPS at every keyframe, byte-stream, AU) ─▶ tee ─┬▶ queue ─▶ decodebin ─▶ … as above
//!                                                                                           └▶ queue (leaky) ─▶ appsink ─▶ Recorder
//! ```
//! The evidence branch's queue drops rather than waits, so a slow recorder never stalls detection.

use crate::evidence::preroll::Unit;
use crate::evidence::{Codec, Recorder};
use bl_service::secret::Secret;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What detection receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameFormat {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl Default for FrameFormat {
    /// 5 fps at 320x180: enough for people and rodents, cheap enough for many cameras per box.
    fn default() -> Self {
        Self {
            width: 320,
            height: 180,
            fps: 5,
        }
    }
}

/// The colour frames for the person detector: BGR, `width` wide (the height keeps the camera's
/// aspect), `fps` a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColourFormat {
    pub width: u32,
    pub fps: u32,
}

impl Default for ColourFormat {
    /// 640 px wide (a head of a person at the far wall is then over 20 px), 2 fps (a person model
    /// look costs 50–150 ms; people move slowly).
    fn default() -> Self {
        Self { width: 640, fps: 2 }
    }
}

/// One colour picture: BGR, `width * height * 3` bytes, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColourPicture {
    pub width: u32,
    pub height: u32,
    pub bgr: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(
        "GStreamer element {0} is missing; install the GStreamer plugins (deploy/dev/install-deps.sh)"
    )]
    Missing(&'static str),
    #[error("cannot build the pipeline: {0}")]
    Build(String),
    #[error("the stream failed: {0}")]
    Stream(String),
    #[error("the stream ended")]
    Ended,
}

/// A running pipeline. Dropping it stops it.
pub struct CameraPipeline {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    /// The colour branch's sink, when asked for.
    colour: Option<gst_app::AppSink>,
    bytes: Arc<AtomicU64>,
}

impl CameraPipeline {
    /// Starts pulling `url` (which may hold credentials: it is never logged or put in errors),
    /// feeding `recorder` with the encoded stream if given, with a colour branch if `colour` is
    /// given.
    pub fn start(
        url: &Secret,
        format: FrameFormat,
        colour: Option<ColourFormat>,
        recorder: Option<Recorder>,
    ) -> Result<CameraPipeline, PipelineError> {
        gst::init().map_err(|e| PipelineError::Build(e.to_string()))?;
        let make = |name: &'static str| {
            gst::ElementFactory::make(name)
                .build()
                .map_err(|_| PipelineError::Missing(name))
        };
        let src = make("rtspsrc")?;
        src.set_property("location", url.expose());
        src.set_property_from_str("protocols", "tcp");
        src.set_property("latency", 200u32);
        let decode = make("decodebin")?;
        let rate = make("videorate")?;
        rate.set_property("drop-only", true);
        let scale = make("videoscale")?;
        let convert = make("videoconvert")?;
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "GRAY8")
            .field("width", format.width as i32)
            .field("height", format.height as i32)
            .field("framerate", gst::Fraction::new(format.fps as i32, 1))
            .build();
        let filter = gst::ElementFactory::make("capsfilter")
            .property("caps", &caps)
            .build()
            .map_err(|_| PipelineError::Missing("capsfilter"))?;
        let sink = gst_app::AppSink::builder()
            .max_buffers(2)
            .drop(true)
            .sync(false)
            .build();

        let pipeline = gst::Pipeline::new();
        pipeline
            .add_many([
                &src,
                &decode,
                &rate,
                &scale,
                &convert,
                &filter,
                sink.upcast_ref(),
            ])
            .map_err(|e| PipelineError::Build(e.to_string()))?;
        gst::Element::link_many([&rate, &scale, &convert, &filter, sink.upcast_ref()])
            .map_err(|e| PipelineError::Build(e.to_string()))?;
        // Where decoded pictures go: the grey branch alone, or a tee feeding both branches.
        let (decoded, colour) = match colour {
            None => (rate.clone(), None),
            Some(c) => {
                let (tee, colour_sink) = colour_branch(&pipeline, &rate, c)?;
                (tee, Some(colour_sink))
            }
        };

        let bytes = Arc::new(AtomicU64::new(0));
        let counted = bytes.clone();
        let decode_weak = decode.downgrade();
        let pipeline_weak = pipeline.downgrade();
        src.connect_pad_added(move |_, pad| {
            let (Some(decode), Some(pipeline)) = (decode_weak.upgrade(), pipeline_weak.upgrade())
            else {
                return;
            };
            let Some(sink_pad) = decode.static_pad("sink") else {
                return;
            };
            if sink_pad.is_linked() {
                return; // one video stream is enough; audio pads are left unlinked
            }
            let is_video = pad
                .current_caps()
                .and_then(|c| c.structure(0).and_then(|s| s.get::<String>("media").ok()))
                .is_none_or(|m| m == "video");
            if !is_video {
                return;
            }
            let counted = counted.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buffer) = info.buffer() {
                    counted.fetch_add(buffer.size() as u64, Ordering::Relaxed);
                }
                gst::PadProbeReturn::Ok
            });
            let codec = pad
                .current_caps()
                .and_then(|c| c.structure(0).and_then(|s| s.get::<String>("encoding-name").ok()))
                .and_then(|name| match name.as_str() {
                    "H264" => Some(Codec::H264),
                    "H265" => Some(Codec::H265),
                    _ => None,
                });
            match (&recorder, codec) {
                (Some(recorder), Some(codec)) => {
                    if let Err(e) = tap(&pipeline, pad, &sink_pad, codec, recorder.clone()) {
                        tracing::error!(err = %e, "cannot tap the encoded stream; no evidence from this camera");
                        let _ = pad.link(&sink_pad);
                    }
                }
                _ => {
                    let _ = pad.link(&sink_pad);
                }
            }
        });
        let decoded_weak = decoded.downgrade();
        decode.connect_pad_added(move |_, pad| {
            let Some(decoded) = decoded_weak.upgrade() else {
                return;
            };
            let Some(sink_pad) = decoded.static_pad("sink") else {
                return;
            };
            let is_raw_video = pad
                .current_caps()
                .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/x-raw")))
                .unwrap_or(false);
            if is_raw_video && !sink_pad.is_linked() {
                let _ = pad.link(&sink_pad);
            }
        });

        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| PipelineError::Build(e.to_string()))?;
        Ok(CameraPipeline {
            pipeline,
            sink,
            colour,
            bytes,
        })
    }

    /// The newest colour picture, if one came since the last call (never waits).
    pub fn colour_picture(&self) -> Result<Option<ColourPicture>, PipelineError> {
        let Some(sink) = &self.colour else {
            return Ok(None);
        };
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::ZERO) else {
            return Ok(None);
        };
        let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
            return Ok(None);
        };
        let info = gstreamer_video::VideoInfo::from_caps(caps)
            .map_err(|e| PipelineError::Stream(format!("colour caps: {e}")))?;
        let map = buffer
            .map_readable()
            .map_err(|e| PipelineError::Stream(e.to_string()))?;
        let (w, h) = (info.width() as usize, info.height() as usize);
        let stride = info.stride()[0] as usize;
        // Rows are padded to 4 bytes; the detector wants them packed.
        let mut bgr = Vec::with_capacity(w * h * 3);
        for row in map.as_slice().chunks(stride).take(h) {
            bgr.extend_from_slice(&row[..w * 3]);
        }
        if bgr.len() != w * h * 3 {
            return Err(PipelineError::Stream(format!(
                "colour picture of {} bytes for {w}x{h}",
                bgr.len()
            )));
        }
        Ok(Some(ColourPicture {
            width: w as u32,
            height: h as u32,
            bgr,
        }))
    }

    /// Waits up to `timeout` for the next frame; `Ok(None)` when none came in time. Stream errors
    /// and the end of the stream are returned as errors.
    pub fn next_frame(&self, timeout: Duration) -> Result<Option<Vec<u8>>, PipelineError> {
        self.check_bus()?;
        let Some(sample) = self
            .sink
            .try_pull_sample(gst::ClockTime::from_mseconds(timeout.as_millis() as u64))
        else {
            if self.sink.is_eos() {
                return Err(PipelineError::Ended);
            }
            return Ok(None);
        };
        let Some(buffer) = sample.buffer() else {
            return Ok(None);
        };
        let map = buffer
            .map_readable()
            .map_err(|e| PipelineError::Stream(e.to_string()))?;
        Ok(Some(map.as_slice().to_vec()))
    }

    /// Encoded bytes received since the last call.
    pub fn take_bytes(&self) -> u64 {
        self.bytes.swap(0, Ordering::Relaxed)
    }

    fn check_bus(&self) -> Result<(), PipelineError> {
        let Some(bus) = self.pipeline.bus() else {
            return Ok(());
        };
        while let Some(message) =
            bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos])
        {
            match message.view() {
                gst::MessageView::Error(e) => {
                    // GStreamer's messages can quote the location; keep only the error itself.
                    return Err(PipelineError::Stream(e.error().to_string()));
                }
                gst::MessageView::Eos(_) => return Err(PipelineError::Ended),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Builds the colour branch beside the grey one (see the module's diagram); returns the tee that
/// decoded pictures go to and the colour sink.
fn colour_branch(
    pipeline: &gst::Pipeline,
    grey: &gst::Element,
    format: ColourFormat,
) -> Result<(gst::Element, gst_app::AppSink), PipelineError> {
    let make = |name: &'static str| {
        gst::ElementFactory::make(name)
            .build()
            .map_err(|_| PipelineError::Missing(name))
    };
    let build = |e: gst::glib::BoolError| PipelineError::Build(e.to_string());
    let tee = make("tee")?;
    let to_grey = make("queue")?;
    let to_colour = make("queue")?;
    to_colour.set_property_from_str("leaky", "downstream");
    to_colour.set_property("max-size-buffers", 2u32);
    to_colour.set_property("max-size-bytes", 0u32);
    to_colour.set_property("max-size-time", 0u64);
    let rate = make("videorate")?;
    rate.set_property("drop-only", true);
    let scale = make("videoscale")?;
    let convert = make("videoconvert")?;
    let filter = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "BGR")
                .field("width", format.width as i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .field("framerate", gst::Fraction::new(format.fps as i32, 1))
                .build(),
        )
        .build()
        .map_err(|_| PipelineError::Missing("capsfilter"))?;
    let sink = gst_app::AppSink::builder()
        .max_buffers(1)
        .drop(true)
        .sync(false)
        .build();
    pipeline
        .add_many([
            &tee,
            &to_grey,
            &to_colour,
            &rate,
            &scale,
            &convert,
            &filter,
            sink.upcast_ref(),
        ])
        .map_err(build)?;
    gst::Element::link_many([&tee, &to_grey, grey]).map_err(build)?;
    gst::Element::link_many([
        &tee,
        &to_colour,
        &rate,
        &scale,
        &convert,
        &filter,
        sink.upcast_ref(),
    ])
    .map_err(build)?;
    Ok((tee, sink))
}

/// Builds the evidence tap between the RTP pad and decodebin (see the module's diagram).
fn tap(
    pipeline: &gst::Pipeline,
    rtp: &gst::Pad,
    decode_sink: &gst::Pad,
    codec: Codec,
    recorder: Recorder,
) -> Result<(), PipelineError> {
    let make = |name: &'static str| {
        gst::ElementFactory::make(name)
            .build()
            .map_err(|_| PipelineError::Missing(name))
    };
    let (depay, parse, caps_name) = match codec {
        Codec::H264 => (make("rtph264depay")?, make("h264parse")?, "video/x-h264"),
        Codec::H265 => (make("rtph265depay")?, make("h265parse")?, "video/x-h265"),
    };
    recorder.restart(codec);
    // Parameter sets before every keyframe: any GOP of the pre-roll decodes on its own.
    parse.set_property("config-interval", -1i32);
    let filter = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder(caps_name)
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        )
        .build()
        .map_err(|_| PipelineError::Missing("capsfilter"))?;
    let tee = make("tee")?;
    let to_decode = make("queue")?;
    let to_evidence = make("queue")?;
    to_evidence.set_property_from_str("leaky", "downstream");
    to_evidence.set_property("max-size-buffers", 300u32);
    to_evidence.set_property("max-size-bytes", 0u32);
    to_evidence.set_property("max-size-time", 0u64);
    let sink = gst_app::AppSink::builder()
        .max_buffers(64)
        .drop(true)
        .sync(false)
        .build();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(buffer) = sample.buffer()
                    && let Ok(map) = buffer.map_readable()
                {
                    recorder.push(Unit {
                        at_ms: chrono::Utc::now().timestamp_millis(),
                        pts_ns: buffer.pts().map(|t| t.nseconds()),
                        keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                        data: map.as_slice().into(),
                    });
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let elements = [
        &depay,
        &parse,
        &filter,
        &tee,
        &to_decode,
        &to_evidence,
        sink.upcast_ref(),
    ];
    let build = |e: gst::glib::BoolError| PipelineError::Build(e.to_string());
    pipeline.add_many(elements).map_err(build)?;
    gst::Element::link_many([&depay, &parse, &filter, &tee]).map_err(build)?;
    gst::Element::link_many([&tee, &to_evidence, sink.upcast_ref()]).map_err(build)?;
    tee.link(&to_decode).map_err(build)?;
    let queue_src = to_decode
        .static_pad("src")
        .ok_or_else(|| PipelineError::Build("queue has no src pad".into()))?;
    queue_src
        .link(decode_sink)
        .map_err(|e| PipelineError::Build(e.to_string()))?;
    for element in elements {
        element.sync_state_with_parent().map_err(build)?;
    }
    let depay_sink = depay
        .static_pad("sink")
        .ok_or_else(|| PipelineError::Build("depayloader has no sink pad".into()))?;
    rtp.link(&depay_sink)
        .map_err(|e| PipelineError::Build(e.to_string()))?;
    Ok(())
}

impl Drop for CameraPipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
