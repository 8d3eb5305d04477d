//! Recordings a gateway stopped in the middle of (a crash, a kill, a power cut). Each recording in
//! progress has, beside its file in `voicerec/tmp/`, a note of who and what it is about
//! (`{id}.json`), written durably before any sound. At the next start every noted file is kept
//! as a recording of the sound up to the stop — WebM is written cluster by cluster, so all but the
//! last moments are there — and reported with its end marked as missing. Whatever else is left in
//! `tmp/` (the file of a recording being thrown away) is removed.

use std::path::{Path, PathBuf};

use bl_proto::CameraId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{VoiceKind, VoiceMeta};

/// What the premises note of a recovered recording says.
pub const CUT_SHORT: &str = "the gateway stopped during this recording: its end is missing and the camera's side is unchecked";

/// The note kept beside a recording in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unfinished {
    /// Format version, 1.
    pub v: u32,
    /// Talk, broadcast or push-to-talk.
    pub kind: VoiceKind,
    /// The talker's user id.
    pub talker: String,
    /// The cameras; the first names the blob.
    pub cameras: Vec<CameraId>,
    /// The broadcast, if one.
    pub broadcast: Option<uuid::Uuid>,
    /// Whether the premises direction was being recorded.
    pub premises: bool,
    /// When the recording started.
    #[serde(with = "bl_proto::time::millis")]
    pub started_at: DateTime<Utc>,
}

impl Unfinished {
    /// The note of a recording of `meta` starting now.
    pub fn new(meta: &VoiceMeta, started_at: DateTime<Utc>) -> Self {
        Self {
            v: 1,
            kind: meta.kind,
            talker: meta.talker.clone(),
            cameras: meta.cameras.clone(),
            broadcast: meta.broadcast,
            premises: meta.premises,
            started_at: bl_proto::time::to_millis(started_at),
        }
    }

    /// Writes the note of the recording written to `file` (same name, `.json`), durably.
    pub fn write_beside(&self, file: &Path) -> std::io::Result<()> {
        let (Some(dir), Some(name)) = (file.parent(), file.file_stem()) else {
            return Err(std::io::Error::other(
                "a recording file needs a folder and a name",
            ));
        };
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::durable::write_atomically(dir, &format!("{}.json", name.to_string_lossy()), &json)
    }
}

/// The note of the recording written to `file`.
pub fn note_of(file: &Path) -> PathBuf {
    file.with_extension("json")
}

/// What a previous run left in `tmp`: each recording file with its note (None when the note is
/// missing or unreadable), listed now so that recordings started later are not among them.
pub fn left_in(tmp: &Path) -> Vec<(PathBuf, Option<Unfinished>)> {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return Vec::new();
    };
    let mut left: Vec<(PathBuf, Option<Unfinished>)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "webm"))
        .map(|file| {
            let note = std::fs::read(note_of(&file))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            (file, note)
        })
        .collect();
    left.sort_by(|a, b| a.0.cmp(&b.0));
    left
}

/// Notes without a recording file and half-written notes: nothing to keep.
pub fn stray_notes(tmp: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.starts_with('.') && name.ends_with(".tmp")
                || p.extension().is_some_and(|x| x == "json") && !p.with_extension("webm").exists()
        })
        .collect()
}
