//! Incident rows: thin queries. The timeline is append-only (a trigger refuses UPDATE, DELETE and
//! TRUNCATE), so [`append`] is the only way anything is written to it.

use super::note::Note;
use super::state::State;
use super::{Actor, IncidentId};
use crate::paging::{Page, Paging};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// One timeline entry to append.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub at: DateTime<Utc>,
    pub actor: &'a Actor,
    pub action: &'a str,
    pub from: Option<State>,
    pub to: Option<State>,
    pub note: String,
    /// The note as a code and parameters (the system's notes), for the apps to say in the
    /// reader's language; `None` for what people write.
    pub coded: Option<Note>,
    pub location: Option<Location>,
    pub refs: Value,
}

impl<'a> Entry<'a> {
    /// An entry without a state change, location or references.
    pub fn note(at: DateTime<Utc>, actor: &'a Actor, action: &'a str, note: String) -> Self {
        Entry {
            at,
            actor,
            action,
            from: None,
            to: None,
            note,
            coded: None,
            location: None,
            refs: Value::Object(Default::default()),
        }
    }

    /// The same entry with its note also as a code and parameters.
    pub fn with(mut self, note: Note) -> Self {
        self.coded = Some(note);
        self
    }
}

/// Where something happened (WGS84).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
}

/// Appends one entry to an incident's timeline.
pub async fn append(
    conn: &mut PgConnection,
    incident: IncidentId,
    e: &Entry<'_>,
) -> Result<(), sqlx::Error> {
    append_many(conn, &[(incident, e.clone())]).await
}

