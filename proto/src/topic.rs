//! The MQTT topic tree of DESIGN §3.1: `bl/v1/edge/{edge}/state|events|cmd|cmd/result|config`.
//!
//! Topics are built only from a validated [`EdgeId`], and parsed as untrusted input: a topic that arrives
//! from the broker is data, and `bl/v1/edge/../state` or `bl/v1/edge/+/events` must not become an edge.

use std::fmt;

use crate::id::{EdgeId, IdError};

/// Every Brightline topic starts with this; the version segment moves with the payload version.
pub const PREFIX: &str = "bl/v1/edge/";

/// dispatch replicas share the event stream (each event goes to one replica).
pub const EVENTS_SHARED_FILTER: &str = "$share/dispatch/bl/v1/edge/+/events";

/// Every edge's events, unshared (tools, tests and monitors that want to see all of them).
pub const EVENTS_FILTER: &str = "bl/v1/edge/+/events";

/// Every edge's retained state.
pub const STATE_FILTER: &str = "bl/v1/edge/+/state";

/// Every edge's command results.
pub const CMD_RESULT_FILTER: &str = "bl/v1/edge/+/cmd/result";

/// QoS of every Brightline topic: at least once, made idempotent by ids (`eventId`, `cmdId`, `revision`).
pub const QOS: u8 = 1;

/// A concrete topic under one edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `bl/v1/edge/{edge}/state`: edge → center, retained [`crate::state::EdgeState`].
    EdgeState(EdgeId),
    /// `bl/v1/edge/{edge}/events`: edge → center [`crate::event::EdgeEvent`]s.
    EdgeEvents(EdgeId),
    /// `bl/v1/edge/{edge}/cmd`: center → edge [`crate::command::Command`]s.
    EdgeCmd(EdgeId),
    /// `bl/v1/edge/{edge}/cmd/result`: edge → center [`crate::command::CommandResult`]s.
    EdgeCmdResult(EdgeId),
    /// `bl/v1/edge/{edge}/config`: center → edge, retained desired [`crate::config::EdgeConfig`].
    EdgeConfig(EdgeId),
}

/// Why a topic string is not a Brightline topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Does not start with `bl/v1/edge/` (or is empty).
    #[error("topic {topic:?} does not start with {PREFIX:?}")]
    WrongPrefix {
        /// The rejected topic (cut to 80 characters).
        topic: String,
    },
    /// The `{edge}` segment is not a valid edge id (this includes `+`, `#` and `..`).
    #[error("topic has a bad edge segment: {0}")]
    BadEdgeId(#[from] IdError),
    /// The part after the edge is not one of `state`, `events`, `cmd`, `cmd/result`, `config`.
    #[error("topic suffix {suffix:?} is not one of state, events, cmd, cmd/result, config")]
    UnknownSuffix {
        /// The rejected suffix (cut to 80 characters).
        suffix: String,
    },
}

fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

impl Topic {
    /// Parses a topic received from the broker. Wildcards, empty or extra segments and bad ids fail.
    pub fn parse(topic: &str) -> Result<Topic, TopicError> {
        let rest = topic
            .strip_prefix(PREFIX)
            .ok_or_else(|| TopicError::WrongPrefix { topic: cut(topic) })?;
        // No suffix at all ("bl/v1/edge/e1") is an unknown (empty) suffix, reported after the id.
        let (edge, suffix) = rest.split_once('/').unwrap_or((rest, ""));
        let edge = EdgeId::new(edge)?;
        Ok(match suffix {
            "state" => Topic::EdgeState(edge),
            "events" => Topic::EdgeEvents(edge),
            "cmd" => Topic::EdgeCmd(edge),
            "cmd/result" => Topic::EdgeCmdResult(edge),
            "config" => Topic::EdgeConfig(edge),
            other => {
                return Err(TopicError::UnknownSuffix { suffix: cut(other) });
            }
        })
    }

    /// The edge this topic belongs to.
    pub fn edge(&self) -> &EdgeId {
        match self {
            Topic::EdgeState(e)
            | Topic::EdgeEvents(e)
            | Topic::EdgeCmd(e)
            | Topic::EdgeCmdResult(e)
            | Topic::EdgeConfig(e) => e,
        }
    }

