//! Escalation rows: the durable timers and the notifications outbox. Thin queries around
//! [`super::policy`]; every function runs inside the caller's transaction.

use super::policy::{self, EscalationConfig, Planned, Reached, Step, Target};
use crate::incident::policy::Tier;
use crate::incident::state::State;
use crate::incident::store::{self as incidents, Entry};
use crate::incident::{Actor, IncidentId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A scheduled step.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Timer {
    pub id: Uuid,
    pub incident_id: Uuid,
    /// 0 from the opening; one more each time the incident is reopened.
    pub round: i32,
    pub step: i32,
    pub action: Value,
    pub due_at: DateTime<Utc>,
    /// The steps of the policy its round runs (migration 0012); None for rows from before, which
    /// run under the config's policy.
    pub policy: Option<Value>,
}

fn decode(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

async fn schedule(
    conn: &mut PgConnection,
    incident: IncidentId,
    round: i32,
    due: DateTime<Utc>,
    planned: &Planned,
    policy: &Value,
) -> Result<Timer, sqlx::Error> {
    let timer = Timer {
        id: Uuid::now_v7(),
        incident_id: incident,
        round,
        step: planned.index as i32,
        action: serde_json::to_value(planned).map_err(decode)?,
        due_at: due,
        policy: Some(policy.clone()),
    };
    sqlx::query(
        "INSERT INTO escalation_timers (id, incident_id, round, step, action, due_at, policy) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(timer.id)
    .bind(timer.incident_id)
    .bind(timer.round)
    .bind(timer.step)
    .bind(&timer.action)
    .bind(timer.due_at)
    .bind(&timer.policy)
    .execute(conn)
    .await?;
    Ok(timer)
}

/// An admin's policy of a tier (migration 0012), replacing the config's.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPolicy {
    pub steps: Vec<Step>,
    pub updated_at: DateTime<Utc>,
}

/// The admin's policy of `tier`, if one is set.
pub async fn stored_policy(
    conn: &mut PgConnection,
    tier: Tier,
) -> Result<Option<StoredPolicy>, sqlx::Error> {
    let row: Option<(Value, DateTime<Utc>)> =
        sqlx::query_as("SELECT steps, updated_at FROM escalation_policies WHERE tier = $1")
            .bind(tier.as_str())
            .fetch_optional(conn)
            .await?;
    row.map(|(steps, updated_at)| {
        Ok(StoredPolicy {
            steps: serde_json::from_value(steps).map_err(decode)?,
            updated_at,
        })
    })
    .transpose()
}

/// The policy an escalation of `tier` starting now runs: the admin's, else the config's.
pub async fn effective_policy(
    conn: &mut PgConnection,
    config: &EscalationConfig,
    tier: Tier,
) -> Result<Vec<Step>, sqlx::Error> {
    Ok(match stored_policy(conn, tier).await? {
        Some(p) => p.steps,
        None => config.policy(tier).to_vec(),
    })
}

/// Sets the admin's policy of `tier` (checked with [`policy::check`] before).
pub async fn set_policy(
    conn: &mut PgConnection,
    tier: Tier,
    steps: &[Step],
    by: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO escalation_policies (tier, steps, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tier) DO UPDATE SET steps = $2, updated_at = $3, updated_by = $4",
    )
    .bind(tier.as_str())
    .bind(serde_json::to_value(steps).map_err(decode)?)
    .bind(now)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the admin's policy of `tier`: the config's applies again. False when none was set.
pub async fn reset_policy(conn: &mut PgConnection, tier: Tier) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM escalation_policies WHERE tier = $1")
            .bind(tier.as_str())
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Starts the escalation of a just-opened (and routed) or just-reopened incident of `tier`: a new
/// round (the first is 0) of its policy from `now`. Schedules the policy's first step, and fires at
/// once every leading step that is due `now` (so "notify the team" is in the intake's or the
/// reopening's own transaction). Does nothing for a policy without notifications.
pub async fn start(
    conn: &mut PgConnection,
    config: &EscalationConfig,
    incident: IncidentId,
    tier: Tier,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let steps = effective_policy(conn, config, tier).await?;
    let Some((due, first)) = policy::next(&steps, None, now) else {
        return Ok(());
    };
    let snapshot = serde_json::to_value(&steps).map_err(decode)?;
    let round: i32 = sqlx::query_scalar(
        "SELECT COALESCE(max(round) + 1, 0) FROM escalation_timers WHERE incident_id = $1",
    )
    .bind(incident)
    .fetch_one(&mut *conn)
    .await?;
    let mut timer = Some(schedule(conn, incident, round, due, &first, &snapshot).await?);
    while let Some(t) = timer.take_if(|t| t.due_at <= now) {
        timer = fire(conn, config, &t, now, "intake").await?;
    }
    Ok(())
}

/// What firing needs to know about the incident (also used by the incident clocks).
#[derive(sqlx::FromRow)]
pub(crate) struct Context {
    pub tier: String,
    pub state: String,
    pub town_id: String,
    pub town_name: String,
    pub team_id: Option<Uuid>,
    pub team_name: Option<String>,
    pub exercise: Option<String>,
}

/// Reads the [`Context`] of `incident`.
pub(crate) async fn context(
    conn: &mut PgConnection,
    incident: IncidentId,
) -> Result<Context, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.tier, i.state, i.town_id, r.name_zh AS town_name, i.routed_team_id AS team_id, \
         t.name AS team_name, i.exercise FROM incidents i JOIN regions r ON r.id = i.town_id \
         LEFT JOIN teams t ON t.id = i.routed_team_id WHERE i.id = $1",
    )
    .bind(incident)
    .fetch_one(conn)
    .await
}

