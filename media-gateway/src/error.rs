//! The one error type of the gateway's HTTP API. Each error has a [`Kind`] (which decides the HTTP
//! status, in [`Error::into_response`] and nowhere else), a stable machine-readable `code` and a
//! message that says what failed and what to do. The body is always
//! `{"error":{"code":"stable_code","message":"..."}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What kind of failure; decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed: a bad path, a missing or invalid header (400).
    BadRequest,
    /// No media token, or one that is forged, malformed or expired (401).
    Unauthenticated,
    /// A valid credential that does not cover this request, or an unknown edge (403).
    Forbidden,
    /// The blob, camera or session does not exist (404).
    NotFound,
    /// An upload without `Content-Length` (411): the length is part of what the edge signs.
    LengthRequired,
    /// An upload above the configured size limit (413).
    TooLarge,
    /// A `Range` that lies outside a blob of `size` bytes (416).
    RangeNotSatisfiable {
        /// Size of the blob, for `Content-Range: bytes */size`.
        size: u64,
    },
    /// The body does not match what the request claims, e.g. its SHA-256 (422).
    Unprocessable,
    /// The request conflicts with the resource's state, e.g. a camera codec browsers cannot play (409).
    Conflict,
    /// A body in a format the endpoint does not take (415).
    UnsupportedMediaType,
    /// Too many uploads or sessions at once; retry later (503 with `Retry-After`).
    Busy,
    /// Something the request needs is down for now, e.g. the camera (503 with `Retry-After`).
    Unavailable,
    /// The disk is full; nothing partial was kept (507).
    StorageFull,
    /// A bug or an unexpected failure; details are in the log only (500).
    Internal,
}

/// The gateway's coded error.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// Decides the HTTP status.
    pub kind: Kind,
    /// Stable machine-readable code, e.g. `hash_mismatch`.
    pub code: &'static str,
    /// What failed and what to do, for people.
    pub message: String,
}

/// Result with the gateway's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a stable `code` and a message for people.
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
        }
    }

    /// A 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, code, message)
    }

    /// An unexpected failure: logged in full here, reported to the client without details.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(context, err = %err, "internal error");
        Self::new(
            Kind::Internal,
            "internal",
            format!("{context} failed unexpectedly; see the gateway log"),
        )
    }

    /// The HTTP status of this error: the only place kinds become statuses.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::LengthRequired => StatusCode::LENGTH_REQUIRED,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::Busy | Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Body {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        })
        .unwrap_or_else(|_| br#"{"error":{"code":"internal","message":"?"}}"#.to_vec());
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match self.kind {
            Kind::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"media-gateway\""),
                );
            }
            Kind::RangeNotSatisfiable { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            Kind::Busy | Kind::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_json_with_its_code_and_message() {
        let r = Error::new(Kind::Unprocessable, "hash_mismatch", "body differs").into_response();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn an_unsatisfiable_range_names_the_size_of_the_blob() {
        let r = Error::new(Kind::RangeNotSatisfiable { size: 10 }, "range", "x").into_response();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes */10");
    }
}
