//! Voice recordings (issue 7 item 6): **every talk-down and group broadcast is recorded, both
//! directions, and kept as gateway-made evidence.** A [`Voice`] records one transmission:
//! the command center's Opus (as received by WHIP) on the left channel and the premises' sound
//! (the camera's own audio, [`crate::live::audio`]) on the right, in one Opus/WebM file
//! ([`recorder`], mixed by [`mix`]). When it ends, the file is hashed, signed with this gateway's
//! own Ed25519 key ([`crate::evidence::Signer::Gateway`]) and stored as an `audio` blob; a report
//! to dispatch ([`report`]) puts it on the incident's timeline.
//!
//! The API is small so that other voice paths use it: [`VoiceRecordings::start`] → [`Voice`],
//! [`Voice::push_center`] / [`Voice::push_premises`] with Opus RTP, [`Voice::finish`] (or
//! [`Voice::discard`]). Push-to-talk transmissions in voice channels are recorded through it by
//! [`crate::rooms::record`] (kind `ptt`: the talker on the left, named by the room's id).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bl_proto::evidence::{EvidenceKind, EvidenceMeta, Sha256Hex};
use bl_proto::{CameraId, EdgeId, GatewayNodeId};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::evidence::{EvidenceStore, Put, Seal, Signer};
use crate::keyfile::PrivateKey;

pub mod mix;
pub mod recorder;
pub mod report;
pub mod unfinished;

use mix::Direction;
use recorder::Recorder;
use unfinished::Unfinished;

/// The content type of a recording.
pub const CONTENT_TYPE: &str = "audio/webm";

/// What was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VoiceKind {
    /// An operator talking down to one camera.
    Talk,
    /// One operator's voice to many cameras.
    Broadcast,
    /// A push-to-talk transmission in a room.
    Ptt,
    /// A consult room recorded on request: every participant's voice mixed.
    Room,
}

/// Who and what a recording is about.
#[derive(Debug, Clone)]
pub struct VoiceMeta {
    /// Talk, broadcast or push-to-talk.
    pub kind: VoiceKind,
    /// The talker's user id (the media token's `sub`).
    pub talker: String,
    /// The cameras the voice went to; the first names the blob in the store (and in media
    /// tokens for it). Must not be empty.
    pub cameras: Vec<CameraId>,
    /// The broadcast at dispatch, for [`VoiceKind::Broadcast`].
    pub broadcast: Option<uuid::Uuid>,
    /// Whether the premises direction is recorded (a talk-down: yes; a broadcast: the operator's
    /// voice only).
    pub premises: bool,
}

/// What a finished recording is reported to dispatch as (`POST /internal/voice-recordings`);
/// also the pending-report file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceReport {
    /// Format version, 1.
    pub v: u32,
    /// The blob.
    pub sha256: Sha256Hex,
    /// Its size in bytes.
    pub size: u64,
    /// [`CONTENT_TYPE`].
    pub content_type: String,
    /// Talk, broadcast or push-to-talk.
    pub kind: VoiceKind,
    /// The talker's user id.
    pub talker: String,
    /// The cameras; the first names the blob.
    pub cameras: Vec<CameraId>,
    /// The broadcast, if one.
    pub broadcast: Option<uuid::Uuid>,
    /// Start of the recording.
    #[serde(with = "bl_proto::time::millis")]
    pub started_at: DateTime<Utc>,
    /// End of the recording.
    #[serde(with = "bl_proto::time::millis")]
    pub ended_at: DateTime<Utc>,
    /// Which directions carry sound: `center` (left), `premises` (right).
    pub directions: Vec<String>,
    /// Why the premises direction is silent, when it is one of the recorded directions but the
    /// camera gave no sound (e.g. "the camera has no audio").
    pub premises_note: Option<String>,
}

/// The state of the premises direction.
#[derive(Debug, Clone, PartialEq)]
enum Premises {
    NotRecorded,
    Waiting,
    Heard,
    Absent(String),
}

/// The recordings of this gateway: where they are written, how they are signed and stored.
pub struct VoiceRecordings {
    dir: PathBuf,
    store: Arc<dyn EvidenceStore>,
    signer: PrivateKey,
    node: GatewayNodeId,
    reporter: Arc<report::Reporter>,
}

/// One recording in progress.
pub struct Voice {
    recorder: Arc<Recorder>,
    meta: VoiceMeta,
    premises: Mutex<Premises>,
    owner: Arc<VoiceRecordings>,
}

