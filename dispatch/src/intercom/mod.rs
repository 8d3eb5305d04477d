//! Talk-down floor control (issue 7, DESIGN §3.3): **one talker per camera at a time.** A second
//! operator is refused with who holds the floor; a supervisor may take it over (the holder's
//! session ends and their console is told over the WebSocket); a holding ends on release, after
//! [`HOLD_SECS`] without renewal, or when the holder's login session ends (migration 0020).
//!
//! [`decide`] is the rule, plain data in and out; [`floor`] applies it to PostgreSQL, where a
//! partial unique index makes two replicas granting at once safe.

pub mod broadcast;
pub mod floor;
pub mod recording;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// How long a holding lasts without renewal (each press of the talk button renews it).
pub const HOLD_SECS: i64 = 120;

/// Who holds a camera's floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// The talk session's id.
    pub session_id: i64,
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub started_at: DateTime<Utc>,
}

/// Who asks for the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asker {
    pub user_id: Uuid,
    /// May take the floor from another talker.
    pub may_take_over: bool,
    /// Asked to take it over (`"takeover": true`).
    pub wants_take_over: bool,
}

/// What to do with a request for the floor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it: a new holding.
    Grant,
    /// The asker holds it already: extend that holding.
    Renew { session_id: i64 },
    /// Someone else holds it: refuse, naming them.
    Refuse(Holder),
    /// Someone else holds it and the asker is a supervisor who asked: end theirs, grant anew.
    TakeOver(Holder),
}

/// The floor rule. `holder` is the current, unexpired holder, if any.
pub fn decide(holder: Option<Holder>, asker: Asker) -> Decision {
    match holder {
        None => Decision::Grant,
        Some(h) if h.user_id == asker.user_id => Decision::Renew {
            session_id: h.session_id,
        },
        Some(h) if asker.may_take_over && asker.wants_take_over => Decision::TakeOver(h),
        Some(h) => Decision::Refuse(h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(user: Uuid) -> Holder {
        Holder {
            session_id: 7,
            user_id: user,
            username: "op-a".into(),
            display_name: "A".into(),
            started_at: DateTime::UNIX_EPOCH,
        }
    }

    fn asker(user: Uuid, may: bool, wants: bool) -> Asker {
        Asker {
            user_id: user,
            may_take_over: may,
            wants_take_over: wants,
        }
    }

    #[test]
    fn a_free_floor_is_granted_and_the_holder_renews_their_own() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(decide(None, asker(b, false, false)), Decision::Grant);
        assert_eq!(
            decide(Some(holder(a)), asker(a, false, true)),
            Decision::Renew { session_id: 7 }
        );
    }

    #[test]
    fn another_talker_is_refused_unless_a_supervisor_asks_to_take_over() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(
            decide(Some(holder(a)), asker(b, false, true)),
            Decision::Refuse(holder(a))
        );
        assert_eq!(
            decide(Some(holder(a)), asker(b, true, false)),
            Decision::Refuse(holder(a))
        );
        assert_eq!(
            decide(Some(holder(a)), asker(b, true, true)),
            Decision::TakeOver(holder(a))
        );
    }
}
