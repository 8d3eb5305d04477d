//! The supervised recorder of one camera: runs [`pipeline::run`] again and again until stopped,
//! makes each finished segment durable and indexes it ([`segment::commit`], then the index row),
//! records a gap entry before the first segment of every run (unless the chain is empty), retries a failing
//! source with backoff, and on a full disk stops with an alarm and waits until there is room again.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bl_proto::CameraId;
use bl_service::secret::redact_url as redact;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::index::{Entry, NewSegment};
use super::pipeline::{self, Closed, CommitError, Ended, Target};
use super::{Shared, segment};
use crate::durable;

/// What a recorder is doing, as `GET /recording/{camera}/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum RecorderState {
    /// Connecting to the camera.
    Starting,
    /// Segments are being written.
    Recording,
    /// The source failed; retried after `retryInSecs`.
    #[serde(rename_all = "camelCase")]
    Offline {
        /// Why, for people.
        reason: String,
        /// When the next attempt starts.
        retry_in_secs: u64,
    },
    /// Alarm: the disk is full; recording resumes by itself when there is room.
    #[serde(rename_all = "camelCase")]
    StorageFull {
        /// What failed.
        reason: String,
    },
    /// Not recording.
    Stopped,
}

impl RecorderState {
    /// The label used in metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            RecorderState::Starting => "starting",
            RecorderState::Recording => "recording",
            RecorderState::Offline { .. } => "offline",
            RecorderState::StorageFull { .. } => "storage_full",
            RecorderState::Stopped => "stopped",
        }
    }
}

/// One camera's recorder.
pub struct Recorder {
    /// The camera.
    pub camera: CameraId,
    /// Started from the config (runs until shutdown) rather than on request.
    pub continuous: bool,
    state: Mutex<RecorderState>,
    /// Cancelled to stop recording (the segment in progress is finished first).
    pub stop: CancellationToken,
    /// The last segment indexed by this recorder.
    last: Mutex<Option<Entry>>,
}

impl Recorder {
    /// A recorder that has not started yet.
    pub fn new(camera: CameraId, continuous: bool) -> Self {
        Self {
            camera,
            continuous,
            state: Mutex::new(RecorderState::Starting),
            stop: CancellationToken::new(),
            last: Mutex::new(None),
        }
    }

    /// What it is doing now.
    pub fn state(&self) -> RecorderState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The last segment it indexed.
    pub fn last_segment(&self) -> Option<Entry> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_state(&self, s: RecorderState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }
}

/// The gap reason of a recorder's first run: whatever happened before it is not known here.
const FIRST_GAP: &str = "not recording (gateway restart, or recording was stopped)";

/// Runs `recorder` from `target` until its `stop` is cancelled.
pub async fn supervise(shared: Arc<Shared>, recorder: Arc<Recorder>, target: Target) {
    let camera = recorder.camera.to_string();
    let mut gap: Option<String> = Some(FIRST_GAP.into());
    let mut failures = 0u32;
    remove_partials(&shared, &camera).await;
    while !recorder.stop.is_cancelled() {
        if !wait_for_room(&shared, &recorder).await {
            break;
        }
        recorder.set_state(RecorderState::Starting);
        let started = Instant::now();
        let stop_flag = Arc::new(AtomicBool::new(false));
        // A run that indexes nothing hands the gap reason back (the older reason then stands).
        let mut run = {
            let (shared, recorder, target) = (shared.clone(), recorder.clone(), target.clone());
            let (stop_flag, gap_in) = (stop_flag.clone(), gap.take());
            tokio::task::spawn_blocking(move || {
                run_once(&shared, &recorder, &target, &stop_flag, gap_in)
            })
        };
        let (ended, gap_left) = tokio::select! {
            r = &mut run => r.unwrap_or_else(|e| (Ended::Failed(format!("recorder thread panicked: {e}")), None)),
            () = recorder.stop.cancelled() => {
                stop_flag.store(true, Relaxed);
                run.await.unwrap_or_else(|e| (Ended::Failed(format!("recorder thread panicked: {e}")), None))
            }
        };
        remove_partials(&shared, &camera).await;
        match ended {
            Ended::Stopped => break,
            Ended::StorageFull(reason) => {
                shared.alarms.fetch_add(1, Relaxed);
                tracing::error!(camera_id = %camera, err = %reason,
                    "ALARM recording stopped: the disk is full; it resumes when there is room");
                recorder.set_state(RecorderState::StorageFull {
                    reason: format!("the disk is full ({reason})"),
                });
                gap = Some(gap_left.unwrap_or_else(|| format!("storage full: {reason}")));
            }
            Ended::Failed(reason) => {
                if started.elapsed() > Duration::from_secs(30) {
                    failures = 0;
                }
                failures += 1;
                shared.failures.fetch_add(1, Relaxed);
                let wait = shared.settings.backoff.delay(failures);
                tracing::warn!(camera_id = %camera, url = %redact(&target.url), err = %reason,
                    retry_in_ms = wait.as_millis() as u64, "recording source failed");
                recorder.set_state(RecorderState::Offline {
                    reason: reason.clone(),
                    retry_in_secs: wait.as_secs().max(1),
                });
                gap = Some(gap_left.unwrap_or_else(|| format!("source failed: {reason}")));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = recorder.stop.cancelled() => break,
                }
            }
        }
    }
    recorder.set_state(RecorderState::Stopped);
    tracing::info!(camera_id = %camera, "recording stopped");
}

