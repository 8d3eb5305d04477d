//! `/api/session`: log in, who am I (with the CSRF token), log out, and TOTP set-up.

use super::Json;
use crate::AppState;
use crate::audit::{Action, Audit, Event, Who};
use crate::auth::{Caller, password, session, throttle, totp};
use crate::error::{Error, Kind, Result};
use crate::registry::users;
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
    /// The 6-digit code, for users with TOTP enabled.
    #[serde(default)]
    totp: Option<String>,
}

/// The answer of login and `GET /api/session`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    user: users::User,
    csrf_token: String,
}

fn login_failed() -> Error {
    Error::new(
        Kind::Unauthenticated,
        "login_failed",
        "login failed: wrong user name, password or one-time code; try again",
    )
}

/// `POST /api/session`
#[utoipa::path(
    post,
    path = "/api/session",
    summary = "Log in",
    request_body = Login,
    responses(
        (status = 200, description = "Logged in: the user and the CSRF token; the session cookie is in `Set-Cookie`", body = Me),
        (status = 401, description = "`login_failed` (wrong name, password or code) or `totp_required`"),
        (status = 429, description = "`login_throttled`: too many failures; retry after `Retry-After` seconds"),
    )
)]
pub async fn login(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    audit: Audit,
    headers: HeaderMap,
    Json(body): Json<Login>,
) -> Result<Response> {
    let now = app.now();
    let pool = &app.pool;
    let cfg = &app.config.login;
    let username = body.username.trim().to_lowercase();
    // The audit log names whoever tried, cut to the longest valid user name.
    let tried = audit.by(Who::Anonymous(username.chars().take(64).collect()));
    let failed =
        |reason: &str| Event::new(Action::LoginFailed).details(json!({ "reason": reason }));
    let user_key = throttle::user_key(&username);
    let ip_key = throttle::ip_key(peer.ip());
    if let Some(secs) = throttle::locked(pool, &[user_key.clone(), ip_key.clone()], now).await? {
        tracing::warn!(%username, ip = %peer.ip(), secs, "login refused while locked out");
        tried.record(&app, failed("locked_out")).await?;
        return Err(Error::new(
            Kind::Throttled {
                retry_after_secs: secs,
            },
            "login_throttled",
            format!("too many failed logins; wait {secs} seconds and try again"),
        ));
    }
    let creds = users::credentials(pool, &username).await?;
    let stored = match &creds {
        Some(c) if !c.disabled => c.password_hash.clone(),
        _ => app.dummy_hash.clone(),
    };
    let given = body.password.clone();
    let password_ok = body.password.chars().count() <= password::MAX_LENGTH
        && tokio::task::spawn_blocking(move || password::verify(&stored, &given))
            .await
            .map_err(|e| Error::internal("verifying a password", e))?;
    let mut failure = match &creds {
        None => Some("unknown_user"),
        Some(c) if c.disabled => Some("disabled"),
        Some(_) if !password_ok => Some("wrong_password"),
        Some(_) => None,
    };
    if let (None, Some(c)) = (failure, &creds)
        && let Some(secret) = &c.totp_secret
    {
        let Some(code) = body.totp.as_deref().filter(|c| !c.is_empty()) else {
            tried.record(&app, failed("totp_required")).await?;
            return Err(Error::new(
                Kind::Unauthenticated,
                "totp_required",
                "this account uses a one-time code; send it as `totp`",
            ));
        };
        let step = totp::matching_step(secret, code, totp::step_of(now.timestamp()));
        match step {
            Some(s) if c.totp_last_step.is_none_or(|last| (s as i64) > last) => {
                sqlx::query("UPDATE users SET totp_last_step = $2 WHERE id = $1")
                    .bind(c.id)
                    .bind(s as i64)
                    .execute(pool)
                    .await?;
            }
            _ => failure = Some("wrong_totp"),
        }
    }
    let Some(c) = creds.filter(|_| failure.is_none()) else {
        let mut tx = pool.begin().await?;
        let user_lock = throttle::record_failure(
            &mut tx,
            &user_key,
            now,
            cfg.max_failures,
            cfg.lockout_base_secs,
            cfg.lockout_max_secs,
        )
        .await?;
        let ip_lock = throttle::record_failure(
            &mut tx,
            &ip_key,
            now,
            cfg.ip_max_failures,
            cfg.lockout_base_secs,
            cfg.lockout_max_secs,
        )
        .await?;
        tried
            .append(&mut tx, &app, failed(failure.unwrap_or("wrong_password")))
            .await?;
        for (key, secs) in [(&user_key, user_lock), (&ip_key, ip_lock)] {
            if let Some(secs) = secs {
                let locked = json!({ "key": key, "secs": secs });
                tried
                    .append(&mut tx, &app, Event::new(Action::LockedOut).details(locked))
                    .await?;
            }
        }
        tx.commit().await?;
        tracing::info!(%username, ip = %peer.ip(), "login failed");
        return Err(login_failed());
    };
    throttle::clear(pool, &user_key).await?;
    session::sweep(pool, &app.config.session, now).await?;
    let previous = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(session::id_from_cookie_header);
    let user = users::get(pool, c.id).await?.ok_or_else(login_failed)?;
    let who = Who::User {
        id: user.id,
        name: user.username.clone(),
        role: crate::auth::Role::parse(&user.role)
            .ok_or_else(|| Error::internal("reading a user's role", &user.role))?,
    };
    let mut tx = pool.begin().await?;
    let new = session::create(&mut tx, c.id, previous, now).await?;
    audit
        .by(who)
        .append(
            &mut tx,
            &app,
            Event::new(Action::Login).object("user", user.id),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(%username, ip = %peer.ip(), "login");
    let cookie = session::set_cookie(&new.id, &app.config.session);
    let body = Me {
        user,
        csrf_token: new.csrf_token,
    };
    Ok(([(header::SET_COOKIE, cookie)], axum::Json(body)).into_response())
}

/// `GET /api/session`
#[utoipa::path(
    get,
    path = "/api/session",
    summary = "Who am I, with the CSRF token",
    responses((status = 200, description = "The session's user and CSRF token", body = Me))
)]
pub async fn me(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<axum::Json<Me>> {
    let user = users::get(&app.pool, caller.user_id)
        .await?
        .ok_or_else(Error::unauthenticated)?;
    Ok(axum::Json(Me {
        user,
        csrf_token: caller.csrf_token,
    }))
}

/// `DELETE /api/session`
#[utoipa::path(
    delete,
    path = "/api/session",
    summary = "Log out",
    responses((status = 204, description = "The session is deleted and its cookie cleared"))
)]
pub async fn logout(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    audit: Audit,
) -> Result<Response> {
    let mut tx = app.pool.begin().await?;
    session::delete(&mut *tx, &caller.session_hash).await?;
    audit
        .append(&mut tx, &app, Event::new(Action::Logout))
        .await?;
    tx.commit().await?;
    tracing::info!(username = %caller.username, "logout");
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session::clear_cookie())],
    )
        .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpSetup {
    /// Base32, for typing into an authenticator app.
    secret: String,
    /// `otpauth://` URI, for a QR code.
    uri: String,
}

