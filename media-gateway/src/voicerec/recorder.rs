//! One voice recording as a GStreamer pipeline: each direction's Opus RTP is decoded to 16 kHz
//! mono and handed to the [`Mixer`]; a ticker paces the mixer's stereo out into `opusenc ! webmmux`
//! (Opus in WebM, which Chromium's `<audio>` plays and seeks).
//!
//! ```text
//! appsrc center   ! rtpopusdepay ! opusdec ! … 16 kHz mono ! appsink ─┐
//! appsrc premises ! rtpopusdepay ! opusdec ! … 16 kHz mono ! appsink ─┤ Mixer (left, right)
//! appsrc stereo ◄──────────────────────────────────────────────────────┘
//!        ! audioconvert ! opusenc ! webmmux ! filesink (unbuffered: a crash keeps what was mixed)
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use tokio_util::sync::CancellationToken;

use super::mix::{Direction, Mixer, RATE};
use crate::live::talk_peer::OPUS_PAYLOAD_TYPE;

/// How far behind wall time the mixer writes: audio arriving later than this loses its place.
const LAG: Duration = Duration::from_millis(400);
/// How often the mixer writes.
const TICK: Duration = Duration::from_millis(100);
/// How long the end of a recording may take to flush.
const FINISH_TIMEOUT: Duration = Duration::from_secs(15);

fn rtp_caps() -> String {
    format!(
        "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload={OPUS_PAYLOAD_TYPE}"
    )
}

// The decoders' appsinks do not preroll (`async=false`): a direction that stays silent (a camera
// without sound) would otherwise hold the whole pipeline in PAUSED, and nothing would reach the
// file until the end.
fn launch(path: &Path) -> String {
    let decode = |name: &str| {
        format!(
            "appsrc name={name} format=time caps=\"{caps}\" ! rtpopusdepay ! opusdec ! \
             audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate={RATE},channels=1 ! \
             appsink name={name}_pcm sync=false async=false",
            caps = rtp_caps()
        )
    };
    format!(
        "{} {} appsrc name=stereo format=time \
         caps=\"audio/x-raw,format=S16LE,rate={RATE},channels=2,layout=interleaved\" ! \
         audioconvert ! opusenc bitrate=48000 ! webmmux ! \
         filesink buffer-mode=unbuffered location=\"{}\"",
        decode("center"),
        decode("premises"),
        path.display()
    )
}

/// A recording in progress.
pub struct Recorder {
    pipeline: gst::Pipeline,
    center: gst_app::AppSrc,
    premises: gst_app::AppSrc,
    stereo: gst_app::AppSrc,
    mixer: Arc<Mutex<Mixer>>,
    /// The first RTP timestamp of each direction (center, premises): buffer times count from it.
    first_ts: Mutex<[Option<u32>; 2]>,
    clock: Instant,
    /// When the recording started.
    pub started_at: DateTime<Utc>,
    /// The file being written.
    pub path: PathBuf,
    stop: CancellationToken,
}

