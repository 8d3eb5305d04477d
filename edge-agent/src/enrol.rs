//! `edge-agent enrol`: the box's first contact with the center (DESIGN §6). The installer brings the
//! one-time code an administrator got from `POST /api/edges`; the box makes (or keeps) its Ed25519
//! device key, sends the code and the public key to dispatch's `POST /api/enrol`, and stores the
//! broker password it gets back. What it prints is the `edge.toml` head that lets `edge-agent run`
//! log in; the `[[camera]]` tables follow it.
//!
//! Files in the enrolment folder:
//! - `device.key`: the private key, the 32-byte seed as unpadded base64url (mode 0600), the format
//!   every Brightline key file has (`bl_proto::keys`, the gateway's keyfile); `device.key.pub` beside
//!   it. An existing key is reused, so enrolling again (a new code after a re-install) keeps the
//!   identity evidence is signed with.
//! - `mqtt.password`: the broker password (mode 0600), replaced at every enrolment, since dispatch
//!   issues a fresh one each time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bl_proto::keys::{self, KeyTextError};
use bl_proto::{EdgeId, SigningKey};
use bl_service::secret::Secret;
use serde::Deserialize;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The private device key in the enrolment folder.
pub const KEY_FILE: &str = "device.key";
/// The broker password in the enrolment folder.
pub const PASSWORD_FILE: &str = "mqtt.password";

/// How long one enrolment request may take before the box gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong, in words an installer can act on.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the existing device key {source}; move it away to make a new one")]
    BadKey {
        path: PathBuf,
        #[source]
        source: KeyTextError,
    },
    #[error("the dispatch address {0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("cannot reach dispatch at {url}: {reason}; check the address and the box's network")]
    Unreachable { url: String, reason: String },
    #[error("dispatch refused the enrolment: {0}")]
    Refused(String),
    #[error("dispatch answered {status} ({code}): {message}")]
    Failed {
        status: u16,
        code: String,
        message: String,
    },
    #[error("dispatch answered {status} with something that is not an enrolment: {detail}")]
    BadAnswer { status: u16, detail: String },
    #[error("dispatch issued broker user {got:?}, but the box logs in as its edge id {expected:?}")]
    OtherUser { expected: String, got: String },
}

