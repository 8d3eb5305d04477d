//! dispatch as its own process (so its memory is its own), on a fresh database of the dev stack's
//! PostgreSQL and the benchmark's private broker.

use anyhow::{Context, Result, bail};
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "bench-admin-password-42";

pub struct Dispatch {
    child: Child,
    pub addr: String,
    pub pool: PgPool,
    pub log: PathBuf,
    admin_url: String,
    database: String,
}

/// Where the benchmark's broker is and how dispatch logs in to it.
pub struct Broker<'a> {
    pub port: u16,
    pub service_password: &'a str,
}

impl Dispatch {
    /// Creates database `bench_<token>`, writes a config beside it in `dir` and starts `binary`.
    pub async fn start(
        binary: &Path,
        pg_admin_url: &str,
        broker: Broker<'_>,
        dir: &Path,
    ) -> Result<Dispatch> {
        let database = format!("bench_{}", &bl_test_support::stack::random_token()[..10]);
        let admin = PgPool::connect(pg_admin_url)
            .await
            .context("connect to the dev stack's PostgreSQL")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&admin)
            .await?;
        admin.close().await;
        let url = replace_database(pg_admin_url, &database);
        let port = bl_test_support::broker::free_port();
        let root = bl_test_support::stack::repo_root();
        std::fs::write(dir.join("db.url"), &url)?;
        std::fs::write(dir.join("mqtt.password"), broker.service_password)?;
        std::fs::write(dir.join("admin.password"), ADMIN_PASSWORD)?;
        let config = format!(
            r#"listen = "127.0.0.1:{port}"
towns_file = "{towns}"
admin_password_file = "{dir}/admin.password"
demo_data = true
[database]
url_file = "{dir}/db.url"
max_connections = 20
[mqtt]
host = "127.0.0.1"
port = {mqtt}
password_file = "{dir}/mqtt.password"
client_id = "dispatch-bench"
"#,
            towns = root.join("../shared/data-towns.tsv").display(),
            dir = dir.display(),
            mqtt = broker.port,
        );
        std::fs::write(dir.join("dispatch.toml"), config)?;
        let log = dir.join("dispatch.log");
        let child = Command::new(binary)
            .arg("--config")
            .arg(dir.join("dispatch.toml"))
            .current_dir(&root)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let pool = PgPool::connect(&url).await?;
        let mut d = Dispatch {
            child,
            addr: format!("127.0.0.1:{port}"),
            pool,
            log,
            admin_url: pg_admin_url.to_owned(),
            database,
        };
        d.wait_ready().await?;
        Ok(d)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "dispatch exited ({status}) during start: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok(r) = http
                .get(format!("http://{}/healthz", self.addr))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(120) {
                bail!("dispatch did not answer within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Resident memory of the dispatch process, in MiB.
    pub fn rss_mib(&self) -> f64 {
        rss_mib(self.child.id())
    }

    /// Stops dispatch and drops its database.
    pub async fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        self.pool.close().await;
        let admin = PgPool::connect(&self.admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.database
        )))
        .execute(&admin)
        .await?;
        Ok(())
    }
}

fn replace_database(url: &str, database: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{database}"),
        None => url.to_owned(),
    }
}

/// `VmRSS` of process `pid` in MiB (0 when it cannot be read).
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
