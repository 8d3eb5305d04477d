//! `GET /api/edge-voice/{sha256}`: an edge box downloads the recording of a voice message its
//! EdgeConfig names (`crate::warning::edges`), once, by hash.
//!
//! **Only an enrolled box, and only the recordings it plays.** The box has no session: it signs
//! (edge id, hash, time) with its Ed25519 device key, the key registered at enrolment
//! (`bl_proto::voice::sign_fetch`); a request signed more than 5 minutes from dispatch's clock is
//! refused, and so is a hash that is not in the box's current warning set. Voice prompts are not
//! secret, so a replay within those minutes gains nothing; this is no open file server.

use super::Path;
use crate::AppState;
use crate::error::{Error, Kind, Result};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bl_proto::evidence::{HEADER_EDGE, HEADER_SIGNATURE, Sha256Hex};
use bl_proto::voice::{self, HEADER_AT};
use bl_proto::{EdgeId, VerifyingKey};
use std::sync::Arc;

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Error::new(
                Kind::Unauthenticated,
                "unsigned",
                format!("the {name} header is missing: a fetch is signed by the box's device key"),
            )
        })
}

fn refused(message: impl Into<String>) -> Error {
    Error::new(Kind::Unauthenticated, "bad_signature", message)
}

/// `GET /api/edge-voice/{sha256}`
#[utoipa::path(
    get,
    path = "/api/edge-voice/{sha256}",
    summary = "A voice message's recording, for the edge box whose warnings play it",
    params(
        ("sha256" = String, Path, description = "SHA-256 of the recording, as in the EdgeConfig"),
        ("X-Bl-Edge" = String, Header, description = "The box's edge id"),
        ("X-Bl-At" = i64, Header, description = "When it signed, UTC milliseconds"),
        ("X-Bl-Signature" = String, Header, description = "Ed25519 signature by the box's device key (bl_proto::voice::sign_fetch)"),
    ),
    responses(
        (status = 200, description = "The WAV bytes", content_type = "audio/wav"),
        (status = 401, description = "`unsigned` or `bad_signature`: a header is missing, the signature or its time does not verify, or the box is not enrolled"),
        (status = 404, description = "`not_found`: the box's warnings play no such recording"),
    )
)]
pub async fn fetch(
    State(app): State<Arc<AppState>>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let sha256 = Sha256Hex::new(sha256).map_err(|e| Error::invalid_field("sha256", e))?;
    let edge = EdgeId::new(header_str(&headers, HEADER_EDGE)?)
        .map_err(|e| refused(format!("{HEADER_EDGE}: {e}")))?;
    let at: i64 = header_str(&headers, HEADER_AT)?
        .parse()
        .map_err(|_| refused(format!("{HEADER_AT} is not milliseconds since the epoch")))?;
    let signature = header_str(&headers, HEADER_SIGNATURE)?;
    let key: Option<Vec<u8>> = sqlx::query_scalar("SELECT public_key FROM edges WHERE id = $1")
        .bind(edge.as_str())
        .fetch_optional(&app.pool)
        .await?
        .flatten();
    let key = key
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok())
        .ok_or_else(|| refused(format!("edge {edge} is not enrolled")))?;
    let now = app.now().timestamp_millis();
    if let Err(e) = voice::verify_fetch(&edge, &sha256, at, now, signature, &key) {
        tracing::warn!(edge = %edge, err = %e, "voice fetch refused");
        return Err(refused(e.to_string()));
    }
    let mut conn = app.pool.acquire().await?;
    if !crate::warning::edges::edge_plays(&mut conn, edge.as_str(), &sha256).await? {
        return Err(Error::not_found("voice recording of this box's warnings"));
    }
    let bytes: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT audio FROM voice_messages WHERE sha256 = $1 LIMIT 1")
            .bind(sha256.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
    let bytes = bytes.ok_or_else(|| Error::not_found("voice recording"))?;
    tracing::info!(edge = %edge, sha256 = %sha256, bytes = bytes.len(), "voice recording fetched by its box");
    Ok(([(header::CONTENT_TYPE, "audio/wav")], bytes).into_response())
}
