//! The ingest of one camera stream: a GStreamer pipeline `rtspsrc` (TCP) → `appsink`, whose RTP
//! packets go to the [`Relay`] as the camera sent them (H.264 pass-through: nothing waits for a whole
//! frame; the SDP's parameter sets go to the relay for keyframes that lack them in band). H.265 goes
//! through `rtph265depay` → `h265parse` (VPS/SPS/PPS before every keyframe) → `rtph265pay` (MTU 1200)
//! first. Nothing is decoded. Supervised: a failure is retried with backoff until the relay is stopped; a camera that
//! sends another codec is reported and not retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;

use super::codec::VideoCodec;
use super::relay::{Relay, SourceState};
use bl_service::secret::redact_url as redact;

/// Retry timing of a failed ingest.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First wait after a failure.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The wait after `failures` failures in a row (1, 2, 4 … times `initial`, capped at `max`).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// How one pipeline run ended.
enum Ended {
    /// Asked to stop.
    Stopped,
    /// The camera sends a codec other than H.264 and H.265.
    Codec(String),
    /// The source failed or ended; retry.
    Failed(String),
}

/// Where to pull from.
#[derive(Clone)]
pub struct PullTarget {
    /// RTSP URL (may carry credentials; log only through `redact_url`).
    pub url: String,
    /// RTSP login.
    pub username: Option<String>,
    /// RTSP password.
    pub password: Option<String>,
}

/// Runs the ingest of `relay` from `target` until `relay.stop` is cancelled.
pub async fn supervise(relay: Arc<Relay>, target: PullTarget, backoff: Backoff) {
    let mut failures = 0u32;
    loop {
        relay.set_state(SourceState::Connecting);
        relay.starts.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let r2 = relay.clone();
        let t2 = target.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let mut run = tokio::task::spawn_blocking(move || run_pipeline(&r2, &t2, &stop2));
        let ended = tokio::select! {
            r = &mut run => r.unwrap_or_else(|e| Ended::Failed(format!("ingest thread panicked: {e}"))),
            () = relay.stop.cancelled() => {
                stop.store(true, Ordering::Relaxed);
                let _ = run.await;
                Ended::Stopped
            }
        };
        match ended {
            Ended::Stopped => {
                tracing::info!(camera_id = %relay.camera, "ingest stopped");
                return;
            }
            Ended::Codec(codec) => {
                tracing::warn!(camera_id = %relay.camera, codec = %codec, "camera codec is not for browsers");
                relay.set_state(SourceState::UnsupportedCodec { codec });
                relay.stop.cancelled().await;
                return;
            }
            Ended::Failed(reason) => {
                if started.elapsed() > Duration::from_secs(30) {
                    failures = 0;
                }
                failures += 1;
                let wait = backoff.delay(failures);
                tracing::warn!(camera_id = %relay.camera, url = %redact(&target.url), err = %reason,
                    retry_in_ms = wait.as_millis() as u64, "ingest failed");
                relay.set_state(SourceState::Offline {
                    reason,
                    retry_in_secs: wait.as_secs().max(1),
                });
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = relay.retry_now.notified() => {}
                    () = relay.stop.cancelled() => return,
                }
            }
        }
    }
}

fn run_pipeline(relay: &Arc<Relay>, target: &PullTarget, stop: &AtomicBool) -> Ended {
    match build(relay, target) {
        Ok((pipeline, codec_seen)) => {
            let ended = watch_bus(relay, &pipeline, stop, &codec_seen);
            let _ = pipeline.set_state(gst::State::Null);
            ended
        }
        Err(e) => Ended::Failed(e),
    }
}

type CodecSlot = Arc<std::sync::Mutex<Option<String>>>;

