//! Recording (issue 4, item 5; DESIGN §3.2): per camera, on request or continuously, fragmented MP4
//! segments of the camera's own H.264/H.265 ([`pipeline`]), made durable before they are indexed
//! ([`segment`]), chained per camera by SHA-256 ([`chain`]) in a SQLite index ([`index`]), with
//! explicit gap entries, retention by quota and age that never removes a held segment
//! ([`retention`]), legal holds and status over HTTP ([`http`]), and an offline verifier
//! ([`verify`]).
//!
//! **A segment is indexed only after its file and its folder are fsynced; an index row always has
//! its file (until retention, which marks the row before removing the file); a held segment is
//! never removed; time not recorded is an entry of the chain, never silence.**

pub mod chain;
pub mod http;
pub mod index;
pub mod pipeline;
pub mod recorder;
pub mod retention;
pub mod segment;
pub mod verify;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bl_proto::CameraId;
use tokio_util::sync::CancellationToken;

use crate::live::ingest::Backoff;
use crate::live::source::{Source, Sources};
use index::{Index, IndexError};
use pipeline::Target;
use recorder::{Recorder, RecorderState};

/// The index file name inside the recordings folder.
pub const INDEX_FILE: &str = "index.sqlite";

/// Recording settings (the `[recording]` table and `[[camera]] record`, checked).
#[derive(Debug, Clone)]
pub struct RecordingSettings {
    /// Target segment length; segments are cut at the first keyframe after it.
    pub segment: Duration,
    /// Quota and age limits.
    pub limits: retention::Limits,
    /// Free bytes the filesystem must have before a recorder starts or resumes.
    pub min_free_bytes: u64,
    /// Cameras recorded from start to shutdown.
    pub continuous: Vec<CameraId>,
    /// Retry timing of a failing source.
    pub backoff: Backoff,
    /// How often a recorder short of room checks again.
    pub room_poll: Duration,
    /// How often retention runs besides after each segment.
    pub retention_every: Duration,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        Self {
            segment: Duration::from_secs(10),
            limits: retention::Limits::default(),
            min_free_bytes: 256 << 20,
            continuous: Vec::new(),
            backoff: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
            room_poll: Duration::from_secs(2),
            retention_every: Duration::from_secs(60),
        }
    }
}

/// What recorders share: settings, the folder, the index and the counters.
pub struct Shared {
    /// Settings.
    pub settings: RecordingSettings,
    /// `{data_dir}/recordings`.
    pub root: PathBuf,
    index: Mutex<Index>,
    /// Segments indexed since start.
    pub segments: AtomicU64,
    /// Their bytes.
    pub bytes: AtomicU64,
    /// Storage alarms raised.
    pub alarms: AtomicU64,
    /// Source failures.
    pub failures: AtomicU64,
    /// Segments removed by retention.
    pub pruned: AtomicU64,
    /// Wakes the retention task (after each segment).
    pub retention_due: tokio::sync::Notify,
}

impl Shared {
    /// Runs `f` with the index (short, synchronous calls only).
    pub fn index<T>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        f(&mut self.index.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Why recording could not be started.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The folder could not be created.
    #[error("cannot create the recordings folder {0}: {1}")]
    Folder(PathBuf, std::io::Error),
    /// The index could not be opened.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Why a camera cannot be recorded now.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The camera is pushed by its edge (push ingest is not built yet).
    #[error("camera {0} is pushed by its edge box, which this gateway cannot receive yet")]
    PushNotSupported(CameraId),
    /// The camera's previous recorder is still finishing its last segment.
    #[error("the recording of camera {0} is still stopping; try again in a few seconds")]
    Stopping(CameraId),
}

/// The recorders of this gateway.
pub struct Recordings {
    /// Shared state.
    pub shared: Arc<Shared>,
    sources: Arc<dyn Sources>,
    recorders: Mutex<HashMap<CameraId, Arc<Recorder>>>,
    shutdown: CancellationToken,
}

impl Recordings {
    /// Opens the index under `data_dir/recordings`, removes files retention had marked (a crash
    /// between the row and the file), and starts the retention task. Recorders start with
    /// [`Recordings::start_continuous`] or [`Recordings::start`].
    pub fn open(
        settings: RecordingSettings,
        data_dir: &Path,
        sources: Arc<dyn Sources>,
    ) -> Result<Arc<Self>, OpenError> {
        let root = data_dir.join("recordings");
        std::fs::create_dir_all(&root).map_err(|e| OpenError::Folder(root.clone(), e))?;
        let index = Index::open(&root.join(INDEX_FILE))?;
        for path in index.pruned_paths()? {
            match std::fs::remove_file(root.join(&path)) {
                Ok(()) => {
                    tracing::warn!(path = %path, "removed a segment retention had already pruned")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path, err = %e, "cannot remove a pruned segment"),
            }
        }
        let recordings = Arc::new(Self {
            shared: Arc::new(Shared {
                settings,
                root,
                index: Mutex::new(index),
                segments: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                alarms: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                pruned: AtomicU64::new(0),
                retention_due: tokio::sync::Notify::new(),
            }),
            sources,
            recorders: Mutex::default(),
            shutdown: CancellationToken::new(),
        });
        tokio::spawn(retention_task(
            recordings.shared.clone(),
            recordings.shutdown.clone(),
        ));
        Ok(recordings)
    }

