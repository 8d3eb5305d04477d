//! The one policy table: every route of the router has exactly one row saying who may call it and
//! how town scope applies. One middleware ([`authorize`]) consults it for every request; the
//! authorisation-matrix test is generated from it.

use super::{Caller, Role, session};
use crate::AppState;
use crate::error::Error;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No session needed (health check, login).
    Public,
    /// A session of one of these roles.
    Roles(&'static [Role]),
    /// A gateway node's service token (`/internal` routes, see [`super::service`]); never a session.
    Service,
}

/// How the caller's town scope applies to a route (the handler enforces it; tests derive the
/// expected status from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeRule {
    /// Not about towns (the caller's own session).
    None,
    /// A list: filtered to the caller's towns.
    List,
    /// One object by id: 404 when missing, then 403 when its town is outside the scope.
    Object,
    /// Creates objects whose town (or granted towns) must lie in the caller's scope, else 403.
    Body,
    /// One incident (or what belongs to one) by id: as [`ScopeRule::Object`], and a field user
    /// also gets 403 when it is routed to another team than theirs (lists filter the same way).
    Team,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub method: &'static str,
    /// The route exactly as registered with the router, e.g. `/api/premises/{id}`.
    pub path: &'static str,
    pub access: Access,
    pub scope: ScopeRule,
}

use Role::*;
const ALL: &[Role] = &Role::ALL;
const EDITORS: &[Role] = &[Admin, Supervisor, Operator, TownOfficer];
const IMPORTERS: &[Role] = &[Admin, Supervisor, TownOfficer];
const VIEWERS: &[Role] = &[
    Admin,
    Supervisor,
    Operator,
    TownOfficer,
    DrillCoordinator,
    Auditor,
];
const ADMINS: &[Role] = &[Admin];
/// Who reads the audit log.
const AUDITORS: &[Role] = &[Admin, Auditor];
/// Who may watch a camera live: everyone who works incidents, not drill coordinators or auditors;
/// field users only the cameras of premises where their team has an open incident.
const WATCHERS: &[Role] = &[Admin, Supervisor, Operator, TownOfficer, Field];
/// Who may talk to a premises through a camera: the command center and the towns' officers.
const TALKERS: &[Role] = &[Supervisor, Operator, TownOfficer];
/// Who may have a consult room recorded: the command center's operators and supervisors.
const ROOM_RECORDERS: &[Role] = &[Supervisor, Operator];
/// Who takes reports (hotline, manual): the command center and the towns' officers.
const REPORTERS: &[Role] = &[Supervisor, Operator, TownOfficer];
/// Who works a case on the ground or records for it: notes, photos, camera re-checks.
const RESPONDERS: &[Role] = &[Supervisor, Operator, TownOfficer, Field];
/// Who has a "my incidents" view: field users and town officers.
const FIELD_VIEW: &[Role] = &[TownOfficer, Field];
/// Who uses a video wall (reads and sets its layout): the command center and the towns' officers,
/// and admins who set walls up. Each tile still needs a live grant of its own.
const WALL_USERS: &[Role] = &[Admin, Supervisor, Operator, TownOfficer];
/// Who runs drills: starts, pauses, resumes and ends them.
const DRILL_RUNNERS: &[Role] = &[DrillCoordinator];
/// Who adds observations and ratings to a drill: coordinators and the command center's observers.
const DRILL_OBSERVERS: &[Role] = &[Supervisor, DrillCoordinator];
/// Who reads drills and their reports.
const DRILL_READERS: &[Role] = &[Supervisor, DrillCoordinator, Auditor];
/// Who reads incident statistics (the dashboard and its CSV): the command center, the towns'
/// officers, admins, drill coordinators (drill statistics) and auditors.
const STATISTICS: &[Role] = VIEWERS;
/// Who may hold the live WebSocket: everyone who follows incidents or devices as they happen.
/// Auditors review the record after the fact through REST; a live feed adds nothing they need.
const LIVE: &[Role] = &[
    Admin,
    Supervisor,
    Operator,
    TownOfficer,
    Field,
    DrillCoordinator,
];

