//! A voice channel's floor in PostgreSQL (`voice_floor`, migration 0023): one talker at a time,
//! supervisors take over. The rule is the camera talk-down's ([`crate::intercom::decide`]); only
//! the table differs (a channel is no camera).

use crate::auth::Caller;
use crate::intercom::floor::Taken;
use crate::intercom::{Asker, Decision, HOLD_SECS, Holder, decide};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// Ends the channel's holding that ran out, then applies the floor rule for `caller`.
pub async fn take(
    tx: &mut Transaction<'_, Postgres>,
    room: &str,
    caller: &Caller,
    asker: Asker,
    now: DateTime<Utc>,
) -> Result<Taken, sqlx::Error> {
    let expires = now + chrono::Duration::seconds(HOLD_SECS);
    sqlx::query(
        "UPDATE voice_floor SET ended_at = $2, end_reason = 'timeout' \
         WHERE room_id = $1 AND ended_at IS NULL AND expires_at <= $2",
    )
    .bind(room)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let holder = holder_for_update(tx, room).await?;
    let taken_from = match decide(holder, asker) {
        Decision::Refuse(h) => return Ok(Taken::Refused(h)),
        Decision::Renew { session_id } => {
            sqlx::query("UPDATE voice_floor SET expires_at = $2 WHERE id = $1")
                .bind(session_id)
                .bind(expires)
                .execute(&mut **tx)
                .await?;
            return Ok(Taken::Renewed { session_id });
        }
        Decision::TakeOver(h) => {
            end(tx, h.session_id, "takeover", caller.user_id, now).await?;
            Some(h)
        }
        Decision::Grant => None,
    };
    let session_id: i64 = sqlx::query_scalar(
        "INSERT INTO voice_floor (room_id, user_id, username, display_name, started_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(room)
    .bind(caller.user_id)
    .bind(&caller.username)
    .bind(&caller.display_name)
    .bind(now)
    .bind(expires)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Taken::Started {
        session_id,
        taken_from,
    })
}

async fn holder_for_update(
    tx: &mut Transaction<'_, Postgres>,
    room: &str,
) -> Result<Option<Holder>, sqlx::Error> {
    Ok(
        sqlx::query_as::<_, (i64, Uuid, String, String, DateTime<Utc>)>(
            "SELECT id, user_id, username, display_name, started_at FROM voice_floor \
         WHERE room_id = $1 AND ended_at IS NULL FOR UPDATE",
        )
        .bind(room)
        .fetch_optional(&mut **tx)
        .await?
        .map(
            |(session_id, user_id, username, display_name, started_at)| Holder {
                session_id,
                user_id,
                username,
                display_name,
                started_at,
            },
        ),
    )
}

/// Who holds the channel now (an expired holding counts as free).
pub async fn holder(
    pool: &sqlx::PgPool,
    room: &str,
    now: DateTime<Utc>,
) -> Result<Option<Holder>, sqlx::Error> {
    Ok(
        sqlx::query_as::<_, (i64, Uuid, String, String, DateTime<Utc>)>(
            "SELECT id, user_id, username, display_name, started_at FROM voice_floor \
         WHERE room_id = $1 AND ended_at IS NULL AND expires_at > $2",
        )
        .bind(room)
        .bind(now)
        .fetch_optional(pool)
        .await?
        .map(
            |(session_id, user_id, username, display_name, started_at)| Holder {
                session_id,
                user_id,
                username,
                display_name,
                started_at,
            },
        ),
    )
}

/// Ends `user`'s holding of the channel, if any; returns its id.
pub async fn release(
    tx: &mut Transaction<'_, Postgres>,
    room: &str,
    user: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM voice_floor WHERE room_id = $1 AND user_id = $2 AND ended_at IS NULL \
         FOR UPDATE",
    )
    .bind(room)
    .bind(user)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    end(tx, id, "released", user, now).await?;
    Ok(Some(id))
}

async fn end(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    reason: &str,
    by: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE voice_floor SET ended_at = $2, end_reason = $3, ended_by = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(reason)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