fn build(relay: &Arc<Relay>, target: &PullTarget) -> Result<(gst::Pipeline, CodecSlot), String> {
    gst::init().map_err(|e| format!("gstreamer init: {e}"))?;
    let make = |name: &str| {
        gst::ElementFactory::make(name).build().map_err(|_| {
            format!("GStreamer element {name} is missing (install gstreamer1.0-plugins-good/-bad)")
        })
    };
    let src = make("rtspsrc")?;
    src.set_property("location", &target.url);
    src.set_property_from_str("protocols", "tcp");
    src.set_property("latency", 0u32);
    src.set_property("tcp-timeout", 5_000_000u64);
    if let Some(u) = &target.username {
        src.set_property("user-id", u);
    }
    if let Some(p) = &target.password {
        src.set_property("user-pw", p);
    }
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(64)
        .drop(true)
        .build();
    let pipeline = gst::Pipeline::new();
    pipeline
        .add_many([&src, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;

    // The camera's codec is known only from its SDP: the chain is built when its video pad comes.
    let codec_seen: CodecSlot = Arc::default();
    let slot = codec_seen.clone();
    let pipeline_weak = pipeline.downgrade();
    let sink_weak = sink.downgrade();
    let relay2 = relay.clone();
    let audio_relay = relay.clone();
    let offered_relay = relay.clone();
    src.connect("select-stream", false, move |args| {
        if let Some(caps) = args.get(2).and_then(|v| v.get::<gst::Caps>().ok())
            && let Some(s) = caps.structure(0)
        {
            super::audio::note_offered_stream(s, &offered_relay);
        }
        Some(true.to_value())
    });
    src.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let Some(s) = caps.structure(0) else { return };
        if s.get::<&str>("media").ok() == Some("audio") {
            if let Some(pipeline) = pipeline_weak.upgrade() {
                super::audio::link_camera_audio(&pipeline, pad, s, &audio_relay);
            }
            return;
        }
        if s.get::<&str>("media").ok() != Some("video") {
            return;
        }
        let encoding = s.get::<&str>("encoding-name").unwrap_or("?");
        let Some(codec) = VideoCodec::from_encoding_name(encoding) else {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(encoding.to_ascii_uppercase());
            return;
        };
        let (Some(pipeline), Some(sink)) = (pipeline_weak.upgrade(), sink_weak.upgrade()) else {
            return;
        };
        // One video stream is relayed; a camera offering a second one keeps the first.
        if sink.static_pad("sink").is_some_and(|p| p.is_linked()) {
            return;
        }
        relay2.set_codec(codec);
        let linked = match codec {
            VideoCodec::H264 => {
                if let Ok(sprop) = s.get::<&str>("sprop-parameter-sets") {
                    relay2.set_parameter_sets(sprop);
                }
                link_pass_through(pad, &sink)
            }
            VideoCodec::H265 => link_relay_chain(&pipeline, pad, sink.upcast_ref(), codec),
        };
        if let Err(e) = linked {
            tracing::error!(err = %e, "cannot link the camera's video");
        }
    });

    sink.set_callbacks(relay_sink(
        relay.clone(),
        pipeline.upcast_ref::<gst::Element>().downgrade(),
        || true,
    ));
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot start the pipeline: {e}"))?;
    Ok((pipeline, codec_seen))
}

