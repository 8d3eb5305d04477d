//! Many edge reports in one transaction: the consumer's fast path ([`crate::mqtt`]).
//!
//! **The batch commits as a whole or not at all, and each report ends exactly as [`super::record`]
//! would have left it had the reports come one at a time, in the batch's order.** What changes is
//! the number of statements: the events are inserted in one statement (`ON CONFLICT DO NOTHING
//! RETURNING`, so a resend stays a no-op), the newest state per edge in another, and only *new*
//! events reach the incident intake. There the common cases are set-based, a few statements for
//! the whole batch:
//!
//! 1. an `update` or `end` of an episode whose incident exists already is linked to it;
//! 2. the first report of an episode that repeats an open incident joins that incident
//!    ([`super::incident::attach_many`]: report count, timeline, severity as one by one);
//! 3. the later reports of the episodes that step 2 joined are linked as in step 1.
//!
//! Everything else (an episode that opens a new incident, camera faults) goes through
//! [`super::edge::to_incident`] one by one, in order, after the set-based steps.
//!
//! Order: the set-based steps run before the one-by-one intake. They only touch incidents that
//! existed before the batch, so an episode's `start` still comes before its `update`s. The one
//! order they can change is between *different* episodes of one (premises, kind): an earlier
//! episode's `end` may be applied before a later-arriving `start` of another — which then joins
//! the same incident anyway unless the two reports are more than `cooldown_secs` apart, and two
//! episodes of one kind at one premises come from two cameras, whose relative order no broker
//! preserves either.
//!
//! Locks: before touching any incident the batch takes the advisory locks of all its detections'
//! (premises, kind, exercise) keys in one sorted sweep, so two replicas (or two shards of one
//! consumer) with overlapping batches queue instead of deadlocking (a camera fault's key is taken
//! inside the intake; if that ever deadlocks PostgreSQL aborts one batch, which is retried whole).

use super::edge::{self, EdgeReport, Rejected, Stored, json_str};
use super::incident::{self, Outcome, Report, lock_key};
use crate::clocks::ClocksConfig;
use crate::escalation::EscalationConfig;
use crate::incident::policy::{IncidentsConfig, violation_kind};
use bl_proto::event::{DetectionEvent, EdgeEvent, EpisodePhase};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// What became of one report.
pub type Verdict = Result<Stored, Rejected>;

