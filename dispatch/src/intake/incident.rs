//! The one door through which every report — an edge's detection or camera fault, a hotline call,
//! a manual report — becomes an incident or joins one.
//!
//! **Dedup**: a report about a known premises attaches to the incident of the same (premises,
//! kind, exercise) that is not closed while one of its episodes is open or until
//! `incidents.cooldown_secs` after its latest report; otherwise it opens a new incident, which is
//! routed at once. Real and exercise reports never share an incident. Reports about a free address
//! (no premises) are never merged: the operator links them by hand. A per-(premises, kind,
//! exercise) advisory lock makes two dispatch replicas agree on one incident.

use crate::clocks::{self, ClocksConfig};
use crate::escalation::{self, EscalationConfig};
use crate::incident::note::Note;
use crate::incident::policy::{self, IncidentsConfig, Severity};
use crate::incident::state::State;
use crate::incident::store::{self, Entry};
use crate::incident::{Actor, IncidentId};
use crate::routing;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

/// How a report came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Detection,
    Camera,
    /// A hotline call: `12331` (food and drug) or `12315` (consumer).
    Hotline(String),
    Manual,
}

impl Source {
    fn as_str(&self) -> &'static str {
        match self {
            Source::Detection => "detection",
            Source::Camera => "camera",
            Source::Hotline(_) => "hotline",
            Source::Manual => "manual",
        }
    }

    fn hotline(&self) -> Option<&str> {
        match self {
            Source::Hotline(line) => Some(line),
            _ => None,
        }
    }
}

/// The edge event behind a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeLink {
    pub event_id: Uuid,
    pub camera_id: String,
    /// The detection episode, and whether this event ends it.
    pub episode: Option<(Uuid, bool)>,
}

/// One report, from any source.
#[derive(Debug, Clone)]
pub struct Report {
    pub source: Source,
    /// The premises, when known; then its town and grid are the incident's.
    pub premises: Option<Uuid>,
    /// The town: required without premises, else it must be the premises' town if given.
    pub town: Option<String>,
    /// A free address (required without premises).
    pub address: String,
    pub kind: String,
    /// When it happened (the edge's time for detections): dedup and routing use it.
    pub at: DateTime<Utc>,
    /// When dispatch received it: the timeline's time.
    pub received_at: DateTime<Utc>,
    pub exercise: Option<String>,
    pub description: String,
    pub case_count: Option<u32>,
    pub deaths: Option<u32>,
    /// The setting (a premises kind) for a report without premises; with premises, theirs.
    pub setting: Option<String>,
    pub reporter: Actor,
    pub edge: Option<EdgeLink>,
}

/// What the intake did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Opened(IncidentId),
    Attached(IncidentId),
}

impl Outcome {
    pub fn id(self) -> IncidentId {
        match self {
            Outcome::Opened(id) | Outcome::Attached(id) => id,
        }
    }
}

/// Why a report cannot become an incident.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("field {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<IntakeError> for crate::error::Error {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Invalid { .. } => Self::bad_request("invalid_field", e.to_string()),
            IntakeError::Db(e) => e.into(),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> IntakeError {
    IntakeError::Invalid {
        field,
        message: message.into(),
    }
}

/// Where a report belongs.
struct Place {
    town: String,
    grid: Option<String>,
    setting: Option<String>,
}

async fn place(conn: &mut PgConnection, r: &Report) -> Result<Place, IntakeError> {
    if let Some(premises) = r.premises {
        let row: Option<(String, Option<String>, String)> =
            sqlx::query_as("SELECT town_id, grid_id, kind FROM premises WHERE id = $1")
                .bind(premises)
                .fetch_optional(&mut *conn)
                .await?;
        let (town, grid, kind) =
            row.ok_or_else(|| invalid("premisesId", "no premises has this id"))?;
        if let Some(t) = &r.town
            && *t != town
        {
            return Err(invalid(
                "townId",
                format!("the premises lies in {town:?}, not {t:?}; leave townId out"),
            ));
        }
        return Ok(Place {
            town,
            grid,
            setting: Some(kind),
        });
    }
    let town = r
        .town
        .clone()
        .ok_or_else(|| invalid("townId", "is required when no premisesId is given"))?;
    if r.address.trim().is_empty() {
        return Err(invalid(
            "address",
            "is required when no premisesId is given",
        ));
    }
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM regions WHERE id = $1 AND kind <> 'district')",
    )
    .bind(&town)
    .fetch_one(&mut *conn)
    .await?;
    if !known {
        return Err(invalid("townId", format!("town {town:?} does not exist")));
    }
    Ok(Place {
        town,
        grid: None,
        setting: r.setting.clone(),
    })
}

