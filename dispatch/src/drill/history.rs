//! One scenario's runs compared over time ("is 斋堂镇 getting faster?"): each run's score (the
//! share of its critical tasks met) and, per task, the seconds it took, its verdict and rating.
//! Thin: the judging is [`super::store::view`]'s, run by run.

use super::evaluate::Status;
use super::scenario::Scenario;
use super::store::{self, RunView};
use crate::error::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// How many of a scenario's latest runs are compared.
pub const MAX_RUNS: i64 = 50;

/// A critical task of the scenario (the chart's series).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskColumn {
    pub id: String,
    pub task: String,
    pub within_secs: u64,
}

/// One task in one run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub id: String,
    pub status: Status,
    /// Seconds from the inject to the action; null when it was never done.
    pub elapsed_secs: Option<i64>,
    pub rating: Option<String>,
}

/// One run with its score.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunScore {
    pub id: Uuid,
    pub state: String,
    pub towns: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub met: usize,
    pub late: usize,
    pub missed: usize,
    /// Share of the tasks met (0 to 1).
    pub score: f64,
    pub tasks: Vec<TaskResult>,
}

/// `GET /api/drills/scenarios/{id}/history`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub scenario_id: String,
    pub title: String,
    /// The tasks of the scenario as shipped now (older runs may lack a task: its result is absent).
    pub tasks: Vec<TaskColumn>,
    /// Oldest first.
    pub runs: Vec<RunScore>,
}

/// A run's score: (met, late, missed, share met).
pub fn score(v: &RunView) -> (usize, usize, usize, f64) {
    let (met, late, missed) = store::tally(v);
    let total = v.expectations.len();
    let share = if total == 0 {
        0.0
    } else {
        met as f64 / total as f64
    };
    (met, late, missed, share)
}

pub fn run_score(v: &RunView) -> RunScore {
    let (met, late, missed, share) = score(v);
    RunScore {
        id: v.id,
        state: v.state.clone(),
        towns: v.towns.clone(),
        started_at: v.started_at,
        ended_at: v.ended_at,
        met,
        late,
        missed,
        score: share,
        tasks: v
            .expectations
            .iter()
            .map(|e| TaskResult {
                id: e.id.clone(),
                status: e.status,
                elapsed_secs: e.done_at.and(e.elapsed_secs),
                rating: e.rating.clone(),
            })
            .collect(),
    }
}

/// The latest [`MAX_RUNS`] ended runs of `s` whose towns lie in `towns` (all when `None`).
pub async fn of_scenario(
    conn: &mut PgConnection,
    s: &Scenario,
    towns: Option<&[String]>,
    now: DateTime<Utc>,
) -> Result<History> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM (SELECT id, started_at FROM drill_runs WHERE scenario_id = $1 \
         AND state = 'ended' AND ($2::text[] IS NULL OR towns <@ $2) \
         ORDER BY started_at DESC LIMIT $3) latest ORDER BY started_at, id",
    )
    .bind(&s.id)
    .bind(towns)
    .bind(MAX_RUNS)
    .fetch_all(&mut *conn)
    .await?;
    let mut runs = Vec::new();
    for id in ids {
        if let Some(row) = store::get(conn, id).await? {
            runs.push(run_score(&store::view(conn, &row, now).await?));
        }
    }
    Ok(History {
        scenario_id: s.id.clone(),
        title: s.title.clone(),
        tasks: s
            .expectations
            .iter()
            .map(|e| TaskColumn {
                id: e.id.clone(),
                task: e.task.clone(),
                within_secs: e.within,
            })
            .collect(),
        runs,
    })
}
