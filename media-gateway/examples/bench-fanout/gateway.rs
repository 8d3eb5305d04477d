//! The gateway under test: the real `media-gateway` binary (release, beside this example) with a
//! generated config that pulls the camsim camera, and viewers that open WHEP sessions with tokens
//! signed like dispatch signs them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bl_proto::SigningKey;
use bl_proto::token::{self, MediaAction, MediaClaims};

use crate::viewer::{Pending, Viewer};

const NODE: &str = "gw-bench";
pub const CAMERA: &str = "bench-cam";
/// The payload type the viewer offers H.264 under (a browser picks its own; the gateway's is 102).
const OFFER_PT: u8 = 109;

pub struct Gateway {
    child: Child,
    base: String,
    token: String,
    ip: IpAddr,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `media-gateway` binary: `BENCH_GATEWAY_BIN`, or the one built beside this example.
fn binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("BENCH_GATEWAY_BIN") {
        return Ok(p.into());
    }
    let exe = std::env::current_exe()?;
    // target/{profile}/examples/bench-fanout → target/{profile}/media-gateway
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("media-gateway"))
        .context("no folder beside this example")?;
    if !bin.exists() {
        bail!(
            "{} is missing: build it first (cargo build --release -p media-gateway) or set BENCH_GATEWAY_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

impl Gateway {
    /// Starts a gateway serving camera [`CAMERA`] from `rtsp_url`, its WebRTC sockets on `ip`.
    pub async fn start(rtsp_url: &str, ip: IpAddr) -> anyhow::Result<Gateway> {
        let dir = tempfile::tempdir()?;
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        std::fs::write(
            dir.path().join("token.pub"),
            hex::encode(key.verifying_key().to_bytes()),
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nnode_id = \"{NODE}\"\ndata_dir = \"data\"\n\
                 token_public_key_file = \"token.pub\"\n\n[live]\nbind_ip = \"{ip}\"\n\
                 max_sessions = 5000\nlinger_secs = 2\n\n[[camera]]\nid = \"{CAMERA}\"\n\
                 url = \"{rtsp_url}\"\n"
            ),
        )?;
        let child = Command::new(binary()?)
            .args(["run", "--config"])
            .arg(&config)
            .env(
                "BL_LOG",
                std::env::var("BENCH_GATEWAY_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting media-gateway")?;
        let now = chrono::Utc::now().timestamp();
        let claims = MediaClaims {
            sub: "bench".into(),
            camera: CAMERA.parse()?,
            action: MediaAction::View,
            node: NODE.parse()?,
            stream: None,
            iat: now - 60,
            exp: now + 6 * 3600,
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let gw = Gateway {
            child,
            base: format!("http://127.0.0.1:{port}"),
            token: token::sign(&claims, &key),
            ip,
            client: reqwest::Client::new(),
            _dir: dir,
        };
        for _ in 0..200 {
            if let Ok(r) = gw.client.get(format!("{}/healthz", gw.base)).send().await
                && r.status().is_success()
            {
                return Ok(gw);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the gateway did not come up at {}", gw.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens one WHEP session on the main (720p) stream.
    pub async fn connect(&self, probe: bool) -> anyhow::Result<Viewer> {
        let started = Instant::now();
        let mut pending = Pending::new(self.ip, OFFER_PT, probe).await?;
        let offer = pending.offer().await?;
        let r = self
            .client
            .post(format!("{}/whep/{CAMERA}?stream=main", self.base))
            .header("Content-Type", "application/sdp")
            .bearer_auth(&self.token)
            .body(offer)
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        if status != reqwest::StatusCode::CREATED {
            let _ = pending.pc.close().await;
            bail!("WHEP answered {status}: {body}");
        }
        pending.accept_answer(body).await?;
        Ok(pending.into_viewer(started, None))
    }
}
