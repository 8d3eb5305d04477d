//! dispatch, Brightline's control plane: the registry of towns, premises, cameras, teams and users;
//! authentication and the one policy table; edge intake; incidents, their routing and escalation;
//! the REST API. [`run`] is the single entry point that `main` and the tests share.
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod auth;
pub mod clocks;
pub mod config;
pub mod db;
pub mod drill;
pub mod enrolment;
pub mod error;
pub mod escalation;
pub mod field;
pub mod incident;
pub mod intake;
pub mod intercom;
pub mod media;
pub mod mqtt;
pub mod notify;
pub mod paging;
pub mod registry;
pub mod rooms;
pub mod routing;
pub mod stats;
pub mod wall;
pub mod warning;
pub mod ws;

use auth::bootstrap::{self, Outcome};
use chrono::{DateTime, Utc};
use config::Config;
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What every handler shares.
pub struct AppState {
    pub pool: PgPool,
    pub config: Config,
    /// An argon2id hash of a random password, verified when a user name is unknown, so that a
    /// login takes as long whether or not the user exists.
    pub dummy_hash: String,
    /// What the edge intake has stored and dropped.
    pub intake: Arc<mqtt::IntakeStats>,
    /// The clock of handlers and the escalation worker.
    pub clock: Arc<dyn escalation::Clock>,
    /// Where commands to edges go out (the MQTT consumer's client).
    pub edge_link: Arc<field::recheck::EdgeLink>,
    /// Fan-out of database changes to this replica's WebSockets.
    pub ws: Arc<ws::Hub>,
}

