//! The PDF of the after-action report: headless Chromium prints the stored HTML (which needs no
//! script and no network: the chart is inline SVG) to PDF, run as a subprocess with a time limit.
//! Rendering takes seconds, so it happens after the ENDEX transaction: each replica's worker
//! claims an ended run without its PDF (`FOR UPDATE SKIP LOCKED`, so one replica renders it),
//! renders and stores it; a failure is stored with its reason and retried up to
//! [`MAX_ATTEMPTS`] times. A crash mid-rendering rolls the claim back and the next poll retries.

use super::config::DrillsConfig;
use crate::escalation::worker::supervise;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// Failed renderings of one report before the worker stops trying.
pub const MAX_ATTEMPTS: i32 = 3;

/// Why a report could not be printed; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error(
        "Chromium was not found at {0}: install it (deploy/dev/install-deps.sh) or set drills.chromium"
    )]
    Missing(PathBuf),
    #[error("Chromium did not finish within {0} s (drills.pdf_timeout_secs)")]
    Timeout(u64),
    #[error("Chromium failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
    #[error("Chromium wrote no PDF")]
    NoPdf,
    #[error("cannot prepare the rendering: {0}")]
    Io(#[from] std::io::Error),
}

/// Prints `html` to PDF with the Chromium of `config`, in a private temporary profile.
pub async fn render(config: &DrillsConfig, html: &str) -> Result<Vec<u8>, PdfError> {
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("report.html");
    let out = dir.path().join("report.pdf");
    tokio::fs::write(&page, html).await?;
    let mut child = match tokio::process::Command::new(&config.chromium)
        .args(args(dir.path(), &page, &out))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PdfError::Missing(config.chromium.clone()));
        }
        Err(e) => return Err(e.into()),
    };
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let read_err = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut text).await;
        text
    });
    let limit = Duration::from_secs(config.pdf_timeout_secs);
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            let _ = child.kill().await;
            return Err(PdfError::Timeout(config.pdf_timeout_secs));
        }
    };
    let err_text = read_err.await.unwrap_or_default();
    if !status.success() {
        return Err(PdfError::Failed {
            status: status.to_string(),
            stderr: last_lines(&String::from_utf8_lossy(&err_text)),
        });
    }
    let pdf = tokio::fs::read(&out).await.map_err(|_| PdfError::NoPdf)?;
    if !pdf.starts_with(b"%PDF-") {
        return Err(PdfError::NoPdf);
    }
    Ok(pdf)
}

/// Chromium's command line: headless, no sandbox (dispatch runs unprivileged in a service
/// unit), no network of its own, no header or footer, a throw-away profile.
fn args(profile: &Path, page: &Path, out: &Path) -> Vec<String> {
    vec![
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-background-networking".into(),
        "--disable-gpu".into(),
        "--disable-extensions".into(),
        "--no-first-run".into(),
        "--no-pdf-header-footer".into(),
        format!("--user-data-dir={}", profile.join("profile").display()),
        format!("--print-to-pdf={}", out.display()),
        format!("file://{}", page.display()),
    ]
}

/// The end of Chromium's complaints (it is chatty), for the stored error.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    let joined = tail.join(" | ");
    joined.chars().take(500).collect()
}

/// Claims one ended run whose PDF is owed and renders it; false when none is.
pub async fn render_one(pool: &PgPool, config: &DrillsConfig) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let owed: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT id, report_html FROM drill_runs WHERE state = 'ended' AND report_html IS NOT NULL \
         AND report_pdf IS NULL AND report_pdf_attempts < $1 \
         ORDER BY ended_at LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind(MAX_ATTEMPTS)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((run, html)) = owed else {
        return Ok(false);
    };
    match render(config, &html).await {
        Ok(pdf) => {
            sqlx::query(
                "UPDATE drill_runs SET report_pdf = $2, report_pdf_error = NULL, \
                 report_pdf_attempts = report_pdf_attempts + 1 WHERE id = $1",
            )
            .bind(run)
            .bind(&pdf)
            .execute(&mut *tx)
            .await?;
            tracing::info!(run = %run, bytes = pdf.len(), "drill report printed to pdf");
        }
        Err(e) => {
            sqlx::query(
                "UPDATE drill_runs SET report_pdf_error = $2, \
                 report_pdf_attempts = report_pdf_attempts + 1 WHERE id = $1",
            )
            .bind(run)
            .bind(e.to_string())
            .execute(&mut *tx)
            .await?;
            tracing::warn!(run = %run, err = %e, "cannot print drill report to pdf");
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// The PDF worker: polls every `interval` until `shutdown`.
pub async fn run(
    pool: PgPool,
    config: DrillsConfig,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("drill_pdf");
    let config = std::sync::Arc::new(config);
    let poll = move || {
        let (pool, config) = (pool.clone(), config.clone());
        async move { Ok(usize::from(render_one(&pool, &config).await?)) }
    };
    supervise("drill report pdf", interval, 1, shutdown, poll)
        .instrument(span)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_chromium_is_named_with_what_to_do() {
        let config = DrillsConfig {
            chromium: "/nonexistent/chromium".into(),
            pdf_timeout_secs: 5,
            ..DrillsConfig::default()
        };
        let e = render(&config, "<p>x</p>").await.unwrap_err();
        assert!(matches!(e, PdfError::Missing(_)));
        let text = e.to_string();
        assert!(
            text.contains("/nonexistent/chromium") && text.contains("drills.chromium"),
            "{text}"
        );
    }
}
