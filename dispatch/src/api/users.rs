//! `/api/users`: list and create users (admins only, within their own scope).

use super::Json;
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::{Caller, password};
use crate::error::{Error, Result};
use crate::registry::users::{self, NewUser, User};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;

/// `GET /api/users`: the users whose scope lies within the caller's.
#[utoipa::path(
    get,
    path = "/api/users",
    summary = "List users",
    responses((status = 200, description = "Users whose scope lies within the caller's", body = Vec<User>))
)]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<axum::Json<Vec<User>>> {
    Ok(axum::Json(
        users::list(&app.pool, caller.scope.filter()).await?,
    ))
}

/// `POST /api/users`: a caller may grant only towns within its own scope.
#[utoipa::path(
    post,
    path = "/api/users",
    summary = "Create a user",
    request_body = NewUser,
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 409, description = "`duplicate`: the user name is taken"),
    )
)]
pub async fn create(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Json(new): Json<NewUser>,
) -> Result<(StatusCode, axum::Json<User>)> {
    let invalid = |field: &str, message: &str| {
        Error::bad_request("invalid_field", format!("field {field}: {message}"))
    };
    if !users::valid_username(&new.username) {
        return Err(invalid(
            "username",
            "use 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
        ));
    }
    if new.display_name.trim().is_empty() || new.display_name.chars().count() > 100 {
        return Err(invalid("displayName", "must be 1-100 characters"));
    }
    password::check_new(&app.config.password, &new.password)
        .map_err(|m| invalid("password", &m))?;
    if new.scope_towns.as_ref().is_some_and(Vec::is_empty) {
        return Err(invalid(
            "scopeTowns",
            "name at least one town, or null for the whole district",
        ));
    }
    if !caller.scope.covers(&new.scope()) {
        return Err(Error::forbidden(
            "out_of_scope",
            "you may grant only towns within your own scope; ask a district admin",
        ));
    }
    for town in new.scope_towns.iter().flatten() {
        if !crate::registry::towns::exists(&app.pool, town).await? {
            return Err(invalid(
                "scopeTowns",
                &format!("town {town:?} does not exist"),
            ));
        }
    }
    let params = app.config.password.clone();
    let secret = new.password.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&params, &secret))
        .await
        .map_err(|e| Error::internal("hashing a password", e))?;
    let mut tx = app.pool.begin().await?;
    let user = users::insert(&mut *tx, &new, &hash).await?;
    let granted = serde_json::json!({"username": user.username, "role": user.role, "scopeTowns": user.scope_towns});
    audit
        .append(
            &mut tx,
            &app,
            Event::new(Action::UserCreate)
                .object("user", user.id)
                .details(granted),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(user = %user.username, role = %user.role, by = %caller.username, "user created");
    Ok((StatusCode::CREATED, axum::Json(user)))
}