/// The broker account dispatch issued.
#[derive(Debug, Clone, Deserialize)]
pub struct MqttGrant {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Enrolled {
    mqtt: MqttGrant,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// A finished enrolment: where things were written and what the agent's config needs.
#[derive(Debug)]
pub struct Enrolment {
    pub edge_id: EdgeId,
    pub public_key: String,
    /// True when this run made the device key, false when it reused one.
    pub new_key: bool,
    pub key_file: PathBuf,
    pub password_file: PathBuf,
    pub host: String,
    pub port: u16,
    /// dispatch's base URL, as the installer gave it.
    pub center_url: String,
}

impl Enrolment {
    /// The head of `edge.toml`: who the box is, how it reaches dispatch and the broker. Valid
    /// TOML, so it can be redirected into the file and the `[[camera]]` tables appended; `[mqtt]`
    /// comes last, so broker settings appended to the head (`state_interval_secs`) land in it.
    pub fn config_lines(&self) -> String {
        format!(
            "# Written by `edge-agent enrol`; device key {key} (public {public}).\n\
             edge_id = \"{edge}\"\n\
             [center]\n\
             url = {center}\n\
             device_key_file = {key_file}\n\
             [mqtt]\n\
             host = {host}\n\
             port = {port}\n\
             password_file = {password}\n",
            key = self.key_file.display(),
            public = self.public_key,
            edge = self.edge_id,
            host = toml_string(&self.host),
            port = self.port,
            password = toml_string(&self.password_file.display().to_string()),
            center = toml_string(self.center_url.trim_end_matches('/')),
            key_file = toml_string(&self.key_file.display().to_string()),
        )
    }
}

/// A TOML basic string (quotes and backslashes escaped).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Enrols the box: key, request, password file. `dir` is created (mode 0700) if missing.
pub async fn enrol(
    dispatch: &str,
    edge_id: &EdgeId,
    code: &Secret,
    dir: &Path,
) -> Result<Enrolment, EnrolError> {
    let url = enrol_url(dispatch)?;
    create_dir(dir)?;
    let key_file = dir.join(KEY_FILE);
    let (key, new_key) = device_key(&key_file)?;
    let public_key = keys::encode_public(&key.verifying_key());
    let grant = request(&url, edge_id, code, &public_key).await?;
    if grant.username != edge_id.as_str() {
        return Err(EnrolError::OtherUser {
            expected: edge_id.to_string(),
            got: grant.username,
        });
    }
    let password_file = dir.join(PASSWORD_FILE);
    write_private(&password_file, &format!("{}\n", grant.password.expose()))?;
    Ok(Enrolment {
        edge_id: edge_id.clone(),
        public_key,
        new_key,
        key_file,
        password_file,
        host: grant.host,
        port: grant.port,
        center_url: dispatch.to_string(),
    })
}

/// `{base}/api/enrol`, refusing anything that is not an HTTP URL.
fn enrol_url(dispatch: &str) -> Result<String, EnrolError> {
    let base = dispatch.trim().trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
        return Err(EnrolError::BadUrl(dispatch.to_owned()));
    }
    Ok(format!("{base}/api/enrol"))
}

fn create_dir(dir: &Path) -> Result<(), EnrolError> {
    let file_error = |source| EnrolError::File {
        path: dir.to_owned(),
        source,
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(file_error)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(file_error)?;
    }
    Ok(())
}

/// The key in `path`, or a new one written there (and its public half to `path.pub`).
pub fn device_key(path: &Path) -> Result<(SigningKey, bool), EnrolError> {
    let file_error = |source| EnrolError::File {
        path: path.to_owned(),
        source,
    };
    match Secret::from_file(path) {
        Ok(text) => {
            let seed = keys::decode_bytes(text.expose()).map_err(|source| EnrolError::BadKey {
                path: path.to_owned(),
                source,
            })?;
            return Ok((SigningKey::from_bytes(&seed), false));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(e)),
    }
    let mut seed = [0u8; 32];
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut seed)
        .map_err(|e| file_error(std::io::Error::other(e)))?;
    let key = SigningKey::from_bytes(&seed);
    write_private(path, &format!("{}\n", URL_SAFE_NO_PAD.encode(seed)))?;
    let mut public = path.as_os_str().to_owned();
    public.push(".pub");
    let public = PathBuf::from(public);
    std::fs::write(
        &public,
        format!("{}\n", keys::encode_public(&key.verifying_key())),
    )
    .map_err(|source| EnrolError::File {
        path: public,
        source,
    })?;
    Ok((key, true))
}

/// Writes `text` to `path` readable by the owner only: a file beside it, fsynced, renamed over.
fn write_private(path: &Path, text: &str) -> Result<(), EnrolError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|source| EnrolError::File {
        path: path.to_owned(),
        source,
    })
}

async fn request(
    url: &str,
    edge_id: &EdgeId,
    code: &Secret,
    public_key: &str,
) -> Result<MqttGrant, EnrolError> {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| unreachable(url, &e))?;
    let body = serde_json::json!({
        "edgeId": edge_id.as_str(),
        "code": code.expose().trim(),
        "publicKey": public_key,
    });
    let response = client
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| unreachable(url, &e))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| unreachable(url, &e))?;
    answer(status, &text)
}

fn unreachable(url: &str, e: &reqwest::Error) -> EnrolError {
    // reqwest's own Display is terse ("error sending request"); the cause says what happened.
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    EnrolError::Unreachable {
        url: url.to_owned(),
        reason,
    }
}

