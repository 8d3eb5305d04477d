//! dispatch's configuration file (TOML). Every field has a default stated in its doc comment; unknown
//! fields are errors; [`Config::validate`] names the field that breaks a rule.

use crate::clocks::ClocksConfig;
use crate::enrolment::EnrolmentConfig;
use crate::escalation::EscalationConfig;
use crate::incident::policy::IncidentsConfig;
use bl_service::config::{ConfigError, field_error};
use bl_service::secret::Secret;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on. Default `"127.0.0.1:8080"`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The 13 towns and streets, a TSV file (`id name_zh name_en kind lat lon`), imported at every start.
    /// A relative path is taken from the working directory. Default `"../shared/data-towns.tsv"`
    /// (the repository root is the working directory of `make demo`).
    #[serde(default = "default_towns_file")]
    pub towns_file: PathBuf,
    /// A file holding the first admin's password, used only when no `admin` exists yet. Default: none,
    /// then a random password is made and printed once to stdout as `admin password: …`.
    #[serde(default)]
    pub admin_password_file: Option<PathBuf>,
    /// Fill an empty registry with demo premises, teams, rosters and users at start. Default `false`.
    #[serde(default)]
    pub demo_data: bool,
    /// PostgreSQL.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Web sessions.
    #[serde(default)]
    pub session: SessionConfig,
    /// Login throttling.
    #[serde(default)]
    pub login: LoginConfig,
    /// Password hashing (argon2id).
    #[serde(default)]
    pub password: PasswordConfig,
    /// The MQTT broker the edges report to. Default: none, then no edge intake runs (a warning says so).
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
    /// Incident tiers, dedup cooldown and suggested severity (see [`IncidentsConfig`]).
    #[serde(default)]
    pub incidents: IncidentsConfig,
    /// Escalation policies per tier and the timer worker (see [`EscalationConfig`]).
    #[serde(default)]
    pub escalation: EscalationConfig,
    /// Live view and talk tokens (see [`MediaConfig`]). Default: none, then `POST /api/cameras/{id}/live`
    /// and `/talk` answer 503 `media_not_configured`.
    #[serde(default)]
    pub media: Option<MediaConfig>,
    /// Edge enrolment (see [`EnrolmentConfig`]). Default: none, then `POST /api/enrol` answers 503
    /// `enrolment_not_configured` (edges can still be registered and given codes).
    #[serde(default)]
    pub enrolment: Option<EnrolmentConfig>,
    /// Outbound notification channels and their sender (see [`crate::notify::NotifyConfig`]).
    #[serde(default)]
    pub notify: crate::notify::NotifyConfig,
    /// Incident clocks: targets, at-risk point, escalation, holiday table (see [`ClocksConfig`]).
    #[serde(default)]
    pub clocks: ClocksConfig,
    /// Field photos and camera re-checks (see [`crate::field::FieldConfig`]).
    #[serde(default)]
    pub field: crate::field::FieldConfig,
    /// The consoles' WebSocket (see [`crate::ws::WsConfig`]).
    #[serde(default)]
    pub ws: crate::ws::WsConfig,
    /// Drills: printing after-action reports to PDF, playing scene injects on camsim (see
    /// [`crate::drill::config::DrillsConfig`]).
    #[serde(default)]
    pub drills: crate::drill::config::DrillsConfig,
    /// The built web console and field app (`make web`), served at `/` and `/field`. A relative
    /// path is taken from the working directory. Default `"web/dist"`.
    #[serde(default = "default_web_dir")]
    pub web_dir: PathBuf,
}

/// `[media]`: the media-token key and the gateway nodes that own cameras.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// File holding dispatch's Ed25519 private key (the 32-byte seed as hex or base64; the gateways
    /// are configured with its public key). Required.
    pub signing_key_file: PathBuf,
    /// The key, read from `signing_key_file` by [`Config::load`] (tests set it directly).
    #[serde(skip)]
    pub signing_key: Option<crate::media::MediaKey>,
    /// Lifetime of a live or talk token in seconds. Default `60`; 10 to 600.
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// The gateway nodes (`[[media.gateway]]`); each camera belongs to one by rendezvous hashing.
    /// At least one.
    #[serde(default)]
    pub gateway: Vec<GatewayConfig>,
}