/// The advisory lock's key of (premises, kind, exercise); the batched intake takes the same keys.
pub(crate) fn lock_key(premises: Uuid, kind: &str, exercise: Option<&str>) -> String {
    format!("incident:{premises}:{kind}:{}", exercise.unwrap_or(""))
}

/// Serialises intake per (premises, kind, exercise) until the transaction ends.
pub(crate) async fn lock(
    conn: &mut PgConnection,
    premises: Uuid,
    kind: &str,
    exercise: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(lock_key(premises, kind, exercise))
        .execute(conn)
        .await?;
    Ok(())
}

/// The coded `severitySuggested` note: the level and the counts it rests on.
fn severity_note(level: &str, cases: Option<i32>, deaths: Option<i32>) -> Note {
    Note::new(
        "severitySuggested",
        json!({"level": level, "cases": cases, "deaths": deaths}),
    )
}

fn refs(r: &Report) -> Value {
    match &r.edge {
        Some(e) => json!({
            "eventId": e.event_id,
            "cameraId": e.camera_id,
            "episodeId": e.episode.map(|(id, _)| id),
        }),
        None => json!({}),
    }
}

/// Turns `report` into a new incident or attaches it to the open one it repeats; see the module
/// documentation. Runs inside the caller's transaction.
pub async fn incident(
    conn: &mut PgConnection,
    config: &IncidentsConfig,
    escalation: &EscalationConfig,
    clocks: &ClocksConfig,
    report: &Report,
) -> Result<Outcome, IntakeError> {
    if !policy::is_kind(&report.kind) {
        return Err(invalid(
            "kind",
            format!(
                "{:?} is not one of {}",
                report.kind,
                policy::KINDS.join(", ")
            ),
        ));
    }
    let place = place(conn, report).await?;
    let outcome = match report.premises {
        Some(premises) => {
            lock(conn, premises, &report.kind, report.exercise.as_deref()).await?;
            match attach(conn, config, report, &place).await? {
                Some(id) => Outcome::Attached(id),
                None => {
                    Outcome::Opened(open(conn, config, escalation, clocks, report, &place).await?)
                }
            }
        }
        None => Outcome::Opened(open(conn, config, escalation, clocks, report, &place).await?),
    };
    if let Some(edge) = &report.edge {
        link_event(conn, outcome.id(), edge.event_id).await?;
        if let Some((episode, ended)) = edge.episode {
            sqlx::query(
                "INSERT INTO incident_episodes (episode_id, incident_id, started_at, ended_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (episode_id) DO NOTHING",
            )
            .bind(episode)
            .bind(outcome.id())
            .bind(report.at)
            .bind(ended.then_some(report.at))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(outcome)
}

pub(crate) async fn link_event(
    conn: &mut PgConnection,
    incident: IncidentId,
    event: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO incident_events (event_id, incident_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(event)
    .bind(incident)
    .execute(conn)
    .await?;
    Ok(())
}

/// Attaches `report` to the open incident it repeats, if there is one.
async fn attach(
    conn: &mut PgConnection,
    config: &IncidentsConfig,
    report: &Report,
    place: &Place,
) -> Result<Option<IncidentId>, sqlx::Error> {
    let joined = attach_many(conn, config, &[(report, place.setting.as_deref())]).await?;
    Ok(joined[0])
}

/// An open incident as a report finds it, and what the reports joining it so far made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub id: IncidentId,
    pub case_count: Option<i32>,
    pub deaths: Option<i32>,
    pub suggested_severity: Option<String>,
    pub report_count: i32,
    pub last_report_at: DateTime<Utc>,
}

impl Joined {
    /// `report` joins: the counts and figures move on, a more severe suggestion replaces the
    /// stored one. Returns the timeline notes to write: (action, note, coded note). Plain logic.
    pub fn join(
        &mut self,
        config: &IncidentsConfig,
        report: &Report,
        setting: Option<&str>,
    ) -> Vec<(&'static str, String, Note)> {
        let max = |old: Option<i32>, new: Option<u32>| match (old, new) {
            (Some(o), Some(n)) => Some(o.max(n as i32)),
            (o, n) => o.or(n.map(|n| n as i32)),
        };
        self.case_count = max(self.case_count, report.case_count);
        self.deaths = max(self.deaths, report.deaths);
        self.report_count += 1;
        self.last_report_at = self.last_report_at.max(report.at);
        let mut note = format!("report {} ({})", self.report_count, report.source.as_str());
        if !report.description.is_empty() {
            note.push_str(": ");
            note.push_str(&report.description);
        }
        let coded = Note::new(
            "repeat",
            json!({"n": self.report_count, "source": report.source.as_str(),
                   "hotline": report.source.hotline(), "description": report.description}),
        );
        let mut notes = vec![("repeat", note, coded)];
        let old_level = self.suggested_severity.as_deref().and_then(Severity::parse);
        let upgrade = config
            .suggest_severity(
                &report.kind,
                self.case_count.map(|c| c as u32),
                self.deaths.map(|d| d as u32),
                setting,
            )
            .filter(|s| old_level.is_none_or(|old| s.level < old));
        if let Some(s) = upgrade {
            self.suggested_severity = Some(s.level.as_str().to_owned());
            notes.push((
                "severitySuggested",
                format!("suggested severity {}: {}", s.level.as_str(), s.reason),
                severity_note(s.level.as_str(), self.case_count, self.deaths),
            ));
        }
        notes
    }
}

/// Attaches each report (about a premises, with that premises' kind as its setting) to the open
/// incident it repeats, as [`incident`] would one by one, in a fixed number of statements; returns
/// the incident of each, or `None` where there is none to join (the caller opens one). The caller
/// holds the reports' advisory locks ([`lock`]).
///
/// Whether a report may join is judged against the incidents as they stood before these reports
/// (a report that only a sibling's join brings within the cooldown gets `None`; the one-by-one
/// path then finds the incident).
pub(crate) async fn attach_many(
    conn: &mut PgConnection,
    config: &IncidentsConfig,
    reports: &[(&Report, Option<&str>)],
) -> Result<Vec<Option<IncidentId>>, sqlx::Error> {
    type Row = (
        i64,
        Uuid,
        Option<i32>,
        Option<i32>,
        Option<String>,
        i32,
        DateTime<Utc>,
    );
    let found: Vec<Row> = sqlx::query_as(
        "SELECT r.n, i.id, i.case_count, i.deaths, i.suggested_severity, i.report_count, \
                i.last_report_at \
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) \
                WITH ORDINALITY AS r(premises, kind, exercise, at, n) \
           CROSS JOIN LATERAL ( \
                SELECT * FROM incidents i \
                 WHERE i.premises_id = r.premises AND i.kind = r.kind \
                   AND i.exercise IS NOT DISTINCT FROM r.exercise AND i.state <> 'closed' \
                   AND (i.last_report_at > r.at - make_interval(secs => $5) \
                        OR EXISTS (SELECT 1 FROM incident_episodes e \
                                    WHERE e.incident_id = i.id AND e.ended_at IS NULL)) \
                 ORDER BY i.last_report_at DESC LIMIT 1 FOR UPDATE) i",
    )
    .bind(reports.iter().map(|(r, _)| r.premises).collect::<Vec<_>>())
    .bind(
        reports
            .iter()
            .map(|(r, _)| r.kind.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        reports
            .iter()
            .map(|(r, _)| r.exercise.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(reports.iter().map(|(r, _)| r.at).collect::<Vec<_>>())
    .bind(config.cooldown_secs as f64)
    .fetch_all(&mut *conn)
    .await?;
    let mut incidents: Vec<Joined> = Vec::new();
    let mut joined: Vec<Option<IncidentId>> = vec![None; reports.len()];
    let mut entries = Vec::new();
    for (n, id, case_count, deaths, suggested_severity, report_count, last_report_at) in found {
        let (report, setting) = reports[n as usize - 1];
        let slot = match incidents.iter().position(|j| j.id == id) {
            Some(k) => k,
            None => {
                incidents.push(Joined {
                    id,
                    case_count,
                    deaths,
                    suggested_severity,
                    report_count,
                    last_report_at,
                });
                incidents.len() - 1
            }
        };
        for (action, note, coded) in incidents[slot].join(config, report, setting) {
            let mut entry =
                Entry::note(report.received_at, &report.reporter, action, note).with(coded);
            if action == "repeat" {
                entry.refs = refs(report);
            }
            entries.push((id, entry));
        }
        joined[n as usize - 1] = Some(id);
    }
    if incidents.is_empty() {
        return Ok(joined);
    }
    sqlx::query(
        "UPDATE incidents i SET report_count = j.report_count, \
                last_report_at = greatest(i.last_report_at, j.last_report_at), \
                case_count = j.case_count, deaths = j.deaths, \
                suggested_severity = j.suggested_severity, updated_at = now() \
           FROM unnest($1::uuid[], $2::int4[], $3::timestamptz[], $4::int4[], $5::int4[], \
                       $6::text[]) \
                AS j(id, report_count, last_report_at, case_count, deaths, suggested_severity) \
          WHERE i.id = j.id",
    )
    .bind(incidents.iter().map(|j| j.id).collect::<Vec<_>>())
    .bind(incidents.iter().map(|j| j.report_count).collect::<Vec<_>>())
    .bind(
        incidents
            .iter()
            .map(|j| j.last_report_at)
            .collect::<Vec<_>>(),
    )
    .bind(incidents.iter().map(|j| j.case_count).collect::<Vec<_>>())
    .bind(incidents.iter().map(|j| j.deaths).collect::<Vec<_>>())
    .bind(
        incidents
            .iter()
            .map(|j| j.suggested_severity.as_deref())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    store::append_many(conn, &entries).await?;
    Ok(joined)
}

/// Opens a new incident for `report`, routes it, writes its first timeline entries and starts its
/// tier's escalation (firing at once the steps due now, e.g. "notify the team") and its clocks.
async fn open(
    conn: &mut PgConnection,
    config: &IncidentsConfig,
    escalation: &EscalationConfig,
    clocks: &ClocksConfig,
    report: &Report,
    place: &Place,
) -> Result<IncidentId, sqlx::Error> {
    let id = Uuid::now_v7();
    let tier = config.tier(&report.kind);
    let suggestion = config.suggest_severity(
        &report.kind,
        report.case_count,
        report.deaths,
        place.setting.as_deref(),
    );
    sqlx::query(
        "INSERT INTO incidents (id, premises_id, address, town_id, grid_id, kind, tier, \
         suggested_severity, state, source, hotline, description, case_count, deaths, exercise, \
         opened_at, last_report_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
    )
    .bind(id)
    .bind(report.premises)
    .bind(report.address.trim())
    .bind(&place.town)
    .bind(&place.grid)
    .bind(&report.kind)
    .bind(tier.as_str())
    .bind(suggestion.as_ref().map(|s| s.level.as_str()))
    .bind(State::New.as_str())
    .bind(report.source.as_str())
    .bind(report.source.hotline())
    .bind(&report.description)
    .bind(report.case_count.map(|c| c as i32))
    .bind(report.deaths.map(|d| d as i32))
    .bind(&report.exercise)
    .bind(report.at)
    .execute(&mut *conn)
    .await?;
    let mut note = format!("{} report, tier {}", report.source.as_str(), tier.as_str());
    if let Some(line) = report.source.hotline() {
        note = format!("hotline {line} report, tier {}", tier.as_str());
    }
    if let Some(run) = &report.exercise {
        note.push_str(&format!(", DRILL (exercise {run})"));
    }
    if !report.description.is_empty() {
        note.push_str(": ");
        note.push_str(&report.description);
    }
    let coded = Note::new(
        "opened",
        json!({"source": report.source.as_str(), "hotline": report.source.hotline(),
               "tier": tier.as_str(), "exercise": report.exercise, "description": report.description}),
    );
    let mut entry = Entry::note(report.received_at, &report.reporter, "opened", note).with(coded);
    entry.to = Some(State::New);
    entry.refs = refs(report);
    store::append(conn, id, &entry).await?;
    if let Some(s) = suggestion {
        let note = format!("suggested severity {}: {}", s.level.as_str(), s.reason);
        let entry = Entry::note(
            report.received_at,
            &Actor::System,
            "severitySuggested",
            note,
        )
        .with(severity_note(
            s.level.as_str(),
            report.case_count.map(|c| c as i32),
            report.deaths.map(|d| d as i32),
        ));
        store::append(conn, id, &entry).await?;
    }
    tracing::info!(incident = %id, kind = %report.kind, town = %place.town, tier = tier.as_str(),
                   exercise = report.exercise.as_deref().unwrap_or(""), "incident opened");
    routing::route(
        conn,
        id,
        &place.town,
        place.grid.as_deref(),
        report.at,
        report.received_at,
    )
    .await?;
    escalation::store::start(conn, escalation, id, tier, report.received_at).await?;
    let facts = clocks::rules::Facts {
        tier,
        kind: &report.kind,
        hotline: report.source.hotline().is_some(),
    };
    clocks::store::start(conn, clocks, id, facts, report.received_at).await?;
    Ok(id)
}
