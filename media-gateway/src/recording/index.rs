//! The recording index: SQLite (WAL, `synchronous=FULL`) at `{data_dir}/recordings/index.sqlite`.
//!
//! One table of entries in chain order (`id`): segments (a file) and gaps (time not recorded, with
//! the reason), each with its hash and the previous entry's (`prevHash`, see [`super::chain`]), a
//! `held` flag set by legal holds, and `pruned_at_ms` once retention removed the file (the row stays,
//! so the chain stays checkable). One table of holds. Rows are never deleted.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use super::chain::{self, GENESIS};

/// The index could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("recording index: {0}")]
pub struct IndexError(#[from] rusqlite::Error);

impl IndexError {
    /// True when SQLite could not write because the disk is full.
    pub fn is_storage_full(&self) -> bool {
        matches!(&self.0, rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull)
    }
}

/// Whether an entry is a recorded file or a recorded absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A segment file.
    Segment,
    /// Time not recorded (source dropped, restart, full disk, stopped), stated explicitly.
    Gap,
}

/// One index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the global order (the chain order of each camera).
    pub id: i64,
    /// The camera.
    pub camera: String,
    /// Segment or gap.
    pub kind: EntryKind,
    /// Start, Unix ms, UTC.
    pub start_ms: i64,
    /// End, Unix ms, UTC.
    pub end_ms: i64,
    /// The segment file relative to the recordings folder; none for a gap.
    pub path: Option<String>,
    /// Bytes of the file (0 for a gap).
    pub size: u64,
    /// The file's SHA-256, or the gap's hash.
    pub sha256: String,
    /// The hash of the camera's previous entry, or [`GENESIS`].
    pub prev_hash: String,
    /// Why a gap happened.
    pub reason: Option<String>,
    /// Under legal hold: retention never removes it.
    pub held: bool,
    /// When retention removed the file, Unix ms.
    pub pruned_at_ms: Option<i64>,
}

/// A finished segment to index.
#[derive(Debug, Clone)]
pub struct NewSegment {
    /// Start, Unix ms.
    pub start_ms: i64,
    /// End, Unix ms.
    pub end_ms: i64,
    /// Relative path of the durable file.
    pub path: String,
    /// Its size.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: String,
}

/// A legal hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Its id.
    pub id: i64,
    /// The camera.
    pub camera: String,
    /// Held from, Unix ms.
    pub from_ms: i64,
    /// Held until, Unix ms.
    pub to_ms: i64,
    /// The case (incident) it belongs to.
    pub case_id: String,
    /// Who placed it (the token's subject).
    pub by: String,
    /// When, Unix ms.
    pub created_ms: i64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entry (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('segment', 'gap')),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    path TEXT UNIQUE,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    reason TEXT,
    held INTEGER NOT NULL DEFAULT 0,
    pruned_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS entry_camera ON entry (camera, id);