impl AppState {
    /// The current time (one place, so a simulated clock can replace it).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// Why dispatch could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("cannot read towns_file {path}: {source}")]
    TownsRead {
        path: String,
        source: std::io::Error,
    },
    #[error("towns_file: {0}")]
    Towns(#[from] registry::towns::TownsFileError),
    #[error("cannot import towns: {0}")]
    TownsImport(#[source] sqlx::Error),
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
    #[error("cannot create demo data: {0}")]
    Demo(#[source] error::Error),
    #[error("cannot listen for database changes (the WebSocket feed): {0}")]
    Feed(#[source] sqlx::Error),
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Connects, migrates, imports the towns, creates the first admin (printing a random password once)
/// and, when configured, the demo data.
pub async fn prepare(config: Config) -> Result<Arc<AppState>, StartError> {
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    import_towns(&pool, &config).await?;
    match bootstrap::ensure_admin(&pool, &config).await? {
        Outcome::Random(password) => {
            println!("admin password: {password}");
            tracing::info!("created the first admin; its password was printed to stdout");
        }
        Outcome::FromFile => {
            tracing::info!("created the first admin with the password from admin_password_file")
        }
        Outcome::Existing => {}
    }
    if config.demo_data {
        load_demo(&pool, &config).await?;
    }
    let params = config.password.clone();
    let dummy_hash = tokio::task::spawn_blocking(move || {
        auth::password::hash(&params, &auth::password::random_password())
    })
    .await
    .expect("password hashing does not panic");
    let ws = Arc::new(ws::Hub::new(&config.ws));
    Ok(Arc::new(AppState {
        pool,
        ws,
        config,
        dummy_hash,
        intake: Arc::default(),
        clock: Arc::new(escalation::SystemClock),
        edge_link: Arc::default(),
    }))
}

/// Reads `towns_file` and upserts every town.
pub async fn import_towns(pool: &PgPool, config: &Config) -> Result<usize, StartError> {
    let path = config.towns_file.display().to_string();
    let text =
        std::fs::read_to_string(&config.towns_file).map_err(|source| StartError::TownsRead {
            path: path.clone(),
            source,
        })?;
    let towns = registry::towns::parse_tsv(&path, &text)?;
    registry::towns::import(pool, &towns)
        .await
        .map_err(StartError::TownsImport)?;
    tracing::info!(count = towns.len(), file = %path, "towns imported");
    Ok(towns.len())
}

/// Fills an empty registry with demo data and prints the demo users' password once.
pub async fn load_demo(pool: &PgPool, config: &Config) -> Result<(), StartError> {
    use registry::demo::Summary;
    match registry::demo::generate(pool, &config.password)
        .await
        .map_err(StartError::Demo)?
    {
        Summary::Skipped => tracing::info!("registry has premises already; no demo data added"),
        Summary::Created {
            premises,
            cameras,
            teams,
            users,
            password,
        } => {
            let names: Vec<String> = users
                .iter()
                .map(|(u, r)| format!("{u} ({})", r.as_str()))
                .collect();
            println!("demo users: {}", names.join(", "));
            println!("demo users password: {password}");
            tracing::info!(
                premises,
                cameras,
                teams,
                users = users.len(),
                "demo data created"
            );
        }
    }
    Ok(())
}

/// Runs dispatch on `listener` until `shutdown` completes, then drains open requests.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let app = prepare(config).await?;
    serve(app, listener, shutdown).await
}

/// Serves the API of a prepared application, runs the escalation timer worker, and consumes edge
/// reports when `[mqtt]` is set.
pub async fn serve(
    app: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    let hub = app.ws.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
        hub.close();
    });
    // listening before the first request, so a socket never misses a change made after start-up
    let changes = ws::feed::listen(&app.pool)
        .await
        .map_err(StartError::Feed)?;
    let feed = tokio::spawn(ws::feed::run(
        app.pool.clone(),
        changes,
        app.ws.clone(),
        stop.clone(),
    ));
    let intake = match &app.config.mqtt {
        Some(mqtt) => Some(tokio::spawn(mqtt::run(
            mqtt.clone(),
            app.clone(),
            stop.clone(),
        ))),
        None => {
            tracing::warn!("no [mqtt] section: edge events are not consumed");
            None
        }
    };
    let timers = tokio::spawn(escalation::worker::run(
        app.pool.clone(),
        app.config.escalation.clone(),
        app.clock.clone(),
        stop.clone(),
    ));
    let sender = tokio::spawn(notify::worker::run(
        app.pool.clone(),
        app.config.notify.clone(),
        app.clock.clone(),
        stop.clone(),
    ));
    let clock_timers = tokio::spawn(clocks::worker::run(
        app.pool.clone(),
        app.config.clocks.clone(),
        app.config.escalation.poll_interval_ms,
        app.config.escalation.batch,
        app.clock.clone(),
        stop.clone(),
    ));
    let injects = tokio::spawn(drill::worker::run(
        app.pool.clone(),
        drill::store::IntakeConfig {
            incidents: app.config.incidents.clone(),
            escalation: app.config.escalation.clone(),
            clocks: app.config.clocks.clone(),
            drills: app.config.drills.clone(),
        },
        app.config.escalation.poll_interval_ms,
        app.config.escalation.batch,
        app.clock.clone(),
        drill::scene::SceneLinks::new(app.edge_link.clone(), app.config.drills.clone()),
        stop.clone(),
    ));
    let reports = tokio::spawn(drill::pdf::run(
        app.pool.clone(),
        app.config.drills.clone(),
        std::time::Duration::from_millis(app.config.escalation.poll_interval_ms),
        stop.clone(),
    ));
    let rechecks = tokio::spawn(field::recheck::run_sweep(
        app.pool.clone(),
        app.clock.clone(),
        std::time::Duration::from_millis(app.config.field.sweep_interval_ms),
        stop.clone(),
    ));
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    tracing::info!(%addr, "dispatch listening");
    let router = api::router(app.clone());
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop.clone().cancelled_owned())
    .await
    .map_err(StartError::Serve);
    stop.cancel();
    app.ws.close();
    let _ = feed.await;
    if let Some(intake) = intake {
        let _ = intake.await;
    }
    let _ = timers.await;
    let _ = sender.await;
    let _ = clock_timers.await;
    let _ = rechecks.await;
    let _ = injects.await;
    let _ = reports.await;
    app.pool.close().await;
    tracing::info!("dispatch stopped");
    served
}
