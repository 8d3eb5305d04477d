//! `/api/notify/channels`: how each outbound channel is doing.

use crate::AppState;
use crate::error::Result;
use crate::notify::store::{self, ChannelSummary};
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Channels {
    items: Vec<ChannelSummary>,
}

/// `GET /api/notify/channels`: every channel with its delivery counts by state and last error.
#[utoipa::path(
    get,
    path = "/api/notify/channels",
    summary = "Outbound channels and their delivery counts",
    responses((status = 200, description = "Every configured channel", body = Channels))
)]
pub async fn channels(State(app): State<Arc<AppState>>) -> Result<axum::Json<Channels>> {
    let items = store::summary(&app.pool, &app.config.notify).await?;
    Ok(axum::Json(Channels { items }))
}