/// Stores `reports` in one transaction and returns a verdict for each, in order. A database error
/// means nothing was committed.
pub async fn record_batch(
    pool: &PgPool,
    incidents: &IncidentsConfig,
    escalation: &EscalationConfig,
    clocks: &ClocksConfig,
    reports: &[EdgeReport],
) -> Result<Vec<Verdict>, sqlx::Error> {
    let mut verdicts: Vec<Option<Verdict>> = (0..reports.len()).map(|_| None).collect();
    let mut tx = pool.begin().await?;
    store_states(&mut tx, reports, &mut verdicts).await?;
    let new_events = store_events(&mut tx, reports, &mut verdicts).await?;
    let events: Vec<&EdgeEvent> = new_events
        .iter()
        .map(|&i| match &reports[i] {
            EdgeReport::Event(e) => e,
            EdgeReport::State(_) => unreachable!("new_events holds events only"),
        })
        .collect();
    if !events.is_empty() {
        let cameras = lock_keys(&mut tx, &events).await?;
        let now = Utc::now();
        let mut rest = events;
        let linked = link_known_episodes(&mut tx, &rest).await?;
        rest.retain(|e| !linked.contains(&e.event_id()));
        let joined = join_open_incidents(&mut tx, incidents, &cameras, &rest, now).await?;
        rest.retain(|e| !joined.contains(&e.event_id()));
        // the later reports of the episodes that just joined
        let linked = link_known_episodes(&mut tx, &rest).await?;
        rest.retain(|e| !linked.contains(&e.event_id()));
        for event in rest {
            let outcome =
                edge::to_incident(&mut tx, incidents, escalation, clocks, event, now).await?;
            if let Some(Outcome::Opened(id)) = outcome {
                edge::audit_opened(&mut tx, event, id).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(verdicts
        .into_iter()
        .map(|v| v.expect("every report got a verdict"))
        .collect())
}

/// The index of the newest state of each edge in `reports` (the last one on a tie): the only
/// state per edge the batch writes, since an older one would be overwritten at once.
pub fn newest_states(reports: &[EdgeReport]) -> Vec<usize> {
    let mut newest: HashMap<&str, usize> = HashMap::new();
    for (i, r) in reports.iter().enumerate() {
        if let EdgeReport::State(s) = r {
            let slot = newest.entry(s.edge_id.as_str()).or_insert(i);
            if let EdgeReport::State(kept) = &reports[*slot]
                && kept.at <= s.at
            {
                *slot = i;
            }
        }
    }
    let mut chosen: Vec<usize> = newest.into_values().collect();
    chosen.sort_unstable();
    chosen
}

async fn store_states(
    conn: &mut PgConnection,
    reports: &[EdgeReport],
    verdicts: &mut [Option<Verdict>],
) -> Result<(), sqlx::Error> {
    let chosen = newest_states(reports);
    // Superseded states change nothing, like an older state arriving late.
    for (i, r) in reports.iter().enumerate() {
        if matches!(r, EdgeReport::State(_)) && !chosen.contains(&i) {
            verdicts[i] = Some(Ok(Stored::AlreadyKnown));
        }
    }
    if chosen.is_empty() {
        return Ok(());
    }
    let states: Vec<_> = chosen
        .iter()
        .map(|&i| match &reports[i] {
            EdgeReport::State(s) => s,
            EdgeReport::Event(_) => unreachable!("newest_states picks states"),
        })
        .collect();
    let ids: Vec<&str> = states.iter().map(|s| s.edge_id.as_str()).collect();
    let known: HashSet<String> =
        sqlx::query_scalar("SELECT id FROM edges WHERE id = ANY($1::text[])")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let keep: Vec<usize> = (0..states.len())
        .filter(|&k| known.contains(ids[k]))
        .collect();
    let written: HashSet<String> = sqlx::query_scalar(
        "INSERT INTO edge_status (edge_id, online, state, reported_at)
         SELECT * FROM unnest($1::text[], $2::bool[], $3::text[]::jsonb[], $4::timestamptz[])
         ON CONFLICT (edge_id) DO UPDATE
            SET online = EXCLUDED.online, state = EXCLUDED.state,
                reported_at = EXCLUDED.reported_at, received_at = now()
          WHERE edge_status.reported_at <= EXCLUDED.reported_at
         RETURNING edge_id",
    )
    .bind(keep.iter().map(|&k| ids[k]).collect::<Vec<_>>())
    .bind(keep.iter().map(|&k| states[k].online).collect::<Vec<_>>())
    .bind(
        keep.iter()
            .map(|&k| serde_json::to_string(states[k]).expect("a state serialises"))
            .collect::<Vec<_>>(),
    )
    .bind(keep.iter().map(|&k| states[k].at).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    for (k, &i) in chosen.iter().enumerate() {
        verdicts[i] = Some(if !known.contains(ids[k]) {
            Err(Rejected::UnknownEdge(states[k].edge_id.clone()))
        } else if written.contains(ids[k]) {
            Ok(Stored::New)
        } else {
            Ok(Stored::AlreadyKnown)
        });
    }
    Ok(())
}

/// The columns of one event row.
struct EventRow {
    ty: &'static str,
    kind: String,
    episode: Option<Uuid>,
    phase: Option<String>,
    at: DateTime<Utc>,
}

fn event_row(event: &EdgeEvent) -> EventRow {
    match event {
        EdgeEvent::Detection(d) => EventRow {
            ty: "detection",
            kind: json_str(&d.kind),
            episode: Some(d.episode_id),
            phase: Some(json_str(&d.phase)),
            at: d.at,
        },
        EdgeEvent::Camera(c) => EventRow {
            ty: "camera",
            kind: json_str(&c.kind),
            episode: None,
            phase: None,
            at: c.at,
        },
        EdgeEvent::Warning(w) => EventRow {
            ty: "warning",
            kind: json_str(&w.kind),
            episode: Some(w.episode_id),
            phase: None,
            at: w.at,
        },
    }
}

/// Which events are new: the first report of each inserted id (a repeat within the batch, like a
/// resend, is already known).
pub fn first_of_each(ids: &[(usize, Uuid)], inserted: &HashSet<Uuid>) -> Vec<usize> {
    let mut seen = HashSet::new();
    ids.iter()
        .filter(|(_, id)| inserted.contains(id) && seen.insert(*id))
        .map(|(i, _)| *i)
        .collect()
}

/// Inserts the events in one statement; returns the indexes of the new ones, in order.
async fn store_events(
    conn: &mut PgConnection,
    reports: &[EdgeReport],
    verdicts: &mut [Option<Verdict>],
) -> Result<Vec<usize>, sqlx::Error> {
    let events: Vec<(usize, &EdgeEvent)> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            EdgeReport::Event(e) => Some((i, e)),
            EdgeReport::State(_) => None,
        })
        .collect();
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<EventRow> = events.iter().map(|(_, e)| event_row(e)).collect();
    let ids: Vec<Uuid> = events.iter().map(|(_, e)| e.event_id()).collect();
    // The join on the camera's edge drops a camera that is not the reporting edge's (or an
    // unknown edge), instead of failing the whole statement as a foreign key would.
    let inserted: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO edge_events
             (event_id, edge_id, camera_id, type, kind, episode_id, phase, at, exercise, payload)
         SELECT w.event_id, w.edge_id, c.id, w.type, w.kind, w.episode_id, w.phase, w.at,
                w.exercise, w.payload::jsonb
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[],
                       $7::text[], $8::timestamptz[], $9::text[], $10::text[])
                WITH ORDINALITY AS w(event_id, edge_id, camera_id, type, kind, episode_id, phase,
                                     at, exercise, payload, n)
           JOIN cameras c ON c.id = w.camera_id AND c.edge_id = w.edge_id
          ORDER BY w.n
         ON CONFLICT (event_id) DO NOTHING
         RETURNING event_id",
    )
    .bind(&ids)
    .bind(
        events
            .iter()
            .map(|(_, e)| e.edge_id().as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|(_, e)| e.camera_id().as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.ty).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.episode).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.phase.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| e.exercise()).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|(_, e)| serde_json::to_string(e).expect("an event serialises"))
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let indexed: Vec<(usize, Uuid)> = events.iter().map(|(i, e)| (*i, e.event_id())).collect();
    let new = first_of_each(&indexed, &inserted);
    let missing: Vec<Uuid> = ids
        .iter()
        .filter(|id| !inserted.contains(id))
        .copied()
        .collect();
    let known: HashSet<Uuid> = if missing.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar("SELECT event_id FROM edge_events WHERE event_id = ANY($1::uuid[])")
            .bind(&missing)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect()
    };
    for (i, event) in &events {
        let id = event.event_id();
        verdicts[*i] = Some(if new.contains(i) {
            Ok(Stored::New)
        } else if inserted.contains(&id) || known.contains(&id) {
            Ok(Stored::AlreadyKnown)
        } else {
            Err(Rejected::Unregistered {
                edge: event.edge_id().clone(),
                camera: event.camera_id().to_string(),
            })
        });
    }
    Ok(new)
}

