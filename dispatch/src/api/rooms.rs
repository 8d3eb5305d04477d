//! Consult rooms and incident voice channels (`crate::rooms`): open a room from an incident, join
//! it (a `room` media token for the gateway room of the same id), invite an outside expert by a
//! signed, expiring link, share a live camera, close it; an incident's voice channel and its
//! push-to-talk floor. Every member is someone who may work the incident (town and team scope);
//! a guest holds an invite.

use super::media::{media_config, sign_as};
use super::{Json, Path};
use crate::AppState;
use crate::audit::{Action, Audit, Event, Who};
use crate::auth::{Caller, Role};
use crate::error::{Error, Kind, Result};
use crate::field::access;
use crate::incident::Actor;
use crate::incident::store::{self as incidents, Incident};
use crate::intercom::floor::Taken;
use crate::intercom::{Asker, Holder};
use crate::registry::cameras;
use crate::rooms::timeline::{self, RoomEvent, RoomRef};
use crate::rooms::{self, Invite, InviteError, floor};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use bl_proto::CameraId;
use bl_proto::stream::Stream;
use bl_proto::token::MediaAction;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

type App = State<Arc<AppState>>;

/// How long a room token lasts: long enough that a participant subscribes to newcomers without
/// asking again every minute; it opens this one room only.
const ROOM_TOKEN_SECS: i64 = 15 * 60;
/// The longest an invite may last (a consult is a matter of hours).
const MAX_INVITE_MINS: i64 = 24 * 60;

/// A room as listed on its incident.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    /// Also the gateway's room id.
    pub id: String,
    pub incident_id: Uuid,
    /// `consult` or `voice` (the incident's push-to-talk channel).
    pub kind: String,
    pub title: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The live camera shared into the room, if any.
    pub shared_camera: Option<String>,
    /// The evidence clip (SHA-256) playing or paused in the room, if any.
    pub shared_clip: Option<String>,
    /// Since when the room's voices are recorded (on request), if they are.
    pub recording_since: Option<DateTime<Utc>>,
}

/// A shared camera's live view, for every member.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShareGrant {
    pub camera_id: String,
    pub whep_url: String,
    pub token: String,
}

/// What a browser needs to take part in a room.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomGrant {
    pub room: Room,
    /// The gateway room: `POST {roomUrl}/whip` to send, `POST {roomUrl}/whep/{participant}` to
    /// receive one participant, `GET {roomUrl}` to list them.
    pub room_url: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// How the gateway lists the caller (`user:{username}` or `guest:{name}`).
    pub me: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareGrant>,
    /// Voice channels: who holds the floor now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<Holder>,
}

/// Writes `event` of `room` on its incident's timeline.
async fn on_timeline(
    conn: &mut sqlx::PgConnection,
    room: &Room,
    actor: &Actor,
    event: RoomEvent<'_>,
    at: DateTime<Utc>,
) -> Result<()> {
    let r = RoomRef {
        id: &room.id,
        kind: &room.kind,
        title: &room.title,
    };
    timeline::write(conn, room.incident_id, r, actor, event, at).await?;
    Ok(())
}

const COLUMNS: &str = "id, incident_id, kind, title, created_by, created_at, closed_at, shared_camera, shared_clip, \
     recording_since";

async fn room_by_id(app: &AppState, id: &str) -> Result<Room> {
    sqlx::query_as::<_, Room>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM rooms WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&app.pool)
    .await?
    .ok_or_else(|| Error::not_found("room"))
}

/// The incident if the caller may work it (404, then 403 out of town or team).
async fn incident_for(app: &AppState, caller: &Caller, id: Uuid) -> Result<Incident> {
    let mut conn = app.pool.acquire().await?;
    let incident = incidents::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found("incident"))?;
    access::check_incident(&mut conn, caller, &incident).await?;
    Ok(incident)
}

/// The room and its incident, if the caller may work the incident.
async fn member_room(app: &AppState, caller: &Caller, id: &str) -> Result<(Room, Incident)> {
    let room = room_by_id(app, id).await?;
    let incident = incident_for(app, caller, room.incident_id).await?;
    Ok((room, incident))
}

