//! Group broadcast (issue 7, [`crate::intercom::broadcast`]): `POST /api/broadcasts` takes the
//! floor of every target camera and hands the browser ONE WHIP ingest per gateway node (in a
//! one-node set-up: one) with a broadcast token naming that node's cameras; `GET` shows each
//! kitchen's state (also streamed on the `broadcasts` WebSocket topic); `DELETE` ends it.

use super::Path;
use super::field::parse;
use super::media::media_config;
use crate::AppState;
use crate::audit::{Action, Audit, Event};
use crate::auth::{Caller, Role};
use crate::error::{Error, Kind, Result};
use crate::intercom::Asker;
use crate::intercom::broadcast::{self, Reason};
use crate::intercom::floor::{self, Taken};
use crate::media::choose_gateway;
use crate::registry::cameras::{self, Camera, ListQuery};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use bl_proto::broadcast_token::{self, BroadcastClaims, MAX_BROADCAST_CAMERAS};
use bl_proto::{CameraId, GatewayNodeId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

type App = State<Arc<AppState>>;

const PREMISES_KINDS: &[&str] = &[
    "schoolCanteen",
    "restaurant",
    "centralKitchen",
    "pharmacy",
    "other",
];

/// The body of `POST /api/broadcasts`: `cameras`, or a filter (`town` and/or `premisesKind`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BroadcastRequest {
    /// Hand-picked cameras (1 to 200), each in the caller's towns.
    #[serde(default)]
    pub cameras: Option<Vec<String>>,
    /// Every camera of this town's premises (within the caller's towns)…
    #[serde(default)]
    pub town: Option<String>,
    /// …of this premises kind (`schoolCanteen`, `restaurant`, `centralKitchen`, `pharmacy`, `other`).
    #[serde(default)]
    pub premises_kind: Option<String>,
    /// A supervisor takes cameras another operator talks to (others are reported `busy`).
    #[serde(default)]
    pub takeover: bool,
}

/// One kitchen of a broadcast.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub camera_id: String,
    pub camera_name: String,
    pub premises_id: Uuid,
    pub premises_name: String,
    pub town_id: String,
    /// `connecting`, `playing`, `ended` or `failed`.
    pub state: String,
    /// Why it failed: `noSpeaker`, `offline`, `busy` or `edgeError`.
    pub reason: Option<String>,
    /// What happened, in words (who is busy, what the edge box answered).
    pub detail: String,
    pub updated_at: DateTime<Utc>,
}

/// Where the browser sends the voice: one WHIP ingest per gateway node.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ingest {
    #[schema(value_type = String)]
    pub node: GatewayNodeId,
    pub whip_url: String,
    /// The broadcast token (short-lived) for this node's cameras.
    pub token: String,
    pub cameras: Vec<String>,
}

/// A broadcast and its kitchens (`ingests` only in the answer to `POST`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub targets: Vec<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingests: Option<Vec<Ingest>>,
}

