//! Idempotent writes for phones on weak links. A write may carry the header
//! `Idempotency-Key: <uuid>` (made once per intended action on the phone). Its first successful
//! answer is stored per user together with a fingerprint of the request, in the same transaction
//! as the change itself; a repeat with the same key and the same request gets that answer again
//! (header `Idempotent-Replayed: true`) and changes nothing, a repeat with the same key and another
//! request is refused with 409 `client_id_reused`. Failed requests store nothing: they changed
//! nothing, so a retry simply tries again.
//!
//! Handlers lock the incident row before [`Key::replay`], so two copies of one request that arrive
//! together are serialised and the second finds the first's answer.

use crate::error::{Error, Kind, Result};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

/// The request header that carries the client id.
pub const HEADER: &str = "idempotency-key";
/// Set on an answer that is a stored one.
pub const REPLAYED: &str = "idempotent-replayed";

/// The client id of a request, if it sent one: 400 `invalid_idempotency_key` unless a UUID.
pub fn client_id(headers: &HeaderMap) -> Result<Option<Uuid>> {
    let Some(v) = headers.get(HEADER) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|s| Uuid::parse_str(s.trim()).ok())
        .map(Some)
        .ok_or_else(|| {
            Error::bad_request(
                "invalid_idempotency_key",
                "the Idempotency-Key header must be a UUID made on the client for this one action",
            )
        })
}

/// SHA-256 over the route, the object it acts on and the body, each length-prefixed so that no two
/// different requests share a fingerprint by shifting bytes between parts.
pub fn fingerprint(route: &str, object: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [route.as_bytes(), object.as_bytes(), body] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// One request's idempotency key: who, which client id, which request.
#[derive(Debug, Clone)]
pub struct Key {
    pub user: Uuid,
    pub client_id: Uuid,
    pub fingerprint: [u8; 32],
}

impl Key {
    /// The key of a request, or `None` when it carries no `Idempotency-Key`.
    pub fn of(
        headers: &HeaderMap,
        user: Uuid,
        route: &str,
        object: &str,
        body: &[u8],
    ) -> Result<Option<Key>> {
        Ok(client_id(headers)?.map(|client_id| Key {
            user,
            client_id,
            fingerprint: fingerprint(route, object, body),
        }))
    }

    /// The stored answer of an earlier request with this key, if any; 409 `client_id_reused`
    /// when that request was a different one.
    pub async fn replay(&self, conn: &mut PgConnection) -> Result<Option<Answer>> {
        let row: Option<(Vec<u8>, i16, Value)> = sqlx::query_as(
            "SELECT fingerprint, status, response FROM client_requests \
             WHERE user_id = $1 AND client_id = $2",
        )
        .bind(self.user)
        .bind(self.client_id)
        .fetch_optional(conn)
        .await?;
        let Some((fingerprint, status, body)) = row else {
            return Ok(None);
        };
        if fingerprint != self.fingerprint {
            return Err(Error::new(
                Kind::Conflict,
                "client_id_reused",
                format!(
                    "Idempotency-Key {} was used for another request; make a new key for each action",
                    self.client_id
                ),
            ));
        }
        let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
        Ok(Some(Answer {
            status,
            body,
            replayed: true,
        }))
    }

    /// Stores the answer under this key (inside the transaction of the change).
    pub async fn remember(
        &self,
        conn: &mut PgConnection,
        answer: &Answer,
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO client_requests (user_id, client_id, fingerprint, status, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.user)
        .bind(self.client_id)
        .bind(&self.fingerprint[..])
        .bind(answer.status.as_u16() as i16)
        .bind(&answer.body)
        .bind(at)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Stores `answer` when the request has a key; returns it.
pub async fn finish(
    key: Option<&Key>,
    conn: &mut PgConnection,
    answer: Answer,
    at: DateTime<Utc>,
) -> Result<Answer> {
    if let Some(k) = key {
        k.remember(conn, &answer, at).await?;
    }
    Ok(answer)
}

/// A JSON answer that can be stored and replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub replayed: bool,
}

impl Answer {
    pub fn new(status: StatusCode, body: impl serde::Serialize) -> Result<Answer> {
        let body =
            serde_json::to_value(body).map_err(|e| Error::internal("encoding an answer", e))?;
        Ok(Answer {
            status,
            body,
            replayed: false,
        })
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body)).into_response();
        if self.replayed {
            r.headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_is_none_and_a_key_that_is_not_a_uuid_is_refused_by_name() {
        assert_eq!(client_id(&HeaderMap::new()).unwrap(), None);
        let mut h = HeaderMap::new();
        let id = Uuid::now_v7();
        h.insert(HEADER, id.to_string().parse().unwrap());
        assert_eq!(client_id(&h).unwrap(), Some(id));
        h.insert(HEADER, "retry-1".parse().unwrap());
        assert_eq!(client_id(&h).unwrap_err().code, "invalid_idempotency_key");
    }

    #[test]
    fn the_fingerprint_changes_with_route_object_or_body_and_parts_do_not_run_together() {
        let f = fingerprint("note", "i1", b"{\"text\":\"a\"}");
        assert_eq!(f, fingerprint("note", "i1", b"{\"text\":\"a\"}"));
        assert_ne!(f, fingerprint("note", "i2", b"{\"text\":\"a\"}"));
        assert_ne!(f, fingerprint("photo", "i1", b"{\"text\":\"a\"}"));
        assert_ne!(f, fingerprint("note", "i1", b"{\"text\":\"b\"}"));
        assert_ne!(fingerprint("ab", "c", b""), fingerprint("a", "bc", b""));
    }
}
