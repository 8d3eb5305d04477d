//! `/api/session`: log in, who am I (with the CSRF token), log out, and TOTP set-up.

use super::Json;
use crate::AppState;
use crate::auth::{Caller, password, session, throttle, totp};
use crate::error::{Error, Kind, Result};
use crate::registry::users;
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
    /// The 6-digit code, for users with TOTP enabled.
    #[serde(default)]
    totp: Option<String>,
}

/// The answer of login and `GET /api/session`.
#[derive(Serialize)]
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
pub async fn login(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<Login>,
) -> Result<Response> {
    let now = app.now();
    let pool = &app.pool;
    let cfg = &app.config.login;
    let username = body.username.trim().to_lowercase();
    let user_key = throttle::user_key(&username);
    let ip_key = throttle::ip_key(peer.ip());
    if let Some(secs) = throttle::locked(pool, &[user_key.clone(), ip_key.clone()], now).await? {
        tracing::warn!(%username, ip = %peer.ip(), secs, "login refused while locked out");
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
    let mut ok = password_ok && creds.as_ref().is_some_and(|c| !c.disabled);
    if let (true, Some(c)) = (ok, &creds)
        && let Some(secret) = &c.totp_secret
    {
        let Some(code) = body.totp.as_deref().filter(|c| !c.is_empty()) else {
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
            _ => ok = false,
        }
    }
    let Some(c) = creds.filter(|_| ok) else {
        throttle::record_failure(
            pool,
            &user_key,
            now,
            cfg.max_failures,
            cfg.lockout_base_secs,
            cfg.lockout_max_secs,
        )
        .await?;
        throttle::record_failure(
            pool,
            &ip_key,
            now,
            cfg.ip_max_failures,
            cfg.lockout_base_secs,
            cfg.lockout_max_secs,
        )
        .await?;
        tracing::info!(%username, ip = %peer.ip(), "login failed");
        return Err(login_failed());
    };
    throttle::clear(pool, &user_key).await?;
    session::sweep(pool, &app.config.session, now).await?;
    let previous = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(session::id_from_cookie_header);
    let new = session::create(pool, c.id, previous, now).await?;
    let user = users::get(pool, c.id).await?.ok_or_else(login_failed)?;
    tracing::info!(%username, ip = %peer.ip(), "login");
    let cookie = session::set_cookie(&new.id, &app.config.session);
    let body = Me {
        user,
        csrf_token: new.csrf_token,
    };
    Ok(([(header::SET_COOKIE, cookie)], axum::Json(body)).into_response())
}

/// `GET /api/session`
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
pub async fn logout(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response> {
    session::delete(&app.pool, &caller.session_hash).await?;
    tracing::info!(username = %caller.username, "logout");
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session::clear_cookie())],
    )
        .into_response())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TotpSetup {
    /// Base32, for typing into an authenticator app.
    secret: String,
    /// `otpauth://` URI, for a QR code.
    uri: String,
}

/// `POST /api/session/totp`: makes a new secret, pending until confirmed with a code.
pub async fn totp_begin(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<axum::Json<TotpSetup>> {
    let mut secret = [0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    sqlx::query("UPDATE users SET totp_pending = $2 WHERE id = $1")
        .bind(caller.user_id)
        .bind(&secret[..])
        .execute(&app.pool)
        .await?;
    Ok(axum::Json(TotpSetup {
        secret: totp::base32_encode(&secret),
        uri: totp::uri(&caller.username, &secret),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    code: String,
}

/// `PUT /api/session/totp`: turns TOTP on once a code from the pending secret is shown.
pub async fn totp_confirm(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
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
    sqlx::query(
        "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = $2 WHERE id = $1",
    )
    .bind(caller.user_id)
    .bind(step as i64)
    .execute(&app.pool)
    .await?;
    tracing::info!(username = %caller.username, "totp enabled");
    Ok(StatusCode::NO_CONTENT)
}