fn open(room: &Room) -> Result<()> {
    match room.closed_at {
        None => Ok(()),
        Some(at) => Err(Error::new(
            Kind::Conflict,
            "room_closed",
            format!(
                "room {} was closed at {at}; open a new one from the incident",
                room.id
            ),
        )),
    }
}

/// Signs the room token (and the shared camera's view token) for `sub`.
fn grant(app: &AppState, room: Room, sub: String, floor: Option<Holder>) -> Result<RoomGrant> {
    let media = media_config(app)?;
    let room_id = CameraId::new(room.id.clone())
        .map_err(|e| Error::internal("room id from the database", e))?;
    let signed = sign_as(
        app,
        media,
        sub.clone(),
        room_id,
        MediaAction::Room,
        None,
        ROOM_TOKEN_SECS,
    )?;
    let share = match &room.shared_camera {
        Some(camera) => {
            let camera_id = CameraId::new(camera.clone())
                .map_err(|e| Error::internal("camera id from the registry", e))?;
            let ttl = i64::try_from(media.token_ttl_secs).unwrap_or(60);
            let s = sign_as(
                app,
                media,
                sub.clone(),
                camera_id,
                MediaAction::View,
                Some(Stream::Main),
                ttl,
            )?;
            Some(ShareGrant {
                camera_id: camera.clone(),
                whep_url: format!("{}/whep/{camera}?stream=main", s.base),
                token: s.token,
            })
        }
        None => None,
    };
    let expires_at = DateTime::<Utc>::from_timestamp(signed.claims.exp, 0).unwrap_or(app.now());
    Ok(RoomGrant {
        room_url: format!("{}/rooms/{}", signed.base, room.id),
        room,
        token: signed.token,
        expires_at,
        me: sub,
        share,
        floor,
    })
}

/// The optional body of `POST /api/incidents/{id}/rooms`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenRoom {
    /// Shown in the room list; default 会商 with the incident's premises.
    #[serde(default)]
    pub title: Option<String>,
}

fn body_or_default<T: Default + serde::de::DeserializeOwned>(body: &[u8], hint: &str) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        Error::bad_request(
            "invalid_body",
            format!("the JSON body is not acceptable: {e}; send {hint} or nothing"),
        )
    })
}

/// `POST /api/incidents/{id}/rooms`
#[utoipa::path(
    post,
    path = "/api/incidents/{id}/rooms",
    summary = "Open a consult room for the incident",
    params(("id" = Uuid, Path, description = "The incident's id")),
    request_body(content = Option<OpenRoom>, description = "Optional title"),
    responses((status = 201, description = "The new room; join it with /api/rooms/{id}/join", body = Room))
)]
pub async fn create(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<Room>)> {
    let request: OpenRoom = body_or_default(&body, "{\"title\": \"…\"}")?;
    let incident = incident_for(&app, &caller, id).await?;
    let title = match request.title.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() && t.chars().count() <= 200 => t.to_owned(),
        Some(_) => {
            return Err(Error::bad_request(
                "invalid_field",
                "title: must be 1-200 characters",
            ));
        }
        None => format!(
            "会商：{}",
            incident
                .premises_name
                .as_deref()
                .unwrap_or(&incident.address)
        ),
    };
    let mut tx = app.pool.begin().await?;
    let room = sqlx::query_as::<_, Room>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rooms (id, incident_id, kind, title, created_by, created_at) \
         VALUES ($1, $2, 'consult', $3, $4, $5) RETURNING {COLUMNS}"
    )))
    .bind(rooms::consult_room_id())
    .bind(id)
    .bind(&title)
    .bind(caller.user_id)
    .bind(app.now())
    .fetch_one(&mut *tx)
    .await?;
    on_timeline(
        &mut tx,
        &room,
        &Actor::of(&caller),
        RoomEvent::Opened,
        app.now(),
    )
    .await?;
    let event = Event::new(Action::RoomOpen)
        .object("room", &room.id)
        .town(&incident.town_id)
        .details(serde_json::json!({"incident": id.to_string(), "title": title}));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(room)))
}

