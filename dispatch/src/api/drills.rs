//! Drill runs (`/api/drills/…`): a coordinator starts a scenario, pauses, resumes and ends it
//! (ENDEX), and adds observations and P/S/M/U ratings; everyone who reviews drills reads runs with
//! their live evaluation and, after ENDEX, the after-action report. Logic lives in `crate::drill`.

use super::{Json, Path, Query};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::Caller;
use crate::drill::history::{self, History};
use crate::drill::scenario::{self, Scenario};
use crate::drill::store::{self, NewObservation, RunRow, RunView};
use crate::error::{Error, Kind, Result};
use crate::incident::Actor;
use crate::paging::{Page, PageQuery};
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

type App = State<Arc<AppState>>;

/// A scenario as the console lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioView {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub towns: Vec<String>,
    pub teams: Vec<String>,
    pub roles: Vec<String>,
    /// Place name → the kind of premises it needs.
    pub places: BTreeMap<String, String>,
    pub injects: usize,
    pub expectations: usize,
    /// The scenario file itself.
    pub yaml: String,
}

fn scenario_view(s: &Scenario, text: &str) -> ScenarioView {
    ScenarioView {
        id: s.id.clone(),
        title: s.title.clone(),
        summary: s.summary.clone(),
        towns: s.participants.towns.clone(),
        teams: s.participants.teams.clone(),
        roles: s.participants.roles.clone(),
        places: s
            .places
            .iter()
            .map(|(k, p)| (k.clone(), p.kind.clone()))
            .collect(),
        injects: s.injects.len(),
        expectations: s.expectations.len(),
        yaml: text.to_owned(),
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScenarioList {
    pub items: Vec<ScenarioView>,
}

/// `GET /api/drills/scenarios`: the scenarios whose towns all lie in the caller's scope.
#[utoipa::path(
    get,
    path = "/api/drills/scenarios",
    summary = "List drill scenarios",
    responses((status = 200, description = "The scenarios of the caller's towns", body = ScenarioList))
)]
pub async fn scenarios(Extension(caller): Extension<Caller>) -> Result<axum::Json<ScenarioList>> {
    let items = scenario::catalogue()
        .iter()
        .filter(|(s, _)| s.participants.towns.iter().all(|t| caller.scope.allows(t)))
        .map(|(s, text)| scenario_view(s, text))
        .collect();
    Ok(axum::Json(ScenarioList { items }))
}

/// The body of `POST /api/drills/scenarios/{id}/runs` (`{}` for the default places).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartRun {
    /// Place name → premises id; a place left out gets the first premises of its town and kind.
    #[serde(default)]
    pub places: BTreeMap<String, Uuid>,
}

fn check_towns(caller: &Caller, towns: &[String]) -> Result<()> {
    towns.iter().try_for_each(|t| caller.check_town(t))
}

/// `POST /api/drills/scenarios/{id}/runs`: STARTEX. 404 for an unknown scenario, 403 when one of
/// its towns is outside the caller's scope, 400 naming `places.<name>`.
#[utoipa::path(
    post,
    path = "/api/drills/scenarios/{id}/runs",
    summary = "Start a drill run (STARTEX)",
    params(("id" = String, Path, description = "The scenario's id")),
    request_body = StartRun,
    responses((status = 201, description = "The run, started; its first injects fire at the next poll", body = RunView))
)]
pub async fn start(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
    Json(body): Json<StartRun>,
) -> Result<(StatusCode, axum::Json<RunView>)> {
    let (s, text) = scenario::find(&id).ok_or_else(|| Error::not_found("drill scenario"))?;
    check_towns(&caller, &s.participants.towns)?;
    let now = app.now();
    let mut tx = app.pool.begin().await?;
    let places = store::resolve_places(&mut tx, s, &body.places).await?;
    let run = store::start(&mut tx, s, text, &places, caller.user_id, now).await?;
    let event = Event::new(Action::DrillStart)
        .object("drillRun", run)
        .town(s.participants.towns.join(","))
        .details(serde_json::json!({ "scenario": s.id }));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    tracing::info!(run = %run, scenario = %s.id, by = %caller.username, "drill started");
    Ok((StatusCode::CREATED, axum::Json(view(&app, run).await?)))
}

async fn load(app: &AppState, caller: &Caller, id: Uuid) -> Result<RunRow> {
    let mut conn = app.pool.acquire().await?;
    let run = store::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found("drill run"))?;
    check_towns(caller, &run.towns)?;
    Ok(run)
}

async fn view(app: &AppState, id: Uuid) -> Result<RunView> {
    let mut conn = app.pool.acquire().await?;
    let run = store::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found("drill run"))?;
    store::view(&mut conn, &run, app.now()).await
}

