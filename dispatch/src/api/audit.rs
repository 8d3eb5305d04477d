//! `GET /api/audit`: the audit log within the caller's towns, newest first. Each query is itself
//! recorded.

use super::Query;
use crate::AppState;
use crate::audit::store::{self, ListQuery};
use crate::audit::{Action, Audit, Event, chain::Entry};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::paging::Page;
use axum::Extension;
use axum::extract::State;
use serde_json::json;
use std::sync::Arc;

/// `GET /api/audit?actor=&action=&object=&from=&to=&page=&perPage=`
#[utoipa::path(
    get,
    path = "/api/audit",
    summary = "Query the audit log",
    params(ListQuery),
    responses((status = 200, description = "One page of audit rows, newest first", body = Page<Entry>))
)]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Page<Entry>>> {
    if let Some(a) = &query.action {
        let known = Action::ALL.iter().any(|k| {
            k.as_str() == a
                || a.strip_suffix(".*")
                    .is_some_and(|p| k.as_str().starts_with(&format!("{p}.")))
        });
        if !known {
            let names: Vec<&str> = Action::ALL.iter().map(|k| k.as_str()).collect();
            return Err(Error::bad_request(
                "invalid_query",
                format!(
                    "action {a:?} is not one of {} (or a prefix such as session.*)",
                    names.join(", ")
                ),
            ));
        }
    }
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from >= to
    {
        return Err(Error::bad_request(
            "invalid_query",
            "from must be earlier than to",
        ));
    }
    let page = store::list(&app.pool, caller.scope.filter(), &query).await?;
    let filters = json!({
        "actor": query.actor, "action": query.action, "object": query.object,
        "from": query.from.map(crate::audit::chain::time_text),
        "to": query.to.map(crate::audit::chain::time_text),
        "page": page.page, "perPage": page.per_page, "total": page.total,
    });
    audit
        .record(&app, Event::new(Action::AuditQuery).details(filters))
        .await?;
    Ok(axum::Json(page))
}