/// One recipient of a notification.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Recipient {
    pub kind: &'static str,
    pub id: String,
    pub name: String,
}

async fn users(
    conn: &mut PgConnection,
    sql: &'static str,
    town: Option<&str>,
) -> Result<Vec<Recipient>, sqlx::Error> {
    let mut query = sqlx::query_as::<_, (Uuid, String)>(sql);
    if let Some(town) = town {
        query = query.bind(town);
    }
    let rows = query.fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| Recipient {
            kind: "user",
            id: id.to_string(),
            name,
        })
        .collect())
}

/// Who `target` reaches for the incident in `ctx`; for a drill incident only the run's
/// participants and its coordinator ([`crate::drill::participants`]).
pub(crate) async fn recipients(
    conn: &mut PgConnection,
    target: Target,
    ctx: &Context,
) -> Result<(Reached, Vec<Recipient>), sqlx::Error> {
    let (reached, rows) = reachable(conn, target, ctx).await?;
    match &ctx.exercise {
        Some(exercise) => {
            let rows = crate::drill::participants::restrict(conn, exercise, rows).await?;
            Ok((reached, rows))
        }
        None => Ok((reached, rows)),
    }
}

/// Who `target` reaches for the incident in `ctx`, before a drill's participants are considered.
async fn reachable(
    conn: &mut PgConnection,
    target: Target,
    ctx: &Context,
) -> Result<(Reached, Vec<Recipient>), sqlx::Error> {
    let names = |r: &[Recipient]| r.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    if let (Target::Team, Some(team)) = (target, ctx.team_id) {
        let name = ctx.team_name.clone().unwrap_or_else(|| team.to_string());
        let r = Recipient {
            kind: "team",
            id: team.to_string(),
            name: name.clone(),
        };
        return Ok((Reached::Team(name), vec![r]));
    }
    if target == Target::DistrictSupervisors {
        let found = users(
            conn,
            "SELECT id, username FROM users WHERE role = 'supervisor' AND NOT disabled \
             AND scope_towns IS NULL ORDER BY username",
            None,
        )
        .await?;
        let reached = Reached::DistrictSupervisors(names(&found));
        let rows = if found.is_empty() {
            vec![Recipient {
                kind: "district",
                id: "district".into(),
                name: "district duty desk".into(),
            }]
        } else {
            found
        };
        return Ok((reached, rows));
    }
    // the town officers: for their own step, and for a team step with no team on duty
    let found = users(
        conn,
        "SELECT id, username FROM users WHERE role = 'townOfficer' AND NOT disabled \
         AND $1 = ANY (scope_towns) ORDER BY username",
        Some(&ctx.town_id),
    )
    .await?;
    let reached = Reached::TownOfficers {
        town: ctx.town_name.clone(),
        users: names(&found),
    };
    let rows = if found.is_empty() {
        vec![Recipient {
            kind: "town",
            id: ctx.town_id.clone(),
            name: ctx.town_name.clone(),
        }]
    } else {
        found
    };
    Ok((reached, rows))
}