/// A run in the history list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub id: Uuid,
    pub scenario_id: String,
    pub title: String,
    pub state: String,
    pub towns: Vec<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    pub met: usize,
    pub late: usize,
    pub missed: usize,
    /// Share of the critical tasks met (0 to 1).
    pub score: f64,
    /// Each task's latest P/S/M/U rating (task id → rating), rated tasks only.
    pub ratings: BTreeMap<String, String>,
    /// Outstanding improvement items past their due date.
    pub overdue_improvements: usize,
}

/// `GET /api/drills/runs`: runs whose towns all lie in the caller's scope, newest first, with
/// their tallies.
#[utoipa::path(
    get,
    path = "/api/drills/runs",
    summary = "List drill runs",
    params(PageQuery),
    responses((status = 200, description = "One page of runs, newest first", body = Page<RunSummary>))
)]
pub async fn list(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Page<RunSummary>>> {
    let paging = q.paging();
    let mut conn = app.pool.acquire().await?;
    let (rows, total) = store::list(
        &mut conn,
        caller.scope.filter(),
        paging.limit(),
        paging.offset(),
    )
    .await?;
    let mut items = Vec::new();
    for run in rows {
        let v = store::view(&mut conn, &run, app.now()).await?;
        let (met, late, missed, score) = history::score(&v);
        let ratings = v
            .expectations
            .iter()
            .filter_map(|e| Some((e.id.clone(), e.rating.clone()?)))
            .collect();
        let overdue_improvements = v.improvements.iter().filter(|i| i.overdue).count();
        items.push(RunSummary {
            id: v.id,
            scenario_id: v.scenario_id,
            title: v.title,
            state: v.state,
            towns: v.towns,
            started_at: v.started_at,
            ended_at: v.ended_at,
            met,
            late,
            missed,
            score,
            ratings,
            overdue_improvements,
        });
    }
    Ok(axum::Json(paging.of(items, total)))
}

/// `GET /api/drills/runs/{id}`: the run with each expectation judged now.
#[utoipa::path(
    get,
    path = "/api/drills/runs/{id}",
    summary = "A drill run with its live evaluation",
    params(("id" = Uuid, Path, description = "The run's id")),
    responses((status = 200, description = "The run", body = RunView))
)]
pub async fn get(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<RunView>> {
    load(&app, &caller, id).await?;
    Ok(axum::Json(view(&app, id).await?))
}

/// The body of `POST /api/drills/runs/{id}/control`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Control {
    /// `pause`, `resume` or `end` (ENDEX).
    pub action: String,
}

/// `POST /api/drills/runs/{id}/control`: pause, resume or end; 409 `invalid_drill_state` when
/// the run is not in a state that allows it.
#[utoipa::path(
    post,
    path = "/api/drills/runs/{id}/control",
    summary = "Pause, resume or end (ENDEX) a drill run",
    params(("id" = Uuid, Path, description = "The run's id")),
    request_body = Control,
    responses((status = 200, description = "The run after it; after ENDEX its report exists", body = RunView))
)]
pub async fn control(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
    Json(body): Json<Control>,
) -> Result<axum::Json<RunView>> {
    let mut tx = app.pool.begin().await?;
    let run = store::get_for_update(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("drill run"))?;
    check_towns(&caller, &run.towns)?;
    let now = app.now();
    let action = match body.action.as_str() {
        "pause" => {
            store::pause(&mut tx, &run, now).await?;
            Action::DrillPause
        }
        "resume" => {
            store::resume(&mut tx, &run, now).await?;
            Action::DrillResume
        }
        "end" => {
            store::end(&mut tx, &run, &Actor::of(&caller), now).await?;
            Action::DrillEnd
        }
        other => {
            return Err(Error::invalid_field(
                "action",
                format!("{other:?} is not pause, resume or end"),
            ));
        }
    };
    let event = Event::new(action)
        .object("drillRun", id)
        .town(run.towns.join(","));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    tracing::info!(run = %id, action = %body.action, by = %caller.username, "drill control");
    Ok(axum::Json(view(&app, id).await?))
}

/// The body of `POST /api/drills/runs/{id}/observations`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewObservationBody {
    /// The critical task (an expectation id of the scenario) it is about, if any.
    #[serde(default)]
    pub expectation_id: Option<String>,
    /// What was seen (at most 4000 characters); may be empty with a rating.
    #[serde(default)]
    pub text: String,
    /// `P`, `S`, `M` or `U`; needs `expectationId`.
    #[serde(default)]
    pub rating: Option<String>,
}

