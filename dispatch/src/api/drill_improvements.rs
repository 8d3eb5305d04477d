//! The improvement plan (`/api/drills/…improvements…`): items listed across runs (overdue ones
//! marked), added to a run by hand, and moved open → inProgress → done → verified by coordinators
//! and observers. Every write is audited. Rules live in `crate::drill::improvement`.

use super::{Json, Path, Query};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::Caller;
use crate::drill::improvement::{
    self, Draft, ImprovementChange as Change, ImprovementState as ItemState, ImprovementView,
};
use crate::drill::store;
use crate::error::{Error, Result};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

type App = State<Arc<AppState>>;

/// `state`, `overdue`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `open`, `inProgress`, `done` or `verified`.
    pub state: Option<String>,
    /// Only items still owed after their due date.
    #[serde(default)]
    pub overdue: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImprovementList {
    pub items: Vec<ImprovementView>,
}

/// How many items the plan across runs shows at most.
const LIMIT: i64 = 500;

fn parse_state(field: &str, s: &str) -> Result<ItemState> {
    ItemState::parse(s).ok_or_else(|| {
        Error::invalid_field(
            field,
            format!("{s:?} is not one of open, inProgress, done, verified"),
        )
    })
}

/// `GET /api/drills/improvements`: the items of runs whose towns all lie in the caller's scope,
/// by due date.
#[utoipa::path(
    get,
    path = "/api/drills/improvements",
    summary = "The improvement plan across drill runs",
    params(ListQuery),
    responses((status = 200, description = "The items, by due date", body = ImprovementList))
)]
pub async fn list(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<ImprovementList>> {
    let state = q
        .state
        .as_deref()
        .map(|s| parse_state("state", s))
        .transpose()?;
    let mut conn = app.pool.acquire().await?;
    let items = improvement::across_runs(
        &mut conn,
        caller.scope.filter(),
        state,
        q.overdue,
        LIMIT,
        app.now(),
    )
    .await?;
    Ok(axum::Json(ImprovementList { items }))
}

/// The body of `POST /api/drills/runs/{id}/improvements`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewImprovement {
    /// The critical task (an expectation id of the run's scenario) it is about, if any.
    #[serde(default)]
    pub expectation_id: Option<String>,
    /// The problem found (1 to 1000 characters).
    pub problem: String,
    /// The corrective action (1 to 1000 characters).
    pub action: String,
    /// Who carries it out (1 to 200 characters), e.g. a team or an office.
    pub owner: String,
    /// `YYYY-MM-DD`.
    pub due_date: NaiveDate,
}

fn text(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::invalid_field(field, "is required"));
    }
    if v.chars().count() > max {
        return Err(Error::invalid_field(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(v.to_owned())
}

/// `POST /api/drills/runs/{id}/improvements`: an item added by hand; 201 with it.
#[utoipa::path(
    post,
    path = "/api/drills/runs/{id}/improvements",
    summary = "Add an improvement item to a drill run",
    params(("id" = Uuid, Path, description = "The run's id")),
    request_body = NewImprovement,
    responses((status = 201, description = "The item, open", body = ImprovementView))
)]
pub async fn create(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
    Json(body): Json<NewImprovement>,
) -> Result<(StatusCode, axum::Json<ImprovementView>)> {
    let mut tx = app.pool.begin().await?;
    let run = store::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("drill run"))?;
    run.towns.iter().try_for_each(|t| caller.check_town(t))?;
    let draft = Draft {
        problem: text("problem", &body.problem, 1000)?,
        action: text("action", &body.action, 1000)?,
        owner: text("owner", &body.owner, 200)?,
        due_date: body.due_date,
        expectation_id: body.expectation_id.clone(),
    };
    if let Some(e) = &draft.expectation_id
        && !run.scenario()?.expectations.iter().any(|x| &x.id == e)
    {
        return Err(Error::invalid_field(
            "expectationId",
            format!("the scenario has no expectation {e:?}"),
        ));
    }
    let now = app.now();
    let item = improvement::insert(&mut tx, id, &draft, &caller.username, now).await?;
    let event = Event::new(Action::DrillImprovementAdd)
        .object("drillRun", id)
        .town(run.towns.join(","))
        .details(serde_json::json!({ "improvement": item.to_string(), "dueDate": draft.due_date.to_string() }));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    let mut conn = app.pool.acquire().await?;
    let view = improvement::of_run(&mut conn, id, now)
        .await?
        .into_iter()
        .find(|i| i.id == item)
        .ok_or_else(|| Error::not_found("improvement item"))?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// The body of `POST /api/drills/improvements/{id}/state`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetState {
    /// `inProgress`, `done` or `verified` (a done item whose check fails goes back to `inProgress`).
    pub state: String,
    /// What was done or checked (at most 1000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /api/drills/improvements/{id}/state`: moves an item on; 409 `invalid_improvement_state`
/// for a step the plan does not allow (e.g. verifying what is not done).
#[utoipa::path(
    post,
    path = "/api/drills/improvements/{id}/state",
    summary = "Move an improvement item to its next state",
    params(("id" = Uuid, Path, description = "The item's id")),
    request_body = SetState,
    responses((status = 200, description = "The item, with who and when in its history", body = ImprovementView))
)]
pub async fn set_state(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
    Json(body): Json<SetState>,
) -> Result<axum::Json<ImprovementView>> {
    let to = parse_state("state", &body.state)?;
    let note = match body.note.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) => Some(text("note", n, 1000)?),
    };
    let now = app.now();
    let mut tx = app.pool.begin().await?;
    let (item, towns) = improvement::get_for_update(&mut tx, id, now)
        .await?
        .ok_or_else(|| Error::not_found("improvement item"))?;
    towns.iter().try_for_each(|t| caller.check_town(t))?;
    if !item.state.may_become(to) {
        return Err(Error::new(
            crate::error::Kind::Conflict,
            "invalid_improvement_state",
            format!(
                "an item that is {} cannot become {}",
                item.state.as_str(),
                to.as_str()
            ),
        ));
    }
    let change = Change {
        state: to,
        by: caller.username.clone(),
        at: now,
        note,
    };
    improvement::set_state(&mut tx, id, &change).await?;
    let event = Event::new(Action::DrillImprovementState)
        .object("drillImprovement", id)
        .town(towns.join(","))
        .details(serde_json::json!({ "from": item.state.as_str(), "to": to.as_str(), "run": item.run_id.to_string() }));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    let mut conn = app.pool.acquire().await?;
    let (view, _) = improvement::get_for_update(&mut conn, id, now)
        .await?
        .ok_or_else(|| Error::not_found("improvement item"))?;
    Ok(axum::Json(view))
}
