//! `/api/escalation/policies`: each tier's escalation policy with the schedule it makes, and an
//! admin's change of one. A changed policy (migration 0012) replaces the config's `[escalation]`
//! policy of its tier for every escalation that starts or restarts afterwards; running rounds keep
//! the steps they started with (each timer row holds them), so nothing already scheduled moves.

use super::{Json, Path};
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::{Caller, Scope};
use crate::error::{Error, Result};
use crate::escalation::{Step, policy, store};
use crate::incident::policy::Tier;
use axum::Extension;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

type App = State<Arc<AppState>>;

/// One notification of a policy's schedule.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scheduled {
    /// Seconds after escalation starts (the opening; for the deadline tier's clock-driven steps,
    /// see the incident's clocks).
    pub after_secs: u64,
    /// `team`, `townOfficers` or `districtSupervisors`.
    pub target: String,
}

/// One tier's policy.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    /// `immediate`, `deadline` or `routine`.
    pub tier: String,
    /// `config` (dispatch's `[escalation]`) or `admin` (set through this API).
    pub source: String,
    /// When an admin set it; null for the config's.
    pub updated_at: Option<DateTime<Utc>>,
    /// The steps: `{step: "notify", target}`, `{step: "wait", secs}`,
    /// `{step: "repeat", from_step, times}`.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<Step>,
    /// Every notification the steps make, in order.
    pub schedule: Vec<Scheduled>,
}

/// The body of `PUT /api/escalation/policies/{tier}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// As in `PolicyView.steps`; at most 100 notifications once repeats are expanded.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<Step>,
}

const TIERS: [Tier; 3] = [Tier::Immediate, Tier::Deadline, Tier::Routine];

async fn view(app: &AppState, tier: Tier) -> Result<PolicyView> {
    let mut conn = app.pool.acquire().await?;
    let stored = store::stored_policy(&mut conn, tier).await?;
    let (source, updated_at, steps) = match stored {
        Some(p) => ("admin", Some(p.updated_at), p.steps),
        None => ("config", None, app.config.escalation.policy(tier).to_vec()),
    };
    let schedule = policy::expand(&steps)
        .into_iter()
        .map(|p| Scheduled {
            after_secs: p.after_secs,
            target: p.target.as_str().into(),
        })
        .collect();
    Ok(PolicyView {
        tier: tier.as_str().into(),
        source: source.into(),
        updated_at,
        steps,
        schedule,
    })
}

/// `GET /api/escalation/policies`
#[utoipa::path(
    get,
    path = "/api/escalation/policies",
    summary = "Escalation policies",
    responses((status = 200, description = "The policy of each tier in force, with its schedule", body = Vec<PolicyView>))
)]
pub async fn policies(State(app): App) -> Result<axum::Json<Vec<PolicyView>>> {
    let mut out = Vec::with_capacity(TIERS.len());
    for tier in TIERS {
        out.push(view(&app, tier).await?);
    }
    Ok(axum::Json(out))
}

/// The tier named in the path (404 for another name), for a district-wide admin (403 otherwise:
/// the policies apply to every town).
fn tier_for(caller: &Caller, name: &str) -> Result<Tier> {
    if caller.scope != Scope::District {
        return Err(Error::forbidden(
            "out_of_scope",
            "escalation policies apply to the whole district; ask a district admin",
        ));
    }
    Tier::parse(name)
        .filter(|t| TIERS.contains(t))
        .ok_or_else(|| Error::not_found("tier (immediate, deadline or routine)"))
}

/// `PUT /api/escalation/policies/{tier}`
#[utoipa::path(
    put,
    path = "/api/escalation/policies/{tier}",
    summary = "Set a tier's escalation policy",
    params(("tier" = String, Path, description = "`immediate`, `deadline` or `routine`")),
    request_body = PolicyInput,
    responses((status = 200, description = "The policy now in force for escalations that start from now on", body = PolicyView))
)]
pub async fn set(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(name): Path<String>,
    Json(input): Json<PolicyInput>,
) -> Result<axum::Json<PolicyView>> {
    let tier = tier_for(&caller, &name)?;
    policy::check(&input.steps).map_err(|p| match p.step {
        Some(i) => Error::invalid_field(&format!("steps[{i}]"), p.message),
        None => Error::invalid_field("steps", p.message),
    })?;
    let mut tx = app.pool.begin().await?;
    store::set_policy(&mut tx, tier, &input.steps, caller.user_id, app.now()).await?;
    let details = serde_json::json!({
        "steps": serde_json::to_value(&input.steps).map_err(|e| Error::internal("policy", e))?,
    });
    let event = Event::new(Action::EscalationPolicySet)
        .object("escalationPolicy", tier.as_str())
        .details(details);
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    tracing::info!(tier = tier.as_str(), by = %caller.username, "escalation policy set");
    Ok(axum::Json(view(&app, tier).await?))
}

/// `DELETE /api/escalation/policies/{tier}`: the config's policy applies again.
#[utoipa::path(
    delete,
    path = "/api/escalation/policies/{tier}",
    summary = "Return a tier to the configured escalation policy",
    params(("tier" = String, Path, description = "`immediate`, `deadline` or `routine`")),
    responses((status = 200, description = "The config's policy, now in force again", body = PolicyView))
)]
pub async fn reset(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(name): Path<String>,
) -> Result<axum::Json<PolicyView>> {
    let tier = tier_for(&caller, &name)?;
    let mut tx = app.pool.begin().await?;
    if store::reset_policy(&mut tx, tier).await? {
        let event =
            Event::new(Action::EscalationPolicyReset).object("escalationPolicy", tier.as_str());
        audit.append(&mut tx, &app, event).await?;
    }
    tx.commit().await?;
    Ok(axum::Json(view(&app, tier).await?))
}
