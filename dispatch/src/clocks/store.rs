//! Clock rows (`incident_clocks`): thin queries around [`super::rules`]. Starting and stopping run
//! inside the caller's transaction (the intake's or the transition's); firing claims one due
//! clock with its incident's row under `FOR UPDATE SKIP LOCKED` and fires it in a transaction of
//! its own.

use super::config::ClocksConfig;
use super::rules::{self, ClockKind, ClockState, Facts, Moment, Outcome, Span};
use crate::escalation::store::{self as escalation, Recipient};
use crate::incident::policy::Tier;
use crate::incident::state::State;
use crate::incident::store::{self as incidents, Entry};
use crate::incident::{Actor, IncidentId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use uuid::Uuid;

/// A clock as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClockRow {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub at_risk_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub working_days: Option<i32>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub at_risk_fired_at: Option<DateTime<Utc>>,
    pub overdue_fired_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "c.id, c.incident_id, c.kind, c.started_at, c.at_risk_at, c.due_at, \
     c.working_days, c.stopped_at, c.outcome, c.at_risk_fired_at, c.overdue_fired_at";

/// A clock as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClockView {
    pub id: Uuid,
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub at_risk_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub state: ClockState,
    /// For clocks counted in Chinese working days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_days: Option<i32>,
}

impl ClockRow {
    fn stopped(&self) -> Option<(DateTime<Utc>, Outcome)> {
        let outcome = self.outcome.as_deref().and_then(Outcome::parse)?;
        Some((self.stopped_at?, outcome))
    }

    /// How it looks at `now`.
    pub fn view(&self, now: DateTime<Utc>) -> ClockView {
        ClockView {
            id: self.id,
            kind: self.kind.clone(),
            started_at: self.started_at,
            at_risk_at: self.at_risk_at,
            due_at: self.due_at,
            stopped_at: self.stopped_at,
            state: rules::state(self.at_risk_at, self.due_at, self.stopped(), now),
            working_days: self.working_days,
        }
    }
}

/// The facts the rules need about an incident.
pub struct IncidentFacts {
    pub tier: Tier,
    pub kind: String,
    pub hotline: bool,
}

impl IncidentFacts {
    pub fn of(incident: &incidents::Incident) -> Self {
        IncidentFacts {
            tier: Tier::parse(&incident.tier).unwrap_or(Tier::Routine),
            kind: incident.kind.clone(),
            hotline: incident.hotline.is_some(),
        }
    }

    fn facts(&self) -> Facts<'_> {
        Facts {
            tier: self.tier,
            kind: &self.kind,
            hotline: self.hotline,
        }
    }
}

async fn insert(
    conn: &mut PgConnection,
    config: &ClocksConfig,
    incident: IncidentId,
    kind: ClockKind,
    span: Span,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let s = rules::schedule(config, span, now);
    sqlx::query(
        "INSERT INTO incident_clocks (id, incident_id, kind, started_at, at_risk_at, due_at, \
         working_days, next_fire_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(incident)
    .bind(kind.as_str())
    .bind(now)
    .bind(s.at_risk_at)
    .bind(s.due_at)
    .bind(s.working_days.map(|d| d as i32))
    .execute(conn)
    .await?;
    Ok(())
}

/// Starts the clocks of a just-opened incident, at `now`.
pub async fn start(
    conn: &mut PgConnection,
    config: &ClocksConfig,
    incident: IncidentId,
    facts: Facts<'_>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for (kind, span) in rules::on_open(config, facts) {
        insert(conn, config, incident, kind, span, now).await?;
    }
    Ok(())
}

/// Stops the running clock of `kind`; returns its state afterwards (None: none was running).
async fn stop(
    conn: &mut PgConnection,
    incident: IncidentId,
    kind: ClockKind,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<Option<ClockState>, sqlx::Error> {
    let row: Option<ClockRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE incident_clocks c SET stopped_at = $3, outcome = $4, next_fire_at = NULL \
         WHERE c.incident_id = $1 AND c.kind = $2 AND c.stopped_at IS NULL RETURNING {COLUMNS}"
    )))
    .bind(incident)
    .bind(kind.as_str())
    .bind(now)
    .bind(outcome.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.view(now).state))
}

