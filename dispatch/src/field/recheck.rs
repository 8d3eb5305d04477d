//! Camera re-checks (DESIGN.md §3.1, §4): "watch this camera for N seconds and tell me whether the
//! rule is kept". A request is a `commands` row (pending, with a deadline) committed before the
//! QoS 1 [`Command`] goes to the owning edge's `bl/v1/edge/{edge}/cmd`; the edge's
//! [`CommandResult`] on `…/cmd/result` (consumed like events: acknowledged only after its
//! transaction commits) passes or fails it, and the sweep times out those unanswered by the
//! deadline.
//!
//! - passed: timeline `recheckPassed` and, while the incident may still be resolved (triaged or
//!   on scene, not reopened since the request), `resolved` by `system`;
//! - failed: timeline `recheckFailed` with the edge's reason; the incident stays where it is for
//!   the team to act;
//! - no answer by the deadline: timeline `recheckTimedOut`; a late answer is ignored.
//!
//! Only the edge the command went to may answer it; anything else is logged and dropped.

use crate::escalation::{self, Clock};
use crate::incident::note::Note;
use crate::incident::state::{self, State};
use crate::incident::store::{self as incidents, Entry};
use crate::incident::{Actor, IncidentId};
use bl_proto::command::{Command, CommandAction, CommandResult, Outcome, Recheck};
use bl_proto::event::ViolationKind;
use bl_proto::topic::Topic;
use bl_proto::{CameraId, EdgeId, V1};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use rumqttc::{AsyncClient, Publish, QoS};
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// dispatch's way to publish commands: the MQTT consumer's client, once it exists.
#[derive(Debug, Default)]
pub struct EdgeLink {
    client: OnceLock<AsyncClient>,
    /// Commands sent without a row of their own (live video, talk), by id: their kind, edge and
    /// when they were sent, so that the edge's answer is recognised and logged for what it is.
    unstored: std::sync::Mutex<std::collections::HashMap<Uuid, Unstored>>,
}

/// A command sent without a row of its own, awaiting its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unstored {
    /// The command's type (`startLive`, `startTalk`, …).
    pub kind: &'static str,
    /// The edge it went to.
    pub edge: EdgeId,
    sent: std::time::Instant,
}

/// How long an unstored command's answer is waited for; long past any command's grace.
const UNSTORED_FOR: std::time::Duration = std::time::Duration::from_secs(600);

impl EdgeLink {
    /// Called by the MQTT consumer when it has made its client.
    pub fn attach(&self, client: AsyncClient) {
        let _ = self.client.set(client);
    }

    /// Whether commands can be sent at all (`[mqtt]` is configured and its consumer started).
    pub fn is_configured(&self) -> bool {
        self.client.get().is_some()
    }

    /// Queues `cmd` for the edge (QoS 1, not retained: a replayed command would act twice). Never
    /// blocks: the client resends it after a reconnect; a full queue is an error.
    pub fn send(&self, edge: &EdgeId, cmd: &Command) -> Result<(), String> {
        let client = self.client.get().ok_or("no MQTT client")?;
        client
            .try_publish(
                Topic::EdgeCmd(edge.clone()).to_string(),
                QoS::AtLeastOnce,
                false,
                bl_proto::encode(cmd),
            )
            .map_err(|e| e.to_string())
    }
}

impl EdgeLink {
    /// Notes a command sent without a row of its own, so that its answer is recognised.
    pub fn note_unstored(&self, cmd_id: Uuid, kind: &'static str, edge: &EdgeId) {
        let now = std::time::Instant::now();
        let mut unstored = self.unstored.lock().unwrap_or_else(|e| e.into_inner());
        unstored.retain(|_, c| now.duration_since(c.sent) < UNSTORED_FOR);
        unstored.insert(
            cmd_id,
            Unstored {
                kind,
                edge: edge.clone(),
                sent: now,
            },
        );
    }

