//! Talk-down at the premises (DESIGN §3.3): the operator's voice pulled from the gateway, or a
//! stored voice message, played through the camera's ONVIF audio backchannel (G.711) or the box's
//! own speaker.
//!
//! **The box dials out for both sides: it pulls `{pullUrl}/{token}` from the gateway (RTSP over
//! TCP, so it works behind NAT) and opens the camera's backchannel itself. One talk per camera;
//! camera URLs and tokens are secrets and never reach a log or an error.**
//!
//! - [`Talk::start`] (`startTalk`): sets up the camera side and the pull, and answers once the
//!   camera said whether it has a speaker (`connecting` or `talking`); a second start while talking
//!   replaces the source and keeps the camera's session. [`Talk::stop`] (`stopTalk`) ends both and
//!   returns once the camera's session is torn down.
//! - [`Talk::play`] (`playMessage`) plays a stored message to its end through the camera's speaker
//!   (else the box's) and says how long it took; an operator's talk wins over a message.
//! - [`Talk::warn`] is the automatic voice warning: at an episode's start the rules of
//!   `[[talk.warning]]` pick a message, which starts at once; its outcome becomes a
//!   [`bl_proto::event::WarningEvent`] for the center (module [`warning`]).
//! - [`Talk::apply_center`] puts the center's warnings (from its EdgeConfig, made ready by
//!   [`center::prepare`]) over the box's own: the center's wins per message id and per (camera,
//!   kind).

pub mod backchannel;
pub mod center;
pub mod config;
pub mod messages;
pub mod player;
pub mod session;
pub mod warning;

pub use config::TalkConfig;

use bl_proto::CameraId;
use bl_proto::command::{StartTalk, TalkOutput, codes};
use bl_service::secret::Secret;
use messages::Messages;
use player::Audio;
use session::{Control, Finished, Shared, Target};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a talk is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TalkStatus {
    /// Set up; no audio has reached the output yet.
    Connecting,
    /// Audio reaches the output.
    Talking,
    /// It failed (and is being retried while the talk lasts).
    Failed(String),
}

impl std::fmt::Display for TalkStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TalkStatus::Connecting => f.write_str("connecting"),
            TalkStatus::Talking => f.write_str("talking"),
            TalkStatus::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

/// Why a talk or a message cannot be played. [`TalkError::code`] is the command result's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TalkError {
    #[error("no camera {0} on this box")]
    UnknownCamera(CameraId),
    /// The camera has no backchannel (or none in G.711), or the box has no speaker.
    #[error("{0}")]
    NoSpeaker(String),
    #[error("{0}")]
    Busy(String),
    /// The camera could not be reached or refused the session.
    #[error("cannot reach the camera's backchannel: {0}")]
    Camera(String),
    #[error("voice message {0:?} is not provisioned on this box")]
    UnknownMessage(String),
    #[error("{0}")]
    Internal(String),
}

impl TalkError {
    /// The stable code of a command result (`bl_proto::command::codes`).
    pub fn code(&self) -> &'static str {
        match self {
            TalkError::UnknownCamera(_) => codes::UNKNOWN_CAMERA,
            TalkError::NoSpeaker(_) => codes::UNSUPPORTED,
            TalkError::Busy(_) => codes::BUSY,
            TalkError::Camera(_) => codes::CAMERA_OFFLINE,
            TalkError::UnknownMessage(_) => codes::UNKNOWN_MESSAGE,
            TalkError::Internal(_) => codes::INTERNAL,
        }
    }

    fn missing(element: &str) -> TalkError {
        TalkError::Internal(format!(
            "GStreamer element {element} is missing; install the GStreamer plugins (deploy/dev/install-deps.sh)"
        ))
    }
}

/// A message played to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Played {
    pub output: TalkOutput,
    /// From the start to the end of playing, set-up included.
    pub took: Duration,
}

/// Why a session runs: an operator's talk wins over a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Operator,
    Message,
}

struct Session {
    /// Tells this session from a later one at the same camera.
    serial: u64,
    kind: Kind,
    output: TalkOutput,
    control: std::sync::mpsc::Sender<Control>,
    shared: Arc<Mutex<Shared>>,
    thread: std::thread::JoinHandle<()>,
    /// How it ended, once it has.
    ended: tokio::sync::watch::Receiver<Option<Result<Finished, String>>>,
}

/// The messages and rules in force: the box's own with the center's over them.
struct Current {
    messages: Messages,
    warnings: warning::Warnings,
}

struct Inner {
    /// Each camera's backchannel URL (with credentials), `None` for a camera without one.
    cameras: HashMap<CameraId, Option<Secret>>,
    speaker: Option<String>,
    /// The box's own `[talk]` messages and rules.
    local: Current,
    /// Swapped whole by [`Talk::apply_center`].
    current: Mutex<Arc<Current>>,
    sessions: Mutex<HashMap<CameraId, Session>>,
    serial: std::sync::atomic::AtomicU64,
}

/// The box's talk-down: cheap to clone, shared by the command handler and detection.
#[derive(Clone)]
pub struct Talk {
    inner: Arc<Inner>,
}

