//! Users: who logs in, with which role and town scope.

use crate::auth::{Role, Scope};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// A user as the API shows it (never the password hash or TOTP secret).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: String,
    /// `null` = the whole district.
    pub scope_towns: Option<Vec<String>>,
    pub team_id: Option<Uuid>,
    /// For SMS and robot @mentions; `""` = none.
    pub phone: String,
    pub disabled: bool,
    pub totp_enabled: bool,
}

/// The body of `POST /api/users`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// `null` or absent = the whole district.
    #[serde(default)]
    pub scope_towns: Option<Vec<String>>,
    #[serde(default)]
    pub team_id: Option<Uuid>,
    /// For SMS and robot @mentions; absent or `""` = none.
    #[serde(default)]
    pub phone: String,
    pub password: String,
}

impl NewUser {
    pub fn scope(&self) -> Scope {
        Scope::from_column(self.scope_towns.clone())
    }
}

/// The body of `PUT /api/users/{id}`: the user's new state (the user name never changes).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserUpdate {
    pub display_name: String,
    pub role: Role,
    /// `null` or absent = the whole district.
    #[serde(default)]
    pub scope_towns: Option<Vec<String>>,
    #[serde(default)]
    pub team_id: Option<Uuid>,
    #[serde(default)]
    pub phone: String,
    /// A disabled user cannot log in; their sessions end at once.
    #[serde(default)]
    pub disabled: bool,
    /// A new password; absent keeps the current one. Setting one ends the user's sessions.
    #[serde(default)]
    pub password: Option<String>,
}

impl UserUpdate {
    pub fn scope(&self) -> Scope {
        Scope::from_column(self.scope_towns.clone())
    }
}

/// Whether `phone` is acceptable: empty, or 3-32 of digits, spaces, `+`, `-`, starting with a
/// digit or `+`.
pub fn valid_phone(phone: &str) -> bool {
    phone.is_empty()
        || (phone.len() >= 3
            && phone.len() <= 32
            && phone.starts_with(|c: char| c.is_ascii_digit() || c == '+')
            && phone
                .chars()
                .all(|c| c.is_ascii_digit() || " +-".contains(c)))
}

/// Whether `name` is a valid user name: 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit.
pub fn valid_username(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

const COLUMNS: &str = "id, username, display_name, role, scope_towns, team_id, phone, disabled, totp_secret IS NOT NULL AS totp_enabled";

/// Users whose whole scope lies within `scope` (None = district: everyone).
pub async fn list(pool: &PgPool, scope: Option<&[String]>) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE $1::text[] IS NULL \
         OR (scope_towns IS NOT NULL AND scope_towns <@ $1) ORDER BY username"
    )))
    .bind(scope)
    .fetch_all(pool)
    .await
}

/// Creates a user with an already computed password hash.
pub async fn insert<'e>(
    db: impl sqlx::PgExecutor<'e>,
    u: &NewUser,
    password_hash: &str,
) -> Result<User, sqlx::Error> {
    sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, username, display_name, role, scope_towns, team_id, password_hash, phone) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(&u.username)
    .bind(&u.display_name)
    .bind(u.role.as_str())
    .bind(&u.scope_towns)
    .bind(u.team_id)
    .bind(password_hash)
    .bind(&u.phone)
    .fetch_one(db)
    .await
}

/// Replaces user `id`'s editable fields (and the password hash when given); ends the user's
/// sessions when disabled or given a new password. None when no such user exists.
pub async fn update(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: Uuid,
    u: &UserUpdate,
    password_hash: Option<&str>,
) -> Result<Option<User>, sqlx::Error> {
    let user = sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(format!(
        "UPDATE users SET display_name = $2, role = $3, scope_towns = $4, team_id = $5, phone = $6, \
         disabled = $7, password_hash = coalesce($8, password_hash) WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(u.display_name.trim())
    .bind(u.role.as_str())
    .bind(&u.scope_towns)
    .bind(u.team_id)
    .bind(&u.phone)
    .bind(u.disabled)
    .bind(password_hash)
    .fetch_optional(&mut **tx)
    .await?;
    if user.is_some() && (u.disabled || password_hash.is_some()) {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(user)
}

/// What a login needs to know about a user.
#[derive(Debug, sqlx::FromRow)]
pub struct Credentials {
    pub id: Uuid,
    pub password_hash: String,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_last_step: Option<i64>,
    pub disabled: bool,
}

pub async fn credentials(
    pool: &PgPool,
    username: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as::<_, Credentials>(
        "SELECT id, password_hash, totp_secret, totp_last_step, disabled FROM users WHERE username = $1",
    )
    .bind(username.to_lowercase())
    .fetch_optional(pool)
    .await
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_lowercase_ascii_with_dots_and_dashes() {
        assert!(valid_username("wang.fang"));
        assert!(valid_username("op-01"));
        assert!(!valid_username("Wang"));
        assert!(!valid_username(".hidden"));
        assert!(!valid_username("王芳"));
        assert!(!valid_username(""));
    }

    #[test]
    fn phones_are_empty_or_digits_with_plus_dash_and_spaces() {
        assert!(valid_phone(""));
        assert!(valid_phone("13800000001"));
        assert!(valid_phone("+86 10-6980 1234"));
        assert!(!valid_phone("call me"));
        assert!(!valid_phone("-1"));
        assert!(!valid_phone(&"1".repeat(33)));
    }
}
