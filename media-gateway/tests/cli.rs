//! The binary as an operator runs it: `run --config` serves until SIGTERM and then exits cleanly; a
//! bad config names its field.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_media-gateway");

fn write_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    std::fs::write(
        dir.join("token.pub"),
        hex::encode(dispatch_key().verifying_key().as_bytes()),
    )
    .unwrap();
    let path = dir.join("gw.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nnode_id = \"{NODE}\"\ndata_dir = \"data\"\n\
             token_public_key_file = \"token.pub\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

/// Kills the child if the test fails before it is stopped properly.
struct Killed(Option<std::process::Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn run_serves_health_until_sigterm_and_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut child = Killed(Some(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env("BL_LOG", "info")
            .env("BL_LOG_FORMAT", "json")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let stderr = child.0.as_mut().unwrap().stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the gateway logs where it listens");
        if line.contains("media-gateway listening") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            break v["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    let r = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");

    let mut child = child.0.take().unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(dir.path().join("data/evidence/blobs").is_dir());
}

#[test]
fn a_bad_config_value_stops_start_up_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "max_concurrent_uploads = 0\n");
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`max_concurrent_uploads`"), "{err}");
}

#[test]
fn export_without_a_signing_key_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = Command::new(BIN)
        .args(["export", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("x"))
        .args(["--case", "c", "--by", "op", "--blob", &"a".repeat(64)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("keygen") && err.contains("signing_key_file"),
        "{err}"
    );
}