    /// Starts the cameras configured as continuous; a camera whose source cannot be found now is
    /// logged and skipped.
    pub async fn start_continuous(&self) {
        for camera in self.shared.settings.continuous.clone() {
            match self.sources.source(&camera).await {
                Ok(Some(source)) => {
                    if let Err(e) = self.start(&camera, &source, true) {
                        tracing::error!(camera_id = %camera, err = %e, "cannot record continuously");
                    }
                }
                Ok(None) => {
                    tracing::error!(camera_id = %camera, "continuous recording of an unknown camera")
                }
                Err(e) => {
                    tracing::error!(camera_id = %camera, err = %e, "cannot look up the camera to record")
                }
            }
        }
    }

    /// Starts recording `camera` from `source`, unless it records already. Returns its recorder.
    pub fn start(
        &self,
        camera: &CameraId,
        source: &Source,
        continuous: bool,
    ) -> Result<Arc<Recorder>, StartError> {
        let Source::Pull {
            url,
            username,
            password,
            ..
        } = source
        else {
            return Err(StartError::PushNotSupported(camera.clone()));
        };
        let mut recorders = self.recorders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = recorders.get(camera) {
            if !r.stop.is_cancelled() {
                return Ok(r.clone());
            }
            // One recorder per camera folder at a time: the old one's clean-up must not meet the
            // new one's partial file.
            if r.state() != RecorderState::Stopped {
                return Err(StartError::Stopping(camera.clone()));
            }
        }
        let recorder = Arc::new(Recorder::new(camera.clone(), continuous));
        recorders.insert(camera.clone(), recorder.clone());
        let target = Target {
            url: url.clone(),
            username: username.clone(),
            password: password.clone(),
        };
        tracing::info!(camera_id = %camera, continuous, "recording starts");
        let span = tracing::info_span!("recording", camera = %camera);
        tokio::spawn(tracing::Instrument::instrument(
            recorder::supervise(self.shared.clone(), recorder.clone(), target),
            span,
        ));
        Ok(recorder)
    }

    /// Stops recording `camera` (the segment in progress is finished and indexed). False if it was
    /// not recording.
    pub fn stop(&self, camera: &CameraId) -> bool {
        let recorders = self.recorders.lock().unwrap_or_else(|e| e.into_inner());
        match recorders.get(camera) {
            Some(r) if !r.stop.is_cancelled() => {
                r.stop.cancel();
                true
            }
            _ => false,
        }
    }

    /// The recorder of `camera`, running or stopped, if it was ever started since the gateway
    /// started.
    pub fn recorder(&self, camera: &CameraId) -> Option<Arc<Recorder>> {
        self.recorders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(camera)
            .cloned()
    }

    /// Applies retention now (also run after every segment and every `retention_every`).
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, IndexError> {
        enforce_retention(&self.shared, now_ms)
    }

    /// Stops every recorder (each finishes its segment) and the retention task.
    pub fn shutdown(&self) {
        for r in self
            .recorders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            r.stop.cancel();
        }
        self.shutdown.cancel();
    }

