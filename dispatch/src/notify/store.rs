//! Delivery rows (`notification_deliveries`): planning them from new notifications, claiming due
//! ones, recording outcomes, recovering interrupted sends, and what the API shows. Each function
//! is one statement or one transaction.

use super::config::{Facts, NotifyConfig};
use super::retry::{Backoff, Settled};
use super::{ChannelKind, Message, retry};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A notification waiting to be planned.
#[derive(sqlx::FromRow)]
struct Unplanned {
    id: Uuid,
    target_kind: String,
    town_id: String,
    tier: String,
    exercise: bool,
    created_at: DateTime<Utc>,
}

/// Most notifications one planning transaction takes.
const PLAN_BATCH: i64 = 500;

/// Plans the deliveries of notifications not planned yet: one `pending` row per channel whose
/// filter takes it (none for a notification older than `max_age_secs`), and marks them planned,
/// in one transaction. Returns how many deliveries it created.
pub async fn plan(
    pool: &PgPool,
    config: &NotifyConfig,
    now: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let rows: Vec<Unplanned> = sqlx::query_as(
        "SELECT n.id, n.target_kind, i.town_id, i.tier, n.exercise IS NOT NULL AS exercise, \
         n.created_at FROM notifications n JOIN incidents i ON i.id = n.incident_id \
         WHERE n.delivery_planned_at IS NULL ORDER BY n.created_at LIMIT $1 \
         FOR UPDATE OF n SKIP LOCKED",
    )
    .bind(PLAN_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let max_age = Duration::seconds(config.max_age_secs as i64);
    let mut created = 0;
    for n in &rows {
        if now - n.created_at > max_age {
            tracing::warn!(notification = %n.id, "notification too old when first seen; not delivered");
            continue;
        }
        let facts = Facts {
            target_kind: &n.target_kind,
            town_id: &n.town_id,
            tier: &n.tier,
            exercise: n.exercise,
        };
        for c in config.channel.iter().filter(|c| c.accepts(&facts)) {
            let r = sqlx::query(
                "INSERT INTO notification_deliveries (id, notification_id, channel, channel_kind, \
                 next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (notification_id, channel) DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(n.id)
            .bind(&c.name)
            .bind(c.kind.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            created += r.rows_affected() as usize;
        }
    }
    let ids: Vec<Uuid> = rows.iter().map(|n| n.id).collect();
    sqlx::query("UPDATE notifications SET delivery_planned_at = $2 WHERE id = ANY($1)")
        .bind(&ids)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(created)
}

/// A delivery a worker holds while sending it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub notification_id: Uuid,
    pub channel: String,
    pub attempts: i32,
}

/// Claims up to `limit` due deliveries of the configured `channels` for `worker` until
/// `now + lease`: marks them `sending` and counts the attempt, committed before any request leaves.
pub async fn claim(
    pool: &PgPool,
    channels: &[String],
    now: DateTime<Utc>,
    lease: Duration,
    worker: &str,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE notification_deliveries SET state = 'sending', attempts = attempts + 1, \
         lease_until = $3, claimed_by = $4, last_attempt_at = $2 \
         WHERE id IN (SELECT id FROM notification_deliveries WHERE state IN ('pending', 'failed') \
           AND next_attempt_at <= $2 AND channel = ANY($1) ORDER BY next_attempt_at LIMIT $5 \
           FOR UPDATE SKIP LOCKED) \
         RETURNING id, notification_id, channel, attempts",
    )
    .bind(channels)
    .bind(now)
    .bind(now + lease)
    .bind(worker)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The facts of a notification for rendering.
pub async fn message(pool: &PgPool, notification: Uuid) -> Result<Message, sqlx::Error> {
    sqlx::query_as(
        "SELECT n.id AS notification_id, n.incident_id, i.kind, i.tier, \
         i.suggested_severity AS severity, i.town_id, r.name_zh AS town_name, \
         COALESCE(p.name, i.address) AS place, n.target_kind, n.target_id, n.target_name, \
         split_part(n.reason, ':', 1) AS step_target, \
         COALESCE(NULLIF(tm.phone, ''), u.phone, '') AS phone, n.exercise, n.created_at \
         FROM notifications n JOIN incidents i ON i.id = n.incident_id \
         JOIN regions r ON r.id = i.town_id \
         LEFT JOIN premises p ON p.id = i.premises_id \
         LEFT JOIN teams tm ON n.target_kind = 'team' AND tm.id::text = n.target_id \
         LEFT JOIN users u ON n.target_kind = 'user' AND u.id::text = n.target_id \
         WHERE n.id = $1",
    )
    .bind(notification)
    .fetch_one(pool)
    .await
}

/// Records how `worker`'s attempt at `delivery` ended. False when the worker no longer held it
/// (its lease expired and another worker took it over).
pub async fn finish(
    pool: &PgPool,
    delivery: Uuid,
    worker: &str,
    settled: &Settled,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE notification_deliveries SET state = $3, lease_until = NULL, \
         last_error = COALESCE($4, last_error), next_attempt_at = $5, \
         sent_at = CASE WHEN $3 = 'sent' THEN $6 END \
         WHERE id = $1 AND state = 'sending' AND claimed_by = $2",
    )
    .bind(delivery)
    .bind(worker)
    .bind(settled.state)
    .bind(&settled.error)
    .bind(settled.next_attempt_at)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Settles every delivery whose sender's lease expired ([`retry::after_interruption`]), in one
/// transaction. Returns how many.
pub async fn recover(
    pool: &PgPool,
    backoff: &Backoff,
    now: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let stale: Vec<(Uuid, String, i32, Option<String>)> = sqlx::query_as(
        "SELECT id, channel_kind, attempts, claimed_by FROM notification_deliveries \
         WHERE state = 'sending' AND lease_until < $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    for (id, kind, attempts, worker) in &stale {
        let kind = ChannelKind::parse(kind).unwrap_or(ChannelKind::Wecom);
        let worker = worker.as_deref().unwrap_or("a worker");
        let s = retry::after_interruption(kind, *attempts as u32, worker, backoff, now);
        tracing::warn!(delivery = %id, channel_kind = kind.as_str(), state = s.state,
                       "send interrupted by a stopped worker");
        sqlx::query(
            "UPDATE notification_deliveries SET state = $2, lease_until = NULL, last_error = $3, \
             next_attempt_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(s.state)
        .bind(&s.error)
        .bind(s.next_attempt_at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(stale.len())
}

/// A delivery as the API shows it under its notification.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    #[serde(skip)]
    pub notification_id: Uuid,
    pub id: Uuid,
    pub channel: String,
    pub channel_kind: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The deliveries of an incident's notifications.
pub async fn deliveries(
    conn: &mut PgConnection,
    incident: Uuid,
) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.notification_id, d.id, d.channel, d.channel_kind, d.state, d.attempts, \
         d.last_error, d.last_attempt_at, d.next_attempt_at, d.sent_at \
         FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id \
         WHERE n.incident_id = $1 ORDER BY d.created_at, d.channel",
    )
    .bind(incident)
    .fetch_all(conn)
    .await
}

/// A notification with its deliveries, as `GET /api/incidents/{id}` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivered {
    #[serde(flatten)]
    pub notification: crate::escalation::store::Notification,
    pub deliveries: Vec<Delivery>,
}

/// Attaches each notification's deliveries.
pub async fn with_deliveries(
    conn: &mut PgConnection,
    incident: Uuid,
    notifications: Vec<crate::escalation::store::Notification>,
) -> Result<Vec<Delivered>, sqlx::Error> {
    let all = deliveries(conn, incident).await?;
    Ok(notifications
        .into_iter()
        .map(|n| Delivered {
            deliveries: all
                .iter()
                .filter(|d| d.notification_id == n.id)
                .cloned()
                .collect(),
            notification: n,
        })
        .collect())
}

/// Counts by state of one channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub dead: i64,
    pub uncertain: i64,
}

/// One channel's summary for `GET /api/notify/channels`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelSummary {
    pub name: String,
    pub kind: String,
    /// False for a channel that has rows but is no longer in the config (its rows are not sent).
    pub configured: bool,
    pub drills: bool,
    pub counts: Counts,
    pub last_sent_at: Option<DateTime<Utc>>,
    /// The latest error of any delivery, and when that attempt was.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// A channel's latest send and latest error: (channel, sent_at, last_error, its attempt's time).
type LastActivity = (
    String,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<DateTime<Utc>>,
);

/// Every configured channel (and any unconfigured one with rows) with its counts and last error.
pub async fn summary(
    pool: &PgPool,
    config: &NotifyConfig,
) -> Result<Vec<ChannelSummary>, sqlx::Error> {
    let mut out: Vec<ChannelSummary> = config
        .channel
        .iter()
        .map(|c| ChannelSummary {
            name: c.name.clone(),
            kind: c.kind.as_str().to_owned(),
            configured: true,
            drills: c.drills,
            counts: Counts::default(),
            last_sent_at: None,
            last_error: None,
            last_error_at: None,
        })
        .collect();
    let counts: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT channel, min(channel_kind), state, count(*) FROM notification_deliveries \
         GROUP BY channel, state ORDER BY channel",
    )
    .fetch_all(pool)
    .await?;
    for (channel, kind, state, n) in counts {
        let i = match out.iter().position(|s| s.name == channel) {
            Some(i) => i,
            None => {
                out.push(ChannelSummary {
                    name: channel,
                    kind,
                    configured: false,
                    drills: false,
                    counts: Counts::default(),
                    last_sent_at: None,
                    last_error: None,
                    last_error_at: None,
                });
                out.len() - 1
            }
        };
        let c = &mut out[i].counts;
        match state.as_str() {
            "pending" => c.pending = n,
            "sending" => c.sending = n,
            "sent" => c.sent = n,
            "failed" => c.failed = n,
            "dead" => c.dead = n,
            _ => c.uncertain = n,
        }
    }
    let last: Vec<LastActivity> = sqlx::query_as(
        "SELECT channel, max(sent_at), \
             (array_agg(last_error ORDER BY last_attempt_at DESC) \
                FILTER (WHERE last_error IS NOT NULL))[1], \
             max(last_attempt_at) FILTER (WHERE last_error IS NOT NULL) \
             FROM notification_deliveries GROUP BY channel",
    )
    .fetch_all(pool)
    .await?;
    for (channel, sent, error, error_at) in last {
        if let Some(s) = out.iter_mut().find(|s| s.name == channel) {
            s.last_sent_at = sent;
            s.last_error = error;
            s.last_error_at = error_at;
        }
    }
    Ok(out)
}
