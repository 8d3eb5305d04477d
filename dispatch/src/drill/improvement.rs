//! The improvement plan (改进计划), tracked to closure: each item is a problem the drill revealed,
//! the corrective action, an owner and a due date, followed open → inProgress → done → verified
//! with who and when. Items are made at ENDEX from the report's problems (late or missed tasks,
//! tasks rated M or U) or by hand. The rules are plain; the queries around them thin.

use super::evaluate::Status;
use super::report::{action_zh, duration_zh, role_zh};
use super::store::RunView;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

/// Where an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ImprovementState {
    Open,
    InProgress,
    Done,
    Verified,
}

impl ImprovementState {
    pub const ALL: [ImprovementState; 4] = [
        ImprovementState::Open,
        ImprovementState::InProgress,
        ImprovementState::Done,
        ImprovementState::Verified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImprovementState::Open => "open",
            ImprovementState::InProgress => "inProgress",
            ImprovementState::Done => "done",
            ImprovementState::Verified => "verified",
        }
    }

    pub fn parse(s: &str) -> Option<ImprovementState> {
        ImprovementState::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn zh(self) -> &'static str {
        match self {
            ImprovementState::Open => "待整改",
            ImprovementState::InProgress => "整改中",
            ImprovementState::Done => "已整改",
            ImprovementState::Verified => "已验证",
        }
    }

    /// Whether an item may go from `self` to `to`: forward one step at a time (open may be
    /// done at once), and a done item whose check fails goes back to inProgress. Verified is final.
    pub fn may_become(self, to: ImprovementState) -> bool {
        use ImprovementState::*;
        matches!(
            (self, to),
            (Open, InProgress)
                | (Open, Done)
                | (InProgress, Done)
                | (Done, Verified)
                | (Done, InProgress)
        )
    }

    /// Whether work on it is still owed (it can be overdue).
    pub fn outstanding(self) -> bool {
        matches!(self, ImprovementState::Open | ImprovementState::InProgress)
    }
}

/// The date in Beijing, as due dates are read.
pub fn beijing_date(t: DateTime<Utc>) -> NaiveDate {
    let cst = FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset");
    t.with_timezone(&cst).date_naive()
}

/// Whether an item due on `due` in state `state` is overdue at `now`: still owed after its day.
pub fn overdue(state: ImprovementState, due: NaiveDate, now: DateTime<Utc>) -> bool {
    state.outstanding() && beijing_date(now) > due
}

/// An item to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub expectation_id: Option<String>,
    pub problem: String,
    pub action: String,
    pub owner: String,
    pub due_date: NaiveDate,
}

/// How long the owner has for an item made at ENDEX.
pub const DUE_DAYS: i64 = 30;

/// The items the report's problems call for: one per task that was late, missed, or rated M or
/// U; owned by the task's role in the run's towns, due [`DUE_DAYS`] after ENDEX.
pub fn from_problems(v: &RunView) -> Vec<Draft> {
    let ended = v.ended_at.unwrap_or(v.started_at);
    let due_date = beijing_date(ended + Duration::days(DUE_DAYS));
    let towns = v.town_names.join("、");
    v.expectations
        .iter()
        .filter_map(|e| {
            let what = match e.status {
                Status::Late => format!("超出时限{}", duration_zh(e.over_secs.unwrap_or(0))),
                Status::Missed | Status::Overdue => "演练结束时仍未完成".to_owned(),
                _ => match e.rating.as_deref() {
                    Some(r @ ("M" | "U")) => format!("按时完成但评级为{r}"),
                    _ => return None,
                },
            };
            Some(Draft {
                expectation_id: Some(e.id.clone()),
                problem: format!(
                    "“{}”（{}{}）{what}",
                    e.task,
                    role_zh(&e.role),
                    action_zh(&e.action)
                ),
                action: format!("查找“{}”的原因，修订处置流程并组织专项培训与复演", e.task),
                owner: format!("{}（{towns}）", role_zh(&e.role)),
                due_date,
            })
        })
        .collect()
}