/// `GET /api/incidents/{id}/rooms`
#[utoipa::path(
    get,
    path = "/api/incidents/{id}/rooms",
    summary = "The incident's rooms (consult rooms and its voice channel), oldest first",
    params(("id" = Uuid, Path, description = "The incident's id")),
    responses((status = 200, description = "The rooms", body = Vec<Room>))
)]
pub async fn list(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Vec<Room>>> {
    incident_for(&app, &caller, id).await?;
    let rows = sqlx::query_as::<_, Room>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM rooms WHERE incident_id = $1 ORDER BY created_at, id"
    )))
    .bind(id)
    .fetch_all(&app.pool)
    .await?;
    Ok(axum::Json(rows))
}

fn user_sub(caller: &Caller) -> String {
    format!("user:{}", caller.username)
}

/// A member's first join of `room`, on the timeline.
async fn joined(app: &AppState, caller: &Caller, room: &Room) -> Result<()> {
    let mut conn = app.pool.acquire().await?;
    let who = RoomEvent::Joined {
        who: &caller.display_name,
        guest: false,
    };
    on_timeline(&mut conn, room, &Actor::of(caller), who, app.now()).await
}

/// `POST /api/rooms/{id}/join`
#[utoipa::path(
    post,
    path = "/api/rooms/{id}/join",
    summary = "Get a room grant (gateway room URL and a room token)",
    params(("id" = String, Path, description = "The room's id")),
    responses(
        (status = 200, description = "The grant; ask again to refresh the token or the shared camera's", body = RoomGrant),
        (status = 409, description = "`room_closed`"),
        (status = 503, description = "`media_not_configured`"),
    )
)]
pub async fn join(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
) -> Result<axum::Json<RoomGrant>> {
    media_config(&app)?;
    let (room, incident) = member_room(&app, &caller, &id).await?;
    open(&room)?;
    let holder = if room.kind == "voice" {
        floor::holder(&app.pool, &room.id, app.now()).await?
    } else {
        None
    };
    joined(&app, &caller, &room).await?;
    let grant = grant(&app, room, user_sub(&caller), holder)?;
    audit
        .record(
            &app,
            Event::new(Action::RoomJoin)
                .object("room", &id)
                .town(&incident.town_id),
        )
        .await?;
    Ok(axum::Json(grant))
}

/// The body of `POST /api/rooms/{id}/invites`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteRequest {
    /// The guest's name, shown to the room.
    pub name: String,
    /// How long the link is valid, in minutes (1 to 1440; default 120).
    #[serde(default)]
    pub valid_mins: Option<i64>,
}

