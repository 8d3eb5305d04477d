//! The camera's own audio for browsers (issue 4: "audio from the camera (AAC/G.711) reaches the
//! browser as Opus"). When a pulled camera stream offers audio, the ingest links it here: one
//! branch per source `depay → decode → 48 kHz mono → opusenc (20 ms) → rtpopuspay → appsink`,
//! whose Opus RTP packets the [`Relay`] fans out to every viewer beside the video. **Transcoded
//! once per camera stream, however many watch; a camera without audio gets no audio track.**

use std::sync::Arc;

use bytes::Bytes;
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;

use super::relay::Relay;
use super::talk_peer::OPUS_PAYLOAD_TYPE;

/// The depayloader and decoder of a camera's audio, by its RTP `encoding-name`; None for a codec
/// the gateway does not transcode (then viewers get video only).
fn decoder(encoding: &str) -> Option<&'static str> {
    match encoding {
        "PCMU" => Some("rtppcmudepay ! mulawdec"),
        "PCMA" => Some("rtppcmadepay ! alawdec"),
        "MPEG4-GENERIC" => Some("rtpmp4gdepay ! avdec_aac"),
        "MP4A-LATM" => Some("rtpmp4adepay ! avdec_aac"),
        _ => None,
    }
}

/// The transcoding branch's launch line (its sink pad is ghosted from the first element).
fn launch(decode: &str) -> String {
    format!(
        "queue max-size-time=200000000 leaky=downstream ! {decode} ! audioconvert ! audioresample ! \
         audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=20 bitrate=32000 ! \
         rtpopuspay pt={OPUS_PAYLOAD_TYPE} mtu=1200 ! appsink name=opus sync=false max-buffers=50 drop=true"
    )
}

/// Called for each stream the camera's SDP offers, before any data flows: an audio stream the
/// gateway transcodes marks the relay as having audio, so that even the first viewer (answered as
/// soon as video flows, possibly before the audio pad appears) is offered an audio track.
pub(super) fn note_offered_stream(s: &gst::StructureRef, relay: &Relay) {
    if s.get::<&str>("media").ok() == Some("audio")
        && let Ok(encoding) = s.get::<&str>("encoding-name")
        && decoder(&encoding.to_ascii_uppercase()).is_some()
    {
        relay.set_has_audio();
    }
}

/// Links a camera's audio `pad` (RTP caps `s`) into `pipeline` through a new transcoding branch
/// feeding `relay`. Logs and leaves the audio out when the codec is unknown or an element is
/// missing: video must not suffer for it.
pub(super) fn link_camera_audio(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    s: &gst::StructureRef,
    relay: &Arc<Relay>,
) {
    let encoding = s
        .get::<&str>("encoding-name")
        .unwrap_or("?")
        .to_ascii_uppercase();
    let Some(decode) = decoder(&encoding) else {
        tracing::info!(camera_id = %relay.camera, encoding = %encoding, "camera audio codec not transcoded; video only");
        return;
    };
    let bin = match gst::parse::bin_from_description(&launch(decode), true) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(camera_id = %relay.camera, err = %e, "cannot transcode the camera's audio (GStreamer elements missing?)");
            return;
        }
    };
    let Some(sink) = bin
        .by_name("opus")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
    else {
        return;
    };
    let r = relay.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(buffer) = sample.buffer()
                    && let Ok(map) = buffer.map_readable()
                {
                    r.push_audio(Bytes::copy_from_slice(map.as_slice()));
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    if pipeline.add(&bin).is_err() {
        return;
    }
    let _ = bin.sync_state_with_parent();
    match bin.static_pad("sink") {
        Some(sinkpad) => {
            if let Err(e) = pad.link(&sinkpad) {
                tracing::warn!(camera_id = %relay.camera, err = ?e, "cannot link the camera's audio");
            } else {
                tracing::info!(camera_id = %relay.camera, encoding = %encoding, "camera audio transcoded to Opus for viewers");
            }
        }
        None => tracing::warn!(camera_id = %relay.camera, "audio branch has no sink pad"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_and_aac_are_transcoded_and_other_codecs_left_out() {
        for e in ["PCMU", "PCMA", "MPEG4-GENERIC", "MP4A-LATM"] {
            assert!(decoder(e).is_some(), "{e}");
        }
        assert!(decoder("OPUS").is_none());
        assert!(launch("rtppcmadepay ! alawdec").contains("pt=111"));
    }
}