/// A camera's premises and the premises' kind (the setting of its reports).
type CameraPlaces = HashMap<String, (Uuid, String)>;

/// Takes the advisory locks of every detection's (premises, kind, exercise), in one sorted sweep;
/// returns the places of the detections' cameras.
async fn lock_keys(
    conn: &mut PgConnection,
    events: &[&EdgeEvent],
) -> Result<CameraPlaces, sqlx::Error> {
    let cameras: Vec<&str> = events
        .iter()
        .filter(|e| matches!(e, EdgeEvent::Detection(_)))
        .map(|e| e.camera_id().as_str())
        .collect();
    if cameras.is_empty() {
        return Ok(HashMap::new());
    }
    let places: CameraPlaces = sqlx::query_as::<_, (String, Uuid, String)>(
        "SELECT c.id, c.premises_id, p.kind FROM cameras c JOIN premises p ON p.id = c.premises_id \
          WHERE c.id = ANY($1::text[])",
    )
    .bind(&cameras)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(camera, premises, kind)| (camera, (premises, kind)))
    .collect();
    let keys: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            EdgeEvent::Detection(d) => places
                .get(d.camera_id.as_str())
                .map(|(p, _)| lock_key(*p, violation_kind(d.kind), d.exercise.as_deref())),
            EdgeEvent::Camera(_) | EdgeEvent::Warning(_) => None,
        })
        .collect();
    // The subquery sorts the hashes; the locks are taken in that order.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(h)
           FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k
                  ORDER BY h) sorted",
    )
    .bind(&keys)
    .execute(&mut *conn)
    .await?;
    Ok(places)
}

/// The first report of each episode among `events` (which are not linked to an incident yet).
pub fn episode_openers<'a>(events: &[&'a EdgeEvent]) -> Vec<&'a DetectionEvent> {
    let mut seen = HashSet::new();
    events
        .iter()
        .filter_map(|e| match e {
            EdgeEvent::Detection(d) if seen.insert(d.episode_id) => Some(d),
            _ => None,
        })
        .collect()
}

