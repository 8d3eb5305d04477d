//! Push-to-talk in the gateway: in an incident's voice channel a participant's audio is forwarded
//! only while they hold the floor. dispatch keeps the floor (`voice_floor`) and signs a floor grant
//! ([`bl_proto::floor_token`]) that the talker's browser presents here; this file is the plain
//! rule of which grant holds, and the gate each sender's audio passes through.
//!
//! - A grant names the room, the talker (`sub`, as in their room token) and dispatch's holding
//!   (`floor_session`, growing). A newer holding supersedes the one forwarding now **at once** (a
//!   supervisor's take-over); an older one is refused, so a revoked talker cannot come back with
//!   a grant they still have. A renewal (same holding, later expiry) extends it.
//! - The gate is a deadline checked per packet, so an expired grant stops forwarding on time even
//!   if nobody tells the gateway.
//! - Every start and end is sent on [`FloorChange`]s: the seam for a recorder of transmissions.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// Whether `room` is push-to-talk: dispatch names incident voice channels `voice-{incident}`
/// (`dispatch::rooms::voice_room_id`); consult rooms (`room-…`) forward everyone's audio.
pub fn is_push_to_talk(room: &str) -> bool {
    room.starts_with("voice-")
}

/// A sender's audio gate: open until a deadline (Unix milliseconds).
#[derive(Debug)]
pub struct AudioGate {
    open_until_ms: AtomicI64,
}

impl AudioGate {
    /// Open for good (consult rooms) or closed until a grant (push-to-talk rooms).
    pub fn new(push_to_talk: bool) -> Self {
        let until = if push_to_talk { 0 } else { i64::MAX };
        Self {
            open_until_ms: AtomicI64::new(until),
        }
    }

    /// Whether a packet arriving at `now_ms` passes.
    pub fn is_open(&self, now_ms: i64) -> bool {
        now_ms < self.open_until_ms.load(Ordering::Relaxed)
    }

    /// Whether a packet arriving now passes.
    pub fn is_open_now(&self) -> bool {
        self.is_open(Utc::now().timestamp_millis())
    }

    pub(super) fn open_until(&self, until_ms: i64) {
        self.open_until_ms.store(until_ms, Ordering::Relaxed);
    }

    pub(super) fn close(&self) {
        self.open_until_ms.store(0, Ordering::Relaxed);
    }
}

/// A floor grant as presented, once its signature and times checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub sub: String,
    pub floor_session: i64,
    /// Unix seconds (exclusive).
    pub exp: i64,
}

/// Who talks in a room now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Holding {
    pub participant: String,
    pub sub: String,
    pub floor_session: i64,
    /// Unix seconds (exclusive).
    pub exp: i64,
}

/// Why a transmission ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EndReason {
    /// The talker let go.
    Released,
    /// A newer holding took the floor (a supervisor's take-over).
    Superseded,
    /// The grant ran out without renewal.
    Expired,
    /// The talker left the room.
    Left,
}

/// What happened to a room's floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    Started,
    Ended(EndReason),
}

/// A transmission's start or end in a push-to-talk room (see [`super::Rooms::floor_changes`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FloorChange {
    pub room: String,
    pub participant: String,
    pub sub: String,
    pub floor_session: i64,
    pub change: Change,
    pub at: DateTime<Utc>,
}

/// Why a grant does not open the gate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FloorError {
    #[error("room {room} is not push-to-talk: everyone's audio is forwarded there")]
    NotPushToTalk { room: String },
    #[error("no such participant in this room (they may have left)")]
    UnknownParticipant,
    #[error("the floor grant is for {grant}, but this participant joined as {participant}")]
    NotYours { grant: String, participant: String },
    #[error(
        "the floor grant (holding {grant}) was superseded by holding {current}; ask dispatch for the floor again"
    )]
    Superseded { grant: i64, current: i64 },
}

/// The decision for a valid grant, given the room's holding and the newest holding seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start a new transmission; `ends` the current one (superseded) first, if any.
    Start {
        ends: Option<Holding>,
    },
    /// The same holding, extended.
    Renew,
    Refuse {
        current: i64,
    },
}

/// The rule: a grant older than the newest holding seen is refused; the same holding by the same
/// participant renews; anything newer starts, ending whoever talked.
pub fn decide(
    current: Option<&Holding>,
    newest_seen: i64,
    participant: &str,
    grant: &Grant,
) -> Decision {
    if grant.floor_session < newest_seen {
        return Decision::Refuse {
            current: newest_seen,
        };
    }
    match current {
        Some(h) if h.floor_session == grant.floor_session && h.participant == participant => {
            Decision::Renew
        }
        Some(h) => Decision::Start {
            ends: Some(h.clone()),
        },
        None => Decision::Start { ends: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(participant: &str, session: i64) -> Holding {
        Holding {
            participant: participant.into(),
            sub: format!("user:{participant}"),
            floor_session: session,
            exp: 100,
        }
    }

    fn grant(session: i64) -> Grant {
        Grant {
            sub: "user:b".into(),
            floor_session: session,
            exp: 200,
        }
    }

    #[test]
    fn a_newer_holding_supersedes_an_older_is_refused_the_same_renews() {
        let a = holding("a", 5);
        assert_eq!(
            decide(Some(&a), 5, "b", &grant(6)),
            Decision::Start {
                ends: Some(a.clone())
            }
        );
        assert_eq!(
            decide(None, 6, "a", &grant(5)),
            Decision::Refuse { current: 6 }
        );
        assert_eq!(decide(Some(&a), 5, "a", &grant(5)), Decision::Renew);
        assert_eq!(
            decide(None, 0, "a", &grant(1)),
            Decision::Start { ends: None }
        );
    }

    #[test]
    fn a_gate_opens_until_its_deadline_and_a_consult_rooms_never_closes() {
        let gate = AudioGate::new(true);
        assert!(!gate.is_open(1));
        gate.open_until(1_000);
        assert!(gate.is_open(999) && !gate.is_open(1_000));
        gate.close();
        assert!(!gate.is_open(0));
        assert!(AudioGate::new(false).is_open(i64::MAX - 1));
        assert!(is_push_to_talk("voice-0190") && !is_push_to_talk("room-0190"));
    }
}
