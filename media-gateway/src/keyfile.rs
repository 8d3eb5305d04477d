//! Ed25519 key files: the text format (32 bytes written as 64 hex characters or as base64) is parsed
//! by [`bl_proto::keys`], shared with dispatch; this module reads the files. Public keys appear inline
//! in the config and in export manifests; private keys only in files, read through [`Secret`] so they
//! never reach a log.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bl_proto::keys::{self, KeyTextError};
use bl_proto::{SigningKey, VerifyingKey};
use bl_service::secret::Secret;

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text is not a key (see [`bl_proto::keys`]).
    #[error(transparent)]
    Text(#[from] KeyTextError),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Decodes 32 key bytes from hex or base64 text (surrounding whitespace ignored).
pub fn decode_bytes(text: &str) -> Result<[u8; 32], KeyError> {
    Ok(keys::decode_bytes(text)?)
}

/// Parses a public key written as hex or base64.
pub fn parse_public(text: &str) -> Result<VerifyingKey, KeyError> {
    Ok(keys::parse_public(text)?)
}

/// Writes a public key the way this crate writes every key: unpadded base64url.
pub fn encode_public(key: &VerifyingKey) -> String {
    keys::encode_public(key)
}

/// Reads a public key file (hex or base64).
pub fn read_public(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_public(&text)
}

/// A private signing key whose `Debug` never shows it.
#[derive(Clone)]
pub struct PrivateKey(SigningKey);

impl PrivateKey {
    /// Reads a private key file (the 32-byte seed as hex or base64).
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let secret = Secret::from_file(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self(SigningKey::from_bytes(&decode_bytes(
            secret.expose(),
        )?)))
    }

    /// Wraps a key held in memory (tests, keygen).
    pub fn from_signing_key(key: SigningKey) -> Self {
        Self(key)
    }

    /// The key, at the point of signing.
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }

    /// The matching public key.
    pub fn public(&self) -> VerifyingKey {
        self.0.verifying_key()
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(public = {})", encode_public(&self.public()))
    }
}

/// Makes a new key from the operating system's random source and writes it: the private key to
/// `out` (mode 0600, refused if the file exists) and the public key to `out.pub`. Returns the public key.
pub fn generate(out: &Path) -> std::io::Result<VerifyingKey> {
    use rand::TryRngCore as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut seed)
        .map_err(std::io::Error::other)?;
    let key = SigningKey::from_bytes(&seed);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)?;
    writeln!(file, "{}", URL_SAFE_NO_PAD.encode(seed))?;
    file.sync_all()?;
    let public = key.verifying_key();
    let mut pub_path = out.as_os_str().to_owned();
    pub_path.push(".pub");
    std::fs::write(
        PathBuf::from(pub_path),
        format!("{}\n", encode_public(&public)),
    )?;
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Key text parsing is tested where it lives, in `bl_proto::keys`.

    #[test]
    fn keygen_writes_a_private_key_only_its_owner_can_read_and_the_public_key_beside_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("gw.key");
        let public = generate(&out).unwrap();
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(PrivateKey::read(&out).unwrap().public(), public);
        assert_eq!(read_public(&dir.path().join("gw.key.pub")).unwrap(), public);
        assert!(
            generate(&out).is_err(),
            "an existing key must not be overwritten"
        );
    }

    #[test]
    fn a_private_key_never_prints() {
        let key = PrivateKey::from_signing_key(SigningKey::from_bytes(&[9; 32]));
        let shown = format!("{key:?}");
        assert!(
            !shown.contains(&URL_SAFE_NO_PAD.encode([9u8; 32])),
            "{shown}"
        );
    }
}