/// Applies a transition of `incident` from `from` to `to` to its clocks, inside the transition's
/// transaction (the caller holds the incident's row lock). Returns what changed, for the
/// transition's timeline entry: `[{clock, state}]` (`met`, `metLate`, `cancelled`, `started`).
pub async fn on_transition(
    conn: &mut PgConnection,
    config: &ClocksConfig,
    incident: IncidentId,
    facts: &IncidentFacts,
    from: State,
    to: State,
    now: DateTime<Utc>,
) -> Result<Vec<Value>, sqlx::Error> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT kind, outcome FROM incident_clocks WHERE incident_id = $1 \
         AND (stopped_at IS NULL OR outcome = 'met')",
    )
    .bind(incident)
    .fetch_all(&mut *conn)
    .await?;
    let kinds = |met: bool| -> Vec<ClockKind> {
        rows.iter()
            .filter(|(_, o)| o.is_some() == met)
            .filter_map(|(k, _)| ClockKind::parse(k))
            .collect()
    };
    let changes =
        rules::on_transition(config, facts.facts(), from, to, &kinds(false), &kinds(true));
    let mut summary = Vec::new();
    for (kind, outcome) in changes.stop {
        if let Some(state) = stop(conn, incident, kind, outcome, now).await? {
            summary.push(json!({ "clock": kind, "state": state }));
        }
    }
    for (kind, span) in changes.start {
        insert(conn, config, incident, kind, span, now).await?;
        summary.push(json!({ "clock": kind, "state": "started" }));
    }
    Ok(summary)
}

/// Meets the running `healthReport` clock of `incident`, if any; returns its state afterwards.
pub async fn health_reported(
    conn: &mut PgConnection,
    incident: IncidentId,
    now: DateTime<Utc>,
) -> Result<Option<ClockState>, sqlx::Error> {
    stop(conn, incident, ClockKind::HealthReport, Outcome::Met, now).await
}

/// Every clock of an incident as it looks at `now`, in the order they started.
pub async fn list(
    conn: &mut PgConnection,
    incident: IncidentId,
    now: DateTime<Utc>,
) -> Result<Vec<ClockView>, sqlx::Error> {
    let rows: Vec<ClockRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM incident_clocks c WHERE c.incident_id = $1 ORDER BY c.started_at, c.id"
    )))
    .bind(incident)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(|r| r.view(now)).collect())
}

/// The most urgent running clock (the earliest due) of each of `incidents` that has one.
pub async fn most_urgent(
    pool: &PgPool,
    incidents: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, ClockView>, sqlx::Error> {
    let rows: Vec<ClockRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT ON (c.incident_id) {COLUMNS} FROM incident_clocks c \
         WHERE c.incident_id = ANY($1) AND c.stopped_at IS NULL \
         ORDER BY c.incident_id, c.due_at, c.id"
    )))
    .bind(incidents)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.incident_id, r.view(now)))
        .collect())
}

