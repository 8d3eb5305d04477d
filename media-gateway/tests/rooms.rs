//! Consult rooms through the gateway with webrtc-rs clients standing in for browsers: sixteen
//! participants send a tone each, a seventeenth is refused, and a listener subscribed to one of
//! them receives that participant's Opus packets as sent (forwarded, not transcoded). In an
//! incident's voice channel only the holder of a floor grant is heard, and a newer grant (a
//! supervisor's take-over) silences the older one at once. An evidence clip from the store plays
//! into a room as a participant whose H.264 a listener receives as the clip has it. Push-to-talk
//! transmissions are recorded one by one; a consult room recorded on request holds everyone.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bl_proto::floor_token::{self, FloorClaims};
use bl_proto::token::{self, MediaAction, MediaClaims};
use common::whip::{self, CLIENT_OPUS_PT};
use common::{NODE, TestGateway, dispatch_key, error_code, token_for, voice};
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MediaEngine,
};
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
    offer_to_receive(heard, RtpCodecKind::Audio).await
}

/// The payload type this client offers H.264 under (the gateway registers 102).
const CLIENT_H264_PT: u8 = 98;

/// A receive-only offer of `kind`: Opus, or H.264, under the client's own payload types.
async fn offer_to_receive(
    heard: Arc<Heard>,
    kind: RtpCodecKind,
) -> (Arc<dyn PeerConnection>, String) {
    let mut media = MediaEngine::default();
    let (rtp_codec, payload_type) = if kind == RtpCodecKind::Audio {
        let opus = RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
            rtcp_feedback: vec![],
        };
        (opus, CLIENT_OPUS_PT)
    } else {
        let h264 = RTCRtpCodec {
            mime_type: MIME_TYPE_H264.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                .into(),
            rtcp_feedback: vec![],
        };
        (h264, CLIENT_H264_PT)
    };
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec,
                payload_type,
            },
            kind,
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
        kind,
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

const VOICE: &str = "voice-0190aa00bb";

/// A room token for `sub` (dispatch writes `user:{username}`).
fn room_token(room: &str, sub: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = MediaClaims {
        sub: sub.into(),
        camera: room.parse().unwrap(),
        action: MediaAction::Room,
        node: NODE.parse().unwrap(),
        stream: None,
        iat: now - 5,
        exp: now + 300,
        jti: uuid::Uuid::now_v7().to_string(),
    };
    token::sign(&claims, &dispatch_key())
}

/// A floor grant as dispatch signs it for holding `session`.
fn floor_grant(room: &str, sub: &str, session: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = FloorClaims {
        sub: sub.into(),
        room: room.parse().unwrap(),
        floor_session: session,
        node: NODE.parse().unwrap(),
        iat: now - 5,
        exp: now + 120,
        jti: uuid::Uuid::now_v7().to_string(),
    };
    floor_token::sign(&claims, &dispatch_key())
}

/// A listener subscribed to participant `id` of `room`.
async fn listen(
    client: &reqwest::Client,
    base: &str,
    room: &str,
    id: &str,
    token: &str,
) -> (Arc<dyn PeerConnection>, Arc<Heard>) {
    let heard = Arc::new(Heard::default());
    let (pc, sdp) = listener_offer(heard.clone()).await;
    let r = whip::post(
        client,
        &format!("{base}/rooms/{room}/whep/{id}"),
        Some(token),
        sdp,
    )
    .await;
    assert_eq!(r.status(), 201);
    pc.set_remote_description(RTCSessionDescription::answer(r.text().await.unwrap()).unwrap())
        .await
        .unwrap();
    (pc, heard)
}

/// Waits (generously: a loaded machine) until `heard` passes `count` packets.
async fn until_heard(heard: &Heard, count: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while heard.packets.load(Relaxed) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        heard.packets.load(Relaxed) >= count,
        "{what}: {} packets",
        heard.packets.load(Relaxed)
    );
}