fn appsrc(p: &gst::Pipeline, name: &str) -> Result<gst_app::AppSrc, String> {
    p.by_name(name)
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| format!("the recording pipeline has no {name}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Recorder {
    /// Starts writing to `path` and pacing the mixer (needs a Tokio runtime).
    pub fn start(path: PathBuf) -> Result<Arc<Self>, String> {
        gst::init().map_err(|e| e.to_string())?;
        let pipeline = gst::parse::launch(&launch(&path))
            .map_err(|e| {
                format!("cannot build the recording pipeline (GStreamer elements missing?): {e}")
            })?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "the recording pipeline is not a pipeline".to_owned())?;
        let mixer = Arc::new(Mutex::new(Mixer::default()));
        for (name, direction) in [
            ("center_pcm", Direction::Center),
            ("premises_pcm", Direction::Premises),
        ] {
            let sink = pipeline
                .by_name(name)
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .ok_or_else(|| format!("the recording pipeline has no {name}"))?;
            let m = mixer.clone();
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        if let Some(b) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                            let pcm: Vec<i16> = b
                                .chunks_exact(2)
                                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                                .collect();
                            lock(&m).add(direction, &pcm);
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        }
        let recorder = Arc::new(Self {
            center: appsrc(&pipeline, "center")?,
            premises: appsrc(&pipeline, "premises")?,
            stereo: appsrc(&pipeline, "stereo")?,
            pipeline,
            mixer,
            first_ts: Mutex::new([None, None]),
            clock: Instant::now(),
            started_at: Utc::now(),
            path,
            stop: CancellationToken::new(),
        });
        recorder
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("cannot start the recording pipeline: {e}"))?;
        let r = recorder.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    () = r.stop.cancelled() => return,
                    _ = tick.tick() => r.write_until(r.clock.elapsed().saturating_sub(LAG)),
                }
            }
        });
        Ok(recorder)
    }

    /// Feeds one Opus RTP packet (payload type [`OPUS_PAYLOAD_TYPE`]) of `direction`.
    pub fn push_rtp(&self, direction: Direction, rtp: &[u8]) {
        if rtp.len() < 12 || self.stop.is_cancelled() {
            return;
        }
        let ts = u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]);
        let index = usize::from(direction == Direction::Premises);
        let first = *lock(&self.first_ts)[index].get_or_insert(ts);
        let pts = u64::from(ts.wrapping_sub(first)) * 1_000_000_000 / 48_000;
        let mut buffer = gst::Buffer::from_mut_slice(rtp.to_vec());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(pts));
        }
        let src = match direction {
            Direction::Center => &self.center,
            Direction::Premises => &self.premises,
        };
        let _ = src.push_buffer(buffer);
    }

    /// Writes the mixer's stereo up to `at` after the start.
    fn write_until(&self, at: Duration) {
        let until = at.as_millis() as u64 * u64::from(RATE) / 1000;
        let (from, pcm) = {
            let mut m = lock(&self.mixer);
            (m.position(), m.take_until(until))
        };
        self.push_stereo(from, &pcm);
    }

    fn push_stereo(&self, from: u64, pcm: &[i16]) {
        if pcm.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(
                from * 1_000_000_000 / u64::from(RATE),
            ));
            b.set_duration(gst::ClockTime::from_nseconds(
                (pcm.len() as u64 / 2) * 1_000_000_000 / u64::from(RATE),
            ));
        }
        let _ = self.stereo.push_buffer(buffer);
    }

    /// Ends the recording: flushes both decoders and the mixer and closes the file. Returns when
    /// it was started and ended.
    pub async fn finish(self: Arc<Self>) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
        let ended_at = Utc::now();
        let elapsed = self.clock.elapsed();
        self.stop.cancel();
        let _ = self.center.end_of_stream();
        let _ = self.premises.end_of_stream();
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.flush(elapsed))
            .await
            .map_err(|e| format!("the recording's flush failed: {e}"))??;
        Ok((self.started_at, ended_at))
    }

    /// Stops the recording at once without finishing the file (it is to be thrown away).
    pub fn abort(&self) {
        self.stop.cancel();
        let _ = self.pipeline.set_state(gst::State::Null);
    }

    fn flush(&self, elapsed: Duration) -> Result<(), String> {
        let deadline = Instant::now() + FINISH_TIMEOUT;
        let decoded = |name: &str| {
            self.pipeline
                .by_name(name)
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .is_none_or(|s| s.is_eos())
        };
        while !(decoded("center_pcm") && decoded("premises_pcm")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.write_until(elapsed);
        let (from, rest) = {
            let mut m = lock(&self.mixer);
            (m.position(), m.drain())
        };
        self.push_stereo(from, &rest);
        let _ = self.stereo.end_of_stream();
        let bus = self
            .pipeline
            .bus()
            .ok_or("the recording pipeline has no bus")?;
        let outcome = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(left.as_millis() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            ) else {
                break Err("the recording did not finish in time".to_owned());
            };
            match msg.view() {
                gst::MessageView::Eos(_) => break Ok(()),
                gst::MessageView::Error(e) => {
                    break Err(format!("the recording failed: {}", e.error()));
                }
                _ => {}
            }
        };
        let _ = self.pipeline.set_state(gst::State::Null);
        outcome
    }
}

/// One more voice decoded on its own and summed into the left channel (a consult room's
/// participant): `appsrc ! rtpopusdepay ! opusdec ! … 16 kHz mono ! appsink` → [`Mixer::add_mixed`].
pub struct MixedInput {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    first_ts: Mutex<Option<u32>>,
}

impl Recorder {
    /// A new voice `source` of the left channel.
    pub fn mixed_input(&self, source: u64) -> Result<MixedInput, String> {
        let launch = format!(
            "appsrc name=src format=time caps=\"{caps}\" ! rtpopusdepay ! opusdec ! \
             audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate={RATE},channels=1 ! \
             appsink name=pcm sync=false",
            caps = rtp_caps()
        );
        let pipeline = gst::parse::launch(&launch)
            .map_err(|e| format!("cannot build a voice decoder: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "a voice decoder is not a pipeline".to_owned())?;
        let sink = pipeline
            .by_name("pcm")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or("a voice decoder has no sink")?;
        let mixer = self.mixer.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(b) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                        let pcm: Vec<i16> = b
                            .chunks_exact(2)
                            .map(|c| i16::from_le_bytes([c[0], c[1]]))
                            .collect();
                        lock(&mixer).add_mixed(source, &pcm);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let src = appsrc(&pipeline, "src")?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("cannot start a voice decoder: {e}"))?;
        Ok(MixedInput {
            pipeline,
            src,
            first_ts: Mutex::new(None),
        })
    }
}

impl MixedInput {
    /// Feeds one Opus RTP packet.
    pub fn push_rtp(&self, rtp: &[u8]) {
        if rtp.len() < 12 {
            return;
        }
        let ts = u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]);
        let first = *lock(&self.first_ts).get_or_insert(ts);
        let pts = u64::from(ts.wrapping_sub(first)) * 1_000_000_000 / 48_000;
        let mut buffer = gst::Buffer::from_mut_slice(rtp.to_vec());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(pts));
        }
        let _ = self.src.push_buffer(buffer);
    }
}

impl Drop for MixedInput {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