const fn rule(method: &'static str, path: &'static str, access: Access, scope: ScopeRule) -> Rule {
    Rule {
        method,
        path,
        access,
        scope,
    }
}

/// Every route of dispatch. A route without a row is refused (and fails the tests).
pub static POLICY: &[Rule] = &[
    rule("GET", "/healthz", Access::Public, ScopeRule::None),
    rule("POST", "/api/session", Access::Public, ScopeRule::None),
    rule("GET", "/api/session", Access::Roles(ALL), ScopeRule::None),
    rule(
        "DELETE",
        "/api/session",
        Access::Roles(ALL),
        ScopeRule::None,
    ),
    rule(
        "POST",
        "/api/session/totp",
        Access::Roles(ALL),
        ScopeRule::None,
    ),
    rule(
        "PUT",
        "/api/session/totp",
        Access::Roles(ALL),
        ScopeRule::None,
    ),
    rule("GET", "/api/towns", Access::Roles(ALL), ScopeRule::List),
    rule("GET", "/api/premises", Access::Roles(ALL), ScopeRule::List),
    rule(
        "POST",
        "/api/premises",
        Access::Roles(EDITORS),
        ScopeRule::Body,
    ),
    rule(
        "GET",
        "/api/premises/{id}",
        Access::Roles(ALL),
        ScopeRule::Object,
    ),
    rule(
        "POST",
        "/api/premises/import",
        Access::Roles(IMPORTERS),
        ScopeRule::Body,
    ),
    rule(
        "GET",
        "/api/cameras",
        Access::Roles(VIEWERS),
        ScopeRule::List,
    ),
    rule(
        "POST",
        "/api/cameras/{id}/live",
        Access::Roles(WATCHERS),
        ScopeRule::Team,
    ),
    rule(
        "POST",
        "/api/cameras/{id}/talk",
        Access::Roles(TALKERS),
        ScopeRule::Object,
    ),
    rule("GET", "/api/edges", Access::Roles(VIEWERS), ScopeRule::List),
    rule(
        "POST",
        "/api/edges",
        Access::Roles(IMPORTERS),
        ScopeRule::Body,
    ),
    rule(
        "POST",
        "/api/edges/{id}/enrolment-code",
        Access::Roles(IMPORTERS),
        ScopeRule::Object,
    ),
    // The box has no session: its one-time code is its credential.
    rule("POST", "/api/enrol", Access::Public, ScopeRule::None),
    rule("GET", "/api/teams", Access::Roles(ALL), ScopeRule::List),
    rule("GET", "/api/users", Access::Roles(ADMINS), ScopeRule::List),
    rule("POST", "/api/users", Access::Roles(ADMINS), ScopeRule::Body),
    rule("GET", "/api/incidents", Access::Roles(ALL), ScopeRule::List),
    rule(
        "POST",
        "/api/incidents",
        Access::Roles(REPORTERS),
        ScopeRule::Body,
    ),
    rule(
        "GET",
        "/api/incidents/{id}",
        Access::Roles(ALL),
        ScopeRule::Team,
    ),
    // Each step has its own roles in the state machine (incident::state); this row admits every
    // role that may take at least one.
    rule(
        "POST",
        "/api/incidents/{id}/transition",
        Access::Roles(crate::incident::state::ANY_TRANSITION),
        ScopeRule::Team,
    ),
    rule(
        "GET",
        "/api/field/incidents",
        Access::Roles(FIELD_VIEW),
        ScopeRule::List,
    ),
    rule(
        "POST",
        "/api/incidents/{id}/notes",
        Access::Roles(RESPONDERS),
        ScopeRule::Team,
    ),
    rule(
        "POST",
        "/api/incidents/{id}/photos",
        Access::Roles(RESPONDERS),
        ScopeRule::Team,
    ),
    rule(
        "GET",
        "/api/photos/{sha256}",
        Access::Roles(ALL),
        ScopeRule::Team,
    ),
    rule(
        "POST",
        "/api/incidents/{id}/recheck",
        Access::Roles(RESPONDERS),
        ScopeRule::Team,
    ),
    rule(
        "POST",
        "/api/incidents/{id}/evidence",
        Access::Roles(WATCHERS),
        ScopeRule::Team,
    ),
    rule(
        "GET",
        "/api/audit",
        Access::Roles(AUDITORS),
        ScopeRule::List,
    ),
    rule(
        "GET",
        "/internal/cameras/{id}/source",
        Access::Service,
        ScopeRule::None,
    ),
    // Any gateway node verifies any edge's uploads; a public key is no secret.
    rule(
        "GET",
        "/internal/edges/{id}/key",
        Access::Service,
        ScopeRule::None,
    ),
    // The owning gateway node asks for an edge's push; the handler checks ownership.
    rule(
        "POST",
        "/internal/cameras/{id}/live-start",
        Access::Service,
        ScopeRule::None,
    ),
    rule(
        "POST",
        "/internal/cameras/{id}/live-stop",
        Access::Service,
        ScopeRule::None,
    ),
    // Channel health is district-wide configuration, like users.
    rule(
        "GET",
        "/api/notify/channels",
        Access::Roles(ADMINS),
        ScopeRule::None,
    ),
    // The report to the health authority is the command center's or the town's.
    rule(
        "POST",
        "/api/incidents/{id}/health-report",
        Access::Roles(REPORTERS),
        ScopeRule::Object,
    ),
    // A wall is not about one town; a layout may name only cameras of the caller's towns, and a
    // wall showing others' cameras is not the caller's to change.
    rule(
        "GET",
        "/api/walls/{id}",
        Access::Roles(WALL_USERS),
        ScopeRule::None,
    ),
    rule(
        "PUT",
        "/api/walls/{id}",
        Access::Roles(WALL_USERS),
        ScopeRule::Body,
    ),
    // Every message on it has its own row in WS_MESSAGES.
    rule("GET", "/api/ws", Access::Roles(LIVE), ScopeRule::List),
    // The web console's and field app's files (api/web.rs): public like the login page; what
    // they show comes from /api.
    rule("GET", "/", Access::Public, ScopeRule::None),
    rule("GET", "/incidents/{id}", Access::Public, ScopeRule::None),
    rule("GET", "/field", Access::Public, ScopeRule::None),
    rule("GET", "/assets/{*file}", Access::Public, ScopeRule::None),
    rule("GET", "/{file}", Access::Public, ScopeRule::None),
    // The API's description: nothing in it is secret.
    rule("GET", "/api/openapi.json", Access::Public, ScopeRule::None),
    // The admin screens' writes: admins only, within their towns (a camera's or team's town is
    // its premises' or its own; a user's is every town of their scope).
    rule(
        "POST",
        "/api/cameras",
        Access::Roles(ADMINS),
        ScopeRule::Body,
    ),
    rule(
        "PUT",
        "/api/cameras/{id}",
        Access::Roles(ADMINS),
        ScopeRule::Object,
    ),
    rule(
        "DELETE",
        "/api/cameras/{id}",
        Access::Roles(ADMINS),
        ScopeRule::Object,
    ),
    rule(
        "PUT",
        "/api/users/{id}",
        Access::Roles(ADMINS),
        ScopeRule::Object,
    ),
    rule("POST", "/api/teams", Access::Roles(ADMINS), ScopeRule::Body),
    rule(
        "PUT",
        "/api/teams/{id}",
        Access::Roles(ADMINS),
        ScopeRule::Object,
    ),
    rule(
        "PUT",
        "/api/teams/{id}/roster",
        Access::Roles(ADMINS),
        ScopeRule::Object,
    ),
    // District-wide configuration, like the notification channels.
    rule(
        "GET",
        "/api/escalation/policies",
        Access::Roles(ADMINS),
        ScopeRule::None,
    ),
    // ... and changed only by a district-wide admin (the handler answers a town admin 403).
    rule(
        "PUT",
        "/api/escalation/policies/{tier}",
        Access::Roles(ADMINS),
        ScopeRule::None,
    ),
    rule(
        "DELETE",
        "/api/escalation/policies/{tier}",
        Access::Roles(ADMINS),
        ScopeRule::None,
    ),
    // The automatic voice warning's messages and rules: district-wide, like the escalation policies
    // (any admin reads them; the handlers answer a town's admin 403 on a change).
    rule(
        "GET",
        "/api/voice-messages",
        Access::Roles(ADMINS),
        ScopeRule::None,
    ),
    rule(
        "PUT",
        "/api/voice-messages/{id}",
        Access::Roles(ADMINS),
        ScopeRule::None,
    ),
    rule(
        "DELETE",
        "/api/voice-messages/{id}",
        Access::Roles(ADMINS),
        ScopeRule::None,
    ),
    rule(
        "GET",
        "/api/voice-messages/{id}/audio",
        Access::Roles(ADMINS),
        ScopeRule::None,
    ),
    rule(
        "GET",
        "/api/warning-rules",
        Access::Roles(ADMINS),
        ScopeRule::None,
    ),
    rule(
        "PUT",
        "/api/warning-rules",
        Access::Roles(ADMINS),
        ScopeRule::None,
    ),
    // Talk and broadcast recordings: the gateway that stored one reports it (the handler checks
    // it owns the camera); whoever may see an incident's evidence may play its recordings.
    rule(
        "POST",
        "/internal/voice-recordings",
        Access::Service,
        ScopeRule::None,
    ),
    rule(
        "POST",
        "/api/incidents/{id}/voice-recordings",
        Access::Roles(WATCHERS),
        ScopeRule::Team,
    ),
    // An edge box fetches a recording its warnings play: it has no session; its device key's
    // signature over (edge, hash, time) is its credential (api/edge_voice.rs).
    rule(
        "GET",
        "/api/edge-voice/{sha256}",
        Access::Public,
        ScopeRule::None,
    ),
    // The console's admin screens (a page like the others; what they show comes from /api).
    rule("GET", "/admin/{page}", Access::Public, ScopeRule::None),
    // Drills: a scenario or run is about its participating towns, which must all lie in scope.
    rule(
        "GET",
        "/api/drills/scenarios",
        Access::Roles(DRILL_READERS),
        ScopeRule::List,
    ),
    rule(
        "POST",
        "/api/drills/scenarios/{id}/runs",
        Access::Roles(DRILL_RUNNERS),
        ScopeRule::Object,
    ),
    rule(
        "GET",
        "/api/drills/runs",
        Access::Roles(DRILL_READERS),
        ScopeRule::List,
    ),
    rule(
        "GET",
        "/api/drills/runs/{id}",
        Access::Roles(DRILL_READERS),
        ScopeRule::Object,
    ),
    rule(
        "POST",
        "/api/drills/runs/{id}/control",
        Access::Roles(DRILL_RUNNERS),
        ScopeRule::Object,
    ),
    rule(
        "POST",
        "/api/drills/runs/{id}/observations",
        Access::Roles(DRILL_OBSERVERS),
        ScopeRule::Object,
    ),
    rule(
        "GET",
        "/api/drills/runs/{id}/report",
        Access::Roles(DRILL_READERS),
        ScopeRule::Object,
    ),
    rule(
        "GET",
        "/api/drills/runs/{id}/report.pdf",
        Access::Roles(DRILL_READERS),
        ScopeRule::Object,
    ),
    // The improvement plan: read by whoever reads drills, written by those who run and observe.
    rule(
        "GET",
        "/api/drills/improvements",
        Access::Roles(DRILL_READERS),
        ScopeRule::List,
    ),
    rule(
        "POST",
        "/api/drills/runs/{id}/improvements",
        Access::Roles(DRILL_OBSERVERS),
        ScopeRule::Object,
    ),
    rule(
        "POST",
        "/api/drills/improvements/{id}/state",
        Access::Roles(DRILL_OBSERVERS),
        ScopeRule::Object,
    ),
    // One scenario's runs compared over time.
    rule(
        "GET",
        "/api/drills/scenarios/{id}/history",
        Access::Roles(DRILL_READERS),
        ScopeRule::List,
    ),
    // The dashboard's statistics and their CSV: whoever oversees incidents (not field staff,
    // who work their own team's cases), counted within the caller's towns.
    rule(
        "GET",
        "/api/stats/incidents",
        Access::Roles(STATISTICS),
        ScopeRule::List,
    ),
    rule(
        "GET",
        "/api/stats/incidents.csv",
        Access::Roles(STATISTICS),
        ScopeRule::List,
    ),
    // Talk-down floor control: a talker releases their own holding; the owning gateway node asks
    // for the edge's talk playback (the handler checks ownership).
    rule(
        "DELETE",
        "/api/cameras/{id}/talk",
        Access::Roles(TALKERS),
        ScopeRule::Object,
    ),
    rule(
        "POST",
        "/internal/cameras/{id}/talk-start",
        Access::Service,
        ScopeRule::None,
    ),
    rule(
        "POST",
        "/internal/cameras/{id}/talk-stop",
        Access::Service,
        ScopeRule::None,
    ),
    // Group broadcast: talkers start one to cameras of their towns; the broadcaster (or a
    // supervisor) follows and ends it (the handler checks who).
    rule(
        "POST",
        "/api/broadcasts",
        Access::Roles(TALKERS),
        ScopeRule::Body,
    ),
    rule(
        "GET",
        "/api/broadcasts/{id}",
        Access::Roles(TALKERS),
        ScopeRule::Object,
    ),
    rule(
        "DELETE",
        "/api/broadcasts/{id}",
        Access::Roles(TALKERS),
        ScopeRule::Object,
    ),
    // Past broadcasts reaching the caller's towns, and their recordings (each grant audited).
    rule(
        "GET",
        "/api/broadcasts",
        Access::Roles(TALKERS),
        ScopeRule::List,
    ),
    rule(
        "POST",
        "/api/broadcasts/{id}/voice-recordings",
        Access::Roles(TALKERS),
        ScopeRule::Object,
    ),
    // Consult rooms: the command center and town officers open them, invite, share and close;
    // everyone who works the incident (its town, a field user's own team) joins and lists them;
    // an outside expert joins with an invite (the handler checks it). The incident's voice channel
    // and its floor are for everyone who works the incident.
    rule(
        "POST",
        "/api/incidents/{id}/rooms",
        Access::Roles(TALKERS),
        ScopeRule::Team,
    ),
    rule(
        "GET",
        "/api/incidents/{id}/rooms",
        Access::Roles(RESPONDERS),
        ScopeRule::Team,
    ),
    rule(
        "POST",
        "/api/rooms/{id}/join",
        Access::Roles(RESPONDERS),
        ScopeRule::Team,
    ),
    rule(
        "POST",
        "/api/rooms/{id}/invites",
        Access::Roles(TALKERS),
        ScopeRule::Team,
    ),
    rule(
        "PUT",
        "/api/rooms/{id}/share",
        Access::Roles(TALKERS),
        ScopeRule::Team,
    ),
    rule(
        "POST",
        "/api/rooms/{id}/clip",
        Access::Roles(TALKERS),
        ScopeRule::Team,
    ),
    rule(
        "POST",
        "/api/rooms/{id}/recording",
        Access::Roles(ROOM_RECORDERS),
        ScopeRule::Team,
    ),
    rule(
        "DELETE",
        "/api/rooms/{id}",
        Access::Roles(TALKERS),
        ScopeRule::Team,
    ),
    rule(
        "POST",
        "/api/room-invites/join",
        Access::Public,
        ScopeRule::None,
    ),
    rule("GET", "/rooms/{id}", Access::Public, ScopeRule::None),
    rule("GET", "/join/{invite}", Access::Public, ScopeRule::None),
    rule(
        "POST",
        "/api/incidents/{id}/voice",
        Access::Roles(RESPONDERS),
        ScopeRule::Team,
    ),
    rule(
        "POST",
        "/api/incidents/{id}/voice/floor",
        Access::Roles(RESPONDERS),
        ScopeRule::Team,
    ),
    rule(
        "DELETE",
        "/api/incidents/{id}/voice/floor",
        Access::Roles(RESPONDERS),
        ScopeRule::Team,
    ),
];