async fn put_floor(
    client: &reqwest::Client,
    talker: &whip::Talker,
    grant: &str,
) -> reqwest::Response {
    client
        .post(format!("{}/floor", talker.location))
        .bearer_auth(grant)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_voice_channel_only_the_floor_holder_is_forwarded_and_a_takeover_silences_the_other() {
    let gw = TestGateway::start().await;
    let client = reqwest::Client::new();
    let base = gw.url("");
    let base = base.trim_end_matches('/');
    let (field, supervisor) = ("user:field1", "user:super1");
    let path = format!("/rooms/{VOICE}/whip");
    let a = whip::talk_at(&client, base, &path, &room_token(VOICE, field), 440).await;
    let b = whip::talk_at(&client, base, &path, &room_token(VOICE, supervisor), 880).await;
    let op = room_token(VOICE, "user:op1");
    let id_of = |t: &whip::Talker| t.location.rsplit('/').next().unwrap().to_owned();
    let (_pa, heard_a) = listen(&client, base, VOICE, &id_of(&a), &op).await;
    let (_pb, heard_b) = listen(&client, base, VOICE, &id_of(&b), &op).await;

    // Nobody holds the floor: both send, neither is forwarded. The field user takes the floor.
    let r = put_floor(&client, &a, &floor_grant(VOICE, field, 7)).await;
    assert_eq!(r.status(), 201);
    until_heard(&heard_a, 50, "the holder's listener").await;
    assert_eq!(
        heard_b.packets.load(Relaxed),
        0,
        "a non-holder was forwarded"
    );

    // A grant is bound to its talker, and a consult room has no floor.
    let r = put_floor(&client, &b, &floor_grant(VOICE, field, 8)).await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "floor_not_yours");
    let v: serde_json::Value = client
        .get(gw.url(&format!("/rooms/{VOICE}")))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["floor"]["participant"], id_of(&a));
    assert_eq!(v["floor"]["floorSession"], 7);

    // The supervisor takes over (a newer holding): the field user is silenced at once.
    let r = put_floor(&client, &b, &floor_grant(VOICE, supervisor, 8)).await;
    assert_eq!(r.status(), 201);
    until_heard(&heard_b, 50, "the supervisor's listener").await;
    let a_then = heard_a.packets.load(Relaxed);
    until_heard(
        &heard_b,
        heard_b.packets.load(Relaxed) + 50,
        "the supervisor's listener",
    )
    .await;
    // A packet or two may have been in flight at the take-over; a second of audio is 50.
    assert!(
        heard_a.packets.load(Relaxed) <= a_then + 2,
        "the superseded talker was still forwarded: {} after {a_then}",
        heard_a.packets.load(Relaxed)
    );
    // Their old grant does not bring them back.
    let r = put_floor(&client, &a, &floor_grant(VOICE, field, 7)).await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "floor_superseded");

    // The supervisor lets go: nobody is forwarded any more.
    let r = client
        .delete(format!("{}/floor", b.location))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let b_then = heard_b.packets.load(Relaxed);
    // The field user asks again (a new holding) and is heard; the supervisor no longer.
    let r = put_floor(&client, &a, &floor_grant(VOICE, field, 9)).await;
    assert_eq!(r.status(), 201);
    until_heard(
        &heard_a,
        heard_a.packets.load(Relaxed) + 50,
        "the field user again",
    )
    .await;
    assert!(heard_b.packets.load(Relaxed) <= b_then + 2);

    // In a consult room everyone is heard and a floor grant means nothing.
    let c = whip::talk_at(
        &client,
        base,
        &format!("/rooms/{ROOM}/whip"),
        &room_token(ROOM, field),
        500,
    )
    .await;
    let r = put_floor(&client, &c, &floor_grant(ROOM, field, 10)).await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "not_push_to_talk");
    drop((a, b, c));
    gw.stop().await;
}

