//! Reading what a camera heard: each client session of an ONVIF camera's backchannel is recorded
//! to `{dir}/{camera}-backchannel-{timestamp}.wav` (16-bit mono PCM, 8 kHz, a 44-byte header; see
//! `server::factory`). Tests of talk-down, broadcast and voice warnings read them here.

use std::path::{Path, PathBuf};

/// The file name of a recording of `camera` started at `stamp`.
pub(crate) fn file_name(camera: &str, stamp: &str) -> String {
    format!("{camera}-backchannel-{stamp}.wav")
}

/// The backchannel recordings of `camera` in `dir`, oldest first (none if `dir` is missing).
pub fn recordings(dir: &Path, camera: &str) -> Vec<PathBuf> {
    let prefix = format!("{camera}-backchannel-");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The samples of one recording, as far as it is written (empty if it cannot be read).
pub fn samples(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes
        .get(44..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Everything `camera` heard: its recordings' samples, one after another.
pub fn heard(dir: &Path, camera: &str) -> Vec<i16> {
    recordings(dir, camera)
        .iter()
        .flat_map(|p| samples(p))
        .collect()
}
