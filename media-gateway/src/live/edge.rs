//! On-demand push from an edge box (DESIGN §3.3): while a relay of an edge-pushed camera has
//! viewers, its push path is mounted and the edge is asked to push ([`EdgeLive::start`], through
//! dispatch, which sends `startLive` over MQTT with a `push` token); when the relay stops after the
//! linger, the path is unmounted and the edge is told to stop ([`EdgeLive::stop`]).
//!
//! States viewers see: `connecting` until the first packet, `live`, and `offline` with the reason
//! when the box does not push within `start_timeout`, stops pushing, or goes quiet for 10 s; then
//! the ask is repeated with backoff (at once when a new viewer arrives).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bl_proto::stream::Stream;
use bl_proto::{CameraId, GatewayNodeId};

use super::Live;
use super::push::PushServer;
use super::relay::{Relay, SourceState};

/// What the gateway asks of the edge that owns a camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    /// The camera.
    pub camera: CameraId,
    /// Which of its streams.
    pub stream: Stream,
    /// The edge box that owns it.
    pub edge_id: String,
    /// Where to push (no credentials: the token travels in the command).
    pub push_url: String,
}

/// Asks edges to start and stop pushing; dispatch's internal API in production.
#[async_trait::async_trait]
pub trait EdgeLive: Send + Sync {
    /// Asks the edge to push; `Ok` once the command is on its way (not once video flows).
    async fn start(&self, request: &PushRequest) -> Result<(), String>;
    /// Tells the edge to stop pushing (best effort: the edge also stops on its own when the
    /// gateway disconnects it, and after its maximum push duration).
    async fn stop(&self, request: &PushRequest);
    /// Asks the edge owning `camera` to pull talk audio from `pull_url` (the edge appends
    /// `/{token}`) and play it; `Ok` once the command is on its way.
    async fn talk_start(&self, camera: &CameraId, pull_url: &str) -> Result<(), String>;
    /// Tells the edge to stop playing talk audio (best effort: the pull also ends when the
    /// gateway disconnects it).
    async fn talk_stop(&self, camera: &CameraId);
}

/// [`EdgeLive`] through dispatch: `POST /internal/cameras/{id}/live-start` and `…/live-stop` with
/// this node's service token and `X-BL-Node`; body `{"stream","pushUrl"}`.
pub struct DispatchEdgeLive {
    base: String,
    token: Arc<str>,
    node: GatewayNodeId,
    http: reqwest::Client,
}

impl DispatchEdgeLive {
    /// A client for dispatch at `base`.
    pub fn new(base: &str, token: &str, node: GatewayNodeId) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.into(),
            node,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn call(
        &self,
        camera: &CameraId,
        what: &str,
        body: serde_json::Value,
    ) -> Result<(), String> {
        let url = format!("{}/internal/cameras/{camera}/{what}", self.base);
        let response = self
            .http
            .post(&url)
            .bearer_auth(&*self.token)
            .header("X-BL-Node", self.node.as_str())
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("dispatch unreachable: {}", e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        Err(format!("dispatch answered {status}: {message}"))
    }
}

#[async_trait::async_trait]
impl EdgeLive for DispatchEdgeLive {
    async fn start(&self, r: &PushRequest) -> Result<(), String> {
        let body = serde_json::json!({"stream": r.stream.as_str(), "pushUrl": r.push_url});
        self.call(&r.camera, "live-start", body).await
    }

    async fn stop(&self, r: &PushRequest) {
        let body = serde_json::json!({"stream": r.stream.as_str(), "pushUrl": r.push_url});
        if let Err(e) = self.call(&r.camera, "live-stop", body).await {
            tracing::warn!(camera_id = %r.camera, err = %e, "could not tell the edge to stop pushing");
        }
    }

    async fn talk_start(&self, camera: &CameraId, pull_url: &str) -> Result<(), String> {
        let body = serde_json::json!({"pullUrl": pull_url});
        self.call(camera, "talk-start", body).await
    }

    async fn talk_stop(&self, camera: &CameraId) {
        if let Err(e) = self.call(camera, "talk-stop", serde_json::json!({})).await {
            tracing::warn!(camera_id = %camera, err = %e, "could not tell the edge to stop playing talk audio");
        }
    }
}

/// How long a live push may be silent before it counts as failed.
const QUIET_LIMIT: Duration = Duration::from_secs(10);

/// Runs the push side of `relay` (camera owned by `edge_id`) until `relay.stop` is cancelled.
pub async fn supervise(live: Arc<Live>, push: Arc<PushServer>, relay: Arc<Relay>, edge_id: String) {
    let request = PushRequest {
        camera: relay.camera.clone(),
        stream: relay.stream,
        edge_id,
        push_url: live.push_url(&push, &relay.camera, relay.stream),
    };
    push.mount(&relay);
    let mut failures = 0u32;
    loop {
        relay.set_state(SourceState::Connecting);
        relay.starts.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let asked = match &live.edges {
            Some(edges) => edges
                .start(&request)
                .await
                .map_err(|e| format!("could not ask edge box {} to push: {e}", request.edge_id)),
            None => Ok(()),
        };
        let outcome = match asked {
            Ok(()) => watch(&relay, live.settings.start_timeout, &request.edge_id).await,
            Err(e) => Err(e),
        };
        let reason = match outcome {
            Ok(()) => break,
            Err(reason) => reason,
        };
        if started.elapsed() > Duration::from_secs(30) {
            failures = 0;
        }
        failures += 1;
        let wait = live.settings.backoff.delay(failures);
        tracing::warn!(camera_id = %relay.camera, edge_id = %request.edge_id, err = %reason,
            retry_in_ms = wait.as_millis() as u64, "edge push failed");
        relay.set_state(SourceState::Offline {
            reason,
            retry_in_secs: wait.as_secs().max(1),
        });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = relay.retry_now.notified() => {}
            () = relay.stop.cancelled() => break,
        }
    }
    push.unmount(&relay.camera, relay.stream);
    if let Some(edges) = &live.edges {
        edges.stop(&request).await;
    }
    tracing::info!(camera_id = %relay.camera, stream = relay.stream.as_str(), "edge push released");
}

/// Waits for the push to start and then watches it; `Ok` when the relay is stopped, `Err` with a
/// reason for people when the push did not come or ended.
async fn watch(relay: &Relay, start_timeout: Duration, edge_id: &str) -> Result<(), String> {
    let mut state = relay.watch_state();
    let came = tokio::time::timeout(start_timeout, async {
        loop {
            if *state.borrow_and_update() == SourceState::Live {
                return true;
            }
            tokio::select! {
                r = state.changed() => if r.is_err() { return false },
                () = relay.stop.cancelled() => return false,
            }
        }
    })
    .await;
    if relay.stop.is_cancelled() {
        return Ok(());
    }
    match came {
        Ok(true) => {}
        _ => {
            return Err(format!(
                "edge box {edge_id} did not push within {} s (offline, or it refused the command)",
                start_timeout.as_secs()
            ));
        }
    }
    let mut last = relay.packets_in.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    loop {
        tokio::select! {
            () = relay.stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if let SourceState::Offline { reason, .. } = relay.state() {
            return Err(reason);
        }
        let now = relay.packets_in.load(Ordering::Relaxed);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > QUIET_LIMIT {
            return Err(format!("no video from edge box {edge_id} for 10 s"));
        }
    }
}