    /// The unstored command `cmd_id` answers, once (a repeated answer finds nothing).
    pub fn answered(&self, cmd_id: Uuid) -> Option<Unstored> {
        self.unstored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&cmd_id)
    }
}

impl EdgeLink {
    /// Publishes `config` as the edge's retained desired config (QoS 1): a box that connects later
    /// gets it at once. Never blocks; a full queue is an error (the caller retries).
    pub fn publish_config(&self, config: &bl_proto::config::EdgeConfig) -> Result<(), String> {
        let client = self.client.get().ok_or("no MQTT client")?;
        client
            .try_publish(
                Topic::EdgeConfig(config.edge_id.clone()).to_string(),
                QoS::AtLeastOnce,
                true,
                bl_proto::encode(config),
            )
            .map_err(|e| e.to_string())
    }
}

/// The command for a re-check issued at `now` (to the millisecond, as on the wire): the edge must
/// start within `grace_secs`.
pub fn command(
    cmd_id: Uuid,
    now: DateTime<Utc>,
    grace_secs: u32,
    camera: CameraId,
    kind: ViolationKind,
    for_secs: u32,
) -> Command {
    let now = now.trunc_subsecs(3);
    Command {
        v: V1,
        cmd_id,
        issued_at: now,
        expires_at: Some(now + Duration::seconds(grace_secs.into())),
        action: CommandAction::Recheck(Recheck {
            camera_id: camera,
            kind,
            for_secs,
        }),
    }
}

/// When an unanswered re-check times out: the watch, plus the grace to start and to answer.
pub fn deadline(now: DateTime<Utc>, for_secs: u32, grace_secs: u32) -> DateTime<Utc> {
    now + Duration::seconds(i64::from(for_secs) + 2 * i64::from(grace_secs))
}

/// What an answer means for the incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed { code: String, message: String },
}

impl Verdict {
    pub fn of(outcome: &Outcome) -> Verdict {
        match outcome {
            Outcome::Ok { .. } => Verdict::Passed,
            Outcome::Error { code, message } => Verdict::Failed {
                code: code.clone(),
                message: message.clone(),
            },
        }
    }
}

/// Whether a passed re-check resolves the incident now: it must still be resolvable and not have
/// been reopened since the re-check was asked for (then the check is about an old state of things).
pub fn resolves(now_state: State, reopened_since_request: bool) -> bool {
    state::find(now_state, State::Resolved).is_some() && !reopened_since_request
}

/// A re-check as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecheckView {
    pub cmd_id: Uuid,
    pub edge_id: String,
    pub camera_id: String,
    pub state: String,
    pub sent_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub result: Option<serde_json::Value>,
}

const VIEW: &str = "SELECT id AS cmd_id, edge_id, camera_id, state, sent_at, deadline, answered_at, result \
     FROM commands";

/// The re-checks of an incident, oldest first.
pub async fn of_incident(
    conn: &mut PgConnection,
    incident: IncidentId,
) -> Result<Vec<RecheckView>, sqlx::Error> {
    sqlx::query_as::<_, RecheckView>(sqlx::AssertSqlSafe(format!(
        "{VIEW} WHERE incident_id = $1 ORDER BY sent_at, id"
    )))
    .bind(incident)
    .fetch_all(conn)
    .await
}

/// Whether a re-check of `incident` passed after its latest reopen (evidence for a resolve).
pub async fn passed_since_reopen(
    conn: &mut PgConnection,
    incident: IncidentId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM commands WHERE incident_id = $1 AND state = 'passed' \
         AND sent_at >= COALESCE((SELECT max(at) FROM incident_timeline \
             WHERE incident_id = $1 AND action = 'reopen'), '-infinity'))",
    )
    .bind(incident)
    .fetch_one(conn)
    .await
}