/// Appends entries to incidents' timelines in one statement, in the order given (which is the
/// order of their ids, so of the timeline).
pub async fn append_many(
    conn: &mut PgConnection,
    entries: &[(IncidentId, Entry<'_>)],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let column = |f: &dyn Fn(&Entry<'_>) -> Option<String>| -> Vec<Option<String>> {
        entries.iter().map(|(_, e)| f(e)).collect()
    };
    sqlx::query(
        "INSERT INTO incident_timeline (incident_id, at, actor, actor_id, role, action, from_state, \
         to_state, note, lat, lon, refs, note_code, note_params) \
         SELECT i, at, actor, actor_id, role, action, from_state, to_state, note, lat, lon, refs::jsonb, \
                note_code, note_params::jsonb \
           FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::uuid[], $5::text[], $6::text[], \
                       $7::text[], $8::text[], $9::text[], $10::float8[], $11::float8[], $12::text[], \
                       $13::text[], $14::text[]) \
                WITH ORDINALITY AS t(i, at, actor, actor_id, role, action, from_state, to_state, note, \
                                     lat, lon, refs, note_code, note_params, n) \
          ORDER BY n",
    )
    .bind(entries.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(entries.iter().map(|(_, e)| e.at).collect::<Vec<_>>())
    .bind(column(&|e| Some(e.actor.name())))
    .bind(entries.iter().map(|(_, e)| e.actor.user_id()).collect::<Vec<_>>())
    .bind(column(&|e| e.actor.role().map(|r| r.as_str().to_owned())))
    .bind(column(&|e| Some(e.action.to_owned())))
    .bind(column(&|e| e.from.map(|s| s.as_str().to_owned())))
    .bind(column(&|e| e.to.map(|s| s.as_str().to_owned())))
    .bind(column(&|e| Some(e.note.clone())))
    .bind(entries.iter().map(|(_, e)| e.location.map(|l| l.lat)).collect::<Vec<_>>())
    .bind(entries.iter().map(|(_, e)| e.location.map(|l| l.lon)).collect::<Vec<_>>())
    .bind(column(&|e| Some(e.refs.to_string())))
    .bind(column(&|e| e.coded.as_ref().map(|n| n.code.to_owned())))
    .bind(column(&|e| {
        Some(e.coded.as_ref().map_or_else(|| "{}".to_owned(), |n| n.params.to_string()))
    }))
    .execute(conn)
    .await?;
    Ok(())
}

/// An incident as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub id: Uuid,
    pub premises_id: Option<Uuid>,
    pub premises_name: Option<String>,
    pub address: String,
    pub town_id: String,
    pub grid_id: Option<String>,
    pub kind: String,
    pub tier: String,
    pub suggested_severity: Option<String>,
    pub state: String,
    pub source: String,
    pub hotline: Option<String>,
    pub description: String,
    pub case_count: Option<i32>,
    pub deaths: Option<i32>,
    pub exercise: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub last_report_at: DateTime<Utc>,
    pub report_count: i32,
    pub routed_team_id: Option<Uuid>,
    pub routed_team_name: Option<String>,
    pub routed_at: Option<DateTime<Utc>>,
}

impl Incident {
    /// The stored state (the column's CHECK keeps it one of [`State`]).
    pub fn state(&self) -> State {
        State::parse(&self.state).expect("the state column holds a known state")
    }
}

const SELECT: &str = "SELECT i.id, i.premises_id, p.name AS premises_name, \
     COALESCE(NULLIF(i.address, ''), p.address, '') AS address, i.town_id, i.grid_id, i.kind, i.tier, \
     i.suggested_severity, i.state, i.source, i.hotline, i.description, i.case_count, i.deaths, \
     i.exercise, i.opened_at, i.last_report_at, i.report_count, i.routed_team_id, \
     t.name AS routed_team_name, i.routed_at \
     FROM incidents i LEFT JOIN premises p ON p.id = i.premises_id LEFT JOIN teams t ON t.id = i.routed_team_id";

/// One incident by id.
pub async fn get(conn: &mut PgConnection, id: IncidentId) -> Result<Option<Incident>, sqlx::Error> {
    sqlx::query_as::<_, Incident>(sqlx::AssertSqlSafe(format!("{SELECT} WHERE i.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// One incident by id, its row locked until the transaction ends.
pub async fn get_for_update(
    conn: &mut PgConnection,
    id: IncidentId,
) -> Result<Option<Incident>, sqlx::Error> {
    sqlx::query_as::<_, Incident>(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE i.id = $1 FOR UPDATE OF i"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Filters and page of `GET /api/incidents`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<String>,
    pub town: Option<String>,
    pub kind: Option<String>,
    pub tier: Option<String>,
    /// A drill run id: that exercise's incidents. Absent: real incidents only (they never mix).
    pub exercise: Option<String>,
    /// A premises id: that premises' incidents (triage's past incidents).
    pub premises: Option<Uuid>,
    /// 1-based page number. Default 1.
    pub page: Option<u32>,
    /// Items per page, 1-500. Default 50.
    pub per_page: Option<u32>,
}

/// Incidents within `scope` (None = the district), routed to `team` (None = any), matching `query`.
pub async fn list(
    pool: &PgPool,
    scope: Option<&[String]>,
    team: Option<Uuid>,
    query: &ListQuery,
) -> Result<Page<Incident>, sqlx::Error> {
    let paging = Paging::new(query.page, query.per_page);
    const WHERE: &str = "($1::text[] IS NULL OR i.town_id = ANY($1)) \
         AND ($2::text IS NULL OR i.state = $2) AND ($3::text IS NULL OR i.town_id = $3) \
         AND ($4::text IS NULL OR i.kind = $4) AND ($5::text IS NULL OR i.tier = $5) \
         AND i.exercise IS NOT DISTINCT FROM $6 AND ($9::uuid IS NULL OR i.routed_team_id = $9) \
         AND ($10::uuid IS NULL OR i.premises_id = $10)";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM incidents i WHERE {WHERE}"
    )))
    .bind(scope)
    .bind(&query.state)
    .bind(&query.town)
    .bind(&query.kind)
    .bind(&query.tier)
    .bind(&query.exercise)
    .bind(paging.limit())
    .bind(paging.offset())
    .bind(team)
    .bind(query.premises)
    .fetch_one(pool)
    .await?;
    let items = sqlx::query_as::<_, Incident>(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE {WHERE} ORDER BY i.opened_at DESC, i.id LIMIT $7 OFFSET $8"
    )))
    .bind(scope)
    .bind(&query.state)
    .bind(&query.town)
    .bind(&query.kind)
    .bind(&query.tier)
    .bind(&query.exercise)
    .bind(paging.limit())
    .bind(paging.offset())
    .bind(team)
    .bind(query.premises)
    .fetch_all(pool)
    .await?;
    Ok(paging.of(items, total))
}

/// A timeline entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: Option<String>,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    /// The note in English (the record); the apps show `noteCode` in the reader's language when
    /// there is one.
    pub note: String,
    /// The note as a code (the system's notes since issue 6; `null` for older rows and for what
    /// people write) and its parameters.
    #[schema(schema_with = crate::api::openapi::note_code_schema)]
    pub note_code: Option<String>,
    #[schema(value_type = Object)]
    pub note_params: Value,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub refs: Value,
}

