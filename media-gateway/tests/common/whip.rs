//! A WHIP talker for tests, on webrtc-rs like a browser would be: it offers to send Opus (under a
//! payload type other than the gateway's, so the answer must follow the offer) and sends a tone
//! that GStreamer encodes (`audiotestsrc ! opusenc ! rtpopuspay`), never decoding anything itself.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::shared::marshal::Unmarshal;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
};

/// The payload type this client offers Opus under (the gateway registers 111).
pub const CLIENT_OPUS_PT: u8 = 109;

struct Handler {
    gathered: mpsc::Sender<()>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

/// An operator talking: the connection and the tone being sent.
pub struct Talker {
    pub pc: Arc<dyn PeerConnection>,
    /// The WHIP session URL (absolute).
    pub location: String,
    tone: gst::Pipeline,
}

impl Talker {
    /// Switches a silent talker's tone on and returns the moment it did: the next buffer the
    /// tone source makes (up to ~21 ms of audio, 1024 samples at 48 kHz) is the first loud one.
    pub fn unmute(&self) -> std::time::Instant {
        let source = self.tone.by_name("src").expect("the tone source");
        source.set_property("volume", 0.5f64);
        std::time::Instant::now()
    }
}

impl Drop for Talker {
    fn drop(&mut self) {
        let _ = self.tone.set_state(gst::State::Null);
    }
}

/// Makes a send-only Opus offer (all candidates included) and the track to send on.
pub async fn offer() -> (
    Arc<dyn PeerConnection>,
    Arc<TrackLocalStaticRTP>,
    u32,
    String,
) {
    let mut media = MediaEngine::default();
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: CLIENT_OPUS_PT,
            },
            RtpCodecKind::Audio,
        )
        .unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
    let (gathered_tx, mut gathered) = mpsc::channel(1);
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_setting_engine(
            SettingEngineBuilder::new()
                .with_include_loopback_candidate(true)
                .build(),
        )
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler {
            gathered: gathered_tx,
        }) as Arc<dyn PeerConnectionEventHandler>)
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .unwrap();
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    let ssrc = rand::random::<u32>();
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "operator".to_owned(),
        format!("mic-{ssrc:08x}"),
        "mic".to_owned(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: opus(),
            ..Default::default()
        }],
    )));
    pc.add_track(track.clone() as Arc<dyn TrackLocal>)
        .await
        .unwrap();
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(3), gathered.recv()).await;
    let sdp = pc.local_description().await.unwrap().sdp;
    (pc, track, ssrc, sdp)
}

/// Sends a `freq` Hz tone at `volume` on `track` until the returned pipeline stops.
fn send_tone(track: Arc<TrackLocalStaticRTP>, ssrc: u32, freq: u32, volume: f64) -> gst::Pipeline {
    gst::init().unwrap();
    let p = gst::parse::launch(&format!(
        "audiotestsrc name=src is-live=true wave=sine freq={freq} volume={volume} ! \
         audio/x-raw,rate=48000,channels=1 ! opusenc ! rtpopuspay pt={CLIENT_OPUS_PT} mtu=1200 ! \
         appsink name=sink sync=false max-buffers=100 drop=true"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(100);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(b) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                    let _ = tx.try_send(b.to_vec());
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            let mut buf = BytesMut::from(&bytes[..]);
            let Ok(mut packet) = rtc::rtp::Packet::unmarshal(&mut buf) else {
                continue;
            };
            packet.header.ssrc = ssrc;
            packet.header.payload_type = CLIENT_OPUS_PT;
            let _ = track.write_rtp(packet).await;
        }
    });
    p.set_state(gst::State::Playing).unwrap();
    p
}

/// POSTs an offer to `url` with `token`; returns the raw response.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    sdp: String,
) -> reqwest::Response {
    let mut req = client
        .post(url)
        .header("Content-Type", "application/sdp")
        .body(sdp);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// Opens a WHIP session at `base` `/whip/{camera}` and talks a `freq` Hz tone; panics unless the
/// gateway answers 201.
pub async fn talk(
    client: &reqwest::Client,
    base: &str,
    camera: &str,
    token: &str,
    freq: u32,
) -> Talker {
    talk_at(client, base, &format!("/whip/{camera}"), token, freq).await
}

/// Opens a WHIP session at `base` `path` (a camera's talk, a broadcast's `/whip-broadcast/{id}` or
/// a consult room's) and sends a `freq` Hz tone; panics unless the gateway answers 201.
pub async fn talk_at(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    freq: u32,
) -> Talker {
    open(client, base, path, token, freq, 0.5).await
}

/// Like [`talk_at`], but the tone starts silent (Opus still flows) until [`Talker::unmute`]:
/// a marked tone for measuring mouth-to-ear latency.
pub async fn talk_silently_at(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    freq: u32,
) -> Talker {
    open(client, base, path, token, freq, 0.0).await
}

async fn open(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    freq: u32,
    volume: f64,
) -> Talker {
    let (pc, track, ssrc, sdp) = offer().await;
    let r = post(client, &format!("{base}{path}"), Some(token), sdp).await;
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = r.text().await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert!(
        body.to_ascii_lowercase().contains("opus/48000"),
        "the answer has no Opus: {body}"
    );
    pc.set_remote_description(RTCSessionDescription::answer(body).unwrap())
        .await
        .unwrap();
    let tone = send_tone(track, ssrc, freq, volume);
    Talker {
        pc,
        location: format!("{base}{}", location.expect("a Location header")),
        tone,
    }
}
