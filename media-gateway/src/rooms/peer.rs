//! The consult rooms' side of the WebRTC boundary (webrtc-rs 0.21, like [`crate::live::peer`]):
//! a [`PublishPeer`] answers a participant's send-only offer (Opus and VP8) and puts what arrives
//! on its [`Feed`]; a [`SubscribePeer`] answers a receive-only offer and sends one participant's
//! feed back out, with its own SSRCs and the payload types the answer negotiated. Packets are
//! forwarded as received: never decoded, never transcoded.

use std::sync::Arc;

use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

use super::Feed;
use crate::live::peer::{
    H264_FMTP, H264_PAYLOAD_TYPE, KeyframeRequests, PeerError, PeerEvent, PeerSettings, build_pc,
    is_keyframe_request,
};

/// Payload type of Opus in the rooms' engine (what browsers use).
pub const OPUS_PT: u8 = 111;
/// Payload type of VP8 in the rooms' engine.
pub const VP8_PT: u8 = 96;

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

fn h264() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: H264_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The rooms' engine: Opus and VP8 only (what every browser encodes and decodes, so one
/// participant's packets suit every other), the default interceptors (NACK, RTCP reports,
/// transport-wide congestion control feedback for the senders' bandwidth estimate) and the one
/// that hands keyframe requests to the application.
fn engine() -> Result<(MediaEngine, Registry), PeerError> {
    engine_with(vp8(), VP8_PT)
}

/// The engine of a subscription to an evidence clip: Opus and H.264 (the clip's own codec).
fn engine_h264() -> Result<(MediaEngine, Registry), PeerError> {
    engine_with(h264(), H264_PAYLOAD_TYPE)
}

fn engine_with(video: RTCRtpCodec, video_pt: u8) -> Result<(MediaEngine, Registry), PeerError> {
    let err = |e: rtc::shared::error::Error| PeerError::Engine(e.to_string());
    let mut media = MediaEngine::default();
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: OPUS_PT,
            },
            RtpCodecKind::Audio,
        )
        .map_err(err)?;
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: video,
                payload_type: video_pt,
            },
            RtpCodecKind::Video,
        )
        .map_err(err)?;
    let registry = register_default_interceptors(Registry::new(), &mut media)
        .map_err(err)?
        .with(Slot::from(14_000), KeyframeRequests::default());
    Ok((media, registry))
}

/// What the offer carries: `(audio, video)` media sections.
pub fn offered_kinds(sdp: &str) -> (bool, bool) {
    (sdp.contains("m=audio"), sdp.contains("m=video"))
}

/// A publisher's side of the handler: where received packets go, and the keyframe requests to
/// pass on to its video (taken by the first video track).
type Publish = (Arc<Feed>, std::sync::Mutex<Option<mpsc::Receiver<()>>>);

struct Handler {
    events: mpsc::Sender<PeerEvent>,
    gathered: mpsc::Sender<()>,
    /// Set for a publisher.
    publish: Option<Publish>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        // `Disconnected` is not the end: a busy browser misses consent checks for a moment and
        // recovers; a participant is dropped only when the connection failed or closed.
        let event = match state {
            RTCPeerConnectionState::Connected => PeerEvent::Connected,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => PeerEvent::Closed,
            _ => return,
        };
        let _ = self.events.try_send(event);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some((feed, keyframes)) = &self.publish else {
            return;
        };
        let video = track.kind().await == RtpCodecKind::Video;
        let out = if video {
            feed.video.clone()
        } else {
            feed.audio.clone()
        };
        if video && let Some(mut requests) = keyframes.lock().ok().and_then(|mut k| k.take()) {
            let t = track.clone();
            tokio::spawn(async move {
                while requests.recv().await.is_some() {
                    let Some(media_ssrc) = t.ssrcs().await.first().copied() else {
                        continue;
                    };
                    let pli = PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc,
                    };
                    if t.write_rtcp(vec![Box::new(pli)]).await.is_err() {
                        return;
                    }
                }
            });
        }
        let feed = feed.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                match event {
                    // Push-to-talk: audio passes only under the talker's floor grant.
                    TrackRemoteEvent::OnRtpPacket(_)
                        if !video && !feed.audio_gate.is_open_now() => {}
                    // No subscriber yet is fine: the send fails and the packet is dropped.
                    TrackRemoteEvent::OnRtpPacket(p) => {
                        let _ = out.send(p);
                    }
                    TrackRemoteEvent::OnEnded => return,
                    _ => {}
                }
            }
        });
    }
}

