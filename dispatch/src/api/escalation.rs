//! `GET /api/escalation/policies`: the escalation policy of each tier, as configured in
//! `[escalation]`, with the schedule it makes. Read-only: policies are configuration (changing one
//! under running timers would renumber their steps), so they change with the config file and a
//! restart.

use crate::AppState;
use crate::escalation::{Step, policy};
use crate::incident::policy::Tier;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;

/// One notification of a policy's schedule.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scheduled {
    /// Seconds after the incident opened (or, for the deadline tier, was dispatched).
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
    /// The steps as configured: `{step: "notify", target}`, `{step: "wait", secs}`,
    /// `{step: "repeat", from_step, times}`.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<Step>,
    /// Every notification the steps make, in order.
    pub schedule: Vec<Scheduled>,
}

/// `GET /api/escalation/policies`
#[utoipa::path(
    get,
    path = "/api/escalation/policies",
    summary = "Escalation policies",
    responses((status = 200, description = "The policy of each tier with its schedule (from `[escalation]` of the config)", body = Vec<PolicyView>))
)]
pub async fn policies(State(app): State<Arc<AppState>>) -> axum::Json<Vec<PolicyView>> {
    let view = |tier: Tier| {
        let steps = app.config.escalation.policy(tier).to_vec();
        let schedule = policy::expand(&steps)
            .into_iter()
            .map(|p| Scheduled {
                after_secs: p.after_secs,
                target: p.target.as_str().into(),
            })
            .collect();
        PolicyView {
            tier: tier.as_str().into(),
            steps,
            schedule,
        }
    };
    axum::Json(vec![
        view(Tier::Immediate),
        view(Tier::Deadline),
        view(Tier::Routine),
    ])
}
