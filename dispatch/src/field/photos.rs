//! Field photos: stored content-addressed by SHA-256 in `photos` (the same bytes twice are one
//! row) and linked to incidents in `incident_photos`; triggers refuse UPDATE, DELETE and TRUNCATE
//! on both, so evidence once stored stays as it was.
//!
//! The media gateway's evidence store accepts only blobs signed by an edge's device key, so phone
//! photos live here until it accepts user uploads.

use crate::incident::IncidentId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

/// The image types a photo may be, by their first bytes.
pub const TYPES: [(&str, &[u8]); 2] = [
    ("image/jpeg", &[0xFF, 0xD8, 0xFF]),
    (
        "image/png",
        &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A],
    ),
];

/// Why an upload is not a photo we keep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAPhoto {
    #[error("Content-Type {0:?} is not image/jpeg or image/png")]
    ContentType(String),
    #[error("the body is empty")]
    Empty,
    #[error("the body does not start like a {0} file (bad magic bytes)")]
    Magic(&'static str),
}

/// Checks that `bytes` are what `content_type` says (JPEG or PNG by magic bytes); returns the
/// canonical content type.
pub fn check(content_type: &str, bytes: &[u8]) -> Result<&'static str, NotAPhoto> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (name, magic) = TYPES
        .iter()
        .find(|(name, _)| *name == essence)
        .ok_or_else(|| NotAPhoto::ContentType(content_type.chars().take(80).collect()))?;
    if bytes.is_empty() {
        return Err(NotAPhoto::Empty);
    }
    if !bytes.starts_with(magic) {
        return Err(NotAPhoto::Magic(name));
    }
    Ok(name)
}

/// Lower-case hex SHA-256 of `bytes`: the photo's name.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `s` looks like a photo's name (64 lower-case hex digits).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Stores the bytes once (a second copy of the same bytes is a no-op).
pub async fn store_blob(
    conn: &mut PgConnection,
    sha256: &str,
    content_type: &str,
    bytes: &[u8],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO photos (sha256, content_type, size, bytes, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(content_type)
    .bind(bytes.len() as i32)
    .bind(bytes)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A photo of an incident as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Photo {
    pub sha256: String,
    pub content_type: String,
    pub size: i32,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub caption: String,
}

/// What is said about a photo when it is attached.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    pub incident: IncidentId,
    pub sha256: &'a str,
    pub by: Uuid,
    pub at: DateTime<Utc>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub caption: &'a str,
}

/// Links a stored photo to an incident; false when it was linked already.
pub async fn attach(conn: &mut PgConnection, a: &Attachment<'_>) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO incident_photos (incident_id, sha256, uploaded_by, uploaded_at, lat, lon, caption) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (incident_id, sha256) DO NOTHING",
    )
    .bind(a.incident)
    .bind(a.sha256)
    .bind(a.by)
    .bind(a.at)
    .bind(a.lat)
    .bind(a.lon)
    .bind(a.caption)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

const SELECT: &str = "SELECT ip.sha256, p.content_type, p.size, u.username AS uploaded_by, \
     ip.uploaded_at, ip.lat, ip.lon, ip.caption \
     FROM incident_photos ip JOIN photos p ON p.sha256 = ip.sha256 JOIN users u ON u.id = ip.uploaded_by";

/// The photos of an incident, oldest first.
pub async fn of_incident(
    conn: &mut PgConnection,
    incident: IncidentId,
) -> Result<Vec<Photo>, sqlx::Error> {
    sqlx::query_as::<_, Photo>(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ip.incident_id = $1 ORDER BY ip.uploaded_at, ip.sha256"
    )))
    .bind(incident)
    .fetch_all(conn)
    .await
}

/// One photo of an incident.
pub async fn get(
    conn: &mut PgConnection,
    incident: IncidentId,
    sha256: &str,
) -> Result<Option<Photo>, sqlx::Error> {
    sqlx::query_as::<_, Photo>(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ip.incident_id = $1 AND ip.sha256 = $2"
    )))
    .bind(incident)
    .bind(sha256)
    .fetch_optional(conn)
    .await
}

/// Which of `hashes` are not photos of `incident`.
pub async fn not_of_incident(
    conn: &mut PgConnection,
    incident: IncidentId,
    hashes: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT h FROM unnest($2::text[]) AS h WHERE NOT EXISTS \
         (SELECT 1 FROM incident_photos WHERE incident_id = $1 AND sha256 = h)",
    )
    .bind(incident)
    .bind(hashes)
    .fetch_all(conn)
    .await
}

/// The incidents (town, routed team) a photo belongs to, for the scope check before it is shown.
pub async fn owners(
    conn: &mut PgConnection,
    sha256: &str,
) -> Result<Vec<(String, Option<Uuid>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.town_id, i.routed_team_id FROM incident_photos ip \
         JOIN incidents i ON i.id = ip.incident_id WHERE ip.sha256 = $1",
    )
    .bind(sha256)
    .fetch_all(conn)
    .await
}

/// A stored photo's content type and bytes.
pub async fn bytes(
    conn: &mut PgConnection,
    sha256: &str,
) -> Result<Option<(String, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as("SELECT content_type, bytes FROM photos WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F'];

    #[test]
    fn jpeg_and_png_pass_when_their_bytes_match_their_content_type() {
        assert_eq!(check("image/jpeg", JPEG), Ok("image/jpeg"));
        assert_eq!(check("image/png", PNG), Ok("image/png"));
        assert_eq!(check("Image/PNG; charset=binary", PNG), Ok("image/png"));
    }

    #[test]
    fn a_mismatch_an_empty_body_or_another_type_is_named() {
        assert_eq!(
            check("image/jpeg", PNG),
            Err(NotAPhoto::Magic("image/jpeg"))
        );
        assert_eq!(
            check("image/png", b"GIF89a"),
            Err(NotAPhoto::Magic("image/png"))
        );
        assert_eq!(check("image/png", b""), Err(NotAPhoto::Empty));
        assert!(matches!(
            check("image/gif", b"GIF89a"),
            Err(NotAPhoto::ContentType(t)) if t == "image/gif"
        ));
        assert!(
            check("image/jpeg", PNG)
                .unwrap_err()
                .to_string()
                .contains("magic")
        );
    }

    #[test]
    fn names_are_lower_case_sha256_hex() {
        let h = sha256_hex(b"abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256(&h));
        assert!(!is_sha256(&h.to_uppercase()));
        assert!(!is_sha256(&h[1..]));
        assert!(!is_sha256("../../etc/passwd"));
    }
}
