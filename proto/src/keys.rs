//! Ed25519 keys as text: 32 bytes written as 64 hex characters or as base64 (standard or URL-safe,
//! padded or not). Pure parsing and formatting only; reading key files stays with the services
//! (the media gateway's `keyfile`, dispatch's config), which read private keys through a secret type.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::VerifyingKey;

/// Why key text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyTextError {
    /// The text is neither 64 hex characters nor base64 of 32 bytes.
    #[error(
        "is not an Ed25519 key: expected 32 bytes as 64 hex characters or as base64 ({0} characters given)"
    )]
    Format(usize),
    /// 32 bytes, but not a valid Ed25519 public key point.
    #[error("is not a valid Ed25519 public key")]
    BadPoint,
}

/// Decodes 32 key bytes from hex or base64 text (surrounding whitespace ignored).
pub fn decode_bytes(text: &str) -> Result<[u8; 32], KeyTextError> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()
    } else {
        [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
    };
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(KeyTextError::Format(text.len()))
}

/// Parses a public key written as hex or base64.
pub fn parse_public(text: &str) -> Result<VerifyingKey, KeyTextError> {
    VerifyingKey::from_bytes(&decode_bytes(text)?).map_err(|_| KeyTextError::BadPoint)
}

/// Writes a public key the way Brightline writes every key: unpadded base64url.
pub fn encode_public(key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn a_key_reads_the_same_from_hex_and_from_every_base64_flavour() {
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        let bytes = key.as_bytes();
        for text in [
            hex::encode(bytes),
            STANDARD.encode(bytes),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE.encode(bytes),
            format!("  {}\n", URL_SAFE_NO_PAD.encode(bytes)),
        ] {
            assert_eq!(parse_public(&text).unwrap(), key, "{text}");
        }
        assert_eq!(parse_public(&encode_public(&key)).unwrap(), key);
    }

    #[test]
    fn a_short_or_garbled_key_is_refused_with_its_length() {
        let e = parse_public("abcd").unwrap_err().to_string();
        assert!(e.contains("4 characters"), "{e}");
        assert!(parse_public(&"z".repeat(64)).is_err());
    }
}