/// `[[media.gateway]]`: one gateway node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The node id, as configured on the gateway (`bl_proto::GatewayNodeId` rules). Required.
    pub node: String,
    /// Base URL browsers reach it at, e.g. `"http://127.0.0.1:8090"`; WHEP/WHIP paths are appended.
    /// Required.
    pub url: String,
    /// File holding this node's service token for `/internal` routes (at least 32 characters).
    /// Default: none, then the node cannot fetch camera sources.
    #[serde(default)]
    pub service_token_file: Option<PathBuf>,
    /// The token's digest, read from `service_token_file` by [`Config::load`] (tests set it directly).
    #[serde(skip)]
    pub service_token: Option<crate::auth::service::ServiceToken>,
}

impl MediaConfig {
    /// The configured node ids, in config order (validated by [`Config::validate`]).
    pub fn nodes(&self) -> Vec<bl_proto::GatewayNodeId> {
        self.gateway
            .iter()
            .filter_map(|g| bl_proto::GatewayNodeId::new(g.node.clone()).ok())
            .collect()
    }

    /// The base URL of `node` (without a trailing '/').
    pub fn url_of(&self, node: &bl_proto::GatewayNodeId) -> Option<&str> {
        self.gateway
            .iter()
            .find(|g| g.node == node.as_str())
            .map(|g| g.url.trim_end_matches('/'))
    }
}

fn default_token_ttl() -> u64 {
    60
}

/// `[mqtt]`: edge intake.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host. Default `"127.0.0.1"`.
    #[serde(default = "default_mqtt_host")]
    pub host: String,
    /// Broker port. Default `1883`.
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// dispatch's service account. Default `"dispatch"`.
    #[serde(default = "default_mqtt_username")]
    pub username: String,
    /// File holding the service account's password. Required.
    pub password_file: PathBuf,
    /// The password, read from `password_file` by [`Config::load`] (tests set it directly).
    #[serde(skip)]
    pub password: Option<Secret>,
    /// This replica's MQTT client id; the broker keeps its session (and unacknowledged events) across
    /// restarts under it, so each replica needs its own, stable one. Default `"dispatch-1"`.
    #[serde(default = "default_mqtt_client_id")]
    pub client_id: String,
    /// The shared-subscription group all replicas join, so each event goes to one of them.
    /// Default `"dispatch"`.
    #[serde(default = "default_share_group")]
    pub share_group: String,
}

fn default_mqtt_host() -> String {
    "127.0.0.1".into()
}
fn default_mqtt_port() -> u16 {
    1883
}
fn default_mqtt_username() -> String {
    "dispatch".into()
}
fn default_mqtt_client_id() -> String {
    "dispatch-1".into()
}
fn default_share_group() -> String {
    "dispatch".into()
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// File holding the PostgreSQL URL (`postgres://user:password@host:port/db`); it is a secret, so it
    /// never appears in this file. Default: none; required.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// The URL itself, read from `url_file` by [`Config::load`] (tests set it directly).
    #[serde(skip)]
    pub url: Option<Secret>,
    /// Most connections in the pool. Default `10`.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Seconds to wait for a free connection before answering 503. Default `5`.
    #[serde(default = "default_acquire_timeout")]
    pub acquire_timeout_secs: u64,
}

/// `[session]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// A session unused this many seconds ends. Default `1800` (30 minutes).
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: u64,
    /// A session ends this many seconds after login, used or not. Default `43200` (12 hours).
    #[serde(default = "default_absolute")]
    pub absolute_timeout_secs: u64,
}

/// `[login]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// Failed logins (per user name and per client address) allowed before a lock-out. Default `5`.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// Failed logins from one client address (any user names) before it is locked out; higher than
    /// `max_failures` because offices share one address. Default `20`.
    #[serde(default = "default_ip_max_failures")]
    pub ip_max_failures: u32,
    /// First lock-out in seconds; each further failure doubles it. Default `60`.
    #[serde(default = "default_lockout_base")]
    pub lockout_base_secs: u64,
    /// Longest lock-out in seconds. Default `3600`.
    #[serde(default = "default_lockout_max")]
    pub lockout_max_secs: u64,
}

