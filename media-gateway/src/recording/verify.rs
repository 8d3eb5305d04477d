//! Offline verification of a recordings folder (`{data_dir}/recordings`, or a copy of it): no server,
//! no config. For each camera (or the one asked for), in chain order: every entry names the hash of
//! the one before it ([`chain::breaks`]); every gap's hash matches what it says; every kept segment's
//! file exists with the indexed size and SHA-256; no held segment was pruned; and no file lies in the
//! folder without an index entry, except a complete segment newer than the camera's last entry (the
//! documented window between a segment's file and its row; noted, and indexed by the gateway when the
//! camera records next). Each problem names the file or entry.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use super::INDEX_FILE;
use super::chain;
use super::index::{EntryKind, Index};
use super::recorder::rfc3339;
use super::segment;
use crate::durable::{hash_file, list_files};

/// One thing that does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The index cannot be opened or read.
    Index(String),
    /// An indexed segment's file is gone (and retention did not prune it).
    MissingSegment(String),
    /// A segment's bytes differ from the index.
    AlteredSegment {
        /// The file.
        file: String,
        /// What differs.
        detail: String,
    },
    /// An entry's `prevHash` is not the previous entry's hash: an entry was removed, inserted or
    /// rewritten.
    BrokenChain {
        /// The camera.
        camera: String,
        /// The entry (its file, or the gap's time range).
        entry: String,
        /// What it names and what it should.
        detail: String,
    },
    /// A gap entry's hash does not match its fields.
    AlteredGap {
        /// The camera.
        camera: String,
        /// The gap's time range.
        entry: String,
    },
    /// A held segment was removed.
    HeldSegmentPruned(String),
    /// A segment file no entry names.
    ExtraFile(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Index(d) => write!(f, "index: {INDEX_FILE}: {d}"),
            Problem::MissingSegment(file) => write!(f, "missing segment: {file}"),
            Problem::AlteredSegment { file, detail } => {
                write!(f, "altered segment: {file}: {detail}")
            }
            Problem::BrokenChain {
                camera,
                entry,
                detail,
            } => write!(f, "broken chain: camera {camera} at {entry}: {detail}"),
            Problem::AlteredGap { camera, entry } => {
                write!(
                    f,
                    "altered gap entry: camera {camera} gap {entry}: its hash does not match it"
                )
            }
            Problem::HeldSegmentPruned(file) => write!(f, "held segment pruned: {file}"),
            Problem::ExtraFile(file) => write!(f, "extra file: {file} is not in the index"),
        }
    }
}

/// The result of a verification.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// What does not match; empty means intact.
    pub problems: Vec<Problem>,
    /// Facts worth printing (pruned segments, gaps, files being written).
    pub notes: Vec<String>,
    /// Segments whose bytes matched.
    pub segments_ok: usize,
    /// Cameras checked.
    pub cameras: usize,
}

impl Report {
    /// True when nothing mismatched.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// What `media-gateway verify` prints for recordings in `dir`: notes, one `FAIL …` line per
    /// problem, then an `OK …` line or the count of problems.
    pub fn render(&self, dir: &Path) -> String {
        let mut out = String::new();
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        for problem in &self.problems {
            out.push_str(&format!("FAIL {problem}\n"));
        }
        if self.is_intact() {
            out.push_str(&format!(
                "OK {}: hash chains of {} camera(s) and {} segment(s) verified\n",
                dir.display(),
                self.cameras,
                self.segments_ok
            ));
        } else {
            out.push_str(&format!(
                "{} problem(s) in {}\n",
                self.problems.len(),
                dir.display()
            ));
        }
        out
    }
}

/// The recordings folder `dir` names: `dir` itself or its `recordings` subfolder (a gateway's
/// `data_dir`), if either holds the index.
pub fn find_recordings_dir(dir: &Path) -> Option<std::path::PathBuf> {
    [dir.to_owned(), dir.join("recordings")]
        .into_iter()
        .find(|d| is_recordings_dir(d))
}

/// True when `dir` looks like a recordings folder (it holds the index).
pub fn is_recordings_dir(dir: &Path) -> bool {
    dir.join(INDEX_FILE).is_file()
}

