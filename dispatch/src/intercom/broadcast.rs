//! Group broadcast (issue 7): one operator's voice to many kitchens at once (migration 0022).
//!
//! **Each target camera is a talk-down of its own that the broadcast holds the floor for**: a
//! camera another operator talks to is `busy` (a supervisor asking to take over takes it, as
//! [`super::decide`] allows), a camera without a speaker is `noSpeaker`, one whose edge box is
//! offline is `offline`. The others start `connecting`; the gateway fans the one WHIP ingest out to
//! their talk channels and asks each edge (`talk-start`), whose answer to `startTalk` moves the
//! target to `playing` or to `failed` ([`from_outcome`]). Ending the broadcast, or its floor (a
//! takeover, a timeout, a logout: migration 0022's trigger), ends the target.
//!
//! [`from_outcome`] is the rule, plain data; the rest applies it to PostgreSQL.

use bl_proto::command::{CommandResult, Outcome, codes};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// How long a target may stay `connecting` before it counts as `offline`: the operator's
/// connection, the gateway's `talk-start` and the edge's answer all fit well within it.
pub const ANSWER_SECS: u64 = 30;

/// Why a target failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The camera has no speaker or backchannel (or no edge box to play on).
    NoSpeaker,
    /// Its edge box or the camera is offline, or did not answer.
    Offline,
    /// Another operator talks to it.
    Busy,
    /// The edge box answered with another error.
    EdgeError,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoSpeaker => "noSpeaker",
            Reason::Offline => "offline",
            Reason::Busy => "busy",
            Reason::EdgeError => "edgeError",
        }
    }
}

/// A target's state after the edge answered `startTalk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    Playing(String),
    Failed(Reason, String),
}

/// What the edge's answer to `startTalk` means for the target.
pub fn from_outcome(outcome: &Outcome) -> Answered {
    match outcome {
        Outcome::Ok { detail } => Answered::Playing(detail.clone().unwrap_or_default()),
        Outcome::Error { code, message } => {
            let reason = match code.as_str() {
                codes::UNSUPPORTED => Reason::NoSpeaker,
                codes::CAMERA_OFFLINE | codes::EXPIRED => Reason::Offline,
                codes::BUSY => Reason::Busy,
                _ => Reason::EdgeError,
            };
            Answered::Failed(reason, format!("{code}: {message}"))
        }
    }
}

/// Notes the `startTalk` sent for `camera`: if it is a target of an open broadcast still
/// connecting, the edge's answer to `cmd_id` will move it.
pub async fn note_start(pool: &PgPool, camera: &str, cmd_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE broadcast_targets SET cmd_id = $2 WHERE camera_id = $1 AND state = 'connecting'",
    )
    .bind(camera)
    .bind(cmd_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// `startTalk` could not be sent for `camera`: its connecting targets fail as `offline`.
pub async fn note_unreachable(
    pool: &PgPool,
    camera: &str,
    why: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let ids: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT broadcast_id FROM broadcast_targets WHERE camera_id = $1 AND state = 'connecting'",
    )
    .bind(camera)
    .fetch_all(&mut *tx)
    .await?;
    for (id,) in ids {
        fail(&mut tx, id, camera, Reason::Offline, why, now).await?;
    }
    tx.commit().await
}

/// Applies an edge's command result if it answers a broadcast's `startTalk`; false when it is not
/// one (the caller hands it on).
pub async fn apply_result(pool: &PgPool, result: &CommandResult) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let targets: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT broadcast_id, camera_id, state FROM broadcast_targets WHERE cmd_id = $1 FOR UPDATE",
    )
    .bind(result.cmd_id)
    .fetch_all(&mut *tx)
    .await?;
    if targets.is_empty() {
        return Ok(false);
    }
    let now = Utc::now();
    for (id, camera, state) in targets {
        if state != "connecting" {
            continue;
        }
        match from_outcome(&result.outcome) {
            Answered::Playing(detail) => {
                sqlx::query(
                    "UPDATE broadcast_targets SET state = 'playing', detail = $3, updated_at = $4 \
                     WHERE broadcast_id = $1 AND camera_id = $2",
                )
                .bind(id)
                .bind(&camera)
                .bind(detail)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            Answered::Failed(reason, detail) => {
                fail(&mut tx, id, &camera, reason, &detail, now).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Fails one target and gives its floor back.
pub async fn fail(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    broadcast: Uuid,
    camera: &str,
    reason: Reason,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let session: Option<(Option<i64>,)> = sqlx::query_as(
        "UPDATE broadcast_targets SET state = 'failed', reason = $3, detail = $4, updated_at = $5 \
         WHERE broadcast_id = $1 AND camera_id = $2 RETURNING talk_session",
    )
    .bind(broadcast)
    .bind(camera)
    .bind(reason.as_str())
    .bind(detail)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some((Some(session),)) = session {
        release_floor(tx, session, now).await?;
    }
    Ok(())
}

/// Ends a target's holding of its camera's floor (if still open).
async fn release_floor(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    session: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE talk_sessions SET ended_at = $2, end_reason = 'released', ended_by = user_id \
         WHERE id = $1 AND ended_at IS NULL",
    )
    .bind(session)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends broadcast `id`: its connecting and playing targets end and give their floors back.
/// False when it had ended already.
pub async fn end(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let ended =
        sqlx::query("UPDATE broadcasts SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1;
    let sessions: Vec<(Option<i64>,)> = sqlx::query_as(
        "UPDATE broadcast_targets SET state = 'ended', updated_at = $2 \
         WHERE broadcast_id = $1 AND state IN ('connecting', 'playing') RETURNING talk_session",
    )
    .bind(id)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    for session in sessions.into_iter().filter_map(|(s,)| s) {
        release_floor(tx, session, now).await?;
    }
    Ok(ended)
}

/// Targets of `broadcast` still `connecting` after [`ANSWER_SECS`] fail as `offline` (the edge
/// never answered): run once per broadcast by the replica that started it.
pub async fn time_out(pool: &PgPool, broadcast: Uuid) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let cameras: Vec<(String,)> = sqlx::query_as(
        "SELECT camera_id FROM broadcast_targets WHERE broadcast_id = $1 AND state = 'connecting' \
         FOR UPDATE",
    )
    .bind(broadcast)
    .fetch_all(&mut *tx)
    .await?;
    let why = format!(
        "the edge box did not answer within {ANSWER_SECS} s (offline, or the operator's voice never reached the gateway)"
    );
    for (camera,) in cameras {
        fail(
            &mut tx,
            broadcast,
            &camera,
            Reason::Offline,
            &why,
            Utc::now(),
        )
        .await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str) -> Outcome {
        Outcome::Error {
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn the_edges_answer_decides_playing_or_why_it_failed() {
        assert_eq!(
            from_outcome(&Outcome::Ok {
                detail: Some("talking".into())
            }),
            Answered::Playing("talking".into())
        );
        let reason = |code| match from_outcome(&error(code)) {
            Answered::Failed(r, _) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(codes::UNSUPPORTED), Reason::NoSpeaker);
        assert_eq!(reason(codes::CAMERA_OFFLINE), Reason::Offline);
        assert_eq!(reason(codes::EXPIRED), Reason::Offline);
        assert_eq!(reason(codes::BUSY), Reason::Busy);
        assert_eq!(reason(codes::UNKNOWN_CAMERA), Reason::EdgeError);
        assert_eq!(reason(codes::INTERNAL), Reason::EdgeError);
    }
}
