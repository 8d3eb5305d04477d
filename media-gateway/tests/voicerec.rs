//! Talk recordings (issue 7 item 6): an operator talks a 1 kHz tone by WHIP to a camsim camera
//! whose own audio carries the 700 Hz marker, and at once to a camera without audio. Each talk
//! leaves one stored `audio` blob, signed by the gateway's own key: stereo Opus/WebM whose left
//! channel is the operator's tone and right channel the camera's marker (silence, said in the
//! report, for the camera without audio). An export of it verifies offline; a tampered one is
//! named.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bl_proto::token::MediaAction;
use camsim::{Audio, CameraConfig, Config as CamsimConfig, MARKER_TONE_HZ, Scenario, Stream};
use common::voice::{decode_stereo, reports};
use common::{NODE, TestGateway, gateway_key, token_for, whip};
use media_gateway::config::SourcesConfig;
use media_gateway::evidence::{EvidenceStore, Signer, StoredEvidence};
use media_gateway::live::source::Source;

const WITH_AUDIO: &str = "cam-rec";
const WITHOUT_AUDIO: &str = "cam-rec-mute";
const OPERATOR_HZ: u32 = 1000;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pull(url: String) -> Source {
    Source::Pull {
        url,
        sub_url: None,
        username: None,
        password: None,
    }
}

