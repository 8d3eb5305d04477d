//! `PUT /evidence/{sha256}` (edges upload), `GET`/`HEAD /evidence/{sha256}` (viewers read, with
//! `Range`) and `GET /evidence/{sha256}/meta`. Thin: checks in order, then the store does the work.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use bl_proto::evidence::{self, EvidenceError, EvidenceMeta, Sha256Hex};
use bl_proto::token::MediaAction;
use futures::{StreamExt as _, TryStreamExt as _};

use super::range::{self, Ranged};
use super::{Put, StoreError, StoredEvidence};
use crate::Gateway;
use crate::error::{Error, Kind, Result};

/// The evidence routes.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route(
            "/evidence/{sha256}",
            put(put_evidence).get(get_evidence).head(get_evidence),
        )
        .route("/evidence/{sha256}/meta", get(get_meta))
}

async fn put_evidence(
    State(gw): State<Arc<Gateway>>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let result = store_upload(&gw, &sha256, &headers, body).await;
    match &result {
        Ok(_) => {}
        Err(e) => {
            gw.metrics.rejected(e.code);
            tracing::warn!(sha256 = %sha256.chars().take(64).collect::<String>(),
                code = e.code, err = %e.message, "evidence upload refused");
        }
    }
    result
}

/// The checks, cheapest first, all before a byte of the body is read except the hash.
async fn store_upload(
    gw: &Gateway,
    sha256: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let sha = parse_sha(sha256)?;
    let size = content_length(headers)?;
    if size > gw.max_evidence_bytes {
        return Err(Error::new(
            Kind::TooLarge,
            "too_large",
            format!(
                "the upload has {size} bytes; this gateway accepts at most {} (max_evidence_bytes)",
                gw.max_evidence_bytes
            ),
        ));
    }
    let (meta, signature) = EvidenceMeta::from_headers(sha.as_str(), size, |name| {
        headers.get(name).and_then(|v| v.to_str().ok())
    })
    .map_err(header_error)?;
    let key = gw
        .keys
        .key(&meta.edge_id)
        .await
        // dispatch (the key source behind the config) being down is temporary: the edge retries a
        // 503 with backoff, where a 500 would read as a bug.
        .map_err(|e| {
            tracing::warn!(err = %e, edge = %meta.edge_id, "edge key lookup failed");
            Error::new(
                Kind::Unavailable,
                "keys_unavailable",
                "the edge's registered key cannot be looked up right now; retry later",
            )
        })?
        .ok_or_else(|| {
            Error::new(
                Kind::Forbidden,
                "unknown_edge",
                format!(
                    "edge {} is not registered with this gateway; enrol it first",
                    meta.edge_id
                ),
            )
        })?;
    evidence::verify(&meta, signature, &key).map_err(|e| {
        Error::new(
            Kind::Forbidden,
            "bad_signature",
            format!("{e} (edge {})", meta.edge_id),
        )
    })?;
    let _permit = gw.uploads.try_acquire().map_err(|_| {
        Error::new(
            Kind::Busy,
            "busy",
            "too many uploads at once; retry after a pause",
        )
    })?;
    let (edge, camera) = (meta.edge_id.clone(), meta.camera_id.clone());
    let body = body
        .into_data_stream()
        .map_err(std::io::Error::other)
        .boxed();
    let put = gw
        .store
        .put(meta, signature.into(), bl_proto::time::now(), body)
        .await
        .map_err(store_error)?;
    Ok(match put {
        Put::Created(stored) => {
            gw.metrics.stored(stored.meta.size);
            tracing::info!(%sha, %edge, %camera, size, "evidence stored");
            let mut r = (StatusCode::CREATED, axum::Json(stored)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/evidence/{sha}")) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Put::Existing(stored) => {
            gw.metrics.duplicate();
            tracing::debug!(%sha, %edge, "evidence already stored");
            (StatusCode::OK, axum::Json(stored)).into_response()
        }
    })
}

async fn get_evidence(
    State(gw): State<Arc<Gateway>>,
    Path(sha256): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let stored = authorized(&gw, &sha256, query.as_deref(), &headers).await?;
    let size = stored.meta.size;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, bytes) = match range::parse(range, size) {
        Ranged::Full => (StatusCode::OK, 0..size),
        Ranged::Partial(r) => (StatusCode::PARTIAL_CONTENT, r),
        Ranged::Unsatisfiable => {
            return Err(Error::new(
                Kind::RangeNotSatisfiable { size },
                "range_not_satisfiable",
                format!(
                    "the range {:?} lies outside this blob of {size} bytes",
                    range.unwrap_or("")
                ),
            ));
        }
    };
    let len = bytes.end - bytes.start;
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let stream = gw
            .store
            .read(&stored.meta.sha256, bytes.clone())
            .await
            .map_err(store_error)?;
        gw.metrics.served(len);
        Body::from_stream(stream)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    let mut set = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, stored.meta.content_type.clone());
    set(header::CONTENT_LENGTH, len.to_string());
    set(header::ETAG, format!("\"{}\"", stored.meta.sha256));
    set(header::ACCEPT_RANGES, "bytes".into());
    // The bytes never change, but they are only for token holders.
    set(header::CACHE_CONTROL, "private, max-age=3600".into());
    // The content type is the edge's word: never let a browser run it as a page on this origin.
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into());
    set(header::CONTENT_SECURITY_POLICY, "sandbox".into());
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", bytes.start, bytes.end - 1),
        );
    }
    Ok(response)
}