/// Answers `offer` on a new connection; the answer includes all gathered candidates.
async fn answer(
    pc: &Arc<dyn PeerConnection>,
    offer: RTCSessionDescription,
    gathered: &mut mpsc::Receiver<()>,
    settings: &PeerSettings,
) -> Result<String, PeerError> {
    let engine_err = |e: webrtc::error::Error| PeerError::Engine(e.to_string());
    pc.set_remote_description(offer)
        .await
        .map_err(|e| PeerError::BadOffer(format!("the offer was refused: {e}")))?;
    let answer = pc.create_answer(None).await.map_err(engine_err)?;
    pc.set_local_description(answer).await.map_err(engine_err)?;
    let _ = tokio::time::timeout(settings.gather_timeout, gathered.recv()).await;
    pc.local_description()
        .await
        .map(|d| d.sdp)
        .ok_or_else(|| PeerError::Engine("no local description".into()))
}

fn parse_offer(sdp: String) -> Result<RTCSessionDescription, PeerError> {
    RTCSessionDescription::offer(sdp)
        .map_err(|e| PeerError::BadOffer(format!("not an SDP offer: {e}")))
}

/// A participant sending into the room.
pub struct PublishPeer {
    pc: Arc<dyn PeerConnection>,
}

impl PublishPeer {
    /// Answers a participant's offer (Opus audio and/or VP8 video to send); what arrives goes to
    /// `feed`, and each `()` on `keyframes` becomes a PLI to the participant's video.
    pub async fn answer(
        settings: &PeerSettings,
        offer: String,
        feed: Arc<Feed>,
        keyframes: mpsc::Receiver<()>,
    ) -> Result<(PublishPeer, String, mpsc::Receiver<PeerEvent>), PeerError> {
        let offer = parse_offer(offer)?;
        if offered_kinds(&offer.sdp) == (false, false) {
            return Err(PeerError::BadOffer(
                "the offer has neither audio nor video to send; offer the microphone (Opus) and/or the camera (VP8)".into(),
            ));
        }
        let (events_tx, events) = mpsc::channel(16);
        let (gathered_tx, mut gathered) = mpsc::channel(1);
        let handler = Arc::new(Handler {
            events: events_tx,
            gathered: gathered_tx,
            publish: Some((feed, std::sync::Mutex::new(Some(keyframes)))),
        });
        let pc = build_pc(settings, handler, engine).await?;
        match answer(&pc, offer, &mut gathered, settings)
            .await
            .and_then(|sdp| {
                accepted(&sdp)?;
                Ok(sdp)
            }) {
            Ok(sdp) => Ok((PublishPeer { pc }, sdp, events)),
            Err(e) => {
                let _ = pc.close().await;
                Err(e)
            }
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// An answer must accept at least one media section (a section with a codec the rooms do not
/// forward is answered with port 0).
fn accepted(sdp: &str) -> Result<(), PeerError> {
    let audio = sdp.contains("m=audio") && !sdp.contains("m=audio 0 ");
    let video = sdp.contains("m=video") && !sdp.contains("m=video 0 ");
    if audio || video {
        Ok(())
    } else {
        Err(PeerError::BadOffer(
            "the offer has no Opus audio and no VP8 video; rooms forward only those".into(),
        ))
    }
}

/// A participant receiving another participant's feed.
pub struct SubscribePeer {
    pc: Arc<dyn PeerConnection>,
    /// Dropped on close: ends the forwarding tasks.
    _stop: watch::Sender<()>,
}

fn local_track(
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    stream: &str,
) -> (Arc<TrackLocalStaticRTP>, u32) {
    let ssrc = rand::random::<u32>();
    let label = if kind == RtpCodecKind::Video {
        "video"
    } else {
        "audio"
    };
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        stream.to_owned(),
        format!("{label}-{ssrc:08x}"),
        label.to_owned(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )));
    (track, ssrc)
}

impl SubscribePeer {
    /// Answers a receive-only offer with `feed` (the kinds the offer asks for) under `stream`
    /// (the participant's id, so the browser can tell whose media a track is).
    pub async fn answer(
        settings: &PeerSettings,
        offer: String,
        feed: &Arc<Feed>,
        stream: &str,
    ) -> Result<(SubscribePeer, String, mpsc::Receiver<PeerEvent>), PeerError> {
        let offer = parse_offer(offer)?;
        let (want_audio, want_video) = offered_kinds(&offer.sdp);
        if !want_audio && !want_video {
            return Err(PeerError::BadOffer(
                "the offer asks for neither audio nor video".into(),
            ));
        }
        let (events_tx, events) = mpsc::channel(16);
        let (gathered_tx, mut gathered) = mpsc::channel(1);
        let handler = Arc::new(Handler {
            events: events_tx,
            gathered: gathered_tx,
            publish: None,
        });
        let h264_video = feed.video_h264;
        let pc = if h264_video {
            build_pc(settings, handler, engine_h264).await?
        } else {
            build_pc(settings, handler, engine).await?
        };
        let mut outs = Vec::new();
        let setup = async {
            let engine_err = |e: webrtc::error::Error| PeerError::Engine(e.to_string());
            let (video, video_mime) = if h264_video {
                (h264(), MIME_TYPE_H264)
            } else {
                (vp8(), MIME_TYPE_VP8)
            };
            let kinds = [
                (want_audio, RtpCodecKind::Audio, opus(), MIME_TYPE_OPUS),
                (want_video, RtpCodecKind::Video, video, video_mime),
            ];
            let mut senders = Vec::new();
            for (wanted, kind, codec, mime) in kinds {
                if !wanted {
                    continue;
                }
                let (track, ssrc) = local_track(kind, codec, stream);
                let sender = pc
                    .add_track(track.clone() as Arc<dyn TrackLocal>)
                    .await
                    .map_err(engine_err)?;
                senders.push((sender, track, ssrc, kind, mime));
            }
            let sdp = answer(&pc, offer, &mut gathered, settings).await?;
            accepted(&sdp)?;
            for (sender, track, ssrc, kind, mime) in senders {
                let params = sender.get_parameters().await.map_err(engine_err)?;
                if let Some(pt) = params
                    .rtp_parameters
                    .codecs
                    .iter()
                    .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
                    .map(|c| c.payload_type)
                {
                    outs.push((track, ssrc, pt, kind));
                }
            }
            Ok::<_, PeerError>(sdp)
        }
        .await;
        let sdp = match setup {
            Ok(sdp) => sdp,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        let (stop, stopped) = watch::channel(());
        for (track, ssrc, pt, kind) in outs {
            let video = kind == RtpCodecKind::Video;
            let packets = if video {
                feed.video.subscribe()
            } else {
                feed.audio.subscribe()
            };
            if video {
                // A new viewer needs a keyframe now, not at the sender's next one.
                let _ = feed.keyframe.try_send(());
                let (t, keyframe) = (track.clone(), feed.keyframe.clone());
                tokio::spawn(async move {
                    while let Some(TrackLocalEvent::OnRtcpPacket(p)) = t.poll().await {
                        if p.iter().any(is_keyframe_request) {
                            let _ = keyframe.try_send(());
                        }
                    }
                });
            }
            let keyframe = video.then(|| feed.keyframe.clone());
            tokio::spawn(forward(packets, track, ssrc, pt, keyframe, stopped.clone()));
        }
        Ok((SubscribePeer { pc, _stop: stop }, sdp, events))
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// Sends a feed's packets on `track` until the publisher leaves or the subscriber closes. A
/// subscriber that falls behind skips what it missed (live media is never queued for long) and,
/// for video, asks for a keyframe to recover.
async fn forward(
    mut packets: broadcast::Receiver<rtc::rtp::Packet>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    keyframe: Option<mpsc::Sender<()>>,
    mut stopped: watch::Receiver<()>,
) {
    loop {
        let received = tokio::select! {
            r = packets.recv() => r,
            _ = stopped.changed() => return,
        };
        let mut packet = match received {
            Ok(p) => p,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if let Some(k) = &keyframe {
                    let _ = k.try_send(());
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        packet.header.ssrc = ssrc;
        packet.header.payload_type = payload_type;
        packet.header.extensions.clear();
        packet.header.extension = false;
        // Before the connection is up a write fails; the packet is dropped like a lost one.
        let _ = track.write_rtp(packet).await;
    }
}