/// Which way a WebSocket message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsDirection {
    ToClient,
    ToServer,
}

/// One row of the WebSocket message table: who may receive (or send) a message type, and whether
/// it is filtered by scope (`List`: towns, a field user's team, a drill coordinator's exercises;
/// see `ws::filter`) or not about towns (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsRule {
    pub direction: WsDirection,
    /// The message's `type`.
    pub kind: &'static str,
    pub roles: &'static [Role],
    pub scope: ScopeRule,
}

impl WsRule {
    pub fn allows(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

const fn ws(
    direction: WsDirection,
    kind: &'static str,
    roles: &'static [Role],
    scope: ScopeRule,
) -> WsRule {
    WsRule {
        direction,
        kind,
        roles,
        scope,
    }
}

/// Who works incidents live (admins included: they may read every incident by REST too).
const LIVE_INCIDENTS: &[Role] = LIVE;
/// Who is notified by escalation: not admins, who take no incident steps.
const LIVE_NOTIFIED: &[Role] = &[Supervisor, Operator, TownOfficer, Field, DrillCoordinator];
/// Who watches device health: everyone who may list cameras (field staff may not).
const LIVE_DEVICES: &[Role] = &[Admin, Supervisor, Operator, TownOfficer, DrillCoordinator];

/// Who follows drill runs live: coordinators and supervisors (observers), and the participating
/// town officers and operators (`ws::filter` keeps each run to its towns and participant roles).
const LIVE_DRILLS: &[Role] = &[DrillCoordinator, Supervisor, Operator, TownOfficer];

/// Every message type of `GET /api/ws`. A topic may be subscribed to only by the roles of its
/// message's row; a client message without a row is refused.
pub static WS_MESSAGES: &[WsRule] = &[
    ws(WsDirection::ToClient, "hello", LIVE, ScopeRule::None),
    ws(WsDirection::ToClient, "subscribed", LIVE, ScopeRule::None),
    ws(
        WsDirection::ToClient,
        "incident",
        LIVE_INCIDENTS,
        ScopeRule::List,
    ),
    ws(
        WsDirection::ToClient,
        "timeline",
        LIVE_INCIDENTS,
        ScopeRule::List,
    ),
    ws(
        WsDirection::ToClient,
        "notification",
        LIVE_NOTIFIED,
        ScopeRule::List,
    ),
    ws(WsDirection::ToClient, "edge", LIVE_DEVICES, ScopeRule::List),
    ws(WsDirection::ToClient, "wall", WALL_USERS, ScopeRule::None),
    ws(WsDirection::ToClient, "drill", LIVE_DRILLS, ScopeRule::List),
    // Who holds a camera's talk floor (and that a holding ended): talkers of the camera's town.
    ws(WsDirection::ToClient, "talk", TALKERS, ScopeRule::List),
    // Each kitchen's delivery state in a group broadcast: talkers of the kitchen's town.
    ws(WsDirection::ToClient, "broadcast", TALKERS, ScopeRule::List),
    ws(WsDirection::ToClient, "resync", LIVE, ScopeRule::None),
    ws(WsDirection::ToClient, "pong", LIVE, ScopeRule::None),
    ws(WsDirection::ToClient, "error", LIVE, ScopeRule::None),
    ws(WsDirection::ToServer, "subscribe", LIVE, ScopeRule::None),
    ws(WsDirection::ToServer, "ping", LIVE, ScopeRule::None),
];

/// The row of WebSocket message type `kind` travelling `direction`.
pub fn ws_lookup(direction: WsDirection, kind: &str) -> Option<&'static WsRule> {
    WS_MESSAGES
        .iter()
        .find(|r| r.direction == direction && r.kind == kind)
}

/// The row for `method` on the registered route `path`.
pub fn lookup(method: &str, path: &str) -> Option<&'static Rule> {
    POLICY.iter().find(|r| r.method == method && r.path == path)
}

