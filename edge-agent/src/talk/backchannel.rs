//! The camera side of talk-down: an RTSP session to the camera that asks for its ONVIF audio
//! backchannel (`Require: www.onvif.org/ver20/backchannel`, GStreamer's `rtspsrc backchannel=onvif`)
//! and sets up every stream it offers (the others go to a fakesink: with only the backchannel set up,
//! gst-rtsp-server's ONVIF media sometimes never heard anything; the cost is the camera's stream on
//! the LAN while the talk lasts). RTP
//! packets of G.711 (PCMU or PCMA, as the camera's SDP asks) are handed to it with
//! `push-backchannel-buffer`. The URL holds credentials: it is never logged or put into an error.

use super::TalkError;
use bl_service::secret::Secret;
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The G.711 flavour the camera asked for in its SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711 {
    /// μ-law (`PCMU`, static payload type 0).
    Pcmu,
    /// A-law (`PCMA`, static payload type 8).
    Pcma,
}

impl G711 {
    /// The encoder and payloader that make this flavour.
    pub fn elements(self) -> (&'static str, &'static str) {
        match self {
            G711::Pcmu => ("mulawenc", "rtppcmupay"),
            G711::Pcma => ("alawenc", "rtppcmapay"),
        }
    }
}

/// What the camera's SDP says about its backchannel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub codec: G711,
    /// The RTP payload type the camera expects.
    pub payload: u32,
}

/// What `select-stream` saw.
#[derive(Default)]
struct Described {
    /// Streams offered so far.
    offered: u32,
    /// The backchannel stream's number and format, if one was offered.
    backchannel: Option<(u32, Result<Format, String>)>,
    /// The camera's own audio was chosen as the sign that PLAY was answered.
    listening: bool,
    /// Media flows (PLAY was answered).
    playing: bool,
    /// When the backchannel was chosen.
    chosen_at: Option<Instant>,
}

/// A connected backchannel. Dropping it tears the RTSP session down.
pub struct Backchannel {
    pipeline: gst::Pipeline,
    src: gst::Element,
    stream: u32,
    pub format: Format,
    /// The RTP stream's identity and the last packet sent, so that a replaced source continues the
    /// same stream: cameras follow one SSRC and drop packets of a new one.
    pub ssrc: u32,
    last: Mutex<Option<(u16, u32, Instant)>>,
}

