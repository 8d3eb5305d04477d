//! Password hashing with argon2id (PHC strings, so parameters travel with each hash).

use crate::config::PasswordConfig;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

/// Longest password accepted (longer ones only cost hashing time).
pub const MAX_LENGTH: usize = 128;

fn hasher(config: &PasswordConfig) -> Argon2<'static> {
    let params = Params::new(config.argon2_memory_kib, config.argon2_iterations, 1, None)
        .expect("argon2 parameters are validated with the config");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` with a fresh random salt. CPU-heavy: call it from a blocking task.
pub fn hash(config: &PasswordConfig, password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
    hasher(config)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id hashing of a bounded password cannot fail")
        .to_string()
}

/// Whether `password` matches the PHC string `stored`. CPU-heavy: call it from a blocking task.
pub fn verify(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks a new password against the length rules (ASVS: length, not composition).
pub fn check_new(config: &PasswordConfig, password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < config.min_length {
        return Err(format!("must be at least {} characters", config.min_length));
    }
    if n > MAX_LENGTH {
        return Err(format!("must be at most {MAX_LENGTH} characters"));
    }
    Ok(())
}

/// A random password of 20 characters from an alphabet without look-alikes (≈ 115 bits).
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordConfig {
        PasswordConfig {
            argon2_memory_kib: 8192,
            argon2_iterations: 1,
            min_length: 12,
        }
    }

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let h = hash(&cheap(), "correct horse battery");
        assert!(h.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{h}");
        assert!(verify(&h, "correct horse battery"));
        assert!(!verify(&h, "correct horse batterY"));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        assert_ne!(
            hash(&cheap(), "same password!"),
            hash(&cheap(), "same password!")
        );
    }

    #[test]
    fn a_malformed_stored_hash_never_verifies() {
        assert!(!verify("not a hash", "x"));
    }

    #[test]
    fn short_and_overlong_passwords_are_refused() {
        assert!(check_new(&cheap(), "short").is_err());
        assert!(check_new(&cheap(), &"x".repeat(129)).is_err());
        assert!(check_new(&cheap(), "长城长城长城长城长城长城").is_ok());
    }
}
