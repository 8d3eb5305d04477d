//! The dev stack a test talks to: real PostgreSQL and mosquitto started under `.data/` by
//! `deploy/dev/stack.sh start` (which `make test` runs first).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

/// Where the dev stack's services listen and how to log in to them.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The repository root (where `deploy/` and `.data/` are).
    pub root: PathBuf,
    pub pg_url: String,
    pub mqtt_host: String,
    pub mqtt_port: u16,
    /// The service account dispatch uses on the broker (sees every edge).
    pub mqtt_service_user: String,
    pub mqtt_service_password: String,
    /// The broker's password file, the lock its writers take, and its pid file (SIGHUP reloads).
    pub mqtt_passwd_file: PathBuf,
    pub mqtt_lock_file: PathBuf,
    pub mqtt_pid_file: PathBuf,
}

impl Stack {
    /// Reads the file named by `BL_STACK_ENV` (the Makefile sets it), else `.data/stack.env` of the
    /// checkout the test runs in. Panics with what to run when the stack has not been started, since
    /// no test of this kind can mean anything without it.
    pub fn from_env() -> Stack {
        let env_file = std::env::var_os("BL_STACK_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".data/stack.env"));
        let text = std::fs::read_to_string(&env_file).unwrap_or_else(|e| {
            panic!(
                "dev stack not found ({}: {e}); start it with `deploy/dev/stack.sh start` or run `make test`",
                env_file.display()
            )
        });
        let vars = parse_env(&text);
        let get = |key: &str| -> String {
            vars.get(key).cloned().unwrap_or_else(|| {
                panic!("{} lacks {key}; restart the dev stack", env_file.display())
            })
        };
        let password_file = get("BL_MQTT_DISPATCH_PASSWORD_FILE");
        let mqtt_service_password = std::fs::read_to_string(&password_file)
            .unwrap_or_else(|e| panic!("cannot read {password_file}: {e}"))
            .trim()
            .to_owned();
        Stack {
            root: PathBuf::from(get("BL_ROOT")),
            pg_url: get("BL_PG_URL"),
            mqtt_host: get("BL_MQTT_HOST"),
            mqtt_port: get("BL_MQTT_PORT").parse().expect("BL_MQTT_PORT is a port"),
            mqtt_service_user: get("BL_MQTT_DISPATCH_USER"),
            mqtt_service_password,
            mqtt_passwd_file: PathBuf::from(get("BL_MQTT_PASSWD_FILE")),
            mqtt_lock_file: PathBuf::from(get("BL_DATA")).join("mqtt.lock"),
            mqtt_pid_file: PathBuf::from(get("BL_MQTT_PID_FILE")),
        }
    }

    /// Creates (or re-keys) a broker account, as edge enrolment does, and returns its new random
    /// password. The broker reloads its password file before this returns.
    pub fn add_mqtt_user(&self, name: &str) -> String {
        let password = random_token();
        let script = self.root.join("deploy/dev/stack.sh");
        let out = Command::new("bash")
            .arg(&script)
            .args(["mqtt-user", name, &password])
            .output()
            .expect("run deploy/dev/stack.sh");
        assert!(
            out.status.success(),
            "stack.sh mqtt-user {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        password
    }
}

/// A random lowercase token usable as a password or as part of an id.
pub fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

/// The checkout a test runs in: the nearest folder at or above the working directory (cargo runs
/// tests in their package's folder) that holds `deploy/dev/stack.sh`. Found at run time, since one
/// target directory may serve several checkouts.
pub fn repo_root() -> PathBuf {
    let cwd = std::env::current_dir().expect("a working directory");
    cwd.ancestors()
        .find(|dir| dir.join("deploy/dev/stack.sh").is_file())
        .unwrap_or_else(|| panic!("no Brightline checkout at or above {}", cwd.display()))
        .to_owned()
}

fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_keep_values_with_equals_signs_and_skip_comments() {
        let vars = parse_env("# c\nA=1\n\nURL=postgres://u:p=q@h/db\n");
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["URL"], "postgres://u:p=q@h/db");
        assert_eq!(vars.len(), 2);
    }
}
