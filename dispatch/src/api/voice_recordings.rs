//! Voice recordings (issue 7 item 6): `POST /internal/voice-recordings`, where the gateway that
//! recorded a talk-down or broadcast reports the stored, gateway-signed `audio` blob (retried
//! until accepted, so taken twice without harm: the blob's SHA-256 is the key), and
//! `POST /api/incidents/{id}/voice-recordings`, the incident's recordings with short-lived URLs
//! the browser plays straight from the gateway's evidence store (`<audio>`, HTTP Range), like
//! `POST /api/incidents/{id}/evidence` ([`super::evidence`]).
//!
//! A talk is linked to the incident its floor holding was taken for (`talk_sessions.incident_id`,
//! set when the talk button was pressed on an incident), a push-to-talk transmission (kind `ptt`,
//! named by its voice channel's room id instead of a camera, talker `user:{username}`) to its
//! channel's incident; either is written on that incident's timeline with note code
//! `voiceRecorded` and its `kind`.

use super::Path;
use super::blob_urls::{About, BlobUrls};
use super::field::parse;
use super::live_push::owned_camera;
use super::media::media_config;
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::service::ServiceCaller;
use crate::auth::{Caller, Role};
use crate::error::{Error, Result};
use crate::field::access;
use crate::incident::note::Note;
use crate::incident::store::{self, Entry};
use crate::incident::{Actor, IncidentId};
use crate::intercom::recording::{self, Recording, Report};
use crate::media::choose_gateway;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use bl_proto::CameraId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// The answer to a report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reported {
    pub sha256: String,
    /// False when the blob was reported before (nothing changed).
    pub stored: bool,
    /// The incident it was linked to, if any.
    pub incident_id: Option<Uuid>,
}