/// `POST /api/broadcasts`
#[utoipa::path(
    post,
    path = "/api/broadcasts",
    summary = "Start a group broadcast: take the floor of every target camera, get the WHIP ingests",
    request_body = BroadcastRequest,
    responses(
        (status = 201, description = "The broadcast, each kitchen's state (busy, noSpeaker and offline ones failed at once) and the WHIP ingests", body = BroadcastView),
        (status = 400, description = "`invalid_body`, `invalid_field` (an unknown camera or premises kind), `broadcast_too_many`"),
        (status = 403, description = "`out_of_scope`: a camera or town outside the caller's towns"),
        (status = 409, description = "`broadcast_no_targets`: no camera matched"),
        (status = 503, description = "`media_not_configured`"),
    )
)]
pub async fn create(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    super::Json(body): super::Json<Value>,
) -> Result<(StatusCode, axum::Json<BroadcastView>)> {
    let request: BroadcastRequest = parse(body)?;
    let media = media_config(&app)?;
    let chosen = targets(&app, &caller, &request).await?;
    let now = app.now();
    let id = Uuid::now_v7();
    let selection = match &request.cameras {
        Some(c) => json!({"cameras": c}),
        None => json!({"town": request.town, "premisesKind": request.premises_kind}),
    };
    sqlx::query(
        "INSERT INTO broadcasts (id, user_id, username, display_name, selection, started_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(caller.user_id)
    .bind(&caller.username)
    .bind(&caller.display_name)
    .bind(&selection)
    .bind(now)
    .execute(&app.pool)
    .await?;
    let asker = Asker {
        user_id: caller.user_id,
        may_take_over: caller.role == Role::Supervisor,
        wants_take_over: request.takeover,
    };
    let mut reached: Vec<&Camera> = Vec::new();
    for camera in &chosen {
        if add_target(&app, &caller, &audit, asker, id, camera, now).await? {
            reached.push(camera);
        }
    }
    let ingests = sign_ingests(&app, media, &caller, id, &reached)?;
    let event = Event::new(Action::BroadcastStart)
        .object("broadcast", id)
        .details(
            json!({"selection": selection, "targets": chosen.len(), "reached": reached.len(),
                        "jtis": ingests.iter().map(|(_, c)| c.jti.clone()).collect::<Vec<_>>()}),
        );
    audit.record(&app, event).await?;
    if !reached.is_empty() {
        let pool = app.pool.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(broadcast::ANSWER_SECS)).await;
            if let Err(e) = broadcast::time_out(&pool, id).await {
                tracing::warn!(broadcast = %id, err = %e, "cannot time out the broadcast's silent targets");
            }
        });
    }
    let mut view = load(&app, &caller, id).await?;
    view.ingests = Some(ingests.into_iter().map(|(i, _)| i).collect());
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// The cameras `request` names: explicit ones (each must exist and lie in the caller's towns), or
/// those of the filter within the caller's towns.
async fn targets(
    app: &AppState,
    caller: &Caller,
    request: &BroadcastRequest,
) -> Result<Vec<Camera>> {
    let chosen = match &request.cameras {
        Some(ids) => {
            if request.town.is_some() || request.premises_kind.is_some() {
                return Err(Error::invalid_field(
                    "cameras",
                    "give either cameras or a filter (town, premisesKind), not both",
                ));
            }
            let mut chosen = Vec::with_capacity(ids.len());
            for id in ids {
                let camera = cameras::get(&app.pool, id).await?.ok_or_else(|| {
                    Error::invalid_field("cameras", format!("there is no camera {id:?}"))
                })?;
                caller.check_town(&camera.town_id)?;
                if !chosen.iter().any(|c: &Camera| c.id == camera.id) {
                    chosen.push(camera);
                }
            }
            chosen
        }
        None => {
            if request.town.is_none() && request.premises_kind.is_none() {
                return Err(Error::invalid_field(
                    "cameras",
                    "name the cameras, or a town and/or premisesKind to broadcast to",
                ));
            }
            if let Some(kind) = &request.premises_kind
                && !PREMISES_KINDS.contains(&kind.as_str())
            {
                return Err(Error::invalid_field(
                    "premisesKind",
                    format!("must be one of {}", PREMISES_KINDS.join(", ")),
                ));
            }
            if let Some(town) = &request.town {
                caller.check_town(town)?;
            }
            let query = ListQuery {
                town: request.town.clone(),
                premises: None,
            };
            let all = cameras::list(&app.pool, caller.scope.filter(), &query).await?;
            let kinds: Vec<(Uuid, String)> =
                sqlx::query_as("SELECT id, kind FROM premises WHERE id = ANY($1)")
                    .bind(all.iter().map(|c| c.premises_id).collect::<Vec<_>>())
                    .fetch_all(&app.pool)
                    .await?;
            all.into_iter()
                .filter(|c| {
                    request.premises_kind.as_ref().is_none_or(|k| {
                        kinds
                            .iter()
                            .any(|(p, kind)| *p == c.premises_id && kind == k)
                    })
                })
                .collect()
        }
    };
    if chosen.is_empty() {
        return Err(Error::new(
            Kind::Conflict,
            "broadcast_no_targets",
            "no camera matches; choose another town or premises kind, or pick cameras",
        ));
    }
    if chosen.len() > MAX_BROADCAST_CAMERAS {
        return Err(Error::bad_request(
            "broadcast_too_many",
            format!(
                "{} cameras match; one broadcast reaches at most {MAX_BROADCAST_CAMERAS}",
                chosen.len()
            ),
        ));
    }
    Ok(chosen)
}

