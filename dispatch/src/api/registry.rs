//! Registry routes: towns, premises (list, detail, create, CSV import), cameras, teams.

use super::{Json, Path, Query};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::Caller;
use crate::error::{Detail, Error, Result};
use crate::registry::premises::{self, NewPremises, Premises};
use crate::registry::{cameras, csv_import, teams, towns};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

type App = State<Arc<AppState>>;

/// `GET /api/towns`
#[utoipa::path(
    get,
    path = "/api/towns",
    summary = "The caller's towns",
    responses((status = 200, description = "Towns and streets within the caller's scope", body = Vec<towns::Town>))
)]
pub async fn towns(
    State(app): App,
    Extension(caller): Extension<Caller>,
) -> Result<axum::Json<Vec<towns::Town>>> {
    Ok(axum::Json(
        towns::list(&app.pool, caller.scope.filter()).await?,
    ))
}

/// `GET /api/premises`
#[utoipa::path(
    get,
    path = "/api/premises",
    summary = "List premises",
    params(premises::ListQuery),
    responses((status = 200, description = "One page of premises within the caller's scope", body = crate::paging::Page<Premises>))
)]
pub async fn list_premises(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Query(query): Query<premises::ListQuery>,
) -> Result<axum::Json<crate::paging::Page<premises::Premises>>> {
    if let Some(kind) = &query.kind
        && !premises::KINDS.contains(&kind.as_str())
    {
        return Err(Error::bad_request(
            "invalid_query",
            format!("kind {kind:?} is not one of {}", premises::KINDS.join(", ")),
        ));
    }
    Ok(axum::Json(
        premises::list(&app.pool, caller.scope.filter(), &query).await?,
    ))
}

