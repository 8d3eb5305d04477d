//! Edge reports: the checks a message from the broker must pass (plain logic, tested without I/O)
//! and the idempotent writes.

use super::incident::{self, EdgeLink, Outcome, Report, Source};
use crate::clocks::ClocksConfig;
use crate::escalation::EscalationConfig;
use crate::incident::Actor;
use crate::incident::policy::{IncidentsConfig, violation_kind};
use crate::incident::store::{self, Entry};
use bl_proto::event::{CameraEventKind, EpisodePhase};
use bl_proto::event::{DetectionEvent, EdgeEvent};
use bl_proto::state::EdgeState;
use bl_proto::topic::Topic;
use bl_proto::{DecodeError, EdgeId};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A message from an edge, checked: it parsed, and it speaks for the edge whose topic it came on.
/// (One lives at a time, on the consumer's stack: its size does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum EdgeReport {
    Event(EdgeEvent),
    State(EdgeState),
}

/// Why a message was dropped. Each is counted and logged (without the payload) and never retried:
/// resending the same bytes would fail the same way.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error("topic is not an edge report topic: {0}")]
    Topic(String),
    #[error("payload does not decode: {0}")]
    Payload(#[from] DecodeError),
    #[error("payload speaks for edge {claimed} but came on edge {topic}'s topic")]
    WrongEdge { topic: EdgeId, claimed: EdgeId },
    #[error("edge {edge} or camera {camera} is not registered (or the camera is not the edge's)")]
    Unregistered { edge: EdgeId, camera: String },
    #[error("edge {0} is not registered")]
    UnknownEdge(EdgeId),
    /// PostgreSQL refused the values themselves (e.g. a string it cannot store): a data error.
    #[error("PostgreSQL cannot store it: {0}")]
    Unstorable(String),
}

impl Rejected {
    /// A short, stable label for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejected::Topic(_) => "topic",
            Rejected::Payload(_) => "payload",
            Rejected::WrongEdge { .. } => "wrong_edge",
            Rejected::Unregistered { .. } | Rejected::UnknownEdge(_) => "unregistered",
            Rejected::Unstorable(_) => "unstorable",
        }
    }
}

/// Parses a message from the broker. The topic and the bytes are untrusted.
pub fn parse(topic: &str, payload: &[u8]) -> Result<EdgeReport, Rejected> {
    let topic = Topic::parse(topic).map_err(|e| Rejected::Topic(e.to_string()))?;
    let (report, claimed) = match &topic {
        Topic::EdgeEvents(_) => {
            let event: EdgeEvent = bl_proto::decode(payload)?;
            let claimed = event.edge_id().clone();
            (EdgeReport::Event(event), claimed)
        }
        Topic::EdgeState(_) => {
            let state: EdgeState = bl_proto::decode(payload)?;
            let claimed = state.edge_id.clone();
            (EdgeReport::State(state), claimed)
        }
        other => return Err(Rejected::Topic(format!("{other} is not an edge report"))),
    };
    if &claimed != topic.edge() {
        return Err(Rejected::WrongEdge {
            topic: topic.edge().clone(),
            claimed,
        });
    }
    Ok(report)
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new event, or a newer state.
    New,
    /// Seen before (a resend), or an older state than the one stored: nothing changed.
    AlreadyKnown,
}

/// Writes a report idempotently. `Ok` means it is committed (or was already); an `Err` of
/// `Rejected` means it can never be stored; a database error means "try again later".
///
/// A new event is stored and handed to the incident intake ([`to_incident`]) in one transaction:
/// either the event and its incident are both committed, or neither is and the broker delivers the
/// event again.
pub async fn record(
    pool: &PgPool,
    incidents: &IncidentsConfig,
    escalation: &EscalationConfig,
    clocks: &ClocksConfig,
    report: &EdgeReport,
) -> Result<Result<Stored, Rejected>, sqlx::Error> {
    let result = match report {
        EdgeReport::Event(event) => record_event(pool, incidents, escalation, clocks, event).await,
        EdgeReport::State(state) => upsert_state(pool, state).await,
    };
    match result {
        Ok(stored) => Ok(Ok(stored)),
        // The edge is unknown (foreign key, 23503) or the camera is not this edge's (the join gave
        // NULL, 23502): no retry will change that.
        Err(Failed::Unregistered) => Ok(Err(match report {
            EdgeReport::Event(event) => Rejected::Unregistered {
                edge: event.edge_id().clone(),
                camera: event.camera_id().to_string(),
            },
            EdgeReport::State(state) => Rejected::UnknownEdge(state.edge_id.clone()),
        })),
        Err(Failed::Db(e)) => Err(e),
    }
}

