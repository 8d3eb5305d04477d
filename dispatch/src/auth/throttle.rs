//! Login throttling per user name and per client address: after `max_failures` failures in a row a
//! key is locked, for `base` seconds, doubling with each further failure up to `max` seconds. A
//! success clears the user-name key. Failures older than a day are forgotten.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

/// How long a key stays locked after its `failures`-th failure in a row; `None` = not locked.
pub fn lockout(failures: u32, max_failures: u32, base_secs: u64, max_secs: u64) -> Option<u64> {
    if failures < max_failures {
        return None;
    }
    let doublings = (failures - max_failures).min(32);
    Some(base_secs.saturating_mul(1u64 << doublings).min(max_secs))
}

/// The throttle key of a user name.
pub fn user_key(username: &str) -> String {
    format!("user:{}", username.to_lowercase())
}

/// The throttle key of a client address.
pub fn ip_key(ip: std::net::IpAddr) -> String {
    format!("ip:{ip}")
}

/// Seconds until the latest lock among `keys` ends, if any is locked at `now`.
pub async fn locked(
    pool: &PgPool,
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<Option<u64>, sqlx::Error> {
    let until: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(locked_until) FROM login_failures WHERE key = ANY($1) AND locked_until > $2",
    )
    .bind(keys)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(until.map(|u| (u - now).num_seconds().max(1) as u64))
}

/// Counts a failure against `key` and locks it when it reaches `max_failures`; returns the
/// lock-out's length in seconds when this failure locked the key.
pub async fn record_failure(
    conn: &mut sqlx::PgConnection,
    key: &str,
    now: DateTime<Utc>,
    max_failures: u32,
    base_secs: u64,
    max_secs: u64,
) -> Result<Option<u64>, sqlx::Error> {
    let failures: i32 = sqlx::query_scalar(
        "INSERT INTO login_failures (key, failures, last_at) VALUES ($1, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_failures.last_at < $2 - interval '1 day' THEN 1 \
                           ELSE login_failures.failures + 1 END, \
           last_at = $2 \
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let locked = lockout(failures.max(0) as u32, max_failures, base_secs, max_secs);
    if let Some(secs) = locked {
        sqlx::query("UPDATE login_failures SET locked_until = $2 WHERE key = $1")
            .bind(key)
            .bind(now + Duration::seconds(secs as i64))
            .execute(&mut *conn)
            .await?;
    }
    Ok(locked)
}

/// Forgets the failures of `key` (after a successful login).
pub async fn clear(pool: &PgPool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_failures_do_not_lock_and_the_fifth_locks_for_the_base_time() {
        assert_eq!(lockout(4, 5, 60, 3600), None);
        assert_eq!(lockout(5, 5, 60, 3600), Some(60));
    }

    #[test]
    fn each_further_failure_doubles_the_lock_up_to_the_maximum() {
        assert_eq!(lockout(6, 5, 60, 3600), Some(120));
        assert_eq!(lockout(8, 5, 60, 3600), Some(480));
        assert_eq!(lockout(12, 5, 60, 3600), Some(3600));
        assert_eq!(lockout(500, 5, 60, 3600), Some(3600));
    }

    #[test]
    fn user_keys_ignore_case_so_admin_and_admin_share_a_counter() {
        assert_eq!(user_key("Admin"), user_key("admin"));
    }
}
