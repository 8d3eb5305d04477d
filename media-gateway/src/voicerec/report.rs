//! Reporting finished recordings to dispatch (`POST /internal/voice-recordings`, this node's
//! service token and `X-BL-Node`), durably: **the report is written to
//! `{data_dir}/voicerec/pending/{sha256}.json` before it is sent and removed only once dispatch
//! accepted it**, so a dispatch restart or outage delays the timeline entry but never loses it
//! (dispatch takes a report twice without harm: it is keyed by the blob's SHA-256). Pending
//! reports are retried every [`RETRY`] and at start. A report dispatch refuses as wrong (4xx) is
//! moved to `refused/` and logged, not retried forever. Without `[dispatch]` reports stay pending.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bl_proto::GatewayNodeId;
use tokio::sync::Notify;

use super::VoiceReport;

/// How often pending reports are retried.
pub const RETRY: Duration = Duration::from_secs(10);

/// Where dispatch is.
#[derive(Debug, Clone)]
pub struct DispatchTarget {
    /// e.g. `http://dispatch:8080`.
    pub base: String,
    /// This node's service token.
    pub token: String,
    /// This node.
    pub node: GatewayNodeId,
}

/// The pending reports and their sender.
pub struct Reporter {
    pending: PathBuf,
    refused: PathBuf,
    dispatch: Option<DispatchTarget>,
    wake: Notify,
    http: reqwest::Client,
    retry: Duration,
}

impl Reporter {
    /// Reports under `data_dir/voicerec`, sent to `dispatch` if set.
    pub fn new(data_dir: &std::path::Path, dispatch: Option<DispatchTarget>) -> Self {
        let dir = data_dir.join("voicerec");
        Self {
            pending: dir.join("pending"),
            refused: dir.join("refused"),
            dispatch,
            wake: Notify::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            retry: RETRY,
        }
    }