/// Joins each episode that starts among `events` to the open incident it repeats, set-based
/// ([`incident::attach_many`]), and records the episode; returns the events it joined. An episode
/// with no incident to join is left to the one-by-one intake, which opens one.
async fn join_open_incidents(
    conn: &mut PgConnection,
    incidents: &IncidentsConfig,
    cameras: &CameraPlaces,
    events: &[&EdgeEvent],
    now: DateTime<Utc>,
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let openers: Vec<(&DetectionEvent, Uuid, &str)> = episode_openers(events)
        .into_iter()
        .filter_map(|d| {
            let (premises, kind) = cameras.get(d.camera_id.as_str())?;
            Some((d, *premises, kind.as_str()))
        })
        .collect();
    if openers.is_empty() {
        return Ok(HashSet::new());
    }
    let reports: Vec<Report> = openers
        .iter()
        .map(|(d, premises, _)| edge::detection_report(d, *premises, now))
        .collect();
    let with_setting: Vec<(&Report, Option<&str>)> = reports
        .iter()
        .zip(&openers)
        .map(|(r, (_, _, kind))| (r, Some(*kind)))
        .collect();
    let found = incident::attach_many(conn, incidents, &with_setting).await?;
    let joined: Vec<(&DetectionEvent, Uuid)> = openers
        .iter()
        .zip(found)
        .filter_map(|((d, _, _), id)| id.map(|id| (*d, id)))
        .collect();
    if joined.is_empty() {
        return Ok(HashSet::new());
    }
    sqlx::query(
        "WITH j AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[],
                                          $5::bool[])
                             AS t(event_id, episode_id, incident_id, at, ends)),
              episodes AS (INSERT INTO incident_episodes (episode_id, incident_id, started_at, ended_at)
                           SELECT episode_id, incident_id, at, CASE WHEN ends THEN at END FROM j
                           ON CONFLICT (episode_id) DO NOTHING)
         INSERT INTO incident_events (event_id, incident_id)
         SELECT event_id, incident_id FROM j ON CONFLICT DO NOTHING",
    )
    .bind(joined.iter().map(|(d, _)| d.event_id).collect::<Vec<_>>())
    .bind(joined.iter().map(|(d, _)| d.episode_id).collect::<Vec<_>>())
    .bind(joined.iter().map(|(_, id)| *id).collect::<Vec<_>>())
    .bind(joined.iter().map(|(d, _)| d.at).collect::<Vec<_>>())
    .bind(
        joined
            .iter()
            .map(|(d, _)| d.phase == EpisodePhase::End)
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(joined.iter().map(|(d, _)| d.event_id).collect())
}

/// The `update`s and `end`s among `events`: (event, episode, ends, at).
pub fn continuations(events: &[&EdgeEvent]) -> Vec<(Uuid, Uuid, bool, DateTime<Utc>)> {
    events
        .iter()
        .filter_map(|e| match e {
            EdgeEvent::Detection(d) if d.phase != EpisodePhase::Start => {
                Some((d.event_id, d.episode_id, d.phase == EpisodePhase::End, d.at))
            }
            _ => None,
        })
        .collect()
}

/// Links every `update` and `end` of an episode known before the batch to the episode's incident
/// in one statement (an `end` closes the episode, the incident's `last_report_at` moves on);
/// returns the events it linked.
async fn link_known_episodes(
    conn: &mut PgConnection,
    events: &[&EdgeEvent],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let rows = continuations(events);
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    let linked: Vec<Uuid> = sqlx::query_scalar(
        "WITH ev AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bool[], $4::timestamptz[])
                             AS t(event_id, episode_id, ends, at)),
              ep AS (SELECT episode_id, min(at) FILTER (WHERE ends) AS end_at FROM ev
                      GROUP BY episode_id),
              found AS (SELECT e.episode_id, e.incident_id
                          FROM incident_episodes e JOIN ep USING (episode_id)),
              ended AS (UPDATE incident_episodes e SET ended_at = ep.end_at
                          FROM ep WHERE e.episode_id = ep.episode_id
                           AND ep.end_at IS NOT NULL AND e.ended_at IS NULL),
              latest AS (SELECT found.incident_id, max(ev.at) AS at
                           FROM ev JOIN found USING (episode_id) GROUP BY found.incident_id),
              touched AS (UPDATE incidents i
                             SET last_report_at = greatest(i.last_report_at, latest.at),
                                 updated_at = now()
                            FROM latest WHERE i.id = latest.incident_id)
         INSERT INTO incident_events (event_id, incident_id)
         SELECT ev.event_id, found.incident_id FROM ev JOIN found USING (episode_id)
         ON CONFLICT DO NOTHING
         RETURNING event_id",
    )
    .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.3).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    Ok(linked.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bl_proto::EdgeId;
    use bl_proto::state::EdgeState;
    use chrono::TimeZone;

    fn state(edge: &str, secs: i64) -> EdgeReport {
        let at = Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap();
        EdgeReport::State(EdgeState::offline(EdgeId::new(edge).unwrap(), at))
    }

    #[test]
    fn only_the_newest_state_of_each_edge_is_written() {
        let reports = [
            state("edge-a", 5),
            state("edge-b", 1),
            state("edge-a", 3),
            state("edge-a", 5),
        ];
        // edge-a: the later of the two newest; edge-b: its only one
        assert_eq!(newest_states(&reports), vec![1, 3]);
    }

    #[test]
    fn a_repeated_event_id_is_new_only_the_first_time() {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let inserted: HashSet<Uuid> = [a, b].into();
        let ids = [(0, a), (2, c), (3, a), (5, b)];
        assert_eq!(first_of_each(&ids, &inserted), vec![0, 5]);
    }
}