/// Fires `timer` at `now` on behalf of `by` (a worker id, or `intake`): marks it fired, writes its
/// notifications and a timeline entry, and schedules the next step, which it returns. A timer that
/// is no longer pending does nothing; one whose incident no longer escalates is cancelled. The
/// caller holds the timer's and the incident's row locks.
pub async fn fire(
    conn: &mut PgConnection,
    config: &EscalationConfig,
    timer: &Timer,
    now: DateTime<Utc>,
    by: &str,
) -> Result<Option<Timer>, sqlx::Error> {
    let ctx = context(conn, timer.incident_id).await?;
    if State::parse(&ctx.state).is_some_and(policy::stops_escalation) {
        cancel_pending(conn, timer.incident_id, now).await?;
        return Ok(None);
    }
    let marked = sqlx::query(
        "UPDATE escalation_timers SET state = 'fired', fired_at = $2, claimed_by = $3 \
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(timer.id)
    .bind(now)
    .bind(by)
    .execute(&mut *conn)
    .await?;
    if marked.rows_affected() != 1 {
        return Ok(None);
    }
    let planned: Planned = serde_json::from_value(timer.action.clone()).map_err(decode)?;
    let (reached, rows) = recipients(conn, planned.target, &ctx).await?;
    let (action, mut note) = policy::describe(planned.target, &reached, ctx.exercise.as_deref());
    let mut coded = policy::coded(planned.target, &reached, ctx.exercise.as_deref());
    if let Some(exercise) = &ctx.exercise
        && crate::drill::participants::has_run(conn, exercise).await?
    {
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        note.push_str(&format!(
            "; participants only: sent to {}",
            names.join(", ")
        ));
        coded.params["participants"] = json!(names);
    }
    for r in &rows {
        sqlx::query(
            "INSERT INTO notifications (id, incident_id, timer_id, target_kind, target_id, \
             target_name, reason, created_at, exercise) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(Uuid::now_v7())
        .bind(timer.incident_id)
        .bind(timer.id)
        .bind(r.kind)
        .bind(&r.id)
        .bind(&r.name)
        .bind(format!("{}: {note}", planned.target.as_str()))
        .bind(now)
        .bind(&ctx.exercise)
        .execute(&mut *conn)
        .await?;
    }
    let mut entry = Entry::note(now, &Actor::System, action, note).with(coded);
    entry.refs = json!({
        "timerId": timer.id,
        "step": planned.index,
        "target": planned.target,
        "recipients": rows,
    });
    incidents::append(conn, timer.incident_id, &entry).await?;
    tracing::info!(incident = %timer.incident_id, step = planned.index, target = planned.target.as_str(),
                   recipients = rows.len(), by, "escalation step fired");
    // the round's own steps, so that a policy changed meanwhile does not renumber it
    let steps: Vec<Step> = match &timer.policy {
        Some(v) => serde_json::from_value(v.clone()).map_err(decode)?,
        None => config
            .policy(Tier::parse(&ctx.tier).unwrap_or(Tier::Routine))
            .to_vec(),
    };
    let snapshot = serde_json::to_value(&steps).map_err(decode)?;
    match policy::next(&steps, Some(planned.index), timer.due_at) {
        Some((due, p)) => Ok(Some(
            schedule(conn, timer.incident_id, timer.round, due, &p, &snapshot).await?,
        )),
        None => Ok(None),
    }
}

/// Cancels every pending timer of `incident`; returns how many. The caller holds the incident's
/// row lock (so no worker is firing one of them meanwhile).
pub async fn cancel_pending(
    conn: &mut PgConnection,
    incident: IncidentId,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE escalation_timers SET state = 'cancelled', cancelled_at = $2 \
         WHERE incident_id = $1 AND state = 'pending'",
    )
    .bind(incident)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// Claims the earliest due timer (with its incident's row; both skipped when another replica or
/// a transition holds them) and fires it, in one transaction. False when none was due.
pub async fn fire_one(
    pool: &PgPool,
    config: &EscalationConfig,
    now: DateTime<Utc>,
    by: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let claimed: Option<Timer> = sqlx::query_as(
        "SELECT t.id, t.incident_id, t.round, t.step, t.action, t.due_at, t.policy FROM escalation_timers t \
         JOIN incidents i ON i.id = t.incident_id \
         WHERE t.state = 'pending' AND t.due_at <= $1 ORDER BY t.due_at LIMIT 1 \
         FOR UPDATE OF t, i SKIP LOCKED",
    )
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(timer) = claimed else {
        tx.rollback().await?;
        return Ok(false);
    };
    fire(&mut tx, config, &timer, now, by).await?;
    tx.commit().await?;
    Ok(true)
}

/// The next step an incident's escalation will take, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub step: i32,
    pub target: String,
    pub due_at: DateTime<Utc>,
}

pub async fn pending(
    conn: &mut PgConnection,
    incident: IncidentId,
) -> Result<Option<Pending>, sqlx::Error> {
    sqlx::query_as::<_, Pending>(
        "SELECT step, action ->> 'target' AS target, due_at FROM escalation_timers \
         WHERE incident_id = $1 AND state = 'pending' ORDER BY due_at LIMIT 1",
    )
    .bind(incident)
    .fetch_optional(conn)
    .await
}

/// A notification as the API shows it: from an escalation step (`step`) or from an incident
/// clock's moment (`clockId`, `clockMoment`).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: Uuid,
    pub step: Option<i32>,
    pub clock_id: Option<Uuid>,
    pub clock_moment: Option<String>,
    pub target_kind: String,
    pub target_id: String,
    pub target_name: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub exercise: Option<String>,
}

/// The notifications sent about an incident, oldest first.
pub async fn notifications(
    conn: &mut PgConnection,
    incident: IncidentId,
) -> Result<Vec<Notification>, sqlx::Error> {
    sqlx::query_as::<_, Notification>(
        "SELECT n.id, t.step, n.clock_id, n.clock_moment, n.target_kind, n.target_id, \
         n.target_name, n.reason, n.created_at, n.exercise \
         FROM notifications n LEFT JOIN escalation_timers t ON t.id = n.timer_id \
         WHERE n.incident_id = $1 ORDER BY n.created_at, t.step, n.id",
    )
    .bind(incident)
    .fetch_all(conn)
    .await
}