impl VoiceRecordings {
    /// Recordings under `data_dir/voicerec`, signed by `signer`, stored in `store` and reported
    /// by `reporter`.
    pub fn new(
        data_dir: &std::path::Path,
        store: Arc<dyn EvidenceStore>,
        signer: PrivateKey,
        node: GatewayNodeId,
        reporter: Arc<report::Reporter>,
    ) -> Self {
        Self {
            dir: data_dir.join("voicerec"),
            store,
            signer,
            node,
            reporter,
        }
    }

    /// Starts recording; `None` (logged) when the recording cannot start — the voice itself
    /// must never fail for it.
    pub fn start(self: &Arc<Self>, meta: VoiceMeta) -> Option<Arc<Voice>> {
        if meta.cameras.is_empty() {
            tracing::warn!("a voice recording needs a camera; not recorded");
            return None;
        }
        let tmp = self.dir.join("tmp");
        if let Err(e) = std::fs::create_dir_all(&tmp) {
            tracing::error!(err = %e, dir = %tmp.display(), "cannot create the voice recording folder; not recorded");
            return None;
        }
        let path = tmp.join(format!("{}.webm", uuid::Uuid::now_v7()));
        // Blocks for an fsync: once per recording, before any sound.
        if let Err(e) = Unfinished::new(&meta, chrono::Utc::now()).write_beside(&path) {
            tracing::warn!(err = %e, "cannot note a voice recording; a crash during it would lose it");
        }
        match Recorder::start(path.clone()) {
            Ok(recorder) => Some(Arc::new(Voice {
                recorder,
                premises: Mutex::new(if meta.premises {
                    Premises::Waiting
                } else {
                    Premises::NotRecorded
                }),
                meta,
                owner: self.clone(),
            })),
            Err(e) => {
                tracing::error!(err = %e, "cannot start a voice recording; not recorded");
                let _ = std::fs::remove_file(unfinished::note_of(&path));
                None
            }
        }
    }

    /// Keeps what a previous run of the gateway left unfinished ([`unfinished`]). Call once at
    /// start: the files are listed now, before any recording of this run, and stored in the
    /// background.
    pub fn recover_unfinished(self: &Arc<Self>) {
        let tmp = self.dir.join("tmp");
        let left = unfinished::left_in(&tmp);
        for stray in unfinished::stray_notes(&tmp) {
            let _ = std::fs::remove_file(stray);
        }
        if left.is_empty() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            for (file, note) in left {
                me.recover(file, note).await;
            }
        });
    }

    async fn recover(&self, file: PathBuf, note: Option<Unfinished>) {
        let size = tokio::fs::metadata(&file)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let Some(note) = note.filter(|_| size > 0) else {
            // A recording being thrown away (or one that never got a note, or any sound).
            let _ = tokio::fs::remove_file(&file).await;
            let _ = tokio::fs::remove_file(unfinished::note_of(&file)).await;
            return;
        };
        let ended_at = tokio::fs::metadata(&file)
            .await
            .and_then(|m| m.modified())
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| Utc::now());
        let stored = self
            .keep(&file, |sha256, size| VoiceReport {
                v: 1,
                sha256,
                size,
                content_type: CONTENT_TYPE.into(),
                kind: note.kind,
                talker: note.talker,
                cameras: note.cameras,
                broadcast: note.broadcast,
                started_at: note.started_at,
                ended_at: bl_proto::time::to_millis(ended_at.max(note.started_at)),
                directions: vec!["center".into()],
                premises_note: note.premises.then(|| unfinished::CUT_SHORT.to_owned()),
            })
            .await;
        if stored {
            tracing::warn!(file = %file.display(), "kept a voice recording the gateway stopped in the middle of");
            let _ = tokio::fs::remove_file(&file).await;
            let _ = tokio::fs::remove_file(unfinished::note_of(&file)).await;
        }
        // Not stored: both stay for the next start.
    }

    /// Hashes, signs and stores a finished file, then queues its report; whether it is stored.
    async fn keep(
        &self,
        path: &std::path::Path,
        report: impl FnOnce(Sha256Hex, u64) -> VoiceReport,
    ) -> bool {
        match self.store_file(path, report).await {
            Ok(report) => {
                tracing::info!(sha256 = %report.sha256, size = report.size, kind = ?report.kind,
                    cameras = ?report.cameras, "voice recording stored");
                self.reporter.queue(report).await;
                true
            }
            Err(e) => {
                tracing::error!(err = %e, "a voice recording could not be stored");
                false
            }
        }
    }

    async fn store_file(
        &self,
        path: &std::path::Path,
        report: impl FnOnce(Sha256Hex, u64) -> VoiceReport,
    ) -> Result<VoiceReport, String> {
        let p = path.to_owned();
        let (size, sha) = tokio::task::spawn_blocking(move || crate::durable::hash_file(&p))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot read the recording: {e}"))?;
        let sha = Sha256Hex::new(sha).map_err(|e| e.to_string())?;
        let report = report(sha.clone(), size);
        let meta = EvidenceMeta {
            sha256: sha,
            size,
            edge_id: EdgeId::new(self.node.as_str()).map_err(|e| e.to_string())?,
            camera_id: report.cameras[0].clone(),
            kind: EvidenceKind::Audio,
            content_type: CONTENT_TYPE.into(),
            captured_at: bl_proto::time::to_millis(report.started_at),
        };
        let seal = Seal {
            signature: bl_proto::evidence::sign(&meta, self.signer.signing_key()),
            signer: Signer::Gateway,
        };
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| format!("cannot open the recording: {e}"))?;
        let body = tokio_util::io::ReaderStream::new(file).boxed();
        match self
            .store
            .put(meta, seal, bl_proto::time::now(), body)
            .await
            .map_err(|e| e.to_string())?
        {
            Put::Created(_) | Put::Existing(_) => Ok(report),
        }
    }
}