    /// The same reporter retrying every `retry` instead of [`RETRY`] (tests).
    pub fn retrying_every(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// The folder of reports not yet accepted by dispatch.
    pub fn pending_dir(&self) -> &std::path::Path {
        &self.pending
    }

    /// Writes `report` durably and wakes the sender.
    pub async fn queue(&self, report: VoiceReport) {
        let pending = self.pending.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let json = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?;
            crate::durable::write_atomically(&pending, &format!("{}.json", report.sha256), &json)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = written {
            tracing::error!(err = %e, "cannot write a voice recording's pending report; it is stored but will not reach the timeline");
        }
        self.wake.notify_one();
    }

    /// Sends pending reports until the process ends (only with `[dispatch]`).
    pub async fn run(self: Arc<Self>) {
        let Some(dispatch) = self.dispatch.clone() else {
            return;
        };
        loop {
            self.send_pending(&dispatch).await;
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.retry) => {}
            }
        }
    }

    async fn send_pending(&self, dispatch: &DispatchTarget) {
        let Ok(mut entries) = tokio::fs::read_dir(&self.pending).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let Ok(body) = tokio::fs::read(&path).await else {
                continue;
            };
            match self.send(dispatch, body).await {
                Ok(()) => {
                    let _ = tokio::fs::remove_file(&path).await;
                    tracing::info!(report = %name, "voice recording reported to dispatch");
                }
                Err(Refusal::Permanent(why)) => {
                    tracing::error!(report = %name, err = %why, "dispatch refused a voice recording report; kept in voicerec/refused");
                    let _ = tokio::fs::create_dir_all(&self.refused).await;
                    let _ = tokio::fs::rename(&path, self.refused.join(&name)).await;
                }
                Err(Refusal::Later(why)) => {
                    tracing::warn!(report = %name, err = %why, "cannot report a voice recording now; will retry");
                    return;
                }
            }
        }
    }

    async fn send(&self, d: &DispatchTarget, body: Vec<u8>) -> Result<(), Refusal> {
        let response = self
            .http
            .post(format!(
                "{}/internal/voice-recordings",
                d.base.trim_end_matches('/')
            ))
            .bearer_auth(&d.token)
            .header("X-BL-Node", d.node.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Refusal::Later(format!("dispatch unreachable: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let why = format!(
            "dispatch answered {status}: {}",
            text.chars().take(300).collect::<String>()
        );
        // 401/403/404/429 can heal (token rotation, an older dispatch, load); others are wrong.
        if status.is_client_error() && ![401, 403, 404, 408, 429].contains(&status.as_u16()) {
            Err(Refusal::Permanent(why))
        } else {
            Err(Refusal::Later(why))
        }
    }
}

enum Refusal {
    Later(String),
    Permanent(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voicerec::{VoiceKind, VoiceReport};
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::Mutex;

    fn report(sha: char) -> VoiceReport {
        VoiceReport {
            v: 1,
            sha256: bl_proto::evidence::Sha256Hex::new(sha.to_string().repeat(64)).unwrap(),
            size: 10,
            content_type: "audio/webm".into(),
            kind: VoiceKind::Talk,
            talker: "op-1".into(),
            cameras: vec!["cam-1".parse().unwrap()],
            broadcast: None,
            started_at: bl_proto::time::now(),
            ended_at: bl_proto::time::now(),
            directions: vec!["center".into()],
            premises_note: Some("the camera has no audio".into()),
        }
    }

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[tokio::test]
    async fn a_report_stays_pending_while_dispatch_is_down_and_a_wrong_one_is_set_aside() {
        // dispatch: down (503) for the first two calls, then accepting — except a report it
        // finds wrong (422).
        let calls = Arc::new(Mutex::new(Vec::<(String, String, String)>::new()));
        let c = calls.clone();
        let app = axum::Router::new().route(
            "/internal/voice-recordings",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let c = c.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let mut calls = c.lock().unwrap();
                    calls.push((h("authorization"), h("x-bl-node"), body.clone()));
                    if calls.len() <= 2 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else if body.contains(&"b".repeat(64)) {
                        StatusCode::UNPROCESSABLE_ENTITY
                    } else {
                        StatusCode::CREATED
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let dir = tempfile::tempdir().unwrap();
        let target = DispatchTarget {
            base,
            token: "svc-token".into(),
            node: "gw-1".parse().unwrap(),
        };
        let reporter = Arc::new(
            Reporter::new(dir.path(), Some(target)).retrying_every(Duration::from_millis(100)),
        );
        reporter.queue(report('a')).await;
        reporter.queue(report('b')).await;
        let pending = dir.path().join("voicerec/pending");
        assert_eq!(
            names(&pending),
            [
                format!("{}.json", "a".repeat(64)),
                format!("{}.json", "b".repeat(64))
            ]
        );

        let sender = tokio::spawn(reporter.clone().run());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !names(&pending).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "still pending: {:?}",
                names(&pending)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sender.abort();
        assert_eq!(
            names(&dir.path().join("voicerec/refused")),
            [format!("{}.json", "b".repeat(64))]
        );
        let calls = calls.lock().unwrap();
        assert!(calls.len() >= 4, "{calls:?}");
        assert!(
            calls
                .iter()
                .all(|(auth, node, _)| auth == "Bearer svc-token" && node == "gw-1")
        );
        let accepted: VoiceReport = serde_json::from_str(
            &calls
                .iter()
                .rev()
                .find(|c| c.2.contains(&"a".repeat(64)))
                .unwrap()
                .2,
        )
        .unwrap();
        assert_eq!(accepted, report_with_times(&accepted));
    }

    /// `report('a')` with the times of `r` (they are taken at creation).
    fn report_with_times(r: &VoiceReport) -> VoiceReport {
        VoiceReport {
            started_at: r.started_at,
            ended_at: r.ended_at,
            ..report('a')
        }
    }
}