/// Removes the partial files a run (or a crash) left: the segment that was not finished.
async fn remove_partials(shared: &Shared, camera: &str) {
    let (root, cam) = (shared.root.clone(), camera.to_owned());
    match tokio::task::spawn_blocking(move || segment::remove_partials(&root, &cam)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => {
            tracing::info!(camera_id = %camera, files = n, "removed unfinished segment files")
        }
        Ok(Err(e)) => {
            tracing::warn!(camera_id = %camera, err = %e, "cannot remove an unfinished segment file")
        }
        Err(e) => tracing::warn!(camera_id = %camera, err = %e, "partial clean-up panicked"),
    }
}

/// Waits until the recordings' filesystem has `min_free_bytes` free; false if stopped meanwhile.
/// A recorder found short of room raises the alarm (once) and checks again every `room_poll`.
async fn wait_for_room(shared: &Shared, recorder: &Recorder) -> bool {
    loop {
        match durable::available_bytes(&shared.root) {
            Ok(free) if free >= shared.settings.min_free_bytes => {
                if matches!(recorder.state(), RecorderState::StorageFull { .. }) {
                    tracing::info!(camera_id = %recorder.camera, free_bytes = free,
                        "room on disk again; recording resumes");
                }
                return true;
            }
            Ok(free) => {
                if !matches!(recorder.state(), RecorderState::StorageFull { .. }) {
                    shared.alarms.fetch_add(1, Relaxed);
                    tracing::error!(camera_id = %recorder.camera, free_bytes = free,
                        "ALARM recording held back: the disk is nearly full; it starts when there is room");
                    recorder.set_state(RecorderState::StorageFull {
                        reason: format!(
                            "{free} bytes free, below min_free_bytes = {}",
                            shared.settings.min_free_bytes
                        ),
                    });
                }
            }
            Err(e) => {
                tracing::warn!(err = %e, "cannot read the free space of the recordings folder");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(shared.settings.room_poll) => {}
            () = recorder.stop.cancelled() => return false,
        }
    }
}

/// One pipeline run on a blocking thread: first indexes complete files an earlier run could not,
/// then records. Returns how it ended and the gap reason if no segment used it.
fn run_once(
    shared: &Shared,
    recorder: &Recorder,
    target: &Target,
    stop: &AtomicBool,
    mut gap: Option<String>,
) -> (Ended, Option<String>) {
    let camera = recorder.camera.as_str();
    if let Err(e) = adopt_unindexed(shared, camera) {
        return match e {
            CommitError::StorageFull(why) => (Ended::StorageFull(why), gap),
            CommitError::Failed(why) => (Ended::Failed(why), gap),
        };
    }
    let mut on_closed = |closed: Closed| -> Result<(), CommitError> {
        let entry = commit(shared, camera, &closed, gap.as_deref())?;
        gap = None;
        shared.segments.fetch_add(1, Relaxed);
        shared.bytes.fetch_add(entry.size, Relaxed);
        tracing::debug!(camera_id = %camera, path = ?entry.path, size = entry.size, "segment recorded");
        *recorder.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(entry);
        recorder.set_state(RecorderState::Recording);
        shared.retention_due.notify_one();
        Ok(())
    };
    recorder.set_state(RecorderState::Starting);
    let ended = pipeline::run(
        target,
        &shared.root,
        camera,
        shared.settings.segment,
        stop,
        &mut on_closed,
    );
    (ended, gap)
}

/// File, fsync, directory fsync, then the index row.
fn commit(
    shared: &Shared,
    camera: &str,
    closed: &Closed,
    gap: Option<&str>,
) -> Result<Entry, CommitError> {
    let file = segment::commit(
        &shared.root,
        &closed.partial,
        camera,
        closed.start,
        closed.end,
    )
    .map_err(|e| io_error("making a segment durable", &e))?;
    shared
        .index(|ix| {
            ix.append_segment(
                camera,
                &NewSegment {
                    start_ms: closed.start.timestamp_millis(),
                    end_ms: closed.end.timestamp_millis(),
                    path: file.path.clone(),
                    size: file.size,
                    sha256: file.sha256.clone(),
                },
                gap,
            )
        })
        .map_err(|e| {
            if e.is_storage_full() {
                CommitError::StorageFull(format!("indexing {}: {e}", file.path))
            } else {
                CommitError::Failed(format!("indexing {}: {e}", file.path))
            }
        })
}

/// Indexes durable segment files that have no row (a crash or full disk between the file and the
/// row), in time order, as continuations of the chain.
fn adopt_unindexed(shared: &Shared, camera: &str) -> Result<(), CommitError> {
    let since = shared
        .index(|ix| ix.last(camera))
        .map_err(|e| CommitError::Failed(e.to_string()))?
        .map_or(0, |e| e.end_ms);
    let found = segment::unindexed(&shared.root, camera, since, &mut |p| {
        shared.index(|ix| ix.has_path(p)).unwrap_or(true)
    })
    .map_err(|e| io_error("looking for unindexed segments", &e))?;
    for (path, start_ms, end_ms) in found {
        let (size, sha256) = durable::hash_file(&shared.root.join(&path))
            .map_err(|e| io_error("hashing an unindexed segment", &e))?;
        shared
            .index(|ix| {
                ix.append_segment(
                    camera,
                    &NewSegment {
                        start_ms,
                        end_ms,
                        path: path.clone(),
                        size,
                        sha256,
                    },
                    None,
                )
            })
            .map_err(|e| {
                if e.is_storage_full() {
                    CommitError::StorageFull(e.to_string())
                } else {
                    CommitError::Failed(e.to_string())
                }
            })?;
        tracing::warn!(camera_id = %camera, path = %path, "indexed a segment whose row was missing");
    }
    Ok(())
}

fn io_error(context: &str, e: &std::io::Error) -> CommitError {
    if durable::is_storage_full(e) {
        CommitError::StorageFull(format!("{context}: {e}"))
    } else {
        CommitError::Failed(format!("{context}: {e}"))
    }
}

/// Segment start and end as RFC 3339 UTC milliseconds, for the status answer.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
