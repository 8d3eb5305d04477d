//! What the gateway's integration tests share: a real gateway on 127.0.0.1:0 with a temp data folder,
//! an edge that signs uploads, and dispatch's token key that signs media tokens.
#![allow(dead_code)]

pub mod s3;
pub mod tmpfs;
pub mod voice;
pub mod whep;
pub mod whip;

use std::path::{Path, PathBuf};

use bl_proto::SigningKey;
use bl_proto::evidence::{self, EvidenceKind, EvidenceMeta, sha256_hex};
use bl_proto::token::{self, MediaAction, MediaClaims};
use std::time::Duration;

use media_gateway::config::{Config, SourcesConfig};
use media_gateway::keyfile::PrivateKey;
use media_gateway::live::LiveSettings;
use media_gateway::live::ingest::Backoff;
use media_gateway::live::peer::PeerSettings;
use reqwest::StatusCode;

pub const NODE: &str = "gw-1";
pub const EDGE: &str = "edge-1";
pub const OTHER_EDGE: &str = "edge-2";
pub const CAMERA: &str = "cam-1";

pub fn edge_key() -> SigningKey {
    SigningKey::from_bytes(&[11; 32])
}

pub fn other_edge_key() -> SigningKey {
    SigningKey::from_bytes(&[12; 32])
}

pub fn dispatch_key() -> SigningKey {
    SigningKey::from_bytes(&[21; 32])
}

pub fn gateway_key() -> SigningKey {
    SigningKey::from_bytes(&[31; 32])
}

/// The settings every test gateway starts from: two registered edges.
pub fn config(data_dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        node_id: NODE.parse().unwrap(),
        data_dir: data_dir.to_owned(),
        token_key: dispatch_key().verifying_key(),
        signing_key: Some(PrivateKey::from_signing_key(gateway_key())),
        max_evidence_bytes: 8 << 20,
        max_concurrent_uploads: 16,
        edges: vec![
            (EDGE.parse().unwrap(), edge_key().verifying_key()),
            (
                OTHER_EDGE.parse().unwrap(),
                other_edge_key().verifying_key(),
            ),
        ],
        live: live_settings(),
        sources: SourcesConfig::File(Vec::new()),
        recording: media_gateway::recording::RecordingSettings::default(),
        evidence_store: Default::default(),
    }
}

/// Live settings for tests: loopback sockets, a short linger, quick retries.
pub fn live_settings() -> LiveSettings {
    LiveSettings {
        peer: PeerSettings {
            bind_ip: "127.0.0.1".parse().unwrap(),
            public_ip: None,
            ports: None,
            gather_timeout: Duration::from_secs(2),
        },
        linger: Duration::from_secs(2),
        start_timeout: Duration::from_secs(10),
        backoff: Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
        },
        gop_cache_bytes: 8 << 20,
        max_sessions: 50,
        allowed_origins: vec!["http://console.test".into()],
        push_listen: None,
        push_url_base: None,
    }
}

/// A running gateway; stops when dropped.
pub struct TestGateway {
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestGateway {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut gw = Self::start_with(config(dir.path())).await;
        gw._dir = Some(dir);
        gw
    }

    pub async fn start_with(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let data_dir = config.data_dir.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            media_gateway::run(config, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let gw = Self {
            base,
            client: reqwest::Client::new(),
            data_dir,
            _dir: None,
            stop: Some(stop),
            task: Some(task),
        };
        // The store opens before the server answers; wait for it.
        for _ in 0..100 {
            if let Ok(r) = gw.client.get(gw.url("/healthz")).send().await
                && r.status() == StatusCode::OK
            {
                return gw;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the gateway did not come up");
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// PUTs `body` with the headers of `meta` and `signature`.
    pub async fn put_signed(
        &self,
        meta: &EvidenceMeta,
        signature: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .put(self.url(&format!("/evidence/{}", meta.sha256)));
        for (name, value) in meta.headers(signature) {
            req = req.header(name, value);
        }
        req.body(body).send().await.unwrap()
    }

    /// Uploads `body` correctly signed by the first edge.
    pub async fn upload(&self, body: &[u8]) -> reqwest::Response {
        let meta = meta_for(body);
        let sig = evidence::sign(&meta, &edge_key());
        self.put_signed(&meta, &sig, body.to_vec()).await
    }

    /// GET with a view token for `CAMERA`.
    pub async fn get(&self, path: &str, range: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path)).bearer_auth(token_for(
            CAMERA,
            MediaAction::View,
            NODE,
            60,
        ));
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        req.send().await.unwrap()
    }

    pub async fn metrics(&self) -> String {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Metadata for `body` from `EDGE`, camera `CAMERA`, a clip.
pub fn meta_for(body: &[u8]) -> EvidenceMeta {
    EvidenceMeta {
        sha256: sha256_hex(body),
        size: body.len() as u64,
        edge_id: EDGE.parse().unwrap(),
        camera_id: CAMERA.parse().unwrap(),
        kind: EvidenceKind::Clip,
        content_type: "video/mp4".into(),
        captured_at: bl_proto::time::parse("2025-03-01T08:15:30.123Z").unwrap(),
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 0x9e37_0000;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A media token signed by dispatch, valid for `secs` from now (negative: expired).
pub fn token_for(camera: &str, action: MediaAction, node: &str, secs: i64) -> String {
    token_signed_by(&dispatch_key(), camera, action, node, secs)
}

pub fn token_signed_by(
    key: &SigningKey,
    camera: &str,
    action: MediaAction,
    node: &str,
    secs: i64,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = MediaClaims {
        sub: "operator-1".into(),
        camera: camera.parse().unwrap(),
        action,
        node: node.parse().unwrap(),
        stream: None,
        iat: now.min(now + secs) - 60,
        exp: now + secs,
        jti: uuid::Uuid::now_v7().to_string(),
    };
    token::sign(&claims, key)
}

/// The `error.code` of a JSON error response.
pub async fn error_code(r: reqwest::Response) -> String {
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    v["error"]["code"].as_str().unwrap().to_owned()
}

/// Every file under `dir` (relative paths), to check what a refused upload left behind.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), root, out);
            } else {
                out.push(
                    e.path()
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}
