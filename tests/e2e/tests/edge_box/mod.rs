//! The box side of the end-to-end tests: a private broker set up like the dev stack's, dispatch's
//! enrolment and intake pointed at it, and the real `edge-agent` binary enrolled with a one-time
//! code and run as a process.
#![allow(dead_code)]

use crate::common::Client;
use bl_service::secret::Secret;
use bl_test_support::broker::PrivateBroker;
use dispatch::config::MqttConfig;
use dispatch::enrolment::EnrolmentConfig;
use reqwest::StatusCode;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// dispatch's test config ([`crate::common::config`]) with the towns file found from this crate,
/// which sits one folder deeper than dispatch.
pub fn config(db: &crate::common::TestDb, dir: &tempfile::TempDir) -> dispatch::config::Config {
    let mut c = crate::common::config(db, dir);
    c.towns_file = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data-towns.tsv"
    ));
    c
}

/// dispatch writes edge accounts into `broker`'s password file, under its lock, and reloads it.
pub fn enrolment_config(broker: &PrivateBroker) -> EnrolmentConfig {
    let data = broker.data_dir();
    EnrolmentConfig {
        code_ttl_secs: 3600,
        broker_host: "127.0.0.1".into(),
        broker_port: broker.port,
        mosquitto_password_file: data.join("mqtt/passwd"),
        mosquitto_lock_file: Some(data.join("mqtt.lock")),
        mosquitto_pid_file: Some(data.join("mqtt/mosquitto.pid")),
    }
}

/// dispatch's intake from `broker` as the service account; replicas share `group`.
pub fn mqtt_config(broker: &PrivateBroker, client_id: &str, group: &str) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port: broker.port,
        username: broker.service_user.clone(),
        password_file: "unused".into(),
        password: Some(Secret::new(broker.service_password.clone())),
        client_id: client_id.into(),
        share_group: group.into(),
    }
}

