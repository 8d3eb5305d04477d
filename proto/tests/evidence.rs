//! Evidence upload signatures: the edge signs, the gateway verifies; any changed field breaks it.

mod common;

use bl_proto::SigningKey;
use bl_proto::evidence::{
    self, EvidenceError, EvidenceKind, HEADER_SIGNATURE, SIGNING_DOMAIN, Sha256Hex, SignatureError,
    sha256_hex,
};
use common::*;

fn device_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

#[test]
fn sha256_hex_is_the_lowercase_hex_digest() {
    assert_eq!(sha256_hex(b"").as_str(), CLIP_SHA);
    assert_eq!(sha256_hex(b"test").as_str(), SNAPSHOT_SHA);
}

#[test]
fn a_valid_signature_verifies() {
    let meta = evidence_meta();
    let sig = evidence::sign(&meta, &device_key());
    assert_eq!(
        evidence::verify(&meta, &sig, &device_key().verifying_key()),
        Ok(())
    );
}

#[test]
fn the_signed_bytes_start_with_the_domain_tag() {
    let payload = evidence::signing_payload(&evidence_meta());
    assert!(payload.starts_with(SIGNING_DOMAIN.as_bytes()));
    assert!(SIGNING_DOMAIN.starts_with("brightline-evidence-v1\n"));
}

/// Changes one field of the metadata.
type Mutation = fn(&mut evidence::EvidenceMeta);

#[test]
fn changing_any_signed_field_breaks_the_signature() {
    let meta = evidence_meta();
    let sig = evidence::sign(&meta, &device_key());
    let vk = device_key().verifying_key();
    let mutations: [(&str, Mutation); 7] = [
        ("sha256", |m| {
            m.sha256 = Sha256Hex::new(SNAPSHOT_SHA).unwrap()
        }),
        ("size", |m| m.size += 1),
        ("edgeId", |m| m.edge_id = "mtg-other-edge".parse().unwrap()),
        ("cameraId", |m| m.camera_id = cam(2)),
        ("kind", |m| m.kind = EvidenceKind::Snapshot),
        ("contentType", |m| m.content_type = "video/quicktime".into()),
        ("capturedAt", |m| {
            m.captured_at += chrono::Duration::milliseconds(1)
        }),
    ];
    for (field, mutate) in mutations {
        let mut changed = meta.clone();
        mutate(&mut changed);
        assert_eq!(
            evidence::verify(&changed, &sig, &vk),
            Err(SignatureError::BadSignature),
            "changing {field} did not break the signature"
        );
    }
}

#[test]
fn another_devices_key_does_not_verify() {
    let meta = evidence_meta();
    let sig = evidence::sign(&meta, &SigningKey::from_bytes(&[43; 32]));
    assert_eq!(
        evidence::verify(&meta, &sig, &device_key().verifying_key()),
        Err(SignatureError::BadSignature)
    );
}

#[test]
fn a_malformed_signature_is_reported_as_malformed() {
    let vk = device_key().verifying_key();
    for bad in ["", "not base64!", "AAAA", &"A".repeat(500)] {
        assert_eq!(
            evidence::verify(&evidence_meta(), bad, &vk),
            Err(SignatureError::Malformed),
            "{bad:?}"
        );
    }
}

#[test]
fn headers_written_by_the_edge_read_back_on_the_gateway_and_verify() {
    let meta = evidence_meta();
    let sig = evidence::sign(&meta, &device_key());
    let headers = meta.headers(&sig);
    let lookup = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let (back, sig_back) =
        evidence::EvidenceMeta::from_headers(CLIP_SHA, meta.size, lookup).unwrap();
    assert_eq!(back, meta);
    assert_eq!(sig_back, sig);
    assert_eq!(
        evidence::verify(&back, sig_back, &device_key().verifying_key()),
        Ok(())
    );
}

#[test]
fn missing_or_bad_upload_headers_are_named() {
    let meta = evidence_meta();
    let sig = evidence::sign(&meta, &device_key());
    let headers = meta.headers(&sig);
    let lookup = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name && *n != HEADER_SIGNATURE)
            .map(|(_, v)| v.as_str())
    };
    let err = evidence::EvidenceMeta::from_headers(CLIP_SHA, meta.size, lookup).unwrap_err();
    assert_eq!(err, EvidenceError::MissingHeader(HEADER_SIGNATURE));
    assert!(err.to_string().contains("X-Bl-Signature"), "{err}");

    let err =
        evidence::EvidenceMeta::from_headers("../../etc/passwd", 1, |_| Some("x")).unwrap_err();
    assert!(err.to_string().contains("64 lowercase hex"), "{err}");

    let bad_edge = |name: &str| match name {
        "X-Bl-Edge" => Some("Edge/1"),
        _ => Some("clip"),
    };
    let err = evidence::EvidenceMeta::from_headers(CLIP_SHA, 1, bad_edge).unwrap_err();
    assert!(err.to_string().contains("X-Bl-Edge"), "{err}");
    assert!(err.to_string().contains("invalid edge id"), "{err}");
}