/// Why a write failed: the report names what is not registered, or the database failed.
enum Failed {
    Unregistered,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for Failed {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d)
                if matches!(d.code().as_deref(), Some("23503") | Some("23502")) =>
            {
                Failed::Unregistered
            }
            _ => Failed::Db(e),
        }
    }
}

async fn record_event(
    pool: &PgPool,
    incidents: &IncidentsConfig,
    escalation: &EscalationConfig,
    clocks: &ClocksConfig,
    event: &EdgeEvent,
) -> Result<Stored, Failed> {
    let mut tx = pool.begin().await.map_err(Failed::Db)?;
    let stored = insert_event(&mut tx, event).await?;
    if stored == Stored::New {
        let outcome = to_incident(&mut tx, incidents, escalation, clocks, event, Utc::now())
            .await
            .map_err(Failed::Db)?;
        if let Some(Outcome::Opened(id)) = outcome {
            audit_opened(&mut tx, event, id).await.map_err(Failed::Db)?;
        }
    }
    tx.commit().await.map_err(Failed::Db)?;
    Ok(stored)
}

/// Records an incident an edge's report opened, last in the report's transaction.
pub(crate) async fn audit_opened(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    event: &EdgeEvent,
    incident: Uuid,
) -> Result<(), sqlx::Error> {
    use crate::audit::{Action, Event, Who};
    let town: String = sqlx::query_scalar("SELECT town_id FROM incidents WHERE id = $1")
        .bind(incident)
        .fetch_one(&mut **tx)
        .await?;
    let details =
        serde_json::json!({"eventId": event.event_id(), "cameraId": event.camera_id().as_str()});
    let opened = Event::new(Action::IncidentCreate)
        .object("incident", incident)
        .town(town);
    let who = Who::Service(format!("edge:{}", event.edge_id()));
    crate::audit::store::append(tx, &who, None, Utc::now(), &opened.details(details)).await?;
    Ok(())
}

async fn insert_event(conn: &mut PgConnection, event: &EdgeEvent) -> Result<Stored, Failed> {
    let (ty, kind, episode, phase, at) = match event {
        EdgeEvent::Detection(d) => (
            "detection",
            json_str(&d.kind),
            Some(d.episode_id),
            Some(json_str(&d.phase)),
            d.at,
        ),
        EdgeEvent::Camera(c) => ("camera", json_str(&c.kind), None, None, c.at),
        EdgeEvent::Warning(w) => ("warning", json_str(&w.kind), Some(w.episode_id), None, w.at),
    };
    // The camera must belong to the edge that reports it; the join makes a foreign camera look
    // unregistered instead of silently attaching it to the wrong premises.
    let inserted = sqlx::query(
        "INSERT INTO edge_events
             (event_id, edge_id, camera_id, type, kind, episode_id, phase, at, exercise, payload)
         SELECT $1, $2, c.id, $4, $5, $6, $7, $8, $9, $10
           FROM (SELECT $3::text AS id) wanted
           LEFT JOIN cameras c ON c.id = wanted.id AND c.edge_id = $2
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event.event_id())
    .bind(event.edge_id().as_str())
    .bind(event.camera_id().as_str())
    .bind(ty)
    .bind(kind)
    .bind(episode)
    .bind(phase)
    .bind(at)
    .bind(event.exercise())
    .bind(sqlx::types::Json(event))
    .execute(conn)
    .await?;
    Ok(if inserted.rows_affected() == 1 {
        Stored::New
    } else {
        Stored::AlreadyKnown
    })
}

async fn upsert_state(pool: &PgPool, state: &EdgeState) -> Result<Stored, Failed> {
    let r = sqlx::query(
        "INSERT INTO edge_status (edge_id, online, state, reported_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (edge_id) DO UPDATE
            SET online = EXCLUDED.online, state = EXCLUDED.state,
                reported_at = EXCLUDED.reported_at, received_at = now()
          WHERE edge_status.reported_at <= EXCLUDED.reported_at",
    )
    .bind(state.edge_id.as_str())
    .bind(state.online)
    .bind(sqlx::types::Json(state))
    .bind(state.at)
    .execute(pool)
    .await?;
    Ok(if r.rows_affected() == 1 {
        Stored::New
    } else {
        Stored::AlreadyKnown
    })
}