/// The camera to watch: `wanted` if it is an edge camera of the premises, else the camera of the
/// incident's latest edge event, else the premises' first edge camera. `Err(())` when `wanted`
/// is not an edge camera of the premises.
pub async fn camera_for(
    conn: &mut PgConnection,
    incident: IncidentId,
    premises: Uuid,
    wanted: Option<&str>,
) -> Result<Result<Option<(String, String)>, ()>, sqlx::Error> {
    if let Some(w) = wanted {
        let found: Option<(String, String)> = sqlx::query_as(
            "SELECT id, edge_id FROM cameras WHERE id = $1 AND premises_id = $2 AND edge_id IS NOT NULL",
        )
        .bind(w)
        .bind(premises)
        .fetch_optional(conn)
        .await?;
        return Ok(found.map(Some).ok_or(()));
    }
    let found = sqlx::query_as(
        "SELECT c.id, c.edge_id FROM cameras c WHERE c.premises_id = $2 AND c.edge_id IS NOT NULL \
         ORDER BY (SELECT max(e.at) FROM edge_events e JOIN incident_events ie ON ie.event_id = e.event_id \
                   WHERE ie.incident_id = $1 AND e.camera_id = c.id) DESC NULLS LAST, c.id LIMIT 1",
    )
    .bind(incident)
    .bind(premises)
    .fetch_optional(conn)
    .await?;
    Ok(Ok(found))
}

/// A re-check to store.
#[derive(Debug, Clone)]
pub struct NewCommand<'a> {
    pub command: &'a Command,
    pub edge: &'a str,
    pub camera: &'a str,
    pub incident: IncidentId,
    pub by: Uuid,
    pub deadline: DateTime<Utc>,
}

/// Stores a pending command (sent at its `issuedAt`).
pub async fn insert(conn: &mut PgConnection, c: &NewCommand<'_>) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_value(c.command).expect("a command encodes");
    sqlx::query(
        "INSERT INTO commands (id, edge_id, camera_id, incident_id, action, payload, requested_by, sent_at, deadline) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(c.command.cmd_id)
    .bind(c.edge)
    .bind(c.camera)
    .bind(c.incident)
    .bind(c.command.action.type_name())
    .bind(payload)
    .bind(c.by)
    .bind(c.command.issued_at)
    .bind(c.deadline)
    .execute(conn)
    .await?;
    Ok(())
}

/// What became of one answer from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Applied(Verdict),
    /// Dropped, with why (logged; acknowledged, since a resend would fail the same way).
    Dropped(String),
}

/// A sent command as its answer needs it.
#[derive(sqlx::FromRow)]
struct Sent {
    edge_id: String,
    incident_id: Option<Uuid>,
    camera_id: String,
    state: String,
    sent_at: DateTime<Utc>,
}

