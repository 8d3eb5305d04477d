//! `/api/incidents`: list, detail, hotline and manual intake, transitions. Thin: the intake
//! function, the state machine and the store decide.

use super::field::{locked, parse};
use super::{Json, Path, Query};
use crate::AppState;
use crate::audit::{self, Audit, Event};
use crate::auth::Caller;
use crate::clocks::store::{self as clocks, ClockView, IncidentFacts};
use crate::error::{Error, Kind, Result};
use crate::escalation::{self, store::Pending};
use crate::field::access;
use crate::field::idempotency::{self, Answer, Key};
use crate::field::{photos, recheck};
use crate::incident::note::Note;
use crate::incident::policy::{self, Tier};
use crate::incident::state::{self, Action, Refused, State};
use crate::incident::store::{self, Entry, FalsePositive, Incident, LinkedEvent, Location};
use crate::incident::{Actor, IncidentId};
use crate::intake::{self, Outcome, Report, Source};
use crate::registry::premises;
use axum::Extension;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

type App = AxState<Arc<AppState>>;

fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::bad_request("invalid_field", format!("field {field}: {message}"))
}

/// `GET /api/incidents`: within the caller's towns; real incidents unless `exercise` names a drill run.
#[utoipa::path(
    get,
    path = "/api/incidents",
    summary = "List incidents",
    params(store::ListQuery),
    responses((status = 200, description = "One page of incidents, newest first, each with its most urgent clock", body = crate::paging::Page<ListItem>))
)]
pub async fn list(
    AxState(app): App,
    Extension(caller): Extension<Caller>,
    Query(query): Query<store::ListQuery>,
) -> Result<axum::Json<crate::paging::Page<ListItem>>> {
    let bad = |field: &str, v: &str, allowed: &str| {
        Error::bad_request(
            "invalid_query",
            format!("{field} {v:?} is not one of {allowed}"),
        )
    };
    if let Some(s) = &query.state
        && State::parse(s).is_none()
    {
        let names: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
        return Err(bad("state", s, &names.join(", ")));
    }
    if let Some(t) = &query.tier
        && Tier::parse(t).is_none()
    {
        return Err(bad("tier", t, "immediate, deadline, routine"));
    }
    if let Some(k) = &query.kind
        && !policy::is_kind(k)
    {
        return Err(bad("kind", k, &policy::KINDS.join(", ")));
    }
    let team = {
        let mut conn = app.pool.acquire().await?;
        access::team_filter(&mut conn, &caller).await?
    };
    let page = store::list(&app.pool, caller.scope.filter(), team.as_param(), &query).await?;
    let ids: Vec<Uuid> = page.items.iter().map(|i| i.id).collect();
    let mut urgent = clocks::most_urgent(&app.pool, &ids, app.now()).await?;
    let items = page
        .items
        .into_iter()
        .map(|incident| ListItem {
            clock: urgent.remove(&incident.id),
            incident,
        })
        .collect();
    Ok(axum::Json(crate::paging::Page {
        items,
        total: page.total,
        page: page.page,
        per_page: page.per_page,
    }))
}

/// An incident in a list, with its most urgent running clock (the earliest due; null: none runs).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = IncidentListItem)]
pub struct ListItem {
    #[serde(flatten)]
    pub incident: Incident,
    pub clock: Option<ClockView>,
}

/// An incident with its timeline, linked edge events and false-positive label.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = IncidentDetail)]
pub struct Detail {
    #[serde(flatten)]
    pub incident: Incident,
    pub timeline: Vec<store::TimelineEntry>,
    pub events: Vec<LinkedEvent>,
    pub false_positive: Option<FalsePositive>,
    /// States the incident may go to next (whoever asks).
    pub next: Vec<State>,
    /// The escalation step that fires next unless somebody acknowledges first (null: none).
    pub pending_escalation: Option<Pending>,
    /// Who has been notified, oldest first, each with its deliveries to outbound channels.
    pub notifications: Vec<crate::notify::store::Delivered>,
    /// Every clock the incident has had, as it stands now, in the order they started.
    pub clocks: Vec<ClockView>,
    /// Field photos, oldest first (bytes at `GET /api/photos/{sha256}`).
    pub photos: Vec<photos::Photo>,
    /// Camera re-checks asked for, oldest first.
    pub rechecks: Vec<recheck::RecheckView>,
}

pub(super) async fn detail(app: &AppState, id: IncidentId) -> Result<Detail> {
    let mut conn = app.pool.acquire().await?;
    detail_in(&mut conn, id, app.now()).await
}

