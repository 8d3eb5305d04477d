//! The center's voice warnings (the `warnings` of the retained EdgeConfig, issue 7 item 4), made
//! ready before they are put in force: each recording is fetched once from dispatch
//! (`GET {center}/api/edge-voice/{sha256}`, signed with the device key), checked against the hash
//! and size the config names, and kept in `{cache_dir}/center/{sha256}.wav`. A wrong hash or size
//! is refused, saying which message and why; nothing half-checked is ever stored under the hash.

use super::messages::Entry;
use bl_proto::evidence::{HEADER_EDGE, HEADER_SIGNATURE, Sha256Hex};
use bl_proto::voice::{self, VoiceContent, WarningRule, WarningSet};
use bl_proto::{EdgeId, SigningKey};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a warning set cannot be put in force yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("voice message {message:?}: {reason}")]
pub struct NotReady {
    pub message: String,
    pub reason: String,
}

/// The center's warnings with every recording on disk, checked.
#[derive(Debug, Clone, Default)]
pub struct Ready {
    pub rules: Vec<WarningRule>,
    pub(super) messages: HashMap<String, Entry>,
}

/// Fetches recordings from dispatch as this box (`[center]` in `edge.toml`).
#[derive(Clone)]
pub struct Fetcher {
    base: String,
    edge: EdgeId,
    key: SigningKey,
    dir: PathBuf,
    http: reqwest::Client,
}

impl Fetcher {
    /// `base`: dispatch's URL; `cache_dir`: `[talk] cache_dir` (recordings go to `center/` in it).
    pub fn new(base: &str, edge: EdgeId, key: SigningKey, cache_dir: &Path) -> Fetcher {
        Fetcher {
            base: base.trim_end_matches('/').to_owned(),
            edge,
            key,
            dir: cache_dir.join("center"),
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    /// The file of recording `sha256` of `size` bytes: from the cache if it is there and right,
    /// else fetched now and checked.
    pub async fn ensure(&self, sha256: &Sha256Hex, size: u64) -> Result<PathBuf, String> {
        let path = self.dir.join(format!("{sha256}.wav"));
        if let Ok(bytes) = tokio::fs::read(&path).await {
            if check(&bytes, sha256, size).is_ok() {
                return Ok(path);
            }
            tracing::warn!(path = %path.display(), "a cached recording does not match its hash; fetching it again");
        }
        let bytes = self.fetch(sha256, size).await?;
        check(&bytes, sha256, size)?;
        store(&path, &bytes).await?;
        tracing::info!(sha256 = %sha256, size, "voice recording fetched from the center");
        Ok(path)
    }

    async fn fetch(&self, sha256: &Sha256Hex, size: u64) -> Result<Vec<u8>, String> {
        let at = chrono::Utc::now().timestamp_millis();
        let url = format!("{}{}/{sha256}", self.base, voice::FETCH_PATH);
        let mut response = self
            .http
            .get(&url)
            .header(HEADER_EDGE, self.edge.as_str())
            .header(voice::HEADER_AT, at.to_string())
            .header(
                HEADER_SIGNATURE,
                voice::sign_fetch(&self.edge, sha256, at, &self.key),
            )
            .send()
            .await
            .map_err(|e| format!("cannot reach dispatch at {}: {e}", self.base))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!(
                "dispatch answered {status}: {}",
                body.chars().take(300).collect::<String>()
            ));
        }
        let mut bytes = Vec::with_capacity(size.min(voice::MAX_AUDIO_BYTES) as usize);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("the download broke off: {e}"))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > size {
                return Err(format!(
                    "refused: dispatch sent more than the {size} bytes the config names"
                ));
            }
        }
        Ok(bytes)
    }
}

/// Size, then hash: what the config names is what is played, or nothing.
fn check(bytes: &[u8], sha256: &Sha256Hex, size: u64) -> Result<(), String> {
    if bytes.len() as u64 != size {
        return Err(format!(
            "refused: {} bytes arrived, the config names {size}",
            bytes.len()
        ));
    }
    let got = bl_proto::evidence::sha256_hex(bytes);
    if &got != sha256 {
        return Err(format!(
            "refused: the recording's SHA-256 is {got}, the config names {sha256}"
        ));
    }
    Ok(())
}

/// Written beside and renamed, so a crash leaves no half file under the hash.
async fn store(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let partial = path.with_extension("wav.partial");
    tokio::fs::write(&partial, bytes)
        .await
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    tokio::fs::rename(&partial, path)
        .await
        .map_err(|e| format!("cannot store {}: {e}", path.display()))
}

/// Makes `set` ready: every recording fetched and checked (texts are synthesised when the set is
/// applied, `Talk::apply_center`). The first message that cannot be made ready refuses the set.
pub async fn prepare(set: &WarningSet, fetcher: Option<&Fetcher>) -> Result<Ready, NotReady> {
    let mut messages = HashMap::new();
    for m in &set.messages {
        let entry = match &m.content {
            VoiceContent::Text { text } => Entry::Text(text.clone()),
            VoiceContent::Audio { sha256, size } => {
                let fetcher = fetcher.ok_or_else(|| NotReady {
                    message: m.id.clone(),
                    reason: "a recording, but no [center] is configured to fetch it from".into(),
                })?;
                let path = fetcher
                    .ensure(sha256, *size)
                    .await
                    .map_err(|reason| NotReady {
                        message: m.id.clone(),
                        reason,
                    })?;
                Entry::File(path)
            }
        };
        messages.insert(m.id.clone(), entry);
    }
    Ok(Ready {
        rules: set.rules.clone(),
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_of_another_size_or_hash_is_refused_saying_what_the_config_names() {
        let bytes = b"RIFF....WAVE".to_vec();
        let sha = bl_proto::evidence::sha256_hex(&bytes);
        assert_eq!(check(&bytes, &sha, bytes.len() as u64), Ok(()));
        let e = check(&bytes, &sha, 99).unwrap_err();
        assert!(e.contains("names 99"), "{e}");
        let other = bl_proto::evidence::sha256_hex(b"other");
        let e = check(&bytes, &other, bytes.len() as u64).unwrap_err();
        assert!(
            e.contains(other.as_str()) && e.contains(sha.as_str()),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_set_with_a_recording_but_no_center_to_fetch_it_from_is_not_ready() {
        let set = WarningSet {
            messages: vec![bl_proto::voice::VoiceMessage {
                id: "wear-hat-zh".into(),
                content: VoiceContent::Audio {
                    sha256: bl_proto::evidence::sha256_hex(b"x"),
                    size: 1,
                },
            }],
            rules: vec![],
        };
        let e = prepare(&set, None).await.unwrap_err();
        assert_eq!(e.message, "wear-hat-zh");
        assert!(e.reason.contains("[center]"), "{e}");
    }
}
