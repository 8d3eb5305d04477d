//! The one error type of dispatch's API. Each error has a kind (which decides the HTTP status, in
//! [`Error::into_response`] and nowhere else), a stable machine-readable `code` and a message that
//! says what failed and what to do.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every `code` the API answers with, sorted. The OpenAPI document lists them (the enum of
/// `ErrorInner.code`) and the web apps translate each one (`web/src/i18n/errors.ts`, whose unit
/// test reads them from `docs/reference/openapi.json`). A test scans this crate's source for a code
/// missing here: a new code goes into this list, the document (`make schemas`) and both languages.
pub const CODES: &[&str] = &[
    "audio_duration",
    "audio_too_large",
    "bad_origin",
    "bad_signature",
    "broadcast_no_targets",
    "broadcast_too_many",
    "broker_unavailable",
    "camera_in_use",
    "client_id_reused",
    "concurrent_change",
    "csrf_failed",
    "database_unavailable",
    "duplicate",
    "edge_unreachable",
    "enrolment_not_configured",
    "enrolment_refused",
    "evidence_required",
    "floor_taken",
    "internal",
    "invalid_body",
    "invalid_csv",
    "invalid_drill_state",
    "invalid_field",
    "invalid_id",
    "invalid_idempotency_key",
    "invalid_improvement_state",
    "invalid_layout",
    "invalid_public_key",
    "invalid_query",
    "invalid_transition",
    "invite_expired",
    "invite_invalid",
    "login_failed",
    "login_throttled",
    "media_not_configured",
    "message_in_use",
    "mqtt_not_configured",
    "no_camera",
    "no_clip",
    "no_edge",
    "no_policy",
    "no_route",
    "not_a_photo",
    "not_audio",
    "not_consult_room",
    "not_enrolled",
    "not_found",
    "not_owner",
    "not_pushed",
    "not_websocket",
    "not_your_broadcast",
    "not_your_team",
    "out_of_scope",
    "own_account",
    "pdf_failed",
    "photo_too_large",
    "recheck_unsupported",
    "report_not_ready",
    "role_forbidden",
    "room_closed",
    "service_unauthenticated",
    "talk_unsupported",
    "totp_not_started",
    "totp_required",
    "totp_wrong_code",
    "unauthenticated",
    "unknown_camera",
    "unknown_clip",
    "unknown_reference",
    "unsigned",
    "ws_full",
];

/// What kind of failure; decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or a value breaks a rule (400).
    BadRequest,
    /// No valid session, or a failed login (401).
    Unauthenticated,
    /// Authenticated but not allowed: role, scope or CSRF (403).
    Forbidden,
    /// The object does not exist (404).
    NotFound,
    /// The request conflicts with existing data, e.g. a duplicate licence number (409).
    Conflict,
    /// The request body is larger than the route accepts (413).
    TooLarge,
    /// Too many attempts; retry after the given number of seconds (429).
    Throttled { retry_after_secs: u64 },
    /// A dependency (the database) is unavailable; nothing was changed (503).
    Unavailable,
    /// A bug or an unexpected failure; details are in the log only (500).
    Internal,
}

/// One line-and-column problem in an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorDetail)]
pub struct Detail {
    pub line: u64,
    pub column: String,
    /// What is wrong, stable for the apps to word: `invalid_field` (the column breaks its field's
    /// rule), `unknown_column`, `duplicate_column`, `missing_column`, `unreadable`, `field_count`,
    /// `not_a_number`, `duplicate_licence` (earlier in the file), `no_rows`, `out_of_scope`.
    pub code: &'static str,
    /// The same in English, with the particulars.
    pub message: String,
}

/// dispatch's coded error.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub kind: Kind,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<Detail>,
    /// The request field that broke a rule (JSON name, e.g. `mainStream`), for forms to show the
    /// message next to it.
    pub field: Option<String>,
    /// Who holds a camera's talk floor, on a `floor_taken` refusal.
    pub holder: Option<Box<crate::intercom::Holder>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            details: Vec::new(),
            field: None,
            holder: None,
        }
    }

    /// 400 `invalid_field`: `field` (its JSON name) breaks a rule; the message starts with
    /// "field {field}:" and the answer names the field in `error.field`.
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        let mut e = Self::bad_request("invalid_field", format!("field {field}: {message}"));
        e.field = Some(field.to_owned());
        e
    }

    /// The same error, naming `field` (its JSON name) in `error.field`.
    pub fn on_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            Kind::NotFound,
            "not_found",
            format!("{what} does not exist; check the id"),
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, code, message)
    }

    pub fn out_of_scope() -> Self {
        Self::forbidden(
            "out_of_scope",
            "this object belongs to a town outside your scope; ask an admin to widen your scope",
        )
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            Kind::Unauthenticated,
            "unauthenticated",
            "no valid session; log in with POST /api/session",
        )
    }

    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(context, err = %err, "internal error");
        Self::new(
            Kind::Internal,
            "internal",
            format!("{context} failed unexpectedly; see the server log"),
        )
    }

    pub fn with_details(mut self, details: Vec<Detail>) -> Self {
        self.details = details;
        self
    }

    /// The HTTP status of this error: the only place kinds become statuses.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The body of every error answer (the `Error` component of the OpenAPI document).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorInner)]