CREATE TABLE IF NOT EXISTS hold (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    from_ms INTEGER NOT NULL,
    to_ms INTEGER NOT NULL,
    case_id TEXT NOT NULL,
    by TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
";

const COLUMNS: &str =
    "id, camera, kind, start_ms, end_ms, path, size, sha256, prev_hash, reason, held, pruned_at_ms";

/// The open index.
pub struct Index {
    conn: Connection,
}

impl Index {
    /// Opens (creating if needed) the index at `path` for writing.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a committed row survives a power loss (NORMAL could lose the last ones in WAL mode).
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn })
    }

    /// Opens an existing index read-only (the offline verifier; works while the gateway writes).
    pub fn open_read_only(path: &Path) -> Result<Self, IndexError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Self { conn })
    }

    /// The last entry of `camera`'s chain.
    pub fn last(&self, camera: &str) -> Result<Option<Entry>, IndexError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM entry WHERE camera = ?1 ORDER BY id DESC LIMIT 1"),
                [camera],
                entry,
            )
            .optional()?)
    }

    /// Appends a segment to `camera`'s chain in one transaction, preceded by a gap entry from the
    /// end of the chain to the segment's start when `gap_reason` is given and the chain is not
    /// empty. The segment is held if a hold of the camera covers it. Returns the segment's entry.
    pub fn append_segment(
        &mut self,
        camera: &str,
        segment: &NewSegment,
        gap_reason: Option<&str>,
    ) -> Result<Entry, IndexError> {
        let tx = self.conn.transaction()?;
        let last: Option<(String, i64)> = tx
            .query_row(
                "SELECT sha256, end_ms FROM entry WHERE camera = ?1 ORDER BY id DESC LIMIT 1",
                [camera],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let mut prev = last
            .as_ref()
            .map_or_else(|| GENESIS.to_owned(), |(h, _)| h.clone());
        if let (Some(reason), Some((_, last_end))) = (gap_reason, &last) {
            let start = *last_end;
            let end = segment.start_ms.max(start);
            let hash = chain::gap_hash(camera, start, end, reason, &prev);
            tx.execute(
                "INSERT INTO entry (camera, kind, start_ms, end_ms, size, sha256, prev_hash, reason)
                 VALUES (?1, 'gap', ?2, ?3, 0, ?4, ?5, ?6)",
                params![camera, start, end, hash, prev, reason],
            )?;
            prev = hash;
        }
        let held: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM hold WHERE camera = ?1 AND from_ms < ?3 AND to_ms > ?2)",
            params![camera, segment.start_ms, segment.end_ms],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO entry (camera, kind, start_ms, end_ms, path, size, sha256, prev_hash, held)
             VALUES (?1, 'segment', ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                camera,
                segment.start_ms,
                segment.end_ms,
                segment.path,
                segment.size as i64,
                segment.sha256,
                prev,
                held
            ],
        )?;
        let id = tx.last_insert_rowid();
        let e = tx.query_row(
            &format!("SELECT {COLUMNS} FROM entry WHERE id = ?1"),
            [id],
            entry,
        )?;
        tx.commit()?;
        Ok(e)
    }

    /// Every entry of `camera` in chain order.
    pub fn entries(&self, camera: &str) -> Result<Vec<Entry>, IndexError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM entry WHERE camera = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([camera], entry)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The cameras with entries.
    pub fn cameras(&self) -> Result<Vec<String>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT camera FROM entry ORDER BY camera")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether `path` is indexed (as a segment, pruned or not).
    pub fn has_path(&self, path: &str) -> Result<bool, IndexError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM entry WHERE path = ?1)",
            [path],
            |r| r.get(0),
        )?)
    }

    /// Places a hold on `camera` from `from_ms` to `to_ms` and marks the segments it covers held;
    /// segments recorded later inside the range are held when indexed. Returns the hold and how many
    /// stored segments it covers.
    pub fn add_hold(
        &mut self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
        case_id: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<(Hold, u64), IndexError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO hold (camera, from_ms, to_ms, case_id, by, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![camera, from_ms, to_ms, case_id, by, now_ms],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE entry SET held = 1
             WHERE camera = ?1 AND kind = 'segment' AND start_ms < ?3 AND end_ms > ?2",
            params![camera, from_ms, to_ms],
        )?;
        let covered: i64 = tx.query_row(
            "SELECT COUNT(*) FROM entry WHERE camera = ?1 AND kind = 'segment'
             AND pruned_at_ms IS NULL AND start_ms < ?3 AND end_ms > ?2",
            params![camera, from_ms, to_ms],
            |r| r.get(0),
        )?;
        tx.commit()?;
        let hold = Hold {
            id,
            camera: camera.to_owned(),
            from_ms,
            to_ms,
            case_id: case_id.to_owned(),
            by: by.to_owned(),
            created_ms: now_ms,
        };
        Ok((hold, covered as u64))
    }

    /// The holds of `camera`.
    pub fn holds(&self, camera: &str) -> Result<Vec<Hold>, IndexError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, camera, from_ms, to_ms, case_id, by, created_ms FROM hold WHERE camera = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([camera], |r| {
            Ok(Hold {
                id: r.get(0)?,
                camera: r.get(1)?,
                from_ms: r.get(2)?,
                to_ms: r.get(3)?,
                case_id: r.get(4)?,
                by: r.get(5)?,
                created_ms: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Segments whose files are kept (not pruned), oldest end first: what retention chooses from.
    pub fn kept_segments(&self) -> Result<Vec<Entry>, IndexError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM entry WHERE kind = 'segment' AND pruned_at_ms IS NULL
             ORDER BY end_ms, id"
        ))?;
        let rows = stmt.query_map([], entry)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks segments pruned (never held ones: the condition is in the statement too). Returns the
    /// paths of those marked, whose files may now be removed.
    pub fn mark_pruned(&mut self, ids: &[i64], now_ms: i64) -> Result<Vec<String>, IndexError> {
        let tx = self.conn.transaction()?;
        let mut paths = Vec::new();
        for id in ids {
            let path: Option<String> = tx
                .query_row(
                    "UPDATE entry SET pruned_at_ms = ?2
                     WHERE id = ?1 AND kind = 'segment' AND held = 0 AND pruned_at_ms IS NULL
                     RETURNING path",
                    params![id, now_ms],
                    |r| r.get(0),
                )
                .optional()?;
            paths.extend(path);
        }
        tx.commit()?;
        Ok(paths)
    }

    /// Paths of pruned segments (their files should be gone; a crash may have left some).
    pub fn pruned_paths(&self) -> Result<Vec<String>, IndexError> {
        let mut stmt = self.conn.prepare(
            "SELECT path FROM entry WHERE kind = 'segment' AND pruned_at_ms IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Kept segments and their bytes for `camera`.
    pub fn totals(&self, camera: &str) -> Result<(u64, u64), IndexError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entry
             WHERE camera = ?1 AND kind = 'segment' AND pruned_at_ms IS NULL",
            [camera],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }
}

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let kind: String = r.get(2)?;
    Ok(Entry {
        id: r.get(0)?,
        camera: r.get(1)?,
        kind: if kind == "gap" {
            EntryKind::Gap
        } else {
            EntryKind::Segment
        },
        start_ms: r.get(3)?,
        end_ms: r.get(4)?,
        path: r.get(5)?,
        size: r.get::<_, i64>(6)? as u64,
        sha256: r.get(7)?,
        prev_hash: r.get(8)?,
        reason: r.get(9)?,
        held: r.get(10)?,
        pruned_at_ms: r.get(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: i64, path: &str, sha: char) -> NewSegment {
        NewSegment {
            start_ms: start,
            end_ms: start + 10_000,
            path: path.into(),
            size: 100,
            sha256: sha.to_string().repeat(64),
        }
    }

    #[test]
    fn segments_chain_per_camera_and_a_gap_is_an_entry_of_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let a = ix
            .append_segment("cam-1", &seg(0, "a", 'a'), Some("started"))
            .unwrap();
        assert_eq!(a.prev_hash, GENESIS, "no gap before the first segment");
        ix.append_segment("cam-2", &seg(0, "x", 'x'), None).unwrap();
        let b = ix
            .append_segment("cam-1", &seg(10_000, "b", 'b'), None)
            .unwrap();
        assert_eq!(b.prev_hash, a.sha256);
        let c = ix
            .append_segment("cam-1", &seg(30_000, "c", 'c'), Some("source dropped"))
            .unwrap();
        let all = ix.entries("cam-1").unwrap();
        assert_eq!(all.len(), 4);
        let gap = &all[2];
        assert_eq!(gap.kind, EntryKind::Gap);
        assert_eq!((gap.start_ms, gap.end_ms), (20_000, 30_000));
        assert_eq!(gap.prev_hash, b.sha256);
        assert_eq!(c.prev_hash, gap.sha256);
        assert!(
            chain::breaks(
                all.iter()
                    .map(|e| (e.sha256.as_str(), e.prev_hash.as_str()))
            )
            .is_empty()
        );
    }

    #[test]
    fn a_hold_marks_what_it_covers_and_what_is_recorded_later_inside_it_and_pruning_skips_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let a = ix.append_segment("cam-1", &seg(0, "a", 'a'), None).unwrap();
        let b = ix
            .append_segment("cam-1", &seg(10_000, "b", 'b'), None)
            .unwrap();
        let (_, covered) = ix
            .add_hold("cam-1", 12_000, 25_000, "INC-1", "op", 1)
            .unwrap();
        assert_eq!(covered, 1);
        let c = ix
            .append_segment("cam-1", &seg(20_000, "c", 'c'), None)
            .unwrap();
        assert!(c.held, "recorded later inside the hold");
        let pruned = ix.mark_pruned(&[a.id, b.id, c.id], 5).unwrap();
        assert_eq!(pruned, ["a"]);
        assert_eq!(ix.pruned_paths().unwrap(), ["a"]);
        assert_eq!(ix.totals("cam-1").unwrap(), (2, 200));
    }
}
