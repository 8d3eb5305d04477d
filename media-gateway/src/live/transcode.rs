//! H.264 for viewers of an H.265 camera whose browser cannot play H.265, made only while one watches.
//!
//! ```text
//! H.265 Relay ──(one viewer's packets)──▶ appsrc → rtph265depay → h265parse → avdec_h265 →
//!     x264enc (zerolatency, ultrafast, constrained baseline) → h264parse → rtph264pay → appsink ──▶ H.264 Relay
//! ```
//!
//! **One transcode per camera stream, however many viewers need it: the first such viewer starts it,
//! and the last one leaving stops it after the linger time (the same rule as an ingest).** The
//! transcode is itself one viewer of the camera's relay, so the camera stays pulled while it runs
//! and recorders and H.265-capable viewers keep getting the camera's own packets untouched.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bl_proto::CameraId;
use bl_proto::stream::Stream;
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use tokio::sync::broadcast::error::RecvError;

use super::relay::{Joined, Relay, SourceState};
use super::{Live, StartError};

/// The GStreamer pipeline of one transcode. Bitrate and keyframe interval suit a console tile or a
/// maximised view (a keyframe every 2 s at 25 fps; a viewer's PLI forces one at once).
const LAUNCH: &str = "appsrc name=src is-live=true do-timestamp=true format=time max-bytes=4000000 \
    caps=application/x-rtp,media=video,encoding-name=H265,clock-rate=90000,payload=96 ! \
    rtph265depay ! h265parse ! avdec_h265 max-threads=1 ! videoconvert ! \
    x264enc tune=zerolatency speed-preset=ultrafast bitrate=2000 key-int-max=50 threads=1 aud=false ! \
    video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! \
    rtph264pay mtu=1200 pt=96 config-interval=-1 aggregate-mode=zero-latency ! \
    appsink name=sink sync=false max-buffers=64 drop=true";

/// The running transcodes, by camera stream.
#[derive(Default)]
pub struct Transcodes {
    running: Mutex<HashMap<(CameraId, Stream), Arc<Relay>>>,
}

impl Transcodes {
    /// The H.264 relay of `camera`/`stream`, if a transcode runs.
    pub fn relay(&self, camera: &CameraId, stream: Stream) -> Option<Arc<Relay>> {
        self.lock().get(&(camera.clone(), stream)).cloned()
    }

    /// Forgets `relay` if it is a running transcode's.
    pub(super) fn forget(&self, relay: &Arc<Relay>) {
        super::remove_relay(&mut self.lock(), relay);
    }

    /// The map itself (locked after `Live::relays` when both are held).
    pub(super) fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(CameraId, Stream), Arc<Relay>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Prometheus text: transcodes running and their viewers.
    pub fn render_metrics(&self, out: &mut String) {
        let running = self.lock();
        let mut rows: Vec<_> = running.values().collect();
        rows.sort_by(|a, b| (&a.camera, a.stream.as_str()).cmp(&(&b.camera, b.stream.as_str())));
        let _ = writeln!(
            out,
            "# TYPE bl_gateway_live_transcodes gauge\nbl_gateway_live_transcodes {}",
            rows.len()
        );
        let _ = writeln!(out, "# TYPE bl_gateway_live_transcode_viewers gauge");
        for r in rows {
            let _ = writeln!(
                out,
                "bl_gateway_live_transcode_viewers{{camera=\"{}\",stream=\"{}\"}} {}",
                r.camera,
                r.stream.as_str(),
                r.viewers()
            );
        }
    }
}