/// `POST /internal/voice-recordings`
#[utoipa::path(
    post,
    path = "/internal/voice-recordings",
    summary = "Report a talk, broadcast or push-to-talk recording the gateway stored as evidence",
    request_body = Report,
    responses(
        (status = 201, description = "Stored, and on the incident's timeline if the talk was started from one", body = Reported),
        (status = 200, description = "Reported before: nothing changed", body = Reported),
        (status = 400, description = "`invalid_body` or `invalid_field`: the report is malformed"),
        (status = 403, description = "`not_owner`: the first camera (a push-to-talk recording's voice channel) belongs to another gateway node"),
        (status = 404, description = "`not_found`: no such camera or room"),
    )
)]
pub async fn report(
    State(app): State<Arc<AppState>>,
    Extension(service): Extension<ServiceCaller>,
    audit: Audit,
    super::Json(body): super::Json<Value>,
) -> Result<(StatusCode, axum::Json<Reported>)> {
    let r: Report = parse(body)?;
    r.check().map_err(|(f, m)| Error::invalid_field(f, m))?;
    // The blob is stored under its first camera (a room's id for push-to-talk and rooms) at the node that
    // owns it: only that node reports.
    let room = match r.kind.as_str() {
        "ptt" => Some(owned_room(&app, &service, &r.cameras[0], "voice").await?),
        "room" => Some(owned_room(&app, &service, &r.cameras[0], "consult").await?),
        _ => None,
    };
    let town = match &room {
        Some(room) => room.town.clone(),
        None => owned_camera(&app, &service, &r.cameras[0]).await?.2,
    };
    let mut tx = app.pool.begin().await?;
    // A talk's talker is a user id; a room's is its token's subject, `user:{username}`.
    let user: Option<(Uuid, String, String, String)> =
        match (Uuid::parse_str(&r.talker), r.talker.strip_prefix("user:")) {
            (Ok(id), _) => {
                sqlx::query_as("SELECT id, username, display_name, role FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
            }
            (Err(_), Some(username)) => {
                sqlx::query_as(
                    "SELECT id, username, display_name, role FROM users WHERE username = $1",
                )
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?
            }
            _ => None,
        };
    let talker_name = user
        .as_ref()
        .map_or_else(|| r.talker.clone(), |u| u.2.clone());
    let incident = match (&user, &room) {
        (_, Some(room)) => Some(room.incident),
        (Some(u), None) if r.kind == "talk" => {
            recording::incident_of_talk(&mut tx, &r.cameras[0], u.0, &r).await?
        }
        _ => None,
    };
    let broadcast = match r.broadcast {
        Some(b) => {
            sqlx::query_scalar::<_, Uuid>("SELECT id FROM broadcasts WHERE id = $1")
                .bind(b)
                .fetch_optional(&mut *tx)
                .await?
        }
        None => None,
    };
    let now = app.now();
    let stored = recording::insert(
        &mut tx,
        &r,
        service.node.as_str(),
        user.as_ref().map(|u| u.0),
        &talker_name,
        incident,
        broadcast,
        now,
    )
    .await?;
    if let Some(room) = room.as_ref().filter(|_| r.kind == "room") {
        // The recording ended (stopped, or the room emptied): the room no longer records, unless
        // a newer recording started since.
        sqlx::query(
            "UPDATE rooms SET recording_since = NULL \
              WHERE id = $1 AND recording_since <= $2",
        )
        .bind(&room.id)
        .bind(r.started_at + chrono::Duration::seconds(30))
        .execute(&mut *tx)
        .await?;
    }
    let answer = Reported {
        sha256: r.sha256.clone(),
        stored,
        incident_id: incident,
    };
    if !stored {
        return Ok((StatusCode::OK, axum::Json(answer)));
    }
    if let Some(incident) = incident {
        let actor = match &user {
            Some((id, username, _, role)) => match Role::parse(role) {
                Some(role) => Actor::User {
                    id: *id,
                    username: username.clone(),
                    role,
                },
                None => Actor::System,
            },
            None => Actor::System,
        };
        let premises = r.directions.iter().any(|d| d == "premises");
        let english = match &room {
            Some(room) if r.kind == "room" => format!(
                "consult room \"{}\" recorded at {talker_name}'s request ({} s, every participant's voice)",
                room.title,
                r.seconds()
            ),
            Some(_) => format!(
                "push-to-talk transmission by {talker_name} in the voice channel recorded ({} s)",
                r.seconds()
            ),
            None => format!(
                "{} by {talker_name} to {} recorded ({} s, {})",
                r.kind,
                r.cameras.join(", "),
                r.seconds(),
                if premises {
                    "both directions".to_owned()
                } else {
                    format!(
                        "operator only: {}",
                        r.premises_note.as_deref().unwrap_or("no premises sound")
                    )
                }
            ),
        };
        let mut entry = Entry::note(now, &actor, "voiceRecorded", english).with(Note::new(
            "voiceRecorded",
            json!({"kind": r.kind, "talker": talker_name, "cameras": r.cameras.join(", "),
                   "secs": r.seconds(), "premises": premises,
                   "title": room.as_ref().map(|room| &room.title)}),
        ));
        entry.refs = json!({"voiceRecording": {
            "sha256": r.sha256, "kind": r.kind, "cameras": r.cameras, "directions": r.directions,
            "premisesNote": r.premises_note, "startedAt": r.started_at, "endedAt": r.ended_at},
            "room": room.as_ref().map(|room| &room.id)});
        store::append(&mut tx, incident, &entry).await?;
    }
    let event = Event::new(Action::VoiceRecorded)
        .object("voiceRecording", &r.sha256)
        .town(town)
        .details(json!({"kind": r.kind, "talker": r.talker, "cameras": r.cameras,
                        "incident": incident, "broadcast": broadcast, "size": r.size,
                        "directions": r.directions, "startedAt": r.started_at, "endedAt": r.ended_at}));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    tracing::info!(sha256 = %r.sha256, kind = %r.kind, incident = ?incident, "voice recording reported");
    Ok((StatusCode::CREATED, axum::Json(answer)))
}

/// The room a push-to-talk or room recording is named by, as its report finds it.
struct ReportedRoom {
    id: String,
    incident: Uuid,
    town: String,
    title: String,
}

/// Room `id` of `kind` (`voice` for push-to-talk, `consult` for a room recording), if this node
/// is its gateway (like [`owned_camera`]).
async fn owned_room(
    app: &AppState,
    service: &ServiceCaller,
    id: &str,
    kind: &str,
) -> Result<ReportedRoom> {
    let media = media_config(app)?;
    let found: Option<(Uuid, String, String, String)> = sqlx::query_as(
        "SELECT r.incident_id, r.kind, i.town_id, r.title FROM rooms r \
           JOIN incidents i ON i.id = r.incident_id WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(&app.pool)
    .await?;
    let (incident, found_kind, town, title) = found.ok_or_else(|| Error::not_found("room"))?;
    if found_kind != kind {
        return Err(Error::invalid_field(
            "cameras",
            format!("room {id} is a {found_kind} room, but a {kind} room was reported"),
        ));
    }
    let room = CameraId::new(id.to_owned()).map_err(|e| Error::internal("room id", e))?;
    let owner = choose_gateway(&room, &media.nodes()).clone();
    if owner != service.node {
        return Err(Error::forbidden(
            "not_owner",
            format!(
                "room {id} is served by gateway node {}, not {}",
                owner.as_str(),
                service.node.as_str()
            ),
        ));
    }
    Ok(ReportedRoom {
        id: id.to_owned(),
        incident,
        town,
        title,
    })
}

/// One recording of the incident, with its URL.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingItem {
    #[serde(flatten)]
    pub recording: Recording,
    /// `GET` it from the gateway (token included) until `expiresAt`.
    pub url: String,
}

/// The answer of `POST /api/incidents/{id}/voice-recordings`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recordings {
    /// Oldest first.
    pub items: Vec<RecordingItem>,
    /// When the URLs' tokens expire (ask again after).
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST /api/incidents/{id}/voice-recordings`
#[utoipa::path(
    post,
    path = "/api/incidents/{id}/voice-recordings",
    summary = "Get the incident's talk recordings with short-lived URLs",
    params(("id" = Uuid, Path, description = "The incident's id")),
    responses(
        (status = 200, description = "The recordings (stereo Opus/WebM: left the command center, right the premises), each with a gateway URL carrying a media token", body = Recordings),
        (status = 404, description = "`not_found`: no such incident"),
        (status = 503, description = "`media_not_configured`: no `[media]` section"),
    )
)]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<IncidentId>,
) -> Result<axum::Json<Recordings>> {
    let mut conn = app.pool.acquire().await?;
    let incident = store::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found("incident"))?;
    access::check_incident(&mut conn, &caller, &incident).await?;
    let found = recording::of_incident(&mut conn, id).await?;
    drop(conn);
    with_urls(
        &app,
        &caller,
        &audit,
        (About::Incident(id), &incident.town_id),
        found,
    )
    .await
    .map(axum::Json)
}

/// `found` (of one incident or broadcast, `about`) with URLs granted to `caller`, audited.
pub(super) async fn with_urls(
    app: &AppState,
    caller: &Caller,
    audit: &Audit,
    about: (About, &str),
    found: Vec<Recording>,
) -> Result<Recordings> {
    if found.is_empty() {
        return Ok(Recordings {
            items: Vec::new(),
            expires_at: None,
        });
    }
    let mut what = serde_json::Map::new();
    what.insert("voiceRecordings".into(), found.len().into());
    let cameras = found.iter().map(|r| r.cameras[0].as_str());
    let urls = BlobUrls::grant(app, caller, audit, about, cameras, what).await?;
    let expires_at = urls.expires_at();
    let items = found
        .into_iter()
        .map(|recording| RecordingItem {
            url: urls.url(&recording.cameras[0], &recording.sha256),
            recording,
        })
        .collect();
    Ok(Recordings { items, expires_at })
}
