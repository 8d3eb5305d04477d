//! The evidence store's contract, one test body run against both backends: the filesystem store and
//! the S3 store on a local S3-compatible server (moto). Content addressed, immutable, idempotent,
//! the first metadata kept, refused uploads leave nothing, concurrent uploads store once, ranges read
//! exactly (across multipart part boundaries too); and the gateway's HTTP API on an S3 bucket.

mod common;

use std::sync::Arc;

use bl_proto::evidence::{EvidenceMeta, sha256_hex};
use common::s3::S3Server;
use common::*;
use futures::StreamExt as _;
use media_gateway::evidence::backend::EvidenceBackend;
use media_gateway::evidence::fs::FsStore;
use media_gateway::evidence::s3::S3Store;
use media_gateway::evidence::{BodyStream, EvidenceStore, Put, StoreError};
use reqwest::StatusCode;

fn body_of(bytes: &[u8]) -> BodyStream<'static> {
    let chunks: Vec<_> = bytes
        .chunks(64 * 1024)
        .map(|c| Ok(axum::body::Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

async fn put(
    store: &dyn EvidenceStore,
    meta: &EvidenceMeta,
    bytes: &[u8],
) -> Result<Put, StoreError> {
    store
        .put(
            meta.clone(),
            "sig".into(),
            bl_proto::time::now(),
            body_of(bytes),
        )
        .await
}

async fn read(
    store: &dyn EvidenceStore,
    meta: &EvidenceMeta,
    range: std::ops::Range<u64>,
) -> Vec<u8> {
    let mut s = store.read(&meta.sha256, range).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// The one test body both backends must pass.
async fn contract(store: Arc<dyn EvidenceStore>) {
    let store = store.as_ref();
    // Stored once, read back whole and in ranges.
    let body = bytes(100_000, 1);
    let meta = meta_for(&body);
    assert!(
        store.get(&meta.sha256).await.unwrap().is_none(),
        "nothing before the upload"
    );
    let Put::Created(first) = put(store, &meta, &body).await.unwrap() else {
        panic!("the first upload creates");
    };
    assert_eq!(
        store.get(&meta.sha256).await.unwrap().as_ref(),
        Some(&first)
    );
    assert_eq!(read(store, &meta, 0..100_000).await, body);
    assert_eq!(read(store, &meta, 4000..5000).await, &body[4000..5000]);
    assert_eq!(read(store, &meta, 99_990..100_000).await, &body[99_990..]);
    assert!(read(store, &meta, 10..10).await.is_empty());

    // Idempotent: the same bytes again, even with other (validly signed) metadata, keep the first
    // record.
    let mut other = meta.clone();
    other.camera_id = "cam-other".parse().unwrap();
    assert_eq!(
        put(store, &other, &body).await.unwrap(),
        Put::Existing(first.clone())
    );
    assert_eq!(store.get(&meta.sha256).await.unwrap(), Some(first));

    // Refused uploads leave nothing; the right bytes are still accepted afterwards.
    let right = bytes(5000, 2);
    let meta2 = meta_for(&right);
    let e = put(store, &meta2, &bytes(5000, 3)).await.unwrap_err();
    assert!(matches!(e, StoreError::HashMismatch { .. }), "{e}");
    let e = put(store, &meta2, &right[..4000]).await.unwrap_err();
    assert!(matches!(e, StoreError::SizeMismatch { .. }), "{e}");
    let mut longer = right.clone();
    longer.push(0);
    let e = put(store, &meta2, &longer).await.unwrap_err();
    assert!(matches!(e, StoreError::SizeMismatch { .. }), "{e}");
    assert!(store.get(&meta2.sha256).await.unwrap().is_none());
    assert!(matches!(
        put(store, &meta2, &right).await.unwrap(),
        Put::Created(_)
    ));

    // Concurrent uploads of one blob: exactly one creates, all see the same record.
    let same = bytes(300_000, 4);
    let meta3 = meta_for(&same);
    let results = futures::future::join_all((0..4).map(|_| put(store, &meta3, &same))).await;
    let records: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    let created = records
        .iter()
        .filter(|p| matches!(p, Put::Created(_)))
        .count();
    assert_eq!(created, 1, "{records:?}");
    let stored = store.get(&meta3.sha256).await.unwrap().unwrap();
    for p in records {
        let (Put::Created(r) | Put::Existing(r)) = p;
        assert_eq!(r, stored);
    }
    assert_eq!(read(store, &meta3, 0..300_000).await, same);

    // A blob larger than one upload part (8 MiB on S3): a range across the part boundary.
    let big = bytes(9 << 20, 5);
    let meta4 = meta_for(&big);
    assert!(matches!(
        put(store, &meta4, &big).await.unwrap(),
        Put::Created(_)
    ));
    let edge = (8u64 << 20) - 1000..(8u64 << 20) + 1000;
    assert_eq!(
        read(store, &meta4, edge.clone()).await,
        &big[edge.start as usize..edge.end as usize]
    );
    assert_eq!(
        sha256_hex(&read(store, &meta4, 0..big.len() as u64).await),
        meta4.sha256
    );
}

#[tokio::test]
async fn the_filesystem_store_keeps_the_evidence_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(Arc::new(FsStore::open(dir.path()).await.unwrap())).await;
}

#[tokio::test]
async fn the_s3_store_keeps_the_evidence_contract() {
    let Some(s3) = S3Server::start("evidence").await else {
        return;
    };
    let store = S3Store::open(&s3.settings("evidence", "gw-1/"))
        .await
        .unwrap();
    contract(Arc::new(store)).await;
}

#[tokio::test]
async fn an_s3_store_with_a_missing_bucket_fails_at_start_naming_it() {
    let Some(s3) = S3Server::start("evidence").await else {
        return;
    };
    let e = S3Store::open(&s3.settings("no-such-bucket", ""))
        .await
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("reaching the evidence bucket"),
        "{e}"
    );
}

#[tokio::test]
async fn a_gateway_on_s3_takes_signed_uploads_and_serves_ranges() {
    let Some(s3) = S3Server::start("evidence").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.evidence_store = EvidenceBackend::S3(s3.settings("evidence", ""));
    let gw = TestGateway::start_with(config).await;
    let body = bytes(50_000, 7);
    assert_eq!(gw.upload(&body).await.status(), StatusCode::CREATED);
    assert_eq!(gw.upload(&body).await.status(), StatusCode::OK);
    let path = format!("/evidence/{}", sha256_hex(&body));
    let r = gw.get(&path, Some("bytes=1000-1999")).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 1000-1999/50000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[1000..2000]);
    let meta = gw.get(&format!("{path}/meta"), None).await;
    assert_eq!(meta.status(), StatusCode::OK);
    let meta: serde_json::Value = meta.json().await.unwrap();
    assert_eq!(meta["meta"]["size"], 50_000);
    // Nothing landed on the local disk.
    assert!(files_under(&dir.path().join("evidence")).is_empty());
    gw.stop().await;
}
