//! Drill rows: thin queries around [`super::scenario`] and [`super::evaluate`]. A run's control
//! (start, pause, resume, ENDEX) and each inject's firing are one transaction each; the run row is
//! locked by both, so an inject never fires into a paused or ended run.

use super::evaluate::{self, Observed, Status};
use super::improvement::{self, ImprovementView};
use super::report;
use super::scenario::{self, Scenario, What};
use crate::clocks::ClocksConfig;
use crate::error::{Error, Result};
use crate::escalation::{self, EscalationConfig};
use crate::incident::Actor;
use crate::incident::policy::IncidentsConfig;
use crate::incident::store::{self as incidents, Entry};
use crate::intake::{self, IntakeError, Outcome, Report, Source};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What the intake needs to take an inject: the same configuration as every other report.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub incidents: IncidentsConfig,
    pub escalation: EscalationConfig,
    pub clocks: ClocksConfig,
    /// For scene injects.
    pub drills: super::config::DrillsConfig,
}

/// A run as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub exercise: String,
    pub scenario_id: String,
    pub scenario_yaml: String,
    pub title: String,
    pub towns: Vec<String>,
    pub places: sqlx::types::Json<BTreeMap<String, Uuid>>,
    pub state: String,
    pub started_by: Uuid,
    pub started_at: DateTime<Utc>,
    pub paused_at: Option<DateTime<Utc>>,
    pub paused_secs: i64,
    pub ended_at: Option<DateTime<Utc>>,
    pub report_html: Option<String>,
    /// Whether the PDF of the report is stored (its bytes are read only to serve it).
    pub has_pdf: bool,
    pub report_pdf_error: Option<String>,
}

const RUN_COLUMNS: &str = "id, exercise, scenario_id, scenario_yaml, title, towns, places, state, \
     started_by, started_at, paused_at, paused_secs, ended_at, report_html, \
     report_pdf IS NOT NULL AS has_pdf, report_pdf_error";

impl RunRow {
    /// The scenario as it was at the start.
    pub fn scenario(&self) -> Result<Scenario> {
        scenario::parse(&self.scenario_id, &self.scenario_yaml)
            .map_err(|e| Error::internal("stored drill scenario", e))
    }
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM drill_runs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM drill_runs WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Runs whose towns overlap `towns` (all when `None`), newest first.
pub async fn list(
    conn: &mut PgConnection,
    towns: Option<&[String]>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<RunRow>, i64), sqlx::Error> {
    let rows: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM drill_runs WHERE $1::text[] IS NULL OR towns <@ $1 \
         ORDER BY started_at DESC, id LIMIT $2 OFFSET $3"
    )))
    .bind(towns)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM drill_runs WHERE $1::text[] IS NULL OR towns <@ $1",
    )
    .bind(towns)
    .fetch_one(conn)
    .await?;
    Ok((rows, total))
}