/// Hands a newly stored edge event to the incident intake: a detection episode's `start` opens or
/// joins an incident, its `update`s and `end` join the incident of their episode (an `end` closes
/// the episode; an `update` or `end` of an unknown episode is taken as its start). Camera faults
/// open routine incidents (`offline`/`frozen` → `cameraOffline`, `covered`/`sceneChanged` →
/// `cameraTampered`) unless `incidents.camera_incidents` is off; `online` is noted on the open
/// `cameraOffline` incident of the premises, if any, and otherwise only stored. A voice warning's
/// outcome goes on its episode's incident ([`super::warning`]).
pub async fn to_incident(
    conn: &mut PgConnection,
    config: &IncidentsConfig,
    escalation: &EscalationConfig,
    clocks: &ClocksConfig,
    event: &EdgeEvent,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>, sqlx::Error> {
    let premises: Uuid = sqlx::query_scalar("SELECT premises_id FROM cameras WHERE id = $1")
        .bind(event.camera_id().as_str())
        .fetch_one(&mut *conn)
        .await?;
    let exercise = event.exercise().map(str::to_owned);
    let edge = Actor::Edge(event.edge_id().to_string());
    let (kind, at, description) = match event {
        EdgeEvent::Detection(d) => {
            let kind = violation_kind(d.kind);
            incident::lock(conn, premises, kind, d.exercise.as_deref()).await?;
            let ends = d.phase == EpisodePhase::End;
            if let Some(id) = continue_episode(conn, d.episode_id, d.event_id, d.at, ends).await? {
                return Ok(Some(Outcome::Attached(id)));
            }
            let report = detection_report(d, premises, now);
            let outcome =
                report_to_incident(conn, config, escalation, clocks, event, &report).await?;
            if let Some(Outcome::Opened(id) | Outcome::Attached(id)) = outcome {
                super::warning::catch_up(conn, d.episode_id, id).await?;
            }
            return Ok(outcome);
        }
        EdgeEvent::Warning(w) => return super::warning::to_incident(conn, w).await,
        EdgeEvent::Camera(_) if !config.camera_incidents => return Ok(None),
        EdgeEvent::Camera(c) => {
            let kind = match c.kind {
                CameraEventKind::Offline | CameraEventKind::Frozen => "cameraOffline",
                CameraEventKind::Covered | CameraEventKind::SceneChanged => "cameraTampered",
                CameraEventKind::Online => {
                    return back_online(conn, premises, event, &edge, now).await;
                }
            };
            let what = json_str(&c.kind);
            let detail = c
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            (kind, c.at, format!("camera {} {what}{detail}", c.camera_id))
        }
    };
    let report = Report {
        source: Source::Camera,
        premises: Some(premises),
        town: None,
        address: String::new(),
        kind: kind.to_owned(),
        at,
        received_at: now,
        exercise,
        description,
        case_count: None,
        deaths: None,
        setting: None,
        reporter: edge,
        edge: Some(EdgeLink {
            event_id: event.event_id(),
            camera_id: event.camera_id().to_string(),
            episode: None,
        }),
    };
    report_to_incident(conn, config, escalation, clocks, event, &report).await
}

/// The report a detection makes about its camera's premises, received `now`.
pub(crate) fn detection_report(d: &DetectionEvent, premises: Uuid, now: DateTime<Utc>) -> Report {
    let kind = violation_kind(d.kind);
    Report {
        source: Source::Detection,
        premises: Some(premises),
        town: None,
        address: String::new(),
        kind: kind.to_owned(),
        at: d.at,
        received_at: now,
        exercise: d.exercise.clone(),
        description: format!(
            "{kind} seen by camera {} (confidence {:.2}, model {} {})",
            d.camera_id, d.confidence, d.model.name, d.model.version
        ),
        case_count: None,
        deaths: None,
        setting: None,
        reporter: Actor::Edge(d.edge_id.to_string()),
        edge: Some(EdgeLink {
            event_id: d.event_id,
            camera_id: d.camera_id.to_string(),
            episode: Some((d.episode_id, d.phase == EpisodePhase::End)),
        }),
    }
}

async fn report_to_incident(
    conn: &mut PgConnection,
    config: &IncidentsConfig,
    escalation: &EscalationConfig,
    clocks: &ClocksConfig,
    event: &EdgeEvent,
    report: &Report,
) -> Result<Option<Outcome>, sqlx::Error> {
    match incident::incident(conn, config, escalation, clocks, report).await {
        Ok(outcome) => Ok(Some(outcome)),
        Err(incident::IntakeError::Db(e)) => Err(e),
        // Cannot happen for a stored event (its camera and premises exist, its kind is known);
        // if it does, the event stays stored and the error is logged.
        Err(e) => {
            tracing::error!(event = %event.event_id(), err = %e, "edge event did not become an incident");
            Ok(None)
        }
    }
}

/// Joins a later event of a known episode to the episode's incident.
async fn continue_episode(
    conn: &mut PgConnection,
    episode: Uuid,
    event: Uuid,
    at: DateTime<Utc>,
    ends: bool,
) -> Result<Option<Uuid>, sqlx::Error> {
    let found: Option<Uuid> = sqlx::query_scalar(
        "UPDATE incident_episodes SET ended_at = CASE WHEN $2 THEN COALESCE(ended_at, $3) ELSE ended_at END          WHERE episode_id = $1 RETURNING incident_id",
    )
    .bind(episode)
    .bind(ends)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = found else { return Ok(None) };
    incident::link_event(conn, id, event).await?;
    sqlx::query(
        "UPDATE incidents SET last_report_at = greatest(last_report_at, $2), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(Some(id))
}

/// Notes a camera's return on the open `cameraOffline` incident of its premises, if any.
async fn back_online(
    conn: &mut PgConnection,
    premises: Uuid,
    event: &EdgeEvent,
    edge: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>, sqlx::Error> {
    let found: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM incidents WHERE premises_id = $1 AND kind = 'cameraOffline' \
         AND exercise IS NOT DISTINCT FROM $2 AND state NOT IN ('closed', 'rejected') \
         ORDER BY last_report_at DESC LIMIT 1",
    )
    .bind(premises)
    .bind(event.exercise())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = found else { return Ok(None) };
    incident::link_event(conn, id, event.event_id()).await?;
    let note = format!("camera {} is back online", event.camera_id());
    let coded = crate::incident::note::Note::new(
        "cameraOnline",
        serde_json::json!({ "camera": event.camera_id() }),
    );
    let mut entry = Entry::note(now, edge, "cameraOnline", note).with(coded);
    entry.refs = serde_json::json!({ "eventId": event.event_id(), "cameraId": event.camera_id() });
    store::append(conn, id, &entry).await?;
    Ok(Some(Outcome::Attached(id)))
}

/// The wire name of a unit enum (`noChefHat`), as stored in text columns.
pub(crate) fn json_str<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => panic!("a unit enum serialises as a string, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETECTION: &str = r#"{"type":"detection","v":1,"eventId":"01955a3c-6f1e-7b2a-9c4d-1e2f3a4b5c6d","episodeId":"01955a3c-5a00-7000-8000-00000000beef","phase":"start","edgeId":"edge-a","cameraId":"edge-a-cam1","kind":"rodent","at":"2026-11-23T22:15:30.123Z","confidence":0.9,"boxes":[],"snapshot":null,"clip":null,"model":{"name":"m","version":"1"},"exercise":null}"#;

    #[test]
    fn an_event_on_its_own_edges_topic_is_accepted() {
        let r = parse("bl/v1/edge/edge-a/events", DETECTION.as_bytes()).unwrap();
        assert!(matches!(r, EdgeReport::Event(EdgeEvent::Detection(_))));
    }

    #[test]
    fn an_event_speaking_for_another_edge_is_rejected() {
        let e = parse("bl/v1/edge/edge-b/events", DETECTION.as_bytes()).unwrap_err();
        assert_eq!(e.reason(), "wrong_edge");
        assert!(
            e.to_string().contains("edge-a") && e.to_string().contains("edge-b"),
            "{e}"
        );
    }

    #[test]
    fn hostile_topics_and_payloads_are_rejected_with_a_reason() {
        for topic in ["bl/v1/edge/+/events", "bl/v1/edge/edge-a/cmd", "x", ""] {
            let e = parse(topic, DETECTION.as_bytes()).unwrap_err();
            assert_eq!(e.reason(), "topic", "{topic}");
        }
        for payload in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"v":2,"type":"detection"}"#,
            b"\xff\xfe",
        ] {
            let e = parse("bl/v1/edge/edge-a/events", payload).unwrap_err();
            assert_eq!(e.reason(), "payload");
        }
        // a state on the events topic is the wrong message for it
        let state = bl_proto::encode(&EdgeState::offline(
            EdgeId::new("edge-a").unwrap(),
            chrono::Utc::now(),
        ));
        assert_eq!(
            parse("bl/v1/edge/edge-a/events", &state)
                .unwrap_err()
                .reason(),
            "payload"
        );
        assert!(matches!(
            parse("bl/v1/edge/edge-a/state", &state),
            Ok(EdgeReport::State(_))
        ));
    }
}