/// An invitation link.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteLink {
    /// The console path to send to the guest (prefix it with the console's address).
    pub path: String,
    pub invite: String,
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/rooms/{id}/invites`
#[utoipa::path(
    post,
    path = "/api/rooms/{id}/invites",
    summary = "Invite an outside expert by a signed, expiring link",
    params(("id" = String, Path, description = "The room's id")),
    request_body = InviteRequest,
    responses((status = 201, description = "The link", body = InviteLink))
)]
pub async fn invite(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
    Json(request): Json<InviteRequest>,
) -> Result<(StatusCode, axum::Json<InviteLink>)> {
    let media = media_config(&app)?;
    let (room, incident) = member_room(&app, &caller, &id).await?;
    open(&room)?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(Error::bad_request(
            "invalid_field",
            "name: must be 1-64 characters",
        ));
    }
    let mins = request.valid_mins.unwrap_or(120);
    if !(1..=MAX_INVITE_MINS).contains(&mins) {
        return Err(Error::bad_request(
            "invalid_field",
            format!("validMins: must be 1-{MAX_INVITE_MINS}"),
        ));
    }
    let key = media
        .signing_key
        .as_ref()
        .ok_or_else(|| Error::internal("invite signing", "media.signing_key was not loaded"))?;
    let exp = app.now().timestamp() + mins * 60;
    let jti = crate::auth::random_token(16);
    let text = rooms::sign_invite(
        &Invite {
            room: room.id.clone(),
            name: name.to_owned(),
            exp,
            jti: jti.clone(),
        },
        key.signing_key(),
    );
    let event = Event::new(Action::RoomInvite)
        .object("room", &room.id)
        .town(&incident.town_id)
        .details(serde_json::json!({"guest": name, "exp": exp, "jti": jti}));
    audit.record(&app, event).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(InviteLink {
            path: format!("/join/{text}"),
            invite: text,
            expires_at: DateTime::<Utc>::from_timestamp(exp, 0).unwrap_or(app.now()),
        }),
    ))
}

/// The body of `POST /api/room-invites/join`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuestJoin {
    /// The invite from the link.
    pub invite: String,
}

/// `POST /api/room-invites/join`
#[utoipa::path(
    post,
    path = "/api/room-invites/join",
    summary = "Join a room as an invited guest (no login)",
    request_body = GuestJoin,
    responses(
        (status = 200, description = "The guest's grant", body = RoomGrant),
        (status = 401, description = "`invite_invalid`: damaged or forged; `invite_expired`"),
        (status = 409, description = "`room_closed`"),
    )
)]
pub async fn guest_join(
    State(app): App,
    audit: Audit,
    Json(request): Json<GuestJoin>,
) -> Result<axum::Json<RoomGrant>> {
    let media = media_config(&app)?;
    let key = media
        .signing_key
        .as_ref()
        .ok_or_else(|| Error::internal("invite check", "media.signing_key was not loaded"))?;
    let verifying = key.signing_key().verifying_key();
    let invite = rooms::verify_invite(&request.invite, &verifying, app.now().timestamp())
        .map_err(|e| match e {
            InviteError::Invalid => Error::new(
                Kind::Unauthenticated,
                "invite_invalid",
                "this invitation link is damaged or was not issued by the command center; ask whoever invited you for a new link",
            ),
            InviteError::Expired { exp, .. } => Error::new(
                Kind::Unauthenticated,
                "invite_expired",
                format!(
                    "this invitation expired at {}; ask whoever invited you for a new link",
                    DateTime::<Utc>::from_timestamp(exp, 0).unwrap_or_default()
                ),
            ),
        })?;
    let room = room_by_id(&app, &invite.room).await?;
    open(&room)?;
    let town: String = sqlx::query_scalar("SELECT town_id FROM incidents WHERE id = $1")
        .bind(room.incident_id)
        .fetch_one(&app.pool)
        .await?;
    let sub = format!("guest:{}", invite.name);
    let who = RoomEvent::Joined {
        who: &invite.name,
        guest: true,
    };
    let mut conn = app.pool.acquire().await?;
    on_timeline(&mut conn, &room, &Actor::System, who, app.now()).await?;
    drop(conn);
    let grant = grant(&app, room, sub.clone(), None)?;
    audit
        .by(Who::Anonymous(sub))
        .record(
            &app,
            Event::new(Action::RoomJoin)
                .object("room", &invite.room)
                .town(&town)
                .details(serde_json::json!({"invite": invite.jti})),
        )
        .await?;
    Ok(axum::Json(grant))
}

/// The body of `PUT /api/rooms/{id}/share`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Share {
    /// The camera to share, or null to stop sharing.
    pub camera_id: Option<String>,
}

/// `PUT /api/rooms/{id}/share`
#[utoipa::path(
    put,
    path = "/api/rooms/{id}/share",
    summary = "Share a live camera into the room (or stop: cameraId null)",
    params(("id" = String, Path, description = "The room's id")),
    request_body = Share,
    responses((status = 200, description = "The room; members get the camera's view with their next join", body = Room))
)]
pub async fn share(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
    Json(request): Json<Share>,
) -> Result<axum::Json<Room>> {
    let (room, incident) = member_room(&app, &caller, &id).await?;
    open(&room)?;
    if let Some(camera) = &request.camera_id {
        // The sharer must be allowed to watch it; the room then sees it on their authority.
        let c = cameras::get(&app.pool, camera)
            .await?
            .ok_or_else(|| Error::not_found("camera"))?;
        caller.check_town(&c.town_id)?;
    }
    let mut tx = app.pool.begin().await?;
    let room = sqlx::query_as::<_, Room>(sqlx::AssertSqlSafe(format!(
        "UPDATE rooms SET shared_camera = $2 WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(&id)
    .bind(&request.camera_id)
    .fetch_one(&mut *tx)
    .await?;
    let shared = RoomEvent::CameraShared(request.camera_id.as_deref());
    on_timeline(&mut tx, &room, &Actor::of(&caller), shared, app.now()).await?;
    let event = Event::new(Action::RoomShare)
        .object("room", &id)
        .town(&incident.town_id)
        .details(serde_json::json!({"camera": request.camera_id}));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    Ok(axum::Json(room))
}

/// What to do with a room's evidence clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ClipStep {
    Play,
    Pause,
    Resume,
    Stop,
}

/// The body of `POST /api/rooms/{id}/clip`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClipRequest {
    pub step: ClipStep,
    /// `play`: the clip, one of the incident's evidence clips (`/api/incidents/{id}/evidence`).
    #[serde(default)]
    pub sha256: Option<String>,
}

/// A clip grant for the gateway.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClipGrant {
    /// `POST {clipUrl}` with `Authorization: Bearer {grant}` does the step at the gateway.
    pub clip_url: String,
    pub grant: String,
    pub sha256: String,
    pub room: Room,
}

/// `POST /api/rooms/{id}/clip`
#[utoipa::path(
    post,
    path = "/api/rooms/{id}/clip",
    summary = "Play one of the incident's evidence clips into the room for all, or pause, resume or stop it",
    params(("id" = String, Path, description = "The room's id")),
    request_body = ClipRequest,
    responses(
        (status = 200, description = "The grant for the gateway (valid for a minute)", body = ClipGrant),
        (status = 404, description = "`unknown_clip`: not an evidence clip of this incident"),
        (status = 409, description = "`room_closed`; `no_clip`: nothing plays to pause, resume or stop"),
    )
)]
pub async fn clip(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
    Json(request): Json<ClipRequest>,
) -> Result<axum::Json<ClipGrant>> {
    let media = media_config(&app)?;
    let (room, incident) = member_room(&app, &caller, &id).await?;
    open(&room)?;
    let sha256 = match (request.step, &room.shared_clip) {
        (ClipStep::Play, _) => {
            let wanted = request.sha256.as_deref().unwrap_or("");
            let mut conn = app.pool.acquire().await?;
            let events = incidents::events(&mut conn, room.incident_id).await?;
            let found = super::evidence::blobs(&events)
                .into_iter()
                .any(|(kind, blob, _)| kind == "clip" && blob.sha256.as_str() == wanted);
            if !found {
                return Err(Error::new(
                    Kind::NotFound,
                    "unknown_clip",
                    format!(
                        "sha256 {wanted:?} is not an evidence clip of this room's incident; pick one from the incident's evidence"
                    ),
                ));
            }
            wanted.to_owned()
        }
        (_, Some(shared)) => shared.clone(),
        (_, None) => {
            return Err(Error::new(
                Kind::Conflict,
                "no_clip",
                "no evidence clip is shared in this room; play one first",
            ));
        }
    };
    let key = media
        .signing_key
        .as_ref()
        .ok_or_else(|| Error::internal("clip grant", "media.signing_key was not loaded"))?;
    let room_id = CameraId::new(room.id.clone())
        .map_err(|e| Error::internal("room id from the database", e))?;
    let nodes = media.nodes();
    let node = crate::media::choose_gateway(&room_id, &nodes).clone();
    let base = media
        .url_of(&node)
        .ok_or_else(|| Error::internal("gateway lookup", "chosen node has no url"))?
        .to_owned();
    let step = match request.step {
        ClipStep::Play => bl_proto::clip_token::ClipStep::Play,
        ClipStep::Pause => bl_proto::clip_token::ClipStep::Pause,
        ClipStep::Resume => bl_proto::clip_token::ClipStep::Resume,
        ClipStep::Stop => bl_proto::clip_token::ClipStep::Stop,
    };
    let iat = app.now().timestamp();
    let claims = bl_proto::clip_token::ClipClaims {
        sub: user_sub(&caller),
        room: room_id,
        sha256: sha256
            .parse()
            .map_err(|e| Error::internal("clip hash from the database", e))?,
        step,
        node,
        iat,
        exp: iat + 60,
        jti: crate::auth::random_token(16),
    };
    let shared = match request.step {
        ClipStep::Play => Some(sha256.as_str()),
        ClipStep::Stop => None,
        ClipStep::Pause | ClipStep::Resume => room.shared_clip.as_deref(),
    };
    let mut tx = app.pool.begin().await?;
    let updated = sqlx::query_as::<_, Room>(sqlx::AssertSqlSafe(format!(
        "UPDATE rooms SET shared_clip = $2 WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(&id)
    .bind(shared)
    .fetch_one(&mut *tx)
    .await?;
    let actor = Actor::of(&caller);
    match request.step {
        ClipStep::Play => {
            let e = RoomEvent::ClipShared(Some(&sha256));
            on_timeline(&mut tx, &updated, &actor, e, app.now()).await?;
        }
        ClipStep::Stop => {
            on_timeline(
                &mut tx,
                &updated,
                &actor,
                RoomEvent::ClipShared(None),
                app.now(),
            )
            .await?;
        }
        ClipStep::Pause | ClipStep::Resume => {}
    }
    let event = Event::new(Action::RoomClip)
        .object("room", &id)
        .town(&incident.town_id)
        .details(serde_json::json!({"step": format!("{:?}", request.step).to_lowercase(), "sha256": sha256, "jti": claims.jti}));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    Ok(axum::Json(ClipGrant {
        clip_url: format!("{base}/rooms/{}/clip", room.id),
        grant: bl_proto::clip_token::sign(&claims, key.signing_key()),
        sha256,
        room: updated,
    }))
}

/// `DELETE /api/rooms/{id}`
#[utoipa::path(
    delete,
    path = "/api/rooms/{id}",
    summary = "Close a consult room: no more joins or invites (listed on the incident still)",
    params(("id" = String, Path, description = "The room's id")),
    responses((status = 204, description = "Closed (also when it was already)"))
)]
pub async fn close(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let (room, incident) = member_room(&app, &caller, &id).await?;
    if room.closed_at.is_some() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let mut tx = app.pool.begin().await?;
    sqlx::query("UPDATE rooms SET closed_at = $2, recording_since = NULL WHERE id = $1 AND closed_at IS NULL")
        .bind(&id)
        .bind(app.now())
        .execute(&mut *tx)
        .await?;
    on_timeline(
        &mut tx,
        &room,
        &Actor::of(&caller),
        RoomEvent::Closed,
        app.now(),
    )
    .await?;
    let event = Event::new(Action::RoomClose)
        .object("room", &id)
        .town(&incident.town_id);
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The incident's voice channel, opened on first use.
async fn voice_room(app: &AppState, caller: &Caller, incident: &Incident) -> Result<Room> {
    let id = rooms::voice_room_id(incident.id);
    let mut tx = app.pool.begin().await?;
    let opened = sqlx::query_as::<_, Room>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rooms (id, incident_id, kind, title, created_by, created_at) \
         VALUES ($1, $2, 'voice', '对讲', $3, $4) ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(&id)
    .bind(incident.id)
    .bind(caller.user_id)
    .bind(app.now())
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(room) = &opened {
        on_timeline(
            &mut tx,
            room,
            &Actor::of(caller),
            RoomEvent::Opened,
            app.now(),
        )
        .await?;
    }
    tx.commit().await?;
    match opened {
        Some(room) => Ok(room),
        None => room_by_id(app, &id).await,
    }
}

/// `POST /api/incidents/{id}/voice`
#[utoipa::path(
    post,
    path = "/api/incidents/{id}/voice",
    summary = "Join the incident's voice channel (push-to-talk with the assigned team)",
    params(("id" = Uuid, Path, description = "The incident's id")),
    responses((status = 200, description = "The grant (audio only; send only while holding the floor)", body = RoomGrant))
)]
pub async fn voice(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<RoomGrant>> {
    media_config(&app)?;
    let incident = incident_for(&app, &caller, id).await?;
    let room = voice_room(&app, &caller, &incident).await?;
    let holder = floor::holder(&app.pool, &room.id, app.now()).await?;
    let room_id = room.id.clone();
    joined(&app, &caller, &room).await?;
    let grant = grant(&app, room, user_sub(&caller), holder)?;
    audit
        .record(
            &app,
            Event::new(Action::RoomJoin)
                .object("room", &room_id)
                .town(&incident.town_id),
        )
        .await?;
    Ok(axum::Json(grant))
}

/// The optional body of `POST /api/incidents/{id}/voice/floor`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FloorRequest {
    /// Take the floor from whoever holds it (supervisors only).
    #[serde(default)]
    pub takeover: bool,
}

/// The caller's holding of a voice channel's floor.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FloorGrant {
    pub session_id: i64,
    /// The floor grant for the gateway: `POST {roomUrl}/whip/{participant}/floor` with
    /// `Authorization: Bearer {grant}` opens the caller's audio to the channel until
    /// `expiresAt`; take the floor again before then to renew it.
    pub grant: String,
    pub expires_at: DateTime<Utc>,
}

/// Signs the floor grant of holding `session_id` for the caller (`bl_proto::floor_token`).
fn floor_grant(
    app: &AppState,
    caller: &Caller,
    room: &str,
    session_id: i64,
) -> Result<axum::Json<FloorGrant>> {
    let media = media_config(app)?;
    let key = media
        .signing_key
        .as_ref()
        .ok_or_else(|| Error::internal("floor grant", "media.signing_key was not loaded"))?;
    let room = CameraId::new(room.to_owned())
        .map_err(|e| Error::internal("room id from the database", e))?;
    let nodes = media.nodes();
    let node = crate::media::choose_gateway(&room, &nodes).clone();
    let iat = app.now().timestamp();
    let claims = bl_proto::floor_token::FloorClaims {
        sub: user_sub(caller),
        room,
        floor_session: session_id,
        node,
        iat,
        exp: iat + crate::intercom::HOLD_SECS,
        jti: crate::auth::random_token(16),
    };
    Ok(axum::Json(FloorGrant {
        session_id,
        grant: bl_proto::floor_token::sign(&claims, key.signing_key()),
        expires_at: DateTime::<Utc>::from_timestamp(claims.exp, 0).unwrap_or(app.now()),
    }))
}

/// `POST /api/incidents/{id}/voice/floor`
#[utoipa::path(
    post,
    path = "/api/incidents/{id}/voice/floor",
    summary = "Take the voice channel's floor (press to talk); asking again renews it",
    params(("id" = Uuid, Path, description = "The incident's id")),
    request_body(content = Option<FloorRequest>, description = "Optional; `takeover` for supervisors"),
    responses(
        (status = 200, description = "The caller holds the floor; present the grant to the gateway", body = FloorGrant),
        (status = 409, description = "`floor_taken`: someone else talks (`error.holder` names them)"),
    )
)]
pub async fn take_floor(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<axum::Json<FloorGrant>> {
    media_config(&app)?;
    let request: FloorRequest = body_or_default(&body, "{\"takeover\": true|false}")?;
    let incident = incident_for(&app, &caller, id).await?;
    let room = voice_room(&app, &caller, &incident).await?;
    let asker = Asker {
        user_id: caller.user_id,
        may_take_over: caller.role == Role::Supervisor,
        wants_take_over: request.takeover,
    };
    let mut tx = app.pool.begin().await?;
    let taken = match floor::take(&mut tx, &room.id, &caller, asker, app.now()).await {
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            return Err(Error::new(
                Kind::Conflict,
                "floor_taken",
                "someone else started talking on this channel just now; try again",
            ));
        }
        other => other?,
    };
    let (session_id, from) = match taken {
        Taken::Refused(holder) => {
            let mut e = Error::new(
                Kind::Conflict,
                "floor_taken",
                format!(
                    "{} ({}) is talking on this incident's channel; wait until they let go{}",
                    holder.display_name,
                    holder.username,
                    if request.takeover {
                        " (only a supervisor may take the floor)"
                    } else {
                        ""
                    }
                ),
            );
            e.holder = Some(Box::new(holder));
            return Err(e);
        }
        Taken::Renewed { session_id } => {
            tx.commit().await?;
            return floor_grant(&app, &caller, &room.id, session_id);
        }
        Taken::Started {
            session_id,
            taken_from,
        } => (session_id, taken_from),
    };
    let event = Event::new(Action::VoiceTalk)
        .object("room", &room.id)
        .town(&incident.town_id)
        .details(serde_json::json!({
            "session": session_id,
            "takenFrom": from.map(|h| h.username),
        }));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    floor_grant(&app, &caller, &room.id, session_id)
}

/// `DELETE /api/incidents/{id}/voice/floor`
#[utoipa::path(
    delete,
    path = "/api/incidents/{id}/voice/floor",
    summary = "Let go of the voice channel's floor",
    params(("id" = Uuid, Path, description = "The incident's id")),
    responses((status = 204, description = "The caller no longer holds the floor (also when they did not)"))
)]
pub async fn release_floor(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<Uuid>,
) -> Result<StatusCode> {
    let incident = incident_for(&app, &caller, id).await?;
    let room = rooms::voice_room_id(id);
    let mut tx = app.pool.begin().await?;
    if let Some(session) = floor::release(&mut tx, &room, caller.user_id, app.now()).await? {
        let event = Event::new(Action::VoiceRelease)
            .object("room", &room)
            .town(&incident.town_id)
            .details(serde_json::json!({"session": session}));
        audit.append(&mut tx, &app, event).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /api/rooms/{id}/recording`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordingRequest {
    /// `true` starts recording the room's voices, `false` stops it.
    pub record: bool,
}