/// The incident's detail as `conn` sees it (inside a transaction: with its own changes).
pub(super) async fn detail_in(
    conn: &mut sqlx::PgConnection,
    id: IncidentId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Detail> {
    let incident = store::get(conn, id)
        .await?
        .ok_or_else(|| Error::not_found("incident"))?;
    Ok(Detail {
        timeline: store::timeline(conn, id).await?,
        events: store::events(conn, id).await?,
        false_positive: store::false_positive(conn, id).await?,
        next: state::next_states(incident.state()),
        pending_escalation: escalation::store::pending(conn, id).await?,
        notifications: {
            let n = escalation::store::notifications(conn, id).await?;
            crate::notify::store::with_deliveries(conn, id, n).await?
        },
        clocks: clocks::list(conn, id, now).await?,
        photos: photos::of_incident(conn, id).await?,
        rechecks: recheck::of_incident(conn, id).await?,
        incident,
    })
}

/// A refused transition as an API error: 409 for a step the machine lacks, 403 for the role.
pub(super) fn refused(r: Refused) -> Error {
    match r {
        Refused::Invalid { .. } => Error::new(Kind::Conflict, "invalid_transition", r.to_string()),
        Refused::Role { .. } => Error::forbidden("role_forbidden", r.to_string()),
    }
}

/// `GET /api/incidents/{id}`: 404 when missing, then 403 when outside the caller's towns (or,
/// for field users, routed to another team).
#[utoipa::path(
    get,
    path = "/api/incidents/{id}",
    summary = "One incident with its timeline, clocks and notifications",
    params(("id" = uuid::Uuid, Path, description = "The incident's id")),
    responses((status = 200, description = "The incident in detail", body = Detail))
)]
pub async fn get(
    AxState(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Detail>> {
    let d = detail(&app, id).await?;
    let mut conn = app.pool.acquire().await?;
    access::check_incident(&mut conn, &caller, &d.incident).await?;
    drop(conn);
    let event = Event::new(audit::Action::IncidentView)
        .object("incident", id)
        .town(&d.incident.town_id);
    audit.record(&app, event).await?;
    Ok(axum::Json(d))
}

/// The body of `POST /api/incidents`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewReport {
    /// `hotline` or `manual`.
    pub source: String,
    /// `12331` or `12315`; required for hotline reports.
    #[serde(default)]
    pub hotline: Option<String>,
    #[serde(default)]
    pub premises_id: Option<Uuid>,
    /// Required without `premisesId`.
    #[serde(default)]
    pub town_id: Option<String>,
    /// Required without `premisesId`.
    #[serde(default)]
    pub address: Option<String>,
    /// The setting (a premises kind) of a free address, e.g. `schoolCanteen`.
    #[serde(default)]
    pub setting: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub case_count: Option<u32>,
    #[serde(default)]
    pub deaths: Option<u32>,
    /// A drill run id, for a report injected by an exercise.
    #[serde(default)]
    pub exercise: Option<String>,
}

/// `POST /api/incidents`: a hotline or manual report through the one intake. 201 with the new
/// incident, or 200 with the open incident it was attached to.
#[utoipa::path(
    post,
    path = "/api/incidents",
    summary = "Report an incident (hotline or manual)",
    request_body = NewReport,
    responses(
        (status = 201, description = "A new incident", body = Detail),
        (status = 200, description = "The open incident the report was attached to", body = Detail),
    )
)]
pub async fn create(
    AxState(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Json(new): Json<NewReport>,
) -> Result<(StatusCode, axum::Json<Detail>)> {
    let source = match (new.source.as_str(), new.hotline.as_deref()) {
        ("hotline", Some(line @ ("12331" | "12315"))) => Source::Hotline(line.to_owned()),
        ("hotline", _) => return Err(invalid("hotline", "must be \"12331\" or \"12315\"")),
        ("manual", None) => Source::Manual,
        ("manual", Some(_)) => return Err(invalid("hotline", "is only for hotline reports")),
        (other, _) => {
            return Err(invalid(
                "source",
                format!("{other:?} is not hotline or manual"),
            ));
        }
    };
    if new.description.chars().count() > 4000 {
        return Err(invalid("description", "is longer than 4000 characters"));
    }
    if let Some(s) = &new.setting
        && !premises::KINDS.contains(&s.as_str())
    {
        return Err(invalid(
            "setting",
            format!("{s:?} is not one of {}", premises::KINDS.join(", ")),
        ));
    }
    if let Some(run) = &new.exercise {
        bl_proto::id::validate_id("exercise", run).map_err(|e| invalid("exercise", e))?;
    }
    // Scope first, on the town the report is about, so that nothing about other towns leaks.
    let town = match new.premises_id {
        Some(id) => premises::get(&app.pool, id)
            .await?
            .map(|p| p.town_id)
            .ok_or_else(|| invalid("premisesId", "no premises has this id"))?,
        None => new
            .town_id
            .clone()
            .ok_or_else(|| invalid("townId", "is required when no premisesId is given"))?,
    };
    caller.check_town(&town)?;
    let now = app.now();
    let report = Report {
        source,
        premises: new.premises_id,
        town: new.town_id.clone(),
        address: new.address.clone().unwrap_or_default(),
        kind: new.kind.clone(),
        at: now,
        received_at: now,
        exercise: new.exercise.clone(),
        description: new.description.trim().to_owned(),
        case_count: new.case_count,
        deaths: new.deaths,
        setting: new.setting.clone(),
        reporter: Actor::of(&caller),
        edge: None,
    };
    let mut tx = app.pool.begin().await?;
    let outcome = intake::incident(
        &mut tx,
        &app.config.incidents,
        &app.config.escalation,
        &app.config.clocks,
        &report,
    )
    .await?;
    let action = match outcome {
        Outcome::Opened(_) => audit::Action::IncidentCreate,
        Outcome::Attached(_) => audit::Action::IncidentAttach,
    };
    let reported = json!({"source": new.source, "hotline": new.hotline, "kind": new.kind, "exercise": new.exercise});
    audit
        .append(
            &mut tx,
            &app,
            Event::new(action)
                .object("incident", outcome.id())
                .town(&town)
                .details(reported),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(incident = %outcome.id(), by = %caller.username, "report taken");
    let status = match outcome {
        Outcome::Opened(_) => StatusCode::CREATED,
        Outcome::Attached(_) => StatusCode::OK,
    };
    Ok((status, axum::Json(detail(&app, outcome.id()).await?)))
}

/// The body of `POST /api/incidents/{id}/transition`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransitionBody {
    pub to: State,
    #[serde(default)]
    pub note: String,
    /// Why triage rejects it as a false alarm; required for `to: "rejected"`.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub location: Option<Location>,
    /// Rectification evidence: sha256 names of photos of this incident.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// `POST /api/incidents/{id}/transition`: 404, then 403 out of scope (or team), then 409 when the
/// state machine has no such step, then 403 when the caller's role may not take it. Resolving a
/// detection or deadline-tier incident needs evidence (photos named in `evidence`, or a passed
/// camera re-check). With an `Idempotency-Key` a repeat answers as the first time.
#[utoipa::path(
    post,
    path = "/api/incidents/{id}/transition",
    summary = "Move an incident to another state",
    params(("id" = uuid::Uuid, Path, description = "The incident's id"), crate::api::openapi::IdempotencyKey),
    request_body = TransitionBody,
    responses(
        (status = 200, description = "The incident after the step", body = Detail),
        (status = 400, description = "`evidence_required` to resolve without evidence or a passed re-check"),
        (status = 409, description = "`invalid_transition` (naming the ways forward), `concurrent_change` or `client_id_reused`"),
    )
)]
pub async fn transition(
    AxState(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(raw): Json<serde_json::Value>,
) -> Result<Answer> {
    let key = Key::of(
        &headers,
        caller.user_id,
        "transition",
        &id.to_string(),
        raw.to_string().as_bytes(),
    )?;
    let body: TransitionBody = parse(raw)?;
    if body.note.chars().count() > 4000 {
        return Err(invalid("note", "is longer than 4000 characters"));
    }
    if let Some(l) = body.location
        && !((-90.0..=90.0).contains(&l.lat) && (-180.0..=180.0).contains(&l.lon))
    {
        return Err(invalid(
            "location",
            "lat must be in -90..90 and lon in -180..180",
        ));
    }
    if let Some(bad) = body.evidence.iter().find(|h| !photos::is_sha256(h)) {
        return Err(invalid(
            "evidence",
            format!("{bad:?} is not a photo's sha256 (64 lower-case hex digits)"),
        ));
    }
    let mut tx = app.pool.begin().await?;
    let incident = locked(&mut tx, &caller, id).await?;
    if let Some(k) = &key
        && let Some(answer) = k.replay(&mut tx).await?
    {
        return Ok(answer);
    }
    let from = incident.state();
    let step = state::decide(from, body.to, caller.role).map_err(refused)?;
    let unknown = photos::not_of_incident(&mut tx, id, &body.evidence).await?;
    if !unknown.is_empty() {
        return Err(invalid(
            "evidence",
            format!(
                "{} is not a photo of this incident; upload it with POST /api/incidents/{id}/photos first",
                unknown.join(", ")
            ),
        ));
    }
    if body.to == State::Resolved
        && body.evidence.is_empty()
        && access::needs_evidence(&incident.source, &incident.tier)
        && !recheck::passed_since_reopen(&mut tx, id).await?
    {
        return Err(Error::bad_request(
            "evidence_required",
            format!(
                "resolving a {} incident ({}) needs rectification evidence: name photos of it in \
                 evidence, or pass a camera re-check (POST /api/incidents/{id}/recheck)",
                incident.kind, incident.tier
            ),
        ));
    }
    let reason = body.reason.as_deref().map(str::trim).unwrap_or("");
    if step.action == Action::Reject && reason.is_empty() {
        return Err(invalid(
            "reason",
            "is required to reject an incident as a false alarm",
        ));
    }
    let now = app.now();
    if !store::set_state(&mut tx, id, from, body.to).await? {
        return Err(Error::new(
            Kind::Conflict,
            "concurrent_change",
            "the incident changed meanwhile; reload it and try again",
        ));
    }
    let actor = Actor::of(&caller);
    let mut refs = json!({});
    if step.action == Action::Reject {
        let label =
            store::label_false_positive(&mut tx, &incident, reason, caller.user_id, now).await?;
        refs = json!({ "falsePositiveId": label });
    }
    if step.action == Action::Reopen && from == State::Rejected {
        store::withdraw_false_positive(&mut tx, id, now).await?;
    }
    // Taking the incident (or rejecting, resolving, closing it) ends its escalation: every pending
    // step is cancelled in this transaction, and the transition's entry counts them.
    if escalation::policy::stops_escalation(body.to) {
        let cancelled = escalation::store::cancel_pending(&mut tx, id, now).await?;
        if cancelled > 0 {
            refs["escalationCancelled"] = json!(cancelled);
        }
    }
    let reopened = step.action == Action::Reopen;
    if reopened {
        refs["escalationRestarted"] = json!(true);
    }
    // Clocks stop (met or cancelled) and start in this transaction too; the entry names them.
    let facts = IncidentFacts::of(&incident);
    let changed =
        clocks::on_transition(&mut tx, &app.config.clocks, id, &facts, from, body.to, now).await?;
    if !changed.is_empty() {
        refs["clocks"] = json!(changed);
    }
    if !body.evidence.is_empty() {
        refs["evidence"] = json!(body.evidence);
    }
    let note = match (body.note.trim(), reason) {
        (n, "") => n.to_owned(),
        ("", r) => format!("false alarm: {r}"),
        (n, r) => format!("false alarm: {r}; {n}"),
    };
    // a rejection's reason and remark are people's words; the frame around them is coded
    let coded = (!reason.is_empty()).then(|| {
        Note::new(
            "falseAlarm",
            json!({"reason": reason, "note": body.note.trim()}),
        )
    });
    let entry = Entry {
        at: now,
        actor: &actor,
        action: step.action.as_str(),
        from: Some(from),
        to: Some(body.to),
        note,
        coded,
        location: body.location,
        refs,
    };
    store::append(&mut tx, id, &entry).await?;
    // A reopened incident is back with the team: its tier's escalation runs again from now (its
    // first notification follows the reopening on the timeline).
    if reopened {
        let tier = Tier::parse(&incident.tier).unwrap_or(Tier::Routine);
        escalation::store::start(&mut tx, &app.config.escalation, id, tier, now).await?;
    }
    let answer = Answer::new(StatusCode::OK, detail_in(&mut tx, id, now).await?)?;
    let answer = idempotency::finish(key.as_ref(), &mut tx, answer, now).await?;
    let moved = json!({"from": from, "to": body.to, "action": step.action.as_str()});
    audit
        .append(
            &mut tx,
            &app,
            Event::new(audit::Action::IncidentTransition)
                .object("incident", id)
                .town(&incident.town_id)
                .details(moved),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(incident = %id, from = %from, to = %body.to, by = %caller.username, "incident transition");
    Ok(answer)
}