/// Fires the moment of `clock` that is due at `now` on behalf of `by`: marks it fired, writes a
/// timeline entry by `system` and one notification per recipient. The caller holds the clock's
/// and the incident's row locks. Returns the moment fired.
pub async fn fire(
    conn: &mut PgConnection,
    config: &ClocksConfig,
    clock: &ClockRow,
    now: DateTime<Utc>,
    by: &str,
) -> Result<Option<Moment>, sqlx::Error> {
    let (risk_fired, over_fired) = (
        clock.at_risk_fired_at.is_some(),
        clock.overdue_fired_at.is_some(),
    );
    let Some(moment) =
        rules::due_moment(clock.at_risk_at, clock.due_at, risk_fired, over_fired, now)
    else {
        // claimed early (should not happen): look again when the next moment is due
        let next = match (risk_fired || over_fired, over_fired) {
            (false, _) => Some(clock.at_risk_at),
            (true, false) => Some(clock.due_at),
            (true, true) => None,
        };
        sqlx::query("UPDATE incident_clocks SET next_fire_at = $2 WHERE id = $1")
            .bind(clock.id)
            .bind(next)
            .execute(&mut *conn)
            .await?;
        return Ok(None);
    };
    let column = match moment {
        Moment::AtRisk => "at_risk_fired_at",
        Moment::Overdue => "overdue_fired_at",
    };
    let marked = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE incident_clocks SET {column} = $2, next_fire_at = $3 \
         WHERE id = $1 AND stopped_at IS NULL AND {column} IS NULL"
    )))
    .bind(clock.id)
    .bind(now)
    .bind(rules::next_fire_at(moment, clock.due_at))
    .execute(&mut *conn)
    .await?;
    if marked.rows_affected() != 1 {
        return Ok(None);
    }
    let kind = ClockKind::parse(&clock.kind).expect("the kind column holds a known kind");
    let ctx = escalation::context(conn, clock.incident_id).await?;
    let target = moment.target(config);
    let (reached, rows) = escalation::recipients(conn, target, &ctx).await?;
    let (_, who) = crate::escalation::policy::describe(target, &reached, ctx.exercise.as_deref());
    let note = format!(
        "{}; {who}",
        rules::describe(kind, moment, clock.due_at, now)
    );
    notify(
        conn,
        clock,
        moment,
        &rows,
        &note,
        now,
        ctx.exercise.as_deref(),
    )
    .await?;
    let then = crate::escalation::policy::coded(target, &reached, ctx.exercise.as_deref());
    let coded = rules::coded(kind, moment, clock.due_at, now, then);
    let mut entry = Entry::note(now, &Actor::System, moment.action(), note).with(coded);
    entry.refs = json!({
        "clockId": clock.id,
        "clock": kind,
        "moment": moment,
        "dueAt": clock.due_at,
        "secsToDue": (clock.due_at - now).num_seconds(),
        "target": target,
        "recipients": rows,
    });
    incidents::append(conn, clock.incident_id, &entry).await?;
    tracing::info!(incident = %clock.incident_id, clock = kind.as_str(), moment = moment.as_str(),
                   recipients = rows.len(), by, "incident clock fired");
    Ok(Some(moment))
}

async fn notify(
    conn: &mut PgConnection,
    clock: &ClockRow,
    moment: Moment,
    rows: &[Recipient],
    note: &str,
    now: DateTime<Utc>,
    exercise: Option<&str>,
) -> Result<(), sqlx::Error> {
    for r in rows {
        sqlx::query(
            "INSERT INTO notifications (id, incident_id, clock_id, clock_moment, target_kind, \
             target_id, target_name, reason, created_at, exercise) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(Uuid::now_v7())
        .bind(clock.incident_id)
        .bind(clock.id)
        .bind(moment.as_str())
        .bind(r.kind)
        .bind(&r.id)
        .bind(&r.name)
        .bind(format!("{}: {note}", moment.action()))
        .bind(now)
        .bind(exercise)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Claims the clock whose next moment is due earliest (with its incident's row; both skipped when
/// another replica or a transition holds them) and fires it, in one transaction. False when none
/// was due.
pub async fn fire_one(
    pool: &PgPool,
    config: &ClocksConfig,
    now: DateTime<Utc>,
    by: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let claimed: Option<ClockRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM incident_clocks c JOIN incidents i ON i.id = c.incident_id \
         WHERE c.next_fire_at <= $1 ORDER BY c.next_fire_at LIMIT 1 \
         FOR UPDATE OF c, i SKIP LOCKED"
    )))
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(clock) = claimed else {
        tx.rollback().await?;
        return Ok(false);
    };
    fire(&mut tx, config, &clock, now, by).await?;
    tx.commit().await?;
    Ok(true)
}