/// The gateway request that starts or stops a room's recording.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingGrant {
    /// `POST` (start) or `DELETE` (stop) it with `Authorization: Bearer {token}`.
    pub recording_url: String,
    /// A media token for action `record` of the room, valid for a minute.
    pub token: String,
    pub room: Room,
}

/// `POST /api/rooms/{id}/recording`
#[utoipa::path(
    post,
    path = "/api/rooms/{id}/recording",
    summary = "Record a consult room's voices (every participant mixed, audio only) as evidence, or stop",
    params(("id" = String, Path, description = "The room's id")),
    request_body = RecordingRequest,
    responses(
        (status = 200, description = "The grant for the gateway; the room says `recordingSince`", body = RecordingGrant),
        (status = 409, description = "`room_closed`; `not_consult_room`: a voice channel records each transmission by itself"),
    )
)]
pub async fn recording(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
    Json(request): Json<RecordingRequest>,
) -> Result<axum::Json<RecordingGrant>> {
    let media = media_config(&app)?;
    let (room, incident) = member_room(&app, &caller, &id).await?;
    open(&room)?;
    if room.kind != "consult" {
        return Err(Error::new(
            Kind::Conflict,
            "not_consult_room",
            format!(
                "room {id} is an incident voice channel: each transmission is recorded by itself"
            ),
        ));
    }
    let room_id = CameraId::new(room.id.clone())
        .map_err(|e| Error::internal("room id from the database", e))?;
    let signed = sign_as(
        &app,
        media,
        user_sub(&caller),
        room_id,
        MediaAction::Record,
        None,
        60,
    )?;
    let since = if request.record {
        Some(room.recording_since.unwrap_or(app.now()))
    } else {
        None
    };
    let mut tx = app.pool.begin().await?;
    let updated = sqlx::query_as::<_, Room>(sqlx::AssertSqlSafe(format!(
        "UPDATE rooms SET recording_since = $2 WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(&id)
    .bind(since)
    .fetch_one(&mut *tx)
    .await?;
    let event = Event::new(Action::RoomRecord)
        .object("room", &id)
        .town(&incident.town_id)
        .details(serde_json::json!({"record": request.record, "jti": signed.claims.jti}));
    audit.append(&mut tx, &app, event).await?;
    tx.commit().await?;
    Ok(axum::Json(RecordingGrant {
        recording_url: format!("{}/rooms/{}/recording", signed.base, room.id),
        token: signed.token,
        room: updated,
    }))
}
