//! The floor in PostgreSQL (`talk_sessions`, migration 0020): [`take`] and [`release`] run the
//! rule of [`super::decide`] inside the caller's transaction, so the audit rows commit with them.

use super::{Asker, Decision, HOLD_SECS, Holder, decide};
use crate::auth::Caller;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// What [`take`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// A new holding (`taken_from`: the talker it was taken over from).
    Started {
        session_id: i64,
        taken_from: Option<Holder>,
    },
    /// The caller's holding, extended.
    Renewed { session_id: i64 },
    /// Someone else holds the floor.
    Refused(Holder),
}

/// Ends the camera's holding that ran out, then applies the floor rule for `caller`.
pub async fn take(
    tx: &mut Transaction<'_, Postgres>,
    camera: &str,
    caller: &Caller,
    asker: Asker,
    incident: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Taken, sqlx::Error> {
    let expires = now + chrono::Duration::seconds(HOLD_SECS);
    sqlx::query(
        "UPDATE talk_sessions SET ended_at = $2, end_reason = 'timeout' \
         WHERE camera_id = $1 AND ended_at IS NULL AND expires_at <= $2",
    )
    .bind(camera)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let holder: Option<Holder> = sqlx::query_as::<_, (i64, Uuid, String, String, DateTime<Utc>)>(
        "SELECT id, user_id, username, display_name, started_at FROM talk_sessions \
         WHERE camera_id = $1 AND ended_at IS NULL FOR UPDATE",
    )
    .bind(camera)
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
    );
    let taken_from = match decide(holder, asker) {
        Decision::Refuse(h) => return Ok(Taken::Refused(h)),
        Decision::Renew { session_id } => {
            sqlx::query(
                "UPDATE talk_sessions SET expires_at = $2, incident_id = COALESCE($3, incident_id) \
                 WHERE id = $1",
            )
            .bind(session_id)
            .bind(expires)
            .bind(incident)
            .execute(&mut **tx)
            .await?;
            return Ok(Taken::Renewed { session_id });
        }
        Decision::TakeOver(h) => {
            end(tx, h.session_id, "takeover", Some(caller.user_id), now).await?;
            Some(h)
        }
        Decision::Grant => None,
    };
    let (session_id,): (i64,) = sqlx::query_as(
        "INSERT INTO talk_sessions (camera_id, user_id, username, display_name, login_session, \
                                    incident_id, started_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(camera)
    .bind(caller.user_id)
    .bind(&caller.username)
    .bind(&caller.display_name)
    .bind(&caller.session_hash)
    .bind(incident)
    .bind(now)
    .bind(expires)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Taken::Started {
        session_id,
        taken_from,
    })
}

/// Ends `user`'s holding of `camera`, if any; returns its id.
pub async fn release(
    tx: &mut Transaction<'_, Postgres>,
    camera: &str,
    user: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    let id: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM talk_sessions WHERE camera_id = $1 AND user_id = $2 AND ended_at IS NULL \
         FOR UPDATE",
    )
    .bind(camera)
    .bind(user)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((id,)) = id else {
        return Ok(None);
    };
    end(tx, id, "released", Some(user), now).await?;
    Ok(Some(id))
}

async fn end(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    reason: &str,
    by: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE talk_sessions SET ended_at = $2, end_reason = $3, ended_by = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(reason)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Where `camera`'s talk audio is played: `backchannel` or `speaker` (`cameras.talk_output`).
pub async fn output(pool: &sqlx::PgPool, camera: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT talk_output FROM cameras WHERE id = $1")
        .bind(camera)
        .fetch_optional(pool)
        .await
}
