//! The agent's own config file (`edge.toml`): who it is and how it reaches the center. What to
//! detect comes from the center as the retained `EdgeConfig`; this file holds only what the box needs
//! before it can hear the center.

use crate::ingest::CameraSource;
use bl_proto::config::HoursRange;
use bl_proto::{CameraId, EdgeId};
use bl_service::config::{ConfigError, field_error};
use bl_service::secret::Secret;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `edge.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This box's id, also its MQTT user name. Required.
    pub edge_id: EdgeId,
    /// The MQTT broker. Required.
    pub mqtt: MqttConfig,
    /// The durable outbox. Defaults below.
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// The cameras this box watches. Default: none.
    #[serde(default)]
    pub camera: Vec<CameraConfig>,
    /// The site's offset from UTC in minutes, for hours such as `rodent_hours`. Default 480
    /// (China Standard Time, which has no daylight saving).
    #[serde(default = "default_utc_offset_minutes")]
    pub utc_offset_minutes: i32,
}

fn default_utc_offset_minutes() -> i32 {
    480
}

/// `[[camera]]`: one camera on the local network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// The camera's id, as registered at the center. Required.
    pub id: CameraId,
    /// Its RTSP URL without credentials, e.g. `rtsp://192.168.1.64:554/Streaming/Channels/102`
    /// (the sub-stream is what detection needs). Required.
    pub url: String,
    /// RTSP user name. Default: none (no credentials).
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the RTSP password; relative to the config file. Default: none.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Watch for rodents on this camera. Default `false`.
    #[serde(default)]
    pub rodent: bool,
    /// Local hours in which rodents count (the kitchen is closed), e.g.
    /// `{ from = "22:00", to = "06:00" }`. Default: all day.
    #[serde(default)]
    pub rodent_hours: Option<HoursRange>,
}

/// How to reach the broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address. Required.
    pub host: String,
    /// Broker port. Default 1883.
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// File holding this edge's MQTT password (issued at enrolment). Required; relative paths are
    /// relative to the config file.
    pub password_file: PathBuf,
    /// Keep-alive interval; the broker declares the edge offline after 1.5 times this. Default 15.
    #[serde(default = "default_keep_alive_secs")]
    pub keep_alive_secs: u64,
    /// Events published but not yet acknowledged, at most. Default 64.
    #[serde(default = "default_window")]
    pub window: usize,
    /// How often the retained state is refreshed. Default 30.
    #[serde(default = "default_state_interval_secs")]
    pub state_interval_secs: u64,
}

/// Where unsent events wait.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// The SQLite file. Default `outbox.db` beside the config file.
    #[serde(default = "default_outbox_path")]
    pub path: PathBuf,
    /// Most bytes of queued payloads; past it new events are refused loudly. Default 256 MiB.
    #[serde(default = "default_quota_bytes")]
    pub quota_bytes: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            path: default_outbox_path(),
            quota_bytes: default_quota_bytes(),
        }
    }
}

fn default_mqtt_port() -> u16 {
    1883
}
fn default_keep_alive_secs() -> u64 {
    15
}
fn default_window() -> usize {
    64
}
fn default_state_interval_secs() -> u64 {
    30
}
fn default_outbox_path() -> PathBuf {
    PathBuf::from("outbox.db")
}
fn default_quota_bytes() -> u64 {
    256 << 20
}

