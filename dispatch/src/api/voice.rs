//! The automatic voice warning's admin API (issue 7 item 4): `/api/voice-messages` (an uploaded WAV
//! or a text for espeak-ng, checked in [`crate::warning::audio`]) and `/api/warning-rules` (per
//! premises kind and violation, during local opening hours). Both are district-wide: any admin
//! reads them, only a district admin changes them.

use super::Path;
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::{Caller, Scope};
use crate::error::{Error, Kind, Result};
use crate::warning::audio;
use crate::warning::store::{self, Content, VoiceMessage, WarningRule};
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

type App = State<Arc<AppState>>;

/// Largest upload: a minute of 16 kHz 16-bit mono is 1.9 MiB.
pub const MAX_AUDIO_BYTES: usize = 4 * 1024 * 1024;

/// Longest text espeak-ng is asked to speak.
const MAX_TEXT_CHARS: usize = 300;

fn district_only(caller: &Caller) -> Result<()> {
    if caller.scope != Scope::District {
        return Err(Error::forbidden(
            "out_of_scope",
            "voice messages and warning rules apply to the whole district; ask a district admin",
        ));
    }
    Ok(())
}

/// `GET /api/voice-messages`
#[utoipa::path(
    get,
    path = "/api/voice-messages",
    summary = "Voice messages for automatic warnings",
    responses((status = 200, description = "Every message, by id", body = Vec<VoiceMessage>))
)]
pub async fn list(State(app): App) -> Result<axum::Json<Vec<VoiceMessage>>> {
    Ok(axum::Json(store::list(&app.pool).await?))
}

/// The body of `PUT /api/voice-messages/{id}` as JSON: a message spoken by espeak-ng.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TextMessage {
    /// Shown in admin and on incident timelines (1–100 characters).
    pub name: String,
    /// What the boxes say, in Mandarin (1–300 characters).
    pub text: String,
}

/// The query of an audio upload (documents it; the handler reads the query as a map, since a JSON
/// text message has none).
#[allow(dead_code)]
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AudioQuery {
    /// The message's name (1–100 characters).
    pub name: String,
}

fn check_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid_field(
            "name",
            "must be 1-100 characters without control characters",
        ));
    }
    Ok(name)
}

fn too_large() -> Error {
    Error::new(
        Kind::TooLarge,
        "audio_too_large",
        format!(
            "the recording is larger than {} MiB; a warning is a sentence or two (at most {} s)",
            MAX_AUDIO_BYTES / 1024 / 1024,
            audio::MAX_DURATION_MS / 1000
        ),
    )
}

/// `PUT /api/voice-messages/{id}`: a JSON `{name, text}` for espeak-ng, or the raw bytes of an
/// `audio/wav` recording with `?name=`.
#[utoipa::path(
    put,
    path = "/api/voice-messages/{id}",
    summary = "Create or replace a voice message",
    params(("id" = String, Path, description = "Lowercase letters, digits, `-`, `_`, e.g. `wear-hat-zh`"), AudioQuery),
    request_body(description = "A text message as JSON, or a WAV recording (PCM or G.711, 8–48 kHz, 0.5–60 s)",
                 content((TextMessage = "application/json"), ("audio/wav"))),
    responses(
        (status = 200, description = "The stored message", body = VoiceMessage),
        (status = 400, description = "`not_audio`: not a WAV the boxes can play; `audio_duration`: too short or too long; `invalid_field`"),
        (status = 413, description = "`audio_too_large`"),
    )
)]
pub async fn put(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<VoiceMessage>> {
    district_only(&caller)?;
    bl_proto::id::validate_id("message id", &id).map_err(|e| Error::invalid_field("id", e))?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_AUDIO_BYTES as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_AUDIO_BYTES)
        .await
        .map_err(|_| too_large())?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = app.now();
    let mut tx = app.pool.begin().await?;
    let (stored, details) = if content_type.starts_with("application/json") {
        let m: TextMessage = serde_json::from_slice(&bytes)
            .map_err(|e| Error::bad_request("invalid_body", format!("not a text message: {e}")))?;
        let name = check_name(&m.name)?;
        let text = m.text.trim();
        if text.is_empty()
            || text.chars().count() > MAX_TEXT_CHARS
            || text.chars().any(char::is_control)
        {
            return Err(Error::invalid_field(
                "text",
                format!("must be 1-{MAX_TEXT_CHARS} characters without control characters"),
            ));
        }
        let stored =
            store::put(&mut tx, &id, name, Content::Text(text), caller.user_id, now).await?;
        (stored, serde_json::json!({"text": text}))
    } else {
        let name = check_name(query.get("name").map_or("", String::as_str))?;
        let info = audio::check_wav(&bytes).map_err(|e| Error::bad_request(e.code, e.message))?;
        let sha256 = bl_proto::evidence::sha256_hex(&bytes);
        let duration_ms = i32::try_from(info.duration_ms).unwrap_or(i32::MAX);
        let content = Content::Audio {
            bytes: &bytes,
            sha256: sha256.as_str(),
            duration_ms,
        };
        let stored = store::put(&mut tx, &id, name, content, caller.user_id, now).await?;
        let details = serde_json::json!({"sha256": sha256.as_str(), "bytes": bytes.len(),
                                         "durationMs": duration_ms});
        (stored, details)
    };
    crate::warning::edges::refresh(&mut tx).await?;
    let event = Event::new(Action::VoiceMessageSet)
        .object("voiceMessage", &id)
        .details(details);
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    tracing::info!(message = %id, by = %caller.username, "voice message stored");
    Ok(axum::Json(stored))
}

