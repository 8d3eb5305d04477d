//! The uploader: drains the outbox's evidence rows to `PUT {url}/evidence/{sha256}` (DESIGN §3.2),
//! one at a time, oldest due first. A row leaves only after `200` or `201`.
//!
//! | answer | what happens |
//! |---|---|
//! | 200, 201 | row and spool file removed |
//! | no answer, 5xx, 429, 403 `unknown_edge` (the gateway may learn the key soon) | retried with backoff, doubling from 1 s to `retry_max` |
//! | any other 4xx (`bad_signature`, `hash_mismatch`, `too_large`, …) | cannot succeed: logged as an error, file moved to `{spool}/rejected/`, row kept with the reason, never retried |

use super::spool::REJECTED_DIR;
use crate::outbox::Outbox;
use crate::outbox::blobs::Blob;
use bl_proto::evidence::EvidenceMeta;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Upper bound of one attempt; a 64 MiB clip over a slow link still fits.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Where and how to upload.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// The gateway's base URL; blobs go to `{url}/evidence/{sha256}`.
    pub url: String,
    /// Longest wait between attempts of one blob.
    pub retry_max: Duration,
    /// The spool folder (rejected blobs go to its `rejected/`).
    pub spool_dir: PathBuf,
}

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Stored,
    Retry(String),
    Rejected(String),
}

/// Runs until `shutdown`.
pub async fn run(config: UploadConfig, outbox: Outbox, shutdown: CancellationToken) {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let base = config.url.trim_end_matches('/').to_owned();
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let next = match outbox.next_blob(now).await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(err = %e, "cannot read the evidence queue");
                None
            }
        };
        let Some(blob) = next else {
            // Sleep until the earliest retry, a new blob, or a second (other processes' rows).
            let wait = match outbox.next_blob_due().await {
                Ok(Some(due)) => Duration::from_millis((due - now).clamp(0, 1_000) as u64),
                _ => Duration::from_secs(1),
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = outbox.blob_pushed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        };
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = attempt(&http, &base, &blob) => outcome,
        };
        let done = match outcome {
            Outcome::Stored => {
                tracing::info!(sha256 = %blob.sha256, bytes = blob.size, "evidence uploaded");
                outbox.blob_delivered(&blob).await
            }
            Outcome::Retry(why) => {
                let wait = backoff(blob.attempts, config.retry_max);
                tracing::warn!(sha256 = %blob.sha256, attempt = blob.attempts + 1, retry_in = ?wait, why = %why, "evidence upload failed; will retry");
                let next = chrono::Utc::now().timestamp_millis() + wait.as_millis() as i64;
                outbox.blob_retry(&blob, next).await
            }
            Outcome::Rejected(why) => {
                let aside = config
                    .spool_dir
                    .join(REJECTED_DIR)
                    .join(blob.file.file_name().unwrap_or_default());
                let moved = std::fs::rename(&blob.file, &aside).is_ok();
                tracing::error!(
                    sha256 = %blob.sha256,
                    why = %why,
                    kept = %if moved { &aside } else { &blob.file }.display(),
                    "the gateway refused evidence for good; it is kept aside and not retried"
                );
                outbox
                    .blob_rejected(&blob, &why, if moved { &aside } else { &blob.file })
                    .await
            }
        };
        if let Err(e) = done {
            tracing::error!(sha256 = %blob.sha256, err = %e, "cannot update the evidence queue");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// `BACKOFF_MIN` doubling per failed attempt, at most `max`.
fn backoff(attempts: u32, max: Duration) -> Duration {
    BACKOFF_MIN
        .saturating_mul(1u32.checked_shl(attempts.min(20)).unwrap_or(u32::MAX))
        .min(max)
}

async fn attempt(http: &reqwest::Client, base: &str, blob: &Blob) -> Outcome {
    let meta: EvidenceMeta = match serde_json::from_str(&blob.meta) {
        Ok(meta) => meta,
        Err(e) => return Outcome::Rejected(format!("queued metadata unreadable: {e}")),
    };
    // Streamed from the spool file, so a 64 MiB clip never sits in memory; the length is the one
    // the edge signed, and the gateway checks it and the hash as the bytes arrive.
    let file = match tokio::fs::File::open(&blob.file).await {
        Ok(file) => file,
        Err(e) => return Outcome::Rejected(format!("spool file {}: {e}", blob.file.display())),
    };
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let mut request = http
        .put(format!("{base}/evidence/{}", blob.sha256))
        .header(reqwest::header::CONTENT_LENGTH, blob.size);
    for (name, value) in meta.headers(&blob.signature) {
        request = request.header(name, value);
    }
    match request.body(body).send().await {
        Err(e) => Outcome::Retry(e.without_url().to_string()),
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            classify(status, &text)
        }
    }
}

