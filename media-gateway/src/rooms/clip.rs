//! An evidence clip played into a room as one more participant (`clip:{sha256}`): the clip's
//! bytes → a file → GStreamer (`qtdemux ! h264parse ! rtph264pay`, paced by the pipeline clock)
//! → RTP packets on the participant's [`Feed`], which subscribers receive like anyone's video.
//!
//! **No re-encode**: edge clips are H.264 and every browser decodes H.264 over WebRTC (the live
//! view sends it to the same browsers), so a clip's subscription negotiates H.264 while the
//! participants' own cameras stay VP8 ([`super::peer`]). A clip's audio, if any, is not played
//! (edge clips carry video only). A clip whose video is not H.264 ends at once with an error in
//! the log.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::BytesMut;
use futures::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use rtc::shared::marshal::Unmarshal;

use super::Feed;
use crate::live::peer::H264_PAYLOAD_TYPE;

/// A clip playing; dropping it stops the pipeline and removes the file.
pub struct ClipPlayer {
    pipeline: gst::Pipeline,
    path: PathBuf,
    /// Dropped with the player: ends the bus watch without `on_end` (it was stopped, not ended).
    _stop: tokio::sync::oneshot::Sender<()>,
    /// The room participant it plays as.
    pub participant: String,
    pub sha256: String,
}

impl ClipPlayer {
    /// Plays the MP4 in `bytes` onto `feed`'s video; `on_end` runs once when it ends (its end or a
    /// failure), on the runtime.
    pub fn start(
        bytes: &[u8],
        participant: String,
        sha256: String,
        feed: Arc<Feed>,
        on_end: impl FnOnce() + Send + 'static,
    ) -> Result<ClipPlayer, String> {
        gst::init().map_err(|e| format!("GStreamer: {e}"))?;
        let path = std::env::temp_dir().join(format!("bl-room-clip-{participant}.mp4"));
        std::fs::write(&path, bytes).map_err(|e| format!("writing the clip for playing: {e}"))?;
        let location = path.to_string_lossy().replace('"', "");
        let pipeline = gst::parse::launch(&format!(
            "filesrc location=\"{location}\" ! qtdemux ! h264parse config-interval=-1 ! \
             rtph264pay pt={H264_PAYLOAD_TYPE} mtu=1200 config-interval=-1 aggregate-mode=zero-latency ! \
             appsink name=out sync=true max-buffers=500"
        ))
        .map_err(|e| format!("clip pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "clip pipeline: not a pipeline".to_owned())?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let player = ClipPlayer {
            pipeline,
            path,
            _stop: stop,
            participant,
            sha256,
        };
        let sink = player
            .pipeline
            .by_name("out")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or("clip pipeline: no appsink")?;
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                        let mut buf = BytesMut::from(map.as_slice());
                        if let Ok(packet) = rtc::rtp::Packet::unmarshal(&mut buf) {
                            // Nobody subscribed yet is fine: the packet is dropped.
                            let _ = feed.video.send(packet);
                        }
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let bus = player.pipeline.bus().ok_or("clip pipeline: no bus")?;
        let name = player.participant.clone();
        tokio::spawn(async move {
            let mut messages = bus.stream();
            loop {
                let m = tokio::select! {
                    m = messages.next() => m,
                    _ = &mut stopped => return,
                };
                let Some(m) = m else { break };
                match m.view() {
                    gst::MessageView::Eos(_) => break,
                    gst::MessageView::Error(e) => {
                        tracing::warn!(participant = %name, error = %e.error(), "room clip failed");
                        break;
                    }
                    _ => {}
                }
            }
            on_end();
        });
        player
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("clip pipeline does not start: {e}"))?;
        Ok(player)
    }

    /// Holds the clip where it is (subscribers see the last frame).
    pub fn pause(&self) {
        let _ = self.pipeline.set_state(gst::State::Paused);
    }

    pub fn resume(&self) {
        let _ = self.pipeline.set_state(gst::State::Playing);
    }
}

impl Drop for ClipPlayer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        let _ = std::fs::remove_file(&self.path);
    }
}
