//! One open socket: sends `hello`, answers client messages, forwards the changes its viewer may
//! see on the topics it subscribed to, and re-checks its session every `ws.session_check_secs`
//! (a logout closes it at once through the `sessionEnded` change).

use super::filter::Viewer;
use super::hub::Event;
use super::message::{
    Change, ClientMessage, Hello, Pong, Resync, ServerMessage, Subscribed, Topic, close,
};
use crate::AppState;
use crate::auth::policy::{self, WsDirection};
use crate::auth::{Role, Scope, session};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;
use uuid::Uuid;

/// Largest client message accepted; larger ones close the socket (clients send only small JSON).
pub const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

#[derive(sqlx::FromRow)]
struct SessionRow {
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    user_id: Uuid,
    username: String,
    role: String,
    scope_towns: Option<Vec<String>>,
    team_id: Option<Uuid>,
    disabled: bool,
}

/// The viewer of session `id_hash` at `now`, or `None` when the session is gone, timed out or its
/// user disabled. Reads only: an open socket does not keep an idle session alive.
pub async fn load_viewer(app: &AppState, id_hash: &[u8]) -> Result<Option<Viewer>, sqlx::Error> {
    let row = sqlx::query_as::<_, SessionRow>(
        "SELECT s.created_at, s.last_seen_at, u.id AS user_id, u.username, u.role, u.scope_towns, \
         u.team_id, u.disabled FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1",
    )
    .bind(id_hash)
    .fetch_optional(&app.pool)
    .await?;
    Ok(row.and_then(|r| {
        let live = !r.disabled
            && !session::expired(&app.config.session, r.created_at, r.last_seen_at, app.now());
        Some(Viewer {
            user_id: r.user_id,
            username: r.username,
            role: Role::parse(&r.role)?,
            scope: Scope::from_column(r.scope_towns),
            team_id: r.team_id,
        })
        .filter(|_| live)
    }))
}

/// Why a socket ends.
enum End {
    /// The client left (close frame, error, EOF).
    Gone,
    /// The server closes it with this code and reason.
    Close(u16, String),
}

struct Socket {
    app: Arc<AppState>,
    socket: WebSocket,
    viewer: Viewer,
    session_hash: Vec<u8>,
    topics: HashSet<Topic>,
    send_timeout: Duration,
}

/// Serves one upgraded socket until it ends; `_slot` is its place under `ws.max_connections`.
pub async fn run(
    app: Arc<AppState>,
    socket: WebSocket,
    viewer: Viewer,
    session_hash: Vec<u8>,
    _slot: OwnedSemaphorePermit,
) {
    let span = tracing::info_span!("ws", user = %viewer.username);
    let send_timeout = Duration::from_secs(app.config.ws.send_timeout_secs);
    let mut s = Socket {
        app,
        socket,
        viewer,
        session_hash,
        topics: HashSet::new(),
        send_timeout,
    };
    let end = s.serve().instrument(span.clone()).await;
    if let End::Close(code, reason) = end {
        span.in_scope(|| tracing::info!(code, reason, "closing websocket"));
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(Duration::from_secs(1), s.socket.send(frame)).await;
    }
}

