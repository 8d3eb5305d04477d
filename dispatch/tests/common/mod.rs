//! What dispatch's integration tests share: a fresh database per test on the dev stack's
//! PostgreSQL, the real server bound to 127.0.0.1:0, and an HTTP client that keeps the session
//! cookie and CSRF token like a browser.
#![allow(dead_code)]

pub mod edge;
pub mod gateway;
pub mod voice;

use bl_service::secret::Secret;
use bl_test_support::stack::{Stack, random_token};
use dispatch::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

pub const ADMIN_PASSWORD: &str = "admin-test-password-42";
pub const USER_PASSWORD: &str = "user-test-password-42";

/// A database of its own for one test, created on the dev stack's server and dropped by
/// [`TestDb::drop_now`] (a failed test leaves it for inspection).
pub struct TestDb {
    pub name: String,
    pub url: String,
    server_url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let stack = Stack::from_env();
        let name = format!("dispatch_test_{}", random_token());
        let server_url = stack.pg_url.clone();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&server_url)
            .await
            .expect("connect to the dev stack");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let base = server_url
            .rsplit_once('/')
            .expect("a URL with a database")
            .0;
        TestDb {
            url: format!("{base}/{name}"),
            name,
            server_url,
        }
    }

    pub async fn drop_now(&self) {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&self.server_url)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.url).await.unwrap()
    }
}

/// A config for tests: cheap argon2, the shared towns file, a known admin password.
pub fn config(db: &TestDb, dir: &tempfile::TempDir) -> Config {
    let mut c = Config::with_database_url(Secret::new(db.url.clone()));
    c.towns_file = towns_file();
    let pw = dir.path().join("admin.pw");
    std::fs::write(&pw, format!("{ADMIN_PASSWORD}\n")).unwrap();
    c.admin_password_file = Some(pw);
    c.password.argon2_memory_kib = 8192;
    c.password.argon2_iterations = 1;
    c
}

/// dispatch running in this process on 127.0.0.1:0.
pub struct Server {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), dispatch::StartError>>,
}

impl Server {
    pub async fn start(config: Config) -> Server {
        bl_service::telemetry::init("dispatch-test");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(dispatch::run(
            config,
            listener,
            stop.clone().cancelled_owned(),
        ));
        Self::ready(addr, stop, task).await
    }

    /// Serves an application made with `dispatch::prepare` (e.g. with a simulated clock).
    pub async fn start_app(app: std::sync::Arc<dispatch::AppState>) -> Server {
        bl_service::telemetry::init("dispatch-test");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(dispatch::serve(
            app,
            listener,
            stop.clone().cancelled_owned(),
        ));
        Self::ready(addr, stop, task).await
    }

    /// A server on `db` whose handlers and workers read `clock`; workers poll every 20 ms and
    /// sessions outlive the simulated days.
    pub async fn simulated(
        db: &TestDb,
        dir: &tempfile::TempDir,
        clock: &std::sync::Arc<dispatch::escalation::SimulatedClock>,
    ) -> Server {
        let mut c = config(db, dir);
        c.escalation.poll_interval_ms = 20;
        c.session.idle_timeout_secs = 60 * 86400;
        c.session.absolute_timeout_secs = 60 * 86400;
        let app = dispatch::prepare(c).await.unwrap();
        let mut app =
            std::sync::Arc::try_unwrap(app).unwrap_or_else(|_| panic!("nobody else holds the app"));
        app.clock = clock.clone();
        Self::start_app(std::sync::Arc::new(app)).await
    }

    async fn ready(
        addr: SocketAddr,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<Result<(), dispatch::StartError>>,
    ) -> Server {
        // wait until it answers, so that a start-up failure is reported as such
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if task.is_finished() {
                panic!("dispatch did not start: {:?}", task.await);
            }
            if let Ok(r) = http.get(format!("http://{addr}/healthz")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "dispatch did not answer within 60 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Server { addr, stop, task }
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// Stops the server and waits until it has drained.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// A browser-like client: keeps `__Host-bl_session` and the CSRF token from login.
pub struct Client {
    http: reqwest::Client,
    base: String,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        Client {
            http,
            base: format!("http://{addr}"),
            cookie: None,
            csrf: None,
        }
    }

    /// Sends a request with the session cookie and CSRF token (if any) and records a new cookie.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("__Host-bl_session={c}"));
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some((content_type, text)) = body {
            req = req.header("content-type", content_type).body(text);
        }
        let resp = req.send().await.expect("dispatch answers");
        let status = resp.status();
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let value = v
                .split(';')
                .next()
                .unwrap()
                .strip_prefix("__Host-bl_session=")
                .unwrap();
            self.cookie = Some(value.to_owned()).filter(|v| !v.is_empty());
        }
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            path,
            Some(("application/json", body.to_string())),
        )
        .await
    }

    pub async fn put(&mut self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            Method::PUT,
            path,
            Some(("application/json", body.to_string())),
        )
        .await
    }

    /// Logs in; on success keeps the session and its CSRF token.
    pub async fn login(&mut self, username: &str, password: &str) -> (StatusCode, Value) {
        let (status, body) = self
            .post(
                "/api/session",
                json!({"username": username, "password": password}),
            )
            .await;
        if status == StatusCode::OK {
            self.csrf = Some(body["csrfToken"].as_str().unwrap().to_owned());
        }
        (status, body)
    }
}

