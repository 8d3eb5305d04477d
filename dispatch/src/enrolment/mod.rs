//! Edge enrolment (DESIGN §6): an admin registers an edge box for a premises and gets a one-time
//! code; the box, installed on site, sends the code with its Ed25519 public key to
//! `POST /api/enrol` and gets its own MQTT credentials back. The key then verifies the box's
//! evidence signatures; the credentials let it publish under `bl/v1/edge/{edge}/` only (the
//! broker's ACL).

pub mod mosquitto;

use crate::AppState;
use crate::audit::{Action, Audit, Event, Who};
use crate::error::{Error, Kind, Result};
use bl_service::config::{ConfigError, field_error};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

/// `[enrolment]`: how long codes live and how edges get broker accounts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentConfig {
    /// How long a new enrolment code stays valid. Default 86400 (one day); 300–2592000.
    #[serde(default = "default_code_ttl_secs")]
    pub code_ttl_secs: u64,
    /// The broker address edges are told to use (as they reach it, which may differ from how
    /// dispatch does). Required.
    pub broker_host: String,
    /// Default 1883.
    #[serde(default = "default_broker_port")]
    pub broker_port: u16,
    /// mosquitto's `password_file`, where edge accounts are written. Required.
    pub mosquitto_password_file: PathBuf,
    /// The lock file every writer of the password file takes. Default: the password file's path
    /// with `.lock` appended.
    #[serde(default)]
    pub mosquitto_lock_file: Option<PathBuf>,
    /// mosquitto's pid file; the broker gets SIGHUP to reload accounts. Default: none (no reload).
    #[serde(default)]
    pub mosquitto_pid_file: Option<PathBuf>,
}

fn default_code_ttl_secs() -> u64 {
    86_400
}

fn default_broker_port() -> u16 {
    1883
}

impl EnrolmentConfig {
    pub fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        if !(300..=2_592_000).contains(&self.code_ttl_secs) {
            return Err(field_error(
                file,
                "enrolment.code_ttl_secs",
                "must be between 300 (5 minutes) and 2592000 (30 days)",
            ));
        }
        if self.broker_host.trim().is_empty() {
            return Err(field_error(
                file,
                "enrolment.broker_host",
                "must name the broker address edges connect to",
            ));
        }
        Ok(())
    }

    /// The broker accounts this configuration writes to.
    pub fn broker(&self) -> Arc<dyn Broker> {
        let lock = self.mosquitto_lock_file.clone().unwrap_or_else(|| {
            let mut p = self.mosquitto_password_file.clone().into_os_string();
            p.push(".lock");
            p.into()
        });
        Arc::new(mosquitto::PasswordFile {
            path: self.mosquitto_password_file.clone(),
            lock,
            pid_file: self.mosquitto_pid_file.clone(),
        })
    }
}

/// Where edge broker accounts are kept. Blocking; callers run it off the async workers.
pub trait Broker: Send + Sync {
    /// Creates the account or replaces its password.
    fn set_password(&self, username: &str, password: &str) -> std::io::Result<()>;
}

impl Broker for mosquitto::PasswordFile {
    fn set_password(&self, username: &str, password: &str) -> std::io::Result<()> {
        self.set(username, password)
    }
}

/// `POST /api/enrol`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrolRequest {
    pub edge_id: String,
    pub code: String,
    /// The box's Ed25519 public key, 32 bytes as hex or base64.
    pub public_key: String,
}

/// What the box needs to connect.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Enrolled {
    pub edge_id: String,
    pub premises_id: Uuid,
    pub enrolled_at: DateTime<Utc>,
    pub mqtt: MqttGrant,
}

/// The box's own broker account; the password is shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MqttGrant {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
}

fn refused(edge: &str) -> Error {
    Error::new(
        Kind::Unauthenticated,
        "enrolment_refused",
        format!(
            "edge {edge:?} cannot enrol with this code: the edge is unknown, or the code is wrong, \
             expired or used; ask an administrator for a new code (POST /api/edges/{{id}}/enrolment-code)"
        ),
    )
}

/// Checks the code, issues broker credentials and registers the key — the code is used up only
/// when all of it succeeded, so a failed attempt (broker unavailable) can simply be repeated.
/// No lock-out is needed against guessing: a code is 128 random bits and lives a day.
pub async fn enrol(
    app: &AppState,
    config: &EnrolmentConfig,
    broker: Arc<dyn Broker>,
    request: EnrolRequest,
    audit: &Audit,
) -> Result<Enrolled> {
    let now = app.now();
    let key = bl_proto::keys::parse_public(&request.public_key)
        .map_err(|e| Error::bad_request("invalid_public_key", format!("field publicKey {e}")))?;
    let mut tx = app.pool.begin().await?;
    let row: Option<(Uuid, Option<String>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT premises_id, enrolment_code_hash, enrolment_expires_at FROM edges WHERE id = $1 FOR UPDATE",
    )
    .bind(&request.edge_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((premises_id, Some(hash), Some(expires))) = row else {
        return Err(refused(&request.edge_id));
    };
    let offered = crate::registry::cameras::enrolment_code_hash(request.code.trim());
    if !crate::auth::constant_time_eq(offered.as_bytes(), hash.as_bytes()) || expires <= now {
        return Err(refused(&request.edge_id));
    }
    let password = crate::auth::random_token(24);
    let (user, pw) = (request.edge_id.clone(), password.clone());
    tokio::task::spawn_blocking(move || broker.set_password(&user, &pw))
        .await
        .map_err(|e| Error::internal("broker account", e))?
        .map_err(|e| {
            tracing::error!(edge = %request.edge_id, error = %e, "cannot write the edge's broker account");
            Error::new(
                Kind::Unavailable,
                "broker_unavailable",
                "the broker account could not be written; the code is still valid, try again shortly",
            )
        })?;
    sqlx::query(
        "UPDATE edges SET public_key = $2, enrolled_at = $3, enrolment_code_hash = NULL, \
         enrolment_expires_at = NULL WHERE id = $1",
    )
    .bind(&request.edge_id)
    .bind(key.as_bytes().as_slice())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let event = Event::new(Action::EdgeEnrol)
        .object("edge", &request.edge_id)
        .details(serde_json::json!({"publicKey": bl_proto::keys::encode_public(&key)}));
    audit
        .by(Who::Service(format!("edge:{}", request.edge_id)))
        .append(&mut tx, app, event)
        .await?;
    tx.commit().await?;
    tracing::info!(edge = %request.edge_id, "edge enrolled");
    Ok(Enrolled {
        edge_id: request.edge_id.clone(),
        premises_id,
        enrolled_at: now,
        mqtt: MqttGrant {
            host: config.broker_host.clone(),
            port: config.broker_port,
            username: request.edge_id,
            password,
        },
    })
}

/// A fresh one-time code for an existing edge (a new box, or a re-install); the old key stays
/// until the box enrols with it. None when the edge does not exist.
pub async fn new_code(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    edge_id: &str,
    valid_for: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Option<(String, DateTime<Utc>)>> {
    let code = crate::auth::random_token(16);
    let expires = now + valid_for;
    let updated = sqlx::query(
        "UPDATE edges SET enrolment_code_hash = $2, enrolment_expires_at = $3 WHERE id = $1",
    )
    .bind(edge_id)
    .bind(crate::registry::cameras::enrolment_code_hash(&code))
    .bind(expires)
    .execute(&mut **tx)
    .await?;
    Ok((updated.rows_affected() == 1).then_some((code, expires)))
}