/// `POST /api/drills/runs/{id}/observations`: an observation or a task's rating; 201 with the run.
#[utoipa::path(
    post,
    path = "/api/drills/runs/{id}/observations",
    summary = "Add an observation or a P/S/M/U rating to a drill run",
    params(("id" = Uuid, Path, description = "The run's id")),
    request_body = NewObservationBody,
    responses((status = 201, description = "The run with the observation", body = RunView))
)]
pub async fn observe(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
    Json(body): Json<NewObservationBody>,
) -> Result<(StatusCode, axum::Json<RunView>)> {
    let run = load(&app, &caller, id).await?;
    let text = body.text.trim();
    if text.chars().count() > 4000 {
        return Err(Error::invalid_field(
            "text",
            "is longer than 4000 characters",
        ));
    }
    if let Some(r) = &body.rating {
        if !["P", "S", "M", "U"].contains(&r.as_str()) {
            return Err(Error::invalid_field(
                "rating",
                format!("{r:?} is not P, S, M or U"),
            ));
        }
        if body.expectation_id.is_none() {
            return Err(Error::invalid_field(
                "expectationId",
                "a rating is of one task: name it",
            ));
        }
    } else if text.is_empty() {
        return Err(Error::invalid_field("text", "is required without a rating"));
    }
    if let Some(e) = &body.expectation_id
        && !run.scenario()?.expectations.iter().any(|x| &x.id == e)
    {
        return Err(Error::invalid_field(
            "expectationId",
            format!("the scenario has no expectation {e:?}"),
        ));
    }
    let mut tx = app.pool.begin().await?;
    let o = NewObservation {
        expectation: body.expectation_id.as_deref(),
        text,
        rating: body.rating.as_deref(),
        author_id: caller.user_id,
        author: &caller.username,
        at: app.now(),
    };
    let oid = store::observe(&mut tx, id, &o).await?;
    let event = Event::new(Action::DrillObserve)
        .object("drillRun", id)
        .town(run.towns.join(","))
        .details(serde_json::json!({ "observation": oid.to_string(), "rating": body.rating }));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(view(&app, id).await?)))
}

/// `GET /api/drills/runs/{id}/report`: the after-action report (HTML, Chinese); 409
/// `report_not_ready` before ENDEX.
#[utoipa::path(
    get,
    path = "/api/drills/runs/{id}/report",
    summary = "The after-action report of an ended drill run",
    params(("id" = Uuid, Path, description = "The run's id")),
    responses((status = 200, description = "The report page", content_type = "text/html"))
)]
pub async fn report(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse> {
    let run = load(&app, &caller, id).await?;
    let html = run.report_html.ok_or_else(|| {
        Error::new(
            Kind::Conflict,
            "report_not_ready",
            "the report is written at ENDEX: end the run first",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html))
}

fn pdf_not_ready() -> Error {
    Error::new(
        Kind::Conflict,
        "report_not_ready",
        "the PDF is printed shortly after ENDEX: end the run, then try again in a moment",
    )
}

/// `GET /api/drills/runs/{id}/report.pdf`: the report printed to PDF by headless Chromium after
/// ENDEX; 409 `report_not_ready` until it is, 503 `pdf_failed` with the reason when it could not be.
#[utoipa::path(
    get,
    path = "/api/drills/runs/{id}/report.pdf",
    summary = "The after-action report as PDF",
    params(("id" = Uuid, Path, description = "The run's id")),
    responses((status = 200, description = "The report, A4", content_type = "application/pdf"))
)]
pub async fn report_pdf(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse> {
    let run = load(&app, &caller, id).await?;
    if !run.has_pdf {
        return Err(match (&run.report_html, &run.report_pdf_error) {
            (Some(_), Some(reason)) => Error::new(
                Kind::Unavailable,
                "pdf_failed",
                format!(
                    "the PDF could not be printed: {reason}; the HTML report is at /api/drills/runs/{id}/report"
                ),
            ),
            _ => pdf_not_ready(),
        });
    }
    let mut conn = app.pool.acquire().await?;
    let pdf: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT report_pdf FROM drill_runs WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    let pdf = pdf.ok_or_else(pdf_not_ready)?;
    let name = format!("attachment; filename=\"drill-report-{id}.pdf\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        pdf,
    ))
}

/// `GET /api/drills/scenarios/{id}/history`: the scenario's latest ended runs within the caller's
/// towns, oldest first, each with its score and every task's seconds; 404 for an unknown scenario.
#[utoipa::path(
    get,
    path = "/api/drills/scenarios/{id}/history",
    summary = "One scenario's runs compared over time",
    params(("id" = String, Path, description = "The scenario's id")),
    responses((status = 200, description = "The runs, oldest first", body = History))
)]
pub async fn history(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<History>> {
    let (s, _) = scenario::find(&id).ok_or_else(|| Error::not_found("drill scenario"))?;
    let mut conn = app.pool.acquire().await?;
    let h = history::of_scenario(&mut conn, s, caller.scope.filter(), app.now()).await?;
    Ok(axum::Json(h))
}