/// Records one `…/cmd/result` message in one transaction. The topic and bytes are untrusted.
pub async fn record_result(
    pool: &PgPool,
    topic: &str,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<Handled, sqlx::Error> {
    let edge = match Topic::parse(topic) {
        Ok(Topic::EdgeCmdResult(edge)) => edge,
        Ok(other) => return Ok(Handled::Dropped(format!("{other} is not a command result"))),
        Err(e) => return Ok(Handled::Dropped(e.to_string())),
    };
    let result: CommandResult = match bl_proto::decode(payload) {
        Ok(r) => r,
        Err(e) => return Ok(Handled::Dropped(format!("payload does not decode: {e}"))),
    };
    if result.edge_id != edge {
        return Ok(Handled::Dropped(format!(
            "result speaks for edge {} but came on edge {edge}'s topic",
            result.edge_id
        )));
    }
    let mut tx = pool.begin().await?;
    let cmd: Option<Sent> = sqlx::query_as(
        "SELECT edge_id, incident_id, camera_id, state, sent_at FROM commands WHERE id = $1 FOR UPDATE",
    )
    .bind(result.cmd_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(Sent {
        edge_id: cmd_edge,
        incident_id: incident,
        camera_id: camera,
        state: cmd_state,
        sent_at,
    }) = cmd
    else {
        return Ok(Handled::Dropped(format!("no command {}", result.cmd_id)));
    };
    if cmd_edge != edge.as_str() {
        return Ok(Handled::Dropped(format!(
            "command {} went to edge {cmd_edge}, not {edge}",
            result.cmd_id
        )));
    }
    if cmd_state != "pending" {
        return Ok(Handled::Dropped(format!(
            "command {} is {cmd_state} already (a repeat or a late answer)",
            result.cmd_id
        )));
    }
    let verdict = Verdict::of(&result.outcome);
    let new_state = match verdict {
        Verdict::Passed => "passed",
        Verdict::Failed { .. } => "failed",
    };
    sqlx::query("UPDATE commands SET state = $2, answered_at = $3, result = $4 WHERE id = $1")
        .bind(result.cmd_id)
        .bind(new_state)
        .bind(now)
        .bind(serde_json::to_value(&result.outcome).expect("an outcome encodes"))
        .execute(&mut *tx)
        .await?;
    if let Some(incident) = incident {
        apply(
            &mut tx,
            incident,
            &verdict,
            json!({"cmdId": result.cmd_id, "edgeId": edge.as_str(), "cameraId": camera}),
            sent_at,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Handled::Applied(verdict))
}

/// The timeline entry (and, for a pass, the resolve) of an answered re-check.
async fn apply(
    conn: &mut PgConnection,
    incident: IncidentId,
    verdict: &Verdict,
    refs: serde_json::Value,
    sent_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let Some(row) = incidents::get_for_update(conn, incident).await? else {
        return Ok(());
    };
    let from = row.state();
    let system = Actor::System;
    let mut entry = Entry::note(now, &system, "recheckPassed", String::new());
    entry.refs = refs;
    match verdict {
        Verdict::Passed => {
            let reopened: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM incident_timeline WHERE incident_id = $1 \
                 AND action = 'reopen' AND at > $2)",
            )
            .bind(incident)
            .bind(sent_at)
            .fetch_one(&mut *conn)
            .await?;
            if resolves(from, reopened)
                && incidents::set_state(conn, incident, from, State::Resolved).await?
            {
                let cancelled = escalation::store::cancel_pending(conn, incident, now).await?;
                if cancelled > 0 {
                    entry.refs["escalationCancelled"] = json!(cancelled);
                }
                entry.from = Some(from);
                entry.to = Some(State::Resolved);
                entry.note = "the camera re-check found the rule kept".into();
                entry.coded = Some(Note::bare("recheckPassed"));
            } else {
                entry.note = format!(
                    "the camera re-check found the rule kept; the incident is {from} and stays so"
                );
                entry.coded = Some(Note::new("recheckPassedStays", json!({"state": from})));
            }
        }
        Verdict::Failed { code, message } => {
            entry.action = "recheckFailed";
            entry.note = format!("the camera re-check failed ({code}): {message}");
            entry.coded = Some(Note::new(
                "recheckFailed",
                json!({"code": code, "message": message}),
            ));
        }
    }
    incidents::append(conn, incident, &entry).await
}

/// Times out up to 64 pending re-checks past their deadline (one transaction); returns how many.
pub async fn time_out_due(pool: &PgPool, now: DateTime<Utc>) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let due: Vec<(Uuid, Option<Uuid>, String, String)> = sqlx::query_as(
        "UPDATE commands SET state = 'timedOut', answered_at = $1 WHERE id IN \
         (SELECT id FROM commands WHERE state = 'pending' AND deadline <= $1 \
          ORDER BY deadline FOR UPDATE SKIP LOCKED LIMIT 64) \
         RETURNING id, incident_id, edge_id, camera_id",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let system = Actor::System;
    for (cmd_id, incident, edge, camera) in &due {
        let Some(incident) = incident else { continue };
        let mut entry = Entry::note(
            now,
            &system,
            "recheckTimedOut",
            format!("edge {edge} did not answer the camera re-check in time"),
        )
        .with(Note::new(
            "recheckTimedOut",
            json!({"edge": edge, "camera": camera}),
        ));
        entry.refs = json!({"cmdId": cmd_id, "edgeId": edge, "cameraId": camera});
        incidents::append(&mut tx, *incident, &entry).await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

/// The sweep every replica runs until `shutdown`: times out unanswered re-checks; a database error
/// is logged and tried again at the next tick.
pub async fn run_sweep(
    pool: PgPool,
    clock: Arc<dyn Clock>,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    loop {
        match time_out_due(&pool, clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "camera re-checks timed out"),
            Err(e) => tracing::warn!(err = %e, "cannot time out camera re-checks; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Stores one `…/cmd/result` message from the broker, retrying while the database is away.
/// Returns false only when shutdown interrupted the retries (the message stays unacknowledged).
pub async fn consume(pool: &PgPool, publish: &Publish, shutdown: &CancellationToken) -> bool {
    let mut backoff = std::time::Duration::from_millis(200);
    loop {
        match record_result(pool, &publish.topic, &publish.payload, Utc::now()).await {
            Ok(Handled::Applied(verdict)) => {
                tracing::info!(?verdict, "camera re-check answered");
                return true;
            }
            Ok(Handled::Dropped(why)) => {
                let topic: String = publish.topic.chars().take(120).collect();
                tracing::warn!(topic = %topic, why = %why, "dropped a command result");
                return true;
            }
            Err(e) => {
                tracing::warn!(err = %e, retry_in = ?backoff, "cannot store a command result; holding it");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
            }
        }
    }
}

/// Whether a topic is a command result (the consumer routes it here).
pub fn is_result_topic(topic: &str) -> bool {
    topic.ends_with("/cmd/result")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unstored_commands_answer_is_recognised_once() {
        let link = EdgeLink::default();
        let edge = EdgeId::new("edge-1").unwrap();
        let (live, talk) = (Uuid::now_v7(), Uuid::now_v7());
        link.note_unstored(live, "startLive", &edge);
        link.note_unstored(talk, "startTalk", &edge);
        let answered = link.answered(talk).expect("the talk command is known");
        assert_eq!((answered.kind, answered.edge), ("startTalk", edge));
        assert!(
            link.answered(talk).is_none(),
            "a repeated answer finds nothing"
        );
        assert!(
            link.answered(Uuid::now_v7()).is_none(),
            "nor does a stranger"
        );
        assert_eq!(link.answered(live).map(|c| c.kind), Some("startLive"));
    }

    #[test]
    fn a_pass_resolves_only_a_resolvable_incident_not_reopened_since_the_request() {
        assert!(resolves(State::OnScene, false));
        assert!(resolves(State::Triaged, false));
        assert!(!resolves(State::Triaged, true));
        for s in [State::Resolved, State::Closed, State::EnRoute, State::New] {
            assert!(!resolves(s, false), "{s}");
        }
    }

    #[test]
    fn the_command_expires_after_the_grace_and_the_deadline_leaves_time_to_watch_and_answer() {
        let now = Utc::now();
        let cam = CameraId::new("cam-1").unwrap();
        let c = command(Uuid::now_v7(), now, 60, cam, ViolationKind::NoChefHat, 300);
        assert_eq!(c.issued_at, now.trunc_subsecs(3));
        assert_eq!(c.expires_at, Some(c.issued_at + Duration::seconds(60)));
        assert_eq!(c.action.type_name(), "recheck");
        assert_eq!(deadline(now, 300, 60), now + Duration::seconds(420));
        // what goes on the wire decodes as a valid command
        let back: Command = bl_proto::decode(&bl_proto::encode(&c)).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn an_ok_outcome_passes_and_an_error_fails_with_its_code() {
        assert_eq!(Verdict::of(&Outcome::Ok { detail: None }), Verdict::Passed);
        let v = Verdict::of(&Outcome::Error {
            code: "cameraOffline".into(),
            message: "no frames".into(),
        });
        assert!(matches!(v, Verdict::Failed { code, .. } if code == "cameraOffline"));
        assert!(is_result_topic("bl/v1/edge/e1/cmd/result"));
        assert!(!is_result_topic("bl/v1/edge/e1/events"));
    }
}