/// Reads dispatch's answer: the grant, or its coded error in words.
fn answer(status: u16, text: &str) -> Result<MqttGrant, EnrolError> {
    if (200..300).contains(&status) {
        return serde_json::from_str::<Enrolled>(text)
            .map(|e| e.mqtt)
            .map_err(|e| EnrolError::BadAnswer {
                status,
                detail: e.to_string(),
            });
    }
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(ErrorBody { error }) if error.code == "enrolment_refused" => {
            Err(EnrolError::Refused(error.message))
        }
        Ok(ErrorBody { error }) => Err(EnrolError::Failed {
            status,
            code: error.code,
            message: error.message,
        }),
        Err(_) => Err(EnrolError::BadAnswer {
            status,
            detail: text.chars().take(200).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_private_to_its_owner_and_is_reused_the_next_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let (key, new) = device_key(&path).unwrap();
        assert!(new);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let public = std::fs::read_to_string(dir.path().join("device.key.pub")).unwrap();
        assert_eq!(
            keys::parse_public(&public).unwrap(),
            key.verifying_key(),
            "the .pub file holds the public half"
        );
        let (again, new) = device_key(&path).unwrap();
        assert!(!new);
        assert_eq!(again.verifying_key(), key.verifying_key());
    }

    #[test]
    fn a_damaged_key_file_is_named_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, "not a key\n").unwrap();
        let e = device_key(&path).unwrap_err().to_string();
        assert!(
            e.contains("device.key") && e.contains("move it away"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key\n");
    }

    #[test]
    fn a_refused_code_says_so_in_dispatchs_words() {
        let body = r#"{"error":{"code":"enrolment_refused","message":"edge \"e\" cannot enrol with this code"}}"#;
        let e = answer(401, body).unwrap_err().to_string();
        assert_eq!(
            e,
            "dispatch refused the enrolment: edge \"e\" cannot enrol with this code"
        );
        let busy = r#"{"error":{"code":"broker_unavailable","message":"try again shortly"}}"#;
        let e = answer(503, busy).unwrap_err().to_string();
        assert!(e.contains("503") && e.contains("broker_unavailable"), "{e}");
        let e = answer(502, "<html>bad gateway</html>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("502") && e.contains("bad gateway"), "{e}");
    }

    #[test]
    fn a_grant_is_read_and_its_password_never_prints() {
        let body = r#"{"edgeId":"e","premisesId":"0190b7a0-0000-7000-8000-000000000000","enrolledAt":"2026-11-23T22:15:00Z","mqtt":{"host":"10.1.2.3","port":8883,"username":"e","password":"s3cret"}}"#;
        let grant = answer(200, body).unwrap();
        assert_eq!((grant.host.as_str(), grant.port), ("10.1.2.3", 8883));
        assert_eq!(grant.password.expose(), "s3cret");
        assert!(!format!("{grant:?}").contains("s3cret"));
    }

    #[test]
    fn only_http_urls_are_taken_and_a_trailing_slash_does_not_matter() {
        assert_eq!(
            enrol_url("http://10.0.0.1:8080/").unwrap(),
            "http://10.0.0.1:8080/api/enrol"
        );
        assert!(enrol_url("10.0.0.1:8080").is_err());
        assert!(enrol_url("ftp://x").is_err());
    }

    #[test]
    fn the_printed_lines_are_an_edge_toml_head_the_agent_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let enrolment = Enrolment {
            edge_id: EdgeId::new("zt-box-1").unwrap(),
            public_key: "pk".into(),
            new_key: true,
            key_file: dir.path().join(KEY_FILE),
            password_file: dir.path().join(PASSWORD_FILE),
            host: "broker.example".into(),
            port: 18883,
            center_url: "https://dispatch.example/".into(),
        };
        std::fs::write(dir.path().join(PASSWORD_FILE), "pw\n").unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(&path, enrolment.config_lines()).unwrap();
        let config = crate::config::Config::load(&path).unwrap();
        assert_eq!(config.edge_id.as_str(), "zt-box-1");
        assert_eq!(config.mqtt.port, 18883);
        assert_eq!(config.mqtt_password().unwrap().expose(), "pw");
        let center = config.center.unwrap();
        assert_eq!(center.url, "https://dispatch.example");
        assert_eq!(center.device_key_file, dir.path().join(KEY_FILE));
    }
}
