//! The statistics query: one statement over incidents, their timelines and clocks, grouped by
//! `GROUPING SETS ((), (town), (kind))` with `percentile_cont` for medians and p90s.

use super::{Figures, KindFigures, Period, Stats, Timing, TownFigures};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// What to count.
#[derive(Debug, Clone)]
pub struct Filter<'a> {
    /// The caller's towns (`None`: the district).
    pub scope: Option<&'a [String]>,
    pub town: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// Drill incidents only (true) or real ones only (false).
    pub exercise: bool,
    pub period: Period,
}

/// Per incident: seconds from the opening to its first acknowledgement, arrival and resolution
/// (NULL when not taken), whether it was resolved with evidence (photos named by a resolve, or a
/// passed camera re-check), and how many of its clocks passed their due time (stopped after it, or
/// still running at `now`). Then one row per group.
const SQL: &str = "
WITH base AS (
    SELECT i.town_id, i.kind, i.state,
           extract(epoch FROM tl.ack_at - i.opened_at)::float8 AS ack_secs,
           extract(epoch FROM tl.arrive_at - i.opened_at)::float8 AS arrive_secs,
           extract(epoch FROM tl.resolved_at - i.opened_at)::float8 AS resolve_secs,
           tl.resolved_at IS NOT NULL AS resolved,
           tl.resolved_at IS NOT NULL AND tl.evidence AS rectified,
           ck.overdue
    FROM incidents i
    CROSS JOIN LATERAL (
        SELECT min(t.at) FILTER (WHERE t.action = 'acknowledge') AS ack_at,
               min(t.at) FILTER (WHERE t.action = 'arrive') AS arrive_at,
               min(t.at) FILTER (WHERE t.to_state = 'resolved') AS resolved_at,
               coalesce(bool_or(t.action = 'recheckPassed'
                   OR (t.to_state = 'resolved' AND t.refs ? 'evidence')), false) AS evidence
        FROM incident_timeline t WHERE t.incident_id = i.id
    ) tl
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE c.due_at < coalesce(c.stopped_at, $7)) AS overdue
        FROM incident_clocks c WHERE c.incident_id = i.id
    ) ck
    WHERE ($1::text[] IS NULL OR i.town_id = ANY($1))
      AND ($2::text IS NULL OR i.town_id = $2)
      AND ($3::text IS NULL OR i.kind = $3)
      AND (i.exercise IS NOT NULL) = $4
      AND i.opened_at >= $5 AND i.opened_at < $6
)
SELECT GROUPING(town_id) = 0 AS by_town, GROUPING(kind) = 0 AS by_kind, town_id, kind,
       count(*) AS incidents,
       count(ack_secs) AS ack_count,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ack_secs) AS ack_median,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY ack_secs) AS ack_p90,
       count(arrive_secs) AS arrive_count,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY arrive_secs) AS arrive_median,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY arrive_secs) AS arrive_p90,
       count(resolve_secs) AS resolve_count,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY resolve_secs) AS resolve_median,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY resolve_secs) AS resolve_p90,
       count(*) FILTER (WHERE state NOT IN ('new', 'rejected')) AS triaged,
       count(*) FILTER (WHERE state = 'rejected') AS rejected,
       count(*) FILTER (WHERE resolved) AS resolved,
       count(*) FILTER (WHERE rectified) AS rectified,
       coalesce(sum(overdue), 0)::bigint AS overdue_clocks
FROM base
GROUP BY GROUPING SETS ((), (town_id), (kind))
ORDER BY incidents DESC, kind, town_id";

#[derive(sqlx::FromRow)]
struct GroupRow {
    by_town: bool,
    by_kind: bool,
    town_id: Option<String>,
    kind: Option<String>,
    incidents: i64,
    ack_count: i64,
    ack_median: Option<f64>,
    ack_p90: Option<f64>,
    arrive_count: i64,
    arrive_median: Option<f64>,
    arrive_p90: Option<f64>,
    resolve_count: i64,
    resolve_median: Option<f64>,
    resolve_p90: Option<f64>,
    triaged: i64,
    rejected: i64,
    resolved: i64,
    rectified: i64,
    overdue_clocks: i64,
}

impl GroupRow {
    fn figures(&self) -> Figures {
        Figures {
            incidents: self.incidents,
            ack: Timing {
                count: self.ack_count,
                median_secs: self.ack_median,
                p90_secs: self.ack_p90,
            },
            arrive: Timing {
                count: self.arrive_count,
                median_secs: self.arrive_median,
                p90_secs: self.arrive_p90,
            },
            resolve: Timing {
                count: self.resolve_count,
                median_secs: self.resolve_median,
                p90_secs: self.resolve_p90,
            },
            triaged: self.triaged,
            rejected: self.rejected,
            false_alarm_rate: None,
            resolved: self.resolved,
            rectified: self.rectified,
            rectification_rate: None,
            overdue_clocks: self.overdue_clocks,
        }
        .with_rates()
    }
}

/// The statistics of the incidents `filter` selects, as of `now` (for clocks still running).
pub async fn incidents(
    pool: &PgPool,
    filter: &Filter<'_>,
    now: DateTime<Utc>,
) -> Result<Stats, sqlx::Error> {
    let rows: Vec<GroupRow> = sqlx::query_as(SQL)
        .bind(filter.scope)
        .bind(filter.town)
        .bind(filter.kind)
        .bind(filter.exercise)
        .bind(filter.period.from)
        .bind(filter.period.to)
        .bind(now)
        .fetch_all(pool)
        .await?;
    // Every town of the scope gets a row, so a quiet town shows as zero rather than missing.
    let towns: Vec<_> = crate::registry::towns::list(pool, filter.scope)
        .await?
        .into_iter()
        .filter(|t| filter.town.is_none_or(|only| only == t.id))
        .collect();
    let mut total = Figures::default();
    let mut by_kind = Vec::new();
    let mut found = std::collections::HashMap::new();
    for row in rows {
        match (row.by_town, row.by_kind, &row.town_id, &row.kind) {
            (true, _, Some(town), _) => {
                found.insert(town.clone(), row.figures());
            }
            (_, true, _, Some(kind)) => by_kind.push(KindFigures {
                kind: kind.clone(),
                figures: row.figures(),
            }),
            _ => total = row.figures(),
        }
    }
    let by_town = towns
        .into_iter()
        .map(|t| TownFigures {
            figures: found.remove(&t.id).unwrap_or_default(),
            town_id: t.id,
            name_zh: t.name_zh,
            name_en: t.name_en,
        })
        .collect();
    Ok(Stats {
        from: filter.period.from,
        to: filter.period.to,
        exercise: filter.exercise,
        total,
        by_town,
        by_kind,
    })
}