impl Voice {
    /// The command center's Opus RTP (left channel).
    pub fn push_center(&self, rtp: &[u8]) {
        self.recorder.push_rtp(Direction::Center, rtp);
    }

    /// The premises' Opus RTP (right channel).
    pub fn push_premises(&self, rtp: &[u8]) {
        {
            let mut p = self.premises.lock().unwrap_or_else(|e| e.into_inner());
            if *p == Premises::Waiting {
                *p = Premises::Heard;
            }
        }
        self.recorder.push_rtp(Direction::Premises, rtp);
    }

    /// Another voice of the left channel, summed with the others (a consult room's
    /// participant); `None` (logged) if its decoder cannot start.
    pub fn mixed_input(&self, source: u64) -> Option<recorder::MixedInput> {
        self.recorder
            .mixed_input(source)
            .inspect_err(|e| tracing::error!(err = %e, "a voice is left out of a recording"))
            .ok()
    }

    /// The premises direction will stay silent, and why (said in the report, never faked).
    pub fn premises_absent(&self, why: impl Into<String>) {
        let mut p = self.premises.lock().unwrap_or_else(|e| e.into_inner());
        if *p == Premises::Waiting {
            *p = Premises::Absent(why.into());
        }
    }

    /// Ends the recording without keeping it (a push-to-talk tap too short to hold speech).
    pub async fn discard(self: Arc<Self>) {
        self.recorder.abort();
        self.remove_files().await;
    }

    /// Removes the recording's file and its note.
    async fn remove_files(&self) {
        let _ = tokio::fs::remove_file(&self.recorder.path).await;
        let _ = tokio::fs::remove_file(unfinished::note_of(&self.recorder.path)).await;
    }

    /// Ends the recording, stores it and reports it (in the background of the caller's task).
    pub async fn finish(self: Arc<Self>) {
        let times = self.recorder.clone().finish().await;
        let (started_at, ended_at) = match times {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(err = %e, "a voice recording failed; not stored");
                self.remove_files().await;
                return;
            }
        };
        let premises = self
            .premises
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut directions = vec!["center".to_owned()];
        let premises_note = match premises {
            Premises::NotRecorded => None,
            Premises::Heard => {
                directions.push("premises".into());
                None
            }
            Premises::Waiting => Some("no sound came from the camera during the talk".to_owned()),
            Premises::Absent(why) => Some(why),
        };
        let meta = self.meta.clone();
        self.owner
            .keep(&self.recorder.path, |sha256, size| VoiceReport {
                v: 1,
                sha256,
                size,
                content_type: CONTENT_TYPE.into(),
                kind: meta.kind,
                talker: meta.talker,
                cameras: meta.cameras,
                broadcast: meta.broadcast,
                started_at: bl_proto::time::to_millis(started_at),
                ended_at: bl_proto::time::to_millis(ended_at),
                directions,
                premises_note,
            })
            .await;
        self.remove_files().await;
    }
}