impl Config {
    /// Reads, resolves relative paths against the file's folder, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = bl_service::config::load(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.mqtt.password_file = base.join(&config.mqtt.password_file);
        config.outbox.path = base.join(&config.outbox.path);
        for camera in &mut config.camera {
            camera.password_file = camera.password_file.as_ref().map(|p| base.join(p));
        }
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        if self.mqtt.host.trim().is_empty() {
            return Err(field_error(path, "mqtt.host", "must not be empty"));
        }
        if !(5..=3600).contains(&self.mqtt.keep_alive_secs) {
            return Err(field_error(
                path,
                "mqtt.keep_alive_secs",
                "must be 5..=3600 seconds",
            ));
        }
        if !(1..=1000).contains(&self.mqtt.window) {
            return Err(field_error(path, "mqtt.window", "must be 1..=1000"));
        }
        if self.mqtt.state_interval_secs == 0 {
            return Err(field_error(
                path,
                "mqtt.state_interval_secs",
                "must be at least 1",
            ));
        }
        if self.outbox.quota_bytes < 1 << 20 {
            return Err(field_error(
                path,
                "outbox.quota_bytes",
                "must be at least 1 MiB",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, camera) in self.camera.iter().enumerate() {
            let field = |name: &str| format!("camera[{i}].{name}");
            if !seen.insert(&camera.id) {
                return Err(field_error(
                    path,
                    &field("id"),
                    format!("{} appears twice", camera.id),
                ));
            }
            let Some(rest) = camera
                .url
                .strip_prefix("rtsp://")
                .or(camera.url.strip_prefix("rtsps://"))
            else {
                return Err(field_error(
                    path,
                    &field("url"),
                    "must start with rtsp:// or rtsps://",
                ));
            };
            if rest.split('/').next().unwrap_or("").contains('@') {
                return Err(field_error(
                    path,
                    &field("url"),
                    "must not hold credentials; use username and password_file",
                ));
            }
            if camera.password_file.is_some() && camera.username.is_none() {
                return Err(field_error(
                    path,
                    &field("username"),
                    "is required with password_file",
                ));
            }
        }
        Ok(())
    }

    /// The cameras with their credentials put into their URLs (read from the password files).
    pub fn camera_sources(&self) -> Result<Vec<CameraSource>, ConfigError> {
        self.camera
            .iter()
            .map(|c| {
                let password = match &c.password_file {
                    Some(file) => {
                        Some(Secret::from_file(file).map_err(|source| ConfigError::Read {
                            path: file.clone(),
                            source,
                        })?)
                    }
                    None => None,
                };
                Ok(CameraSource {
                    id: c.id.clone(),
                    url: with_credentials(&c.url, c.username.as_deref(), password.as_ref()),
                })
            })
            .collect()
    }

    /// Reads the MQTT password file.
    pub fn mqtt_password(&self) -> Result<Secret, ConfigError> {
        Secret::from_file(&self.mqtt.password_file).map_err(|source| ConfigError::Read {
            path: self.mqtt.password_file.clone(),
            source,
        })
    }

    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.mqtt.keep_alive_secs)
    }
}

/// `rtsp://host/path` with `user:password@` put in, percent-encoded.
fn with_credentials(url: &str, user: Option<&str>, password: Option<&Secret>) -> Secret {
    let Some(user) = user else {
        return Secret::new(url);
    };
    let (scheme, rest) = url.split_once("://").expect("validated: has a scheme");
    let mut userinfo = percent_encode(user);
    if let Some(password) = password {
        userinfo.push(':');
        userinfo.push_str(&percent_encode(password.expose()));
    }
    Secret::new(format!("{scheme}://{userinfo}@{rest}"))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    #[test]
    fn a_minimal_file_gets_the_documented_defaults_and_paths_beside_it() {
        let c = load("edge_id = \"canteen-1\"\n[mqtt]\nhost = \"c\"\npassword_file = \"pw\"\n")
            .unwrap();
        assert_eq!(c.mqtt.port, 1883);
        assert_eq!(c.mqtt.window, 64);
        assert_eq!(c.outbox.quota_bytes, 256 << 20);
        assert!(c.outbox.path.ends_with("outbox.db") && c.outbox.path.is_absolute());
        assert!(c.mqtt.password_file.is_absolute());
    }

    #[test]
    fn a_bad_edge_id_is_named() {
        let e = load("edge_id = \"Canteen/1\"\n[mqtt]\nhost = \"c\"\npassword_file = \"pw\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        assert!(e.contains("Canteen/1"), "{e}");
    }

    #[test]
    fn camera_credentials_come_from_their_file_and_are_encoded_into_the_url() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cam.pw"), "p@ss:w/rd\n").unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(
            &path,
            "edge_id = \"e\"\n[mqtt]\nhost = \"c\"\npassword_file = \"pw\"\n\
             [[camera]]\nid = \"cam1\"\nurl = \"rtsp://10.0.0.5:554/ch1\"\nusername = \"admin\"\npassword_file = \"cam.pw\"\n",
        )
        .unwrap();
        let sources = Config::load(&path).unwrap().camera_sources().unwrap();
        assert_eq!(
            sources[0].url.expose(),
            "rtsp://admin:p%40ss%3Aw%2Frd@10.0.0.5:554/ch1"
        );
        assert!(!format!("{:?}", sources[0]).contains("ss"));
    }

    #[test]
    fn a_url_with_credentials_in_it_is_refused() {
        let e = load(
            "edge_id = \"e\"\n[mqtt]\nhost = \"c\"\npassword_file = \"pw\"\n\
             [[camera]]\nid = \"cam1\"\nurl = \"rtsp://admin:x@10.0.0.5/ch1\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("camera[0].url") && e.contains("credentials"),
            "{e}"
        );
        assert!(
            !e.contains("admin:x"),
            "the refused secret is not echoed: {e}"
        );
    }

    #[test]
    fn an_out_of_range_window_names_the_field() {
        let e = load("edge_id = \"e\"\n[mqtt]\nhost = \"c\"\npassword_file = \"pw\"\nwindow = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mqtt.window"), "{e}");
    }
}