/// One state an item went through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImprovementChange {
    pub state: ImprovementState,
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An item as the API and the report show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImprovementView {
    pub id: Uuid,
    pub run_id: Uuid,
    /// The run's scenario and title (for the plan across runs).
    pub scenario_id: String,
    pub run_title: String,
    pub expectation_id: Option<String>,
    pub problem: String,
    pub action: String,
    pub owner: String,
    pub due_date: NaiveDate,
    pub state: ImprovementState,
    /// Still owed after its due date (Beijing).
    pub overdue: bool,
    /// Every state it went through, oldest first (who and when).
    pub history: Vec<ImprovementChange>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    run_id: Uuid,
    scenario_id: String,
    run_title: String,
    expectation_id: Option<String>,
    problem: String,
    action: String,
    owner: String,
    due_date: NaiveDate,
    state: String,
    history: sqlx::types::Json<Vec<ImprovementChange>>,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Row {
    fn view(self, now: DateTime<Utc>) -> ImprovementView {
        let state = ImprovementState::parse(&self.state).unwrap_or(ImprovementState::Open);
        ImprovementView {
            id: self.id,
            run_id: self.run_id,
            scenario_id: self.scenario_id,
            run_title: self.run_title,
            expectation_id: self.expectation_id,
            problem: self.problem,
            action: self.action,
            owner: self.owner,
            due_date: self.due_date,
            state,
            overdue: overdue(state, self.due_date, now),
            history: self.history.0,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const SELECT: &str = "SELECT i.id, i.run_id, r.scenario_id, r.title AS run_title, i.expectation_id, \
     i.problem, i.action, i.owner, i.due_date, i.state, i.history, i.created_by, i.created_at, \
     i.updated_at FROM drill_improvements i JOIN drill_runs r ON r.id = i.run_id";

/// Creates an item, open, in the caller's transaction.
pub async fn insert(
    conn: &mut PgConnection,
    run: Uuid,
    d: &Draft,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    let history = vec![ImprovementChange {
        state: ImprovementState::Open,
        by: by.to_owned(),
        at: now,
        note: None,
    }];
    sqlx::query(
        "INSERT INTO drill_improvements (id, run_id, expectation_id, problem, action, owner, \
         due_date, state, history, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10, $10)",
    )
    .bind(id)
    .bind(run)
    .bind(&d.expectation_id)
    .bind(&d.problem)
    .bind(&d.action)
    .bind(&d.owner)
    .bind(d.due_date)
    .bind(sqlx::types::Json(history))
    .bind(by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(id)
}

/// The items of one run, oldest first.
pub async fn of_run(
    conn: &mut PgConnection,
    run: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<ImprovementView>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE i.run_id = $1 ORDER BY i.created_at, i.id"
    )))
    .bind(run)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.view(now)).collect())
}

/// Items across runs whose towns lie in `towns` (all when `None`), in `state` when given, only
/// the overdue when `overdue_only`; by due date. At most `limit`.
pub async fn across_runs(
    conn: &mut PgConnection,
    towns: Option<&[String]>,
    state: Option<ImprovementState>,
    overdue_only: bool,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<ImprovementView>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ($1::text[] IS NULL OR r.towns <@ $1) AND ($2::text IS NULL OR i.state = $2) \
         AND (NOT $3 OR (i.state IN ('open', 'inProgress') AND i.due_date < $4)) \
         ORDER BY i.due_date, i.created_at, i.id LIMIT $5"
    )))
    .bind(towns)
    .bind(state.map(ImprovementState::as_str))
    .bind(overdue_only)
    .bind(beijing_date(now))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.view(now)).collect())
}

/// One item with its run's towns, its row locked.
pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<(ImprovementView, Vec<String>)>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE i.id = $1 FOR UPDATE OF i"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let towns: Vec<String> = sqlx::query_scalar("SELECT towns FROM drill_runs WHERE id = $1")
        .bind(row.run_id)
        .fetch_one(conn)
        .await?;
    Ok(Some((row.view(now), towns)))
}

/// Moves an item (locked by the caller) to `change.state`, appending the change to its history.
pub async fn set_state(
    conn: &mut PgConnection,
    id: Uuid,
    change: &ImprovementChange,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE drill_improvements SET state = $2, history = history || $3, updated_at = $4 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(change.state.as_str())
    .bind(sqlx::types::Json(vec![change]))
    .bind(change.at)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn items_move_forward_and_a_failed_check_sends_one_back() {
        use ImprovementState::*;
        assert!(Open.may_become(InProgress));
        assert!(Open.may_become(Done));
        assert!(InProgress.may_become(Done));
        assert!(Done.may_become(Verified));
        assert!(Done.may_become(InProgress));
        assert!(
            !Open.may_become(Verified),
            "nothing is verified before it is done"
        );
        assert!(!Verified.may_become(Open));
        assert!(!Verified.may_become(InProgress));
        assert!(!Open.may_become(Open));
    }

    #[test]
    fn an_item_is_overdue_from_the_day_after_its_due_date_in_beijing_until_done() {
        let due = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        // 2026-12-01 23:30 in Beijing: still its day
        let late_evening = Utc.with_ymd_and_hms(2026, 12, 1, 15, 30, 0).unwrap();
        assert!(!overdue(ImprovementState::Open, due, late_evening));
        // 2026-12-02 00:30 in Beijing
        let next_day = Utc.with_ymd_and_hms(2026, 12, 1, 16, 30, 0).unwrap();
        assert!(overdue(ImprovementState::Open, due, next_day));
        assert!(overdue(ImprovementState::InProgress, due, next_day));
        assert!(!overdue(ImprovementState::Done, due, next_day));
        assert!(!overdue(ImprovementState::Verified, due, next_day));
    }
}
