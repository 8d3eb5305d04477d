//! The WebSocket protocol: what the database announces ([`Change`]), what the server sends
//! ([`ServerMessage`]) and what a client may send ([`ClientMessage`]). JSON, tagged by `type`,
//! camelCase; every server message carries `"v": 1`. Who may receive or send each type is the
//! table `auth::policy::WS_MESSAGES`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The protocol version in every server message.
pub const VERSION: u8 = 1;

/// An incident row was inserted or updated (`op`: `insert` | `update`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentChange {
    pub op: String,
    pub id: Uuid,
    pub town_id: String,
    pub premises_id: Option<Uuid>,
    pub routed_team_id: Option<Uuid>,
    pub kind: String,
    pub tier: String,
    pub state: String,
    pub exercise: Option<String>,
    pub report_count: i64,
    /// The latest report's own time: event → WebSocket latency is measured from it.
    pub last_report_at: DateTime<Utc>,
    /// When the row changed (its transaction's start).
    pub updated_at: DateTime<Utc>,
}

/// A timeline entry was appended; it carries its incident's town, routed team and exercise at
/// that moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineChange {
    pub incident_id: Uuid,
    pub seq: i64,
    pub action: String,
    pub to_state: Option<String>,
    pub town_id: String,
    pub routed_team_id: Option<Uuid>,
    pub exercise: Option<String>,
    pub at: DateTime<Utc>,
}

/// An escalation step notified someone (`targetKind`: team | user | town | district).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationChange {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub target_kind: String,
    pub target_id: String,
    pub town_id: String,
    pub exercise: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An edge came online or went offline, or one of its cameras did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeChange {
    pub edge_id: String,
    pub premises_id: Uuid,
    pub town_id: String,
    pub online: bool,
    /// `null` when the list would not fit in one notification (read it by REST).
    pub cameras: Option<Vec<CameraOnline>>,
    /// The edge's own time of the report.
    pub reported_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CameraOnline {
    pub camera_id: String,
    pub online: bool,
}

/// A video wall's layout was set (migration 0013); clients read it by REST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WallChange {
    pub id: String,
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
}

/// A drill run changed (migration 0019): `what` is `run` (started, paused, resumed, ended, its
/// PDF ready), `inject` (one fired), `observation` or `improvement`; consoles reload the run by
/// REST. `towns` and `roles` are the run's participants: who may hear of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrillChange {
    pub run_id: Uuid,
    pub what: String,
    pub state: String,
    pub towns: Vec<String>,
    pub roles: Vec<String>,
    pub at: DateTime<Utc>,
}

/// A camera's talk floor was taken (`endedAt` null) or a holding ended (`endReason`: released,
/// timeout, logout, takeover — `endedBy` the supervisor who took it), migration 0020.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TalkChange {
    /// The talk session.
    pub id: i64,
    pub camera_id: String,
    pub town_id: String,
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    pub ended_by: Option<Uuid>,
}

/// A kitchen's delivery state in a group broadcast changed (migration 0022): `state` connecting,
/// playing, ended, or failed with `reason` (noSpeaker, offline, busy, edgeError).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastChange {
    pub broadcast_id: Uuid,
    pub camera_id: String,
    pub town_id: String,
    /// The broadcaster.
    pub user_id: Uuid,
    pub state: String,
    pub reason: Option<String>,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// A session row was deleted (logout, sweep); never sent to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEnded {
    /// Hex of the stored SHA-256 of the session id.
    pub id_hash: String,
}

/// One notification on the `bl_changes` channel (migration 0005).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Change {
    Incident(IncidentChange),
    Timeline(TimelineChange),
    Notification(NotificationChange),
    Edge(EdgeChange),
    Wall(WallChange),
    Drill(DrillChange),
    Talk(TalkChange),
    Broadcast(BroadcastChange),
    SessionEnded(SessionEnded),
}

/// What a client subscribes to; each topic carries one server message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Topic {
    Incidents,
    Timeline,
    Notifications,
    Edges,
    Walls,
    Drills,
    Talk,
    Broadcasts,
}

impl Topic {
    pub const ALL: [Topic; 8] = [
        Topic::Incidents,
        Topic::Timeline,
        Topic::Notifications,
        Topic::Edges,
        Topic::Walls,
        Topic::Drills,
        Topic::Talk,
        Topic::Broadcasts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Incidents => "incidents",
            Topic::Timeline => "timeline",
            Topic::Notifications => "notifications",
            Topic::Edges => "edges",
            Topic::Walls => "walls",
            Topic::Drills => "drills",
            Topic::Talk => "talk",
            Topic::Broadcasts => "broadcasts",
        }
    }

    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The server message type this topic carries (its row in `WS_MESSAGES`).
    pub fn message_kind(self) -> &'static str {
        match self {
            Topic::Incidents => "incident",
            Topic::Timeline => "timeline",
            Topic::Notifications => "notification",
            Topic::Edges => "edge",
            Topic::Walls => "wall",
            Topic::Drills => "drill",
            Topic::Talk => "talk",
            Topic::Broadcasts => "broadcast",
        }
    }
}

