//! `/api/users`: list, create and change users (admins only, within their own scope).

use super::{Json, Path};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::Scope;
use crate::auth::{Caller, password};
use crate::error::Kind;
use crate::error::{Error, Result};
use crate::registry::users::{self, NewUser, User, UserUpdate};
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
    if !users::valid_username(&new.username) {
        return Err(Error::invalid_field(
            "username",
            "use 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
        ));
    }
    let grant = Grant {
        display_name: &new.display_name,
        scope: new.scope(),
        scope_towns: new.scope_towns.as_deref(),
        team_id: new.team_id,
        phone: &new.phone,
        password: Some(&new.password),
    };
    check_grant(&app, &caller, &grant).await?;
    let hash = hash_password(&app, &new.password).await?;
    let mut tx = app.pool.begin().await?;
    let user = users::insert(&mut *tx, &new, &hash)
        .await
        .map_err(|e| match Error::from(e) {
            e if e.kind == Kind::Conflict => Error::new(
                Kind::Conflict,
                "duplicate",
                format!(
                    "field username: {:?} is taken; choose another",
                    new.username
                ),
            )
            .on_field("username"),
            e => e,
        })?;
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

/// What a create or update grants, checked the same way for both.
struct Grant<'a> {
    display_name: &'a str,
    scope: Scope,
    scope_towns: Option<&'a [String]>,
    team_id: Option<uuid::Uuid>,
    phone: &'a str,
    password: Option<&'a str>,
}

/// The field rules, then the scope (a caller grants only towns within its own: 403), then the
/// references (towns and team exist; the team's town lies in the granted scope).
async fn check_grant(app: &AppState, caller: &Caller, g: &Grant<'_>) -> Result<()> {
    if g.display_name.trim().is_empty() || g.display_name.chars().count() > 100 {
        return Err(Error::invalid_field(
            "displayName",
            "must be 1-100 characters",
        ));
    }
    if let Some(p) = g.password {
        password::check_new(&app.config.password, p)
            .map_err(|m| Error::invalid_field("password", m))?;
    }
    if !users::valid_phone(g.phone) {
        return Err(Error::invalid_field(
            "phone",
            "use 3-32 digits, spaces, '+' or '-', or leave it empty",
        ));
    }
    if g.scope_towns.is_some_and(<[String]>::is_empty) {
        return Err(Error::invalid_field(
            "scopeTowns",
            "name at least one town, or null for the whole district",
        ));
    }
    if !caller.scope.covers(&g.scope) {
        return Err(Error::forbidden(
            "out_of_scope",
            "you may grant only towns within your own scope; ask a district admin",
        )
        .on_field("scopeTowns"));
    }
    for town in g.scope_towns.into_iter().flatten() {
        if !crate::registry::towns::exists(&app.pool, town).await? {
            return Err(Error::invalid_field(
                "scopeTowns",
                format!("town {town:?} does not exist"),
            ));
        }
    }
    if let Some(team) = g.team_id {
        let town: Option<String> = sqlx::query_scalar("SELECT town_id FROM teams WHERE id = $1")
            .bind(team)
            .fetch_optional(&app.pool)
            .await?;
        match town {
            None => return Err(Error::invalid_field("teamId", format!("no team {team}"))),
            Some(t) if !g.scope.allows(&t) => {
                return Err(Error::invalid_field(
                    "teamId",
                    format!("the team works in {t}, outside the user's towns"),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

async fn hash_password(app: &AppState, secret: &str) -> Result<String> {
    let params = app.config.password.clone();
    let secret = secret.to_owned();
    tokio::task::spawn_blocking(move || password::hash(&params, &secret))
        .await
        .map_err(|e| Error::internal("hashing a password", e))
}

/// `PUT /api/users/{id}`: 404, then 403 unless both the user's current and new scope lie within
/// the caller's; an admin cannot disable or demote themselves (409 `own_account`).
#[utoipa::path(
    put,
    path = "/api/users/{id}",
    summary = "Change a user",
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The changed user", body = User),
        (status = 409, description = "`own_account`: you cannot disable yourself or change your own role or scope"),
    )
)]
pub async fn update(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<uuid::Uuid>,
    Json(change): Json<UserUpdate>,
) -> Result<axum::Json<User>> {
    let old = users::get(&app.pool, id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    let old_scope = Scope::from_column(old.scope_towns.clone());
    if !caller.scope.covers(&old_scope) {
        return Err(Error::out_of_scope());
    }
    let grant = Grant {
        display_name: &change.display_name,
        scope: change.scope(),
        scope_towns: change.scope_towns.as_deref(),
        team_id: change.team_id,
        phone: &change.phone,
        password: change.password.as_deref(),
    };
    check_grant(&app, &caller, &grant).await?;
    if id == caller.user_id
        && (change.disabled
            || change.role.as_str() != old.role
            || change.scope_towns != old.scope_towns)
    {
        return Err(Error::new(
            Kind::Conflict,
            "own_account",
            "you cannot disable yourself or change your own role or scope; ask another admin",
        ));
    }
    let hash = match &change.password {
        Some(p) => Some(hash_password(&app, p).await?),
        None => None,
    };
    let mut tx = app.pool.begin().await?;
    let user = users::update(&mut tx, id, &change, hash.as_deref())
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    let details = serde_json::json!({
        "username": user.username,
        "role": user.role,
        "scopeTowns": user.scope_towns,
        "teamId": user.team_id,
        "disabled": user.disabled,
        "passwordReset": hash.is_some(),
    });
    audit
        .append(
            &mut tx,
            &app,
            Event::new(Action::UserUpdate)
                .object("user", user.id)
                .details(details),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(user = %user.username, role = %user.role, disabled = user.disabled, by = %caller.username, "user changed");
    Ok(axum::Json(user))
}