impl Talk {
    /// `cameras`: each camera's backchannel URL (`Config::backchannel_sources`); `config`: `[talk]`.
    pub fn new(cameras: Vec<(CameraId, Option<Secret>)>, config: Option<&TalkConfig>) -> Talk {
        let local = || Current {
            messages: config.map(Messages::new).unwrap_or_default(),
            warnings: config.map(warning::Warnings::new).unwrap_or_default(),
        };
        Talk {
            inner: Arc::new(Inner {
                cameras: cameras.into_iter().collect(),
                speaker: config.and_then(|c| c.speaker.clone()),
                local: local(),
                current: Mutex::new(Arc::new(local())),
                sessions: Mutex::default(),
                serial: Default::default(),
            }),
        }
    }

    /// Synthesises the text messages now (blocking; call it once at start-up, off the runtime).
    pub fn prepare_messages(&self) {
        self.current().messages.prepare();
    }

    /// The messages and rules in force.
    fn current(&self) -> Arc<Current> {
        self.inner.current.lock().expect("talk messages").clone()
    }

    /// Puts the center's warnings in force over the box's own (texts are synthesised first, so a
    /// warning does not wait for espeak-ng). Rules naming a camera this box does not have are
    /// left out, saying so.
    pub async fn apply_center(&self, ready: center::Ready) {
        let mut rules = ready.rules;
        for rule in &mut rules {
            rule.cameras.retain(|c| {
                let known = self.inner.cameras.contains_key(c);
                if !known {
                    tracing::warn!(camera = %c, kind = ?rule.kind, "the center's warning rule names a camera this box does not have; left out for it");
                }
                known
            });
        }
        let messages = self.inner.local.messages.with_center(&ready.messages);
        let prepared = messages.clone();
        let _ = tokio::task::spawn_blocking(move || prepared.prepare()).await;
        let next = Current {
            messages,
            warnings: self.inner.local.warnings.with_center(rules),
        };
        *self.inner.current.lock().expect("talk messages") = Arc::new(next);
    }

    /// `startTalk`: plays the operator's voice from `{pullUrl}/{token}` at the camera.
    pub async fn start(&self, cmd: &StartTalk) -> Result<TalkStatus, TalkError> {
        let camera = &cmd.camera_id;
        let target = self.target(camera, cmd.output)?;
        let url = format!(
            "{}/{}",
            cmd.pull_url.trim_end_matches('/'),
            cmd.token.expose()
        );
        let audio = Audio::Pull(Secret::new(url));
        {
            let sessions = self.inner.sessions.lock().expect("talk sessions");
            if let Some(s) = sessions.get(camera)
                && s.kind == Kind::Operator
                && s.output == cmd.output
                && !s.thread.is_finished()
                && s.control.send(Control::Replace(audio.clone())).is_ok()
            {
                tracing::info!(camera = %camera, "talk source replaced");
                return Ok(s.shared.lock().expect("talk state").status.clone());
            }
        }
        self.stop(camera).await;
        tracing::info!(camera = %camera, output = ?cmd.output, "talk starting");
        self.open(camera, Kind::Operator, cmd.output, target, audio)
            .await
            .map(|(status, _)| status)
    }

    /// `stopTalk` (and the end of a message): ends the camera's talk, if any, and returns once its
    /// session is torn down. Stopping a camera that is not talking is fine.
    pub async fn stop(&self, camera: &CameraId) {
        let session = self
            .inner
            .sessions
            .lock()
            .expect("talk sessions")
            .remove(camera);
        if let Some(s) = session {
            let _ = s.control.send(Control::Stop);
            let _ = tokio::task::spawn_blocking(move || s.thread.join()).await;
            tracing::info!(camera = %camera, "talk stopped");
        }
    }

    /// Drops session `serial` at `camera` from the table once it ended (a later one stays).
    fn forget(&self, camera: &CameraId, serial: u64) {
        let mut sessions = self.inner.sessions.lock().expect("talk sessions");
        if sessions.get(camera).is_some_and(|s| s.serial == serial) {
            sessions.remove(camera);
        }
    }

    /// The camera's talk, if one runs.
    pub fn status(&self, camera: &CameraId) -> Option<TalkStatus> {
        let sessions = self.inner.sessions.lock().expect("talk sessions");
        let s = sessions.get(camera)?;
        Some(s.shared.lock().expect("talk state").status.clone())
    }

    /// When the camera's talk first got audio to its output.
    pub fn first_audio(&self, camera: &CameraId) -> Option<Instant> {
        let sessions = self.inner.sessions.lock().expect("talk sessions");
        let s = sessions.get(camera)?;
        s.shared.lock().expect("talk state").first_audio
    }

