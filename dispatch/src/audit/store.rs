//! The `audit_log` rows: append (serialised by an advisory lock), pages for `GET /api/audit`, and
//! batches in `seq` order for the verifier.

use super::chain::{self, Entry, GENESIS};
use super::{Event, Who};
use crate::paging::{Page, Paging};
use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// The advisory lock every append takes, until its transaction ends.
const LOCK_KEY: &str = "audit_log:append";

const COLUMNS: &str = "seq, at, actor_kind, actor_id, actor_name, actor_role, client_addr, action, \
     object_type, object_id, town_id, details, prev_hash, hash";

/// Appends one row after the current last one and returns it. Waits for the appends of other
/// transactions (of any replica) to commit or roll back first, so each row links to the row that
/// really precedes it. Details that have no canonical encoding (fractions, NUL) are refused as an
/// encoding error, before anything is written.
pub async fn append(
    tx: &mut Transaction<'_, Postgres>,
    who: &Who,
    client: Option<&str>,
    at: DateTime<Utc>,
    event: &Event,
) -> Result<Entry, sqlx::Error> {
    let conn: &mut PgConnection = tx;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    // Read after the lock: under READ COMMITTED this statement sees every append committed before.
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let (last_seq, prev_hash) = last.unwrap_or((0, GENESIS.to_owned()));
    let (actor_id, actor_name, actor_role) = match who {
        Who::User { id, name, role } => (Some(*id), name.clone(), Some(role.as_str().to_owned())),
        Who::Service(name) | Who::Anonymous(name) => (None, name.clone(), None),
        Who::System => (None, "system".to_owned(), None),
    };
    let mut entry = Entry {
        seq: last_seq + 1,
        // stored with microsecond precision, so hash what will be stored
        at: at.trunc_subsecs(6),
        actor_kind: who.kind().to_owned(),
        actor_id,
        actor_name,
        actor_role,
        client_addr: client.map(str::to_owned),
        action: event.action.as_str().to_owned(),
        object_type: event.object.as_ref().map(|(t, _)| (*t).to_owned()),
        object_id: event.object.as_ref().map(|(_, id)| id.clone()),
        town: event.town.clone(),
        details: event.details.clone(),
        prev_hash,
        hash: String::new(),
    };
    entry.hash = chain::hash(&entry).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    )))
    .bind(entry.seq)
    .bind(entry.at)
    .bind(&entry.actor_kind)
    .bind(entry.actor_id)
    .bind(&entry.actor_name)
    .bind(&entry.actor_role)
    .bind(&entry.client_addr)
    .bind(&entry.action)
    .bind(&entry.object_type)
    .bind(&entry.object_id)
    .bind(&entry.town)
    .bind(&entry.details)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(&mut *conn)
    .await?;
    Ok(entry)
}

/// Up to `limit` rows after `after`, in `seq` order.
pub async fn batch(pool: &PgPool, after: i64, limit: i64) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as::<_, Entry>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Filters of `GET /api/audit`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    /// The actor's name (a user name, `gateway:<node>`, …), exactly.
    pub actor: Option<String>,
    /// An action name, exactly (`incident.transition`), or a prefix ending in `.*` (`session.*`).
    pub action: Option<String>,
    /// An object type (`incident`) or type and id (`incident:<id>`).
    pub object: Option<String>,
    /// From this time on (inclusive), RFC 3339.
    pub from: Option<DateTime<Utc>>,
    /// Before this time (exclusive), RFC 3339.
    pub to: Option<DateTime<Utc>>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// The SQL `LIKE` pattern of an action filter (`session.*` → `session.%`), or the name itself.
pub fn action_pattern(filter: &str) -> String {
    let escape = |s: &str| {
        s.chars().fold(String::new(), |mut out, c| {
            if matches!(c, '\\' | '%' | '_') {
                out.push('\\');
            }
            out.push(c);
            out
        })
    };
    match filter.strip_suffix(".*") {
        Some(prefix) => format!("{}.%", escape(prefix)),
        None => escape(filter),
    }
}

/// Rows within `scope` (None = the district: every row; a town list: rows of those towns) matching
/// `query`, newest first.
pub async fn list(
    pool: &PgPool,
    scope: Option<&[String]>,
    query: &ListQuery,
) -> Result<Page<Entry>, sqlx::Error> {
    let paging = Paging::new(query.page, query.per_page);
    let action = query.action.as_deref().map(action_pattern);
    let (object_type, object_id) = match query.object.as_deref().map(|o| o.split_once(':')) {
        Some(Some((t, id))) => (Some(t.to_owned()), Some(id.to_owned())),
        Some(None) => (query.object.clone(), None),
        None => (None, None),
    };
    const WHERE: &str = "($1::text[] IS NULL OR town_id = ANY($1)) \
         AND ($2::text IS NULL OR actor_name = $2) AND ($3::text IS NULL OR action LIKE $3) \
         AND ($4::text IS NULL OR object_type = $4) AND ($5::text IS NULL OR object_id = $5) \
         AND ($6::timestamptz IS NULL OR at >= $6) AND ($7::timestamptz IS NULL OR at < $7)";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM audit_log WHERE {WHERE}"
    )))
    .bind(scope)
    .bind(&query.actor)
    .bind(&action)
    .bind(&object_type)
    .bind(&object_id)
    .bind(query.from)
    .bind(query.to)
    .fetch_one(pool)
    .await?;
    let items = sqlx::query_as::<_, Entry>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audit_log WHERE {WHERE} ORDER BY seq DESC LIMIT $8 OFFSET $9"
    )))
    .bind(scope)
    .bind(&query.actor)
    .bind(&action)
    .bind(&object_type)
    .bind(&object_id)
    .bind(query.from)
    .bind(query.to)
    .bind(paging.limit())
    .bind(paging.offset())
    .fetch_all(pool)
    .await?;
    Ok(paging.of(items, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_filter_is_exact_or_a_dotted_prefix_and_like_wildcards_are_literal() {
        assert_eq!(action_pattern("incident.view"), "incident.view");
        assert_eq!(action_pattern("session.*"), "session.%");
        assert_eq!(action_pattern("a_b%.*"), "a\\_b\\%.%");
    }
}