    /// The part after `bl/v1/edge/{edge}/`.
    pub fn suffix(&self) -> &'static str {
        match self {
            Topic::EdgeState(_) => "state",
            Topic::EdgeEvents(_) => "events",
            Topic::EdgeCmd(_) => "cmd",
            Topic::EdgeCmdResult(_) => "cmd/result",
            Topic::EdgeConfig(_) => "config",
        }
    }

    /// MQTT QoS to publish and subscribe with: 1 everywhere.
    pub fn qos(&self) -> u8 {
        QOS
    }

    /// Whether publishes are retained: state (last known health, and the will) and config (desired
    /// state the edge must find when it reconnects) are; events and commands are not, as a replayed
    /// command or event would act twice.
    pub fn retained(&self) -> bool {
        matches!(self, Topic::EdgeState(_) | Topic::EdgeConfig(_))
    }

    /// The `"type"` values of payloads that belong on this topic.
    pub fn payload_types(&self) -> &'static [&'static str] {
        use crate::decode::Message;
        match self {
            Topic::EdgeState(_) => crate::state::EdgeState::TYPES,
            Topic::EdgeEvents(_) => crate::event::EdgeEvent::TYPES,
            Topic::EdgeCmd(_) => crate::command::Command::TYPES,
            Topic::EdgeCmdResult(_) => crate::command::CommandResult::TYPES,
            Topic::EdgeConfig(_) => crate::config::EdgeConfig::TYPES,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}/{}", self.edge(), self.suffix())
    }
}

/// The topics an edge subscribes to: its own commands and its own desired config.
pub fn edge_subscriptions(edge: &EdgeId) -> [Topic; 2] {
    [
        Topic::EdgeCmd(edge.clone()),
        Topic::EdgeConfig(edge.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(s: &str) -> EdgeId {
        EdgeId::new(s).unwrap()
    }

    #[test]
    fn every_topic_builds_and_parses_back_to_itself() {
        let e = edge("mtg-school-03");
        for t in [
            Topic::EdgeState(e.clone()),
            Topic::EdgeEvents(e.clone()),
            Topic::EdgeCmd(e.clone()),
            Topic::EdgeCmdResult(e.clone()),
            Topic::EdgeConfig(e.clone()),
        ] {
            let s = t.to_string();
            assert_eq!(Topic::parse(&s).unwrap(), t, "{s}");
        }
        assert_eq!(
            Topic::EdgeCmdResult(e).to_string(),
            "bl/v1/edge/mtg-school-03/cmd/result"
        );
    }

    #[test]
    fn only_state_and_config_are_retained_and_everything_is_qos_1() {
        let e = edge("e1");
        assert!(Topic::EdgeState(e.clone()).retained());
        assert!(Topic::EdgeConfig(e.clone()).retained());
        assert!(!Topic::EdgeEvents(e.clone()).retained());
        assert!(!Topic::EdgeCmd(e.clone()).retained());
        assert!(!Topic::EdgeCmdResult(e.clone()).retained());
        assert_eq!(Topic::EdgeEvents(e).qos(), 1);
    }

    #[test]
    fn an_edge_subscribes_to_its_own_cmd_and_config_only() {
        let subs = edge_subscriptions(&edge("e1")).map(|t| t.to_string());
        assert_eq!(subs, ["bl/v1/edge/e1/cmd", "bl/v1/edge/e1/config"]);
    }

    #[test]
    fn hostile_topics_are_rejected_with_the_reason() {
        let cases: &[(&str, &str)] = &[
            ("bl/v1/edge/+/events", "'+' at position 0"),
            ("bl/v1/edge/#", "'#' at position 0"),
            ("bl/v1/edge/../state", "'.' at position 0"),
            ("bl/v1/edge/A/events", "'A' at position 0"),
            ("bl/v1/edge//events", "it is empty"),
            ("bl/v1/edge/e1/events/extra", "suffix \"events/extra\""),
            ("bl/v1/edge/e1/cmd/result/x", "suffix \"cmd/result/x\""),
            ("bl/v1/edge/e1/", "suffix \"\""),
            ("bl/v1/edge/e1", "suffix \"\""),
            ("bl/v1/edge/e1/State", "suffix \"State\""),
            ("", "does not start with"),
            ("bl/v2/edge/e1/state", "does not start with"),
            ("/bl/v1/edge/e1/state", "does not start with"),
            (
                "$share/dispatch/bl/v1/edge/e1/events",
                "does not start with",
            ),
        ];
        for (topic, why) in cases {
            let err = Topic::parse(topic).unwrap_err().to_string();
            assert!(err.contains(why), "{topic:?}: {err}");
        }
    }

    #[test]
    fn the_subscription_filters_match_the_topic_layout() {
        let e = edge("e1");
        let events = Topic::EdgeEvents(e.clone()).to_string();
        assert_eq!(EVENTS_FILTER.replace('+', "e1"), events);
        assert_eq!(
            EVENTS_SHARED_FILTER,
            format!("$share/dispatch/{EVENTS_FILTER}")
        );
        assert_eq!(
            STATE_FILTER.replace('+', "e1"),
            Topic::EdgeState(e.clone()).to_string()
        );
        assert_eq!(
            CMD_RESULT_FILTER.replace('+', "e1"),
            Topic::EdgeCmdResult(e).to_string()
        );
    }
}
