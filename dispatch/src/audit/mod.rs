//! The audit log (DESIGN.md §6): an append-only, hash-chained record of who viewed, exported,
//! talked or changed what — logins, sessions, users, premises, incidents, live and talk tokens,
//! the gateways' source fetches, and audit queries themselves.
//!
//! **An append runs in the transaction of the change it records and is its last statement: it takes
//! a transaction-scoped advisory lock, so appends of every replica form one linear chain, and the
//! record commits with the change or not at all.**
//!
//! [`chain`] (encoding, hash, check) and [`canonical`] are plain; [`store`] holds the rows;
//! [`verify`] walks the stored chain; [`Audit`] is the extractor handlers record through.

pub mod canonical;
pub mod chain;
pub mod store;
pub mod verify;

use crate::AppState;
use crate::auth::{Caller, Role, service::ServiceCaller};
use crate::error::Result;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use serde_json::Value;
use sqlx::{Postgres, Transaction};
use std::convert::Infallible;
use std::net::SocketAddr;
use uuid::Uuid;

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    User {
        id: Uuid,
        name: String,
        role: Role,
    },
    /// A service: `gateway:<node>` or `edge:<id>`.
    Service(String),
    /// Someone not logged in; the name they tried, if any.
    Anonymous(String),
    /// dispatch itself.
    System,
}

impl Who {
    pub fn of(caller: &Caller) -> Who {
        Who::User {
            id: caller.user_id,
            name: caller.username.clone(),
            role: caller.role,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Who::User { .. } => "user",
            Who::Service(_) => "service",
            Who::Anonymous(_) => "anonymous",
            Who::System => "system",
        }
    }
}

/// What was done; the stored names are stable (filters and reports use them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    LoginFailed,
    LockedOut,
    Logout,
    TotpSetup,
    TotpEnabled,
    UserCreate,
    PremisesCreate,
    PremisesImport,
    IncidentView,
    IncidentCreate,
    IncidentAttach,
    IncidentTransition,
    CameraLive,
    CameraTalk,
    CameraSource,
    EvidenceView,
    AuditQuery,
    EdgeCreate,
    EdgeCode,
    EdgeEnrol,
    WallSet,
    // admin screens
    CameraCreate,
    CameraUpdate,
    CameraDelete,
    UserUpdate,
    TeamCreate,
    TeamUpdate,
    TeamRoster,
    EscalationPolicySet,
    EscalationPolicyReset,
    // drills
    DrillStart,
    DrillPause,
    DrillResume,
    DrillEnd,
    DrillObserve,
    DrillImprovementAdd,
    DrillImprovementState,
    // the dashboard's statistics
    StatsExport,
    // talk-down floor control
    TalkStart,
    TalkEnd,
    TalkTakeover,
    // group broadcast
    BroadcastStart,
    BroadcastEnd,
    // consult rooms and incident voice channels (push-to-talk)
    RoomOpen,
    RoomClose,
    RoomJoin,
    RoomInvite,
    RoomShare,
    RoomClip,
    RoomRecord,
    VoiceTalk,
    VoiceRelease,
    // the automatic voice warning's admin
    VoiceMessageSet,
    VoiceMessageDelete,
    WarningRulesSet,
    // a talk or broadcast recording reported by a gateway
    VoiceRecorded,
}

