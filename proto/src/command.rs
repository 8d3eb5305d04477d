//! `bl/v1/edge/{edge}/cmd` and `…/cmd/result`: what the center asks an edge to do, and the answer.
//!
//! Commands are at-least-once (QoS 1); the edge remembers recent `cmdId`s and answers a repeat with the
//! first result instead of acting twice, and refuses a command past its `expiresAt` (code `expired`)
//! so that one stuck in the outbox of a reconnecting link does not start a stream nobody watches.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::check;
use crate::decode::{Message, TypeTag, Violation, tracked};
use crate::event::ViolationKind;
use crate::id::{CameraId, EdgeId};
use crate::stream::Stream;
use crate::token::MediaToken;
use crate::version::V1;

/// A command to one edge: an envelope (`cmdId`, times) around one [`CommandAction`], whose `"type"`
/// is the payload's type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    /// Payload version, always 1.
    pub v: V1,
    /// Made by dispatch (UUIDv7); echoed in the [`CommandResult`] and used to drop repeats.
    pub cmd_id: Uuid,
    /// When dispatch issued it (UTC, milliseconds).
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "DateTime<Utc>")]
    pub issued_at: DateTime<Utc>,
    /// After this the edge must not act on it; `null` means no deadline.
    #[serde(default, with = "crate::time::millis_opt")]
    #[schemars(with = "Option<DateTime<Utc>>")]
    pub expires_at: Option<DateTime<Utc>>,
    /// What to do.
    #[serde(flatten)]
    pub action: CommandAction,
}

/// What a [`Command`] asks for; tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum CommandAction {
    /// Push a camera's stream to the gateway (RTSP RECORD) until `stopLive`.
    StartLive(StartLive),
    /// Stop pushing a stream.
    StopLive(StopLive),
    /// Pull the operator's voice from the gateway and play it at the premises.
    StartTalk(StartTalk),
    /// Stop playing talk audio.
    StopTalk(StopTalk),
    /// Take a snapshot now and upload it as evidence.
    Snapshot(SnapshotCmd),
    /// Watch a camera for a rule for a while and report whether it is kept (rectification check).
    Recheck(Recheck),
    /// Play a stored voice warning at the premises (automatic talk-down).
    PlayMessage(PlayMessage),
}

/// `startLive`: push `stream` of `cameraId` to `pushUrl`, authenticated with `token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartLive {
    /// Camera to push.
    pub camera_id: CameraId,
    /// Main or sub stream.
    pub stream: Stream,
    /// Gateway RTSP URL to push to (holds no credentials; those are in `token`).
    pub push_url: String,
    /// Media token the gateway checks on the push.
    pub token: MediaToken,
}

/// `stopLive`: stop pushing `stream` of `cameraId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopLive {
    /// Camera concerned.
    pub camera_id: CameraId,
    /// Which stream to stop.
    pub stream: Stream,
}

/// `startTalk`: pull talk audio from `pullUrl` and play it to `output` near `cameraId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartTalk {
    /// Camera whose premises to talk to.
    pub camera_id: CameraId,
    /// Gateway URL of the operator's audio.
    pub pull_url: String,
    /// Media token the gateway checks on the pull.
    pub token: MediaToken,
    /// Where to play it.
    pub output: TalkOutput,
}

/// Where talk audio is played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TalkOutput {
    /// The camera's own speaker, through the ONVIF RTSP backchannel (G.711).
    Backchannel,
    /// A speaker attached to the edge box.
    Speaker,
}

/// `stopTalk`: stop playing talk audio at `cameraId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopTalk {
    /// Camera concerned.
    pub camera_id: CameraId,
}

/// `snapshot`: take a still of `cameraId` now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotCmd {
    /// Camera to capture.
    pub camera_id: CameraId,
}

/// `recheck`: watch `cameraId` for `forSecs` seconds and report whether `kind` stayed absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recheck {
    /// Camera to watch.
    pub camera_id: CameraId,
    /// The rule that must be kept.
    pub kind: ViolationKind,
    /// How long to watch, seconds (1 to 86,400).
    pub for_secs: u32,
}