/// Binds each place of `s` to premises: the one named in `chosen` (it must lie in the place's
/// town), else the first premises of the place's town and kind by name. 400 naming `places.<p>`.
pub async fn resolve_places(
    conn: &mut PgConnection,
    s: &Scenario,
    chosen: &BTreeMap<String, Uuid>,
) -> Result<BTreeMap<String, Uuid>> {
    if let Some(name) = chosen.keys().find(|k| !s.places.contains_key(*k)) {
        return Err(Error::invalid_field(
            &format!("places.{name}"),
            format!("scenario {} has no place {name:?}", s.id),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, place) in &s.places {
        let field = format!("places.{name}");
        let id: Option<Uuid> = match chosen.get(name) {
            Some(id) => {
                let town: Option<String> =
                    sqlx::query_scalar("SELECT town_id FROM premises WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?;
                match town {
                    None => return Err(Error::invalid_field(&field, "no premises has this id")),
                    Some(t) if t != place.town => {
                        return Err(Error::invalid_field(
                            &field,
                            format!("the premises lies in {t:?}, the place in {:?}", place.town),
                        ));
                    }
                    Some(_) => Some(*id),
                }
            }
            None => {
                sqlx::query_scalar(
                    "SELECT id FROM premises WHERE town_id = $1 AND kind = $2 ORDER BY name, id LIMIT 1",
                )
                .bind(&place.town)
                .bind(&place.kind)
                .fetch_optional(&mut *conn)
                .await?
            }
        };
        let id = id.ok_or_else(|| {
            Error::invalid_field(
                &field,
                format!(
                    "no premises of kind {} in {}; name one with places.{name}",
                    place.kind, place.town
                ),
            )
        })?;
        out.insert(name.clone(), id);
    }
    Ok(out)
}

/// Starts a run of `s` (its YAML `text`): the run row and one timer row per inject, due at its
/// offset from `now`. The injects due now fire at the worker's next poll.
pub async fn start(
    conn: &mut PgConnection,
    s: &Scenario,
    text: &str,
    places: &BTreeMap<String, Uuid>,
    by: Uuid,
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO drill_runs (id, exercise, scenario_id, scenario_yaml, title, towns, places, \
         state, started_by, started_at, roles) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10)",
    )
    .bind(id)
    .bind(id.to_string())
    .bind(&s.id)
    .bind(text)
    .bind(&s.title)
    .bind(&s.participants.towns)
    .bind(sqlx::types::Json(places))
    .bind(by)
    .bind(now)
    .bind(&s.participants.roles)
    .execute(&mut *conn)
    .await?;
    for inj in &s.injects {
        sqlx::query(
            "INSERT INTO drill_injects (run_id, inject_id, offset_secs, due_at) \
             VALUES ($1, $2, $3, $4 + make_interval(secs => $3))",
        )
        .bind(id)
        .bind(&inj.id)
        .bind(inj.at as i64)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

fn conflict(message: String) -> Error {
    Error::new(crate::error::Kind::Conflict, "invalid_drill_state", message)
}

/// Pauses a running run: no inject fires until it resumes. 409 otherwise.
pub async fn pause(conn: &mut PgConnection, run: &RunRow, now: DateTime<Utc>) -> Result<()> {
    if run.state != "running" {
        return Err(conflict(format!("the run is {}, not running", run.state)));
    }
    sqlx::query("UPDATE drill_runs SET state = 'paused', paused_at = $2 WHERE id = $1")
        .bind(run.id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Resumes a paused run: every inject not yet fired moves later by the pause. 409 otherwise.
pub async fn resume(conn: &mut PgConnection, run: &RunRow, now: DateTime<Utc>) -> Result<()> {
    let Some(paused_at) = run.paused_at.filter(|_| run.state == "paused") else {
        return Err(conflict(format!("the run is {}, not paused", run.state)));
    };
    let secs = (now - paused_at).num_seconds().max(0);
    sqlx::query(
        "UPDATE drill_injects SET due_at = due_at + make_interval(secs => $2) \
         WHERE run_id = $1 AND outcome IS NULL",
    )
    .bind(run.id)
    .bind(secs as f64)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE drill_runs SET state = 'running', paused_at = NULL, paused_secs = paused_secs + $2 \
         WHERE id = $1",
    )
    .bind(run.id)
    .bind(secs)
    .execute(conn)
    .await?;
    Ok(())
}

/// ENDEX: the run ends, injects not fired are marked so, the run's incidents stop escalating and
/// their clocks stop (a timeline entry says why), and the after-action report is written — all in
/// the caller's transaction. 409 when it has ended already.
pub async fn end(
    conn: &mut PgConnection,
    run: &RunRow,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    if run.state == "ended" {
        return Err(conflict("the run has ended already".into()));
    }
    let pause = run.paused_at.map_or(0, |p| (now - p).num_seconds().max(0));
    sqlx::query(
        "UPDATE drill_runs SET state = 'ended', ended_at = $2, paused_at = NULL, \
         paused_secs = paused_secs + $3 WHERE id = $1",
    )
    .bind(run.id)
    .bind(now)
    .bind(pause)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE drill_injects SET outcome = 'notFired' WHERE run_id = $1 AND outcome IS NULL",
    )
    .bind(run.id)
    .execute(&mut *conn)
    .await?;
    for incident in run_incidents(conn, run.id).await? {
        incidents::get_for_update(conn, incident).await?;
        let cancelled = escalation::store::cancel_pending(conn, incident, now).await?;
        sqlx::query(
            "UPDATE incident_clocks SET stopped_at = $2, outcome = 'cancelled', next_fire_at = NULL \
             WHERE incident_id = $1 AND stopped_at IS NULL",
        )
        .bind(incident)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        let mut entry = Entry::note(
            now,
            actor,
            "endex",
            format!(
                "演练结束 ENDEX — DRILL (exercise {}): escalation and clocks stopped",
                run.exercise
            ),
        )
        .with(crate::incident::note::Note::new(
            "endex",
            serde_json::json!({ "exercise": run.exercise }),
        ));
        entry.refs = serde_json::json!({ "escalationCancelled": cancelled });
        incidents::append(conn, incident, &entry).await?;
    }
    let ended = get(conn, run.id)
        .await?
        .ok_or_else(|| Error::not_found("drill run"))?;
    // the improvement plan starts from the report's problems; the report lists its items
    let judged = view(conn, &ended, now).await?;
    for draft in improvement::from_problems(&judged) {
        improvement::insert(conn, run.id, &draft, &actor.name(), now).await?;
    }
    let view = view(conn, &ended, now).await?;
    let html = report::render(&view);
    sqlx::query("UPDATE drill_runs SET report_html = $2 WHERE id = $1")
        .bind(run.id)
        .bind(html)
        .execute(conn)
        .await?;
    Ok(())
}

async fn run_incidents(conn: &mut PgConnection, run: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT incident_id FROM drill_injects WHERE run_id = $1 \
         AND incident_id IS NOT NULL ORDER BY incident_id",
    )
    .bind(run)
    .fetch_all(conn)
    .await
}

/// An observation or rating by a coordinator or observer.
pub struct NewObservation<'a> {
    pub expectation: Option<&'a str>,
    pub text: &'a str,
    pub rating: Option<&'a str>,
    pub author_id: Uuid,
    pub author: &'a str,
    pub at: DateTime<Utc>,
}

pub async fn observe(
    conn: &mut PgConnection,
    run: Uuid,
    o: &NewObservation<'_>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO drill_observations (id, run_id, expectation_id, text, rating, author_id, \
         author, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(run)
    .bind(o.expectation)
    .bind(o.text)
    .bind(o.rating)
    .bind(o.author_id)
    .bind(o.author)
    .bind(o.at)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Claims the earliest due inject of a running run (with the run's row, both skipped when
/// another replica or a control request holds them) and fires it through the real intake, in one
/// transaction. False when none was due.
pub async fn fire_one(
    pool: &PgPool,
    config: &IntakeConfig,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let due: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT j.run_id, j.inject_id FROM drill_injects j JOIN drill_runs r ON r.id = j.run_id \
          WHERE j.outcome IS NULL AND r.state = 'running' AND j.due_at <= $1 \
          ORDER BY j.due_at, j.offset_secs, j.inject_id LIMIT 1 FOR UPDATE OF j, r SKIP LOCKED",
    )
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((run_id, inject_id)) = due else {
        return Ok(false);
    };
    let run = get(&mut tx, run_id).await?.expect("the run row is locked");
    let scenario = run.scenario();
    // --- scene injects: staged on the edge, their incident comes later (drill::scene) ---
    let scene = scenario.as_ref().ok().and_then(|s| {
        s.injects
            .iter()
            .find(|i| i.id == inject_id)
            .and_then(|i| match &i.what {
                What::Scene {
                    place,
                    scene,
                    duration,
                    camera,
                } => Some(super::scene::SceneInject {
                    inject_id: &inject_id,
                    place,
                    scene,
                    secs: *duration,
                    camera: camera.as_deref(),
                }),
                _ => None,
            })
    });
    if let Some(scene) = scene {
        let outcome = super::scene::stage(&mut tx, &config.drills, &run, &scene, now).await?;
        sqlx::query(
            "UPDATE drill_injects SET fired_at = $3, outcome = $4 WHERE run_id = $1 AND inject_id = $2",
        )
        .bind(run_id)
        .bind(&inject_id)
        .bind(now)
        .bind(outcome)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(run = %run_id, inject = %inject_id, outcome, "drill scene inject fired");
        return Ok(true);
    }
    // --- end scene injects ---
    let fired = match scenario {
        Ok(s) => fire(&mut tx, config, &run, &s, &inject_id, now).await?,
        Err(e) => {
            tracing::error!(run = %run.id, err = %e, "stored drill scenario does not parse");
            None
        }
    };
    let (outcome, incident) = match fired {
        Some(Some(outcome)) => (
            match outcome {
                Outcome::Opened(_) => "opened",
                Outcome::Attached(_) => "attached",
            },
            Some(outcome.id()),
        ),
        Some(None) => ("message", None),
        None => ("notFired", None),
    };
    sqlx::query(
        "UPDATE drill_injects SET fired_at = $3, outcome = $4, incident_id = $5 \
         WHERE run_id = $1 AND inject_id = $2",
    )
    .bind(run_id)
    .bind(&inject_id)
    .bind((outcome != "notFired").then_some(now))
    .bind(outcome)
    .bind(incident)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(run = %run_id, inject = %inject_id, outcome, "drill inject fired");
    Ok(true)
}

/// Fires one inject: `Some(Some(outcome))` for a report, `Some(None)` for a message, `None` when
/// the intake refused it (logged: e.g. its premises was deleted since the start).
async fn fire(
    conn: &mut PgConnection,
    config: &IntakeConfig,
    run: &RunRow,
    s: &Scenario,
    inject_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Option<Outcome>>, sqlx::Error> {
    let Some(inj) = s.injects.iter().find(|i| i.id == inject_id) else {
        return Ok(None);
    };
    let (source, place, kind, description, case_count, deaths) = match &inj.what {
        What::Message { .. } => return Ok(Some(None)),
        What::Scene { .. } => return Ok(None), // fired by drill::scene::stage
        What::Hotline {
            line,
            place,
            kind,
            description,
            case_count,
            deaths,
        } => (
            Source::Hotline(line.clone()),
            place,
            kind,
            description,
            case_count,
            deaths,
        ),
        What::CaseUpdate {
            place,
            kind,
            description,
            case_count,
            deaths,
        } => (Source::Manual, place, kind, description, case_count, deaths),
    };
    let report = Report {
        source,
        premises: run.places.0.get(place).copied(),
        town: None,
        address: String::new(),
        kind: kind.clone(),
        at: now,
        received_at: now,
        exercise: Some(run.exercise.clone()),
        description: format!("【演练 DRILL】{description}"),
        case_count: *case_count,
        deaths: *deaths,
        setting: None,
        reporter: Actor::System,
        edge: None,
    };
    let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
    match intake::incident(
        &mut savepoint,
        &config.incidents,
        &config.escalation,
        &config.clocks,
        &report,
    )
    .await
    {
        Ok(outcome) => {
            savepoint.commit().await?;
            Ok(Some(Some(outcome)))
        }
        Err(IntakeError::Invalid { field, message }) => {
            savepoint.rollback().await?;
            tracing::warn!(run = %run.id, inject = inject_id, field, message,
                           "drill inject refused by the intake");
            Ok(None)
        }
        Err(IntakeError::Db(e)) => Err(e),
    }
}

/// A run as the API and the report show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub id: Uuid,
    /// What the run's incidents carry as `exercise`.
    pub exercise: String,
    pub scenario_id: String,
    pub title: String,
    pub summary: String,
    /// `running`, `paused` or `ended`.
    pub state: String,
    pub towns: Vec<String>,
    /// The towns' Chinese names, in the order of `towns`.
    pub town_names: Vec<String>,
    pub teams: Vec<String>,
    pub places: Vec<PlaceView>,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    pub paused_at: Option<DateTime<Utc>>,
    pub paused_secs: i64,
    pub ended_at: Option<DateTime<Utc>>,
    pub injects: Vec<InjectView>,
    pub expectations: Vec<ExpectationView>,
    pub observations: Vec<ObservationView>,
    /// Whether the after-action report exists (after ENDEX).
    pub has_report: bool,
    /// Whether its PDF is ready (rendered shortly after ENDEX).
    pub has_pdf: bool,
    /// Why the PDF could not be rendered, if it could not.
    pub pdf_error: Option<String>,
    /// The participants' roles.
    pub roles: Vec<String>,
    /// The improvement plan: items made at ENDEX from the problems, and by hand.
    pub improvements: Vec<ImprovementView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaceView {
    pub name: String,
    pub label: String,
    pub premises_id: Uuid,
    pub premises_name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InjectView {
    pub id: String,
    /// `hotline`, `caseUpdate`, `message` or `scene`.
    #[serde(rename = "type")]
    pub kind: String,
    pub offset_secs: i64,
    pub due_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    /// `opened`, `attached`, `message`, `notFired`, `staged` (a scene waiting for its incident)
    /// or `skipped` (a scene not played: `text` says why); null while waiting.
    pub outcome: Option<String>,
    pub incident_id: Option<Uuid>,
    /// The report's description, the message's text, or the scene and how its playing went.
    pub text: String,
    /// A message's addressees (roles).
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpectationView {
    pub id: String,
    pub task: String,
    pub role: String,
    pub action: String,
    pub after: String,
    pub within_secs: u64,
    pub status: Status,
    pub incident_id: Option<Uuid>,
    pub started_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    pub by: Option<String>,
    pub elapsed_secs: Option<i64>,
    pub over_secs: Option<i64>,
    /// The latest P/S/M/U rating given to this task, if any.
    pub rating: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ObservationView {
    pub id: Uuid,
    pub expectation_id: Option<String>,
    pub text: String,
    pub rating: Option<String>,
    pub author: String,
    pub at: DateTime<Utc>,
}

/// The run with its injects, each expectation judged at `now`, and its observations.
pub async fn view(conn: &mut PgConnection, run: &RunRow, now: DateTime<Utc>) -> Result<RunView> {
    let s = run.scenario()?;
    let started_by: String = sqlx::query_scalar("SELECT username FROM users WHERE id = $1")
        .bind(run.started_by)
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or_default();
    let mut town_names = Vec::new();
    for town in &run.towns {
        let name: Option<String> = sqlx::query_scalar("SELECT name_zh FROM regions WHERE id = $1")
            .bind(town)
            .fetch_optional(&mut *conn)
            .await?;
        town_names.push(name.unwrap_or_else(|| town.clone()));
    }
    let mut places = Vec::new();
    for (name, premises_id) in &run.places.0 {
        let premises_name: String = sqlx::query_scalar("SELECT name FROM premises WHERE id = $1")
            .bind(premises_id)
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or_default();
        places.push(PlaceView {
            name: name.clone(),
            label: s
                .places
                .get(name)
                .map(|p| p.label.clone())
                .unwrap_or_default(),
            premises_id: *premises_id,
            premises_name,
        });
    }
    type InjectRow = (
        String,
        i64,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<String>,
        Option<Uuid>,
    );
    let rows: Vec<InjectRow> = sqlx::query_as(
        "SELECT inject_id, offset_secs, due_at, fired_at, outcome, incident_id FROM drill_injects \
         WHERE run_id = $1 ORDER BY offset_secs, inject_id",
    )
    .bind(run.id)
    .fetch_all(&mut *conn)
    .await?;
    let stagings = super::scene::of_run(conn, run.id).await?;
    let injects: Vec<InjectView> = rows
        .into_iter()
        .map(
            |(id, offset_secs, due_at, fired_at, outcome, incident_id)| {
                let what = s.injects.iter().find(|i| i.id == id).map(|i| &i.what);
                let (text, to) = match what {
                    Some(What::Message { to, text }) => (text.clone(), to.clone()),
                    Some(What::Scene {
                        scene, duration, ..
                    }) => {
                        let staging = stagings.iter().find(|st| st.0 == id);
                        (
                            super::scene::describe(scene, *duration, staging),
                            Vec::new(),
                        )
                    }
                    Some(
                        What::Hotline { description, .. } | What::CaseUpdate { description, .. },
                    ) => (description.clone(), Vec::new()),
                    None => (String::new(), Vec::new()),
                };
                InjectView {
                    kind: what.map_or("", What::kind_name).to_owned(),
                    id,
                    offset_secs,
                    due_at,
                    fired_at,
                    outcome,
                    incident_id,
                    text,
                    to,
                }
            },
        )
        .collect();
    type EntryRow = (
        Uuid,
        DateTime<Utc>,
        String,
        Option<String>,
        String,
        Option<String>,
    );
    let entries: Vec<EntryRow> = sqlx::query_as(
        "SELECT incident_id, at, actor, role, action, to_state FROM incident_timeline \
         WHERE incident_id IN (SELECT incident_id FROM drill_injects WHERE run_id = $1) ORDER BY seq",
    )
    .bind(run.id)
    .fetch_all(&mut *conn)
    .await?;
    let observations: Vec<ObservationView> = sqlx::query_as(
        "SELECT id, expectation_id, text, rating, author, at FROM drill_observations \
         WHERE run_id = $1 ORDER BY at, id",
    )
    .bind(run.id)
    .fetch_all(&mut *conn)
    .await?;
    let ended = run.state == "ended";
    let at = run.ended_at.unwrap_or(now);
    let expectations = s
        .expectations
        .iter()
        .map(|e| {
            let inject = injects.iter().find(|i| i.id == e.after);
            let incident = inject.and_then(|i| i.incident_id);
            let log: Vec<Observed> = entries
                .iter()
                .filter(|r| Some(r.0) == incident)
                .map(|(_, at, actor, role, action, to_state)| Observed {
                    at: *at,
                    actor: actor.clone(),
                    role: role.clone(),
                    action: action.clone(),
                    to_state: to_state.clone(),
                })
                .collect();
            let started = inject
                .and_then(|i| i.fired_at)
                .filter(|_| incident.is_some());
            let v = evaluate::judge(e, started, &log, at, ended);
            ExpectationView {
                id: e.id.clone(),
                task: e.task.clone(),
                role: e.role.clone(),
                action: e.action.clone(),
                after: e.after.clone(),
                within_secs: e.within,
                status: v.status,
                incident_id: incident,
                started_at: v.started_at,
                done_at: v.done_at,
                by: v.by,
                elapsed_secs: v.elapsed_secs,
                over_secs: v.over_secs,
                rating: observations
                    .iter()
                    .rev()
                    .find(|o| o.expectation_id.as_deref() == Some(&e.id) && o.rating.is_some())
                    .and_then(|o| o.rating.clone()),
            }
        })
        .collect();
    Ok(RunView {
        id: run.id,
        exercise: run.exercise.clone(),
        scenario_id: run.scenario_id.clone(),
        title: run.title.clone(),
        summary: s.summary.clone(),
        state: run.state.clone(),
        towns: run.towns.clone(),
        town_names,
        teams: s.participants.teams.clone(),
        places,
        started_by,
        started_at: run.started_at,
        paused_at: run.paused_at,
        paused_secs: run.paused_secs,
        ended_at: run.ended_at,
        injects,
        expectations,
        observations,
        has_report: run.report_html.is_some(),
        has_pdf: run.has_pdf,
        pdf_error: run.report_pdf_error.clone(),
        roles: s.participants.roles.clone(),
        improvements: improvement::of_run(conn, run.id, now).await?,
    })
}

/// Counts of a run's verdicts, for lists and the report: (met, late, missed or overdue).
pub fn tally(v: &RunView) -> (usize, usize, usize) {
    let n = |f: &dyn Fn(Status) -> bool| v.expectations.iter().filter(|e| f(e.status)).count();
    (
        n(&|s| s == Status::Met),
        n(&|s| s == Status::Late),
        n(&|s| matches!(s, Status::Missed | Status::Overdue)),
    )
}