async fn get_meta(
    State(gw): State<Arc<Gateway>>,
    Path(sha256): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<axum::Json<StoredEvidence>> {
    Ok(axum::Json(
        authorized(&gw, &sha256, query.as_deref(), &headers).await?,
    ))
}

/// Token first (so nothing is revealed without one), then the lookup, then the camera check.
async fn authorized(
    gw: &Gateway,
    sha256: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<StoredEvidence> {
    let claims = gw.tokens.authenticate(headers, query)?;
    let sha = parse_sha(sha256)?;
    let stored = gw
        .store
        .get(&sha)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            Error::new(
                Kind::NotFound,
                "not_found",
                format!("evidence {sha} is not stored (it may still be arriving from the edge)"),
            )
        })?;
    gw.tokens
        .authorize(&claims, &stored.meta.camera_id, MediaAction::View)?;
    Ok(stored)
}

fn parse_sha(s: &str) -> Result<Sha256Hex> {
    Sha256Hex::new(s).map_err(|e| Error::bad_request("bad_sha256", e.to_string()))
}

fn content_length(headers: &HeaderMap) -> Result<u64> {
    let value = headers.get(header::CONTENT_LENGTH).ok_or_else(|| {
        Error::new(
            Kind::LengthRequired,
            "length_required",
            "evidence uploads need Content-Length: the size is part of what the edge signs",
        )
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::bad_request("bad_header", "Content-Length is not a number"))
}

fn header_error(e: EvidenceError) -> Error {
    let code = match e {
        EvidenceError::MissingHeader(_) => "missing_header",
        EvidenceError::BadSha256(_) => "bad_sha256",
        EvidenceError::BadHeader { .. } | EvidenceError::Signature(_) => "bad_header",
    };
    Error::bad_request(code, e.to_string())
}

/// The one place store failures become coded errors.
fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::HashMismatch { .. } => {
            Error::new(Kind::Unprocessable, "hash_mismatch", e.to_string())
        }
        StoreError::SizeMismatch { .. } => Error::bad_request("size_mismatch", e.to_string()),
        StoreError::Body(_) => Error::bad_request("upload_incomplete", e.to_string()),
        StoreError::StorageFull { .. } => {
            tracing::error!(err = %e, "evidence disk is full; uploads are refused until space is freed");
            Error::new(
                Kind::StorageFull,
                "storage_full",
                "the gateway's evidence disk is full; nothing was stored, retry later",
            )
        }
        StoreError::Corrupt { .. } | StoreError::Io { .. } => {
            Error::internal("the evidence store", e)
        }
    }
}
