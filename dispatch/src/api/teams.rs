//! Admin writes of teams and their duty rosters. `GET /api/teams` stays in `registry.rs`.

use super::{Json, Path};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::Caller;
use crate::error::{Error, Kind, Result};
use crate::registry::teams::{self, RosterInput, Team};
use crate::registry::{towns, users};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use uuid::Uuid;

type App = State<Arc<AppState>>;

/// The body of `POST /api/teams`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTeam {
    pub town_id: String,
    pub name: String,
    /// The team's duty phone, for SMS; `""` = none.
    #[serde(default)]
    pub phone: String,
}

/// The body of `PUT /api/teams/{id}` (a team stays in its town).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamUpdate {
    pub name: String,
    #[serde(default)]
    pub phone: String,
}

fn check_fields(name: &str, phone: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid_field("name", "must be 1-100 characters"));
    }
    if !users::valid_phone(phone) {
        return Err(Error::invalid_field(
            "phone",
            "use 3-32 digits, spaces, '+' or '-', or leave it empty",
        ));
    }
    Ok(())
}

/// A taken (town, name) as a 409 on `name`.
fn duplicate_name(e: sqlx::Error) -> Error {
    match Error::from(e) {
        e if e.kind == Kind::Conflict => Error::new(
            Kind::Conflict,
            "duplicate",
            "field name: the town has a team of this name; choose another",
        )
        .on_field("name"),
        e => e,
    }
}

async fn team(app: &AppState, caller: &Caller, id: Uuid) -> Result<Team> {
    let t = teams::get(&app.pool, id, app.now())
        .await?
        .ok_or_else(|| Error::not_found("team"))?;
    caller.check_town(&t.town_id)?;
    Ok(t)
}

/// `POST /api/teams`
#[utoipa::path(
    post,
    path = "/api/teams",
    summary = "Create a team",
    request_body = NewTeam,
    responses(
        (status = 201, description = "The team, without shifts yet", body = Team),
        (status = 409, description = "`duplicate`: the town has a team of this name"),
    )
)]
pub async fn create(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Json(new): Json<NewTeam>,
) -> Result<(StatusCode, axum::Json<Team>)> {
    check_fields(&new.name, &new.phone)?;
    caller.check_town(&new.town_id)?;
    if !towns::exists(&app.pool, &new.town_id).await? {
        return Err(Error::invalid_field(
            "townId",
            format!("town {:?} does not exist", new.town_id),
        ));
    }
    let mut tx = app.pool.begin().await?;
    let id = teams::insert(&mut tx, &new.town_id, new.name.trim(), &new.phone)
        .await
        .map_err(duplicate_name)?;
    let event = Event::new(Action::TeamCreate)
        .object("team", id)
        .town(&new.town_id)
        .details(serde_json::json!({"name": new.name.trim()}));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    tracing::info!(team = %id, town = %new.town_id, by = %caller.username, "team created");
    Ok((
        StatusCode::CREATED,
        axum::Json(team(&app, &caller, id).await?),
    ))
}

/// `PUT /api/teams/{id}`
#[utoipa::path(
    put,
    path = "/api/teams/{id}",
    summary = "Rename a team or change its phone",
    params(("id" = Uuid, Path, description = "The team's id")),
    request_body = TeamUpdate,
    responses(
        (status = 200, description = "The team", body = Team),
        (status = 409, description = "`duplicate`: the town has a team of this name"),
    )
)]
pub async fn update(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
    Json(change): Json<TeamUpdate>,
) -> Result<axum::Json<Team>> {
    let old = team(&app, &caller, id).await?;
    check_fields(&change.name, &change.phone)?;
    let mut tx = app.pool.begin().await?;
    if !teams::update(&mut tx, id, change.name.trim(), &change.phone)
        .await
        .map_err(duplicate_name)?
    {
        return Err(Error::not_found("team"));
    }
    let event = Event::new(Action::TeamUpdate)
        .object("team", id)
        .town(&old.town_id)
        .details(serde_json::json!({"name": change.name.trim()}));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    Ok(axum::Json(team(&app, &caller, id).await?))
}

/// `PUT /api/teams/{id}/roster`: the team's shifts and coming overrides, replaced in one
/// transaction (routing reads the roster at each incident, so the change applies to the next one).
#[utoipa::path(
    put,
    path = "/api/teams/{id}/roster",
    summary = "Replace a team's duty roster",
    params(("id" = Uuid, Path, description = "The team's id")),
    request_body = RosterInput,
    responses((status = 200, description = "The team with its new roster", body = Team))
)]
pub async fn roster(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
    Json(roster): Json<RosterInput>,
) -> Result<axum::Json<Team>> {
    let old = team(&app, &caller, id).await?;
    roster
        .validate()
        .map_err(|(field, message)| Error::invalid_field(&field, message))?;
    let mut tx = app.pool.begin().await?;
    // The team's row lock orders two admins editing one roster.
    sqlx::query("SELECT 1 FROM teams WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    teams::replace_roster(&mut tx, id, &roster, app.now()).await?;
    let event = Event::new(Action::TeamRoster)
        .object("team", id)
        .town(&old.town_id)
        .details(
            serde_json::json!({"shifts": roster.shifts.len(), "overrides": roster.overrides.len()}),
        );
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    tracing::info!(team = %id, by = %caller.username, "roster replaced");
    Ok(axum::Json(team(&app, &caller, id).await?))
}
