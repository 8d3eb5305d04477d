//! Broker accounts in mosquitto's own password file: the line format (pure) and the file update
//! (flock, write beside, fsync, rename keeping the owner, then SIGHUP so the broker reloads).
//!
//! This is how a district that runs broker and dispatch on one server issues edge credentials
//! without a second account store. A clustered broker (EMQX) would get another [`super::Broker`]
//! implementation talking to its HTTP API; nothing else changes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::Sha512;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// mosquitto 2's default PBKDF2-SHA512 iteration count and salt length (`mosquitto_passwd`).
const ITERATIONS: u32 = 101;
const SALT_LEN: usize = 12;

/// One password-file line, `user:$7$101$<salt>$<hash>`, as `mosquitto_passwd` writes it.
pub fn password_line(username: &str, password: &str, salt: &[u8; SALT_LEN]) -> String {
    let mut hash = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, ITERATIONS, &mut hash);
    format!(
        "{username}:$7${ITERATIONS}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    )
}

/// The file's text with each `(username, line)`'s old line dropped and `line` appended, every
/// other line kept.
pub fn with_accounts(text: &str, accounts: &[(&str, String)]) -> String {
    let names: std::collections::HashSet<&str> = accounts.iter().map(|(u, _)| *u).collect();
    let mut out: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.split_once(':').is_some_and(|(u, _)| names.contains(u)))
        .collect();
    out.extend(accounts.iter().map(|(_, line)| line.as_str()));
    let mut joined = out.join("\n");
    joined.push('\n');
    joined
}

/// The broker's password file, the lock its other writers take, and its pid file.
#[derive(Debug, Clone)]
pub struct PasswordFile {
    pub path: PathBuf,
    pub lock: PathBuf,
    pub pid_file: Option<PathBuf>,
}

impl PasswordFile {
    /// Sets `username`'s password (blocking file I/O; run it off the async workers).
    pub fn set(&self, username: &str, password: &str) -> std::io::Result<()> {
        self.set_many(&[(username, password)])
    }

    /// Sets several accounts' passwords with one rewrite of the file and one reload.
    pub fn set_many(&self, accounts: &[(&str, &str)]) -> std::io::Result<()> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)?;
        // Other writers (deploy/dev/stack.sh mqtt-user) take the same lock; without it two updates
        // could each rewrite the file from the same old text and one account would vanish.
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
        let old = std::fs::read_to_string(&self.path)?;
        let meta = std::fs::metadata(&self.path)?;
        let lines: Vec<(&str, String)> = accounts
            .iter()
            .map(|(user, password)| {
                let mut salt = [0u8; SALT_LEN];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
                (*user, password_line(user, password, &salt))
            })
            .collect();
        let text = with_accounts(&old, &lines);
        let tmp = sibling(&self.path, ".dispatch-tmp");
        {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::set_permissions(&tmp, meta.permissions())?;
        // The broker runs as its own user and must still read the file after the rename.
        std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()))?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        drop(lock);
        self.reload()
    }

    /// Tells the running broker to re-read its password file (no pid file: nothing to tell).
    fn reload(&self) -> std::io::Result<()> {
        let Some(pid_file) = &self.pid_file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(pid_file)?;
        let pid: i32 = text.trim().parse().map_err(|_| {
            std::io::Error::other(format!(
                "{}: not a process id: {:?}",
                pid_file.display(),
                text.trim()
            ))
        })?;
        let pid = rustix::process::Pid::from_raw(pid).ok_or_else(|| {
            std::io::Error::other(format!("{}: process id {pid}", pid_file.display()))
        })?;
        rustix::process::kill_process(pid, rustix::process::Signal::HUP)?;
        Ok(())
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_mosquitto_2s_sha512_pbkdf2_layout() {
        let line = password_line("edge-1", "secret", &[1; SALT_LEN]);
        let parts: Vec<&str> = line.split('$').collect();
        assert_eq!(parts[0], "edge-1:");
        assert_eq!(parts[1], "7");
        assert_eq!(parts[2], "101");
        assert_eq!(STANDARD.decode(parts[3]).unwrap(), [1; SALT_LEN]);
        assert_eq!(STANDARD.decode(parts[4]).unwrap().len(), 64);
        // Same input, same line; another salt, another line.
        assert_eq!(line, password_line("edge-1", "secret", &[1; SALT_LEN]));
        assert_ne!(line, password_line("edge-1", "secret", &[2; SALT_LEN]));
    }

    #[test]
    fn setting_an_account_replaces_its_line_and_keeps_every_other() {
        let text = "dispatch:$7$a\nedge-1:$7$old\nedge-10:$7$x\n";
        let out = with_accounts(text, &[("edge-1", "edge-1:$7$new".into())]);
        assert_eq!(out, "dispatch:$7$a\nedge-10:$7$x\nedge-1:$7$new\n");
        assert_eq!(with_accounts("", &[("e", "e:x".into())]), "e:x\n");
    }

    #[test]
    fn the_file_is_updated_in_place_keeping_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, "dispatch:$7$a\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = PasswordFile {
            path: path.clone(),
            lock: dir.path().join("lock"),
            pid_file: None,
        };
        file.set("edge-1", "pw").unwrap();
        file.set("edge-1", "pw2").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("dispatch:$7$a\nedge-1:$7$101$"), "{text}");
        assert_eq!(text.lines().count(), 2);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
