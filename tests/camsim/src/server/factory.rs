//! Media factories: the GStreamer pipelines behind `/cam/{id}` and `/cam/{id}/sub`, and the ONVIF
//! factory with an audio track and a recording backchannel.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use rtsp::prelude::*;

use super::feed::Feed;
use super::wav::WavWriter;
use crate::config::{Audio, Codec, MARKER_TONE_HZ};

/// Which of a camera's two streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Full resolution, `/cam/{id}`.
    Main,
    /// 640x360, `/cam/{id}/sub`.
    Sub,
}

/// The launch line of a video stream; the appsrc is named `src`, the payloader `pay0`.
pub fn video_launch(codec: Codec, stream: Stream, fps: u32) -> String {
    let gop = 2 * fps;
    let (scale, kbps) = match stream {
        Stream::Main => ("", 2048),
        Stream::Sub => (
            "videoscale ! video/x-raw,width=640,height=360,pixel-aspect-ratio=1/1 ! ",
            512,
        ),
    };
    let enc = match codec {
        Codec::H264 => format!(
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} ! h264parse ! \
             rtph264pay name=pay0 pt=96 config-interval=1"
        ),
        Codec::H265 => format!(
            "x265enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} ! h265parse ! \
             rtph265pay name=pay0 pt=96 config-interval=1"
        ),
    };
    format!("appsrc name=src is-live=true format=time ! videoconvert ! {scale}{enc}")
}

/// The launch line of the camera's own audio, payloader `pay1`: quiet kitchen noise mixed with the
/// marker tone.
pub fn audio_launch(audio: Audio) -> String {
    let (rate, encode) = match audio {
        Audio::Pcmu => (8000, "mulawenc ! rtppcmupay name=pay1 pt=0"),
        Audio::Pcma => (8000, "alawenc ! rtppcmapay name=pay1 pt=8"),
        Audio::Aac => (
            16000,
            "avenc_aac bitrate=32000 ! aacparse ! rtpmp4gpay name=pay1 pt=97",
        ),
    };
    format!(
        "audiotestsrc is-live=true wave=sine freq={MARKER_TONE_HZ} volume=0.2 samplesperbuffer=160 ! \
         audiomixer name=ambience latency=20000000 ! audioconvert ! audioresample ! \
         audio/x-raw,rate={rate},channels=1 ! {encode} \
         audiotestsrc is-live=true wave=pink-noise volume=0.03 samplesperbuffer=160 ! ambience."
    )
}

/// Hooks `feed` into every media the factory makes.
fn feed_media(factory: &rtsp::RTSPMediaFactory, feed: &Arc<Feed>, backchannel: Option<PathBuf>) {
    let feed = feed.clone();
    factory.connect_media_configure(move |_, media| {
        let Ok(bin) = media.element().downcast::<gst::Bin>() else {
            return;
        };
        let Some(src) = bin
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        else {
            tracing::error!(camera_id = %feed.id, "media has no appsrc named src");
            return;
        };
        feed.attach(&src);
        let weak = Arc::downgrade(&feed);
        media.connect_unprepared(move |_| {
            if let Some(f) = weak.upgrade() {
                f.detach(&src);
            }
        });
        if let (Some(dir), Some(talk)) = (&backchannel, bin.by_name("talk")) {
            match talk.downcast::<gst_app::AppSink>() {
                Ok(sink) => record_backchannel(&sink, &feed.id, dir.clone()),
                Err(_) => tracing::error!(camera_id = %feed.id, "element talk is not an appsink"),
            }
        }
    });
}

/// A plain factory for one stream of a camera, with `audio` if given; its media is shared by all
/// clients.
pub fn video_factory(
    feed: &Arc<Feed>,
    codec: Codec,
    stream: Stream,
    audio: Option<Audio>,
) -> rtsp::RTSPMediaFactory {
    let f = rtsp::RTSPMediaFactory::new();
    f.set_launch(&format!(
        "( {} {} )",
        video_launch(codec, stream, feed.renderer.scenario().fps),
        audio.map(audio_launch).unwrap_or_default()
    ));
    f.set_shared(true);
    feed_media(&f, feed, None);
    f
}

/// The ONVIF factory of a main stream: video, the camera's audio track (`audio`), and a
/// PCMU/8000 backchannel recorded to `{dir}/{camera}-backchannel-{timestamp}.wav`. One media per
/// client, since each client has its own backchannel.
pub fn onvif_factory(
    feed: &Arc<Feed>,
    codec: Codec,
    audio: Audio,
    dir: PathBuf,
) -> rtsp::RTSPOnvifMediaFactory {
    let f = rtsp::RTSPOnvifMediaFactory::new();
    f.set_launch(&format!(
        "( {} {} )",
        video_launch(codec, Stream::Main, feed.renderer.scenario().fps),
        audio_launch(audio)
    ));
    f.set_backchannel_launch(Some(
        "( capsfilter caps=\"application/x-rtp,media=audio,payload=0,clock-rate=8000,encoding-name=PCMU\" \
         name=depay_backchannel ! rtppcmudepay ! mulawdec ! audioconvert ! audioresample ! \
         audio/x-raw,format=S16LE,rate=8000,channels=1 ! queue ! appsink name=talk sync=false async=false )",
    ));
    f.set_shared(false);
    f.set_media_gtype(rtsp::RTSPOnvifMedia::static_type());
    feed_media(f.upcast_ref(), feed, Some(dir));
    f
}

/// Writes what arrives on the backchannel to a WAV file, created on the first sample.
fn record_backchannel(sink: &gst_app::AppSink, camera: &str, dir: PathBuf) {
    let camera = camera.to_string();
    let writer: Arc<Mutex<Option<WavWriter>>> = Arc::new(Mutex::new(None));
    let w2 = writer.clone();
    let cam2 = camera.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(buf) = sample.buffer() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
                let mut guard = writer.lock().unwrap();
                if guard.is_none() {
                    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
                    let path = dir.join(crate::backchannel::file_name(&camera, &stamp.to_string()));
                    let created = std::fs::create_dir_all(&dir).and_then(|_| WavWriter::create(&path, 8000));
                    match created {
                        Ok(w) => {
                            tracing::info!(camera_id = %camera, path = %path.display(), "recording backchannel");
                            *guard = Some(w);
                        }
                        Err(e) => {
                            tracing::error!(camera_id = %camera, path = %path.display(), err = %e, "cannot record backchannel");
                            return Err(gst::FlowError::Error);
                        }
                    }
                }
                if let Some(w) = guard.as_mut()
                    && let Err(e) = w.write(&map)
                {
                    tracing::error!(camera_id = %camera, err = %e, "backchannel write failed");
                    return Err(gst::FlowError::Error);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .eos(move |_| {
                if let Some(w) = w2.lock().unwrap().take() {
                    tracing::info!(camera_id = %cam2, bytes = w.bytes(), "backchannel recording closed");
                }
            })
            .build(),
    );
}