/// `playMessage`: play stored voice message `messageId` at `cameraId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayMessage {
    /// Camera whose premises hear it.
    pub camera_id: CameraId,
    /// Which stored message (e.g. `wear-hat-zh`), provisioned on the edge.
    pub message_id: String,
    /// Drill run id when played in an exercise; `null` for real.
    pub exercise: Option<String>,
}

impl CommandAction {
    /// The `"type"` of this action.
    pub fn type_name(&self) -> &'static str {
        match self {
            CommandAction::StartLive(_) => "startLive",
            CommandAction::StopLive(_) => "stopLive",
            CommandAction::StartTalk(_) => "startTalk",
            CommandAction::StopTalk(_) => "stopTalk",
            CommandAction::Snapshot(_) => "snapshot",
            CommandAction::Recheck(_) => "recheck",
            CommandAction::PlayMessage(_) => "playMessage",
        }
    }

    /// The camera every action is about.
    pub fn camera_id(&self) -> &CameraId {
        match self {
            CommandAction::StartLive(a) => &a.camera_id,
            CommandAction::StopLive(a) => &a.camera_id,
            CommandAction::StartTalk(a) => &a.camera_id,
            CommandAction::StopTalk(a) => &a.camera_id,
            CommandAction::Snapshot(a) => &a.camera_id,
            CommandAction::Recheck(a) => &a.camera_id,
            CommandAction::PlayMessage(a) => &a.camera_id,
        }
    }
}

impl Command {
    /// Whether the edge must refuse it at `now` (past `expiresAt`).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

/// The envelope fields of a [`Command`], decoded on their own so that errors in them keep their path.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[allow(dead_code)] // read only to check it is present and 1
    v: V1,
    cmd_id: Uuid,
    #[serde(with = "crate::time::millis")]
    issued_at: DateTime<Utc>,
    #[serde(default, with = "crate::time::millis_opt")]
    expires_at: Option<DateTime<Utc>>,
}

fn url(path: &str, value: &str) -> Result<(), Violation> {
    check::text(path, value, 2048)?;
    if value.contains(char::is_whitespace) {
        return Err(Violation::new(path, "must not contain whitespace"));
    }
    if !value.contains("://") {
        return Err(Violation::new(path, "must be an absolute URL (scheme://…)"));
    }
    Ok(())
}

impl Message for Command {
    const TYPES: &'static [&'static str] = &[
        "startLive",
        "stopLive",
        "startTalk",
        "stopTalk",
        "snapshot",
        "recheck",
        "playMessage",
    ];
    const SCHEMA_NAME: &'static str = "command";

    fn from_checked(ty: &str, value: &Value) -> Result<Self, Violation> {
        let env: Envelope = tracked(value)?;
        let action = match ty {
            "startLive" => CommandAction::StartLive(tracked(value)?),
            "stopLive" => CommandAction::StopLive(tracked(value)?),
            "startTalk" => CommandAction::StartTalk(tracked(value)?),
            "stopTalk" => CommandAction::StopTalk(tracked(value)?),
            "snapshot" => CommandAction::Snapshot(tracked(value)?),
            "recheck" => CommandAction::Recheck(tracked(value)?),
            "playMessage" => CommandAction::PlayMessage(tracked(value)?),
            other => {
                return Err(Violation::new(
                    "type",
                    format!("{other:?} is not a command"),
                ));
            }
        };
        Ok(Command {
            v: V1,
            cmd_id: env.cmd_id,
            issued_at: env.issued_at,
            expires_at: env.expires_at,
            action,
        })
    }

    fn validate(&self) -> Result<(), Violation> {
        if let Some(exp) = self.expires_at
            && exp <= self.issued_at
        {
            return Err(Violation::new("expiresAt", "is not after `issuedAt`"));
        }
        match &self.action {
            CommandAction::StartLive(a) => {
                url("pushUrl", &a.push_url)?;
                a.token.validate("token")
            }
            CommandAction::StartTalk(a) => {
                url("pullUrl", &a.pull_url)?;
                a.token.validate("token")
            }
            CommandAction::Recheck(a) if a.for_secs == 0 || a.for_secs > 86_400 => Err(
                Violation::new("forSecs", format!("{} is outside 1..=86400", a.for_secs)),
            ),
            CommandAction::PlayMessage(a) => {
                crate::id::validate_id("message id", &a.message_id)
                    .map_err(|e| Violation::new("messageId", e.to_string()))?;
                check::exercise(a.exercise.as_deref())
            }
            _ => Ok(()),
        }
    }
}