/// `[password]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfig {
    /// argon2id memory in KiB (OWASP minimum 19456 with 2 passes). Default `19456`; at least `8192`.
    #[serde(default = "default_memory")]
    pub argon2_memory_kib: u32,
    /// argon2id passes. Default `2`; at least `1`.
    #[serde(default = "default_iterations")]
    pub argon2_iterations: u32,
    /// Shortest password accepted for new users. Default `12`; at least `8`.
    #[serde(default = "default_min_length")]
    pub min_length: usize,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_web_dir() -> PathBuf {
    PathBuf::from("web/dist")
}
fn default_towns_file() -> PathBuf {
    PathBuf::from("../shared/data-towns.tsv")
}
fn default_max_connections() -> u32 {
    10
}
fn default_acquire_timeout() -> u64 {
    5
}
fn default_idle() -> u64 {
    1800
}
fn default_absolute() -> u64 {
    43200
}
fn default_max_failures() -> u32 {
    5
}
fn default_ip_max_failures() -> u32 {
    20
}
fn default_lockout_base() -> u64 {
    60
}
fn default_lockout_max() -> u64 {
    3600
}
fn default_memory() -> u32 {
    19456
}
fn default_iterations() -> u32 {
    2
}
fn default_min_length() -> usize {
    12
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url_file: None,
            url: None,
            max_connections: default_max_connections(),
            acquire_timeout_secs: default_acquire_timeout(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: default_idle(),
            absolute_timeout_secs: default_absolute(),
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failures: default_max_failures(),
            ip_max_failures: default_ip_max_failures(),
            lockout_base_secs: default_lockout_base(),
            lockout_max_secs: default_lockout_max(),
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            argon2_memory_kib: default_memory(),
            argon2_iterations: default_iterations(),
            min_length: default_min_length(),
        }
    }
}

impl Config {
    /// A config with every default and the given database URL (for tests and tools).
    pub fn with_database_url(url: Secret) -> Self {
        let mut c: Config = toml_defaults();
        c.database.url = Some(url);
        c
    }