    /// Waits until every recorder has stopped (after [`Recordings::shutdown`]), at most `limit`.
    pub async fn drained(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            let busy = self
                .recorders
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .any(|r| r.state() != RecorderState::Stopped);
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Prometheus text for recording.
    pub fn render_metrics(&self, out: &mut String) {
        let s = &self.shared;
        let recorders = self.recorders.lock().unwrap_or_else(|e| e.into_inner());
        let count = |label: &str| {
            recorders
                .values()
                .filter(|r| r.state().label() == label)
                .count()
        };
        let lines = [
            (
                "bl_gateway_recording_bytes_total",
                "counter",
                "Bytes of segments recorded and indexed.",
                s.bytes.load(Relaxed),
            ),
            (
                "bl_gateway_recording_segments_total",
                "counter",
                "Segments recorded and indexed.",
                s.segments.load(Relaxed),
            ),
            (
                "bl_gateway_recording_active",
                "gauge",
                "Cameras whose recorder is writing segments now.",
                count("recording") as u64,
            ),
            (
                "bl_gateway_recording_storage_full",
                "gauge",
                "Cameras whose recording is stopped by a full disk (alarm).",
                count("storage_full") as u64,
            ),
            (
                "bl_gateway_recording_alarms_total",
                "counter",
                "Storage alarms raised (recording stopped by a full disk).",
                s.alarms.load(Relaxed),
            ),
            (
                "bl_gateway_recording_source_failures_total",
                "counter",
                "Recording runs ended by a failing source.",
                s.failures.load(Relaxed),
            ),
            (
                "bl_gateway_recording_pruned_total",
                "counter",
                "Segments removed by retention.",
                s.pruned.load(Relaxed),
            ),
        ];
        for (name, kind, help, value) in lines {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}

/// Applies retention at start, after each segment and every `retention_every`.
async fn retention_task(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                () = shared.retention_due.notified() => {}
                () = tokio::time::sleep(shared.settings.retention_every) => {}
                () = shutdown.cancelled() => return,
            }
        }
        first = false;
        let s = shared.clone();
        let now = chrono::Utc::now().timestamp_millis();
        match tokio::task::spawn_blocking(move || enforce_retention(&s, now)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(err = %e, "retention failed"),
            Err(e) => tracing::error!(err = %e, "retention panicked"),
        }
    }
}

/// Marks the chosen segments pruned in the index first, then removes their files: a crash in
/// between leaves a file the next start removes, never a row whose file vanished unexplained.
fn enforce_retention(shared: &Shared, now_ms: i64) -> Result<usize, IndexError> {
    if shared.settings.limits.max_bytes.is_none() && shared.settings.limits.max_age.is_none() {
        return Ok(0);
    }
    let kept = shared.index(|ix| ix.kept_segments())?;
    let candidates: Vec<_> = kept
        .iter()
        .map(|e| retention::Candidate {
            id: e.id,
            end_ms: e.end_ms,
            size: e.size,
            held: e.held,
        })
        .collect();
    let plan = retention::plan(&candidates, shared.settings.limits, now_ms);
    if plan.held_over_limit_bytes > 0 {
        tracing::warn!(
            held_bytes = plan.held_over_limit_bytes,
            "held recordings are kept beyond the retention limits"
        );
    }
    if plan.prune.is_empty() {
        return Ok(0);
    }
    let paths = shared.index(|ix| ix.mark_pruned(&plan.prune, now_ms))?;
    let mut folders = std::collections::BTreeSet::new();
    for path in &paths {
        let file = shared.root.join(path);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path, err = %e, "cannot remove a pruned segment"),
        }
        if let Some(dir) = file.parent() {
            folders.insert(dir.to_owned());
        }
    }
    for dir in folders {
        if let Err(e) = crate::durable::sync_dir(&dir) {
            tracing::warn!(dir = %dir.display(), err = %e, "cannot sync a folder after pruning");
        }
    }
    shared.pruned.fetch_add(paths.len() as u64, Relaxed);
    tracing::info!(
        segments = paths.len(),
        kept_bytes = plan.kept_bytes,
        "retention pruned segments"
    );
    Ok(paths.len())
}
