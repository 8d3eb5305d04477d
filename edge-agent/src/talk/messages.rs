//! The stored voice messages: an audio file provisioned on the box, or a text that espeak-ng speaks
//! (Mandarin by default). Texts are synthesised ahead of time ([`Messages::prepare`] at start-up)
//! into `cache_dir`, named by the hash of voice and text, so a warning never waits for synthesis
//! unless the cache was lost; a changed text gets a new file.

use super::TalkError;
use super::config::TalkConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A message's audio: a file on the box, or a text to synthesise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    File(PathBuf),
    Text(String),
}

/// The messages of `[talk]`, by id.
#[derive(Debug, Clone, Default)]
pub struct Messages {
    voice: String,
    cache_dir: PathBuf,
    entries: HashMap<String, Entry>,
}

impl Messages {
    pub fn new(config: &TalkConfig) -> Messages {
        let entries = config
            .message
            .iter()
            .map(|m| {
                let entry = match (&m.file, &m.text) {
                    (Some(file), _) => Entry::File(file.clone()),
                    (None, text) => Entry::Text(text.clone().unwrap_or_default()),
                };
                (m.id.clone(), entry)
            })
            .collect();
        Messages {
            voice: config.voice.clone(),
            cache_dir: config.cache_dir.clone(),
            entries,
        }
    }

    /// These messages with `center`'s over them: the center's wins per id.
    pub(crate) fn with_center(&self, center: &HashMap<String, Entry>) -> Messages {
        let mut merged = self.clone();
        merged
            .entries
            .extend(center.iter().map(|(id, e)| (id.clone(), e.clone())));
        merged
    }

    /// Whether `id` is provisioned.
    pub fn contains(&self, id: &str) -> bool {
        self.entries.contains_key(id)
    }

    /// Synthesises every text message that is not cached yet (blocking: run it off the runtime).
    /// A failure is logged; that message is tried again when it is first played.
    pub fn prepare(&self) {
        for id in self.entries.keys() {
            if let Err(e) = self.file(id) {
                tracing::error!(message = %id, err = %e, "cannot prepare a voice message");
            }
        }
    }

    /// The audio file of message `id`, synthesised now if it is a text not cached yet (blocking).
    pub fn file(&self, id: &str) -> Result<PathBuf, TalkError> {
        match self.entries.get(id) {
            None => Err(TalkError::UnknownMessage(id.to_string())),
            Some(Entry::File(path)) => Ok(path.clone()),
            Some(Entry::Text(text)) => {
                let key =
                    bl_proto::evidence::sha256_hex(format!("{}\n{text}", self.voice).as_bytes());
                let path = self
                    .cache_dir
                    .join(format!("{id}-{}.wav", &key.as_str()[..16]));
                if !path.is_file() {
                    synthesise(&self.voice, text, &path)?;
                    tracing::info!(message = %id, path = %path.display(), "voice message synthesised");
                }
                Ok(path)
            }
        }
    }
}

/// `espeak-ng -v VOICE -w OUT TEXT`, written beside and renamed, so a crash leaves no half file.
fn synthesise(voice: &str, text: &str, out: &Path) -> Result<(), TalkError> {
    let dir = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| {
        TalkError::Internal(format!(
            "cannot create the voice cache {}: {e}",
            dir.display()
        ))
    })?;
    let partial = out.with_extension("wav.partial");
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-w"])
        .arg(&partial)
        .arg("--")
        .arg(text)
        .output()
        .map_err(|e| {
            TalkError::Internal(format!(
                "cannot run espeak-ng ({e}); install it (deploy/dev/install-deps.sh)"
            ))
        })?;
    if !status.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(TalkError::Internal(format!(
            "espeak-ng failed ({}): {}",
            status.status,
            String::from_utf8_lossy(&status.stderr).trim()
        )));
    }
    std::fs::rename(&partial, out)
        .map_err(|e| TalkError::Internal(format!("cannot store {}: {e}", out.display())))
}