impl Change {
    /// The topic this change is published under; `None` for internal changes.
    pub fn topic(&self) -> Option<Topic> {
        match self {
            Change::Incident(_) => Some(Topic::Incidents),
            Change::Timeline(_) => Some(Topic::Timeline),
            Change::Notification(_) => Some(Topic::Notifications),
            Change::Edge(_) => Some(Topic::Edges),
            Change::Wall(_) => Some(Topic::Walls),
            Change::Drill(_) => Some(Topic::Drills),
            Change::Talk(_) => Some(Topic::Talk),
            Change::Broadcast(_) => Some(Topic::Broadcasts),
            Change::SessionEnded(_) => None,
        }
    }

    /// The message a client receives for this change; `None` for internal changes.
    pub fn to_message(&self) -> Option<ServerMessage> {
        Some(match self {
            Change::Incident(c) => ServerMessage::Incident(c.clone()),
            Change::Timeline(c) => ServerMessage::Timeline(c.clone()),
            Change::Notification(c) => ServerMessage::Notification(c.clone()),
            Change::Edge(c) => ServerMessage::Edge(c.clone()),
            Change::Wall(c) => ServerMessage::Wall(c.clone()),
            Change::Drill(c) => ServerMessage::Drill(c.clone()),
            Change::Talk(c) => ServerMessage::Talk(c.clone()),
            Change::Broadcast(c) => ServerMessage::Broadcast(c.clone()),
            Change::SessionEnded(_) => return None,
        })
    }
}

/// First message on every socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    pub user_id: Uuid,
    pub username: String,
    pub role: String,
    /// The topics this role may subscribe to.
    pub topics: Vec<Topic>,
    pub session_check_secs: u64,
    pub at: DateTime<Utc>,
}

/// The answer to `subscribe`: the topics now in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscribed {
    pub topics: Vec<Topic>,
    pub at: DateTime<Utc>,
}

/// Changes may have been missed (the change feed lost its database connection): reload by REST
/// what is on screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resync {
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pong {
    /// The `id` of the ping, echoed.
    pub id: Option<String>,
    pub at: DateTime<Utc>,
}

/// A client message that was refused; the socket stays open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorMessage {
    pub code: String,
    pub message: String,
}

/// Everything the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage {
    Hello(Hello),
    Subscribed(Subscribed),
    Incident(IncidentChange),
    Timeline(TimelineChange),
    Notification(NotificationChange),
    Edge(EdgeChange),
    Wall(WallChange),
    Drill(DrillChange),
    Talk(TalkChange),
    Broadcast(BroadcastChange),
    Resync(Resync),
    Pong(Pong),
    Error(ErrorMessage),
}

impl ServerMessage {
    /// Every type name, as in `WS_MESSAGES`.
    pub const KINDS: [&'static str; 13] = [
        "hello",
        "subscribed",
        "incident",
        "timeline",
        "notification",
        "edge",
        "wall",
        "drill",
        "talk",
        "broadcast",
        "resync",
        "pong",
        "error",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Hello(_) => "hello",
            ServerMessage::Subscribed(_) => "subscribed",
            ServerMessage::Incident(_) => "incident",
            ServerMessage::Timeline(_) => "timeline",
            ServerMessage::Notification(_) => "notification",
            ServerMessage::Edge(_) => "edge",
            ServerMessage::Wall(_) => "wall",
            ServerMessage::Drill(_) => "drill",
            ServerMessage::Talk(_) => "talk",
            ServerMessage::Broadcast(_) => "broadcast",
            ServerMessage::Resync(_) => "resync",
            ServerMessage::Pong(_) => "pong",
            ServerMessage::Error(_) => "error",
        }
    }

    pub fn error(code: &str, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error(ErrorMessage {
            code: code.to_owned(),
            message: message.into(),
        })
    }

    /// The JSON text sent, with `"v": 1`.
    pub fn to_text(&self) -> String {
        let mut value = serde_json::to_value(self).expect("server messages serialise");
        if let Some(object) = value.as_object_mut() {
            object.insert("v".into(), VERSION.into());
        }
        value.to_string()
    }
}

/// Everything a client may send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    /// Replaces the subscription with these topics (topic names, checked by the server).
    Subscribe { topics: Vec<String> },
    /// Answered with `pong` echoing `id`.
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
}

impl ClientMessage {
    /// Every type name, as in `WS_MESSAGES`.
    pub const KINDS: [&'static str; 2] = ["subscribe", "ping"];

    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Ping { .. } => "ping",
        }
    }
}

