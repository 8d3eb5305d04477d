//! The audio side of a talk: one GStreamer pipeline from the operator's voice (pulled from the
//! gateway) or a stored message (a file) to where it is heard.
//!
//! ```text
//! rtspsrc (tcp, {pullUrl}/{token}) ─▶ rtpopusdepay ─▶ opusdec ─┐
//! filesrc (WAV, Ogg) ─▶ decodebin ─────────────────────────────┤
//!      ┌───────────────────────────────────────────────────────┘
//!      └▶ audioconvert ─▶ audioresample ─┬▶ 8 kHz mono ─▶ mulawenc|alawenc ─▶ rtppcmupay|rtppcmapay ─▶ appsink ─▶ camera backchannel
//!                                        └▶ the box's speaker (`[talk] speaker`, e.g. autoaudiosink)
//! ```
//! A pulled stream is passed on as it arrives; a file is paced by the pipeline clock (appsink
//! `sync=true`) so the camera gets it in real time.

use super::TalkError;
use super::backchannel::Backchannel;
use bl_service::secret::Secret;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Jitter buffer of the pull from the gateway, ms: small, the voice is live.
const PULL_LATENCY_MS: u32 = 60;

/// Where the sound comes from.
#[derive(Debug, Clone)]
pub enum Audio {
    /// The operator's voice: `{pullUrl}/{token}` (the token makes it a secret).
    Pull(Secret),
    /// A stored message.
    File(PathBuf),
}

/// Where the sound goes.
#[derive(Clone)]
pub enum Sink {
    /// The camera's speaker.
    Backchannel(Arc<Backchannel>),
    /// The box's speaker: a GStreamer sink description.
    Speaker(String),
}

/// Something the player reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayerEvent {
    /// It failed; the reason names the side.
    Failed(String),
    /// The source ended (a message was played to its end).
    Ended,
}

/// A running pipeline. Dropping it stops it.
pub struct Player {
    pipeline: gst::Pipeline,
    first_audio: Arc<Mutex<Option<Instant>>>,
    from_gateway: bool,
}

impl Player {
    /// Builds and starts the pipeline from `audio` to `sink`.
    pub fn start(audio: &Audio, sink: &Sink) -> Result<Player, TalkError> {
        super::init()?;
        let head = match audio {
            Audio::Pull(_) => format!(
                "rtspsrc name=src protocols=tcp latency={PULL_LATENCY_MS} ! rtpopusdepay ! opusdec plc=true"
            ),
            Audio::File(_) => "filesrc name=src ! decodebin".to_string(),
        };
        let tail = match sink {
            Sink::Backchannel(camera) => {
                let (encoder, payloader) = camera.format.codec.elements();
                let sync = matches!(audio, Audio::File(_));
                let (seq, ts) = match camera.continuation() {
                    Some((seq, ts)) => (i32::from(seq), ts),
                    None => (-1, u32::MAX), // random, as GStreamer spells it
                };
                format!(
                    "audio/x-raw,rate=8000,channels=1 ! {encoder} ! {payloader} pt={} ssrc={} \
                     seqnum-offset={seq} timestamp-offset={ts} min-ptime=20000000 max-ptime=20000000 ! \
                     appsink name=out sync={sync} max-buffers=100",
                    camera.format.payload, camera.ssrc
                )
            }
            Sink::Speaker(description) => description.clone(),
        };
        let launch = format!("{head} ! audioconvert ! audioresample ! {tail}");
        let pipeline = gst::parse::launch(&launch)
            .map_err(|e| TalkError::Internal(format!("cannot build the audio pipeline: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| TalkError::Internal("the audio pipeline is not a pipeline".into()))?;
        let src = pipeline.by_name("src").expect("named in the launch line");
        match audio {
            Audio::Pull(url) => src.set_property("location", url.expose()),
            Audio::File(path) => src.set_property("location", path.to_string_lossy().as_ref()),
        }

        let first_audio: Arc<Mutex<Option<Instant>>> = Arc::default();
        match (sink, pipeline.by_name("out")) {
            (Sink::Backchannel(camera), Some(out)) => {
                let out = out
                    .downcast::<gst_app::AppSink>()
                    .map_err(|_| TalkError::Internal("out is not an appsink".into()))?;
                let (camera, first) = (camera.clone(), first_audio.clone());
                out.set_callbacks(
                    gst_app::AppSinkCallbacks::builder()
                        .new_sample(move |out| {
                            let sample = out.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                            camera.push(&sample)?;
                            first
                                .lock()
                                .expect("first audio")
                                .get_or_insert_with(Instant::now);
                            Ok(gst::FlowSuccess::Ok)
                        })
                        .build(),
                );
            }
            _ => {
                // The speaker: the first buffer that reaches the sink's pad counts.
                if let Some(pad) = pipeline
                    .iterate_sinks()
                    .into_iter()
                    .flatten()
                    .next()
                    .and_then(|s| s.static_pad("sink"))
                {
                    let first = first_audio.clone();
                    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                        first
                            .lock()
                            .expect("first audio")
                            .get_or_insert_with(Instant::now);
                        gst::PadProbeReturn::Remove
                    });
                }
            }
        }
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| TalkError::Internal("cannot start the audio pipeline".into()))?;
        Ok(Player {
            pipeline,
            first_audio,
            from_gateway: matches!(audio, Audio::Pull(_)),
        })
    }

    /// When the first audio reached the output, if it has.
    pub fn first_audio(&self) -> Option<Instant> {
        *self.first_audio.lock().expect("first audio")
    }

    /// A failure or the end since the last call, if any.
    pub fn poll(&self) -> Option<PlayerEvent> {
        let bus = self.pipeline.bus()?;
        let message = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos])?;
        Some(match message.view() {
            gst::MessageView::Error(e) if self.from_gateway => PlayerEvent::Failed(format!(
                "cannot pull the operator's audio from the gateway: {}",
                e.error()
            )),
            gst::MessageView::Error(e) => {
                PlayerEvent::Failed(format!("cannot play the audio: {}", e.error()))
            }
            _ => PlayerEvent::Ended,
        })
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
