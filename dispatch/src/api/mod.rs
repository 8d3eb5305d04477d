//! The HTTP API: thin axum handlers over the registry, auth and incidents. Every route is registered through
//! [`Routes::add`], which records it, so tests can check that each one has a policy row.

mod audit;
mod blob_urls;
mod broadcast_history;
mod broadcasts;
mod cameras;
mod clocks;
mod drill_improvements;
mod drills;
mod edge_voice;
mod edges;
mod escalation;
mod evidence;
mod field;
mod incidents;
mod internal;
mod live_push;
mod media;
mod notify;
pub mod openapi;
mod registry;
mod rooms;
mod session;
mod stats;
mod talk_edge;
mod teams;
mod users;
mod voice;
mod voice_recordings;
mod walls;
mod web;
mod ws;

use crate::AppState;
use crate::auth::policy;
use crate::error::Error;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use std::sync::Arc;

/// The router under construction and the (method, path) of every route added so far.
pub struct Routes {
    router: Router<Arc<AppState>>,
    registered: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn add<H, T>(mut self, method: &'static str, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            "DELETE" => MethodFilter::DELETE,
            other => panic!("unsupported method {other} for {path}"),
        };
        self.router = self.router.route(path, on(filter, handler));
        self.registered.push((method, path));
        self
    }
}

/// Every route of dispatch, in one list.
pub fn routes() -> Routes {
    Routes {
        router: Router::new(),
        registered: Vec::new(),
    }
    .add("GET", "/healthz", health)
    .add("POST", "/api/session", session::login)
    .add("GET", "/api/session", session::me)
    .add("DELETE", "/api/session", session::logout)
    .add("POST", "/api/session/totp", session::totp_begin)
    .add("PUT", "/api/session/totp", session::totp_confirm)
    .add("GET", "/api/towns", registry::towns)
    .add("GET", "/api/premises", registry::list_premises)
    .add("POST", "/api/premises", registry::create_premises)
    .add("GET", "/api/premises/{id}", registry::get_premises)
    .add("POST", "/api/premises/import", registry::import_premises)
    .add("GET", "/api/cameras", registry::cameras)
    .add("POST", "/api/cameras/{id}/live", media::live)
    .add("POST", "/api/cameras/{id}/talk", media::talk)
    .add("GET", "/api/edges", edges::list)
    .add("POST", "/api/edges", edges::create)
    .add("POST", "/api/edges/{id}/enrolment-code", edges::new_code)
    .add("POST", "/api/enrol", edges::enrol)
    .add("GET", "/api/teams", registry::teams)
    .add("GET", "/api/users", users::list)
    .add("POST", "/api/users", users::create)
    .add("GET", "/api/incidents", incidents::list)
    .add("POST", "/api/incidents", incidents::create)
    .add("GET", "/api/incidents/{id}", incidents::get)
    .add(
        "POST",
        "/api/incidents/{id}/transition",
        incidents::transition,
    )
    .add(
        "POST",
        "/api/incidents/{id}/evidence",
        evidence::incident_evidence,
    )
    .add("GET", "/api/audit", audit::list)
    .add(
        "GET",
        "/internal/cameras/{id}/source",
        internal::camera_source,
    )
    .add("GET", "/internal/edges/{id}/key", internal::edge_key)
    .add(
        "POST",
        "/internal/cameras/{id}/live-start",
        live_push::live_start,
    )
    .add(
        "POST",
        "/internal/cameras/{id}/live-stop",
        live_push::live_stop,
    )
    .add("GET", "/api/notify/channels", notify::channels)
    .add(
        "POST",
        "/api/incidents/{id}/health-report",
        clocks::health_report,
    )
    .add("GET", "/api/field/incidents", field::my_incidents)
    .add("POST", "/api/incidents/{id}/notes", field::note)
    .add("POST", "/api/incidents/{id}/photos", field::upload_photo)
    .add("GET", "/api/photos/{sha256}", field::get_photo)
    .add("POST", "/api/incidents/{id}/recheck", field::recheck)
    .add("GET", "/api/ws", ws::socket)
    .add("GET", "/api/walls/{id}", walls::get)
    .add("PUT", "/api/walls/{id}", walls::put)
    // the admin screens' writes (api/cameras.rs, api/users.rs, api/teams.rs, api/escalation.rs)
    .add("POST", "/api/cameras", cameras::create)
    .add("PUT", "/api/cameras/{id}", cameras::update)
    .add("DELETE", "/api/cameras/{id}", cameras::delete)
    .add("PUT", "/api/users/{id}", users::update)
    .add("POST", "/api/teams", teams::create)
    .add("PUT", "/api/teams/{id}", teams::update)
    // talk-down floor control and the edge's talk commands (api/media.rs, api/talk_edge.rs)
    .add("DELETE", "/api/cameras/{id}/talk", media::release_talk)
    .add(
        "POST",
        "/internal/cameras/{id}/talk-start",
        talk_edge::talk_start,
    )
    .add(
        "POST",
        "/internal/cameras/{id}/talk-stop",
        talk_edge::talk_stop,
    )
    // group broadcast (api/broadcasts.rs)
    .add("POST", "/api/broadcasts", broadcasts::create)
    .add("GET", "/api/broadcasts/{id}", broadcasts::get)
    .add("DELETE", "/api/broadcasts/{id}", broadcasts::end)
    // past broadcasts and their recordings (api/broadcast_history.rs)
    .add("GET", "/api/broadcasts", broadcast_history::list)
    .add(
        "POST",
        "/api/broadcasts/{id}/voice-recordings",
        broadcast_history::voice_recordings,
    )
    // consult rooms and incident voice channels (api/rooms.rs)
    .add("POST", "/api/incidents/{id}/rooms", rooms::create)
    .add("GET", "/api/incidents/{id}/rooms", rooms::list)
    .add("POST", "/api/rooms/{id}/join", rooms::join)
    .add("POST", "/api/rooms/{id}/invites", rooms::invite)
    .add("PUT", "/api/rooms/{id}/share", rooms::share)
    .add("POST", "/api/rooms/{id}/clip", rooms::clip)
    .add("POST", "/api/rooms/{id}/recording", rooms::recording)
    .add("DELETE", "/api/rooms/{id}", rooms::close)
    .add("POST", "/api/room-invites/join", rooms::guest_join)
    .add("GET", "/rooms/{id}", web::console_room)
    .add("GET", "/join/{invite}", web::console_room)
    .add("POST", "/api/incidents/{id}/voice", rooms::voice)
    .add("POST", "/api/incidents/{id}/voice/floor", rooms::take_floor)
    .add(
        "DELETE",
        "/api/incidents/{id}/voice/floor",
        rooms::release_floor,
    )
    .add("PUT", "/api/teams/{id}/roster", teams::roster)
    .add("GET", "/api/escalation/policies", escalation::policies)
    .add("PUT", "/api/escalation/policies/{tier}", escalation::set)
    .add(
        "DELETE",
        "/api/escalation/policies/{tier}",
        escalation::reset,
    )
    .add("GET", "/admin/{page}", web::console_admin)
    // drills (api/drills.rs)
    .add("GET", "/api/drills/scenarios", drills::scenarios)
    .add("POST", "/api/drills/scenarios/{id}/runs", drills::start)
    .add("GET", "/api/drills/runs", drills::list)
    .add("GET", "/api/drills/runs/{id}", drills::get)
    .add("POST", "/api/drills/runs/{id}/control", drills::control)
    .add(
        "POST",
        "/api/drills/runs/{id}/observations",
        drills::observe,
    )
    .add("GET", "/api/drills/runs/{id}/report", drills::report)
    .add(
        "GET",
        "/api/drills/runs/{id}/report.pdf",
        drills::report_pdf,
    )
    .add("GET", "/api/drills/scenarios/{id}/history", drills::history)
    .add("GET", "/api/drills/improvements", drill_improvements::list)
    .add(
        "POST",
        "/api/drills/runs/{id}/improvements",
        drill_improvements::create,
    )
    .add(
        "POST",
        "/api/drills/improvements/{id}/state",
        drill_improvements::set_state,
    )
    // the automatic voice warning's messages and rules (api/voice.rs)
    .add("GET", "/api/voice-messages", voice::list)
    .add("PUT", "/api/voice-messages/{id}", voice::put)
    .add("DELETE", "/api/voice-messages/{id}", voice::delete)
    .add("GET", "/api/voice-messages/{id}/audio", voice::audio_file)
    .add("GET", "/api/warning-rules", voice::rules)
    .add("PUT", "/api/warning-rules", voice::set_rules)
    // talk and broadcast recordings (api/voice_recordings.rs)
    .add(
        "POST",
        "/internal/voice-recordings",
        voice_recordings::report,
    )
    .add(
        "POST",
        "/api/incidents/{id}/voice-recordings",
        voice_recordings::list,
    )
    .add("GET", "/api/edge-voice/{sha256}", edge_voice::fetch)
    // the dashboard's statistics (api/stats.rs)
    .add("GET", "/api/stats/incidents", stats::incidents)
    .add("GET", "/api/stats/incidents.csv", stats::incidents_csv)
    // the web console and the field app (api/web.rs)
    .add("GET", "/", web::console)
    .add("GET", "/incidents/{id}", web::console_incident)
    .add("GET", "/field", web::field)
    .add("GET", "/assets/{*file}", web::asset)
    .add("GET", "/{file}", web::top_level)
    .add("GET", "/api/openapi.json", openapi::openapi_json)
}

