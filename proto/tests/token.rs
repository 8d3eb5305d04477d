//! Media tokens: dispatch signs, the gateway verifies; every way a token can be wrong is told apart.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bl_proto::stream::Stream;
use bl_proto::token::{self, CLOCK_SKEW_SECS, MediaAction, MediaClaims, TokenError};
use bl_proto::{CameraId, GatewayNodeId, SigningKey};

const NOW: i64 = 1_740_816_930; // 2025-03-01T08:15:30Z

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn claims() -> MediaClaims {
    MediaClaims {
        sub: "user-operator-zhang".into(),
        camera: "mtg-dyl-school-03-cam1".parse().unwrap(),
        action: MediaAction::View,
        node: "gw-1".parse().unwrap(),
        stream: Some(Stream::Sub),
        iat: NOW,
        exp: NOW + 120,
        jti: "01955a3f-aaaa-7bbb-8ccc-dddddddddddd".into(),
    }
}

#[test]
fn a_signed_token_verifies_and_yields_its_claims() {
    let tok = token::sign(&claims(), &key());
    assert_eq!(tok.matches('.').count(), 1);
    assert!(!tok.contains('='), "base64url must be unpadded: {tok}");
    let got = token::verify(&tok, &key().verifying_key(), NOW + 5).unwrap();
    assert_eq!(got, claims());
}

#[test]
fn an_expired_token_is_refused_with_its_expiry_and_the_clock() {
    let tok = token::sign(&claims(), &key());
    let err = token::verify(&tok, &key().verifying_key(), NOW + 120).unwrap_err();
    assert_eq!(
        err,
        TokenError::Expired {
            exp: NOW + 120,
            now: NOW + 120
        }
    );
    assert!(err.to_string().contains("expired"), "{err}");
}

#[test]
fn a_token_from_the_future_is_refused_beyond_the_clock_skew_allowance() {
    let tok = token::sign(&claims(), &key());
    let vk = key().verifying_key();
    assert!(token::verify(&tok, &vk, NOW - CLOCK_SKEW_SECS).is_ok());
    let err = token::verify(&tok, &vk, NOW - CLOCK_SKEW_SECS - 1).unwrap_err();
    assert!(matches!(err, TokenError::NotYetValid { .. }), "{err:?}");
}

#[test]
fn tampered_claims_fail_the_signature_check() {
    let tok = token::sign(&claims(), &key());
    let (_, sig) = tok.split_once('.').unwrap();
    let mut forged = claims();
    forged.camera = "mtg-dyl-school-03-cam2".parse().unwrap();
    forged.exp = NOW + 86_400;
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    let err = token::verify(&format!("{body}.{sig}"), &key().verifying_key(), NOW).unwrap_err();
    assert_eq!(err, TokenError::BadSignature);
}

#[test]
fn a_tampered_signature_fails_the_signature_check() {
    let tok = token::sign(&claims(), &key());
    let (body, sig) = tok.split_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[10] ^= 0x01;
    let bad = format!("{body}.{}", URL_SAFE_NO_PAD.encode(raw));
    assert_eq!(
        token::verify(&bad, &key().verifying_key(), NOW).unwrap_err(),
        TokenError::BadSignature
    );
}

#[test]
fn a_token_signed_by_another_key_fails_the_signature_check() {
    let other = SigningKey::from_bytes(&[8; 32]);
    let tok = token::sign(&claims(), &other);
    assert_eq!(
        token::verify(&tok, &key().verifying_key(), NOW).unwrap_err(),
        TokenError::BadSignature
    );
}

#[test]
fn garbage_tokens_are_malformed_not_panics() {
    let vk = key().verifying_key();
    let long = "a".repeat(5000);
    for bad in ["", ".", "abc", "a.b", "a.b.c", "!!!.???", &long] {
        let err = token::verify(bad, &vk, NOW).unwrap_err();
        assert!(matches!(err, TokenError::Malformed(_)), "{bad:?}: {err:?}");
    }
}

#[test]
fn garbage_claims_are_not_parsed_unless_the_signature_is_good() {
    // A correctly signed body that is not claims JSON: only then is it reported as malformed.
    let body = URL_SAFE_NO_PAD.encode(b"{\"sub\": 1}");
    use ed25519_dalek::Signer as _;
    let sig = URL_SAFE_NO_PAD.encode(key().sign(body.as_bytes()).to_bytes());
    let err = token::verify(&format!("{body}.{sig}"), &key().verifying_key(), NOW).unwrap_err();
    assert!(matches!(err, TokenError::Malformed(_)), "{err:?}");
    let wrong_key = SigningKey::from_bytes(&[9; 32]).verifying_key();
    let err = token::verify(&format!("{body}.{sig}"), &wrong_key, NOW).unwrap_err();
    assert_eq!(err, TokenError::BadSignature);
}

#[test]
fn permits_accepts_only_the_camera_action_and_node_in_the_token() {
    let c = claims();
    let cam1: CameraId = "mtg-dyl-school-03-cam1".parse().unwrap();
    let cam2: CameraId = "mtg-dyl-school-03-cam2".parse().unwrap();
    let gw1: GatewayNodeId = "gw-1".parse().unwrap();
    let gw2: GatewayNodeId = "gw-2".parse().unwrap();
    assert_eq!(c.permits(&cam1, MediaAction::View, &gw1), Ok(()));

    let err = c.permits(&cam2, MediaAction::View, &gw1).unwrap_err();
    assert!(matches!(err, TokenError::WrongCamera { .. }));
    assert!(err.to_string().contains("mtg-dyl-school-03-cam2"), "{err}");

    let err = c.permits(&cam1, MediaAction::Talk, &gw1).unwrap_err();
    assert!(matches!(err, TokenError::WrongAction { .. }), "{err:?}");

    let err = c.permits(&cam1, MediaAction::View, &gw2).unwrap_err();
    assert!(matches!(err, TokenError::WrongNode { .. }), "{err:?}");
}

#[test]
fn a_media_token_never_shows_in_debug_output() {
    let tok = token::sign(&claims(), &key());
    let wrapped = token::MediaToken::new(tok.clone());
    let dbg = format!("{wrapped:?}");
    assert!(!dbg.contains(&tok[..20]), "{dbg}");
    assert_eq!(wrapped.expose(), tok);
}
