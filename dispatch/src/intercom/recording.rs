//! Voice recordings (issue 7 item 6): what a gateway reports when a talk-down or broadcast it
//! recorded is stored as gateway-signed evidence ([`Report`], checked by [`Report::check`]), the
//! `voice_recordings` rows (migration 0028) and the incident a talk belongs to. Thin queries and
//! plain checks; the handlers are in `api/voice_recordings.rs`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

/// A finished recording, as the gateway reports it (`POST /internal/voice-recordings`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Report {
    /// Format version, 1.
    pub v: u32,
    /// The blob in the gateway's evidence store.
    pub sha256: String,
    pub size: i64,
    /// `audio/webm` (stereo Opus: left the command center, right the premises).
    pub content_type: String,
    /// `talk`, `broadcast`, `ptt` (a voice channel's transmission) or `room` (a consult room,
    /// every participant mixed).
    pub kind: String,
    /// The talker: the media token's subject (a user id, or `user:{username}` in rooms; for a
    /// room recording, who asked for it).
    pub talker: String,
    /// The cameras the voice went to; the first names the blob.
    pub cameras: Vec<String>,
    pub broadcast: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// Which sides carry sound: `center`, `premises`.
    pub directions: Vec<String>,
    /// Why the premises side is silent, when it is.
    pub premises_note: Option<String>,
}

/// A stored recording, as the apps see it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub sha256: String,
    pub size: i64,
    pub content_type: String,
    pub kind: String,
    pub talker_name: String,
    pub node: String,
    pub cameras: Vec<String>,
    pub incident_id: Option<Uuid>,
    pub broadcast_id: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub directions: Vec<String>,
    pub premises_note: Option<String>,
}

/// How far a talk's recording may start from its floor holding (the gateway's and dispatch's
/// clocks, the WHIP set-up).
const MATCH_SLACK_SECS: i64 = 30;

impl Report {
    /// The first field that is wrong and why (plain logic).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let sha_ok = self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if self.v != 1 {
            return Err(("v", format!("{} is not a known version (1)", self.v)));
        }
        if !sha_ok {
            return Err(("sha256", "must be 64 lowercase hex characters".into()));
        }
        if self.size <= 0 {
            return Err(("size", "must be positive".into()));
        }
        if !self.content_type.starts_with("audio/") || self.content_type.len() > 127 {
            return Err(("contentType", "must be an audio/… type".into()));
        }
        if !matches!(self.kind.as_str(), "talk" | "broadcast" | "ptt" | "room") {
            return Err(("kind", "must be talk, broadcast, ptt or room".into()));
        }
        if self.talker.is_empty() || self.talker.len() > 200 {
            return Err(("talker", "must be 1-200 characters".into()));
        }
        if self.cameras.is_empty() || self.cameras.len() > 1000 {
            return Err(("cameras", "must name 1-1000 cameras".into()));
        }
        if self.ended_at < self.started_at {
            return Err(("endedAt", "is before startedAt".into()));
        }
        if self.directions.is_empty()
            || self
                .directions
                .iter()
                .any(|d| d != "center" && d != "premises")
        {
            return Err(("directions", "must list center and/or premises".into()));
        }
        if self.premises_note.as_ref().is_some_and(|n| n.len() > 500) {
            return Err(("premisesNote", "must be at most 500 characters".into()));
        }
        Ok(())
    }

    /// The recording's length in whole seconds.
    pub fn seconds(&self) -> i64 {
        (self.ended_at - self.started_at).num_seconds()
    }
}

