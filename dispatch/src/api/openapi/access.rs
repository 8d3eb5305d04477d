//! What the policy table says about each operation, written into the document so the two cannot
//! drift: who may call it (`x-roles`, `x-access`, a sentence in the description), how town scope
//! applies (`x-scope`), its security requirement, and the error answers every route of its kind can
//! give (all with the one `Error` schema). Pure: a JSON document and the table in, the document out.

use crate::auth::policy::{Access, Rule, ScopeRule};
use crate::auth::{Role, service, session};
use serde_json::{Map, Value, json};

/// The security schemes' names in `components.securitySchemes`.
pub const SESSION: &str = "session";
pub const CSRF: &str = "csrf";
pub const SERVICE_TOKEN: &str = "serviceToken";
pub const SERVICE_NODE: &str = "serviceNode";

/// The methods a route may be registered with, as OpenAPI names them.
pub const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

const ERROR_REF: &str = "#/components/schemas/Error";

/// Adds the security schemes, and to each operation that has a policy row its access, tag,
/// operation id and error answers.
pub fn apply(doc: &mut Value, policy: &[Rule]) {
    doc["components"]["securitySchemes"] = security_schemes();
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            let Some(op) = item.get_mut(method) else {
                continue;
            };
            let upper = method.to_ascii_uppercase();
            op["operationId"] = json!(operation_id(method, path));
            op["tags"] = json!([tag(path)]);
            if let Some(rule) = policy.iter().find(|r| r.method == upper && r.path == path) {
                describe(op, rule);
            }
        }
    }
}

fn security_schemes() -> Value {
    json!({
        SESSION: {
            "type": "apiKey", "in": "cookie", "name": session::COOKIE,
            "description": "The session cookie set by `POST /api/session` (Secure, HttpOnly, SameSite=Strict)."
        },
        CSRF: {
            "type": "apiKey", "in": "header", "name": "X-CSRF-Token",
            "description": format!(
                "The session's `csrfToken` (from `POST` or `GET /api/session`), sent as `{}` with every unsafe method.",
                session::CSRF_HEADER
            )
        },
        SERVICE_TOKEN: {
            "type": "http", "scheme": "bearer",
            "description": "A media gateway node's service token (`service_token_file` of its `[[media.gateway]]`); `/internal` only."
        },
        SERVICE_NODE: {
            "type": "apiKey", "in": "header", "name": "X-BL-Node",
            "description": format!("The gateway node's id (`{}`), sent with its service token.", service::NODE_HEADER)
        }
    })
}

/// A unique, stable id from method and path: `POST /api/incidents/{id}/notes` →
/// `postIncidentsByIdNotes`.
pub fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    let segments = path.trim_start_matches('/').split(['/', '.', '-']);
    for segment in segments.filter(|s| !s.is_empty() && *s != "api") {
        let word = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => format!("by{}", capitalised(param)),
            None => segment.to_owned(),
        };
        id.push_str(&capitalised(&word));
    }
    id
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The group of an operation: the first segment under `/api` (`incidents`, `field`, …),
/// `internal`, or the path itself (`healthz`).
pub fn tag(path: &str) -> String {
    let mut segments = path.trim_start_matches('/').split('/');
    let first = segments.next().unwrap_or_default();
    let tag = match first {
        "api" => segments.next().unwrap_or(first),
        other => other,
    };
    tag.trim_end_matches(".json").to_owned()
}

fn role_names(access: Access) -> Vec<&'static str> {
    match access {
        Access::Roles(roles) => roles.iter().map(|r| r.as_str()).collect(),
        Access::Public | Access::Service => Vec::new(),
    }
}

fn scope_name(scope: ScopeRule) -> &'static str {
    match scope {
        ScopeRule::None => "none",
        ScopeRule::List => "list",
        ScopeRule::Object => "object",
        ScopeRule::Body => "body",
        ScopeRule::Team => "team",
    }
}