struct Inner<'a> {
    /// Stable and machine-readable, e.g. `invalid_field`, `out_of_scope`: one of [`CODES`].
    #[schema(schema_with = code_schema)]
    code: &'a str,
    /// What failed and what to do, for people.
    message: &'a str,
    /// Line-and-column problems of an uploaded file; absent when there are none.
    #[serde(skip_serializing_if = "<[Detail]>::is_empty")]
    #[schema(value_type = Vec<Detail>, required = false)]
    details: &'a [Detail],
    /// The request field (JSON name) the error is about, when it is about one; forms show the
    /// message next to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    field: Option<&'a str>,
    /// On `floor_taken`: who talks to the camera now (consoles show their name).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    holder: Option<&'a crate::intercom::Holder>,
}

/// The schema of `code`: one of [`CODES`].
fn code_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(CODES.iter().copied()))
        .build()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                details: &self.details,
                field: self.field.as_deref(),
                holder: self.holder.as_deref(),
            },
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Kind::Throttled { retry_after_secs } = self.kind {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(err = %e, "database unavailable");
                Self::new(
                    Kind::Unavailable,
                    "database_unavailable",
                    "the database is unavailable; nothing was changed, retry shortly",
                )
            }
            sqlx::Error::Database(d) if d.is_unique_violation() => Self::new(
                Kind::Conflict,
                "duplicate",
                format!(
                    "an object with this key exists already ({}); change the key or edit the existing one",
                    d.constraint().unwrap_or("unique key")
                ),
            ),
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => Self::bad_request(
                "unknown_reference",
                format!(
                    "a referenced object does not exist ({}); check the ids",
                    d.constraint().unwrap_or("reference")
                ),
            ),
            _ => Self::internal("database query", e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_list_is_sorted_and_has_no_duplicates() {
        assert!(
            CODES.windows(2).all(|w| w[0] < w[1]),
            "sort CODES: {CODES:?}"
        );
    }

    /// The first string literal after each constructor that takes a code (`Error::new(kind, "…"`,
    /// `bad_request("…"`, `forbidden("…"`), in the source outside test modules, is in [`CODES`].
    #[test]
    fn every_code_the_source_uses_is_listed() {
        let mut unlisted = Vec::new();
        let mut seen = 0;
        for file in rust_files(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")) {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for code in literal_codes(code) {
                seen += 1;
                if !CODES.contains(&code.as_str()) {
                    unlisted.push(format!("{code} ({})", file.display()));
                }
            }
        }
        assert!(seen > 50, "the scan finds the codes ({seen})");
        assert!(
            unlisted.is_empty(),
            "codes missing from error::CODES (add them, run `make schemas` and translate them in \
             web/src/i18n/errors.ts): {unlisted:?}"
        );
    }

    fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(rust_files(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
        out
    }

    /// The codes named in `src` by the constructors' first string literal (after the kind for
    /// `new`); a call whose code is not a literal (a variable) is skipped.
    fn literal_codes(src: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (call, skip_kind) in [
            ("Error::new(", true),
            ("Self::new(", true),
            ("bad_request(", false),
            ("forbidden(", false),
        ] {
            for (at, _) in src.match_indices(call) {
                let mut rest = &src[at + call.len()..];
                if skip_kind {
                    match top_level_comma(rest) {
                        Some(i) => rest = &rest[i + 1..],
                        None => continue,
                    }
                }
                let rest = rest.trim_start();
                if let Some(lit) = rest.strip_prefix('"')
                    && let Some(end) = lit.find('"')
                {
                    out.push(lit[..end].to_owned());
                }
            }
        }
        out
    }

    /// Where the first argument ends: the first comma outside brackets.
    fn top_level_comma(s: &str) -> Option<usize> {
        let mut depth = 0i32;
        for (i, c) in s.char_indices() {
            match c {
                '(' | '{' | '[' => depth += 1,
                ')' | '}' | ']' if depth == 0 => return None,
                ')' | '}' | ']' => depth -= 1,
                ',' if depth == 0 => return Some(i),
                _ => {}
            }
        }
        None
    }

    #[test]
    fn each_kind_has_its_status() {
        let e = |k| Error::new(k, "c", "m").status().as_u16();
        assert_eq!(e(Kind::BadRequest), 400);
        assert_eq!(e(Kind::Unauthenticated), 401);
        assert_eq!(e(Kind::Forbidden), 403);
        assert_eq!(e(Kind::NotFound), 404);
        assert_eq!(e(Kind::Conflict), 409);
        assert_eq!(
            e(Kind::Throttled {
                retry_after_secs: 3
            }),
            429
        );
        assert_eq!(e(Kind::Unavailable), 503);
        assert_eq!(e(Kind::Internal), 500);
    }
}