/// Creates a user through the API as `admin` (a logged-in admin client) and returns its id.
pub async fn create_user(
    admin: &mut Client,
    username: &str,
    role: &str,
    towns: Option<&[&str]>,
) -> String {
    let (status, body) = admin
        .post(
            "/api/users",
            json!({"username": username, "displayName": username, "role": role,
                   "scopeTowns": towns, "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// A premises in `town` with a unique licence number, created through the API; returns its id.
pub async fn create_premises(client: &mut Client, town: &str, name: &str) -> (StatusCode, Value) {
    client
        .post("/api/premises", premises_body(town, name))
        .await
}

pub fn premises_body(town: &str, name: &str) -> Value {
    json!({
        "name": name,
        "licenceNo": format!("JY2110109{}", &random_token()[..7]).to_uppercase(),
        "kind": "restaurant",
        "address": format!("北京市门头沟区{town}1号"),
        "lat": 39.97, "lon": 115.69,
        "townId": town,
        "riskGrade": "B",
        "personInCharge": "王芳",
        "phone": "13800000001"
    })
}

/// A fresh database, dispatch on it, and an admin client logged in.
pub async fn setup() -> (TestDb, tempfile::TempDir, Server, Client) {
    setup_with(|_| {}).await
}

pub async fn setup_with(
    tweak: impl FnOnce(&mut Config),
) -> (TestDb, tempfile::TempDir, Server, Client) {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&db, &dir);
    tweak(&mut c);
    let server = Server::start(c).await;
    let mut admin = server.client();
    let (status, body) = admin.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (db, dir, server, admin)
}

/// The shared towns file beside this repository (found from this crate, not from the stack's
/// root, so that a test-support library built from another checkout cannot point elsewhere).
pub fn towns_file() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data-towns.tsv"
    ))
}

/// The seed of the media-token key the tests configure.
pub const MEDIA_SEED: [u8; 32] = [42; 32];

/// A `[media]` section with the test key and these `(node, url)` gateways.
pub fn media_config(gateways: &[(&str, &str)]) -> dispatch::config::MediaConfig {
    dispatch::config::MediaConfig {
        signing_key_file: PathBuf::from("<test>"),
        signing_key: Some(dispatch::media::MediaKey::new(
            bl_proto::SigningKey::from_bytes(&MEDIA_SEED),
        )),
        token_ttl_secs: 60,
        gateway: gateways
            .iter()
            .map(|(node, url)| dispatch::config::GatewayConfig {
                node: (*node).to_owned(),
                url: (*url).to_owned(),
                service_token_file: None,
                service_token: None,
            })
            .collect(),
    }
}

/// The public half of the test media key.
pub fn media_public_key() -> bl_proto::VerifyingKey {
    bl_proto::SigningKey::from_bytes(&MEDIA_SEED).verifying_key()
}

/// Adds a pull camera to a premises straight in the database (tests/admin.rs covers the API's way).
pub async fn insert_camera(db: &TestDb, premises_id: &str, id: &str, talk: bool) {
    let pool = db.pool().await;
    let mut tx = pool.begin().await.unwrap();
    dispatch::registry::cameras::insert(
        &mut tx,
        &dispatch::registry::cameras::NewCamera {
            id,
            premises_id: premises_id.parse().unwrap(),
            name: id,
            edge_id: None,
            main_stream: "rtsp://10.0.0.5/main",
            sub_stream: Some("rtsp://10.0.0.5/sub"),
            talk,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    pool.close().await;
}

/// A team of `town` on duty around the clock (so a test means the same at any hour), straight into
/// the database; returns its id.
pub async fn team_on_duty(pool: &sqlx::PgPool, town: &str, name: &str) -> uuid::Uuid {
    let team = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO teams (id, town_id, name) VALUES ($1, $2, $3)")
        .bind(team)
        .bind(town)
        .bind(name)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO roster_shifts (id, team_id, weekdays, starts, ends) VALUES ($1, $2, 127, '00:00', '00:00')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(team)
    .execute(pool)
    .await
    .unwrap();
    team
}