    /// `playMessage`: plays stored message `id` at the camera to its end. Refused while an
    /// operator talks there.
    pub async fn play(&self, camera: &CameraId, id: &str) -> Result<Played, TalkError> {
        let output = self.message_output(camera)?;
        let target = self.target(camera, output)?;
        let started = Instant::now();
        let messages = self.current().messages.clone();
        let id_owned = id.to_string();
        let file = tokio::task::spawn_blocking(move || messages.file(&id_owned))
            .await
            .map_err(|e| TalkError::Internal(e.to_string()))??;
        if let Some(s) = self
            .inner
            .sessions
            .lock()
            .expect("talk sessions")
            .get(camera)
            && !s.thread.is_finished()
        {
            return Err(TalkError::Busy(match s.kind {
                Kind::Operator => "an operator is talking at this camera".into(),
                Kind::Message => "another voice message is playing at this camera".into(),
            }));
        }
        self.stop(camera).await; // a finished session not collected yet
        let serial = self
            .open(camera, Kind::Message, output, target, Audio::File(file))
            .await?
            .1;
        let mut ended = {
            let sessions = self.inner.sessions.lock().expect("talk sessions");
            match sessions.get(camera) {
                Some(s) if s.serial == serial => s.ended.clone(),
                _ => return Err(TalkError::Busy("an operator took over the speaker".into())),
            }
        };
        let outcome = ended
            .wait_for(Option::is_some)
            .await
            .map(|o| o.clone().expect("waited for it"))
            .unwrap_or_else(|_| Err("the talk thread ended".into()));
        self.forget(camera, serial);
        match outcome {
            Ok(Finished::Played) => {}
            Ok(Finished::Stopped) => {
                return Err(TalkError::Busy(
                    "an operator took over the speaker before the message ended".into(),
                ));
            }
            Err(reason) => return Err(TalkError::Camera(reason)),
        }
        let played = Played {
            output,
            took: started.elapsed(),
        };
        tracing::info!(camera = %camera, message = %id, output = ?output, took = ?played.took, "voice message played");
        Ok(played)
    }

    /// Where a message is played at `camera`: its backchannel, else the box's speaker.
    pub fn message_output(&self, camera: &CameraId) -> Result<TalkOutput, TalkError> {
        match self.inner.cameras.get(camera) {
            None => Err(TalkError::UnknownCamera(camera.clone())),
            Some(Some(_)) => Ok(TalkOutput::Backchannel),
            Some(None) if self.inner.speaker.is_some() => Ok(TalkOutput::Speaker),
            Some(None) => Err(no_speaker_anywhere()),
        }
    }

    fn target(&self, camera: &CameraId, output: TalkOutput) -> Result<Target, TalkError> {
        let url = self
            .inner
            .cameras
            .get(camera)
            .ok_or_else(|| TalkError::UnknownCamera(camera.clone()))?;
        match (output, url, &self.inner.speaker) {
            (TalkOutput::Backchannel, Some(url), _) => Ok(Target::Camera(url.clone())),
            (TalkOutput::Backchannel, None, _) => Err(TalkError::NoSpeaker(
                "camera has no speaker: no backchannel_url is configured for it".into(),
            )),
            (TalkOutput::Speaker, _, Some(sink)) => Ok(Target::Speaker(sink.clone())),
            (TalkOutput::Speaker, _, None) => Err(TalkError::NoSpeaker(
                "the box has no speaker: [talk] speaker is not configured".into(),
            )),
        }
    }

    /// Starts a session thread and waits for its set-up; returns its status and serial.
    async fn open(
        &self,
        camera: &CameraId,
        kind: Kind,
        output: TalkOutput,
        target: Target,
        audio: Audio,
    ) -> Result<(TalkStatus, u64), TalkError> {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (control, control_rx) = std::sync::mpsc::channel();
        let shared = Arc::new(Mutex::new(Shared {
            status: TalkStatus::Connecting,
            first_audio: None,
        }));
        let s2 = shared.clone();
        let (ended_tx, ended) = tokio::sync::watch::channel(None);
        let span = tracing::info_span!("talk", camera = %camera);
        let thread = std::thread::Builder::new()
            .name(format!("talk-{camera}"))
            .spawn(move || {
                let _entered = span.enter();
                let outcome = session::run(target, audio, ready_tx, control_rx, s2);
                let _ = ended_tx.send(Some(outcome));
            })
            .map_err(|e| TalkError::Internal(format!("cannot start a talk thread: {e}")))?;
        let serial = self
            .inner
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.sessions.lock().expect("talk sessions").insert(
            camera.clone(),
            Session {
                serial,
                ended,
                kind,
                output,
                control,
                shared: shared.clone(),
                thread,
            },
        );
        let outcome = ready_rx
            .await
            .unwrap_or_else(|_| Err(TalkError::Internal("the talk thread ended".into())));
        if let Err(e) = outcome {
            self.forget(camera, serial);
            return Err(e);
        }
        let status = shared.lock().expect("talk state").status.clone();
        Ok((status, serial))
    }
}

fn no_speaker_anywhere() -> TalkError {
    TalkError::NoSpeaker(
        "camera has no speaker (no backchannel_url) and the box has none ([talk] speaker)".into(),
    )
}

/// Initialises GStreamer once.
fn init() -> Result<(), TalkError> {
    gstreamer::init().map_err(|e| TalkError::Internal(format!("GStreamer: {e}")))
}