/// Adds `camera` to broadcast `id`: failed at once (no speaker, offline, busy), or connecting with
/// the camera's floor taken. True when connecting.
async fn add_target(
    app: &AppState,
    caller: &Caller,
    audit: &Audit,
    asker: Asker,
    id: Uuid,
    camera: &Camera,
    now: DateTime<Utc>,
) -> Result<bool> {
    let precheck = if !camera.talk {
        Some((
            Reason::NoSpeaker,
            "the camera is registered without a speaker or audio backchannel".to_owned(),
        ))
    } else if camera.edge_id.is_none() {
        Some((
            Reason::NoSpeaker,
            "no edge box serves the camera, so nobody on site would play the voice".to_owned(),
        ))
    } else if camera.online == Some(false) {
        Some((
            Reason::Offline,
            "its edge box or the camera reports offline".to_owned(),
        ))
    } else {
        None
    };
    let mut tx = app.pool.begin().await?;
    let insert = |state: &'static str| {
        sqlx::query(
            "INSERT INTO broadcast_targets (broadcast_id, camera_id, town_id, state, updated_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(&camera.id)
        .bind(&camera.town_id)
        .bind(state)
        .bind(now)
    };
    if let Some((reason, detail)) = precheck {
        insert("connecting").execute(&mut *tx).await?;
        broadcast::fail(&mut tx, id, &camera.id, reason, &detail, now).await?;
        tx.commit().await?;
        return Ok(false);
    }
    let taken = floor::take(&mut tx, &camera.id, caller, asker, None, now).await;
    let taken = match taken {
        // Another replica granted it at the same moment.
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            drop(tx);
            let mut tx = app.pool.begin().await?;
            insert("connecting").execute(&mut *tx).await?;
            let why = "another operator started talking to this camera just now";
            broadcast::fail(&mut tx, id, &camera.id, Reason::Busy, why, now).await?;
            tx.commit().await?;
            return Ok(false);
        }
        other => other?,
    };
    let session = match taken {
        Taken::Refused(holder) => {
            insert("connecting").execute(&mut *tx).await?;
            let why = format!(
                "{} ({}) is talking to this camera",
                holder.display_name, holder.username
            );
            broadcast::fail(&mut tx, id, &camera.id, Reason::Busy, &why, now).await?;
            tx.commit().await?;
            return Ok(false);
        }
        Taken::Renewed { session_id } => session_id,
        Taken::Started {
            session_id,
            taken_from,
        } => {
            if let Some(h) = taken_from {
                let details = json!({"from": h.username, "fromSession": h.session_id,
                                     "session": session_id, "broadcast": id});
                let event = Event::new(Action::TalkTakeover)
                    .object("camera", &camera.id)
                    .town(&camera.town_id)
                    .details(details);
                audit.append(&mut tx, app, event).await?;
            }
            session_id
        }
    };
    insert("connecting").execute(&mut *tx).await?;
    sqlx::query(
        "UPDATE broadcast_targets SET talk_session = $3 WHERE broadcast_id = $1 AND camera_id = $2",
    )
    .bind(id)
    .bind(&camera.id)
    .bind(session)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// One broadcast token per gateway node, for the cameras it owns.
fn sign_ingests(
    app: &AppState,
    media: &crate::config::MediaConfig,
    caller: &Caller,
    id: Uuid,
    reached: &[&Camera],
) -> Result<Vec<(Ingest, BroadcastClaims)>> {
    let key = media.signing_key.as_ref().ok_or_else(|| {
        Error::internal(
            "broadcast token signing",
            "media.signing_key was not loaded",
        )
    })?;
    let nodes = media.nodes();
    let mut by_node: BTreeMap<GatewayNodeId, Vec<CameraId>> = BTreeMap::new();
    for camera in reached {
        let camera = CameraId::new(camera.id.clone())
            .map_err(|e| Error::internal("camera id from the registry", e))?;
        let node = choose_gateway(&camera, &nodes).clone();
        by_node.entry(node).or_default().push(camera);
    }
    let iat = app.now().timestamp();
    let ttl = i64::try_from(media.token_ttl_secs).unwrap_or(60);
    let mut out = Vec::with_capacity(by_node.len());
    for (node, cameras) in by_node {
        let base = media
            .url_of(&node)
            .ok_or_else(|| Error::internal("gateway lookup", "chosen node has no url"))?;
        let claims = BroadcastClaims {
            sub: caller.user_id.to_string(),
            broadcast: id,
            cameras,
            node: node.clone(),
            iat,
            exp: iat + ttl,
            jti: crate::auth::random_token(16),
        };
        let ingest = Ingest {
            node,
            whip_url: format!("{}/whip-broadcast/{id}", base.trim_end_matches('/')),
            token: broadcast_token::sign(&claims, key.signing_key()),
            cameras: claims
                .cameras
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
        };
        out.push((ingest, claims));
    }
    Ok(out)
}