/// The sentence on access appended to the operation's description.
pub fn access_text(rule: &Rule) -> String {
    let who = match rule.access {
        Access::Public => "Access: public (no session).".to_owned(),
        Access::Service => "Access: a media gateway's service token (`Authorization: Bearer` and \
                            `X-BL-Node`); never a session."
            .to_owned(),
        Access::Roles(_) => format!("Roles: {}.", role_names(rule.access).join(", ")),
    };
    let scope = match rule.scope {
        ScopeRule::None => "",
        ScopeRule::List => " Town scope: lists only what lies in the caller's towns.",
        ScopeRule::Object => {
            " Town scope: 404 when the object is missing, then 403 `out_of_scope` when its town is \
             outside the caller's towns."
        }
        ScopeRule::Body => {
            " Town scope: what is created must lie in the caller's towns, else 403 `out_of_scope`."
        }
        ScopeRule::Team => {
            " Town scope: 404 when the incident is missing, then 403 `out_of_scope` outside the \
             caller's towns, or `not_your_team` for a field user when it is routed to another team."
        }
    };
    format!("{who}{scope}")
}

fn is_unsafe(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

fn describe(op: &mut Value, rule: &Rule) {
    let text = access_text(rule);
    op["description"] = json!(match op["description"].as_str() {
        Some(d) if !d.is_empty() => format!("{d}\n\n{text}"),
        _ => text,
    });
    op["x-access"] = json!(match rule.access {
        Access::Public => "public",
        Access::Roles(_) => "session",
        Access::Service => "service",
    });
    op["x-roles"] = json!(role_names(rule.access));
    op["x-scope"] = json!(scope_name(rule.scope));
    match rule.access {
        Access::Public => {}
        Access::Roles(_) if is_unsafe(rule.method) => {
            op["security"] = json!([{ SESSION: [], CSRF: [] }]);
        }
        Access::Roles(_) => op["security"] = json!([{ SESSION: [] }]),
        Access::Service => op["security"] = json!([{ SERVICE_TOKEN: [], SERVICE_NODE: [] }]),
    }
    for (status, text) in error_answers(op, rule) {
        add_error(op, &status, &text);
    }
    // Every error answer an annotation named (409, 413, …) has the one error body too.
    if let Some(responses) = op["responses"].as_object_mut() {
        for (status, response) in responses.iter_mut() {
            let is_error =
                status == "default" || status.starts_with('4') || status.starts_with('5');
            if is_error && response.get("content").is_none() {
                response["content"] = error_content();
            }
        }
    }
}

fn error_content() -> Value {
    json!({ "application/json": { "schema": { "$ref": ERROR_REF } } })
}

fn has_parameter_in(op: &Value, place: &str) -> bool {
    op["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["in"] == place))
}

/// The errors every route of this kind can answer, as (status, description).
fn error_answers(op: &Value, rule: &Rule) -> Vec<(String, String)> {
    let has_body = op.get("requestBody").is_some();
    let mut out = Vec::new();
    if has_body || has_parameter_in(op, "query") {
        out.push((
            "400".into(),
            "`invalid_body`, `invalid_query` or `invalid_field`: the message names what was wrong"
                .into(),
        ));
    }
    match rule.access {
        Access::Public => {}
        Access::Roles(_) => {
            out.push((
                "401".into(),
                "`unauthenticated`: no valid session; log in with `POST /api/session`".into(),
            ));
            let mut codes = Vec::new();
            if !Role::ALL.iter().all(|r| rule.allows(*r)) {
                codes.push("`role_forbidden`: the caller's role may not do this");
            }
            if is_unsafe(rule.method) {
                codes.push("`csrf_failed`: missing or wrong `X-CSRF-Token`");
            }
            if matches!(
                rule.scope,
                ScopeRule::Object | ScopeRule::Body | ScopeRule::Team
            ) {
                codes.push("`out_of_scope`: outside the caller's towns");
            }
            if rule.scope == ScopeRule::Team {
                codes.push("`not_your_team`: routed to another team than the field user's");
            }
            if !codes.is_empty() {
                out.push(("403".into(), codes.join("; ")));
            }
        }
        Access::Service => out.push((
            "401".into(),
            "`service_unauthenticated`: missing or wrong service token or node".into(),
        )),
    }
    if has_parameter_in(op, "path") {
        out.push(("404".into(), "`not_found`: no such object".into()));
    }
    if rule.access != Access::Public || has_body {
        out.push((
            "default".into(),
            "`database_unavailable` (503: nothing was changed, retry) or `internal` (500)".into(),
        ));
    }
    out
}

/// Adds an error answer; when the annotation named the status already, both texts are kept.
fn add_error(op: &mut Value, status: &str, text: &str) {
    let responses = &mut op["responses"];
    if !responses.is_object() {
        *responses = Value::Object(Map::new());
    }
    match responses.get_mut(status) {
        Some(existing) => {
            let specific = existing["description"].as_str().unwrap_or_default();
            existing["description"] = json!(if specific.is_empty() {
                text.to_owned()
            } else {
                format!("{text}; {specific}")
            });
        }
        None => {
            responses[status] = json!({ "description": text, "content": error_content() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_read_as_method_and_path() {
        assert_eq!(
            operation_id("post", "/api/incidents/{id}/notes"),
            "postIncidentsByIdNotes"
        );
        assert_eq!(
            operation_id("post", "/api/edges/{id}/enrolment-code"),
            "postEdgesByIdEnrolmentCode"
        );
        assert_eq!(operation_id("get", "/api/openapi.json"), "getOpenapiJson");
        assert_eq!(
            operation_id("get", "/internal/cameras/{id}/source"),
            "getInternalCamerasByIdSource"
        );
        assert_eq!(operation_id("get", "/healthz"), "getHealthz");
    }

    #[test]
    fn tags_are_the_first_segment_under_api() {
        assert_eq!(tag("/api/incidents/{id}/notes"), "incidents");
        assert_eq!(tag("/api/field/incidents"), "field");
        assert_eq!(tag("/internal/cameras/{id}/source"), "internal");
        assert_eq!(tag("/healthz"), "healthz");
        assert_eq!(tag("/api/openapi.json"), "openapi");
    }

    fn op_for(rule: &Rule, op: Value) -> Value {
        let method = rule.method.to_ascii_lowercase();
        let mut doc = json!({ "paths": { rule.path: { method.clone(): op } } });
        apply(&mut doc, std::slice::from_ref(rule));
        doc["paths"][rule.path][method.as_str()].take()
    }

    #[test]
    fn a_scoped_write_names_its_roles_needs_session_and_csrf_and_lists_its_errors() {
        let rule = Rule {
            method: "POST",
            path: "/api/things/{id}",
            access: Access::Roles(&[Role::Admin, Role::TownOfficer]),
            scope: ScopeRule::Object,
        };
        let op = op_for(
            &rule,
            json!({
                "description": "Does a thing.",
                "parameters": [{ "name": "id", "in": "path" }],
                "requestBody": {},
                "responses": { "200": { "description": "done" }, "409": { "description": "`busy`" } }
            }),
        );
        assert_eq!(op["x-roles"], json!(["admin", "townOfficer"]));
        assert_eq!(op["x-scope"], "object");
        assert_eq!(op["security"], json!([{ "session": [], "csrf": [] }]));
        assert!(
            op["description"]
                .as_str()
                .unwrap()
                .starts_with("Does a thing.\n\nRoles: admin, townOfficer.")
        );
        for status in ["400", "401", "403", "404", "409", "default"] {
            assert_eq!(
                op["responses"][status]["content"]["application/json"]["schema"]["$ref"], ERROR_REF,
                "{status}"
            );
        }
        let forbidden = op["responses"]["403"]["description"].as_str().unwrap();
        assert!(forbidden.contains("csrf_failed") && forbidden.contains("out_of_scope"));
        assert!(op["responses"]["200"].get("content").is_none());
    }

    #[test]
    fn a_public_read_needs_no_security_and_answers_no_generic_errors() {
        let rule = Rule {
            method: "GET",
            path: "/healthz",
            access: Access::Public,
            scope: ScopeRule::None,
        };
        let op = op_for(
            &rule,
            json!({ "responses": { "200": { "description": "ok" } } }),
        );
        assert!(op.get("security").is_none());
        assert_eq!(op["x-access"], "public");
        assert_eq!(op["x-roles"], json!([]));
        assert_eq!(
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["200"]
        );
    }

    #[test]
    fn a_service_route_takes_the_gateway_token_and_node() {
        let rule = Rule {
            method: "GET",
            path: "/internal/x/{id}",
            access: Access::Service,
            scope: ScopeRule::None,
        };
        let op = op_for(
            &rule,
            json!({ "parameters": [{ "name": "id", "in": "path" }], "responses": {} }),
        );
        assert_eq!(
            op["security"],
            json!([{ "serviceToken": [], "serviceNode": [] }])
        );
        assert!(
            op["responses"]["401"]["description"]
                .as_str()
                .unwrap()
                .contains("service_unauthenticated")
        );
    }
}
