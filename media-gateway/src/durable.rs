//! Crash-safe file helpers shared by the evidence store and recording: making a folder's entries
//! durable, hashing a file, listing a folder tree, telling a full disk from other I/O failures, and
//! asking how much room a filesystem has. Blocking; async callers wrap them in `spawn_blocking`.

use std::io;
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// `fsync`s the folder `dir`, so the names created, renamed or removed in it survive a power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// The size and lowercase hex SHA-256 of the file at `path`, read in one pass.
pub fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let size = io::copy(&mut file, &mut hasher)?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// Writes `bytes` as `dir/name` so that a crash leaves either the whole file or none: a hidden
/// temporary file, fsynced, renamed into place, then the folder fsynced. Creates `dir`.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Every file under `dir` as a `/`-separated path relative to it, sorted (unreadable folders are
/// skipped: their files then show up as missing to a verifier).
pub fn list_files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(&entry.path(), &format!("{name}/"), out),
                _ => out.push(name),
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// True when `e` means the disk or the user's quota is full (`ENOSPC`, `EDQUOT`).
pub fn is_storage_full(e: &io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
}

/// Bytes an unprivileged writer can still put on the filesystem holding `path`.
pub fn available_bytes(path: &Path) -> io::Result<u64> {
    let s = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_hashes_to_its_sha256_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let (size, sha) = hash_file(&path).unwrap();
        assert_eq!(size, 3);
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn files_are_listed_relative_and_sorted_through_subfolders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/x"), b"").unwrap();
        std::fs::write(dir.path().join("c"), b"").unwrap();
        assert_eq!(list_files(dir.path()), ["a/b/x", "c"]);
        assert!(available_bytes(dir.path()).unwrap() > 0);
    }
}