/// A `broadcasts` row: broadcaster (id, username, display name), start and end.
type BroadcastRow = (Uuid, String, String, DateTime<Utc>, Option<DateTime<Utc>>);

/// The broadcast with the targets the caller may see: 404 when missing, 403 when none of its
/// kitchens lies in the caller's towns (talkers of those towns follow it on the WebSocket too).
pub(super) async fn load(app: &AppState, caller: &Caller, id: Uuid) -> Result<BroadcastView> {
    let row: Option<BroadcastRow> =
        sqlx::query_as(
            "SELECT user_id, username, display_name, started_at, ended_at FROM broadcasts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&app.pool)
        .await?;
    let (user_id, username, display_name, started_at, ended_at) =
        row.ok_or_else(|| Error::not_found("broadcast"))?;
    let targets: Vec<Target> = sqlx::query_as(
        "SELECT t.camera_id, c.name AS camera_name, p.id AS premises_id, p.name AS premises_name, \
                t.town_id, t.state, t.reason, t.detail, t.updated_at \
         FROM broadcast_targets t JOIN cameras c ON c.id = t.camera_id \
         JOIN premises p ON p.id = c.premises_id \
         WHERE t.broadcast_id = $1 AND ($2::text[] IS NULL OR t.town_id = ANY($2)) \
         ORDER BY t.town_id, p.name, t.camera_id",
    )
    .bind(id)
    .bind(caller.scope.filter())
    .fetch_all(&app.pool)
    .await?;
    if targets.is_empty() {
        return Err(Error::out_of_scope());
    }
    Ok(BroadcastView {
        id,
        user_id,
        username,
        display_name,
        started_at,
        ended_at,
        targets,
        ingests: None,
    })
}

pub(super) fn broadcast_id(raw: &str) -> Result<Uuid> {
    raw.parse()
        .map_err(|_| Error::bad_request("invalid_id", format!("{raw:?} is not a broadcast id")))
}

/// `GET /api/broadcasts/{id}`
#[utoipa::path(
    get,
    path = "/api/broadcasts/{id}",
    summary = "A broadcast and each kitchen's delivery state",
    params(("id" = String, Path, description = "The broadcast's id")),
    responses(
        (status = 200, description = "The broadcast", body = BroadcastView),
        (status = 403, description = "`out_of_scope`: none of its kitchens is in the caller's towns"),
        (status = 404, description = "`not_found`"),
    )
)]
pub async fn get(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<BroadcastView>> {
    let id = broadcast_id(&id)?;
    Ok(axum::Json(load(&app, &caller, id).await?))
}

/// `DELETE /api/broadcasts/{id}`
#[utoipa::path(
    delete,
    path = "/api/broadcasts/{id}",
    summary = "End a broadcast: its kitchens end and their talk floors are free",
    params(("id" = String, Path, description = "The broadcast's id")),
    responses(
        (status = 204, description = "Ended (also when it had ended already)"),
        (status = 403, description = "`out_of_scope`, or `not_your_broadcast`: another operator's (only a supervisor may end it)"),
        (status = 404, description = "`not_found`"),
    )
)]
pub async fn end(
    State(app): App,
    Extension(caller): Extension<Caller>,
    audit: Audit,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id = broadcast_id(&id)?;
    let view = load(&app, &caller, id).await?;
    if view.user_id != caller.user_id && caller.role != Role::Supervisor {
        return Err(Error::new(
            Kind::Forbidden,
            "not_your_broadcast",
            format!(
                "broadcast {id} is {}'s; only they or a supervisor may end it",
                view.display_name
            ),
        ));
    }
    let mut tx = app.pool.begin().await?;
    if broadcast::end(&mut tx, id, app.now()).await? {
        let event = Event::new(Action::BroadcastEnd).object("broadcast", id);
        audit.append(&mut tx, &app, event).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