fn camera_audio_packets(metrics: &str, camera: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "bl_gateway_live_audio_packets_total{{camera=\"{camera}\",stream=\"main\"}} "
            ))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn talk_packets(gw: &TestGateway, camera: &str) -> u64 {
    let s: serde_json::Value = gw
        .client
        .get(gw.url(&format!("/talk/{camera}/status")))
        .bearer_auth(token_for(camera, MediaAction::View, NODE, 300))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    s["packetsIn"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_talk_is_one_gateway_signed_stereo_recording_with_the_operator_left_and_the_kitchen_right()
 {
    let scenario = Scenario::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-day.toml"
    )))
    .unwrap();
    let cams = camsim::serve(CamsimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![
            CameraConfig {
                audio: Some(Audio::Pcma),
                ..CameraConfig::new(WITH_AUDIO, scenario.clone())
            },
            CameraConfig::new(WITHOUT_AUDIO, scenario),
        ],
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.live.push_listen = Some(format!("127.0.0.1:{}", free_port()).parse().unwrap());
    config.sources = SourcesConfig::File(vec![
        (
            WITH_AUDIO.parse().unwrap(),
            pull(cams.url(WITH_AUDIO, Stream::Main)),
        ),
        (
            WITHOUT_AUDIO.parse().unwrap(),
            pull(cams.url(WITHOUT_AUDIO, Stream::Main)),
        ),
    ]);
    let evidence_dir = config.evidence_dir();
    let gw = TestGateway::start_with(config).await;

    let mut talkers = Vec::new();
    for camera in [WITH_AUDIO, WITHOUT_AUDIO] {
        let token = token_for(camera, MediaAction::Talk, NODE, 120);
        talkers.push(whip::talk(&gw.client, &gw.base, camera, &token, OPERATOR_HZ).await);
    }
    // Talk until the operator sent 4 s and the kitchen's audio ran 4 s (opened for the
    // recording: nobody watches).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let heard = camera_audio_packets(&gw.metrics().await, WITH_AUDIO);
        let sent = talk_packets(&gw, WITH_AUDIO)
            .await
            .min(talk_packets(&gw, WITHOUT_AUDIO).await);
        if heard > 200 && sent > 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kitchen packets {heard}, operator packets {sent}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for t in &talkers {
        let r = gw.client.delete(&t.location).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    let found = reports(dir.path(), 2).await;
    let report = |camera: &str| {
        found
            .iter()
            .find(|r| r.cameras[0].as_str() == camera)
            .unwrap_or_else(|| panic!("no recording of {camera}: {found:?}"))
            .clone()
    };
    let (heard, mute) = (report(WITH_AUDIO), report(WITHOUT_AUDIO));
    assert_eq!(heard.directions, ["center", "premises"], "{heard:?}");
    assert_eq!(heard.premises_note, None);
    assert_eq!(heard.talker, "operator-1");
    assert_eq!(heard.content_type, "audio/webm");
    assert!(heard.ended_at > heard.started_at);
    assert_eq!(mute.directions, ["center"], "{mute:?}");
    assert_eq!(
        mute.premises_note.as_deref(),
        Some("the camera has no audio")
    );

    // The stored blob: gateway-signed, readable with a view token of its camera (with Range).
    let view = token_for(WITH_AUDIO, MediaAction::View, NODE, 300);
    let meta: StoredEvidence = gw
        .client
        .get(gw.url(&format!("/evidence/{}/meta", heard.sha256)))
        .bearer_auth(&view)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta.signer, Signer::Gateway);
    assert_eq!(meta.meta.edge_id.as_str(), NODE);
    assert_eq!(meta.meta.size, heard.size);
    bl_proto::evidence::verify(&meta.meta, &meta.signature, &gateway_key().verifying_key())
        .expect("signed by the gateway's key");
    let other = token_for(WITHOUT_AUDIO, MediaAction::View, NODE, 300);
    let r = gw
        .client
        .get(gw.url(&format!("/evidence/{}", heard.sha256)))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "another camera's token, no bytes");
    let r = gw
        .client
        .get(gw.url(&format!("/evidence/{}", heard.sha256)))
        .bearer_auth(&view)
        .header("Range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        [0x1a, 0x45, 0xdf, 0xa3],
        "WebM (EBML) magic"
    );
    let bytes = gw
        .client
        .get(gw.url(&format!("/evidence/{}", heard.sha256)))
        .bearer_auth(&view)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert_eq!(bl_proto::evidence::sha256_hex(&bytes), heard.sha256);

    let (left, right) = tokio::task::spawn_blocking(move || decode_stereo(bytes))
        .await
        .unwrap();
    assert!(left.len() > 16_000 * 3, "{} samples", left.len());
    // The last seconds: both directions were flowing.
    let tail = |s: &[i16]| s[s.len() - 16_000 * 2..].to_vec();
    let (l, r) = (tail(&left), tail(&right));
    let marker = f64::from(MARKER_TONE_HZ);
    let op = f64::from(OPERATOR_HZ);
    assert!(
        camsim::tone::has_tone(&l, 16_000, op, 20.0),
        "left is the operator's tone: {:.0} at {op} Hz, {:.0} at {marker} Hz",
        camsim::tone::tone_power(&l, 16_000, op),
        camsim::tone::tone_power(&l, 16_000, marker)
    );
    assert!(
        camsim::tone::tone_power(&l, 16_000, op)
            > 20.0 * camsim::tone::tone_power(&l, 16_000, marker)
    );
    assert!(
        camsim::tone::has_tone(&r, 16_000, marker, 20.0),
        "right is the kitchen's marker: {:.0} at {marker} Hz, {:.0} at {op} Hz",
        camsim::tone::tone_power(&r, 16_000, marker),
        camsim::tone::tone_power(&r, 16_000, op)
    );
    gw.stop().await;
    drop(cams);

    // Exported with the gateway's key, it verifies offline; altered, it is named.
    let store = media_gateway::evidence::fs::FsStore::open(&evidence_dir)
        .await
        .unwrap();
    let out = dir.path().join("case");
    let manifest = media_gateway::evidence::export::export(
        &store as &dyn EvidenceStore,
        &media_gateway::keys::ConfigEdgeKeys::new(Vec::new()),
        &media_gateway::keyfile::PrivateKey::from_signing_key(gateway_key()),
        &NODE.parse().unwrap(),
        media_gateway::evidence::export::ExportRequest {
            case: "talk-1".into(),
            created_by: "test".into(),
            blobs: vec![heard.sha256.clone(), mute.sha256.clone()],
            out: out.clone(),
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(manifest.blobs.iter().all(|b| b.signer == Signer::Gateway));
    let trusted = gateway_key().verifying_key();
    let report = media_gateway::evidence::verify::verify(&out, Some(&trusted));
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.blobs_ok, 2);
    let file = out.join(&manifest.blobs[0].file);
    let mut altered = std::fs::read(&file).unwrap();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x55;
    std::fs::write(&file, altered).unwrap();
    let report = media_gateway::evidence::verify::verify(&out, Some(&trusted));
    let named: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(
        named.iter().any(|p| p.contains(&manifest.blobs[0].file)),
        "{named:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broadcast_is_one_recording_of_the_operators_voice_listing_its_cameras() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.live.push_listen = Some(format!("127.0.0.1:{}", free_port()).parse().unwrap());
    let gw = TestGateway::start_with(config).await;
    let broadcast = uuid::Uuid::now_v7();
    let cameras: Vec<bl_proto::CameraId> = ["cam-b1", "cam-b2", "cam-b3"]
        .iter()
        .map(|c| c.parse().unwrap())
        .collect();
    let now = chrono::Utc::now().timestamp();
    let claims = bl_proto::broadcast_token::BroadcastClaims {
        sub: "operator-7".into(),
        broadcast,
        cameras: cameras.clone(),
        node: NODE.parse().unwrap(),
        iat: now,
        exp: now + 120,
        jti: "b-1".into(),
    };
    let token = bl_proto::broadcast_token::sign(&claims, &common::dispatch_key());
    let talker = whip::talk_at(
        &gw.client,
        &gw.base,
        &format!("/whip-broadcast/{broadcast}"),
        &token,
        OPERATOR_HZ,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while talk_packets(&gw, "cam-b3").await < 150 {
        assert!(
            Instant::now() < deadline,
            "the broadcast's audio did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = gw.client.delete(&talker.location).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    let found = reports(dir.path(), 1).await;
    // One recording for the broadcast, none per camera.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let found_later = reports(dir.path(), 1).await;
    assert_eq!(found_later.len(), 1, "{found_later:?}");
    let rec = &found[0];
    assert_eq!(rec.kind, media_gateway::voicerec::VoiceKind::Broadcast);
    assert_eq!(rec.broadcast, Some(broadcast));
    assert_eq!(rec.cameras, cameras);
    assert_eq!(rec.talker, "operator-7");
    assert_eq!(rec.directions, ["center"]);
    assert_eq!(rec.premises_note, None);

    let view = token_for("cam-b1", MediaAction::View, NODE, 300);
    let bytes = gw
        .client
        .get(gw.url(&format!("/evidence/{}", rec.sha256)))
        .bearer_auth(&view)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let (left, right) = tokio::task::spawn_blocking(move || decode_stereo(bytes))
        .await
        .unwrap();
    let tail = |s: &[i16]| s[s.len() - 16_000..].to_vec();
    let (l, r) = (tail(&left), tail(&right));
    assert!(
        camsim::tone::has_tone(&l, 16_000, f64::from(OPERATOR_HZ), 20.0),
        "the operator's voice, left"
    );
    assert!(
        r.iter().all(|s| s.unsigned_abs() < 64),
        "the right channel of a broadcast is silence"
    );
    gw.stop().await;
}
