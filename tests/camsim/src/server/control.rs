//! The control endpoint (a test fake, HTTP on its own thread): play a scene on a running camera
//! and go back, so a drill can make the real detector at the edge see a rodent.
//!
//! | request | answer |
//! |---|---|
//! | `GET /cameras` | `{"cameras": [{"id", "scene", "played", "secsLeft"}]}` |
//! | `POST /cameras/{id}/scene` `{"scene": NAME, "secs": N}` | 200 with the camera as above; 404 unknown camera; 400 unknown scene, another size or frame rate, or `secs` outside 1..=3600 |
//! | `DELETE /cameras/{id}/scene` | 200: the camera's own scenario again |
//!
//! Errors are `{"error": "…"}` naming what was wrong.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::feed::Feed;
use crate::render::Renderer;
use crate::scenario::Scenario;

/// Longest a scene may play, seconds.
pub const MAX_SECS: u32 = 3600;

struct Control {
    feeds: HashMap<String, Arc<Feed>>,
    scenes: HashMap<String, Scenario>,
}

type Reply = (StatusCode, Json<Value>);

fn error(status: StatusCode, message: String) -> Reply {
    (status, Json(json!({ "error": message })))
}

fn camera(feed: &Feed) -> Value {
    let s = feed.showing();
    json!({ "id": feed.id, "scene": s.scene, "played": s.played, "secsLeft": s.secs_left })
}

/// The body of `POST /cameras/{id}/scene`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Play {
    /// The scene's scenario `name`.
    scene: String,
    /// How long it plays before the camera's own scenario comes back.
    secs: u32,
}

impl Control {
    fn feed(&self, id: &str) -> Result<&Arc<Feed>, Reply> {
        self.feeds
            .get(id)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no camera {id:?}")))
    }

    fn play(&self, id: &str, body: &Play) -> Result<Value, Reply> {
        let feed = self.feed(id)?;
        let bad = |m: String| error(StatusCode::BAD_REQUEST, m);
        let scene = self.scenes.get(&body.scene).ok_or_else(|| {
            let mut names: Vec<_> = self.scenes.keys().map(String::as_str).collect();
            names.sort_unstable();
            bad(format!(
                "scene: no scene {:?}; known: {}",
                body.scene,
                names.join(", ")
            ))
        })?;
        let own = feed.renderer.scenario();
        if (scene.width, scene.height, scene.fps) != (own.width, own.height, own.fps) {
            return Err(bad(format!(
                "scene: {:?} is {}x{} at {} fps, camera {id} streams {}x{} at {} fps",
                body.scene, scene.width, scene.height, scene.fps, own.width, own.height, own.fps
            )));
        }
        if !(1..=MAX_SECS).contains(&body.secs) {
            return Err(bad(format!("secs: {} is not in 1..={MAX_SECS}", body.secs)));
        }
        let frames = u64::from(body.secs) * u64::from(own.fps);
        feed.play(Arc::new(Renderer::new(scene.clone())), frames);
        tracing::info!(camera_id = %id, scene = %body.scene, secs = body.secs, "playing a scene");
        Ok(camera(feed))
    }
}

async fn list(State(c): State<Arc<Control>>) -> Json<Value> {
    let mut ids: Vec<_> = c.feeds.keys().collect();
    ids.sort_unstable();
    Json(json!({ "cameras": ids.iter().map(|id| camera(&c.feeds[*id])).collect::<Vec<_>>() }))
}

async fn play(
    State(c): State<Arc<Control>>,
    Path(id): Path<String>,
    body: Result<Json<Play>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    // Building the scene's renderer draws its backdrop: CPU work off the async thread.
    let c2 = c.clone();
    let played = tokio::task::spawn_blocking(move || c2.play(&id, &body)).await;
    match played {
        Ok(Ok(v)) => (StatusCode::OK, Json(v)),
        Ok(Err(reply)) => reply,
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn stop(State(c): State<Arc<Control>>, Path(id): Path<String>) -> Reply {
    match c.feed(&id) {
        Ok(feed) => {
            feed.stop_playing();
            tracing::info!(camera_id = %id, "scene stopped; own scenario again");
            (StatusCode::OK, Json(camera(feed)))
        }
        Err(reply) => reply,
    }
}

/// The running endpoint: its thread and the token that stops it.
pub struct ControlServer {
    pub addr: SocketAddr,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ControlServer {
    pub fn shutdown(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds `addr` (port 0 picks one) and serves the endpoint on a thread of its own.
pub fn start(
    addr: SocketAddr,
    feeds: HashMap<String, Arc<Feed>>,
    scenes: Vec<Scenario>,
) -> std::io::Result<ControlServer> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let scenes = scenes.into_iter().map(|s| (s.name.clone(), s)).collect();
    let app = Router::new()
        .route("/cameras", get(list))
        .route("/cameras/{id}/scene", post(play).delete(stop))
        .with_state(Arc::new(Control { feeds, scenes }));
    let stop = CancellationToken::new();
    let token = stop.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("camsim-control".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return tracing::error!(err = %e, "control endpoint cannot listen"),
                };
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(token.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::error!(err = %e, "control endpoint stopped");
                }
            })
        })?;
    tracing::info!(addr = %addr, "camsim control listening");
    Ok(ControlServer {
        addr,
        stop,
        thread: Some(thread),
    })
}
