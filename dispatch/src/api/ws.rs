//! `GET /api/ws`: the handshake. The policy middleware has checked the session and role; this
//! checks that it is a WebSocket handshake (400 `not_websocket`), its Origin (403 `bad_origin`)
//! and the socket limit (503 `ws_full`) before upgrading.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Kind, Result};
use crate::ws::{connection, origin};
use axum::Extension;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use std::sync::Arc;

#[utoipa::path(
    get,
    path = "/api/ws",
    summary = "The consoles' WebSocket",
    description = "A WebSocket handshake; the protocol (hello, subscribe, incident, timeline, notification, edge, resync) is in dispatch/README.md.",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "`not_websocket`: a plain GET"),
        (status = 403, description = "`bad_origin`: the Origin is not this server's nor allowed"),
        (status = 503, description = "`ws_full`: too many sockets on this replica"),
    )
)]
pub async fn socket(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    upgrade: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    let upgrade = upgrade.map_err(|e| {
        Error::bad_request(
            "not_websocket",
            format!(
                "/api/ws takes a WebSocket handshake only ({})",
                e.body_text()
            ),
        )
    })?;
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if !origin::allowed(
        text(header::ORIGIN),
        text(header::HOST),
        &app.config.ws.allowed_origins,
    ) {
        tracing::warn!(username = %caller.username, origin = ?text(header::ORIGIN), "websocket refused: origin");
        return Err(Error::forbidden(
            "bad_origin",
            "the Origin header is missing or not this server's (nor in ws.allowed_origins); open the console from this server",
        ));
    }
    let viewer = connection::load_viewer(&app, &caller.session_hash)
        .await?
        .ok_or_else(Error::unauthenticated)?;
    let slot = app.ws.admit().ok_or_else(|| {
        Error::new(
            Kind::Unavailable,
            "ws_full",
            "this server has as many WebSockets open as ws.max_connections allows; retry later",
        )
    })?;
    let session_hash = caller.session_hash;
    Ok(upgrade
        .max_message_size(connection::MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| connection::run(app, socket, viewer, session_hash, slot)))
}
