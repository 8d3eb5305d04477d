//! Server-side sessions. The id (256 random bits) lives only in the user's `__Host-bl_session`
//! cookie; the database keeps its SHA-256, the user, a CSRF token and two times that decide the
//! idle and absolute timeouts.

use super::{Caller, Role, Scope};
use crate::config::SessionConfig;
use crate::error::Error;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

/// The cookie's name; the `__Host-` prefix makes browsers insist on Secure, Path=/ and no Domain.
pub const COOKIE: &str = "__Host-bl_session";

/// The header that must carry the session's CSRF token on unsafe methods.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// SHA-256 of a session id as stored.
pub fn hash_id(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// The `Set-Cookie` value that hands a session id to the browser.
pub fn set_cookie(id: &str, config: &SessionConfig) -> String {
    format!(
        "{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        config.absolute_timeout_secs
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session id in a `Cookie` header, if any (well-formed: 43 base64url characters).
pub fn id_from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| {
            v.len() == 43
                && base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(v)
                    .is_ok()
        })
}

/// Whether a session created at `created` and last used at `last_seen` has ended at `now`.
pub fn expired(
    config: &SessionConfig,
    created: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    now - last_seen >= Duration::seconds(config.idle_timeout_secs as i64)
        || now - created >= Duration::seconds(config.absolute_timeout_secs as i64)
}

/// A new session: its id (for the cookie only) and CSRF token.
pub struct NewSession {
    pub id: String,
    pub csrf_token: String,
}

/// Starts a session for `user`; the old session presented with the login (if any) is ended first,
/// so a login always gets a new id.
pub async fn create(
    conn: &mut sqlx::PgConnection,
    user: Uuid,
    previous: Option<&str>,
    now: DateTime<Utc>,
) -> Result<NewSession, sqlx::Error> {
    if let Some(old) = previous {
        delete(&mut *conn, &hash_id(old)).await?;
    }
    let session = NewSession {
        id: super::random_token(32),
        csrf_token: super::random_token(32),
    };
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(hash_id(&session.id))
    .bind(user)
    .bind(&session.csrf_token)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(session)
}

/// Ends a session.
pub async fn delete<'e>(db: impl sqlx::PgExecutor<'e>, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes every session that has timed out (run at each login, so the table stays small).
pub async fn sweep(
    pool: &PgPool,
    config: &SessionConfig,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE last_seen_at <= $1 OR created_at <= $2")
        .bind(now - Duration::seconds(config.idle_timeout_secs as i64))
        .bind(now - Duration::seconds(config.absolute_timeout_secs as i64))
        .execute(pool)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: Uuid,
    csrf_token: String,
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    username: String,
    display_name: String,
    role: String,
    scope_towns: Option<Vec<String>>,
    disabled: bool,
}

/// The caller of session `id` at `now`: 401 when unknown, timed out or the user is disabled. A
/// valid session's idle timer restarts.
pub async fn authenticate(
    pool: &PgPool,
    config: &SessionConfig,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Caller, Error> {
    let id_hash = hash_id(id);
    let row = sqlx::query_as::<_, Row>(
        "SELECT s.user_id, s.csrf_token, s.created_at, s.last_seen_at, u.username, u.display_name, u.role, \
         u.scope_towns, u.disabled FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1",
    )
    .bind(&id_hash)
    .fetch_optional(pool)
    .await?
    .ok_or_else(Error::unauthenticated)?;
    if row.disabled || expired(config, row.created_at, row.last_seen_at, now) {
        delete(pool, &id_hash).await?;
        return Err(Error::unauthenticated());
    }
    sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
        .bind(&id_hash)
        .bind(now)
        .execute(pool)
        .await?;
    let role = Role::parse(&row.role)
        .ok_or_else(|| Error::internal("reading a user's role", &row.role))?;
    Ok(Caller {
        user_id: row.user_id,
        username: row.username,
        display_name: row.display_name,
        role,
        scope: Scope::from_column(row.scope_towns),
        csrf_token: row.csrf_token,
        session_hash: id_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SessionConfig {
        SessionConfig {
            idle_timeout_secs: 60,
            absolute_timeout_secs: 600,
        }
    }

    #[test]
    fn the_cookie_is_host_prefixed_secure_http_only_and_strict() {
        let c = set_cookie("abc", &config());
        assert!(
            c.starts_with("__Host-bl_session=abc; Path=/; Secure; HttpOnly; SameSite=Strict"),
            "{c}"
        );
    }

    #[test]
    fn the_session_id_is_found_among_other_cookies_and_junk_is_ignored() {
        let id = crate::auth::random_token(32);
        let header = format!("theme=dark; {COOKIE}={id}; lang=zh");
        assert_eq!(id_from_cookie_header(&header), Some(id.as_str()));
        assert_eq!(id_from_cookie_header(&format!("{COOKIE}=short")), None);
        assert_eq!(id_from_cookie_header("other=1"), None);
    }

    #[test]
    fn a_session_ends_when_idle_too_long_or_too_old_whichever_comes_first() {
        let t0 = Utc::now();
        let s = |n| Duration::seconds(n);
        assert!(!expired(&config(), t0, t0, t0 + s(59)));
        assert!(expired(&config(), t0, t0, t0 + s(60)));
        // used every 30 s it lives until the absolute timeout
        assert!(!expired(&config(), t0, t0 + s(570), t0 + s(599)));
        assert!(expired(&config(), t0, t0 + s(570), t0 + s(600)));
    }
}