    /// Reads, validates and resolves the file at `path` (the database URL is read from its file).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut c: Config = bl_service::config::load(path)?;
        c.validate(path)?;
        let url_file = c.database.url_file.clone().ok_or_else(|| {
            field_error(
                path,
                "database.url_file",
                "is required: name a file holding the PostgreSQL URL",
            )
        })?;
        let url = Secret::from_file(&url_file).map_err(|e| {
            field_error(
                path,
                "database.url_file",
                format!("cannot read {}: {e}", url_file.display()),
            )
        })?;
        c.database.url = Some(url);
        c.clocks.load_holidays(path)?;
        if let Some(mqtt) = &mut c.mqtt {
            let password = Secret::from_file(&mqtt.password_file).map_err(|e| {
                field_error(
                    path,
                    "mqtt.password_file",
                    format!("cannot read {}: {e}", mqtt.password_file.display()),
                )
            })?;
            mqtt.password = Some(password);
        }
        if let Some(media) = &mut c.media {
            let file = &media.signing_key_file;
            let text = Secret::from_file(file).map_err(|e| {
                field_error(
                    path,
                    "media.signing_key_file",
                    format!("cannot read {}: {e}", file.display()),
                )
            })?;
            let key = crate::media::MediaKey::parse(text.expose()).map_err(|e| {
                field_error(
                    path,
                    "media.signing_key_file",
                    format!("{} {e}", file.display()),
                )
            })?;
            media.signing_key = Some(key);
            crate::auth::service::load_tokens(path, media)?;
        }
        c.notify
            .load_secrets()
            .map_err(|(field, message)| field_error(path, &field, message))?;
        Ok(c)
    }

    /// Checks the rules serde cannot express; errors name the field.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let err = |field: &str, msg: &str| Err(field_error(path, field, msg));
        if self.database.max_connections == 0 {
            return err("database.max_connections", "must be at least 1");
        }
        if self.database.acquire_timeout_secs == 0 {
            return err("database.acquire_timeout_secs", "must be at least 1");
        }
        if self.session.idle_timeout_secs == 0 {
            return err("session.idle_timeout_secs", "must be at least 1");
        }
        if self.session.absolute_timeout_secs < self.session.idle_timeout_secs {
            return err(
                "session.absolute_timeout_secs",
                "must not be shorter than session.idle_timeout_secs",
            );
        }
        if self.login.max_failures == 0 {
            return err("login.max_failures", "must be at least 1");
        }
        if self.login.ip_max_failures < self.login.max_failures {
            return err(
                "login.ip_max_failures",
                "must not be lower than login.max_failures",
            );
        }
        if self.login.lockout_base_secs == 0 {
            return err("login.lockout_base_secs", "must be at least 1");
        }
        if self.login.lockout_max_secs < self.login.lockout_base_secs {
            return err(
                "login.lockout_max_secs",
                "must not be shorter than login.lockout_base_secs",
            );
        }
        if let Some(mqtt) = &self.mqtt {
            let simple = |v: &str| {
                !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            };
            if !simple(&mqtt.client_id) {
                return err("mqtt.client_id", "must be letters, digits, '-' or '_'");
            }
            if !simple(&mqtt.share_group) {
                return err("mqtt.share_group", "must be letters, digits, '-' or '_'");
            }
        }
        if self.password.argon2_memory_kib < 8192 {
            return err("password.argon2_memory_kib", "must be at least 8192");
        }
        if self.password.argon2_iterations == 0 {
            return err("password.argon2_iterations", "must be at least 1");
        }
        if self.password.min_length < 8 {
            return err("password.min_length", "must be at least 8");
        }
        if let Err((field, message)) = self.incidents.validate() {
            return err(field, &message);
        }
        if let Err((field, message)) = self.escalation.validate() {
            return err(field, &message);
        }
        if let Some(enrolment) = &self.enrolment {
            enrolment.validate(path)?;
        }
        if let Err((field, message)) = self.notify.validate() {
            return err(&field, &message);
        }
        if let Err((field, message)) = self.clocks.validate() {
            return err(&field, &message);
        }
        if let Err((field, message)) = self.field.validate() {
            return err(field, &message);
        }
        if let Err((field, message)) = self.ws.validate() {
            return err(&field, &message);
        }
        if let Err((field, message)) = self.drills.check() {
            return err(field, message);
        }
        if let Some(media) = &self.media {
            if !(10..=600).contains(&media.token_ttl_secs) {
                return err("media.token_ttl_secs", "must be between 10 and 600");
            }
            if media.gateway.is_empty() {
                return err(
                    "media.gateway",
                    "needs at least one [[media.gateway]] with node and url",
                );
            }
            for (i, g) in media.gateway.iter().enumerate() {
                if let Err(e) = bl_proto::GatewayNodeId::new(g.node.clone()) {
                    return err(&format!("media.gateway[{i}].node"), &e.to_string());
                }
                if media.gateway[..i].iter().any(|o| o.node == g.node) {
                    return err(
                        &format!("media.gateway[{i}].node"),
                        &format!("{:?} is listed twice", g.node),
                    );
                }
                let host = g
                    .url
                    .strip_prefix("http://")
                    .or_else(|| g.url.strip_prefix("https://"))
                    .unwrap_or("");
                if host.is_empty() || host.starts_with('/') {
                    return err(
                        &format!("media.gateway[{i}].url"),
                        "must be an http:// or https:// URL with a host",
                    );
                }
            }
        }
        Ok(())
    }
}