/// Verifies the recordings in `dir`, all cameras or only `camera`.
pub fn verify(dir: &Path, camera: Option<&str>) -> Report {
    let mut report = Report::default();
    let index = match Index::open_read_only(&dir.join(INDEX_FILE)) {
        Ok(ix) => ix,
        Err(e) => {
            report.problems.push(Problem::Index(e.to_string()));
            return report;
        }
    };
    let cameras = match camera {
        Some(c) => vec![c.to_owned()],
        None => match index.cameras() {
            Ok(c) => c,
            Err(e) => {
                report.problems.push(Problem::Index(e.to_string()));
                return report;
            }
        },
    };
    for camera in &cameras {
        check_camera(dir, &index, camera, &mut report);
    }
    report.cameras = cameras.len();
    report
}

fn check_camera(dir: &Path, index: &Index, camera: &str, report: &mut Report) {
    let entries = match index.entries(camera) {
        Ok(e) => e,
        Err(e) => {
            report.problems.push(Problem::Index(e.to_string()));
            return;
        }
    };
    let name = |e: &super::index::Entry| {
        e.path
            .clone()
            .unwrap_or_else(|| format!("gap {} – {}", rfc3339(e.start_ms), rfc3339(e.end_ms)))
    };
    for b in chain::breaks(
        entries
            .iter()
            .map(|e| (e.sha256.as_str(), e.prev_hash.as_str())),
    ) {
        let e = &entries[b.position];
        report.problems.push(Problem::BrokenChain {
            camera: camera.to_owned(),
            entry: name(e),
            detail: format!(
                "prevHash is {} but the entry before it has hash {} (an entry was removed, inserted or rewritten)",
                b.prev_hash, b.expected
            ),
        });
    }
    let mut named = BTreeSet::new();
    let (mut gaps, mut pruned) = (0, 0);
    for e in &entries {
        match e.kind {
            EntryKind::Gap => {
                gaps += 1;
                let reason = e.reason.as_deref().unwrap_or("");
                if chain::gap_hash(camera, e.start_ms, e.end_ms, reason, &e.prev_hash) != e.sha256 {
                    report.problems.push(Problem::AlteredGap {
                        camera: camera.to_owned(),
                        entry: name(e),
                    });
                }
            }
            EntryKind::Segment => {
                let Some(path) = &e.path else { continue };
                named.insert(path.clone());
                if e.pruned_at_ms.is_some() {
                    pruned += 1;
                    if e.held {
                        report
                            .problems
                            .push(Problem::HeldSegmentPruned(path.clone()));
                    }
                    continue;
                }
                match hash_file(&dir.join(path)) {
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        report.problems.push(Problem::MissingSegment(path.clone()));
                    }
                    Err(err) => report.problems.push(Problem::AlteredSegment {
                        file: path.clone(),
                        detail: format!("cannot be read: {err}"),
                    }),
                    Ok((size, sha)) => {
                        let mut wrong = Vec::new();
                        if size != e.size {
                            wrong.push(format!("size is {size}, index says {}", e.size));
                        }
                        if sha != e.sha256 {
                            wrong.push(format!("sha256 is {sha}, index says {}", e.sha256));
                        }
                        if wrong.is_empty() {
                            report.segments_ok += 1;
                        } else {
                            report.problems.push(Problem::AlteredSegment {
                                file: path.clone(),
                                detail: wrong.join("; "),
                            });
                        }
                    }
                }
            }
        }
    }
    let last_start = entries.last().map(|e| e.start_ms);
    for file in list_files(&dir.join(camera)) {
        let rel = format!("{camera}/{file}");
        if file.starts_with(".partial-") {
            report.notes.push(format!(
                "{rel}: a segment being written (or left by a crash), not checked"
            ));
        } else if !named.contains(&rel) {
            // A complete segment newer than the last entry is the crash (or full-disk) window
            // between the file and its row: the gateway indexes it when the camera records next.
            let pending = file
                .rsplit('/')
                .next()
                .and_then(segment::parse_name)
                .is_some_and(|(start, _)| last_start.is_none_or(|last| start > last));
            if pending {
                report.notes.push(format!(
                    "{rel}: a complete segment not indexed yet (indexed when the camera records next)"
                ));
            } else {
                report.problems.push(Problem::ExtraFile(rel));
            }
        }
    }
    report.notes.push(format!(
        "camera {camera}: {} entries, {gaps} gap(s), {pruned} segment(s) pruned by retention",
        entries.len()
    ));
}