/// `GET /api/premises/{id}`: 404 when missing, then 403 when outside the caller's towns.
#[utoipa::path(
    get,
    path = "/api/premises/{id}",
    summary = "One premises",
    params(("id" = uuid::Uuid, Path, description = "The premises' id")),
    responses((status = 200, description = "The premises", body = Premises))
)]
pub async fn get_premises(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Premises>> {
    let p = premises::get(&app.pool, id)
        .await?
        .ok_or_else(|| Error::not_found("premises"))?;
    caller.check_town(&p.town_id)?;
    Ok(axum::Json(p))
}

/// 400 naming a premises field by its JSON name (the rules name CSV columns: `licence_no`).
fn invalid(field: &str, message: &str) -> Error {
    Error::invalid_field(&json_name(field), message)
}

/// `licence_no` → `licenceNo`; `town` → `townId` and `grid` → `gridId`, as the JSON body has them.
fn json_name(column: &str) -> String {
    match column {
        "town" => return "townId".into(),
        "grid" => return "gridId".into(),
        _ => {}
    }
    let mut out = String::with_capacity(column.len());
    let mut upper = false;
    for c in column.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `POST /api/premises`
#[utoipa::path(
    post,
    path = "/api/premises",
    summary = "Create a premises",
    request_body = NewPremises,
    responses(
        (status = 201, description = "The stored premises", body = Premises),
        (status = 409, description = "`duplicate`: a premises with this licence number exists"),
    )
)]
pub async fn create_premises(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Json(new): Json<NewPremises>,
) -> Result<(StatusCode, axum::Json<Premises>)> {
    new.validate().map_err(|p| invalid(p.field, &p.message))?;
    caller.check_town(&new.town_id)?;
    if let Some(Some(p)) = premises::check_references(&app.pool, &[&new]).await?.pop() {
        let code = if p.field == "licence_no" {
            "duplicate"
        } else {
            "invalid_field"
        };
        let kind = if code == "duplicate" {
            crate::error::Kind::Conflict
        } else {
            crate::error::Kind::BadRequest
        };
        return Err(Error::new(
            kind,
            code,
            format!("field {}: {}", json_name(p.field), p.message),
        )
        .on_field(&json_name(p.field)));
    }
    let mut tx = app.pool.begin().await?;
    let stored = premises::insert(&mut tx, &new).await?;
    let event = Event::new(Action::PremisesCreate)
        .object("premises", stored.id)
        .town(&stored.town_id);
    audit
        .append(
            &mut tx,
            &app,
            event.details(serde_json::json!({"name": stored.name, "licenceNo": stored.licence_no})),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(premises = %stored.id, town = %stored.town_id, by = %caller.username, "premises created");
    Ok((StatusCode::CREATED, axum::Json(stored)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Imported {
    imported: usize,
}

/// `POST /api/premises/import` (text/csv): all lines or none, in one transaction.
#[utoipa::path(
    post,
    path = "/api/premises/import",
    summary = "Import premises from CSV",
    request_body(
        content = String,
        content_type = "text/csv",
        description = "UTF-8 CSV with the header `name,licence_no,kind,address,lat,lon,town,grid,risk_grade,person_in_charge,phone` (`lat`, `lon`, `grid` may be empty)"
    ),
    responses(
        (status = 201, description = "Every line imported, in one transaction", body = Imported),
        (status = 400, description = "`invalid_csv`: nothing was imported; `details` names each line and column"),
    )
)]
pub async fn import_premises(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Imported>)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("text/csv") {
        return Err(Error::bad_request(
            "invalid_body",
            "send the premises as Content-Type: text/csv",
        ));
    }
    let text = std::str::from_utf8(&body).map_err(|_| {
        Error::bad_request(
            "invalid_body",
            "the CSV file is not UTF-8; save it as UTF-8 CSV",
        )
    })?;
    let rows = csv_import::parse(text).map_err(|details| {
        Error::bad_request(
            "invalid_csv",
            format!(
                "{} problem(s) in the file; nothing was imported",
                details.len()
            ),
        )
        .with_details(details)
    })?;
    let outside: Vec<Detail> = rows
        .iter()
        .filter(|r| !caller.scope.allows(&r.premises.town_id))
        .map(|r| Detail {
            line: r.line,
            column: "town".into(),
            code: "out_of_scope",
            message: format!("town {:?} is outside your scope", r.premises.town_id),
        })
        .collect();
    if !outside.is_empty() {
        return Err(Error::out_of_scope().with_details(outside));
    }
    let refs: Vec<&NewPremises> = rows.iter().map(|r| &r.premises).collect();
    let problems: Vec<Detail> = premises::check_references(&app.pool, &refs)
        .await?
        .into_iter()
        .zip(&rows)
        .filter_map(|(p, r)| {
            p.map(|p| Detail {
                line: r.line,
                column: p.field.into(),
                code: "invalid_field",
                message: p.message,
            })
        })
        .collect();
    if !problems.is_empty() {
        return Err(Error::bad_request(
            "invalid_csv",
            format!(
                "{} problem(s) in the file; nothing was imported",
                problems.len()
            ),
        )
        .with_details(problems));
    }
    let mut tx = app.pool.begin().await?;
    let mut ids = Vec::with_capacity(rows.len());
    for r in &rows {
        ids.push(premises::insert(&mut tx, &r.premises).await?.id);
    }
    // One record per import; a town-scoped importer's rows all lie in its towns, so name the
    // town when there is just one.
    let mut towns: Vec<&str> = rows.iter().map(|r| r.premises.town_id.as_str()).collect();
    towns.sort_unstable();
    towns.dedup();
    let mut event = Event::new(Action::PremisesImport)
        .details(serde_json::json!({"count": ids.len(), "towns": towns, "premises": ids}));
    if let [town] = towns[..] {
        event = event.town(town);
    }
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    tracing::info!(count = rows.len(), by = %caller.username, "premises imported");
    Ok((
        StatusCode::CREATED,
        axum::Json(Imported {
            imported: rows.len(),
        }),
    ))
}

/// `GET /api/cameras`
#[utoipa::path(
    get,
    path = "/api/cameras",
    summary = "List cameras",
    params(cameras::ListQuery),
    responses((status = 200, description = "Cameras within the caller's scope, never their credentials", body = Vec<cameras::Camera>))
)]
pub async fn cameras(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Query(query): Query<cameras::ListQuery>,
) -> Result<axum::Json<Vec<cameras::Camera>>> {
    Ok(axum::Json(
        cameras::list(&app.pool, caller.scope.filter(), &query).await?,
    ))
}

/// `GET /api/teams`: each team with its shifts and whether it is on duty now.
#[utoipa::path(
    get,
    path = "/api/teams",
    summary = "List teams with their shifts",
    responses((status = 200, description = "Teams within the caller's scope, each with shifts and whether on duty now", body = Vec<teams::Team>))
)]
pub async fn teams(
    State(app): App,
    Extension(caller): Extension<Caller>,
) -> Result<axum::Json<Vec<teams::Team>>> {
    Ok(axum::Json(
        teams::list(&app.pool, caller.scope.filter(), app.now()).await?,
    ))
}