/// `POST /api/session/totp`: makes a new secret, pending until confirmed with a code.
#[utoipa::path(
    post,
    path = "/api/session/totp",
    summary = "Start TOTP set-up",
    responses((status = 200, description = "A new secret, pending until confirmed", body = TotpSetup))
)]
pub async fn totp_begin(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    audit: Audit,
) -> Result<axum::Json<TotpSetup>> {
    let mut secret = [0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    let mut tx = app.pool.begin().await?;
    sqlx::query("UPDATE users SET totp_pending = $2 WHERE id = $1")
        .bind(caller.user_id)
        .bind(&secret[..])
        .execute(&mut *tx)
        .await?;
    audit
        .append(&mut tx, &app, Event::new(Action::TotpSetup))
        .await?;
    tx.commit().await?;
    Ok(axum::Json(TotpSetup {
        secret: totp::base32_encode(&secret),
        uri: totp::uri(&caller.username, &secret),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    code: String,
}

/// `PUT /api/session/totp`: turns TOTP on once a code from the pending secret is shown.
#[utoipa::path(
    put,
    path = "/api/session/totp",
    summary = "Turn TOTP on with a code",
    request_body = Confirm,
    responses(
        (status = 204, description = "TOTP is on"),
        (status = 400, description = "`totp_not_started` or `totp_wrong_code`"),
    )
)]
pub async fn totp_confirm(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Json(body): Json<Confirm>,
) -> Result<StatusCode> {
    let pending: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT totp_pending FROM users WHERE id = $1")
            .bind(caller.user_id)
            .fetch_one(&app.pool)
            .await?;
    let Some(secret) = pending else {
        return Err(Error::bad_request(
            "totp_not_started",
            "start TOTP set-up with POST /api/session/totp first",
        ));
    };
    let step = totp::matching_step(&secret, &body.code, totp::step_of(app.now().timestamp()))
        .ok_or_else(|| {
            Error::bad_request(
                "totp_wrong_code",
                "the code does not match; check the app's clock and retry",
            )
        })?;
    let mut tx = app.pool.begin().await?;
    sqlx::query(
        "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = $2 WHERE id = $1",
    )
    .bind(caller.user_id)
    .bind(step as i64)
    .execute(&mut *tx)
    .await?;
    audit
        .append(&mut tx, &app, Event::new(Action::TotpEnabled))
        .await?;
    tx.commit().await?;
    tracing::info!(username = %caller.username, "totp enabled");
    Ok(StatusCode::NO_CONTENT)
}