/// An incident's timeline, oldest first.
pub async fn timeline(
    conn: &mut PgConnection,
    id: IncidentId,
) -> Result<Vec<TimelineEntry>, sqlx::Error> {
    sqlx::query_as::<_, TimelineEntry>(
        "SELECT seq, at, actor, role, action, from_state, to_state, note, note_code, note_params, \
         lat, lon, refs FROM incident_timeline WHERE incident_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

/// An edge event linked to an incident, with its evidence references.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkedEvent {
    pub event_id: Uuid,
    pub edge_id: String,
    pub camera_id: String,
    #[serde(rename = "type")]
    pub r#type: String,
    pub kind: String,
    pub episode_id: Option<Uuid>,
    pub phase: Option<String>,
    pub at: DateTime<Utc>,
    pub snapshot: Option<Value>,
    pub clip: Option<Value>,
    /// The detection's boxes, normalised to the frame (`[{x, y, w, h, label?, confidence?}]`);
    /// `[]` for an event without any.
    #[schema(value_type = Vec<Object>)]
    pub boxes: Value,
}

/// The edge events of an incident, in the order they happened.
pub async fn events(
    conn: &mut PgConnection,
    id: IncidentId,
) -> Result<Vec<LinkedEvent>, sqlx::Error> {
    sqlx::query_as::<_, LinkedEvent>(
        "SELECT e.event_id, e.edge_id, e.camera_id, e.type, e.kind, e.episode_id, e.phase, e.at, \
         NULLIF(e.payload -> 'snapshot', 'null'::jsonb) AS snapshot, \
         NULLIF(e.payload -> 'clip', 'null'::jsonb) AS clip, \
         COALESCE(NULLIF(e.payload -> 'boxes', 'null'::jsonb), '[]'::jsonb) AS boxes \
         FROM incident_events ie JOIN edge_events e ON e.event_id = ie.event_id \
         WHERE ie.incident_id = $1 ORDER BY e.at, e.event_id",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

/// Moves an incident from `from` to `to`; false when its state was no longer `from`.
pub async fn set_state(
    conn: &mut PgConnection,
    id: IncidentId,
    from: State,
    to: State,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE incidents SET state = $3, updated_at = now() WHERE id = $1 AND state = $2",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(to.as_str())
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Stores triage's rejection as a labelled false positive, with the evidence of every linked
/// edge event (snapshot, clip, model, confidence). Returns its id.
pub async fn label_false_positive(
    conn: &mut PgConnection,
    incident: &Incident,
    reason: &str,
    by: Uuid,
    at: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO false_positives (id, incident_id, kind, premises_id, exercise, reason, labelled_by, \
         labelled_at, evidence) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, COALESCE(jsonb_agg(jsonb_build_object( \
             'eventId', e.event_id, 'cameraId', e.camera_id, 'at', e.at, \
             'snapshot', e.payload -> 'snapshot', 'clip', e.payload -> 'clip', \
             'model', e.payload -> 'model', 'confidence', e.payload -> 'confidence') \
             ORDER BY e.at) FILTER (WHERE e.event_id IS NOT NULL), '[]'::jsonb) \
         FROM (SELECT 1) one \
         LEFT JOIN incident_events ie ON ie.incident_id = $2 \
         LEFT JOIN edge_events e ON e.event_id = ie.event_id",
    )
    .bind(id)
    .bind(incident.id)
    .bind(&incident.kind)
    .bind(incident.premises_id)
    .bind(&incident.exercise)
    .bind(reason)
    .bind(by)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Withdraws the false-positive label of a reopened incident (the row stays, marked).
pub async fn withdraw_false_positive(
    conn: &mut PgConnection,
    incident: IncidentId,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE false_positives SET withdrawn_at = $2 WHERE incident_id = $1 AND withdrawn_at IS NULL",
    )
    .bind(incident)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The current (not withdrawn) false-positive label of an incident, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FalsePositive {
    pub id: Uuid,
    pub reason: String,
    pub labelled_at: DateTime<Utc>,
    pub evidence: Value,
}

pub async fn false_positive(
    conn: &mut PgConnection,
    incident: IncidentId,
) -> Result<Option<FalsePositive>, sqlx::Error> {
    sqlx::query_as::<_, FalsePositive>(
        "SELECT id, reason, labelled_at, evidence FROM false_positives \
         WHERE incident_id = $1 AND withdrawn_at IS NULL ORDER BY labelled_at DESC LIMIT 1",
    )
    .bind(incident)
    .fetch_optional(conn)
    .await
}
