//! **media-gateway moves and keeps media bytes — it stores evidence only when the body hashes to its
//! name and a registered edge signed it, and serves bytes only against a media token dispatch signed.**
//!
//! Modules, by domain:
//! - [`config`]: the TOML file and its checked form;
//! - [`error`]: the one coded error and its HTTP mapping;
//! - [`auth`]: media-token checks (401 / 403);
//! - [`keys`]: where edges' device keys come from ([`keys::EdgeKeys`]);
//! - [`keyfile`]: Ed25519 keys as text, and `keygen`;
//! - [`evidence`]: the content-addressed store, its HTTP API, case export and offline verify;
//! - [`live`]: live relay to browsers (WHEP) with shared ingests and GOP caches;
//! - [`recording`]: fMP4 segments per camera, hash-chained in a SQLite index, retention, legal hold;
//! - [`durable`]: the crash-safe file helpers evidence and recording share;
//! - [`metrics`]: Prometheus counters.
//!
//! - [`live`] also carries talk-down (WHIP) and group broadcast;
//! - [`voicerec`]: talk and broadcast recordings, both directions, kept as gateway-signed evidence.
#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub mod auth;
pub mod config;
pub mod durable;
pub mod error;
pub mod evidence;
pub mod keyfile;
pub mod keys;
pub mod live;
pub mod metrics;
pub mod recording;
pub mod rooms;
pub mod voicerec;

use auth::{Clock, TokenVerifier};
use config::Config;
use config::SourcesConfig;
use evidence::EvidenceStore;
use keys::{ConfigEdgeKeys, EdgeKeys};
use live::Live;
use live::edge::{DispatchEdgeLive, EdgeLive};
use live::push::PushServer;
use live::source::{ConfigSources, FileThenDispatch, HttpSources, Sources};
use metrics::Metrics;
use recording::Recordings;

/// Everything a request handler needs.
pub struct Gateway {
    /// The evidence backend.
    pub store: Arc<dyn EvidenceStore>,
    /// Registered edges' device keys.
    pub keys: Arc<dyn EdgeKeys>,
    /// Media-token checks.
    pub tokens: TokenVerifier,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// See [`Config::max_evidence_bytes`].
    pub max_evidence_bytes: u64,
    /// One permit per upload in progress.
    pub uploads: Semaphore,
    /// Live relays and WHEP sessions.
    pub live: Arc<Live>,
    /// Recorders, the recording index and retention.
    pub recording: Arc<Recordings>,
    /// Consult rooms and incident voice channels (`/rooms/*`).
    pub rooms: Arc<rooms::Rooms>,
}

impl Gateway {
    /// Assembles the gateway from its parts (tests may pass their own store, keys or clock).
    pub fn new(
        config: &Config,
        store: Arc<dyn EvidenceStore>,
        keys: Arc<dyn EdgeKeys>,
        clock: Clock,
        live: Arc<Live>,
        recording: Arc<Recordings>,
    ) -> Self {
        Self {
            store,
            keys,
            tokens: TokenVerifier::new(config.token_key, config.node_id.clone(), clock),
            metrics: Metrics::default(),
            max_evidence_bytes: config.max_evidence_bytes,
            uploads: Semaphore::new(config.max_concurrent_uploads),
            rooms: Arc::new(rooms::Rooms::new(live.settings.peer.clone())),
            live,
            recording,
        }
    }
}