/// The talker's audio in a stored push-to-talk recording (its left channel), fetched as a viewer
/// of the room would.
async fn recorded_voice(gw: &TestGateway, sha256: &str) -> Vec<i16> {
    let r = gw
        .client
        .get(gw.url(&format!("/evidence/{sha256}")))
        .bearer_auth(token_for(VOICE, MediaAction::View, NODE, 300))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap().to_vec();
    let (left, right) = tokio::task::spawn_blocking(move || voice::decode_stereo(bytes))
        .await
        .unwrap();
    assert!(
        right.iter().all(|s| s.unsigned_abs() < 64),
        "the right channel is silence"
    );
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_push_to_talk_transmission_is_one_recording_of_its_talkers_voice() {
    let gw = TestGateway::start().await;
    let client = reqwest::Client::new();
    let base = gw.url("");
    let base = base.trim_end_matches('/');
    let (field, supervisor) = ("user:field1", "user:super1");
    let path = format!("/rooms/{VOICE}/whip");
    let a = whip::talk_at(&client, base, &path, &room_token(VOICE, field), 440).await;
    let b = whip::talk_at(&client, base, &path, &room_token(VOICE, supervisor), 880).await;
    let op = room_token(VOICE, "user:op1");
    let id_of = |t: &whip::Talker| t.location.rsplit('/').next().unwrap().to_owned();
    let (_pa, heard_a) = listen(&client, base, VOICE, &id_of(&a), &op).await;
    let (_pb, heard_b) = listen(&client, base, VOICE, &id_of(&b), &op).await;

    // The field user talks for about two seconds (100 packets forwarded), then the supervisor
    // takes over: one transmission ends and another starts. The supervisor lets go.
    assert_eq!(
        put_floor(&client, &a, &floor_grant(VOICE, field, 7))
            .await
            .status(),
        201
    );
    until_heard(&heard_a, 100, "the field user").await;
    assert_eq!(
        put_floor(&client, &b, &floor_grant(VOICE, supervisor, 8))
            .await
            .status(),
        201
    );
    until_heard(&heard_b, 100, "the supervisor").await;
    let r = client
        .delete(format!("{}/floor", b.location))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let mut found = voice::reports(&gw.data_dir, 2).await;
    found.sort_by_key(|r| r.started_at);
    assert_eq!(found.len(), 2, "{found:?}");
    for (rec, talker) in found.iter().zip([field, supervisor]) {
        assert_eq!(rec.kind, media_gateway::voicerec::VoiceKind::Ptt);
        assert_eq!(rec.talker, talker);
        assert_eq!(rec.cameras, [VOICE.parse::<bl_proto::CameraId>().unwrap()]);
        assert_eq!(rec.directions, ["center"]);
        assert!(
            rec.ended_at - rec.started_at >= chrono::TimeDelta::seconds(1),
            "{rec:?}"
        );
    }
    assert!(found[0].ended_at <= found[1].started_at + chrono::TimeDelta::seconds(1));
    // Each recording holds its own talker's tone, not the other's.
    for (rec, (own, other)) in found.iter().zip([(440.0, 880.0), (880.0, 440.0)]) {
        let left = recorded_voice(&gw, rec.sha256.as_str()).await;
        assert!(left.len() > 16_000, "{} samples", left.len());
        let power = |f| camsim::tone::tone_power(&left, 16_000, f);
        assert!(
            power(own) > 20.0 * power(other),
            "{own} Hz: {} vs {}",
            power(own),
            power(other)
        );
    }

    // A tap of the button (granted and let go at once) is not kept.
    assert_eq!(
        put_floor(&client, &a, &floor_grant(VOICE, field, 9))
            .await
            .status(),
        201
    );
    let r = client
        .delete(format!("{}/floor", a.location))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(voice::reports(&gw.data_dir, 2).await.len(), 2);
    drop((a, b));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consult_room_recorded_on_request_holds_every_participants_voice() {
    let gw = TestGateway::start().await;
    let client = reqwest::Client::new();
    let base = gw.url("");
    let base = base.trim_end_matches('/');
    let room = "room-consult-rec";
    let path = format!("/rooms/{room}/whip");
    let record = token_for(room, MediaAction::Record, NODE, 300);
    let recording = gw.url(&format!("/rooms/{room}/recording"));
    // Nobody in the room: nothing to record.
    let r = client
        .post(&recording)
        .bearer_auth(&record)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "room_empty");

    let a = whip::talk_at(&client, base, &path, &room_token(room, "user:op1"), 440).await;
    let b = whip::talk_at(&client, base, &path, &room_token(room, "guest:王专家"), 880).await;
    let op = room_token(room, "user:op1");
    let id_of = |t: &whip::Talker| t.location.rsplit('/').next().unwrap().to_owned();
    let (_pa, heard_a) = listen(&client, base, room, &id_of(&a), &op).await;
    let (_pb, heard_b) = listen(&client, base, room, &id_of(&b), &op).await;
    until_heard(&heard_a, 10, "the operator").await;
    until_heard(&heard_b, 10, "the expert").await;

    // A member's room token does not record; a record token of the room does, once.
    let r = client
        .post(&recording)
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .post(&recording)
        .bearer_auth(&record)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(&recording)
        .bearer_auth(&record)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = client
        .get(gw.url(&format!("/rooms/{room}")))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["recording"], true);
    // Two seconds of both talking (100 packets each forwarded from now on).
    until_heard(
        &heard_a,
        heard_a.packets.load(Relaxed) + 100,
        "the operator",
    )
    .await;
    until_heard(&heard_b, heard_b.packets.load(Relaxed) + 100, "the expert").await;
    let r = client
        .delete(&recording)
        .bearer_auth(&record)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = client
        .delete(&recording)
        .bearer_auth(&record)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "not_recording");

    let found = voice::reports(&gw.data_dir, 1).await;
    let rec = &found[0];
    assert_eq!(rec.kind, media_gateway::voicerec::VoiceKind::Room);
    // Who asked: the record token's subject.
    assert_eq!(rec.talker, "operator-1");
    assert_eq!(rec.cameras, [room.parse::<bl_proto::CameraId>().unwrap()]);
    let r = gw
        .client
        .get(gw.url(&format!("/evidence/{}", rec.sha256)))
        .bearer_auth(token_for(room, MediaAction::View, NODE, 300))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap().to_vec();
    let (left, _) = tokio::task::spawn_blocking(move || voice::decode_stereo(bytes))
        .await
        .unwrap();
    let power = |f| camsim::tone::tone_power(&left, 16_000, f);
    let floor = power(650.0);
    assert!(
        power(440.0) > 20.0 * floor && power(880.0) > 20.0 * floor,
        "both voices: 440 Hz {:.0}, 880 Hz {:.0}, 650 Hz {:.0}",
        power(440.0),
        power(880.0),
        floor
    );
    drop((a, b));
    gw.stop().await;
}