impl Live {
    /// Moves a viewer who joined the H.265 relay `source` (with `joined`) to its H.264 transcode,
    /// starting the transcode if none runs, and waits until it sends video.
    pub(super) async fn join_transcoded(
        self: &Arc<Self>,
        source: &Arc<Relay>,
        joined: Joined,
    ) -> Result<(Arc<Relay>, Joined), StartError> {
        let (relay, tj) = {
            let mut running = self.transcodes.lock();
            let relay = running
                .entry((source.camera.clone(), source.stream))
                .or_insert_with(|| {
                    let relay = Arc::new(Relay::new(
                        source.camera.clone(),
                        source.stream,
                        self.settings.gop_cache_bytes,
                    ));
                    tracing::info!(camera_id = %source.camera, stream = source.stream.as_str(), "starting the H.264 transcode");
                    // The transcode watches the camera as one more viewer of its relay.
                    let input = source.join();
                    tokio::spawn(supervise(self.clone(), source.clone(), input, relay.clone()));
                    relay
                })
                .clone();
            let tj = relay.join();
            (relay, tj)
        };
        // This viewer is served by the transcode now, not by the camera's relay directly.
        drop(joined);
        self.leave(source);
        let mut state = relay.watch_state();
        let ready = tokio::time::timeout(self.settings.start_timeout, async {
            loop {
                match state.borrow_and_update().clone() {
                    SourceState::Live => return Ok(()),
                    SourceState::Offline { reason, .. } => return Err(StartError::Offline(reason)),
                    SourceState::UnsupportedCodec { codec } => {
                        return Err(StartError::UnsupportedCodec(codec));
                    }
                    SourceState::Connecting => {}
                }
                if state.changed().await.is_err() {
                    return Err(StartError::Offline("the transcode ended".into()));
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(StartError::Offline(
                "the H.264 transcode did not start in time".into(),
            ))
        });
        match ready {
            Ok(()) => Ok((relay, tj)),
            Err(e) => {
                self.leave(&relay);
                Err(e)
            }
        }
    }
}

/// Runs the transcode of `source` into `relay` until `relay.stop` (its linger ended) or the
/// camera's relay stops; then leaves the camera's relay, which lingers in turn.
async fn supervise(live: Arc<Live>, source: Arc<Relay>, input: Joined, relay: Arc<Relay>) {
    match build(&relay) {
        Ok((pipeline, appsrc)) => {
            feed(&source, input, &relay, &appsrc).await;
            let _ = appsrc.end_of_stream();
            let _ = tokio::task::spawn_blocking(move || pipeline.set_state(gst::State::Null)).await;
        }
        Err(e) => {
            tracing::error!(camera_id = %relay.camera, err = %e, "cannot start the H.264 transcode");
            relay.set_state(SourceState::Offline {
                reason: format!("the H.264 transcode failed: {e}"),
                retry_in_secs: 1,
            });
            relay.stop.cancelled().await;
        }
    }
    tracing::info!(camera_id = %relay.camera, stream = relay.stream.as_str(), "H.264 transcode stopped");
    live.transcodes.forget(&relay);
    live.leave(&source);
}

/// Hands the camera relay's packets to the transcode's `appsrc`, from the cached keyframe on, until
/// either relay stops. A lag skips to the next keyframe, as for a slow viewer. The camera's audio
/// (already Opus) passes to the transcode's viewers as it is.
async fn feed(source: &Relay, input: Joined, relay: &Relay, appsrc: &gst_app::AppSrc) {
    let Joined {
        backlog,
        mut rx,
        mut audio,
        ..
    } = input;
    if source.has_audio() {
        relay.set_has_audio();
    }
    let push = |bytes: &[u8]| {
        let _ = appsrc.push_buffer(gst::Buffer::from_slice(bytes.to_vec()));
    };
    for p in &backlog {
        push(p);
    }
    let mut skipping = backlog.is_empty();
    let mut quiet = tokio::time::interval(Duration::from_secs(10));
    quiet.reset();
    let mut last_out = relay.packets_in.load(Relaxed);
    loop {
        tokio::select! {
            () = relay.stop.cancelled() => return,
            Ok(packet) = audio.recv() => relay.push_audio(packet),
            () = source.stop.cancelled() => {
                relay.set_state(SourceState::Offline { reason: "the camera's ingest stopped".into(), retry_in_secs: 1 });
                relay.stop.cancelled().await;
                return;
            }
            _ = quiet.tick() => {
                // A decoder or encoder that stalls leaves the viewers a clear state.
                let now = relay.packets_in.load(Relaxed);
                if now == last_out && source.state() == SourceState::Live {
                    relay.set_state(SourceState::Offline { reason: "the H.264 transcode produced no video for 10 s".into(), retry_in_secs: 1 });
                }
                last_out = now;
            }
            p = rx.recv() => match p {
                Ok((bytes, key)) => {
                    if skipping && !key {
                        continue;
                    }
                    skipping = false;
                    push(&bytes);
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(camera_id = %relay.camera, skipped = n, "the transcode fell behind; resuming at the next keyframe");
                    skipping = true;
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}

fn build(relay: &Arc<Relay>) -> Result<(gst::Pipeline, gst_app::AppSrc), String> {
    gst::init().map_err(|e| format!("gstreamer init: {e}"))?;
    let pipeline = gst::parse::launch(LAUNCH)
        .map_err(|e| format!("{e} (install gstreamer1.0-libav and gstreamer1.0-plugins-ugly)"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the transcode is not a pipeline".to_owned())?;
    let appsrc = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or("the transcode has no appsrc")?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or("the transcode has no appsink")?;
    sink.set_callbacks(super::ingest::relay_sink(
        relay.clone(),
        pipeline.upcast_ref::<gst::Element>().downgrade(),
        || true,
    ));
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot start the transcode: {e}"))?;
    Ok((pipeline, appsrc))
}
