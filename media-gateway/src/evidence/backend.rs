//! Which evidence backend a gateway uses: the `[evidence]` table of the config file, checked
//! ([`EvidenceFile::validate`]), and the one place that opens it ([`open`]).
//!
//! ```toml
//! [evidence]
//! store = "s3"                              # "fs" (default): {data_dir}/evidence
//! bucket = "brightline-evidence"
//! endpoint = "https://s3.district.example"  # leave out for AWS itself
//! region = "us-east-1"
//! prefix = "gw-1/"                          # optional
//! access_key_id_file = "s3.key-id"          # or AWS_ACCESS_KEY_ID in the environment
//! secret_access_key_file = "s3.secret"      # or AWS_SECRET_ACCESS_KEY in the environment
//! ```
//!
//! Credentials never appear in the config file itself, in `Debug` output or in logs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bl_service::secret::Secret;
use serde::Deserialize;

use super::fs::FsStore;
use super::s3::{S3Settings, S3Store};
use super::{EvidenceStore, StoreError};

/// The `[evidence]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceFile {
    /// `"fs"` (the data folder) or `"s3"` (an S3-compatible bucket). Default `"fs"`.
    pub store: String,
    /// The bucket, for `s3`; it must exist.
    pub bucket: Option<String>,
    /// `http(s)://host:port` of an S3-compatible server. Default: AWS's endpoint for `region`.
    pub endpoint: Option<String>,
    /// Region to sign requests for. Default `"us-east-1"`.
    pub region: String,
    /// Key prefix inside the bucket (a `/` is added if missing). Default: none.
    pub prefix: String,
    /// File holding the access key id. Default: `AWS_ACCESS_KEY_ID` from the environment.
    pub access_key_id_file: Option<PathBuf>,
    /// File holding the secret access key. Default: `AWS_SECRET_ACCESS_KEY` from the environment.
    pub secret_access_key_file: Option<PathBuf>,
}

impl Default for EvidenceFile {
    fn default() -> Self {
        Self {
            store: "fs".into(),
            bucket: None,
            endpoint: None,
            region: "us-east-1".into(),
            prefix: String::new(),
            access_key_id_file: None,
            secret_access_key_file: None,
        }
    }
}

/// The checked backend choice.
#[derive(Debug, Clone, Default)]
pub enum EvidenceBackend {
    /// `{data_dir}/evidence` on the local filesystem.
    #[default]
    Fs,
    /// An S3-compatible bucket.
    S3(S3Settings),
}

impl EvidenceFile {
    /// Checks the table; `base` is the config file's folder (relative key files are read from
    /// there). Errors are `(field, message)`.
    pub fn validate(&self, base: &Path) -> Result<EvidenceBackend, (String, String)> {
        let err = |field: &str, message: String| (format!("evidence.{field}"), message);
        match self.store.as_str() {
            "fs" => Ok(EvidenceBackend::Fs),
            "s3" => {
                let bucket = self
                    .bucket
                    .clone()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| err("bucket", "is required with store = \"s3\"".into()))?;
                if let Some(e) = &self.endpoint
                    && !(e.starts_with("http://") || e.starts_with("https://"))
                {
                    return Err(err("endpoint", format!("{e:?} is not an http(s) URL")));
                }
                let secret = |file: &Option<PathBuf>, field: &str, env: &str| match file {
                    Some(f) => Secret::from_file(&base.join(f))
                        .map_err(|e| err(field, format!("{}: {e}", f.display()))),
                    None => std::env::var(env).map(Secret::new).map_err(|_| {
                        err(
                            field,
                            format!("is required (or set {env} in the environment)"),
                        )
                    }),
                };
                let prefix = match self.prefix.trim_matches('/') {
                    "" => String::new(),
                    p => format!("{p}/"),
                };
                Ok(EvidenceBackend::S3(S3Settings {
                    bucket,
                    endpoint: self.endpoint.clone(),
                    region: self.region.clone(),
                    prefix,
                    access_key_id: secret(
                        &self.access_key_id_file,
                        "access_key_id_file",
                        "AWS_ACCESS_KEY_ID",
                    )?,
                    secret_access_key: secret(
                        &self.secret_access_key_file,
                        "secret_access_key_file",
                        "AWS_SECRET_ACCESS_KEY",
                    )?,
                }))
            }
            other => Err(err("store", format!("{other:?}: use \"fs\" or \"s3\""))),
        }
    }
}

/// Opens the configured backend (`evidence_dir` for `fs`).
pub async fn open(
    backend: &EvidenceBackend,
    evidence_dir: &Path,
) -> Result<Arc<dyn EvidenceStore>, StoreError> {
    Ok(match backend {
        EvidenceBackend::Fs => Arc::new(FsStore::open(evidence_dir).await?),
        EvidenceBackend::S3(s) => {
            let store = S3Store::open(s).await?;
            tracing::info!(bucket = %s.bucket, endpoint = s.endpoint.as_deref().unwrap_or("aws"),
                prefix = %s.prefix, "evidence store: S3");
            Arc::new(store)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(toml_text: &str) -> EvidenceFile {
        #[derive(Deserialize)]
        struct Wrap {
            evidence: EvidenceFile,
        }
        bl_service::config::parse::<Wrap>(Path::new("gw.toml"), toml_text)
            .unwrap()
            .evidence
    }

    #[test]
    fn s3_needs_a_bucket_and_reads_keys_from_files_that_debug_never_prints() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("id"), "AKIDEXAMPLE\n").unwrap();
        std::fs::write(dir.path().join("secret"), "wJalrXUtnFEMI\n").unwrap();
        let f = file(
            "[evidence]\nstore = \"s3\"\nbucket = \"ev\"\nendpoint = \"http://127.0.0.1:9000\"\n\
             prefix = \"gw-1\"\naccess_key_id_file = \"id\"\nsecret_access_key_file = \"secret\"\n",
        );
        let EvidenceBackend::S3(s) = f.validate(dir.path()).unwrap() else {
            panic!("not s3");
        };
        assert_eq!(s.prefix, "gw-1/");
        assert_eq!(s.secret_access_key.expose(), "wJalrXUtnFEMI");
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("wJalrXUtnFEMI") && !debug.contains("AKIDEXAMPLE"),
            "{debug}"
        );

        let no_bucket = file("[evidence]\nstore = \"s3\"\n").validate(dir.path());
        assert_eq!(no_bucket.unwrap_err().0, "evidence.bucket");
        let bad = file("[evidence]\nstore = \"tape\"\n").validate(dir.path());
        assert_eq!(bad.unwrap_err().0, "evidence.store");
        assert!(matches!(
            EvidenceFile::default().validate(dir.path()),
            Ok(EvidenceBackend::Fs)
        ));
    }
}