/// An MP4 of `secs` seconds of H.264 test video, as an edge's clip would be.
fn mp4_clip(secs: u32) -> Vec<u8> {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    let p = gst::parse::launch(&format!(
        "videotestsrc num-buffers={} ! video/x-raw,width=320,height=240,framerate=15/1 ! \
         x264enc key-int-max=15 tune=zerolatency speed-preset=ultrafast ! \
         video/x-h264,profile=constrained-baseline ! h264parse ! mp4mux ! filesink location={}",
        secs * 15,
        path.display()
    ))
    .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    for m in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match m.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => {}
        }
    }
    p.set_state(gst::State::Null).unwrap();
    std::fs::read(path).unwrap()
}

fn clip_grant(room: &str, sha256: &str, step: bl_proto::clip_token::ClipStep) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = bl_proto::clip_token::ClipClaims {
        sub: "user:op1".into(),
        room: room.parse().unwrap(),
        sha256: sha256.parse().unwrap(),
        step,
        node: NODE.parse().unwrap(),
        iat: now - 5,
        exp: now + 60,
        jti: uuid::Uuid::now_v7().to_string(),
    };
    bl_proto::clip_token::sign(&claims, &dispatch_key())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evidence_clip_plays_into_a_room_as_h264_pauses_resumes_and_stops() {
    use bl_proto::clip_token::ClipStep::{Pause, Play, Resume, Stop};
    let gw = TestGateway::start().await;
    let client = reqwest::Client::new();
    let base = gw.url("");
    let base = base.trim_end_matches('/');
    let room = "room-clip-1";
    let clip = mp4_clip(20);
    let r = gw.upload(&clip).await;
    assert!(r.status().is_success(), "{}", r.status());
    let sha = bl_proto::evidence::sha256_hex(&clip);
    let _member = whip::talk_at(
        &client,
        base,
        &format!("/rooms/{room}/whip"),
        &room_token(room, "user:op1"),
        600,
    )
    .await;
    let post_clip = |grant: String| {
        client
            .post(format!("{base}/rooms/{room}/clip"))
            .bearer_auth(grant)
            .send()
    };

    // A grant for another room does not play here.
    let r = client
        .post(format!("{base}/rooms/{room}/clip"))
        .bearer_auth(clip_grant("room-other", sha.as_str(), Play))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "wrong_room");

    let r = post_clip(clip_grant(room, sha.as_str(), Play))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    let id = v["participant"].as_str().unwrap().to_owned();
    let token = room_token(room, "user:op2");
    let listed: serde_json::Value = client
        .get(gw.url(&format!("/rooms/{room}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let clip_sub = format!("clip:{}", sha.as_str());
    assert!(
        listed["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id && p["sub"] == clip_sub),
        "{listed}"
    );

    // A listener receives the clip's H.264 as it is stored, under its own payload type.
    let heard = Arc::new(Heard::default());
    let (pc, sdp) = offer_to_receive(heard.clone(), RtpCodecKind::Video).await;
    let r = whip::post(
        &client,
        &format!("{base}/rooms/{room}/whep/{id}"),
        Some(&token),
        sdp,
    )
    .await;
    assert_eq!(r.status(), 201);
    let answer = r.text().await.unwrap();
    assert!(answer.contains("H264/90000"), "{answer}");
    pc.set_remote_description(RTCSessionDescription::answer(answer).unwrap())
        .await
        .unwrap();
    until_heard(&heard, 40, "the clip's listener").await;
    assert_eq!(*heard.payload_types.lock().unwrap(), vec![CLIENT_H264_PT]);

    // Paused, nothing more arrives (a packet or two in flight); resumed, it goes on.
    assert_eq!(
        post_clip(clip_grant(room, sha.as_str(), Pause))
            .await
            .unwrap()
            .status(),
        200
    );
    let paused = heard.packets.load(Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        heard.packets.load(Relaxed) <= paused + 5,
        "{} after {paused}",
        heard.packets.load(Relaxed)
    );
    assert_eq!(
        post_clip(clip_grant(room, sha.as_str(), Resume))
            .await
            .unwrap()
            .status(),
        200
    );
    until_heard(&heard, heard.packets.load(Relaxed) + 20, "the resumed clip").await;

    // Stopped, the clip leaves the room; another stop finds none.
    assert_eq!(
        post_clip(clip_grant(room, sha.as_str(), Stop))
            .await
            .unwrap()
            .status(),
        204
    );
    let r = post_clip(clip_grant(room, sha.as_str(), Stop))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "no_clip");
    let _ = pc.close().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_connections_count_toward_the_gateways_session_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.live.max_sessions = 2;
    let gw = TestGateway::start_with(config).await;
    let client = reqwest::Client::new();
    let base = gw.url("");
    let base = base.trim_end_matches('/');
    let path = format!("/rooms/{ROOM}/whip");
    let token = room_token(ROOM, "user:op1");
    let _a = whip::talk_at(&client, base, &path, &token, 300).await;
    let _b = whip::talk_at(&client, base, &path, &token, 350).await;
    let (_pc, _track, _ssrc, sdp) = whip::offer().await;
    let r = whip::post(&client, &format!("{base}{path}"), Some(&token), sdp).await;
    assert_eq!(r.status(), 503);
    assert_eq!(error_code(r).await, "too_many_sessions");
    gw.stop().await;
}
