//! One live push: a camera stream pulled over RTSP/TCP and pushed unchanged to the gateway's RTSP
//! RECORD server (DESIGN §3.3), never decoded or re-encoded:
//!
//! ```text
//! rtspsrc (tcp) ─▶ rtph26Xdepay ─▶ h26Xparse (parameter sets at every keyframe) ─▶ rtspclientsink (tcp)
//! ```
//! Blocking (GStreamer's bus is polled): it runs on a thread of its own. Both URLs are secrets (the
//! camera's holds its credentials, the gateway's its token); GStreamer's words are scrubbed of them.

use crate::evidence::Codec;
use bl_service::secret::{Secret, redact_url};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// After the first buffer reached the gateway's sink, this long without an error means the
/// gateway took the push (a refusal — 401, 404 — comes within a round trip).
const SETTLE: Duration = Duration::from_secs(2);

/// Why a push did not start or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error(
        "GStreamer element {0} is missing; install the GStreamer plugins (deploy/dev/install-deps.sh)"
    )]
    Missing(String),
    #[error("cannot build the push pipeline: {0}")]
    Build(String),
    /// The camera side failed (unreachable, refused, another codec than tried).
    #[error("camera: {0}")]
    Camera(String),
    /// The gateway side failed (refused the token, not waiting for this stream, unreachable).
    #[error("gateway: {0}")]
    Gateway(String),
    #[error("no video reached the gateway within {0:?}")]
    NoVideo(Duration),
    #[error("the push ended")]
    Ended,
}

impl PushError {
    /// Whether the camera's stream did not fit the depayloader tried (try the other codec).
    pub fn is_codec_mismatch(&self) -> bool {
        matches!(self, PushError::Camera(m) if m.contains("not-linked") || m.contains("not-negotiated"))
    }
}

/// Where a push goes: `{pushUrl}/{token}`, and how logs may show it (without the token).
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Secret,
    pub shown: String,
}

impl Target {
    pub fn new(push_url: &str, token: &str) -> Target {
        let base = push_url.trim_end_matches('/');
        Target {
            url: Secret::new(format!("{base}/{token}")),
            shown: format!("{}/[token]", redact_url(base)),
        }
    }
}

/// A running push; dropping it stops it.
pub struct Push {
    pipeline: gst::Pipeline,
    /// Buffers handed to the gateway's sink so far.
    sent: Arc<AtomicU64>,
    /// The secret texts GStreamer's messages must not repeat.
    scrub: [(String, String); 2],
}

impl Push {
    /// Starts pulling `camera` as `codec` and pushing it to `gateway`.
    pub fn start(camera: &Secret, gateway: &Target, codec: Codec) -> Result<Push, PushError> {
        gst::init().map_err(|e| PushError::Build(e.to_string()))?;
        let (depay, parse) = match codec {
            Codec::H264 => ("rtph264depay", "h264parse"),
            Codec::H265 => ("rtph265depay", "h265parse"),
        };
        for name in ["rtspsrc", depay, parse, "rtspclientsink"] {
            if gst::ElementFactory::find(name).is_none() {
                return Err(PushError::Missing(name.into()));
            }
        }
        // No URL in the description: it is set as a property, so no quoting can break it.
        let description = format!(
            "rtspsrc name=camera protocols=tcp latency=200 ! {depay} ! \
             {parse} name=parse config-interval=-1 ! \
             rtspclientsink name=gateway protocols=tcp latency=0"
        );
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| PushError::Build(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| PushError::Build("not a pipeline".into()))?;
        let by_name = |name: &str| {
            pipeline
                .by_name(name)
                .ok_or_else(|| PushError::Build(format!("no element {name}")))
        };
        by_name("camera")?.set_property("location", camera.expose());
        by_name("gateway")?.set_property("location", gateway.url.expose());
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        by_name("parse")?
            .static_pad("src")
            .ok_or_else(|| PushError::Build("the parser has no src pad".into()))?
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counter.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        let push = Push {
            pipeline,
            sent,
            scrub: [
                (camera.expose().to_owned(), redact_url(camera.expose())),
                (gateway.url.expose().to_owned(), gateway.shown.clone()),
            ],
        };
        push.pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| PushError::Build(e.to_string()))?;
        Ok(push)
    }

    /// Waits until video flows to the gateway and it kept the session for [`SETTLE`]; gives up
    /// after `within`, or when `stop()` says so (`Ok(false)`).
    pub fn established(
        &self,
        within: Duration,
        stop: impl Fn() -> bool,
    ) -> Result<bool, PushError> {
        let started = Instant::now();
        let mut flowing_since: Option<Instant> = None;
        loop {
            if stop() {
                return Ok(false);
            }
            if let Some(e) = self.failure(Duration::from_millis(100)) {
                return Err(e);
            }
            if self.sent.load(Ordering::Relaxed) > 0 {
                let since = *flowing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= SETTLE {
                    return Ok(true);
                }
            }
            if started.elapsed() >= within {
                return Err(PushError::NoVideo(within));
            }
        }
    }

    /// Buffers sent to the gateway so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits up to `wait` for the push to fail; `None` while it runs.
    pub fn failure(&self, wait: Duration) -> Option<PushError> {
        let bus = self.pipeline.bus()?;
        let message = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(wait.as_millis() as u64),
            // rtspclientsink reports a session the server closed as a warning.
            &[
                gst::MessageType::Error,
                gst::MessageType::Eos,
                gst::MessageType::Warning,
            ],
        )?;
        let (text, debug) = match message.view() {
            gst::MessageView::Error(e) => (e.error().to_string(), e.debug()),
            gst::MessageView::Warning(w) => (w.error().to_string(), w.debug()),
            _ => return Some(PushError::Ended),
        };
        // The reason ("not-linked", "Unauthorized") is often only in the debug text.
        let reason = match debug {
            Some(d) => format!("{text} ({})", d.as_str().lines().last().unwrap_or_default()),
            None => text,
        };
        let reason = self.scrubbed(&reason);
        let from_camera = message
            .src()
            .is_some_and(|s| s.path_string().contains("/camera"));
        Some(if from_camera {
            PushError::Camera(reason)
        } else {
            PushError::Gateway(reason)
        })
    }

    fn scrubbed(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (secret, shown) in &self.scrub {
            text = text.replace(secret.as_str(), shown);
        }
        text
    }
}

impl Drop for Push {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
