//! A console's view of the run: the admin logs in over HTTP, opens `/api/ws` as a browser would
//! (session cookie, the server's own Origin), subscribes to incidents and notes when each incident
//! message arrives. An event is on the console once an incident message of its premises arrives
//! whose `lastReportAt` is at or after the event's `at`; the gap is the event → WebSocket latency.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

/// One incident message: its premises, its `lastReportAt`, and when it arrived here.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub premises: Uuid,
    pub last_report_at: DateTime<Utc>,
    pub arrived: DateTime<Utc>,
}

/// What the socket has seen so far.
#[derive(Default)]
pub struct Watched {
    pub seen: Vec<Seen>,
    /// `resync` messages: the socket fell behind and changes were skipped.
    pub resyncs: u64,
}

pub struct Watch {
    pub watched: Arc<Mutex<Watched>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Logs in as `admin` and opens a socket subscribed to incidents.
pub async fn open(addr: &str, password: &str) -> Result<Watch> {
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("http://{addr}/api/session"))
        .json(&serde_json::json!({"username": "admin", "password": password}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("admin login failed: {}", resp.status());
    }
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next()?.strip_prefix("__Host-bl_session="))
        .context("no session cookie in the login answer")?
        .to_owned();
    let mut request = format!("ws://{addr}/api/ws").into_client_request()?;
    let headers = request.headers_mut();
    headers.insert("cookie", format!("__Host-bl_session={session}").parse()?);
    headers.insert("origin", format!("http://{addr}").parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let subscribe = serde_json::json!({"type": "subscribe", "topics": ["incidents"]});
    socket.send(Message::text(subscribe.to_string())).await?;
    loop {
        let text = next_text(&mut socket).await?;
        let m: serde_json::Value = serde_json::from_str(&text)?;
        match m["type"].as_str() {
            Some("subscribed") => break,
            Some("hello") => continue,
            other => bail!("unexpected WebSocket answer {other:?}: {text}"),
        }
    }
    let watched = Arc::new(Mutex::new(Watched::default()));
    let sink = watched.clone();
    let task = tokio::spawn(async move {
        while let Ok(text) = next_text(&mut socket).await {
            let arrived = Utc::now();
            let Ok(m) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            match m["type"].as_str() {
                Some("incident") => {
                    let premises = m["premisesId"].as_str().and_then(|p| p.parse().ok());
                    let at = m["lastReportAt"]
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
                    if let (Some(premises), Some(at)) = (premises, at) {
                        sink.lock().unwrap().seen.push(Seen {
                            premises,
                            last_report_at: at.with_timezone(&Utc),
                            arrived,
                        });
                    }
                }
                Some("resync") => sink.lock().unwrap().resyncs += 1,
                _ => {}
            }
        }
    });
    Ok(Watch { watched, task })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(socket: &mut Socket) -> Result<String> {
    loop {
        match socket.next().await.context("the socket closed")?? {
            Message::Text(t) => return Ok(t.as_str().to_owned()),
            Message::Close(c) => bail!("the socket closed: {c:?}"),
            _ => continue,
        }
    }
}

/// For each sent event (its premises and `at`), the time until the first incident message of its
/// premises reflecting it arrived; events never reflected are left out and counted.
pub fn latencies(sent: &[(Uuid, DateTime<Utc>)], seen: &[Seen]) -> (Vec<f64>, usize) {
    let mut by_premises: HashMap<Uuid, Vec<Seen>> = HashMap::new();
    for s in seen {
        by_premises.entry(s.premises).or_default().push(*s);
    }
    let mut out = Vec::with_capacity(sent.len());
    let mut missing = 0;
    for (premises, at) in sent {
        // messages arrive in order; the first one whose lastReportAt covers `at`
        let found = by_premises
            .get(premises)
            .and_then(|list| list.iter().find(|s| s.last_report_at >= *at));
        match found {
            Some(s) => out.push((s.arrived - *at).num_microseconds().unwrap_or(0) as f64 / 1e6),
            None => missing += 1,
        }
    }
    (out, missing)
}

/// The `q` quantile (0–1) of `values`, sorted in place.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let i = ((values.len() - 1) as f64 * q).round() as usize;
    values[i]
}
