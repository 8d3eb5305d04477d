//! The talk PLAY mounts of the RTSP server ([`super::push`]): while a talk session of a camera
//! exists, its edge pulls the operator's voice from `rtsp://{gateway}:{port}/talk/{camera}/{token}`
//! (RTP over the RTSP TCP connection: the edge dials out, so it works behind NAT). One audio
//! stream: **Opus 48 kHz RTP exactly as received by WHIP** (payload type
//! [`OPUS_PAYLOAD_TYPE`](super::talk_peer::OPUS_PAYLOAD_TYPE), one SSRC per camera, never decoded).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_rtsp::RTSPLowerTrans;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

use super::talk_peer::OPUS_PAYLOAD_TYPE;

/// Where the packets of a camera's talk go: the `appsrc` of every edge pulling it.
#[derive(Default)]
pub struct TalkFeed {
    sinks: Mutex<Vec<gst_app::AppSrc>>,
    /// Pulls set up (RTSP media prepared) now.
    pub pullers: AtomicUsize,
    /// Packets handed to pullers.
    pub packets_out: AtomicU64,
}

impl TalkFeed {
    /// Hands one RTP packet to every puller; with none, it is dropped (talk is live).
    pub fn send(&self, rtp: &[u8]) {
        let sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for sink in sinks.iter() {
            if sink
                .push_buffer(gst::Buffer::from_slice(rtp.to_vec()))
                .is_ok()
            {
                self.packets_out.fetch_add(1, Relaxed);
            }
        }
    }

    /// Ends every pull's stream (the talk session ended).
    pub fn end(&self) {
        for sink in self.sinks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = sink.end_of_stream();
        }
    }
}

/// The pipeline of a pull: the packets as they come (`pay0` is what gst-rtsp-server streams).
/// A leaky queue of 50 packets (1 s) so a stalled edge never holds the gateway's memory.
fn launch() -> String {
    format!(
        "( appsrc name=pay0 is-live=true format=time do-timestamp=true max-buffers=50 \
           leaky-type=downstream \
           caps=\"application/x-rtp,media=(string)audio,clock-rate=(int)48000,\
encoding-name=(string)OPUS,encoding-params=(string)2,payload=(int){OPUS_PAYLOAD_TYPE}\" )"
    )
}

/// The media factory of a camera's talk mount, feeding `feed`'s pullers.
pub fn factory(feed: &Arc<TalkFeed>) -> rtsp::RTSPMediaFactory {
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(&launch());
    factory.set_protocols(RTSPLowerTrans::TCP);
    factory.set_latency(0);
    let weak = Arc::downgrade(feed);
    factory.connect_media_configure(move |_, media| {
        let Some(feed) = weak.upgrade() else {
            return;
        };
        let Some(src) = media
            .element()
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name("pay0"))
            .and_then(|s| s.downcast::<gst_app::AppSrc>().ok())
        else {
            tracing::error!("talk pipeline has no appsrc");
            return;
        };
        feed.sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(src.clone());
        feed.pullers.fetch_add(1, Relaxed);
        tracing::info!("edge pulls talk audio");
        let weak = Arc::downgrade(&feed);
        media.connect_unprepared(move |_| {
            if let Some(feed) = weak.upgrade() {
                feed.sinks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|s| s != &src);
                feed.pullers.fetch_sub(1, Relaxed);
                tracing::info!("edge stopped pulling talk audio");
            }
        });
    });
    factory
}
