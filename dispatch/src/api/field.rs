//! The field API: "my incidents", notes, photos and camera re-checks. Thin: `crate::field` decides.
//! Every write takes the optional `Idempotency-Key` header (see `crate::field::idempotency`).

use super::incidents::{detail_in, refused};
use super::{Json, Path, Query};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Kind, Result};
use crate::field::access::{self, TeamFilter};
use crate::field::idempotency::{self, Answer, Key};
use crate::field::{photos, recheck, store};
use crate::incident::note::Note;
use crate::incident::store::{self as incidents, Entry, Incident, Location};
use crate::incident::{Actor, state};
use crate::paging::Page;
use axum::Extension;
use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sqlx::PgConnection;
use std::sync::Arc;
use uuid::Uuid;

type App = AxState<Arc<AppState>>;

fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::bad_request("invalid_field", format!("field {field}: {message}"))
}

/// A JSON body as `T`, refused with 400 `invalid_body` naming the problem.
pub(super) fn parse<T: DeserializeOwned>(body: Value) -> Result<T> {
    serde_json::from_value(body).map_err(|e| {
        Error::bad_request(
            "invalid_body",
            format!("the JSON body is not acceptable: {e}"),
        )
    })
}

/// The incident, locked for this transaction: 404 when missing, 403 outside the caller's towns
/// or (field users) team.
pub(super) async fn locked(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Incident> {
    let incident = incidents::get_for_update(conn, id)
        .await?
        .ok_or_else(|| Error::not_found("incident"))?;
    access::check_incident(conn, caller, &incident).await?;
    Ok(incident)
}

/// `GET /api/field/incidents`: the caller's team's incidents that are not closed, most urgent
/// first (a town officer without a team: those of their towns).
#[utoipa::path(
    get,
    path = "/api/field/incidents",
    summary = "My team's open incidents",
    params(store::MyQuery),
    responses((status = 200, description = "One page of the caller's team's incidents that are not closed, most urgent first", body = Page<store::MyIncident>))
)]
pub async fn my_incidents(
    AxState(app): App,
    Extension(caller): Extension<Caller>,
    Query(query): Query<store::MyQuery>,
) -> Result<axum::Json<Page<store::MyIncident>>> {
    let mut conn = app.pool.acquire().await?;
    let team = access::team_of(&mut conn, caller.user_id).await?;
    drop(conn);
    let filter = TeamFilter::for_my_incidents(caller.role, team);
    let mut page =
        store::my_incidents(&app.pool, caller.scope.filter(), filter.as_param(), &query).await?;
    for item in &mut page.items {
        if let Some(from) = state::State::parse(&item.state) {
            item.next = state::next_states(from)
                .into_iter()
                .filter(|to| state::find(from, *to).is_some_and(|t| t.allows(caller.role)))
                .collect();
        }
    }
    Ok(axum::Json(page))
}

/// The body of `POST /api/incidents/{id}/notes`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NoteBody {
    text: String,
}

/// `POST /api/incidents/{id}/notes`: a timeline entry `note`; 201 with the incident.
#[utoipa::path(
    post,
    path = "/api/incidents/{id}/notes",
    summary = "Add a note to an incident",
    params(("id" = uuid::Uuid, Path, description = "The incident's id"), crate::api::openapi::IdempotencyKey),
    request_body = NoteBody,
    responses(
        (status = 201, description = "The incident with the note", body = super::incidents::Detail),
        (status = 409, description = "`client_id_reused`"),
    )
)]
pub async fn note(
    AxState(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Answer> {
    let key = Key::of(
        &headers,
        caller.user_id,
        "note",
        &id.to_string(),
        body.to_string().as_bytes(),
    )?;
    let NoteBody { text } = parse(body)?;
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 4000 {
        return Err(invalid("text", "must be 1-4000 characters"));
    }
    let mut tx = app.pool.begin().await?;
    locked(&mut tx, &caller, id).await?;
    if let Some(k) = &key
        && let Some(answer) = k.replay(&mut tx).await?
    {
        return Ok(answer);
    }
    let now = app.now();
    let actor = Actor::of(&caller);
    incidents::append(
        &mut tx,
        id,
        &Entry::note(now, &actor, "note", text.to_owned()),
    )
    .await?;
    let answer = Answer::new(StatusCode::CREATED, detail_in(&mut tx, id, now).await?)?;
    let answer = idempotency::finish(key.as_ref(), &mut tx, answer, now).await?;
    tx.commit().await?;
    Ok(answer)
}

/// The query of `POST /api/incidents/{id}/photos`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhotoQuery {
    lat: Option<f64>,
    lon: Option<f64>,
    #[serde(default)]
    caption: String,
}

/// The answer of `POST /api/incidents/{id}/photos`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhotoAttached {
    incident_id: Uuid,
    photo: Option<photos::Photo>,
}

fn check_location(lat: f64, lon: f64) -> Result<Location> {
    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
        Ok(Location { lat, lon })
    } else {
        Err(invalid(
            "location",
            "lat must be in -90..90 and lon in -180..180",
        ))
    }
}

