//! The peer under comparison: Janus (Debian package `janus`) with only its streaming plugin and HTTP
//! transport, configured in a temp folder (never /etc), one RTP mountpoint fed by the tap. Its
//! viewers speak Janus's JSON API over HTTP: create a session, attach the streaming plugin, ask to
//! `watch` (Janus offers), `start` with our answer.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use crate::viewer::{Pending, Viewer};

/// Where Debian installs Janus's plugins.
const LIB: &str = "/usr/lib/x86_64-linux-gnu/janus";
const MOUNTPOINT: u64 = 1;
/// The payload type of the fed stream (camsim's) and of Janus's offer.
const PT: u8 = 96;

pub struct Janus {
    child: Child,
    base: String,
    ip: IpAddr,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Janus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn link_one(from: &str, file: &str, to: &Path) -> anyhow::Result<()> {
    let src = Path::new(LIB).join(from).join(file);
    if !src.exists() {
        bail!(
            "{} is missing: install Janus (deploy/dev/install-deps.sh installs the Debian package `janus`)",
            src.display()
        );
    }
    std::fs::create_dir_all(to)?;
    std::os::unix::fs::symlink(src, to.join(file))?;
    Ok(())
}

impl Janus {
    /// Starts Janus with ICE on interface `iface` (address `ip`) and a mountpoint taking RTP on
    /// `rtp`.
    pub async fn start(iface: &str, ip: IpAddr, rtp: SocketAddr) -> anyhow::Result<Janus> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        link_one("plugins", "libjanus_streaming.so", &d.join("plugins"))?;
        link_one("transports", "libjanus_http.so", &d.join("transports"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Janus skips loopback interfaces when gathering, hence ICE on `iface`. event_loops: a
        // fixed pool of loops (one per core) instead of a thread per viewer, Janus's advice for
        // many viewers; session_timeout 0: viewers need no keepalives.
        std::fs::write(
            d.join("janus.jcfg"),
            format!(
                "general: {{\n  configs_folder = \"{d}\"\n  plugins_folder = \"{d}/plugins\"\n  \
                 transports_folder = \"{d}/transports\"\n  events_folder = \"{d}/none\"\n  \
                 loggers_folder = \"{d}/none\"\n  debug_level = 3\n  session_timeout = 0\n  \
                 event_loops = {cpus}\n}}\nmedia: {{\n  rtp_port_range = \"30000-59999\"\n}}\n\
                 nat: {{\n  ice_enforce_list = \"{iface}\"\n}}\n",
                d = d.display()
            ),
        )?;
        std::fs::write(
            d.join("janus.transport.http.jcfg"),
            format!(
                "general: {{\n  json = \"compact\"\n  base_path = \"/janus\"\n  http = true\n  \
                 port = {port}\n  ip = \"127.0.0.1\"\n  https = false\n}}\nadmin: {{\n  admin_http = false\n}}\n"
            ),
        )?;
        std::fs::write(
            d.join("janus.plugin.streaming.jcfg"),
            format!(
                "general: {{\n}}\nbench: {{\n  type = \"rtp\"\n  id = {MOUNTPOINT}\n  \
                 description = \"bench\"\n  media = ({{\n    type = \"video\"\n    mid = \"v\"\n    \
                 port = {}\n    pt = {PT}\n    codec = \"h264\"\n    \
                 fmtp = \"profile-level-id=42e01f;packetization-mode=1\"\n  }})\n}}\n",
                rtp.port()
            ),
        )?;
        let child = Command::new("janus")
            .arg("-C")
            .arg(d.join("janus.jcfg"))
            .arg("-F")
            .arg(d)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting janus (is the Debian package `janus` installed?)")?;
        let janus = Janus {
            child,
            base: format!("http://127.0.0.1:{port}/janus"),
            ip,
            client: reqwest::Client::new(),
            _dir: dir,
        };
        for _ in 0..200 {
            if let Ok(r) = janus
                .client
                .get(format!("{}/info", janus.base))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(janus);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("janus did not come up at {}", janus.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn call(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let mut body = body;
        body["transaction"] = json!(uuid::Uuid::new_v4().to_string());
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .body(body.to_string())
            .send()
            .await?
            .text()
            .await?;
        let v: Value = serde_json::from_str(&r)?;
        if v["janus"] == "error" {
            bail!("janus: {}", v["error"]);
        }
        Ok(v)
    }

    /// Long-polls the session's events until one carries an SDP offer.
    async fn offer(&self, session: u64) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let r = self
                .client
                .get(format!("{}/{session}?maxev=10", self.base))
                .send()
                .await?
                .text()
                .await?;
            let events: Value = serde_json::from_str(&r)?;
            let events = match events {
                Value::Array(a) => a,
                one => vec![one],
            };
            for e in events {
                if let Some(error) = e["plugindata"]["data"].get("error") {
                    bail!("janus streaming: {error}");
                }
                if let Some(sdp) = e["jsep"]["sdp"].as_str() {
                    return Ok(sdp.to_owned());
                }
            }
        }
        Err(anyhow!("janus sent no offer within 30 s"))
    }

    /// Watches the mountpoint as one viewer (one Janus session, as one browser has).
    pub async fn connect(&self, probe: bool) -> anyhow::Result<Viewer> {
        let started = Instant::now();
        let mut pending = Pending::new(self.ip, PT, probe).await?;
        let session = self.call("", json!({"janus": "create"})).await?["data"]["id"]
            .as_u64()
            .context("no session id")?;
        let handle = self
            .call(
                &format!("/{session}"),
                json!({"janus": "attach", "plugin": "janus.plugin.streaming"}),
            )
            .await?["data"]["id"]
            .as_u64()
            .context("no handle id")?;
        let at = format!("/{session}/{handle}");
        self.call(
            &at,
            json!({"janus": "message", "body": {"request": "watch", "id": MOUNTPOINT}}),
        )
        .await?;
        let offer = self.offer(session).await?;
        let answer = pending.answer(offer).await?;
        self.call(
            &at,
            json!({"janus": "message", "body": {"request": "start"},
                   "jsep": {"type": "answer", "sdp": answer}}),
        )
        .await?;
        Ok(pending.into_viewer(started, Some(Box::new(session))))
    }
}
