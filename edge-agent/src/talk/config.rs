//! `[talk]` in `edge.toml`: the box's own speaker, the stored voice messages and the automatic
//! voice warnings. Which camera can speak is its `[[camera]] backchannel_url`.

use bl_proto::CameraId;
use bl_proto::config::HoursRange;
use bl_proto::event::ViolationKind;
use bl_service::config::{ConfigError, field_error};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The premises kinds a warning rule may name (as dispatch's registry spells them).
pub const PREMISES_KINDS: [&str; 5] = [
    "schoolCanteen",
    "restaurant",
    "centralKitchen",
    "pharmacy",
    "other",
];

/// `[talk]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TalkConfig {
    /// The box's own speaker as a GStreamer sink description (`autoaudiosink`,
    /// `alsasink device=hw:1`), used for `output = speaker` and for cameras without a
    /// backchannel. Default: none (the box has no speaker).
    #[serde(default)]
    pub speaker: Option<String>,
    /// The premises kind of this box (`schoolCanteen`, `restaurant`, `centralKitchen`, `pharmacy`,
    /// `other`); picks the warning rules that name it. Default: none (only rules that name no kind).
    #[serde(default)]
    pub premises_kind: Option<String>,
    /// espeak-ng voice for messages given as text. Default `cmn` (Mandarin).
    #[serde(default = "default_voice")]
    pub voice: String,
    /// Where synthesised messages are kept. Default `voice-cache` beside the config file.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: PathBuf,
    /// The stored voice messages. Default: none.
    #[serde(default)]
    pub message: Vec<MessageConfig>,
    /// When the box warns on its own at an episode's start. Default: never.
    #[serde(default)]
    pub warning: Vec<WarningRule>,
}

/// `[[talk.message]]`: one stored voice message, a file or a text to synthesise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageConfig {
    /// The message id the center names in `playMessage` (e.g. `wear-hat-zh`). Required.
    pub id: String,
    /// An audio file (WAV or Ogg), relative to the config file. Default: none.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Text spoken by espeak-ng when no file is given (synthesised once, then cached). Default: none.
    #[serde(default)]
    pub text: Option<String>,
}

/// `[[talk.warning]]`: play `message` when an episode of `kind` starts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarningRule {
    /// The violation. Required.
    pub kind: ViolationKind,
    /// The message id to play. Required.
    pub message: String,
    /// Premises kinds this rule is for. Default: all.
    #[serde(default)]
    pub premises: Vec<String>,
    /// Cameras this rule is for. Default: all.
    #[serde(default)]
    pub cameras: Vec<CameraId>,
    /// Local hours in which it applies (the opening hours), e.g. `{ from = "06:00", to = "20:00" }`.
    /// Default: all day.
    #[serde(default)]
    pub hours: Option<HoursRange>,
}

fn default_voice() -> String {
    "cmn".into()
}
fn default_cache_dir() -> PathBuf {
    PathBuf::from("voice-cache")
}

impl Default for TalkConfig {
    /// No speaker, messages or rules; the defaults above (a box without `[talk]` still speaks the
    /// center's messages through its cameras' backchannels).
    fn default() -> TalkConfig {
        TalkConfig {
            speaker: None,
            premises_kind: None,
            voice: default_voice(),
            cache_dir: default_cache_dir(),
            message: Vec::new(),
            warning: Vec::new(),
        }
    }
}

impl TalkConfig {
    /// Resolves relative paths against `base` (the config file's folder).
    pub fn resolve(&mut self, base: &Path) {
        self.cache_dir = base.join(&self.cache_dir);
        for m in &mut self.message {
            m.file = m.file.as_ref().map(|f| base.join(f));
        }
    }

    /// Checks the table as a whole; `cameras` are the ids of `[[camera]]`.
    pub fn validate(&self, path: &Path, cameras: &[CameraId]) -> Result<(), ConfigError> {
        if let Some(kind) = &self.premises_kind {
            premises_kind(path, "talk.premises_kind", kind)?;
        }
        if self.speaker.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(field_error(path, "talk.speaker", "must not be empty"));
        }
        if !self
            .voice
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'+')
            || self.voice.is_empty()
        {
            return Err(field_error(
                path,
                "talk.voice",
                format!("{:?} is not an espeak-ng voice name", self.voice),
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, m) in self.message.iter().enumerate() {
            let field = |name: &str| format!("talk.message[{i}].{name}");
            bl_proto::id::validate_id("message id", &m.id)
                .map_err(|e| field_error(path, &field("id"), e.to_string()))?;
            if !ids.insert(m.id.as_str()) {
                return Err(field_error(
                    path,
                    &field("id"),
                    format!("{} appears twice", m.id),
                ));
            }
            match (&m.file, &m.text) {
                (None, None) => {
                    return Err(field_error(path, &field("file"), "give a file or a text"));
                }
                (Some(file), _) if !file.is_file() => {
                    return Err(field_error(
                        path,
                        &field("file"),
                        format!("{} is not a readable file", file.display()),
                    ));
                }
                (None, Some(text)) if text.trim().is_empty() || text.len() > 1000 => {
                    return Err(field_error(
                        path,
                        &field("text"),
                        "must be 1 to 1000 bytes of text",
                    ));
                }
                _ => {}
            }
        }
        for (i, w) in self.warning.iter().enumerate() {
            let field = |name: &str| format!("talk.warning[{i}].{name}");
            if !ids.contains(w.message.as_str()) {
                return Err(field_error(
                    path,
                    &field("message"),
                    format!("{:?} is not a [[talk.message]] id", w.message),
                ));
            }
            for kind in &w.premises {
                premises_kind(path, &field("premises"), kind)?;
            }
            if let Some(c) = w.cameras.iter().find(|c| !cameras.contains(c)) {
                return Err(field_error(
                    path,
                    &field("cameras"),
                    format!("{c} is not a [[camera]] id"),
                ));
            }
        }
        Ok(())
    }
}

fn premises_kind(path: &Path, field: &str, kind: &str) -> Result<(), ConfigError> {
    if PREMISES_KINDS.contains(&kind) {
        return Ok(());
    }
    Err(field_error(
        path,
        field,
        format!("{kind:?} is not one of {}", PREMISES_KINDS.join(", ")),
    ))
}
