//! Segment files on disk and the crash-safe order that makes one durable before it is indexed.
//!
//! ```text
//! {recordings}/{camera}/.partial-{uuid}.mp4                                   being written
//! {recordings}/{camera}/{YYYY-MM-DD}/{start}_{end}.mp4   e.g. 20261124T013005.123Z_20261124T013015.120Z.mp4
//! ```
//!
//! [`commit`]: `fsync` the finished partial file, `rename` it to its final name (times in UTC), `fsync`
//! the day folder (and the camera folder, which lost the partial name and may have gained the day
//! folder), hash it. Only then does the caller write the index row. A crash leaves a partial file
//! (removed at the next start: [`remove_partials`]) or a complete, durable, correctly named file
//! without a row (indexed at the next start: [`unindexed`]), never a row without its file.

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::durable;

const TIME_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";

/// A durable segment file, ready to be indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Path relative to the recordings folder.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// A fresh name for the file splitmuxsink writes next.
pub fn partial_path(recordings: &Path, camera: &str) -> PathBuf {
    recordings
        .join(camera)
        .join(format!(".partial-{}.mp4", uuid::Uuid::now_v7()))
}

/// The final path of a segment, relative to the recordings folder.
pub fn final_path(camera: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    format!(
        "{camera}/{}/{}_{}.mp4",
        start.format("%Y-%m-%d"),
        start.format(TIME_FORMAT),
        end.format(TIME_FORMAT)
    )
}

/// The start and end (Unix ms) a final segment file name states.
pub fn parse_name(name: &str) -> Option<(i64, i64)> {
    let stem = name.strip_suffix(".mp4")?;
    let (start, end) = stem.split_once('_')?;
    let t = |s: &str| {
        NaiveDateTime::parse_from_str(s, TIME_FORMAT)
            .ok()
            .map(|t| t.and_utc().timestamp_millis())
    };
    Some((t(start)?, t(end)?))
}

/// Makes the finished `partial` durable under its final name and hashes it (see the module doc).
pub fn commit(
    recordings: &Path,
    partial: &Path,
    camera: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> io::Result<Committed> {
    std::fs::File::open(partial)?.sync_all()?;
    let rel = final_path(camera, start, end);
    let target = recordings.join(&rel);
    let day = target.parent().unwrap_or(recordings);
    let camera_dir = recordings.join(camera);
    std::fs::create_dir_all(day)?;
    std::fs::rename(partial, &target)?;
    durable::sync_dir(day)?;
    durable::sync_dir(&camera_dir)?;
    let (size, sha256) = durable::hash_file(&target)?;
    Ok(Committed {
        path: rel,
        size,
        sha256,
    })
}

/// Removes partial files of `camera` (a crash or a failed run left them); returns how many.
pub fn remove_partials(recordings: &Path, camera: &str) -> io::Result<usize> {
    let dir = recordings.join(camera);
    let mut removed = 0;
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(".partial-") {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        durable::sync_dir(&dir)?;
    }
    Ok(removed)
}

/// Final segment files of `camera` that `is_indexed` does not know, with the times their names
/// state, oldest first: complete files whose index row a crash or a full disk prevented. Only day
/// folders from `since_ms`'s day on are read.
pub fn unindexed(
    recordings: &Path,
    camera: &str,
    since_ms: i64,
    is_indexed: &mut dyn FnMut(&str) -> bool,
) -> io::Result<Vec<(String, i64, i64)>> {
    let since_day = DateTime::from_timestamp_millis(since_ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    let mut out = Vec::new();
    let camera_dir = recordings.join(camera);
    let days = match std::fs::read_dir(&camera_dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for day in days {
        let day = day?;
        let day_name = day.file_name().to_string_lossy().into_owned();
        if !day.file_type()?.is_dir() || day_name < since_day {
            continue;
        }
        for file in std::fs::read_dir(day.path())? {
            let name = file?.file_name().to_string_lossy().into_owned();
            let Some((start, end)) = parse_name(&name) else {
                continue;
            };
            let rel = format!("{camera}/{day_name}/{name}");
            if !is_indexed(&rel) {
                out.push((rel, start, end));
            }
        }
    }
    out.sort_by_key(|(_, start, _)| *start);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_name_states_its_utc_times_to_the_millisecond() {
        let start = DateTime::from_timestamp_millis(1_764_000_005_123).unwrap();
        let end = DateTime::from_timestamp_millis(1_764_000_015_120).unwrap();
        let p = final_path("cam-1", start, end);
        assert_eq!(
            p,
            "cam-1/2025-11-24/20251124T160005.123Z_20251124T160015.120Z.mp4"
        );
        let name = p.rsplit('/').next().unwrap();
        assert_eq!(
            parse_name(name),
            Some((1_764_000_005_123, 1_764_000_015_120))
        );
        assert_eq!(parse_name(".partial-x.mp4"), None);
    }

    #[test]
    fn a_committed_segment_has_its_final_name_and_hash_and_leftovers_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("cam-1")).unwrap();
        let partial = partial_path(root, "cam-1");
        std::fs::write(&partial, b"abc").unwrap();
        let start = DateTime::from_timestamp_millis(1_764_000_000_000).unwrap();
        let end = DateTime::from_timestamp_millis(1_764_000_010_000).unwrap();
        let c = commit(root, &partial, "cam-1", start, end).unwrap();
        assert_eq!(c.size, 3);
        assert!(root.join(&c.path).exists() && !partial.exists());
        std::fs::write(partial_path(root, "cam-1"), b"half").unwrap();
        assert_eq!(remove_partials(root, "cam-1").unwrap(), 1);
        let found = unindexed(root, "cam-1", 0, &mut |_| false).unwrap();
        assert_eq!(
            found,
            [(c.path.clone(), 1_764_000_000_000, 1_764_000_010_000)]
        );
        assert!(
            unindexed(root, "cam-1", 0, &mut |_| true)
                .unwrap()
                .is_empty()
        );
    }
}