fn too_large(max: usize) -> Error {
    Error::new(
        Kind::TooLarge,
        "photo_too_large",
        format!("the photo is larger than {max} bytes; send a smaller JPEG or PNG"),
    )
}

/// `POST /api/incidents/{id}/photos`: the raw `image/jpeg` or `image/png` body, at most
/// `field.photo_max_bytes`; `?lat=&lon=&caption=` optional. 201 with the photo (timeline `photo`),
/// or 200 when the same bytes are attached to this incident already.
#[utoipa::path(
    post,
    path = "/api/incidents/{id}/photos",
    summary = "Attach a photo to an incident",
    params(("id" = uuid::Uuid, Path, description = "The incident's id"), PhotoQuery, crate::api::openapi::IdempotencyKey),
    request_body(description = "The photo's bytes, at most `field.photo_max_bytes`", content(("image/jpeg"), ("image/png"))),
    responses(
        (status = 201, description = "Attached (timeline entry `photo`)", body = PhotoAttached),
        (status = 200, description = "The same bytes were attached to this incident already", body = PhotoAttached),
        (status = 400, description = "`not_a_photo`: not a JPEG or PNG"),
        (status = 409, description = "`client_id_reused`"),
        (status = 413, description = "`photo_too_large`"),
    )
)]
pub async fn upload_photo(
    AxState(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<Uuid>,
    Query(query): Query<PhotoQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Answer> {
    let max = app.config.field.photo_max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    // A body without a length is cut off at the limit (then refused the same way).
    let bytes = axum::body::to_bytes(body, max)
        .await
        .map_err(|_| too_large(max))?;
    let location = match (query.lat, query.lon) {
        (Some(lat), Some(lon)) => Some(check_location(lat, lon)?),
        (None, None) => None,
        _ => return Err(invalid("location", "give both lat and lon, or neither")),
    };
    let caption = query.caption.trim();
    if caption.chars().count() > 500 {
        return Err(invalid("caption", "is longer than 500 characters"));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let object = format!(
        "{id}?{}&{}&{caption}&{content_type}",
        query.lat.unwrap_or(f64::NAN),
        query.lon.unwrap_or(f64::NAN)
    );
    let key = Key::of(&headers, caller.user_id, "photo", &object, &bytes)?;
    let mut tx = app.pool.begin().await?;
    locked(&mut tx, &caller, id).await?;
    if let Some(k) = &key
        && let Some(answer) = k.replay(&mut tx).await?
    {
        return Ok(answer);
    }
    let content_type = photos::check(&content_type, &bytes)
        .map_err(|e| Error::bad_request("not_a_photo", e.to_string()))?;
    let sha256 = photos::sha256_hex(&bytes);
    let now = app.now();
    photos::store_blob(&mut tx, &sha256, content_type, &bytes, now).await?;
    let attached = photos::attach(
        &mut tx,
        &photos::Attachment {
            incident: id,
            sha256: &sha256,
            by: caller.user_id,
            at: now,
            lat: location.map(|l| l.lat),
            lon: location.map(|l| l.lon),
            caption,
        },
    )
    .await?;
    let status = if attached {
        let actor = Actor::of(&caller);
        let mut entry = Entry::note(now, &actor, "photo", caption.to_owned());
        entry.location = location;
        entry.refs = json!({ "photo": sha256 });
        incidents::append(&mut tx, id, &entry).await?;
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let photo = photos::get(&mut tx, id, &sha256).await?;
    let answer = Answer::new(
        status,
        PhotoAttached {
            incident_id: id,
            photo,
        },
    )?;
    let answer = idempotency::finish(key.as_ref(), &mut tx, answer, now).await?;
    tx.commit().await?;
    tracing::info!(incident = %id, photo = %sha256, size = bytes.len(), by = %caller.username, "photo attached");
    Ok(answer)
}

/// `GET /api/photos/{sha256}`: the bytes, once the caller may see an incident the photo belongs
/// to (404 when no incident has it, 403 when none of them is in the caller's scope or team).
#[utoipa::path(
    get,
    path = "/api/photos/{sha256}",
    summary = "A photo's bytes",
    params(("sha256" = String, Path, description = "The photo's SHA-256, 64 lower-case hex digits")),
    responses((status = 200, description = "The bytes, cacheable for a year", content(("image/jpeg"), ("image/png"))))
)]
pub async fn get_photo(
    AxState(app): App,
    Extension(caller): Extension<Caller>,
    Path(sha256): Path<String>,
) -> Result<Response> {
    if !photos::is_sha256(&sha256) {
        return Err(Error::not_found("photo"));
    }
    let mut conn = app.pool.acquire().await?;
    let owners = photos::owners(&mut conn, &sha256).await?;
    if owners.is_empty() {
        return Err(Error::not_found("photo"));
    }
    if !owners.iter().any(|(town, _)| caller.scope.allows(town)) {
        return Err(Error::out_of_scope());
    }
    let team = access::team_filter(&mut conn, &caller).await?;
    if !owners
        .iter()
        .any(|(town, routed)| caller.scope.allows(town) && team.allows(*routed))
    {
        return Err(access::not_your_team());
    }
    let (content_type, bytes) = photos::bytes(&mut conn, &sha256)
        .await?
        .ok_or_else(|| Error::not_found("photo"))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable".to_owned(),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

/// The body of `POST /api/incidents/{id}/recheck`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RecheckBody {
    #[serde(default)]
    camera_id: Option<String>,
    for_secs: u32,
}

/// `POST /api/incidents/{id}/recheck`: asks the owning edge to watch a camera for `forSecs`
/// seconds; 202 with the re-check. Its answer resolves the incident, or not (see `field::recheck`).
#[utoipa::path(
    post,
    path = "/api/incidents/{id}/recheck",
    summary = "Ask the camera to re-check the rule",
    params(("id" = uuid::Uuid, Path, description = "The incident's id"), crate::api::openapi::IdempotencyKey),
    request_body = RecheckBody,
    responses(
        (status = 202, description = "The re-check, sent to the edge; its answer may resolve the incident", body = recheck::RecheckView),
        (status = 409, description = "`recheck_unsupported`, `no_camera`, `invalid_transition` or `client_id_reused`"),
        (status = 503, description = "`mqtt_not_configured`"),
    )
)]
pub async fn recheck(
    AxState(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Answer> {
    let key = Key::of(
        &headers,
        caller.user_id,
        "recheck",
        &id.to_string(),
        body.to_string().as_bytes(),
    )?;
    let body: RecheckBody = parse(body)?;
    if !(1..=86_400).contains(&body.for_secs) {
        return Err(invalid("forSecs", "must be 1 to 86400 seconds"));
    }
    let mut tx = app.pool.begin().await?;
    let incident = locked(&mut tx, &caller, id).await?;
    if let Some(k) = &key
        && let Some(answer) = k.replay(&mut tx).await?
    {
        return Ok(answer);
    }
    // A passed re-check resolves, so the caller must be one who may resolve it from here.
    state::decide(incident.state(), state::State::Resolved, caller.role).map_err(refused)?;
    let kind: bl_proto::event::ViolationKind = serde_json::from_value(json!(incident.kind))
        .map_err(|_| {
            Error::new(
                Kind::Conflict,
                "recheck_unsupported",
                format!(
                    "a camera re-check watches for a rule a camera detects; {} is not one",
                    incident.kind
                ),
            )
        })?;
    if !app.edge_link.is_configured() {
        return Err(Error::new(
            Kind::Unavailable,
            "mqtt_not_configured",
            "camera re-checks need the [mqtt] section; ask an admin",
        ));
    }
    let no_camera = || {
        Error::new(
            Kind::Conflict,
            "no_camera",
            "the incident's premises has no camera on an edge box to re-check with",
        )
    };
    let premises = incident.premises_id.ok_or_else(no_camera)?;
    let (camera, edge) = recheck::camera_for(&mut tx, id, premises, body.camera_id.as_deref())
        .await?
        .map_err(|()| {
            invalid(
                "cameraId",
                "is not a camera on an edge box of this premises",
            )
        })?
        .ok_or_else(no_camera)?;
    let now = app.now();
    let grace = app.config.field.recheck_grace_secs;
    let camera_id = bl_proto::CameraId::new(camera.clone())
        .map_err(|e| Error::internal("a stored camera id", e))?;
    let edge_id =
        bl_proto::EdgeId::new(edge.clone()).map_err(|e| Error::internal("a stored edge id", e))?;
    let command = recheck::command(Uuid::now_v7(), now, grace, camera_id, kind, body.for_secs);
    recheck::insert(
        &mut tx,
        &recheck::NewCommand {
            command: &command,
            edge: &edge,
            camera: &camera,
            incident: id,
            by: caller.user_id,
            deadline: recheck::deadline(now, body.for_secs, grace),
        },
    )
    .await?;
    let actor = Actor::of(&caller);
    let mut entry = Entry::note(
        now,
        &actor,
        "recheckRequested",
        format!("camera {camera} to be watched for {} s", body.for_secs),
    )
    .with(Note::new(
        "recheckRequested",
        json!({"camera": camera, "secs": body.for_secs}),
    ));
    entry.refs = json!({"cmdId": command.cmd_id, "edgeId": edge, "cameraId": camera, "forSecs": body.for_secs});
    incidents::append(&mut tx, id, &entry).await?;
    let view = recheck::of_incident(&mut tx, id)
        .await?
        .into_iter()
        .find(|r| r.cmd_id == command.cmd_id);
    let answer = Answer::new(StatusCode::ACCEPTED, view)?;
    let answer = idempotency::finish(key.as_ref(), &mut tx, answer, now).await?;
    tx.commit().await?;
    // Sent after the commit: the edge never answers a command dispatch has no row for. A send
    // that fails leaves the row pending and the sweep times it out.
    match app.edge_link.send(&edge_id, &command) {
        Ok(()) => {
            tracing::info!(incident = %id, cmd = %command.cmd_id, edge = %edge, "camera re-check sent")
        }
        Err(e) => {
            tracing::warn!(incident = %id, cmd = %command.cmd_id, err = %e, "cannot send a camera re-check")
        }
    }
    Ok(answer)
}
