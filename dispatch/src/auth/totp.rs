//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), as authenticator
//! apps use them, with secrets shown in base32 (RFC 4648).

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP: i64 = 30;

/// The 6-digit code for `secret` at `step` (= unix time / 30), per RFC 4226 §5.3.
pub fn code_at(secret: &[u8], step: u64) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let bin = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    bin % 1_000_000
}

/// The step of unix time `unix_secs`.
pub fn step_of(unix_secs: i64) -> u64 {
    (unix_secs.max(0) / STEP) as u64
}

/// The step (within one step of `now_step`, for clock drift) whose code is `code`, if any.
pub fn matching_step(secret: &[u8], code: &str, now_step: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    [now_step.saturating_sub(1), now_step, now_step + 1]
        .into_iter()
        .find(|&s| {
            crate::auth::constant_time_eq(&code_at(secret, s).to_be_bytes(), &wanted.to_be_bytes())
        })
}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 without padding, as `otpauth://` URIs carry secrets.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32 (case-insensitive, padding and spaces ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| *c != '=' && !c.is_whitespace()) {
        let v = ALPHABET
            .iter()
            .position(|&a| char::from(a) == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The `otpauth://` URI an authenticator app scans.
pub fn uri(username: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/Brightline:{username}?secret={}&issuer=Brightline&algorithm=SHA1&digits=6&period=30",
        base32_encode(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 secret "12345678901234567890" (8-digit values, last 6 digits).
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, step_of(59)), 287_082);
        assert_eq!(code_at(secret, step_of(1_111_111_109)), 81_804);
        assert_eq!(code_at(secret, step_of(1_234_567_890)), 5_924);
        assert_eq!(code_at(secret, step_of(2_000_000_000)), 279_037);
    }

    #[test]
    fn a_code_from_the_previous_step_is_accepted_and_one_from_two_steps_ago_is_not() {
        let secret = b"12345678901234567890";
        let code = format!("{:06}", code_at(secret, 100));
        assert_eq!(matching_step(secret, &code, 101), Some(100));
        assert_eq!(matching_step(secret, &code, 102), None);
        assert_eq!(matching_step(secret, "12a456", 100), None);
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        let bytes: Vec<u8> = (0..20).collect();
        assert_eq!(base32_decode(&base32_encode(&bytes)).unwrap(), bytes);
        assert_eq!(base32_decode("M1"), None);
    }
}
