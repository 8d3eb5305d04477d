//! The OpenAPI 3.1 document of the API, generated from the code: `#[utoipa::path]` on each handler
//! (summary, parameters, request body, success answers), `ToSchema` on the types they take and give,
//! and the policy table for who may call what ([`access`]). Served at `GET /api/openapi.json` and
//! checked in as `docs/reference/openapi.json` (`make schemas`; a test fails when it is stale).

pub mod access;

use crate::error::Result;
use axum::http::header;
use axum::response::IntoResponse;
use bl_proto::stream::Stream;
use serde_json::Value;
use std::sync::LazyLock;
use utoipa::OpenApi;
use utoipa::openapi::schema::{ObjectBuilder, Type};

/// Where the checked-in copy lives, relative to the workspace root.
pub const DOCUMENT_PATH: &str = "docs/reference/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Brightline dispatch API",
        description = "The control plane of Brightline: registry, incidents, field work, live view \
            and talk grants, audit. Errors are `{\"error\": {\"code\", \"message\", \"details?\"}}` \
            with a stable `code`. A session is the `__Host-bl_session` cookie from `POST /api/session`; \
            every unsafe method with a session also sends `X-CSRF-Token`. Who may call an operation is \
            its `x-roles` (from the policy table `dispatch/src/auth/policy.rs`); `x-scope` says how the \
            caller's towns apply. The WebSocket protocol of `GET /api/ws` is in dispatch/README.md."
    ),
    paths(
        super::health,
        openapi_json,
        super::session::login,
        super::session::me,
        super::session::logout,
        super::session::totp_begin,
        super::session::totp_confirm,
        super::registry::towns,
        super::registry::list_premises,
        super::registry::create_premises,
        super::registry::get_premises,
        super::registry::import_premises,
        super::registry::cameras,
        super::registry::teams,
        super::media::live,
        super::media::talk,
        super::edges::list,
        super::edges::create,
        super::edges::new_code,
        super::edges::enrol,
        super::users::list,
        super::users::create,
        super::incidents::list,
        super::incidents::create,
        super::incidents::get,
        super::incidents::transition,
        super::evidence::incident_evidence,
        super::audit::list,
        super::internal::camera_source,
        super::internal::edge_key,
        super::live_push::live_start,
        super::live_push::live_stop,
        super::notify::channels,
        super::clocks::health_report,
        super::field::my_incidents,
        super::field::note,
        super::field::upload_photo,
        super::field::get_photo,
        super::field::recheck,
        super::ws::socket,
        super::walls::get,
        super::walls::put,
        super::cameras::create,
        super::cameras::update,
        super::cameras::delete,
        super::users::update,
        super::teams::create,
        super::teams::update,
        super::teams::roster,
        super::escalation::policies,
        super::escalation::set,
        super::escalation::reset,
        super::drills::scenarios,
        super::drills::start,
        super::drills::list,
        super::drills::get,
        super::drills::control,
        super::drills::observe,
        super::drills::report,
        super::drills::report_pdf,
        super::drills::history,
        super::drill_improvements::list,
        super::drill_improvements::create,
        super::drill_improvements::set_state,
        super::stats::incidents,
        super::stats::incidents_csv,
        // talk-down floor control and the edge's talk commands
        super::media::release_talk,
        super::talk_edge::talk_start,
        super::talk_edge::talk_stop,
        // group broadcast
        super::broadcasts::create,
        super::broadcasts::get,
        super::broadcasts::end,
        super::broadcast_history::list,
        super::broadcast_history::voice_recordings,
        // consult rooms and incident voice channels
        super::rooms::create,
        super::rooms::list,
        super::rooms::join,
        super::rooms::invite,
        super::rooms::guest_join,
        super::rooms::share,
        super::rooms::clip,
        super::rooms::recording,
        super::rooms::close,
        super::rooms::voice,
        super::rooms::take_floor,
        super::rooms::release_floor,
        // the automatic voice warning's messages and rules
        super::voice::list,
        super::voice::put,
        super::voice::delete,
        super::voice::audio_file,
        super::voice::rules,
        super::voice::set_rules,
        // talk and broadcast recordings
        super::voice_recordings::report,
        super::voice_recordings::list,
        super::edge_voice::fetch,
    ),
    components(schemas(crate::error::Body))
)]
struct ApiDoc;

/// The whole document: the annotations, then access, security and error answers from the policy
/// table.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    access::apply(&mut doc, crate::auth::policy::POLICY);
    doc
}

/// The exact text served and checked in: pretty JSON and a trailing newline.
pub fn render() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("JSON values serialise");
    text.push('\n');
    text
}