/// Registers box `edge` for a premises through the admin API; returns its one-time code.
pub async fn register(admin: &mut Client, edge: &str, premises_id: &str) -> String {
    let (status, body) = admin
        .post("/api/edges", json!({"id": edge, "premisesId": premises_id}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["enrolmentCode"].as_str().unwrap().to_owned()
}

/// The box's camera in the registry (the API has no camera creation yet).
pub async fn register_camera(pool: &PgPool, premises: &str, edge: &str, camera: &str) {
    let mut tx = pool.begin().await.unwrap();
    dispatch::registry::cameras::insert(
        &mut tx,
        &dispatch::registry::cameras::NewCamera {
            id: camera,
            premises_id: premises.parse().unwrap(),
            name: "后厨夜视",
            edge_id: Some(edge),
            main_stream: "main",
            sub_stream: Some("sub"),
            talk: false,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Polls `sql` (one bigint) until it is at least `n`.
pub async fn wait_until(pool: &PgPool, sql: &str, n: i64, within: Duration, what: &str) {
    let start = Instant::now();
    loop {
        let got: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(pool)
            .await
            .unwrap();
        if got >= n {
            return;
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `edge-agent` binary of this checkout, copied into `dir`.
pub fn agent_binary(dir: &Path) -> PathBuf {
    bl_e2e::binary("edge-agent", "edge-agent", dir)
}

/// Runs `edge-agent enrol` against `dispatch` with `code` (handed over in a file, as an installer
/// would) and the box folder `box_dir`.
pub fn enrol(bin: &Path, dispatch: &str, edge: &str, code: &str, box_dir: &Path) -> Output {
    let code_file = box_dir.with_extension("code");
    std::fs::write(&code_file, format!("{code}\n")).unwrap();
    Command::new(bin)
        .args([
            "enrol",
            "--dispatch",
            dispatch,
            "--edge-id",
            edge,
            "--code-file",
        ])
        .arg(&code_file)
        .arg("--dir")
        .arg(box_dir)
        .output()
        .expect("run edge-agent enrol")
}

pub fn http(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// The words a process wrote, for assertions and failure messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An `edge-agent run` process, killed when the test ends however it ends.
pub struct Agent(Child);

impl Agent {
    /// Writes `edge.toml` into `box_dir` (the head `edge-agent enrol` printed, then `cameras`) and
    /// starts the agent with it.
    pub fn start(bin: &Path, box_dir: &Path, head: &str, cameras: &str) -> Agent {
        let file = box_dir.join("edge.toml");
        std::fs::write(&file, format!("{head}{cameras}")).unwrap();
        let child = Command::new(bin)
            .args(["run", "--config"])
            .arg(&file)
            // BL_AGENT_LOG=info (or debug) when a test needs to see what the box did.
            .env(
                "BL_LOG",
                std::env::var("BL_AGENT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .spawn()
            .expect("start edge-agent");
        Agent(child)
    }

    /// As [`Agent::start`], logging at `info` into `log` (for tests that wait on what the box
    /// says, with [`logged`]).
    pub fn start_logged(
        bin: &Path,
        box_dir: &Path,
        head: &str,
        cameras: &str,
        log: &Path,
    ) -> Agent {
        let file = box_dir.join("edge.toml");
        std::fs::write(&file, format!("{head}{cameras}")).unwrap();
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(bin)
            .args(["run", "--config"])
            .arg(&file)
            .env("BL_LOG", "info")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start edge-agent");
        Agent(child)
    }
}

/// Waits until the agent's log holds a line with every one of `words`; that line.
pub async fn logged(log: &Path, words: &[&str], within: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| words.iter().all(|w| l.contains(w))) {
            return line.to_owned();
        }
        assert!(
            start.elapsed() < within,
            "the agent never logged {words:?} within {within:?}; its log:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Logs in to the broker as `user`; the broker reloads its password file asynchronously after
/// enrolment, so a refusal in the first moments is retried. True once accepted.
pub async fn broker_accepts(port: u16, user: &str, password: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let mut options = MqttOptions::new(format!("{user}-probe"), "127.0.0.1", port);
        options.set_credentials(user, password);
        let (client, mut events) = AsyncClient::new(options, 4);
        let accepted = loop {
            match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break true,
                Ok(Ok(_)) => continue,
                _ => break false,
            }
        };
        let _ = client.disconnect().await;
        if accepted {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The edge as dispatch lists it.
pub async fn listed(admin: &mut Client, edge: &str) -> Value {
    let (status, body) = admin.get("/api/edges").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array()
        .or(body["items"].as_array())
        .unwrap()
        .iter()
        .find(|e| e["id"] == edge)
        .cloned()
        .unwrap_or_else(|| panic!("{edge} not listed: {body}"))
}

/// A `media-gateway` config in `dir` (`gw.toml`, beside its token files) for gateway `node`,
/// listening on `port` (RTSP push on `push_port`), verifying dispatch's test media tokens and
/// calling `dispatch` with `service_token`.
pub fn gateway_config(
    dir: &Path,
    port: u16,
    push_port: u16,
    node: &str,
    service_token: &str,
    dispatch: &str,
) -> PathBuf {
    let public = bl_proto::keys::encode_public(&crate::common::media_public_key());
    std::fs::write(dir.join("token.pub"), public).unwrap();
    std::fs::write(dir.join("service.token"), service_token).unwrap();
    let file = dir.join("gw.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{port}\"\nnode_id = \"{node}\"\ndata_dir = \"data\"\n\
             token_public_key_file = \"token.pub\"\n\
             [live]\nbind_ip = \"127.0.0.1\"\npush_listen = \"127.0.0.1:{push_port}\"\nstart_timeout_secs = 60\n\
             [dispatch]\nurl = \"{dispatch}\"\nservice_token_file = \"service.token\"\n"
        ),
    )
    .unwrap();
    file
}

/// Polls `check` every 250 ms until it gives a value; panics naming `what` after `within`.
pub async fn wait_for<T>(
    within: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
