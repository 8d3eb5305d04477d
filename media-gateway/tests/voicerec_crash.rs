//! A talk recording survives a gateway that stops in the middle of it: what a crash leaves on disk
//! (the folder copied while the recording runs) is kept at the next start as a gateway-signed
//! `audio` blob of the operator's voice so far, reported with its end marked as missing; leftovers
//! that are not recordings are cleared.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::gateway_key;
use common::voice::{decode_stereo, reports};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use media_gateway::evidence::fs::FsStore;
use media_gateway::evidence::{EvidenceStore, Signer};
use media_gateway::keyfile::PrivateKey;
use media_gateway::voicerec::report::Reporter;
use media_gateway::voicerec::{VoiceKind, VoiceMeta, VoiceRecordings, unfinished};

const OPERATOR_HZ: u32 = 1000;

/// `secs` of a tone as Opus RTP packets.
fn opus_tone(secs: u32) -> Vec<Vec<u8>> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc freq={OPERATOR_HZ} volume=0.5 samplesperbuffer=960 num-buffers={} ! \
         audio/x-raw,rate=48000,channels=1 ! opusenc ! rtpopuspay ! appsink name=rtp sync=false",
        secs * 50
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("rtp")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut packets = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(5)) {
        packets.push(sample.buffer().unwrap().map_readable().unwrap().to_vec());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    packets
}

async fn gateway_recordings(data: &Path) -> (Arc<VoiceRecordings>, Arc<FsStore>) {
    let store = Arc::new(FsStore::open(&data.join("evidence")).await.unwrap());
    let recordings = Arc::new(VoiceRecordings::new(
        data,
        store.clone(),
        PrivateKey::from_signing_key(gateway_key()),
        common::NODE.parse().unwrap(),
        Arc::new(Reporter::new(data, None)),
    ));
    (recordings, store)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_cut_short_by_a_crash_is_kept_at_the_next_start_with_its_end_marked_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (running, crashed) = (dir.path().join("running"), dir.path().join("crashed"));
    let (recordings, _) = gateway_recordings(&running).await;
    let voice = recordings
        .start(VoiceMeta {
            kind: VoiceKind::Talk,
            talker: "op-7".into(),
            cameras: vec!["cam-1".parse().unwrap()],
            broadcast: None,
            premises: true,
        })
        .expect("the recording starts");
    for packet in opus_tone(3) {
        voice.push_center(&packet);
    }
    // The mixer writes as wall-clock time passes; then the "crash": the disk as it is now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    copy_dir(&running.join("voicerec/tmp"), &crashed.join("voicerec/tmp"));
    voice.finish().await;
    let tmp = crashed.join("voicerec/tmp");
    // Leftovers that are not recordings: a recording without its note (being thrown away), a
    // note without its recording, a half-written note.
    std::fs::write(tmp.join("0190-orphan.webm"), b"\x1a\x45\xdf\xa3").unwrap();
    std::fs::write(tmp.join("0190-lonely.json"), b"{}").unwrap();
    std::fs::write(tmp.join(".0190-half.json.tmp"), b"{").unwrap();

    let (restarted, store) = gateway_recordings(&crashed).await;
    restarted.recover_unfinished();
    let report = reports(&crashed, 1).await.remove(0);
    assert_eq!(report.kind, VoiceKind::Talk);
    assert_eq!(report.talker, "op-7");
    assert_eq!(report.cameras, vec!["cam-1".parse().unwrap()]);
    assert_eq!(report.directions, ["center"]);
    assert_eq!(report.premises_note.as_deref(), Some(unfinished::CUT_SHORT));
    assert!(report.ended_at > report.started_at, "{report:?}");

    let stored = store.get(&report.sha256).await.unwrap().expect("stored");
    assert_eq!(stored.signer, Signer::Gateway);
    let bytes = {
        use futures::TryStreamExt as _;
        let chunks: Vec<bytes::Bytes> = store
            .read(&report.sha256, 0..stored.meta.size)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        chunks.concat()
    };
    let (left, _) = decode_stereo(bytes);
    assert!(
        left.len() > 16_000,
        "at least a second of the operator's voice survives: {} samples",
        left.len()
    );
    let power = camsim::tone::tone_power(&left, 16_000, f64::from(OPERATOR_HZ));
    assert!(power > 1e6, "the operator's tone is in it: {power:.0}");

    // Everything left behind is dealt with: nothing remains in tmp/.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left in tmp/: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
