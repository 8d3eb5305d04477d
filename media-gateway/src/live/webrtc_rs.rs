//! What the webrtc-rs peers share — the talk peer ([`super::talk_peer`], WHIP) and the consult
//! rooms ([`crate::rooms::peer`]): a peer connection on a UDP port of the configured range, and an
//! interceptor that hands keyframe requests to the application. WHEP viewers are not on webrtc-rs
//! (see [`super::peer`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

use rtc::interceptor::{
    Attribute, Interceptor, Packet as IPacket, Registry, StreamInfo, TaggedPacket,
};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::RTCIceCandidateType;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use webrtc::peer_connection::{PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler};

use super::peer::{PeerError, PeerSettings};

/// The answering side's settings: ports, advertised address, loopback allowed when bound there.
fn setting_engine(
    settings: &PeerSettings,
) -> rtc::peer_connection::configuration::setting_engine::SettingEngine {
    let mut b =
        SettingEngineBuilder::new().with_include_loopback_candidate(settings.bind_ip.is_loopback());
    if let Some(ip) = settings.public_ip {
        b = b.with_nat_1to1_ips(vec![ip.to_string()], RTCIceCandidateType::Host);
    }
    b.build()
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A peer connection with `engine`'s codecs on a UDP port of `settings`, one port per connection.
pub(crate) async fn build_pc(
    settings: &PeerSettings,
    handler: Arc<dyn PeerConnectionEventHandler>,
    engine: fn() -> Result<(MediaEngine, Registry), PeerError>,
) -> Result<Arc<dyn PeerConnection>, PeerError> {
    let attempt = |port: u16| {
        let handler = handler.clone();
        let addr = std::net::SocketAddr::new(settings.bind_ip, port);
        async move {
            let (media, registry) = engine()?;
            let pc = PeerConnectionBuilder::new()
                .with_configuration(RTCConfigurationBuilder::new().build())
                .with_media_engine(media)
                .with_setting_engine(setting_engine(settings))
                .with_interceptor_registry(registry)
                .with_handler(handler)
                .with_udp_addrs(vec![addr])
                .build()
                .await
                .map_err(|e| PeerError::Engine(e.to_string()))?;
            Ok::<Arc<dyn PeerConnection>, PeerError>(Arc::new(pc))
        }
    };
    let Some((min, max)) = settings.ports else {
        return attempt(0).await;
    };
    let span = max - min + 1;
    for _ in 0..span {
        let port = min + NEXT_PORT.fetch_add(1, Ordering::Relaxed) % span;
        match attempt(port).await {
            Ok(pc) => return Ok(pc),
            Err(e) => tracing::debug!(port, err = %e, "udp port taken, trying the next"),
        }
    }
    Err(PeerError::NoPort)
}

/// Whether an RTCP packet asks for a keyframe.
#[allow(clippy::borrowed_box)]
pub(crate) fn is_keyframe_request(packet: &Box<dyn rtc::rtcp::Packet>) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Marks inbound PLI/FIR for delivery to the application (inbound RTCP otherwise ends in the
/// interceptor chain) and drops other inbound RTCP at this, the last, stage.
#[derive(Default)]
pub(crate) struct KeyframeRequests {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let IPacket::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<_> = packets
                .iter()
                .filter(|p| is_keyframe_request(p))
                .cloned()
                .collect();
            if requests.is_empty() {
                return Ok(());
            }
            msg.message.packet = IPacket::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
