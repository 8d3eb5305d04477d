//! The ingest of one camera stream: a GStreamer pipeline `rtspsrc` (TCP) → `rtph264depay` →
//! `h264parse` (SPS/PPS before every IDR) → `rtph264pay` (MTU 1200) → `appsink`, whose RTP packets go
//! to the [`Relay`]. H.264 is never decoded. Supervised: a failure is retried with backoff until the
//! relay is stopped; a camera that sends H.265 is reported and not retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;

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
    /// The camera sends a codec other than H.264.
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
    let depay = make("rtph264depay")?;
    let parse = make("h264parse")?;
    parse.set_property("config-interval", -1i32);
    let pay = make("rtph264pay")?;
    pay.set_property("config-interval", -1i32);
    pay.set_property("mtu", 1200u32);
    pay.set_property("pt", 96u32);
    pay.set_property_from_str("aggregate-mode", "zero-latency");
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(64)
        .drop(true)
        .build();
    let pipeline = gst::Pipeline::new();
    pipeline
        .add_many([&src, &depay, &parse, &pay, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&depay, &parse, &pay, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;

    let codec_seen: CodecSlot = Arc::default();
    let slot = codec_seen.clone();
    let depay_weak = depay.downgrade();
    let pipeline_weak = pipeline.downgrade();
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
        let encoding = s
            .get::<&str>("encoding-name")
            .unwrap_or("?")
            .to_ascii_uppercase();
        if encoding != "H264" {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(encoding);
            return;
        }
        if let Some(depay) = depay_weak.upgrade()
            && let Some(sinkpad) = depay.static_pad("sink")
            && !sinkpad.is_linked()
            && let Err(e) = pad.link(&sinkpad)
        {
            tracing::error!(err = ?e, "cannot link the camera's video");
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
                relay.push(Bytes::copy_from_slice(map.as_slice()));
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
