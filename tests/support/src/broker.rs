//! A private mosquitto for one test, configured exactly like the dev stack's (same script, same
//! ACL), that the test may stop, kill and start again without disturbing anyone else.

use crate::stack::{random_token, repo_root};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

pub struct PrivateBroker {
    dir: tempfile::TempDir,
    pub port: u16,
    /// The service account (`dispatch`) and its password.
    pub service_user: String,
    pub service_password: String,
}

impl PrivateBroker {
    /// Starts a broker on a free loopback port.
    pub fn start() -> PrivateBroker {
        let dir = tempfile::tempdir().expect("temp dir");
        // The broker runs as its own user when we are root: let it into the folder.
        set_mode_755(dir.path());
        let port = free_port();
        let mut broker = PrivateBroker {
            dir,
            port,
            service_user: "dispatch".into(),
            service_password: String::new(),
        };
        broker.script(&["start-mqtt"]);
        let password_file = broker.dir.path().join("mqtt/dispatch.password");
        broker.service_password = std::fs::read_to_string(&password_file)
            .expect("dispatch password")
            .trim()
            .to_owned();
        broker
    }

    /// Adds an account (an edge's) and returns its password once it can log in.
    pub fn add_user(&self, name: &str) -> String {
        let password = random_token();
        self.script(&["mqtt-user", name, &password]);
        password
    }

    /// Stops the broker as an operator would (SIGTERM: it saves its sessions and queues).
    pub fn stop(&self) {
        self.script(&["stop-mqtt"]);
    }

    /// Starts the stopped broker again on the same port, with its saved state.
    pub fn start_again(&self) {
        self.script(&["start-mqtt"]);
    }

    fn script(&self, args: &[&str]) {
        run_stack_script(self.dir.path(), ("BL_MQTT_PORT", self.port), args);
    }

    /// The broker's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mqtt/mosquitto.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = stack_script(self.dir.path(), ("BL_MQTT_PORT", self.port), &["stop-mqtt"]).output();
    }
}

/// `deploy/dev/stack.sh ARGS` for a private service whose data lives in `data`.
pub(crate) fn stack_script(data: &std::path::Path, port: (&str, u16), args: &[&str]) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("deploy/dev/stack.sh"))
        .args(args)
        .env("BL_DATA", data)
        .env(port.0, port.1.to_string());
    command
}

/// Runs [`stack_script`] and fails the test, with the script's words, if it fails.
pub(crate) fn run_stack_script(data: &std::path::Path, port: (&str, u16), args: &[&str]) {
    let out = stack_script(data, port, args)
        .output()
        .expect("run deploy/dev/stack.sh");
    assert!(
        out.status.success(),
        "stack.sh {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

pub(crate) fn set_mode_755(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
