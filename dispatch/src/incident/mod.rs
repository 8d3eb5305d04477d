//! Incidents (DESIGN.md §4): the state machine ([`state`]), tiers and cooldown ([`policy`]) and
//! suggested severity ([`severity`]), all plain logic; and the rows ([`store`]): incidents, the
//! append-only timeline, linked edge events, labelled false positives. Reports become incidents through
//! [`crate::intake::incident`], the one door.

pub mod note;
pub mod policy;
pub mod severity;
pub mod state;
pub mod store;

use crate::auth::{Caller, Role};
use uuid::Uuid;

/// An incident's id.
pub type IncidentId = Uuid;

/// Who did something to an incident, as the timeline records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// dispatch itself (routing, dedup).
    System,
    /// An edge box that reported.
    Edge(String),
    /// A logged-in user.
    User {
        id: Uuid,
        username: String,
        role: Role,
    },
}

impl Actor {
    pub fn of(caller: &Caller) -> Actor {
        Actor::User {
            id: caller.user_id,
            username: caller.username.clone(),
            role: caller.role,
        }
    }

    /// The timeline's `actor` text: a user name, `edge:<id>` or `system`.
    pub fn name(&self) -> String {
        match self {
            Actor::System => "system".into(),
            Actor::Edge(id) => format!("edge:{id}"),
            Actor::User { username, .. } => username.clone(),
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Actor::User { id, .. } => Some(*id),
            _ => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Actor::User { role, .. } => Some(*role),
            _ => None,
        }
    }
}