impl Backchannel {
    /// Connects to `url` and waits up to `timeout` for the camera's answer. A camera whose answer
    /// offers no backchannel gives [`TalkError::NoSpeaker`].
    pub fn connect(url: &Secret, timeout: Duration) -> Result<Backchannel, TalkError> {
        super::init()?;
        let src = gst::ElementFactory::make("rtspsrc")
            .build()
            .map_err(|_| TalkError::missing("rtspsrc"))?;
        src.set_property("location", url.expose());
        src.set_property_from_str("backchannel", "onvif");
        src.set_property_from_str("protocols", "tcp");
        src.set_property("latency", 0u32);
        let described = Arc::new(Mutex::new(Described::default()));
        let d = described.clone();
        src.connect("select-stream", false, move |args| {
            let num = args[1].get::<u32>().unwrap_or(u32::MAX);
            let caps = args[2].get::<gst::Caps>().ok();
            let mut d = d.lock().expect("described");
            d.offered += 1;
            tracing::debug!(stream = num, caps = ?caps, "camera offers a stream");
            let s = caps.as_ref().and_then(|c| c.structure(0));
            let is = |field: &str| s.is_some_and(|s| s.has_field(field));
            if is("a-sendonly") {
                if d.backchannel.is_none() {
                    d.backchannel = Some((num, format(s.expect("has a field"))));
                    d.chosen_at = Some(Instant::now());
                    return Some(true.to_value());
                }
                return Some(false.to_value());
            }
            // Every other stream is set up too (and dropped in a fakesink): with only the
            // backchannel chosen, gst-rtsp-server's ONVIF media sometimes never started its
            // receiving side (camsim recorded nothing in about 1 of 3 sessions). Media flowing
            // from the camera is also the sign that it answered PLAY.
            d.listening = true;
            Some(true.to_value())
        });
        let pipeline = gst::Pipeline::new();
        let (d, weak) = (described.clone(), pipeline.downgrade());
        src.connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            if let Ok(sink) = gst::ElementFactory::make("fakesink")
                .property("async", false)
                .build()
                && pipeline.add(&sink).is_ok()
            {
                let _ = sink.sync_state_with_parent();
                if let Some(sink_pad) = sink.static_pad("sink") {
                    let _ = pad.link(&sink_pad);
                }
            }
            d.lock().expect("described").playing = true;
        });
        pipeline
            .add(&src)
            .map_err(|e| TalkError::Internal(e.to_string()))?;
        let mut bc = Backchannel {
            pipeline,
            src,
            stream: 0,
            format: Format {
                codec: G711::Pcmu,
                payload: 0,
            },
            ssrc: rand::random(),
            last: Mutex::new(None),
        };
        bc.pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| TalkError::Camera("cannot start the RTSP client".into()))?;

        // Ready once media flows from the camera (it answered PLAY); a camera without audio of its
        // own gets a moment after the SETUP of its backchannel instead.
        let deadline = Instant::now() + timeout;
        let bus = bc.pipeline.bus().expect("a pipeline has a bus");
        let no_backchannel = || {
            TalkError::NoSpeaker(
                "camera has no speaker: its RTSP answer offers no ONVIF backchannel".into(),
            )
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TalkError::Camera(format!(
                    "the camera did not answer within {} s",
                    timeout.as_secs()
                )));
            }
            let message = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(left.as_millis().min(20) as u64),
                &[gst::MessageType::Error],
            );
            let d = described.lock().expect("described");
            if let Some(gst::MessageView::Error(e)) = message.as_ref().map(|m| m.view()) {
                // Only the error itself: GStreamer's debug text can quote the location.
                let reason = e.error().to_string();
                tracing::debug!(reason = %reason, offered = d.offered, "the camera's session failed");
                // The debug text is read, never logged: it names the RTSP status of a refusal.
                let detail = e.debug().map(|d| d.to_string()).unwrap_or_default();
                if d.offered > 0 && d.backchannel.is_none() || is_unsupported(&detail) {
                    return Err(no_backchannel());
                }
                return Err(TalkError::Camera(reason));
            }
            let waited = d
                .chosen_at
                .is_some_and(|at| !d.listening && at.elapsed() > Duration::from_millis(500));
            if !(d.playing || waited) {
                continue;
            }
            match &d.backchannel {
                Some((stream, Ok(format))) => {
                    (bc.stream, bc.format) = (*stream, *format);
                    drop(d);
                    return Ok(bc);
                }
                Some((_, Err(reason))) => return Err(TalkError::NoSpeaker(reason.clone())),
                None => return Err(no_backchannel()),
            }
        }
    }

    /// Where the next source's packets continue: sequence number and RTP timestamp, if any were
    /// sent.
    pub fn continuation(&self) -> Option<(u16, u32)> {
        let (seq, ts, at) = (*self.last.lock().expect("last packet"))?;
        let gap = (at.elapsed().as_secs_f64() * 8000.0) as u32;
        Some((seq.wrapping_add(1), ts.wrapping_add(gap).wrapping_add(160)))
    }

    /// Sends one RTP packet to the camera.
    pub fn push(&self, sample: &gst::Sample) -> Result<(), gst::FlowError> {
        if let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok())
            && map.len() >= 12
        {
            let seq = u16::from_be_bytes([map[2], map[3]]);
            let ts = u32::from_be_bytes([map[4], map[5], map[6], map[7]]);
            *self.last.lock().expect("last packet") = Some((seq, ts, Instant::now()));
        }
        if push_sample_signal() {
            let ret = self.src.emit_by_name::<gst::FlowReturn>(
                "push-backchannel-sample",
                &[&self.stream, sample],
            );
            return ret.into_result().map(|_| ());
        }
        // GStreamer before 1.24 declares this signal's argument as a GstSample but unrefs it in
        // the handler (transfer full), while an emission from Rust keeps its own reference: hand
        // it one extra reference so the counts stay balanced.
        std::mem::forget(sample.clone());
        let ret = self
            .src
            .emit_by_name::<gst::FlowReturn>("push-backchannel-buffer", &[&self.stream, sample]);
        ret.into_result().map(|_| ())
    }

    /// Ends the RTSP session (TEARDOWN); also done when it is dropped.
    pub fn close(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }

    /// A failure the camera side reported since the last call, if any.
    pub fn failure(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        let message = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos])?;
        Some(match message.view() {
            gst::MessageView::Error(e) => e.error().to_string(),
            _ => "the camera ended the session".into(),
        })
    }
}

impl Drop for Backchannel {
    fn drop(&mut self) {
        self.close();
    }
}

/// Whether this GStreamer has `push-backchannel-sample` (1.24), which takes no ownership.
fn push_sample_signal() -> bool {
    let (major, minor, _, _) = gst::version();
    (major, minor) >= (1, 24)
}

/// A camera that does not know the ONVIF backchannel answers `551 Option not supported` to the
/// DESCRIBE that requires it, which rtspsrc reports as the server giving no SDP.
fn is_unsupported(debug: &str) -> bool {
    let d = debug.to_ascii_lowercase();
    d.contains("not supported") || d.contains("551") || d.contains("can not provide an sdp")
}

/// The G.711 flavour of the backchannel's caps, or why it cannot be used.
fn format(s: &gst::StructureRef) -> Result<Format, String> {
    let encoding = s
        .get::<String>("encoding-name")
        .unwrap_or_default()
        .to_ascii_uppercase();
    let payload = s.get::<i32>("payload").unwrap_or(-1);
    let rate = s.get::<i32>("clock-rate").unwrap_or(8000);
    let codec = match (encoding.as_str(), payload) {
        ("PCMU", _) | ("", 0) => G711::Pcmu,
        ("PCMA", _) | ("", 8) => G711::Pcma,
        _ => {
            return Err(format!(
                "camera has no usable speaker: its backchannel asks for {encoding:?} (payload {payload}), \
                 the box speaks G.711 (PCMU or PCMA)"
            ));
        }
    };
    if rate != 8000 || payload < 0 {
        return Err(format!(
            "camera has no usable speaker: its backchannel asks for {encoding} at {rate} Hz, the box sends 8000 Hz"
        ));
    }
    Ok(Format {
        codec,
        payload: payload as u32,
    })
}