/// Turns the gateway's answer into what to do (see the table above).
fn classify(status: u16, body: &str) -> Outcome {
    let code = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let why = format!("{status} {code}").trim().to_owned();
    match status {
        200 | 201 => Outcome::Stored,
        403 if code == "unknown_edge" => Outcome::Retry(why),
        408 | 429 => Outcome::Retry(why),
        400..=499 => Outcome::Rejected(why),
        _ => Outcome::Retry(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_that_cannot_succeed_are_given_up() {
        let err = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        assert_eq!(classify(201, ""), Outcome::Stored);
        assert_eq!(classify(200, "{}"), Outcome::Stored);
        assert_eq!(
            classify(403, &err("bad_signature")),
            Outcome::Rejected("403 bad_signature".into())
        );
        assert_eq!(
            classify(422, &err("hash_mismatch")),
            Outcome::Rejected("422 hash_mismatch".into())
        );
        assert!(matches!(
            classify(403, &err("unknown_edge")),
            Outcome::Retry(_)
        ));
        assert!(matches!(classify(503, &err("busy")), Outcome::Retry(_)));
        assert!(matches!(
            classify(507, &err("storage_full")),
            Outcome::Retry(_)
        ));
        assert!(matches!(classify(502, "<html>"), Outcome::Retry(_)));
    }

    #[test]
    fn retries_back_off_to_the_limit() {
        let max = Duration::from_secs(60);
        assert_eq!(backoff(0, max), Duration::from_secs(1));
        assert_eq!(backoff(3, max), Duration::from_secs(8));
        assert_eq!(backoff(10, max), max);
        assert_eq!(backoff(u32::MAX, max), max);
    }
}

/// The uploader against a small HTTP server that answers each hash as the test says.
#[cfg(test)]
mod against_a_server {
    use super::*;
    use crate::evidence::spool::{BlobInfo, Spool};
    use bl_proto::evidence::EvidenceKind;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers `PUT /evidence/{sha}` with `answer(sha, attempt)`; counts attempts per hash.
    async fn server(
        answer: impl Fn(&str, usize) -> (u16, &'static str) + Send + Sync + 'static,
    ) -> (String, Arc<Mutex<HashMap<String, usize>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let counts = seen.clone();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut chunk = [0u8; 8192];
                // Headers, then as many body bytes as Content-Length says.
                let (head_end, length) = loop {
                    let n = socket.read(&mut chunk).await.unwrap();
                    request.extend_from_slice(&chunk[..n]);
                    if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while request.len() < head_end + length {
                    let n = socket.read(&mut chunk).await.unwrap();
                    request.extend_from_slice(&chunk[..n]);
                }
                let line = String::from_utf8_lossy(&request[..head_end]).to_string();
                let sha = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.strip_prefix("/evidence/"))
                    .unwrap_or("")
                    .to_owned();
                let attempt = {
                    let mut seen = counts.lock().unwrap();
                    let n = seen.entry(sha.clone()).or_default();
                    *n += 1;
                    *n
                };
                let (status, code) = answer(&sha, attempt);
                let body = format!(r#"{{"error":{{"code":"{code}","message":"test"}}}}"#);
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.unwrap();
                let _ = socket.shutdown().await;
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn a_refused_blob_is_set_aside_once_a_busy_gateway_is_retried_and_stored_blobs_leave() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("o.db"), 1 << 20)
            .await
            .unwrap();
        let spool_dir = dir.path().join("spool");
        let spool = Spool::open(
            &spool_dir,
            outbox.clone(),
            bl_proto::EdgeId::new("e1").unwrap(),
            bl_proto::SigningKey::from_bytes(&[1; 32]),
        )
        .await
        .unwrap();
        let info = BlobInfo {
            camera: bl_proto::CameraId::new("cam").unwrap(),
            kind: EvidenceKind::Snapshot,
            content_type: "image/jpeg",
            captured_at: chrono::Utc::now(),
            range: None,
        };
        let refused = spool.store_bytes(&info, b"refused").await.unwrap().sha256;
        let busy = spool
            .store_bytes(&info, b"busy at first")
            .await
            .unwrap()
            .sha256;
        let fine = spool.store_bytes(&info, b"fine").await.unwrap().sha256;
        let (refused_s, busy_s) = (refused.to_string(), busy.to_string());
        let (url, seen) = server(move |sha, attempt| {
            if sha == refused_s {
                (403, "bad_signature")
            } else if sha == busy_s && attempt < 3 {
                (503, "busy")
            } else {
                (201, "")
            }
        })
        .await;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            UploadConfig {
                url,
                retry_max: Duration::from_secs(1),
                spool_dir: spool_dir.clone(),
            },
            outbox.clone(),
            shutdown.clone(),
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while outbox.blob_depth().await.unwrap() != (0, 1) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await; // time enough to spin, if it would
        shutdown.cancel();
        task.await.unwrap();

        assert_eq!(
            outbox.blob_depth().await.unwrap(),
            (0, 1),
            "one set aside, none waiting"
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[refused.as_str()], 1, "a refusal is never retried");
        assert_eq!(seen[busy.as_str()], 3, "busy, busy, stored");
        assert_eq!(seen[fine.as_str()], 1);
        let aside: Vec<_> = std::fs::read_dir(spool_dir.join(REJECTED_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(aside, vec![format!("{refused}.jpg")]);
        let left = std::fs::read_dir(&spool_dir).unwrap().count();
        assert_eq!(left, 1, "only rejected/ is left in the spool");
    }
}
