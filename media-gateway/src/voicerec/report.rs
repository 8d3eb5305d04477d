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
        }
    }

    /// The folder of reports not yet accepted by dispatch.
    pub fn pending_dir(&self) -> &std::path::Path {
        &self.pending
    }

    /// Writes `report` durably and wakes the sender.
    pub async fn queue(&self, report: VoiceReport) {
        let pending = self.pending.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&pending)?;
            let name = format!("{}.json", report.sha256);
            let tmp = pending.join(format!(".{name}.tmp"));
            let json = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?;
            {
                use std::io::Write as _;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&json)?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, pending.join(name))?;
            crate::durable::sync_dir(&pending)
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
                () = tokio::time::sleep(RETRY) => {}
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
