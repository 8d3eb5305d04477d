//! A local S3-compatible server for tests: `moto_server` from `deploy/dev/install-s3test.sh`
//! (`.data/s3test`, or `$BL_S3TEST_DIR`), started on a free port and stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bl_service::secret::Secret;
use media_gateway::evidence::s3::S3Settings;

/// A running moto server with one bucket.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
}

fn moto_server() -> Option<PathBuf> {
    let dir = std::env::var_os("BL_S3TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.data/s3test"));
    let bin = dir.join("bin/moto_server");
    bin.exists().then_some(bin)
}

impl S3Server {
    /// Starts the server and creates `bucket`; None (with a message) when moto is not installed,
    /// a failure under CI (`CI` set), where `make deps` must have installed it.
    pub async fn start(bucket: &str) -> Option<Self> {
        let Some(bin) = moto_server() else {
            let msg = "moto_server is not installed: run deploy/dev/install-s3test.sh (make deps)";
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            eprintln!("SKIPPED: {msg}");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // moto accepts unsigned requests: creating the bucket doubles as the readiness probe.
            match client
                .put(format!("{}/{bucket}", server.endpoint))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return Some(server),
                Ok(r) => panic!("moto refused to create bucket {bucket}: {}", r.status()),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("moto_server did not come up in 60 s: {e}"),
            }
        }
    }

    /// Settings for `bucket` on this server (moto takes any credentials).
    pub fn settings(&self, bucket: &str, prefix: &str) -> S3Settings {
        S3Settings {
            bucket: bucket.into(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".into(),
            prefix: prefix.into(),
            access_key_id: Secret::new("testing"),
            secret_access_key: Secret::new("testing"),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
