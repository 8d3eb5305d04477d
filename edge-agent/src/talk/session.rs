//! One camera's talk: a thread that owns the camera side ([`Backchannel`]) and the audio side
//! ([`Player`]) and keeps them going until it is told to stop. The operator's voice is supervised:
//! a failed pull or a dropped camera session is retried with backoff while the talk lasts. A stored
//! message is played once, to its end.

use super::backchannel::Backchannel;
use super::player::{Audio, Player, PlayerEvent, Sink};
use super::{TalkError, TalkStatus};
use bl_service::secret::Secret;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the camera may take to answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(20);

/// Where a talk is heard.
#[derive(Clone)]
pub enum Target {
    /// The camera's speaker, reached through this URL (with credentials).
    Camera(Secret),
    /// The box's speaker.
    Speaker(String),
}

/// What the owner tells a running session.
pub enum Control {
    /// Play this instead (a new `startTalk` while talking).
    Replace(Audio),
    /// End it.
    Stop,
}

/// What the owner can see of a running session.
#[derive(Debug, Clone)]
pub struct Shared {
    pub status: TalkStatus,
    /// When audio first reached the output (for set-up time).
    pub first_audio: Option<Instant>,
}

/// How a session ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Its owner stopped it.
    Stopped,
    /// The message was played to its end.
    Played,
}

/// Runs a session on the calling thread until it is stopped or, for a message, played. `ready`
/// gets the outcome of the set-up (the camera's answer and the audio pipeline). Returns how it
/// ended, or why it failed (a message is not retried).
pub fn run(
    target: Target,
    mut audio: Audio,
    ready: tokio::sync::oneshot::Sender<Result<(), TalkError>>,
    control: mpsc::Receiver<Control>,
    shared: Arc<Mutex<Shared>>,
) -> Result<Finished, String> {
    let set = |status: TalkStatus| shared.lock().expect("talk state").status = status;
    let once = matches!(audio, Audio::File(_));
    let (mut camera, mut player) = match connect(&target, None, &audio) {
        Ok((camera, player)) => (camera, Some(player)),
        Err(e) => {
            set(TalkStatus::Failed(e.to_string()));
            let _ = ready.send(Err(e.clone()));
            return Err(e.to_string());
        }
    };
    let _ = ready.send(Ok(()));
    let mut backoff = BACKOFF_MIN;
    let mut retry_at: Option<Instant> = None;
    let outcome = loop {
        match control.recv_timeout(TICK) {
            Ok(Control::Replace(next)) => {
                audio = next;
                player = None;
                *shared.lock().expect("talk state") = Shared {
                    status: TalkStatus::Connecting,
                    first_audio: None,
                };
                retry_at = Some(Instant::now());
                backoff = BACKOFF_MIN;
            }
            Ok(Control::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Ok(Finished::Stopped);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        // The camera dropped the session: it is reconnected too.
        let mut failure = camera.as_ref().and_then(|c| c.failure());
        if failure.is_some() {
            camera.take().inspect(|c| c.close());
        } else {
            match player.as_ref().and_then(|p| p.poll()) {
                Some(PlayerEvent::Ended) if once => break Ok(Finished::Played),
                Some(PlayerEvent::Ended) => {
                    // Ordinarily the operator hung up and `stopTalk` is on its way: not a
                    // failure. Pulled again after the backoff if the talk still lasts then (a
                    // gateway that restarted).
                    tracing::info!(retry_in = ?backoff, "the gateway ended the operator's audio");
                    set(TalkStatus::Connecting);
                    player = None;
                    retry_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Some(PlayerEvent::Failed(reason)) => failure = Some(reason),
                None => {}
            }
        }
        if let Some(reason) = failure {
            if once {
                break Err(reason);
            }
            tracing::warn!(reason = %reason, retry_in = ?backoff, "talk failed; retrying");
            set(TalkStatus::Failed(reason));
            player = None;
            retry_at = Some(Instant::now() + backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        if let Some(at) = player.as_ref().and_then(|p| p.first_audio()) {
            let mut s = shared.lock().expect("talk state");
            if s.status != TalkStatus::Talking {
                s.status = TalkStatus::Talking;
                s.first_audio.get_or_insert(at);
                tracing::info!("talking");
            }
        }
        if retry_at.is_some_and(|at| Instant::now() >= at) {
            retry_at = None;
            match connect(&target, camera.take(), &audio) {
                Ok((c, p)) => (camera, player) = (c, Some(p)),
                Err(e) => {
                    tracing::warn!(err = %e, retry_in = ?backoff, "talk could not restart");
                    set(TalkStatus::Failed(e.to_string()));
                    retry_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    };
    // Audio first, so nothing is pushed into a closing session; then the camera's TEARDOWN.
    drop(player);
    if let Some(c) = camera {
        c.close();
    }
    outcome
}

/// Sets up what is missing: the camera side (unless `camera` is still up) and a new player.
fn connect(
    target: &Target,
    camera: Option<Arc<Backchannel>>,
    audio: &Audio,
) -> Result<(Option<Arc<Backchannel>>, Player), TalkError> {
    let (camera, sink) = match (target, camera) {
        (_, Some(c)) => (Some(c.clone()), Sink::Backchannel(c)),
        (Target::Camera(url), None) => {
            let c = Arc::new(Backchannel::connect(url, CONNECT_TIMEOUT)?);
            (Some(c.clone()), Sink::Backchannel(c))
        }
        (Target::Speaker(description), None) => (None, Sink::Speaker(description.clone())),
    };
    Ok((camera, Player::start(audio, &sink)?))
}