/// Links `pad` (the camera's RTP) straight to `sink`.
fn link_pass_through(pad: &gst::Pad, sink: &gst_app::AppSink) -> Result<(), String> {
    let sinkpad = sink
        .static_pad("sink")
        .ok_or("the appsink has no sink pad")?;
    pad.link(&sinkpad).map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// Links `pad` (the camera's RTP) through `codec`'s depayloader, parser (parameter sets before every
/// keyframe) and payloader (MTU 1200) to `sink`, in the running `pipeline`: nothing is decoded.
fn link_relay_chain(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    sink: &gst::Element,
    codec: VideoCodec,
) -> Result<(), String> {
    let [depay, parse, pay] = codec.elements().map(|name| {
        gst::ElementFactory::make(name).build().map_err(|_| {
            format!("GStreamer element {name} is missing (install gstreamer1.0-plugins-good/-bad)")
        })
    });
    let (depay, parse, pay) = (depay?, parse?, pay?);
    parse.set_property("config-interval", -1i32);
    pay.set_property("config-interval", -1i32);
    pay.set_property("mtu", 1200u32);
    pay.set_property("pt", 96u32);
    pay.set_property_from_str("aggregate-mode", "zero-latency");
    pipeline
        .add_many([&depay, &parse, &pay])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&depay, &parse, &pay, sink]).map_err(|e| e.to_string())?;
    for e in [&pay, &parse, &depay] {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let sinkpad = depay
        .static_pad("sink")
        .ok_or("the depayloader has no sink pad")?;
    pad.link(&sinkpad).map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// Links the video pad `parsebin` (in a pushed stream's media) exposes — parsed H.264 or H.265 —
/// through the codec's payloader to `sink`, and records the codec in `relay`.
pub(super) fn link_payloader_on_pad(
    parsebin: &gst::Element,
    sink: &gst_app::AppSink,
    relay: &Arc<Relay>,
) {
    let sink = sink.downgrade();
    let relay = Arc::downgrade(relay);
    parsebin.connect_pad_added(move |parsebin, pad| {
        let (Some(sink), Some(relay)) = (sink.upgrade(), relay.upgrade()) else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let codec = match caps.structure(0).map(|s| s.name().as_str()) {
            Some("video/x-h264") => VideoCodec::H264,
            Some("video/x-h265") => VideoCodec::H265,
            other => {
                tracing::warn!(camera_id = %relay.camera, caps = ?other, "the edge pushes a stream the gateway cannot relay");
                return;
            }
        };
        if let Err(e) = link_payloader(parsebin, pad, sink.upcast_ref(), codec) {
            tracing::error!(camera_id = %relay.camera, err = %e, "cannot link the edge's video");
            return;
        }
        relay.set_codec(codec);
    });
}

/// Links `pad` (parsed video of `codec`) through the codec's payloader to `sink`, beside `sibling`
/// in its bin.
fn link_payloader(
    sibling: &gst::Element,
    pad: &gst::Pad,
    sink: &gst::Element,
    codec: VideoCodec,
) -> Result<(), String> {
    let bin = sibling
        .parent()
        .and_then(|p| p.downcast::<gst::Bin>().ok())
        .ok_or("the parser is not in a bin")?;
    let name = codec.elements()[2];
    let pay = gst::ElementFactory::make(name)
        .build()
        .map_err(|_| format!("GStreamer element {name} is missing"))?;
    pay.set_property("config-interval", -1i32);
    pay.set_property("mtu", 1200u32);
    pay.set_property("pt", 96u32);
    pay.set_property_from_str("aggregate-mode", "zero-latency");
    bin.add(&pay).map_err(|e| e.to_string())?;
    pay.link(sink).map_err(|e| e.to_string())?;
    pay.sync_state_with_parent().map_err(|e| e.to_string())?;
    let sinkpad = pay
        .static_pad("sink")
        .ok_or("the payloader has no sink pad")?;
    pad.link(&sinkpad).map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// The appsink callbacks that hand each RTP packet to `relay` while `accept()` says so, and pass a
/// viewer's keyframe request upstream through `pipeline` (shared by the pull ingest here and the
/// push ingest in [`super::push`]).
pub(super) fn relay_sink(
    relay: Arc<Relay>,
    pipeline: gst::glib::WeakRef<gst::Element>,
    accept: impl Fn() -> bool + Send + Sync + 'static,
) -> gst_app::AppSinkCallbacks {
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            if !accept() {
                return Ok(gst::FlowSuccess::Ok);
            }
            if let Some(buffer) = sample.buffer()
                && let Ok(map) = buffer.map_readable()
            {
                relay.push(map.as_slice());
            }
            if relay.take_keyframe_request()
                && let Some(p) = pipeline.upgrade()
            {
                // Best effort: a camera behind RTSP may ignore it; the next natural keyframe
                // then serves the viewer.
                p.send_event(gst_video_force_key_unit());
            }
            Ok(gst::FlowSuccess::Ok)
        })
        .build()
}

/// An upstream force-key-unit event (the GstVideo event, built by hand to avoid another crate).
fn gst_video_force_key_unit() -> gst::Event {
    let s = gst::Structure::builder("GstForceKeyUnit")
        .field("all-headers", true)
        .field("count", 0u32)
        .build();
    gst::event::CustomUpstream::new(s)
}

fn watch_bus(
    relay: &Relay,
    pipeline: &gst::Pipeline,
    stop: &AtomicBool,
    codec: &CodecSlot,
) -> Ended {
    let Some(bus) = pipeline.bus() else {
        return Ended::Failed("pipeline has no bus".into());
    };
    let mut last_packets = relay.packets_in.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ended::Stopped;
        }
        if let Some(c) = codec.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Ended::Codec(c);
        }
        // A source that stops sending without closing is dead after 10 s of silence.
        let now_packets = relay.packets_in.load(Ordering::Relaxed);
        if now_packets != last_packets {
            last_packets = now_packets;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > Duration::from_secs(10) {
            return Ended::Failed("no video from the camera for 10 s".into());
        }
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        ) else {
            continue;
        };
        return match msg.view() {
            gst::MessageView::Error(e) => {
                if let Some(c) = codec.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    return Ended::Codec(c);
                }
                Ended::Failed(e.error().to_string())
            }
            _ => Ended::Failed("the camera ended the stream".into()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_wait_doubles_up_to_the_maximum() {
        let b = Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(4),
        };
        let waits: Vec<u128> = (1..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 4000, 4000]);
    }
}
