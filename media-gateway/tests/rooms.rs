//! Consult rooms through the gateway with webrtc-rs clients standing in for browsers: sixteen
//! participants send a tone each, a seventeenth is refused, and a listener subscribed to one of
//! them receives that participant's Opus packets as sent (forwarded, not transcoded).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bl_proto::token::MediaAction;
use common::whip::{self, CLIENT_OPUS_PT};
use common::{NODE, TestGateway, error_code, token_for};
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
};

const ROOM: &str = "room-consult-1";

/// Opus packets a listener received, and under which payload types.
#[derive(Default)]
struct Heard {
    packets: AtomicU64,
    payload_types: std::sync::Mutex<Vec<u8>>,
}

struct Listener {
    heard: Arc<Heard>,
    gathered: mpsc::Sender<()>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Listener {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let heard = self.heard.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = event {
                    heard.packets.fetch_add(1, Relaxed);
                    let mut pts = heard.payload_types.lock().unwrap();
                    if !pts.contains(&p.header.payload_type) {
                        pts.push(p.header.payload_type);
                    }
                }
            }
        });
    }
}

/// A receive-only Opus offer (Opus under the client's own payload type).
async fn listener_offer(heard: Arc<Heard>) -> (Arc<dyn PeerConnection>, String) {
    let mut media = MediaEngine::default();
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_OPUS.to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                    rtcp_feedback: vec![],
                },
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
        .with_handler(Arc::new(Listener {
            heard,
            gathered: gathered_tx,
        }) as Arc<dyn PeerConnectionEventHandler>)
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .unwrap();
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    pc.add_transceiver_from_kind(
        RtpCodecKind::Audio,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(3), gathered.recv()).await;
    let sdp = pc.local_description().await.unwrap().sdp;
    (pc, sdp)
}

async fn participants(client: &reqwest::Client, gw: &TestGateway, token: &str) -> Vec<String> {
    let v: serde_json::Value = client
        .get(gw.url(&format!("/rooms/{ROOM}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_participants_fit_a_seventeenth_is_refused_and_a_listener_hears_the_one_it_chose() {
    let gw = TestGateway::start().await;
    let client = reqwest::Client::new();
    let token = token_for(ROOM, MediaAction::Room, NODE, 300);
    let base = gw.url("");
    let base = base.trim_end_matches('/');

    // A token for another room, or for watching, does not open this one.
    let (_pc, _track, _ssrc, sdp) = whip::offer().await;
    let wrong = token_for("room-other", MediaAction::Room, NODE, 300);
    let r = whip::post(
        &client,
        &format!("{base}/rooms/{ROOM}/whip"),
        Some(&wrong),
        sdp,
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "token_wrong_camera");

    let mut talkers = Vec::new();
    for i in 0..16 {
        let path = format!("/rooms/{ROOM}/whip");
        talkers.push(whip::talk_at(&client, base, &path, &token, 400 + 50 * i).await);
    }
    let ids = participants(&client, &gw, &token).await;
    assert_eq!(ids.len(), 16);

    let (_pc, _track, _ssrc, sdp) = whip::offer().await;
    let r = whip::post(
        &client,
        &format!("{base}/rooms/{ROOM}/whip"),
        Some(&token),
        sdp,
    )
    .await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "room_full");

    // A listener chooses the first participant and hears its Opus, relabelled with the payload
    // type its own offer used.
    let heard = Arc::new(Heard::default());
    let (pc, sdp) = listener_offer(heard.clone()).await;
    let url = format!("{base}/rooms/{ROOM}/whep/{}", ids[0]);
    let r = whip::post(&client, &url, Some(&token), sdp).await;
    assert_eq!(r.status(), 201);
    let answer = r.text().await.unwrap();
    pc.set_remote_description(RTCSessionDescription::answer(answer).unwrap())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while heard.packets.load(Relaxed) < 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        heard.packets.load(Relaxed) >= 100,
        "the listener got {} packets",
        heard.packets.load(Relaxed)
    );
    assert_eq!(*heard.payload_types.lock().unwrap(), vec![CLIENT_OPUS_PT]);

    // Subscribing to someone not in the room is refused by name.
    let (_pc2, sdp) = listener_offer(Arc::new(Heard::default())).await;
    let url = format!("{base}/rooms/{ROOM}/whep/0000000000000000");
    let r = whip::post(&client, &url, Some(&token), sdp).await;
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "unknown_participant");

    // One leaves: the place is free again.
    let gone = talkers.pop().unwrap();
    let r = client.delete(&gone.location).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(participants(&client, &gw, &token).await.len(), 15);
    talkers.push(whip::talk_at(&client, base, &format!("/rooms/{ROOM}/whip"), &token, 300).await);
    assert_eq!(participants(&client, &gw, &token).await.len(), 16);
    let _ = pc.close().await;
    gw.stop().await;
}
