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
        if VideoCodec::from_encoding_name(encoding).is_none() {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(encoding.to_ascii_uppercase());
            return;
        }
        let (Some(pipeline), Some(sink)) = (pipeline_weak.upgrade(), sink_weak.upgrade()) else {
            return;
        };
        // One video stream is relayed; a camera offering a second one keeps the first.
        if sink.static_pad("sink").is_some_and(|p| p.is_linked()) {
            return;
        }
        if let Err(e) = link_video(pipeline.upcast_ref(), pad, s, &sink, &relay2) {
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

/// Links `pad`, a camera's RTP video described by `rtp` (its caps), to `sink` in `bin`, and records
/// the codec (and H.264's SDP parameter sets) in `relay`: H.264 passes through as it comes; H.265
/// goes through depayloader, parser (parameter sets before every keyframe) and payloader (MTU
/// 1200) first. Nothing is decoded. The pull ingest and the push server share it.
pub(super) fn link_video(
    bin: &gst::Bin,
    pad: &gst::Pad,
    rtp: &gst::StructureRef,
    sink: &gst_app::AppSink,
    relay: &Relay,
) -> Result<VideoCodec, String> {
    let encoding = rtp.get::<&str>("encoding-name").unwrap_or("?");
    let codec = VideoCodec::from_encoding_name(encoding)
        .ok_or_else(|| format!("the gateway cannot relay {encoding} video"))?;
    relay.set_codec(codec);
    match codec {
        VideoCodec::H264 => {
            if let Ok(sprop) = rtp.get::<&str>("sprop-parameter-sets") {
                relay.set_parameter_sets(sprop);
            }
            let sinkpad = sink
                .static_pad("sink")
                .ok_or("the appsink has no sink pad")?;
            pad.link(&sinkpad).map_err(|e| format!("{e:?}"))?;
        }
        VideoCodec::H265 => link_relay_chain(bin, pad, sink.upcast_ref(), codec)?,
    }
    Ok(codec)
}

fn link_relay_chain(
    bin: &gst::Bin,
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
    bin.add_many([&depay, &parse, &pay])
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

/// Links a pushed stream's RTP — the src pad of `entry`, the element the push server's RECORD
/// media receives into — to `sink` when its caps (from the edge's `ANNOUNCE`) arrive: see
/// [`link_video`].
pub(super) fn link_video_on_caps(
    entry: &gst::Element,
    sink: &gst_app::AppSink,
    relay: &Arc<Relay>,
) {
    let Some(src) = entry.static_pad("src") else {
        tracing::error!(camera_id = %relay.camera, "the push media's entry has no src pad");
        return;
    };
    let bin = entry.parent().and_then(|p| p.downcast::<gst::Bin>().ok());
    let (sink, relay) = (sink.downgrade(), Arc::downgrade(relay));
    src.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
        let Some(gst::PadProbeData::Event(event)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let gst::EventView::Caps(caps) = event.view() else {
            return gst::PadProbeReturn::Ok;
        };
        let (Some(bin), Some(sink), Some(relay)) = (&bin, sink.upgrade(), relay.upgrade()) else {
            return gst::PadProbeReturn::Remove;
        };
        let Some(rtp) = caps.caps().structure(0) else {
            return gst::PadProbeReturn::Ok;
        };
        // Linked before the caps event goes on, so it reaches the new peer.
        if let Err(e) = link_video(bin, pad, rtp, &sink, &relay) {
            tracing::warn!(camera_id = %relay.camera, err = %e, "cannot relay the edge's video");
        }
        gst::PadProbeReturn::Remove
    });
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
