//! Case export and offline verify, through the real binary: a config file, a running gateway that
//! receives the uploads, `media-gateway export`, then `media-gateway verify` on the folder as it is,
//! and after each kind of tampering.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bl_proto::evidence::{self, EvidenceKind, sha256_hex};
use common::*;
use reqwest::StatusCode;

const BIN: &str = env!("CARGO_BIN_EXE_media-gateway");

struct Case {
    _dir: tempfile::TempDir,
    root: PathBuf,
    export: PathBuf,
    blobs: Vec<Vec<u8>>,
}

/// Writes a config file with keys in files, uploads a clip and a snapshot through a gateway started
/// from that file, and exports both with the CLI.
async fn exported_case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    std::fs::write(
        root.join("token.pub"),
        hex::encode(dispatch_key().verifying_key().as_bytes()),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("keygen")
        .arg(root.join("gateway.key"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let edge_pub = media_gateway::keyfile::encode_public(&edge_key().verifying_key());
    std::fs::write(
        root.join("gw.toml"),
        format!(
            "node_id = \"{NODE}\"\ndata_dir = \"data\"\ntoken_public_key_file = \"token.pub\"\n\
             signing_key_file = \"gateway.key\"\n\n[[edge]]\nid = \"{EDGE}\"\npublic_key = \"{edge_pub}\"\n"
        ),
    )
    .unwrap();
    let config = media_gateway::config::load(&root.join("gw.toml")).unwrap();
    let gw = TestGateway::start_with(config).await;
    let clip = bytes(50_000, 1);
    assert_eq!(gw.upload(&clip).await.status(), StatusCode::CREATED);
    let snapshot = bytes(3_000, 2);
    let mut meta = meta_for(&snapshot);
    meta.kind = EvidenceKind::Snapshot;
    meta.content_type = "image/jpeg".into();
    let sig = evidence::sign(&meta, &edge_key());
    let r = gw.put_signed(&meta, &sig, snapshot.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    gw.stop().await;

    let export = root.join("export");
    let out = Command::new(BIN)
        .args(["export", "--config"])
        .arg(root.join("gw.toml"))
        .arg("--out")
        .arg(&export)
        .args(["--case", "INC-2025-0042", "--by", "operator-7"])
        .args(["--blob", sha256_hex(&clip).as_str()])
        .args(["--blob", sha256_hex(&snapshot).as_str()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    Case {
        _dir: dir,
        root,
        export,
        blobs: vec![clip, snapshot],
    }
}

fn verify(dir: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("verify")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn clip_file(case: &Case) -> String {
    format!("blobs/{}.mp4", sha256_hex(&case.blobs[0]))
}

#[tokio::test]
async fn an_untouched_export_verifies_and_its_manifest_says_what_it_holds() {
    let case = exported_case().await;
    let (ok, text) = verify(&case.export, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("OK") && text.contains("2 blob(s)"), "{text}");

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.export.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["case"], "INC-2025-0042");
    assert_eq!(manifest["createdBy"], "operator-7");
    assert_eq!(manifest["tool"]["name"], "media-gateway");
    assert_eq!(manifest["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["gateway"]["node"], NODE);
    assert_eq!(manifest["cameras"], serde_json::json!([CAMERA]));
    let blob = &manifest["blobs"][0];
    assert_eq!(blob["file"], clip_file(&case));
    assert_eq!(blob["size"], 50_000);
    assert_eq!(blob["edgeId"], EDGE);
    assert_eq!(blob["kind"], "clip");
    assert!(blob["edgeSignature"].is_string() && blob["edgePublicKey"].is_string());
    assert_eq!(manifest["blobs"][1]["kind"], "snapshot");
    assert_eq!(
        std::fs::read(case.export.join(clip_file(&case))).unwrap(),
        case.blobs[0],
        "the original bytes"
    );
}

#[tokio::test]
async fn verify_accepts_the_trusted_gateway_key_and_refuses_another() {
    let case = exported_case().await;
    let trusted = case.root.join("gateway.key.pub");
    let (ok, text) = verify(&case.export, &["--gateway-key", trusted.to_str().unwrap()]);
    assert!(ok, "{text}");
    let other = case.root.join("other.pub");
    std::fs::write(&other, hex::encode(edge_key().verifying_key().as_bytes())).unwrap();
    let (ok, text) = verify(&case.export, &["--gateway-key", other.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("FAIL gateway key: gateway.pub"), "{text}");
}

#[tokio::test]
async fn one_altered_byte_fails_verify_naming_the_file() {
    let case = exported_case().await;
    let file = case.export.join(clip_file(&case));
    let mut data = std::fs::read(&file).unwrap();
    data[25_000] ^= 0x01;
    std::fs::write(&file, data).unwrap();
    let (ok, text) = verify(&case.export, &[]);
    assert!(!ok);
    assert!(
        text.contains(&format!(
            "FAIL altered file: {}: sha256 is",
            clip_file(&case)
        )),
        "{text}"
    );
    assert_eq!(text.matches("FAIL").count(), 1, "only that file: {text}");
}

#[tokio::test]
async fn a_deleted_file_fails_verify_naming_the_file() {
    let case = exported_case().await;
    std::fs::remove_file(case.export.join(clip_file(&case))).unwrap();
    let (ok, text) = verify(&case.export, &[]);
    assert!(!ok);
    assert!(
        text.contains(&format!("FAIL missing file: {}", clip_file(&case))),
        "{text}"
    );
}

#[tokio::test]
async fn an_edited_manifest_fails_verify_as_a_bad_signature() {
    let case = exported_case().await;
    let path = case.export.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("operator-7", "operator-8")).unwrap();
    let (ok, out) = verify(&case.export, &[]);
    assert!(!ok);
    assert!(out.contains("FAIL bad signature: manifest.json"), "{out}");
}

#[tokio::test]
async fn a_manifest_re_signed_with_another_key_still_fails_on_the_edge_signature_if_bytes_change() {
    // Even a forger holding a gateway key cannot swap bytes: the edge signature covers the hash.
    let case = exported_case().await;
    let clip = case.export.join(clip_file(&case));
    let fake = bytes(50_000, 77);
    std::fs::write(&clip, &fake).unwrap();
    let path = case.export.join("manifest.json");
    let mut m: media_gateway::evidence::export::Manifest =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m.blobs[0].sha256 = sha256_hex(&fake);
    let key = bl_proto::SigningKey::from_bytes(&[55; 32]);
    m.gateway.public_key = media_gateway::keyfile::encode_public(&key.verifying_key());
    let json = serde_json::to_vec_pretty(&m).unwrap();
    use ed25519_dalek::Signer as _;
    let sig = key.sign(&media_gateway::evidence::export::signed_payload(&json));
    std::fs::write(&path, &json).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    std::fs::write(case.export.join("manifest.sig"), b64.encode(sig.to_bytes())).unwrap();
    std::fs::write(
        case.export.join("gateway.pub"),
        b64.encode(key.verifying_key().as_bytes()),
    )
    .unwrap();
    let (ok, out) = verify(&case.export, &[]);
    assert!(!ok);
    assert!(
        out.contains(&format!("FAIL bad edge signature: {}", clip_file(&case))),
        "{out}"
    );
}

#[tokio::test]
async fn an_extra_file_fails_verify_naming_it() {
    let case = exported_case().await;
    std::fs::write(case.export.join("blobs/planted.mp4"), b"x").unwrap();
    let (ok, text) = verify(&case.export, &[]);
    assert!(!ok);
    assert!(
        text.contains("FAIL extra file: blobs/planted.mp4"),
        "{text}"
    );
}

#[tokio::test]
async fn export_refuses_a_folder_in_use_and_a_blob_that_is_not_stored() {
    let case = exported_case().await;
    let run = |out: &Path, blob: &str| {
        Command::new(BIN)
            .args(["export", "--config"])
            .arg(case.root.join("gw.toml"))
            .arg("--out")
            .arg(out)
            .args(["--case", "c1", "--by", "op", "--blob", blob])
            .output()
            .unwrap()
    };
    let stored = sha256_hex(&case.blobs[0]);
    let out = run(&case.export, stored.as_str());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{out:?}"
    );
    let missing = sha256_hex(b"nothing");
    let out = run(&case.root.join("fresh"), missing.as_str());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(missing.as_str()) && err.contains("not stored"),
        "{err}"
    );
}