/// `DELETE /api/voice-messages/{id}`
#[utoipa::path(
    delete,
    path = "/api/voice-messages/{id}",
    summary = "Delete a voice message no rule uses",
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`"),
        (status = 409, description = "`message_in_use`: a warning rule plays it"),
    )
)]
pub async fn delete(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    district_only(&caller)?;
    let mut tx = app.pool.begin().await?;
    match store::delete(&mut tx, &id).await? {
        None => return Err(Error::not_found("voice message")),
        Some(false) => {
            return Err(Error::new(
                Kind::Conflict,
                "message_in_use",
                format!("a warning rule plays {id:?}; change that rule first"),
            ));
        }
        Some(true) => {}
    }
    let event = Event::new(Action::VoiceMessageDelete).object("voiceMessage", &id);
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/voice-messages/{id}/audio`: the uploaded WAV (for listening in admin).
#[utoipa::path(
    get,
    path = "/api/voice-messages/{id}/audio",
    summary = "A voice message's recording",
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The WAV bytes", content_type = "audio/wav"),
        (status = 404, description = "`not_found`: no such message, or it is a text"),
    )
)]
pub async fn audio_file(State(app): App, Path(id): Path<String>) -> Result<Response> {
    let bytes = store::audio(&app.pool, &id)
        .await?
        .ok_or_else(|| Error::not_found("voice recording"))?;
    Ok(([(header::CONTENT_TYPE, "audio/wav")], bytes).into_response())
}

/// `GET /api/warning-rules`
#[utoipa::path(
    get,
    path = "/api/warning-rules",
    summary = "Automatic voice warning rules",
    responses((status = 200, description = "Every rule, by premises kind and violation", body = Vec<WarningRule>))
)]
pub async fn rules(State(app): App) -> Result<axum::Json<Vec<WarningRule>>> {
    Ok(axum::Json(store::rules(&app.pool).await?))
}

/// The body of `PUT /api/warning-rules`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesInput {
    /// The whole rule set (it replaces the stored one).
    pub rules: Vec<WarningRule>,
}

/// `PUT /api/warning-rules`
#[utoipa::path(
    put,
    path = "/api/warning-rules",
    summary = "Replace the automatic voice warning rules",
    request_body = RulesInput,
    responses(
        (status = 200, description = "The rules now stored", body = Vec<WarningRule>),
        (status = 400, description = "`invalid_field`: names the rule and field, e.g. `rules[1].from`"),
    )
)]
pub async fn set_rules(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    super::Json(input): super::Json<RulesInput>,
) -> Result<axum::Json<Vec<WarningRule>>> {
    district_only(&caller)?;
    store::check_rules(&input.rules).map_err(|p| Error::invalid_field(&p.field, p.message))?;
    let known: Vec<String> = store::list(&app.pool)
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect();
    if let Some(i) = input
        .rules
        .iter()
        .position(|r| !known.contains(&r.message_id))
    {
        return Err(Error::invalid_field(
            &format!("rules[{i}].messageId"),
            format!(
                "no voice message {:?}; add it first",
                input.rules[i].message_id
            ),
        ));
    }
    let mut tx = app.pool.begin().await?;
    store::set_rules(&mut tx, &input.rules).await?;
    crate::warning::edges::refresh(&mut tx).await?;
    let details = serde_json::to_value(&input.rules).map_err(|e| Error::internal("rules", e))?;
    let event = Event::new(Action::WarningRulesSet)
        .object("warningRules", "district")
        .details(serde_json::json!({"rules": details}));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    Ok(axum::Json(store::rules(&app.pool).await?))
}
