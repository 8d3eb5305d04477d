//! `/api/stats/incidents` (JSON) and `/api/stats/incidents.csv` (the same figures for Excel):
//! thin handlers over `stats` (rules, CSV) and `stats::store` (the query).

use super::Query;
use crate::AppState;
use crate::audit::{self, Audit, Event};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::incident::policy;
use crate::stats::{self, Lang, Period, Stats, store::Filter};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Filters of both statistics routes.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatsQuery {
    /// Start of the period of opening times: a date (`YYYY-MM-DD`, Beijing time, from its
    /// midnight) or an RFC 3339 instant. Default: 30 days before `to`.
    pub from: Option<String>,
    /// End of the period: a date (Beijing time, the whole day included) or an RFC 3339 instant
    /// (excluded). Default: now.
    pub to: Option<String>,
    /// One town (within the caller's towns; another gives zero rows).
    pub town: Option<String>,
    /// One incident kind.
    pub kind: Option<String>,
    /// `true`: drill incidents only; `false` (default): real incidents only. They never mix.
    pub exercise: Option<bool>,
    /// CSV only: `zh-CN` or `en-US` for the header and labels; without it the `Accept-Language`
    /// header decides, and Chinese is the default.
    pub lang: Option<String>,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::bad_request("invalid_query", format!("{field}: {message}"))
}

/// Checks the query and computes the figures.
async fn compute(app: &AppState, caller: &Caller, q: &StatsQuery) -> Result<Stats> {
    let now = app.now();
    let period = Period::parse(q.from.as_deref(), q.to.as_deref(), now)
        .map_err(|e| invalid(e.field, e.message))?;
    if let Some(k) = &q.kind
        && !policy::is_kind(k)
    {
        return Err(invalid(
            "kind",
            format!("{k:?} is not one of {}", policy::KINDS.join(", ")),
        ));
    }
    if let Some(t) = &q.town
        && !crate::registry::towns::exists(&app.pool, t).await?
    {
        return Err(invalid("town", format!("{t:?} is not a town id")));
    }
    let filter = Filter {
        scope: caller.scope.filter(),
        town: q.town.as_deref(),
        kind: q.kind.as_deref(),
        exercise: q.exercise.unwrap_or(false),
        period,
    };
    Ok(stats::store::incidents(&app.pool, &filter, now).await?)
}

/// `GET /api/stats/incidents`
#[utoipa::path(
    get,
    path = "/api/stats/incidents",
    summary = "Incident statistics per town and per kind",
    description = "Incidents opened in the period within the caller's towns: counts, median and p90 \
        seconds from the opening to the first acknowledgement, arrival and resolution (from the \
        timeline), false-alarm rate (rejected / (confirmed + rejected)), rectification rate \
        (resolved with photos or a passed camera re-check / resolved), and clocks that ran past \
        their due time. Drill incidents only with `exercise=true`, never mixed with real ones.",
    params(StatsQuery),
    responses((status = 200, description = "The figures: in total, per town of the caller's scope, per kind", body = Stats))
)]
pub async fn incidents(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<StatsQuery>,
) -> Result<axum::Json<Stats>> {
    if q.lang.is_some() {
        return Err(invalid(
            "lang",
            "is for the CSV only (/api/stats/incidents.csv)",
        ));
    }
    Ok(axum::Json(compute(&app, &caller, &q).await?))
}

/// `GET /api/stats/incidents.csv`: an export, so it is audited (`stats.export`).
#[utoipa::path(
    get,
    path = "/api/stats/incidents.csv",
    summary = "Incident statistics as CSV",
    description = "The figures of `GET /api/stats/incidents` as a CSV download: UTF-8 with a \
        byte-order mark (so Excel reads Chinese), CRLF line ends, the header and labels in `lang` \
        (or the `Accept-Language` header's language; Chinese by default), then a total row, a row \
        per town and a row per kind. Seconds have one decimal, rates are fractions with four; an \
        empty cell has no value.",
    params(StatsQuery),
    responses((status = 200, description = "The CSV file (attachment)", content_type = "text/csv"))
)]
pub async fn incidents_csv(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    headers: HeaderMap,
    Query(q): Query<StatsQuery>,
) -> Result<Response> {
    let lang = match &q.lang {
        Some(l) => {
            Lang::parse(l).ok_or_else(|| invalid("lang", format!("{l:?} is not zh-CN or en-US")))?
        }
        None => Lang::from_accept_language(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        ),
    };
    let figures = compute(&app, &caller, &q).await?;
    let details = json!({
        "from": audit::chain::time_text(figures.from),
        "to": audit::chain::time_text(figures.to),
        "town": q.town, "kind": q.kind, "exercise": figures.exercise,
    });
    audit
        .record(
            &app,
            Event::new(audit::Action::StatsExport).details(details),
        )
        .await?;
    let day = |at: chrono::DateTime<chrono::Utc>| {
        at.with_timezone(&crate::registry::roster::cst())
            .format("%Y%m%d")
            .to_string()
    };
    let name = format!(
        "attachment; filename=\"incident-stats-{}-{}.csv\"",
        day(figures.from),
        day(figures.to - chrono::Duration::seconds(1))
    );
    let mut resp = stats::to_csv(&figures, lang).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&name).expect("ascii file name"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