/// Writes [`render`] to `file`, or to stdout.
pub fn write(file: Option<&std::path::Path>) -> std::io::Result<()> {
    match file {
        Some(path) => std::fs::write(path, render()),
        None => std::io::Write::write_all(&mut std::io::stdout(), render().as_bytes()),
    }
}

static RENDERED: LazyLock<String> = LazyLock::new(render);

/// `GET /api/openapi.json`
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    summary = "This OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3.1 document of this server", content_type = "application/json"))
)]
pub async fn openapi_json() -> Result<impl IntoResponse> {
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        RENDERED.as_str(),
    ))
}

/// The schema of a timeline entry's `noteCode`: one of [`crate::incident::note::CODES`], or null.
pub(crate) fn note_code_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .enum_values(Some(crate::incident::note::CODES.iter().copied()))
        .description(Some(
            "The note as a code, for the apps to say in the reader's language (`noteParams` holds \
             its values); null for older rows and for what people write: show `note`",
        ))
}

/// The schema of a proto [`Stream`] (a type from outside this crate): one of its wire names.
pub(crate) fn stream_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([Stream::Main, Stream::Sub].map(Stream::as_str)))
        .description(Some(
            "`main` (full resolution) or `sub` (small, for wall tiles)",
        ))
}

/// The optional `Idempotency-Key` header of the field writes (see `crate::field::idempotency`);
/// documentation only, the handlers read the header themselves.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct IdempotencyKey {
    /// A UUID made on the client once per intended action: a repeat with the same key and request
    /// gets the first answer again (header `Idempotent-Replayed: true`) and changes nothing; the
    /// same key with another request is 409 `client_id_reused`; not a UUID: 400
    /// `invalid_idempotency_key`.
    #[param(rename = "Idempotency-Key")]
    key: Option<uuid::Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn documented() -> BTreeSet<(String, String)> {
        let doc = document();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in access::METHODS {
                if item.get(method).is_some() {
                    out.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_registered_route_is_documented_and_every_documented_route_is_registered() {
        // The web console's files (api/web.rs) are pages, not API: everything else is documented.
        let registered: BTreeSet<(String, String)> = crate::api::registered()
            .into_iter()
            .filter(|(_, p)| {
                p.starts_with("/api/") || p.starts_with("/internal/") || *p == "/healthz"
            })
            .map(|(m, p)| (m.to_owned(), p.to_owned()))
            .collect();
        let documented = documented();
        let undocumented: Vec<_> = registered.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&registered).collect();
        assert!(
            undocumented.is_empty(),
            "registered but not in the OpenAPI document (add #[utoipa::path] and list the handler in ApiDoc): {undocumented:?}"
        );
        assert!(
            unknown.is_empty(),
            "in the OpenAPI document but not registered: {unknown:?}"
        );
    }

    #[test]
    fn every_operation_has_a_summary_a_success_answer_and_its_roles_from_the_policy_table() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (method, path) in documented() {
            let op = &doc["paths"][&path][method.to_ascii_lowercase()];
            let rule = crate::auth::policy::lookup(&method, &path).unwrap();
            let what = format!("{method} {path}");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{what}: summary"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses
                    .keys()
                    .any(|s| s.starts_with('1') || s.starts_with('2')),
                "{what}: no success answer"
            );
            let roles: Vec<&str> = op["x-roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            for role in crate::auth::Role::ALL {
                let allowed =
                    rule.access != crate::auth::policy::Access::Public && rule.allows(role);
                assert_eq!(roles.contains(&role.as_str()), allowed, "{what}: {role:?}");
            }
            assert!(
                op["description"]
                    .as_str()
                    .unwrap()
                    .contains(&access::access_text(rule)),
                "{what}: description"
            );
            assert!(
                ids.insert(op["operationId"].to_string()),
                "{what}: operationId"
            );
        }
    }

    #[test]
    fn every_error_answer_has_the_one_error_schema_and_every_reference_resolves() {
        let doc = document();
        let text = serde_json::to_string(&doc).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("#/components/schemas/") {
            rest = &rest[i + "#/components/schemas/".len()..];
            let name: String = rest.chars().take_while(|c| *c != '"').collect();
            assert!(schemas.contains_key(&name), "dangling $ref {name}");
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    if status == "default" || status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/Error",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        let error = &schemas["Error"];
        assert_eq!(error["required"], serde_json::json!(["error"]));
    }

    #[test]
    fn the_checked_in_document_is_current() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(DOCUMENT_PATH);
        let have = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            have == render(),
            "{DOCUMENT_PATH} is stale or missing: run `make schemas`"
        );
    }
}