impl Socket {
    async fn serve(&mut self) -> End {
        let hub = self.app.ws.clone();
        let mut changes = hub.subscribe();
        let hello = ServerMessage::Hello(Hello {
            user_id: self.viewer.user_id,
            username: self.viewer.username.clone(),
            role: self.viewer.role.as_str().to_owned(),
            topics: self.viewer.topics(),
            session_check_secs: self.app.config.ws.session_check_secs,
            at: self.app.now(),
        });
        if let Err(end) = self.send(&hello).await {
            return end;
        }
        let period = Duration::from_secs(self.app.config.ws.session_check_secs);
        let mut check = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            let step = tokio::select! {
                _ = hub.closing().cancelled() => {
                    Err(End::Close(close::GOING_AWAY, "server shutting down; reconnect".into()))
                }
                _ = check.tick() => self.recheck().await,
                event = changes.recv() => match event {
                    Ok(event) => self.on_event(&event).await,
                    // A burst larger than the buffer (one big transaction) overtakes even a
                    // prompt reader: it missed changes, so it reloads, but stays connected. A
                    // client that does not read at all is closed by the send timeout instead.
                    Err(RecvError::Lagged(n)) => {
                        let m = ServerMessage::Resync(Resync {
                            reason: format!("missed {n} changes; reload"),
                            at: self.app.now(),
                        });
                        self.send(&m).await
                    }
                    Err(RecvError::Closed) => Err(End::Gone),
                },
                incoming = self.socket.recv() => match incoming {
                    Some(Ok(message)) => self.on_message(message).await,
                    Some(Err(_)) | None => Err(End::Gone),
                },
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Sends `message`, or ends the socket when the client does not take it in time.
    async fn send(&mut self, message: &ServerMessage) -> Result<(), End> {
        let text = Message::Text(message.to_text().into());
        match tokio::time::timeout(self.send_timeout, self.socket.send(text)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Close(
                close::TOO_SLOW,
                "did not accept a message in time; reconnect and reload".into(),
            )),
        }
    }

    async fn on_event(&mut self, event: &Event) -> Result<(), End> {
        match event {
            Event::Resync(reason) => {
                let m = ServerMessage::Resync(Resync {
                    reason: reason.clone(),
                    at: self.app.now(),
                });
                self.send(&m).await
            }
            Event::Change(Change::SessionEnded(ended)) => {
                if hex::encode(&self.session_hash) == ended.id_hash {
                    Err(session_ended())
                } else {
                    Ok(())
                }
            }
            Event::Change(change) => match change.to_message() {
                Some(m) if self.viewer.receives(&self.topics, change) => self.send(&m).await,
                _ => Ok(()),
            },
        }
    }

    /// Re-reads the session and user: ends the socket when the session ended, else takes a changed
    /// role, scope or team into account (dropping topics the role may no longer have).
    async fn recheck(&mut self) -> Result<(), End> {
        match load_viewer(&self.app, &self.session_hash).await {
            Ok(Some(viewer)) => {
                self.viewer = viewer;
                let viewer = &self.viewer;
                self.topics.retain(|t| viewer.may_subscribe(*t));
                Ok(())
            }
            Ok(None) => Err(session_ended()),
            // the database is away: keep the socket, try again at the next check
            Err(e) => {
                tracing::warn!(err = %e, "session re-check failed; keeping the socket");
                Ok(())
            }
        }
    }

    async fn on_message(&mut self, message: Message) -> Result<(), End> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let m = ServerMessage::error("bad_message", "send JSON text messages");
                return self.send(&m).await;
            }
            Message::Close(_) => return Err(End::Gone),
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
        };
        let reply = match serde_json::from_str::<ClientMessage>(text.as_str()) {
            Err(e) => ServerMessage::error(
                "bad_message",
                format!(
                    "not a client message ({e}); send {{\"type\": \"subscribe\" | \"ping\", …}}"
                ),
            ),
            Ok(m)
                if !policy::ws_lookup(WsDirection::ToServer, m.kind())
                    .is_some_and(|r| r.allows(self.viewer.role)) =>
            {
                ServerMessage::error(
                    "message_forbidden",
                    format!(
                        "role {} may not send {}",
                        self.viewer.role.as_str(),
                        m.kind()
                    ),
                )
            }
            Ok(ClientMessage::Ping { id }) => ServerMessage::Pong(Pong {
                id,
                at: self.app.now(),
            }),
            Ok(ClientMessage::Subscribe { topics }) => self.subscribe(&topics),
        };
        self.send(&reply).await
    }

    /// Replaces the subscription; an unknown or forbidden topic refuses the whole request.
    fn subscribe(&mut self, names: &[String]) -> ServerMessage {
        let allowed: Vec<&str> = self.viewer.topics().iter().map(|t| t.as_str()).collect();
        let mut topics = HashSet::new();
        for name in names {
            let Some(topic) = Topic::parse(name) else {
                let all: Vec<&str> = Topic::ALL.iter().map(|t| t.as_str()).collect();
                return ServerMessage::error(
                    "unknown_topic",
                    format!("no topic {name:?}; topics are {}", all.join(", ")),
                );
            };
            if !self.viewer.may_subscribe(topic) {
                return ServerMessage::error(
                    "topic_forbidden",
                    format!(
                        "role {} may not subscribe to {name}; it may subscribe to: {}",
                        self.viewer.role.as_str(),
                        allowed.join(", ")
                    ),
                );
            }
            topics.insert(topic);
        }
        self.topics = topics;
        let mut list: Vec<Topic> = self.topics.iter().copied().collect();
        list.sort_by_key(|t| t.as_str());
        ServerMessage::Subscribed(Subscribed {
            topics: list,
            at: self.app.now(),
        })
    }
}

fn session_ended() -> End {
    End::Close(close::SESSION_ENDED, "session ended; log in again".into())
}