/// WebSocket close codes the server uses (4000-4999 are the application's own).
pub mod close {
    /// The server is shutting down; reconnect (another replica may answer).
    pub const GOING_AWAY: u16 = 1001;
    /// The session ended (logout, expiry, user disabled); log in again.
    pub const SESSION_ENDED: u16 = 4001;
    /// The client fell too far behind or did not accept a message in time; reconnect and reload.
    pub const TOO_SLOW: u16 = 4008;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn incident(town: &str, team: Option<Uuid>, exercise: Option<&str>) -> Change {
        let at: DateTime<Utc> = "2026-11-23T22:15:00Z".parse().unwrap();
        Change::Incident(IncidentChange {
            op: "insert".into(),
            id: Uuid::now_v7(),
            town_id: town.into(),
            premises_id: None,
            routed_team_id: team,
            kind: "rodent".into(),
            tier: "immediate".into(),
            state: "new".into(),
            exercise: exercise.map(str::to_owned),
            report_count: 1,
            last_report_at: at,
            updated_at: at,
        })
    }

    #[test]
    fn a_trigger_payload_parses_with_postgres_timestamps_and_nulls() {
        let text = r#"{"type" : "incident", "op" : "update", "id" : "0194e4a0-0000-7000-8000-000000000001", "townId" : "zhaitang", "premisesId" : null, "routedTeamId" : null, "kind" : "complaint", "tier" : "routine", "state" : "triaged", "exercise" : null, "reportCount" : 2, "lastReportAt" : "2026-11-24T06:15:30.123456+08:00", "updatedAt" : "2026-11-23T22:16:00.5+00:00"}"#;
        let Change::Incident(c) = serde_json::from_str::<Change>(text).unwrap() else {
            panic!("not an incident")
        };
        assert_eq!(c.state, "triaged");
        assert_eq!(
            c.last_report_at,
            "2026-11-23T22:15:30.123456Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
        );
        let edge = r#"{"type":"edge","edgeId":"e1","premisesId":"0194e4a0-0000-7000-8000-000000000002","townId":"zhaitang","online":true,"cameras":[{"cameraId":"c1","online":false}],"reportedAt":"2026-11-23T22:15:00+00:00","receivedAt":"2026-11-23T22:15:00.2+00:00"}"#;
        let Change::Edge(e) = serde_json::from_str::<Change>(edge).unwrap() else {
            panic!("not an edge")
        };
        assert_eq!(
            e.cameras,
            Some(vec![CameraOnline {
                camera_id: "c1".into(),
                online: false
            }])
        );
        let drill = r#"{"type" : "drill", "runId" : "0194e4a0-0000-7000-8000-000000000003", "what" : "inject", "state" : "running", "towns" : ["zhaitang"], "roles" : ["field"], "at" : "2026-11-23T22:15:00.1+00:00"}"#;
        let Change::Drill(d) = serde_json::from_str::<Change>(drill).unwrap() else {
            panic!("not a drill")
        };
        assert_eq!((d.what.as_str(), d.towns.len()), ("inject", 1));
    }

    #[test]
    fn server_messages_carry_their_type_and_version_and_round_trip() {
        let Some(message) = incident("zhaitang", None, None).to_message() else {
            panic!("incidents are sent")
        };
        let text = message.to_text();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "incident");
        assert_eq!(value["v"], 1);
        assert_eq!(value["lastReportAt"], "2026-11-23T22:15:00Z");
        assert_eq!(
            serde_json::from_str::<ServerMessage>(&text).unwrap(),
            message
        );
    }

    #[test]
    fn every_server_message_kind_is_its_serialised_type() {
        let at = Utc::now();
        let examples = [
            ServerMessage::Hello(Hello {
                user_id: Uuid::nil(),
                username: "u".into(),
                role: "operator".into(),
                topics: vec![Topic::Incidents],
                session_check_secs: 30,
                at,
            }),
            ServerMessage::Subscribed(Subscribed { topics: vec![], at }),
            incident("zhaitang", None, None).to_message().unwrap(),
            ServerMessage::Resync(Resync {
                reason: "r".into(),
                at,
            }),
            ServerMessage::Pong(Pong { id: None, at }),
            ServerMessage::error("bad_message", "m"),
        ];
        for m in examples {
            let value: serde_json::Value = serde_json::from_str(&m.to_text()).unwrap();
            assert_eq!(value["type"], m.kind());
            assert!(ServerMessage::KINDS.contains(&m.kind()));
        }
        for t in Topic::ALL {
            assert!(ServerMessage::KINDS.contains(&t.message_kind()));
            assert_eq!(Topic::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn client_messages_parse_and_unknown_types_do_not() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","v":1,"topics":["incidents","edges"]}"#)
                .unwrap();
        assert_eq!(m.kind(), "subscribe");
        let m: ClientMessage = serde_json::from_str(r#"{"type":"ping","id":"7"}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Ping {
                id: Some("7".into())
            }
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"shutdown"}"#).is_err());
    }
}
