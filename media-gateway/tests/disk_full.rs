//! A full disk (DESIGN §7): the upload is refused with 507, nothing partial is kept, and the gateway
//! keeps serving. Uses a 256 KiB tmpfs, which needs root; without it the test says why and skips.

mod common;

use bl_proto::evidence::sha256_hex;
use common::tmpfs::Tmpfs;
use common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn a_full_disk_answers_507_keeps_nothing_partial_and_later_uploads_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let mount_point = dir.path().join("small");
    std::fs::create_dir(&mount_point).unwrap();
    let _tmpfs = match Tmpfs::mount(&mount_point, "256k") {
        Ok(t) => t,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a small tmpfs to fill ({why}); needs root");
            return;
        }
    };
    let gw = TestGateway::start_with(config(&mount_point)).await;

    let big = bytes(1 << 20, 1);
    let r = gw.upload(&big).await;
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "storage_full");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("full"),
        "{v}"
    );
    assert_eq!(
        files_under(&mount_point.join("evidence")),
        Vec::<String>::new(),
        "no partial blob or temp file"
    );
    let r = gw
        .get(&format!("/evidence/{}", sha256_hex(&big)), None)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("bl_gateway_evidence_rejected_total{reason=\"storage_full\"} 1\n"),
        "{metrics}"
    );

    let small = bytes(10_000, 2);
    assert_eq!(gw.upload(&small).await.status(), StatusCode::CREATED);
    let r = gw
        .get(&format!("/evidence/{}", sha256_hex(&small)), None)
        .await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), small.as_slice());
    gw.stop().await;
}