/// (method, path) of every registered route.
pub fn registered() -> Vec<(&'static str, &'static str)> {
    routes().registered
}

/// The whole application: every route behind the policy middleware.
pub fn router(app: Arc<AppState>) -> Router {
    routes()
        .router
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            policy::authorize,
        ))
        .fallback(not_found)
        .with_state(app)
}

#[utoipa::path(
    get,
    path = "/healthz",
    summary = "Liveness",
    responses((status = 200, description = "`ok`", body = String))
)]
async fn health() -> &'static str {
    "ok"
}

async fn not_found() -> Error {
    Error::new(
        crate::error::Kind::NotFound,
        "no_route",
        "no such API route; see dispatch/README.md",
    )
}

/// `axum::Json` whose rejections are dispatch errors (400 with a message).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct Json<T>(pub T);

/// `axum::extract::Query` whose rejections are dispatch errors (400).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` whose rejections are 404 (a malformed id names no object).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for Error {
    fn from(r: JsonRejection) -> Self {
        Error::bad_request(
            "invalid_body",
            format!("the JSON body is not acceptable: {}", r.body_text()),
        )
    }
}

impl From<QueryRejection> for Error {
    fn from(r: QueryRejection) -> Self {
        Error::bad_request(
            "invalid_query",
            format!("the query string is not acceptable: {}", r.body_text()),
        )
    }
}

impl From<PathRejection> for Error {
    fn from(_: PathRejection) -> Self {
        Error::not_found("the object")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_route_has_a_policy_row() {
        for (method, path) in registered() {
            assert!(
                policy::lookup(method, path).is_some(),
                "{method} {path} has no row in auth::policy::POLICY"
            );
        }
    }

    #[test]
    fn every_policy_row_names_a_registered_route() {
        let routes = registered();
        for r in policy::POLICY {
            assert!(
                routes.contains(&(r.method, r.path)),
                "policy row {} {} has no route",
                r.method,
                r.path
            );
        }
    }
}
