//! The gateway's TOML config file ([`File`]) and the checked settings it becomes ([`Config`]).
//!
//! ```toml
//! listen = "0.0.0.0:8090"
//! node_id = "gw-1"
//! data_dir = "/var/lib/brightline/gateway"
//! token_public_key_file = "/etc/brightline/dispatch-token.pub"
//! signing_key_file = "/etc/brightline/gateway.key"
//!
//! [[edge]]
//! id = "mtg-school-3"
//! public_key = "base64 or hex of the edge's Ed25519 device key"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bl_proto::{EdgeId, GatewayNodeId, VerifyingKey};
use bl_service::config::{ConfigError, field_error};
use serde::Deserialize;

use crate::keyfile::{self, PrivateKey};

/// Default for [`File::listen`].
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// Default for [`File::max_evidence_bytes`]: 1 GiB, well above a few minutes of 1080p.
pub const DEFAULT_MAX_EVIDENCE_BYTES: u64 = 1 << 30;
/// Default for [`File::max_concurrent_uploads`].
pub const DEFAULT_MAX_CONCURRENT_UPLOADS: usize = 64;

/// The config file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// Address and port the HTTP API listens on. Default `"127.0.0.1:8090"`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// This gateway node's id; media tokens must name it. Required.
    pub node_id: String,
    /// Directory for the evidence store (`{data_dir}/evidence`) and, later, recordings. Required.
    pub data_dir: PathBuf,
    /// File holding dispatch's Ed25519 media-token public key (hex or base64). Required.
    pub token_public_key_file: PathBuf,
    /// File holding this gateway's Ed25519 private key (hex or base64), used to sign exports; make one
    /// with `media-gateway keygen`. Default: none (then `export` refuses to run).
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// Largest accepted evidence upload in bytes. Default 1073741824 (1 GiB).
    #[serde(default = "default_max_evidence_bytes")]
    pub max_evidence_bytes: u64,
    /// Uploads streamed at the same time; more are answered 503 with `Retry-After`. Default 64.
    #[serde(default = "default_max_concurrent_uploads")]
    pub max_concurrent_uploads: usize,
    /// The edges allowed to upload evidence and their device keys, until dispatch's internal API
    /// serves them. Default: none (every upload is refused as `unknown_edge`).
    #[serde(default)]
    pub edge: Vec<EdgeEntry>,
}

/// One registered edge box.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeEntry {
    /// The edge id (as in `X-Bl-Edge`). Required.
    pub id: String,
    /// Its Ed25519 device public key, hex or base64. Required.
    pub public_key: String,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_owned()
}

fn default_max_evidence_bytes() -> u64 {
    DEFAULT_MAX_EVIDENCE_BYTES
}

fn default_max_concurrent_uploads() -> usize {
    DEFAULT_MAX_CONCURRENT_UPLOADS
}

/// Checked settings: addresses parsed, ids validated, keys read.
#[derive(Debug, Clone)]
pub struct Config {
    /// See [`File::listen`].
    pub listen: SocketAddr,
    /// See [`File::node_id`].
    pub node_id: GatewayNodeId,
    /// See [`File::data_dir`].
    pub data_dir: PathBuf,
    /// Dispatch's media-token key.
    pub token_key: VerifyingKey,
    /// The export signing key, if configured.
    pub signing_key: Option<PrivateKey>,
    /// See [`File::max_evidence_bytes`].
    pub max_evidence_bytes: u64,
    /// See [`File::max_concurrent_uploads`].
    pub max_concurrent_uploads: usize,
    /// Registered edges and their device keys.
    pub edges: Vec<(EdgeId, VerifyingKey)>,
}

impl Config {
    /// Where evidence blobs live.
    pub fn evidence_dir(&self) -> PathBuf {
        self.data_dir.join("evidence")
    }
}

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    bl_service::config::load::<File>(path)?.validate(path)
}

