//! The center's commands (DESIGN §3.1): `bl/v1/edge/{edge}/cmd` in, `…/cmd/result` out.
//!
//! **Every command with a `cmdId` gets exactly one answer per run, and no command runs twice.**
//! Payloads are untrusted: one that does not decode is answered `invalid` if it names a `cmdId`
//! (logged without its contents otherwise); one past its `expiresAt` is answered `expired`; a
//! repeat of a command still running is dropped, a repeat of a finished one gets the first answer
//! again ([`admit`]). The ids are remembered in memory only: the uplink's session is clean, so after
//! a restart the broker redelivers nothing.
//!
//! Results go through the outbox like events: written to disk first, sent in order after PUBACK.
//! Each command runs in a task of its own; [`execute`] is the one `match` over the actions.

pub mod admit;
pub mod live;
pub mod push;
pub mod recheck;
pub mod snapshot;

use crate::outbox::Outbox;
use crate::watch::Sighting;
use admit::{Admission, Recent, error, ok};
use bl_proto::command::{Command, CommandAction, CommandResult, Outcome, codes};
use bl_proto::topic::Topic;
use bl_proto::{CameraId, EdgeId, V1};
use live::LivePushes;
use snapshot::Snapshots;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// What commands act on.
pub struct Commands {
    pub edge: EdgeId,
    pub outbox: Outbox,
    /// The cameras of this box.
    pub cameras: HashSet<CameraId>,
    pub live: LivePushes,
    /// `None` without `[evidence]`: snapshots are answered `unsupported`.
    pub snapshots: Option<Snapshots>,
    /// The detection worker's sightings, for re-checks.
    pub sightings: broadcast::Sender<Sighting>,
    /// Talk-down and voice messages.
    pub talk: crate::talk::Talk,
}

/// Runs until `shutdown` or until the uplink closes `payloads`.
pub async fn run(
    commands: Commands,
    mut payloads: mpsc::Receiver<Vec<u8>>,
    shutdown: CancellationToken,
) {
    let commands = Arc::new(commands);
    let mut recent = Recent::default();
    let (done_tx, mut done) = mpsc::channel::<(Uuid, Outcome)>(64);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some((cmd_id, outcome)) = done.recv() => {
                recent.finish(cmd_id, &outcome);
                commands.answer(cmd_id, outcome).await;
            }
            payload = payloads.recv() => {
                let Some(payload) = payload else { break };
                match recent.admit(&payload, chrono::Utc::now()) {
                    Admission::Run(cmd) => {
                        let (commands, done, stop) = (commands.clone(), done_tx.clone(), shutdown.clone());
                        let span = tracing::info_span!("command", cmd_id = %cmd.cmd_id, action = cmd.action.type_name(), camera = %cmd.action.camera_id());
                        tokio::spawn(async move {
                            let cmd_id = cmd.cmd_id;
                            let outcome = execute(&commands, *cmd, &stop).await;
                            let _ = done.send((cmd_id, outcome)).await;
                        }.instrument(span));
                    }
                    Admission::Answer { cmd_id, outcome } => {
                        tracing::info!(cmd_id = %cmd_id, "command answered without running");
                        commands.answer(cmd_id, outcome).await;
                    }
                    Admission::Drop(why) => tracing::warn!(reason = %why, "command dropped"),
                }
            }
        }
    }
}

/// Runs one admitted command; its answer.
pub async fn execute(commands: &Commands, cmd: Command, stop: &CancellationToken) -> Outcome {
    let camera = cmd.action.camera_id();
    if !commands.cameras.contains(camera) {
        return error(
            codes::UNKNOWN_CAMERA,
            format!("camera {camera} is not on this box"),
        );
    }
    tracing::info!("command received");
    match &cmd.action {
        CommandAction::StartLive(a) => commands.live.start(a).await,
        CommandAction::StopLive(a) => commands.live.stop(a),
        CommandAction::Snapshot(a) => {
            snapshot::take(commands.snapshots.as_ref(), &a.camera_id).await
        }
        CommandAction::Recheck(a) => recheck::run(&commands.sightings, a, stop).await,
        CommandAction::StartTalk(a) => match commands.talk.start(a).await {
            Ok(status) => ok(status.to_string()),
            Err(e) => error(e.code(), e.to_string()),
        },
        CommandAction::StopTalk(a) => {
            commands.talk.stop(&a.camera_id).await;
            ok("stopped")
        }
        CommandAction::PlayMessage(a) => {
            match commands.talk.play(&a.camera_id, &a.message_id).await {
                Ok(played) => ok(format!(
                    "played to the {} in {} ms",
                    match played.output {
                        bl_proto::command::TalkOutput::Backchannel => "camera",
                        bl_proto::command::TalkOutput::Speaker => "box speaker",
                    },
                    played.took.as_millis()
                )),
                Err(e) => error(e.code(), e.to_string()),
            }
        }
    }
}

impl Commands {
    /// Queues the answer to `cmd_id` in the outbox (sent after the events queued before it).
    async fn answer(&self, cmd_id: Uuid, outcome: Outcome) {
        match &outcome {
            Outcome::Ok { detail } => {
                tracing::info!(cmd_id = %cmd_id, detail = detail.as_deref().unwrap_or(""), "command done")
            }
            Outcome::Error { code, message } => {
                tracing::warn!(cmd_id = %cmd_id, code = %code, message = %message, "command failed")
            }
        }
        let result = CommandResult {
            v: V1,
            cmd_id,
            edge_id: self.edge.clone(),
            at: chrono::Utc::now(),
            outcome,
        };
        let topic = Topic::EdgeCmdResult(self.edge.clone());
        if let Err(e) = self.outbox.push(&topic, &bl_proto::encode(&result)).await {
            tracing::error!(cmd_id = %cmd_id, err = %e, "cannot queue a command result");
        }
    }
}