fn toml_defaults() -> Config {
    bl_service::config::parse(Path::new("<defaults>"), "").expect("every field has a default")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let c: Config = bl_service::config::parse(Path::new("d.toml"), text)?;
        c.validate(Path::new("d.toml"))?;
        Ok(c)
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.towns_file, PathBuf::from("../shared/data-towns.tsv"));
        assert_eq!(c.session.idle_timeout_secs, 1800);
        assert_eq!(c.session.absolute_timeout_secs, 43200);
        assert_eq!(c.login.max_failures, 5);
        assert_eq!(c.password.argon2_memory_kib, 19456);
        assert!(!c.demo_data);
    }

    #[test]
    fn the_media_section_is_optional_has_a_default_ttl_and_names_bad_fields() {
        assert!(parse("").unwrap().media.is_none());
        let ok = "[media]\nsigning_key_file = \"k\"\n[[media.gateway]]\nnode = \"gw-1\"\nurl = \"http://127.0.0.1:8090/\"\n";
        let c = parse(ok).unwrap();
        let m = c.media.unwrap();
        assert_eq!(m.token_ttl_secs, 60);
        assert_eq!(m.nodes()[0].as_str(), "gw-1");
        assert_eq!(m.url_of(&m.nodes()[0]), Some("http://127.0.0.1:8090"));
        let e = parse("[media]\nsigning_key_file = \"k\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("media.gateway"), "{e}");
        let e = parse(&ok.replace("[media]\n", "[media]\ntoken_ttl_secs = 5\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("media.token_ttl_secs"), "{e}");
        let e = parse(&ok.replace("gw-1", "GW/1")).unwrap_err().to_string();
        assert!(e.contains("media.gateway[0].node"), "{e}");
        let e = parse(&ok.replace("http://", "ftp://"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("media.gateway[0].url"), "{e}");
        let e = parse(&ok.replace("[media]\n", "[media]\nttl = 5\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `ttl`"), "{e}");
        let e = parse("[media]\n[[media.gateway]]\nnode = \"gw-1\"\nurl = \"http://a\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("signing_key_file"), "{e}");
    }

    #[test]
    fn load_reads_the_media_signing_key_and_names_the_field_when_it_is_bad() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("db.url");
        std::fs::write(&url, "postgres://x/y\n").unwrap();
        let key = dir.path().join("media.key");
        std::fs::write(&key, format!("{}\n", hex::encode([5u8; 32]))).unwrap();
        let cfg = dir.path().join("d.toml");
        let text = format!(
            "[database]\nurl_file = {:?}\n[media]\nsigning_key_file = {:?}\n[[media.gateway]]\nnode = \"gw-1\"\nurl = \"http://a\"\n",
            url, key
        );
        std::fs::write(&cfg, &text).unwrap();
        let c = Config::load(&cfg).unwrap();
        let k = c.media.unwrap().signing_key.unwrap();
        assert_eq!(
            k.signing_key().verifying_key(),
            bl_proto::SigningKey::from_bytes(&[5; 32]).verifying_key()
        );
        std::fs::write(&key, "abcd").unwrap();
        let e = Config::load(&cfg).unwrap_err().to_string();
        assert!(e.contains("media.signing_key_file"), "{e}");
    }

    #[test]
    fn an_unknown_field_is_rejected_with_its_name() {
        let e = parse("[session]\nidle = 5\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `idle`"), "{e}");
    }

    #[test]
    fn an_absolute_timeout_shorter_than_the_idle_timeout_names_the_field() {
        let e = parse("[session]\nidle_timeout_secs = 100\nabsolute_timeout_secs = 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("session.absolute_timeout_secs"), "{e}");
    }

    #[test]
    fn the_incidents_section_has_documented_defaults_and_refuses_unknown_fields() {
        let c = parse("").unwrap();
        assert_eq!(c.incidents.cooldown_secs, 1800);
        assert!(c.incidents.camera_incidents);
        let c = parse("[incidents]\ncooldown_secs = 600\ndeadline = [\"smoking\"]\n").unwrap();
        assert_eq!(c.incidents.cooldown_secs, 600);
        assert_eq!(c.incidents.deadline, vec!["smoking".to_owned()]);
        let e = parse("[incidents]\ncooldown = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `cooldown`"), "{e}");
        let e = parse("[incidents]\nimmediate = [\"rats\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("incidents.immediate"), "{e}");
        let e = parse("[incidents.severity]\nlevel_iii_cases = 200\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("incidents.severity.level_ii_cases"), "{e}");
    }

    #[test]
    fn the_escalation_section_has_documented_defaults_and_a_bad_policy_names_its_field() {
        use crate::escalation::{Step, Target};
        let c = parse("").unwrap();
        assert_eq!(c.escalation.poll_interval_ms, 200);
        assert_eq!(c.escalation.batch, 64);
        assert_eq!(
            c.escalation.immediate[0],
            Step::Notify {
                target: Target::Team
            }
        );
        assert!(c.escalation.routine.is_empty());
        let c =
            parse("[escalation]\nroutine = [{ step = \"notify\", target = \"team\" }]\n").unwrap();
        assert_eq!(c.escalation.routine.len(), 1);
        let e = parse("[escalation]\ninterval = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `interval`"), "{e}");
        let e = parse(
            "[escalation]\ndeadline = [{ step = \"notify\", target = \"team\" }, \
             { step = \"repeat\", from_step = 0, times = 1 }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("escalation.deadline") && e.contains("step 1"),
            "{e}"
        );
        let e = parse("[escalation]\npoll_interval_ms = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("escalation.poll_interval_ms"), "{e}");
    }

    #[test]
    fn a_missing_database_url_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.toml");
        std::fs::write(&path, "").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains("database.url_file"), "{e}");
    }
}