impl Rule {
    /// Whether `role` may call this route (public routes: everyone).
    pub fn allows(&self, role: Role) -> bool {
        match self.access {
            Access::Public => true,
            Access::Roles(roles) => roles.contains(&role),
            Access::Service => false,
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware on every route: finds the route's row (none → 403); for service routes requires
/// a gateway's service token (401) and hands the handler the [`super::service::ServiceCaller`];
/// for other non-public routes requires a valid session (401), the CSRF token on unsafe methods
/// (403) and an allowed role (403), and hands the handler the [`Caller`].
pub async fn authorize(State(app): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    match check(&app, &mut req).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn check(app: &AppState, req: &mut Request) -> Result<(), Error> {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let Some(rule) = lookup(req.method().as_str(), &path) else {
        tracing::error!(method = %req.method(), path, "route has no policy row; refusing");
        return Err(Error::forbidden(
            "no_policy",
            "this route has no access rule; report this as a bug",
        ));
    };
    if rule.access == Access::Public {
        return Ok(());
    }
    if rule.access == Access::Service {
        let service = super::service::authenticate(app.config.media.as_ref(), req.headers())?;
        req.extensions_mut().insert(service);
        return Ok(());
    }
    let cookie = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok());
    let id = cookie
        .and_then(session::id_from_cookie_header)
        .ok_or_else(Error::unauthenticated)?;
    let caller = session::authenticate(&app.pool, &app.config.session, id, app.now()).await?;
    if !is_safe(req.method()) {
        let sent = req
            .headers()
            .get(session::CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !super::constant_time_eq(sent, caller.csrf_token.as_bytes()) {
            return Err(Error::forbidden(
                "csrf_failed",
                "missing or wrong X-CSRF-Token header; send the csrfToken from GET /api/session",
            ));
        }
    }
    if !rule.allows(caller.role) {
        return Err(Error::forbidden(
            "role_forbidden",
            format!(
                "role {} may not {} {}",
                caller.role.as_str(),
                rule.method,
                rule.path
            ),
        ));
    }
    req.extensions_mut().insert::<Caller>(caller);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_and_route_has_at_most_one_row() {
        for (i, a) in POLICY.iter().enumerate() {
            assert!(
                !POLICY[i + 1..]
                    .iter()
                    .any(|b| a.method == b.method && a.path == b.path),
                "{} {} has two rows",
                a.method,
                a.path
            );
        }
    }

    #[test]
    fn lookup_matches_method_and_registered_pattern_exactly() {
        assert_eq!(
            lookup("GET", "/api/premises/{id}").unwrap().scope,
            ScopeRule::Object
        );
        assert!(lookup("DELETE", "/api/premises/{id}").is_none());
        assert!(lookup("GET", "/api/premises/123").is_none());
    }

    #[test]
    fn only_the_health_check_login_edge_enrolment_and_the_api_document_are_public() {
        let web_files = POLICY
            .iter()
            .filter(|r| r.access == Access::Public)
            .filter(|r| !r.path.starts_with("/api") && r.path != "/healthz")
            .count();
        // besides them, only the web files (api/web.rs: six, and the consult room's two pages),
        // none under /api
        assert_eq!(web_files, 8);
        let public: Vec<_> = POLICY
            .iter()
            .filter(|r| r.access == Access::Public)
            .filter(|r| r.path.starts_with("/api") || r.path == "/healthz")
            .map(|r| (r.method, r.path))
            .collect();
        // Enrolment is authenticated by the one-time code in its body, a guest's room join by the
        // signed invite in its body, a box's voice fetch by its device key's signature.
        assert_eq!(
            public,
            vec![
                ("GET", "/healthz"),
                ("POST", "/api/session"),
                ("POST", "/api/enrol"),
                ("GET", "/api/openapi.json"),
                ("GET", "/api/edge-voice/{sha256}"),
                ("POST", "/api/room-invites/join"),
            ]
        );
    }

    #[test]
    fn auditors_change_nothing() {
        for r in POLICY
            .iter()
            .filter(|r| r.method != "GET" && r.access != Access::Public)
            .filter(|r| !r.path.starts_with("/api/session"))
        {
            assert!(
                !r.allows(Role::Auditor),
                "auditor may {} {}",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn live_view_is_for_incident_workers_and_talk_for_the_command_center_and_town_officers() {
        let live = lookup("POST", "/api/cameras/{id}/live").unwrap();
        let talk = lookup("POST", "/api/cameras/{id}/talk").unwrap();
        // a field user: only where their team has an open incident
        assert_eq!(live.scope, ScopeRule::Team);
        assert_eq!(talk.scope, ScopeRule::Object);
        for role in Role::ALL {
            assert_eq!(
                live.allows(role),
                matches!(role, Admin | Supervisor | Operator | TownOfficer | Field),
                "live {role:?}"
            );
            assert_eq!(
                talk.allows(role),
                matches!(role, Supervisor | Operator | TownOfficer),
                "talk {role:?}"
            );
        }
    }

    #[test]
    fn internal_routes_and_only_they_take_a_service_token() {
        for r in POLICY {
            assert_eq!(
                r.access == Access::Service,
                r.path.starts_with("/internal/"),
                "{} {}",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn only_admins_and_auditors_read_the_audit_log() {
        let r = lookup("GET", "/api/audit").unwrap();
        for role in Role::ALL {
            assert_eq!(r.allows(role), matches!(role, Admin | Auditor), "{role:?}");
        }
    }

    #[test]
    fn websocket_messages_have_one_row_each_and_go_only_to_roles_that_may_open_the_socket() {
        let socket = lookup("GET", "/api/ws").unwrap();
        for (i, a) in WS_MESSAGES.iter().enumerate() {
            assert!(
                !WS_MESSAGES[i + 1..]
                    .iter()
                    .any(|b| a.direction == b.direction && a.kind == b.kind),
                "{:?} {} has two rows",
                a.direction,
                a.kind
            );
            for role in a.roles {
                assert!(
                    socket.allows(*role),
                    "{role:?} gets {} but may not connect",
                    a.kind
                );
            }
        }
        assert!(!socket.allows(Auditor));
        assert!(
            !ws_lookup(WsDirection::ToClient, "edge")
                .unwrap()
                .allows(Field)
        );
        assert!(
            !ws_lookup(WsDirection::ToClient, "notification")
                .unwrap()
                .allows(Admin)
        );
    }

    #[test]
    fn walls_are_for_the_command_center_and_town_officers_and_their_changes_go_to_them_alone() {
        let get = lookup("GET", "/api/walls/{id}").unwrap();
        let put = lookup("PUT", "/api/walls/{id}").unwrap();
        assert_eq!(put.scope, ScopeRule::Body);
        let message = ws_lookup(WsDirection::ToClient, "wall").unwrap();
        for role in Role::ALL {
            let wall_user = matches!(role, Admin | Supervisor | Operator | TownOfficer);
            assert_eq!(get.allows(role), wall_user, "get {role:?}");
            assert_eq!(put.allows(role), wall_user, "put {role:?}");
            assert_eq!(message.allows(role), wall_user, "message {role:?}");
        }
    }

    #[test]
    fn only_admins_manage_users() {
        for r in POLICY.iter().filter(|r| r.path.starts_with("/api/users")) {
            assert_eq!(r.access, Access::Roles(&[Role::Admin]));
        }
    }
}