/// Stable error codes for [`Outcome::Error`]; receivers branch on these, never on the message text.
pub mod codes {
    /// The command arrived after its `expiresAt`.
    pub const EXPIRED: &str = "expired";
    /// The edge has no camera with that id.
    pub const UNKNOWN_CAMERA: &str = "unknownCamera";
    /// The camera is offline, so the action cannot run.
    pub const CAMERA_OFFLINE: &str = "cameraOffline";
    /// The edge cannot do this (e.g. no backchannel, no speaker).
    pub const UNSUPPORTED: &str = "unsupported";
    /// Another session holds the resource (e.g. talk is already in use).
    pub const BUSY: &str = "busy";
    /// The gateway refused the push or pull (token, network).
    pub const UPSTREAM_FAILED: &str = "upstreamFailed";
    /// The stored voice message is not provisioned on this edge.
    pub const UNKNOWN_MESSAGE: &str = "unknownMessage";
    /// Anything else; details in the message.
    pub const INTERNAL: &str = "internal";
    /// The command did not decode or validate (the message names the field); it was not run.
    pub const INVALID: &str = "invalid";
    /// `recheck`: the camera showed the violation during the watch, so the rule is not kept.
    pub const NOT_KEPT: &str = "notKept";
}

/// The edge's answer to one [`Command`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename = "commandResult", rename_all = "camelCase")]
#[schemars(rename = "CommandResult", transform = TypeTag("commandResult"))]
pub struct CommandResult {
    /// Payload version, always 1.
    pub v: V1,
    /// The command answered.
    pub cmd_id: Uuid,
    /// The answering edge.
    pub edge_id: EdgeId,
    /// When the edge finished (or refused) it (UTC, milliseconds).
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "DateTime<Utc>")]
    pub at: DateTime<Utc>,
    /// Success or failure.
    pub outcome: Outcome,
}

/// How a command ended; tagged by `"status"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Outcome {
    /// Done (`recheck`: the rule was kept; `snapshot`: the blob's sha256 in `detail`).
    Ok {
        /// Optional human-readable or machine detail.
        #[serde(default)]
        detail: Option<String>,
    },
    /// Refused or failed.
    Error {
        /// Stable code, one of [`codes`] (new codes may appear; treat unknown ones as `internal`).
        code: String,
        /// Human-readable explanation for logs and the console.
        message: String,
    },
}

impl Message for CommandResult {
    const TYPES: &'static [&'static str] = &["commandResult"];
    const SCHEMA_NAME: &'static str = "command-result";

    fn validate(&self) -> Result<(), Violation> {
        self.outcome.validate("outcome")
    }
}

impl Outcome {
    /// Checks the detail, or the code and message, naming fields under `path`.
    pub fn validate(&self, path: &str) -> Result<(), Violation> {
        match self {
            Outcome::Ok { detail } => {
                check::opt_text(&format!("{path}.detail"), detail.as_deref(), 1024)
            }
            Outcome::Error { code, message } => {
                let ok = !code.is_empty()
                    && code.len() <= 64
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
                if !ok {
                    return Err(Violation::new(
                        format!("{path}.code"),
                        "must be 1-64 characters of letters, digits, '_' or '.'",
                    ));
                }
                check::text(&format!("{path}.message"), message, 1024)
            }
        }
    }
}