/// The incident of `talker`'s floor holding of `camera` that covers the recording, if it was
/// started from one.
pub async fn incident_of_talk(
    conn: &mut PgConnection,
    camera: &str,
    talker: Uuid,
    report: &Report,
) -> Result<Option<Uuid>, sqlx::Error> {
    let slack = chrono::Duration::seconds(MATCH_SLACK_SECS);
    let found: Option<(Option<Uuid>,)> = sqlx::query_as(
        "SELECT incident_id FROM talk_sessions \
          WHERE camera_id = $1 AND user_id = $2 AND started_at <= $3 \
            AND (ended_at IS NULL OR ended_at >= $4) \
          ORDER BY (incident_id IS NULL), started_at DESC LIMIT 1",
    )
    .bind(camera)
    .bind(talker)
    .bind(report.ended_at + slack)
    .bind(report.started_at - slack)
    .fetch_optional(conn)
    .await?;
    Ok(found.and_then(|(i,)| i))
}

/// Stores a reported recording; false if its blob was reported before (the first report kept).
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    conn: &mut PgConnection,
    r: &Report,
    node: &str,
    talker_id: Option<Uuid>,
    talker_name: &str,
    incident: Option<Uuid>,
    broadcast: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO voice_recordings (sha256, size, content_type, kind, talker_id, talker_name, \
                                       node, cameras, incident_id, broadcast_id, started_at, \
                                       ended_at, directions, premises_note, reported_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&r.sha256)
    .bind(r.size)
    .bind(&r.content_type)
    .bind(&r.kind)
    .bind(talker_id)
    .bind(talker_name)
    .bind(node)
    .bind(&r.cameras)
    .bind(incident)
    .bind(broadcast)
    .bind(r.started_at)
    .bind(r.ended_at)
    .bind(&r.directions)
    .bind(&r.premises_note)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The recordings of an incident, oldest first.
pub async fn of_incident(
    conn: &mut PgConnection,
    incident: Uuid,
) -> Result<Vec<Recording>, sqlx::Error> {
    of(conn, Some(incident), None).await
}

/// The recordings of a broadcast (one, unless its gateway recorded it in parts), oldest first.
pub async fn of_broadcast(
    conn: &mut PgConnection,
    broadcast: Uuid,
) -> Result<Vec<Recording>, sqlx::Error> {
    of(conn, None, Some(broadcast)).await
}

async fn of(
    conn: &mut PgConnection,
    incident: Option<Uuid>,
    broadcast: Option<Uuid>,
) -> Result<Vec<Recording>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sha256, size, content_type, kind, talker_name, node, cameras, incident_id, \
                broadcast_id, started_at, ended_at, directions, premises_note \
           FROM voice_recordings WHERE incident_id = $1 OR broadcast_id = $2 ORDER BY started_at",
    )
    .bind(incident)
    .bind(broadcast)
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            v: 1,
            sha256: "a".repeat(64),
            size: 10,
            content_type: "audio/webm".into(),
            kind: "talk".into(),
            talker: Uuid::nil().to_string(),
            cameras: vec!["cam-1".into()],
            broadcast: None,
            started_at: DateTime::<Utc>::from_timestamp(1_000, 0).unwrap(),
            ended_at: DateTime::<Utc>::from_timestamp(1_012, 0).unwrap(),
            directions: vec!["center".into(), "premises".into()],
            premises_note: None,
        }
    }

    #[test]
    fn a_report_names_its_first_wrong_field() {
        assert_eq!(report().check(), Ok(()));
        assert_eq!(report().seconds(), 12);
        let wrong = |f: fn(&mut Report)| {
            let mut r = report();
            f(&mut r);
            r.check().unwrap_err().0
        };
        assert_eq!(wrong(|r| r.sha256 = "A".repeat(64)), "sha256");
        assert_eq!(wrong(|r| r.kind = "song".into()), "kind");
        assert_eq!(wrong(|r| r.cameras.clear()), "cameras");
        assert_eq!(wrong(|r| r.directions = vec!["left".into()]), "directions");
        assert_eq!(
            wrong(|r| r.ended_at = r.started_at - chrono::Duration::seconds(1)),
            "endedAt"
        );
        assert_eq!(
            wrong(|r| r.content_type = "video/mp4".into()),
            "contentType"
        );
    }
}