impl Gateway {
    /// Refuses a new WebRTC connection past `live.max_sessions`, counting live views and room
    /// connections together (both cost the same ports and CPU).
    pub fn check_session_capacity(&self) -> error::Result<()> {
        if self.live.session_count() + self.rooms.connection_count()
            >= self.live.settings.max_sessions
        {
            return Err(error::Error::new(
                error::Kind::Busy,
                "too_many_sessions",
                "this gateway serves its maximum of live sessions; try again shortly",
            ));
        }
        Ok(())
    }
}

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The evidence store could not be opened.
    #[error("cannot open the evidence store: {0}")]
    Store(#[from] evidence::StoreError),
    /// The recording index could not be opened.
    #[error("cannot open the recordings: {0}")]
    Recording(#[from] recording::OpenError),
    /// The push ingest server could not start.
    #[error("cannot start the push ingest: {0}")]
    Push(String),
    /// The HTTP server failed.
    #[error("HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// The source of edge keys: the config file's `[[edge]]` entries, then — when `[dispatch]` is set —
/// dispatch's internal API.
pub fn edge_keys(config: &Config) -> Arc<dyn EdgeKeys> {
    let file: Arc<dyn EdgeKeys> = Arc::new(ConfigEdgeKeys::new(config.edges.clone()));
    match &config.sources {
        SourcesConfig::File(_) => file,
        SourcesConfig::Dispatch { url, token, .. } => Arc::new(keys::FirstOf(vec![
            file,
            Arc::new(keys::DispatchEdgeKeys::new(
                url,
                token,
                config.node_id.clone(),
            )),
        ])),
    }
}

/// The source of camera sources: the config file, then dispatch's internal API when `[dispatch]`
/// is set.
pub fn sources(config: &Config) -> Arc<dyn Sources> {
    match &config.sources {
        SourcesConfig::File(cameras) => Arc::new(ConfigSources::new(cameras.clone())),
        SourcesConfig::Dispatch {
            url,
            token,
            cameras,
        } => Arc::new(FileThenDispatch {
            file: ConfigSources::new(cameras.clone()),
            dispatch: HttpSources::new(url, token, config.node_id.clone()),
        }),
    }
}

/// Who asks edges to push: dispatch when sources come from it; none with a config file (edges
/// then push on their own).
pub fn edge_live(config: &Config) -> Option<Arc<dyn EdgeLive>> {
    match &config.sources {
        SourcesConfig::File(_) => None,
        SourcesConfig::Dispatch { url, token, .. } => Some(Arc::new(DispatchEdgeLive::new(
            url,
            token,
            config.node_id.clone(),
        ))),
    }
}

/// Talk, broadcast and push-to-talk recordings: signed with the gateway's own key, so none without one
/// (`signing_key_file`); reported to dispatch when `[dispatch]` is set.
fn start_voice_recordings(config: &Config, gateway: &Gateway) {
    let Some(signer) = config.signing_key.clone() else {
        tracing::warn!(
            "no signing_key_file: talk, broadcast and push-to-talk are not recorded as evidence"
        );
        return;
    };
    let dispatch = match &config.sources {
        SourcesConfig::File(_) => None,
        SourcesConfig::Dispatch { url, token, .. } => Some(voicerec::report::DispatchTarget {
            base: url.clone(),
            token: token.clone(),
            node: config.node_id.clone(),
        }),
    };
    let reporter = Arc::new(voicerec::report::Reporter::new(&config.data_dir, dispatch));
    tokio::spawn(reporter.clone().run());
    let recordings = Arc::new(voicerec::VoiceRecordings::new(
        &config.data_dir,
        gateway.store.clone(),
        signer,
        config.node_id.clone(),
        reporter,
    ));
    recordings.recover_unfinished();
    tokio::spawn(rooms::record::record_transmissions(
        gateway.rooms.clone(),
        recordings.clone(),
    ));
    let _ = gateway.live.voice.set(recordings);
}

/// Serves the gateway on `listener` until `shutdown` completes, then drains open requests.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let store = evidence::backend::open(&config.evidence_store, &config.evidence_dir()).await?;
    let sources = sources(&config);
    let push = match config.live.push_listen {
        Some(addr) => {
            let verifier = TokenVerifier::new(
                config.token_key,
                config.node_id.clone(),
                auth::system_clock(),
            );
            Some(Arc::new(
                PushServer::start(addr, verifier).map_err(RunError::Push)?,
            ))
        }
        None => None,
    };
    let live = Arc::new(Live::new(
        config.live.clone(),
        sources.clone(),
        push,
        edge_live(&config),
    ));
    let recordings = Recordings::open(config.recording.clone(), &config.data_dir, sources)?;
    let gateway = Gateway::new(
        &config,
        store,
        edge_keys(&config),
        auth::system_clock(),
        live,
        recordings.clone(),
    );
    start_voice_recordings(&config, &gateway);
    recordings.start_continuous().await;
    tracing::info!(
        addr = %listener.local_addr()?,
        node = %config.node_id,
        data_dir = %config.data_dir.display(),
        edges = config.edges.len(),
        "media-gateway listening"
    );
    let gateway = Arc::new(gateway);
    let live = gateway.live.clone();
    let recordings = gateway.recording.clone();
    let gateway_recordings = recordings.clone();
    axum::serve(listener, router(gateway))
        .with_graceful_shutdown(async move {
            shutdown.await;
            live.shutdown();
            recordings.shutdown();
        })
        .await?;
    // Each recorder finishes and indexes its segment in progress (the pipeline gives up after 5 s).
    gateway_recordings
        .drained(std::time::Duration::from_secs(8))
        .await;
    tracing::info!("media-gateway stopped");
    Ok(())
}

/// All routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let origins = gateway.live.settings.allowed_origins.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        .merge(evidence::http::routes())
        .merge(live::http::routes(&origins))
        .merge(live::talk_http::routes(&origins))
        .merge(live::broadcast_http::routes(&origins))
        .merge(rooms::http::routes(&origins))
        .merge(recording::http::routes())
        .fallback(|| async {
            error::Error::new(
                error::Kind::NotFound,
                "no_route",
                "no such endpoint; see media-gateway/README.md for the API",
            )
        })
        .with_state(gateway)
}

async fn metrics_text(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        {
            let mut text = gw.metrics.render();
            gw.live.render_metrics(&mut text);
            gw.recording.render_metrics(&mut text);
            gw.rooms.render_metrics(&mut text);
            text
        },
    )
}