impl Action {
    pub const ALL: [Action; 57] = [
        Action::Login,
        Action::LoginFailed,
        Action::LockedOut,
        Action::Logout,
        Action::TotpSetup,
        Action::TotpEnabled,
        Action::UserCreate,
        Action::PremisesCreate,
        Action::PremisesImport,
        Action::IncidentView,
        Action::IncidentCreate,
        Action::IncidentAttach,
        Action::IncidentTransition,
        Action::CameraLive,
        Action::CameraTalk,
        Action::CameraSource,
        Action::EvidenceView,
        Action::AuditQuery,
        Action::EdgeCreate,
        Action::EdgeCode,
        Action::EdgeEnrol,
        Action::WallSet,
        Action::CameraCreate,
        Action::CameraUpdate,
        Action::CameraDelete,
        Action::UserUpdate,
        Action::TeamCreate,
        Action::TeamUpdate,
        Action::TeamRoster,
        Action::EscalationPolicySet,
        Action::EscalationPolicyReset,
        Action::DrillStart,
        Action::DrillPause,
        Action::DrillResume,
        Action::DrillEnd,
        Action::DrillObserve,
        Action::DrillImprovementAdd,
        Action::DrillImprovementState,
        Action::StatsExport,
        Action::TalkStart,
        Action::TalkEnd,
        Action::TalkTakeover,
        Action::BroadcastStart,
        Action::BroadcastEnd,
        Action::RoomOpen,
        Action::RoomClose,
        Action::RoomJoin,
        Action::RoomInvite,
        Action::RoomShare,
        Action::RoomClip,
        Action::RoomRecord,
        Action::VoiceTalk,
        Action::VoiceRelease,
        Action::VoiceMessageSet,
        Action::VoiceMessageDelete,
        Action::WarningRulesSet,
        Action::VoiceRecorded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "session.login",
            Action::LoginFailed => "session.loginFailed",
            Action::LockedOut => "session.lockedOut",
            Action::Logout => "session.logout",
            Action::TotpSetup => "session.totpSetup",
            Action::TotpEnabled => "session.totpEnabled",
            Action::UserCreate => "user.create",
            Action::PremisesCreate => "premises.create",
            Action::PremisesImport => "premises.import",
            Action::IncidentView => "incident.view",
            Action::IncidentCreate => "incident.create",
            Action::IncidentAttach => "incident.attach",
            Action::IncidentTransition => "incident.transition",
            Action::CameraLive => "camera.live",
            Action::CameraTalk => "camera.talk",
            Action::CameraSource => "camera.source",
            Action::EvidenceView => "evidence.view",
            Action::AuditQuery => "audit.query",
            Action::EdgeCreate => "edge.create",
            Action::EdgeCode => "edge.enrolmentCode",
            Action::EdgeEnrol => "edge.enrol",
            Action::WallSet => "wall.set",
            Action::CameraCreate => "camera.create",
            Action::CameraUpdate => "camera.update",
            Action::CameraDelete => "camera.delete",
            Action::UserUpdate => "user.update",
            Action::TeamCreate => "team.create",
            Action::TeamUpdate => "team.update",
            Action::TeamRoster => "team.roster",
            Action::EscalationPolicySet => "escalation.policySet",
            Action::EscalationPolicyReset => "escalation.policyReset",
            Action::DrillStart => "drill.start",
            Action::DrillPause => "drill.pause",
            Action::DrillResume => "drill.resume",
            Action::DrillEnd => "drill.end",
            Action::DrillObserve => "drill.observe",
            Action::DrillImprovementAdd => "drill.improvementAdd",
            Action::DrillImprovementState => "drill.improvementState",
            Action::StatsExport => "stats.export",
            Action::TalkStart => "talk.start",
            Action::TalkEnd => "talk.end",
            Action::TalkTakeover => "talk.takeover",
            Action::BroadcastStart => "broadcast.start",
            Action::BroadcastEnd => "broadcast.end",
            Action::RoomOpen => "room.open",
            Action::RoomClose => "room.close",
            Action::RoomJoin => "room.join",
            Action::RoomInvite => "room.invite",
            Action::RoomShare => "room.share",
            Action::RoomClip => "room.clip",
            Action::RoomRecord => "room.record",
            Action::VoiceTalk => "voice.talk",
            Action::VoiceRelease => "voice.release",
            Action::VoiceMessageSet => "voiceMessage.set",
            Action::VoiceMessageDelete => "voiceMessage.delete",
            Action::WarningRulesSet => "warningRules.set",
            Action::VoiceRecorded => "voice.recorded",
        }
    }
}

/// One thing to record: the action, its object and town, and details (no secrets, no fractions).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub action: Action,
    pub object: Option<(&'static str, String)>,
    pub town: Option<String>,
    pub details: Value,
}

impl Event {
    pub fn new(action: Action) -> Self {
        Self {
            action,
            object: None,
            town: None,
            details: Value::Object(Default::default()),
        }
    }

    /// The object acted on: its type (`incident`, `camera`, `user`, …) and id.
    pub fn object(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.object = Some((kind, id.to_string()));
        self
    }

    pub fn town(mut self, town: impl Into<String>) -> Self {
        self.town = Some(town.into());
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// Who is asking and from where; extracted from every request (the policy middleware has put the
/// user or service there), so that each audited handler records with one call.
#[derive(Debug, Clone)]
pub struct Audit {
    pub who: Who,
    pub client: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Audit {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let who = if let Some(caller) = parts.extensions.get::<Caller>() {
            Who::of(caller)
        } else if let Some(service) = parts.extensions.get::<ServiceCaller>() {
            Who::Service(service.name())
        } else {
            Who::Anonymous(String::new())
        };
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        Ok(Audit { who, client })
    }
}

impl Audit {
    /// The same request, recorded as done by `who` (a login names its user once it succeeds).
    pub fn by(&self, who: Who) -> Audit {
        Audit {
            who,
            client: self.client.clone(),
        }
    }

    /// Appends `event` in `tx`, the transaction of the change it records; call it last, just
    /// before commit (it holds the chain's lock until the transaction ends).
    pub async fn append(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        app: &AppState,
        event: Event,
    ) -> Result<()> {
        store::append(tx, &self.who, self.client.as_deref(), app.now(), &event).await?;
        Ok(())
    }

    /// Records `event` in a transaction of its own (views, token issues: nothing else changes).
    pub async fn record(&self, app: &AppState, event: Event) -> Result<()> {
        let mut tx = app.pool.begin().await?;
        self.append(&mut tx, app, event).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_distinct_and_dotted() {
        for (i, a) in Action::ALL.iter().enumerate() {
            assert!(a.as_str().contains('.'), "{a:?}");
            assert!(
                !Action::ALL[i + 1..]
                    .iter()
                    .any(|b| b.as_str() == a.as_str()),
                "{a:?}"
            );
        }
    }
}
