//! `/api/walls/{id}`: the video wall's layout, read by the wall window and set from the desk.
//! Thin: `wall` holds the rules and the rows.

use super::{Json, Path};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::wall::{Layout, store};
use axum::Extension;
use axum::extract::State;
use std::sync::Arc;

type App = State<Arc<AppState>>;

/// `GET /api/walls/{id}`
#[utoipa::path(
    get,
    path = "/api/walls/{id}",
    summary = "Read a video wall's layout",
    params(("id" = String, Path, description = "The wall's id (e.g. `main`)")),
    responses(
        (status = 200, description = "The layout; a wall never set is four empty tiles at revision 0", body = store::Wall),
        (status = 400, description = "`invalid_id`"),
    )
)]
pub async fn get(State(app): App, Path(id): Path<String>) -> Result<axum::Json<store::Wall>> {
    store::validate_id(&id)?;
    Ok(axum::Json(store::get(&app.pool, &id).await?))
}

/// `PUT /api/walls/{id}`: replaces the layout (the latest write wins) and tells every console
/// following the wall (`wall` on `/api/ws`).
#[utoipa::path(
    put,
    path = "/api/walls/{id}",
    summary = "Set a video wall's layout",
    params(("id" = String, Path, description = "The wall's id (e.g. `main`)")),
    request_body = Layout,
    responses(
        (status = 200, description = "The stored layout with its new revision", body = store::Wall),
        (status = 400, description = "`invalid_id`, `invalid_layout` (the field named), `unknown_camera`"),
        (status = 403, description = "`out_of_scope`: the layout, or the wall as it is, shows a camera outside the caller's towns"),
    )
)]
pub async fn put(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
    Json(layout): Json<Layout>,
) -> Result<axum::Json<store::Wall>> {
    store::validate_id(&id)?;
    layout.validate()?;
    let mut tx = app.pool.begin().await?;
    let current = store::lock(&mut tx, &id).await?;
    let named = layout.cameras();
    let known = store::camera_towns(&mut tx, &named).await?;
    if let Some(missing) = named.iter().find(|c| !known.iter().any(|(k, _)| k == *c)) {
        return Err(Error::bad_request(
            "unknown_camera",
            format!("camera {missing} does not exist; pick cameras from GET /api/cameras"),
        ));
    }
    for (_, town) in &known {
        caller.check_town(town)?;
    }
    // Someone scoped to some towns may not clear cameras off a wall that they could not put there.
    if let Some(current) = &current {
        let shown = store::camera_towns(&mut tx, &current.cameras()).await?;
        if shown.iter().any(|(_, town)| !caller.scope.allows(town)) {
            return Err(Error::forbidden(
                "out_of_scope",
                format!(
                    "wall {id} shows cameras outside your towns; ask the command center to change it"
                ),
            ));
        }
    }
    let wall = store::put(&mut tx, &id, &layout, &caller.username, app.now()).await?;
    let details = serde_json::json!({"revision": wall.revision, "tiles": layout.tiles.len(),
                                     "cameras": named, "tour": layout.tour.is_some()});
    audit
        .append(
            &mut tx,
            &app,
            Event::new(Action::WallSet)
                .object("wall", &id)
                .details(details),
        )
        .await?;
    tx.commit().await?;
    Ok(axum::Json(wall))
}