impl File {
    /// Checks every value and reads the key files; errors name the field. Relative key and data paths
    /// are taken relative to the config file's folder.
    pub fn validate(self, path: &Path) -> Result<Config, ConfigError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let err = |field: &str, message: String| field_error(path, field, message);
        let listen = self.listen.parse::<SocketAddr>().map_err(|e| {
            err(
                "listen",
                format!("{:?} is not an address:port ({e})", self.listen),
            )
        })?;
        let node_id =
            GatewayNodeId::new(&self.node_id).map_err(|e| err("node_id", e.to_string()))?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(err("data_dir", "must not be empty".into()));
        }
        let token_key = keyfile::read_public(&base.join(&self.token_public_key_file))
            .map_err(|e| err("token_public_key_file", e.to_string()))?;
        let signing_key = self
            .signing_key_file
            .as_ref()
            .map(|f| PrivateKey::read(&base.join(f)))
            .transpose()
            .map_err(|e| err("signing_key_file", e.to_string()))?;
        if self.max_evidence_bytes == 0 {
            return Err(err("max_evidence_bytes", "must be at least 1".into()));
        }
        if self.max_concurrent_uploads == 0 {
            return Err(err("max_concurrent_uploads", "must be at least 1".into()));
        }
        let mut edges: Vec<(EdgeId, VerifyingKey)> = Vec::with_capacity(self.edge.len());
        for (i, entry) in self.edge.iter().enumerate() {
            let id =
                EdgeId::new(&entry.id).map_err(|e| err(&format!("edge[{i}].id"), e.to_string()))?;
            if edges.iter().any(|(seen, _)| seen == &id) {
                return Err(err(
                    &format!("edge[{i}].id"),
                    format!("edge {id} is listed twice"),
                ));
            }
            let key = keyfile::parse_public(&entry.public_key)
                .map_err(|e| err(&format!("edge[{i}].public_key"), e.to_string()))?;
            edges.push((id, key));
        }
        Ok(Config {
            listen,
            node_id,
            data_dir: base.join(self.data_dir),
            token_key,
            signing_key,
            max_evidence_bytes: self.max_evidence_bytes,
            max_concurrent_uploads: self.max_concurrent_uploads,
            edges,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bl_proto::SigningKey;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[1; 32]).verifying_key();
        std::fs::write(dir.path().join("token.pub"), hex::encode(key.as_bytes())).unwrap();
        let path = dir.path().join("gw.toml");
        (dir, path)
    }

    fn check(path: &Path, text: &str) -> Result<Config, String> {
        std::fs::write(path, text).unwrap();
        load(path).map_err(|e| e.to_string())
    }

    const MINIMAL: &str =
        "node_id = \"gw-1\"\ndata_dir = \"data\"\ntoken_public_key_file = \"token.pub\"\n";

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let (dir, path) = setup();
        let c = check(&path, MINIMAL).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert_eq!(c.max_evidence_bytes, DEFAULT_MAX_EVIDENCE_BYTES);
        assert_eq!(c.max_concurrent_uploads, DEFAULT_MAX_CONCURRENT_UPLOADS);
        assert!(c.signing_key.is_none());
        assert!(c.edges.is_empty());
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let (_dir, path) = setup();
        let e = check(&path, &format!("{MINIMAL}colour = 1\n")).unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let (_dir, path) = setup();
        let cases = [
            ("listen = \"nowhere\"\n", "`listen`"),
            ("max_evidence_bytes = 0\n", "`max_evidence_bytes`"),
            ("signing_key_file = \"missing.key\"\n", "`signing_key_file`"),
            (
                "[[edge]]\nid = \"Edge/1\"\npublic_key = \"x\"\n",
                "`edge[0].id`",
            ),
            (
                "[[edge]]\nid = \"e1\"\npublic_key = \"nope\"\n",
                "`edge[0].public_key`",
            ),
        ];
        for (extra, field) in cases {
            let e = check(&path, &format!("{MINIMAL}{extra}")).unwrap_err();
            assert!(e.contains(field), "{extra:?} gave {e}");
        }
        let e = check(&path, &MINIMAL.replace("gw-1", "GW 1")).unwrap_err();
        assert!(e.contains("`node_id`"), "{e}");
        let e = check(&path, &MINIMAL.replace("token.pub", "none.pub")).unwrap_err();
        assert!(e.contains("`token_public_key_file`"), "{e}");
    }

    #[test]
    fn an_edge_listed_twice_is_refused() {
        let (_dir, path) = setup();
        let key = hex::encode(SigningKey::from_bytes(&[2; 32]).verifying_key().as_bytes());
        let edge = format!("[[edge]]\nid = \"e1\"\npublic_key = \"{key}\"\n");
        let e = check(&path, &format!("{MINIMAL}{edge}{edge}")).unwrap_err();
        assert!(e.contains("`edge[1].id`") && e.contains("twice"), "{e}");
    }
}
