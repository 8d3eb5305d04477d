//! The agent's own config file (`edge.toml`): who it is and how it reaches the center. What to
//! detect comes from the center as the retained `EdgeConfig`; this file holds only what the box needs
//! before it can hear the center.

use crate::ingest::CameraSource;
use crate::talk::TalkConfig;
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
    /// Evidence upload to the media gateway. Default: none (events carry no snapshot or clip).
    #[serde(default)]
    pub evidence: Option<EvidenceConfig>,
    /// Live pushes to the media gateway on the center's `startLive`. Defaults below.
    #[serde(default)]
    pub live: LiveConfig,
    /// Talk-down and voice warnings (`crate::talk`). Default: the table's defaults (no speaker,
    /// no messages of the box's own); always `Some` after [`Config::load`].
    #[serde(default)]
    pub talk: Option<TalkConfig>,
    /// dispatch, for what the box fetches from it (the recordings of the center's voice
    /// warnings). Default: none (a center warning with a recording is refused, saying so).
    #[serde(default)]
    pub center: Option<CenterConfig>,
}

/// `[center]`: how the box reaches dispatch over HTTPS (written by `edge-agent enrol`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CenterConfig {
    /// dispatch's base URL, the one the box enrolled with, e.g. `https://dispatch.example`.
    /// Required.
    pub url: String,
    /// The device key that signs fetches (the one registered at enrolment). Default `device.key`
    /// beside the config file.
    #[serde(default = "default_device_key_file")]
    pub device_key_file: PathBuf,
}

/// `[live]`: pushing a camera's stream to the gateway on `startLive` (DESIGN §3.3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// A push that no `stopLive` ended stops after this many seconds, so a lost `stopLive` never
    /// streams forever (the gateway asks again while someone still watches). Default 7200 (2 h).
    #[serde(default = "default_max_push_secs")]
    pub max_push_secs: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            max_push_secs: default_max_push_secs(),
        }
    }
}

fn default_max_push_secs() -> u64 {
    7200
}

/// `[evidence]`: pre-roll, clips, snapshots and their signed upload (DESIGN §3.2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// The media gateway's base URL; blobs go to `PUT {url}/evidence/{sha256}`. Required.
    pub url: String,
    /// The device key that signs uploads (made by `edge-agent enrol` or `edge-agent keygen`).
    /// Default `device.key` beside the config file.
    #[serde(default = "default_device_key_file")]
    pub device_key_file: PathBuf,
    /// Where blobs wait for upload. Default `evidence-spool` beside the config file.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// Seconds of video before an episode's start in its clip, until the center's config says
    /// otherwise (`preRollSecs`). Default 10.
    #[serde(default = "default_roll_secs")]
    pub pre_roll_secs: u32,
    /// Seconds of video after an episode's end in its clip (`postRollSecs` from the center wins).
    /// Default 10.
    #[serde(default = "default_roll_secs")]
    pub post_roll_secs: u32,
    /// Most bytes of one camera's pre-roll in memory. Default 16 MiB (about 60 s of a 2 Mbps
    /// stream; whole GOPs leave first).
    #[serde(default = "default_pre_roll_bytes")]
    pub pre_roll_bytes: usize,
    /// Most bytes of one clip; a longer episode's clip is cut there. Default 64 MiB.
    #[serde(default = "default_max_clip_bytes")]
    pub max_clip_bytes: usize,
    /// Longest wait between two upload attempts of one blob. Default 300.
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: u64,
}

fn default_device_key_file() -> PathBuf {
    PathBuf::from("device.key")
}
fn default_spool_dir() -> PathBuf {
    PathBuf::from("evidence-spool")
}
fn default_roll_secs() -> u32 {
    10
}
fn default_pre_roll_bytes() -> usize {
    16 << 20
}
fn default_max_clip_bytes() -> usize {
    64 << 20
}
fn default_retry_max_secs() -> u64 {
    300
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
    /// The main stream's RTSP URL (same rules as `url`, same credentials), pushed when a viewer
    /// asks for `main`. Default: none (`url` serves both).
    #[serde(default)]
    pub main_url: Option<String>,
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
    /// The RTSP URL (without credentials; `username` and `password_file` apply) whose answer
    /// offers the camera's ONVIF audio backchannel, usually its main stream. Default: none (the
    /// camera has no speaker).
    #[serde(default)]
    pub backchannel_url: Option<String>,
    /// Watch for cooks without a chef hat on this camera (until the center's rules say otherwise).
    /// Default `false`.
    #[serde(default)]
    pub no_chef_hat: bool,
    /// Watch for cooks without a mask (colour frames). Default `false`.
    #[serde(default)]
    pub no_mask: bool,
    /// Width of the colour frames the person detector gets while a noChefHat / noMask rule runs
    /// on this camera (the height keeps the stream's aspect), 640 to 1920. Default 640.
    #[serde(default = "default_person_width")]
    pub person_width: u32,
    /// Colour frames per second for the person detector, 1 to 5. Default 2.
    #[serde(default = "default_person_fps")]
    pub person_fps: u32,
}

fn default_person_width() -> u32 {
    crate::ingest::pipeline::ColourFormat::default().width
}
fn default_person_fps() -> u32 {
    crate::ingest::pipeline::ColourFormat::default().fps
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
        if let Some(evidence) = &mut config.evidence {
            evidence.device_key_file = base.join(&evidence.device_key_file);
            evidence.spool_dir = base.join(&evidence.spool_dir);
        }
        // Without `[talk]` the defaults hold, so the center's messages have a voice and a cache.
        config
            .talk
            .get_or_insert_with(TalkConfig::default)
            .resolve(base);
        if let Some(center) = &mut config.center {
            center.device_key_file = base.join(&center.device_key_file);
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
        if let Some(c) = &self.center
            && !(c.url.starts_with("http://") || c.url.starts_with("https://"))
        {
            return Err(field_error(
                path,
                "center.url",
                format!("{:?} is not an http(s) URL", c.url),
            ));
        }
        if let Some(e) = &self.evidence {
            if !(e.url.starts_with("http://") || e.url.starts_with("https://")) {
                return Err(field_error(
                    path,
                    "evidence.url",
                    format!("{:?} is not an http(s) URL", e.url),
                ));
            }
            if e.pre_roll_secs > bl_proto::config::MAX_PRE_ROLL_SECS {
                return Err(field_error(
                    path,
                    "evidence.pre_roll_secs",
                    format!("must be at most {}", bl_proto::config::MAX_PRE_ROLL_SECS),
                ));
            }
            if e.post_roll_secs > bl_proto::config::MAX_POST_ROLL_SECS {
                return Err(field_error(
                    path,
                    "evidence.post_roll_secs",
                    format!("must be at most {}", bl_proto::config::MAX_POST_ROLL_SECS),
                ));
            }
            if e.pre_roll_bytes < 1 << 20 || e.max_clip_bytes < 1 << 20 {
                return Err(field_error(
                    path,
                    "evidence.pre_roll_bytes",
                    "pre_roll_bytes and max_clip_bytes must be at least 1 MiB",
                ));
            }
            if e.retry_max_secs == 0 {
                return Err(field_error(
                    path,
                    "evidence.retry_max_secs",
                    "must be at least 1",
                ));
            }
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
            check_camera_url(path, &field("url"), &camera.url)?;
            if let Some(main) = &camera.main_url {
                check_camera_url(path, &field("main_url"), main)?;
            }
            if let Some(url) = &camera.backchannel_url {
                check_camera_url(path, &field("backchannel_url"), url)?;
            }
            if !(640..=1920).contains(&camera.person_width) {
                return Err(field_error(
                    path,
                    &field("person_width"),
                    "must be 640 to 1920 (heads need at least 20 px)",
                ));
            }
            if !(1..=5).contains(&camera.person_fps) {
                return Err(field_error(path, &field("person_fps"), "must be 1 to 5"));
            }
            if camera.password_file.is_some() && camera.username.is_none() {
                return Err(field_error(
                    path,
                    &field("username"),
                    "is required with password_file",
                ));
            }
        }
        if !(60..=86_400).contains(&self.live.max_push_secs) {
            return Err(field_error(
                path,
                "live.max_push_secs",
                "must be 60..=86400 seconds",
            ));
        }
        if let Some(talk) = &self.talk {
            let ids: Vec<CameraId> = self.camera.iter().map(|c| c.id.clone()).collect();
            talk.validate(path, &ids)?;
        }
        Ok(())
    }

    /// Each camera's colour frames for the person detector (`person_width`, `person_fps`).
    pub fn colour_formats(
        &self,
    ) -> std::collections::HashMap<CameraId, crate::ingest::pipeline::ColourFormat> {
        self.camera
            .iter()
            .map(|c| {
                let format = crate::ingest::pipeline::ColourFormat {
                    width: c.person_width,
                    fps: c.person_fps,
                };
                (c.id.clone(), format)
            })
            .collect()
    }

    /// The cameras with their credentials put into their URLs (read from the password files).
    pub fn camera_sources(&self) -> Result<Vec<CameraSource>, ConfigError> {
        self.camera
            .iter()
            .map(|c| {
                Ok(CameraSource {
                    id: c.id.clone(),
                    url: with_credentials(&c.url, c.username.as_deref(), password(c)?.as_ref()),
                })
            })
            .collect()
    }

    /// Each camera's stream URLs for live pushes, with credentials: `(id, sub, main)`; `main` is
    /// the sub-stream's URL when no `main_url` is set (one camera, one account).
    pub fn live_sources(&self) -> Result<Vec<(CameraId, Secret, Secret)>, ConfigError> {
        self.camera
            .iter()
            .map(|c| {
                let password = password(c)?;
                let sub = with_credentials(&c.url, c.username.as_deref(), password.as_ref());
                let main = match &c.main_url {
                    Some(main) => with_credentials(main, c.username.as_deref(), password.as_ref()),
                    None => sub.clone(),
                };
                Ok((c.id.clone(), sub, main))
            })
            .collect()
    }

    /// Each camera's backchannel URL with its credentials put in; `None` for a camera without one.
    pub fn backchannel_sources(&self) -> Result<Vec<(CameraId, Option<Secret>)>, ConfigError> {
        self.camera
            .iter()
            .map(|c| {
                let url = match &c.backchannel_url {
                    Some(url) => Some(with_credentials(
                        url,
                        c.username.as_deref(),
                        password(c)?.as_ref(),
                    )),
                    None => None,
                };
                Ok((c.id.clone(), url))
            })
            .collect()
    }

    /// Reads the device key that signs evidence (`[evidence] device_key_file`), if evidence is on.
    pub fn device_key(&self) -> Result<Option<bl_proto::SigningKey>, ConfigError> {
        let Some(e) = &self.evidence else {
            return Ok(None);
        };
        read_device_key(&e.device_key_file).map(Some)
    }

    /// Reads the device key that signs fetches from dispatch (`[center] device_key_file`), if
    /// `[center]` is set.
    pub fn center_key(&self) -> Result<Option<bl_proto::SigningKey>, ConfigError> {
        let Some(c) = &self.center else {
            return Ok(None);
        };
        read_device_key(&c.device_key_file).map(Some)
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

/// Reads an Ed25519 device key file (the 32-byte seed as text, `bl_proto::keys`).
fn read_device_key(file: &Path) -> Result<bl_proto::SigningKey, ConfigError> {
    let text = Secret::from_file(file).map_err(|source| ConfigError::Read {
        path: file.to_path_buf(),
        source: std::io::Error::new(
            source.kind(),
            format!(
                "{source}; make one with `edge-agent keygen {}` or `edge-agent enrol`",
                file.display()
            ),
        ),
    })?;
    let seed = bl_proto::keys::decode_bytes(text.expose()).map_err(|e| ConfigError::Read {
        path: file.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })?;
    Ok(bl_proto::SigningKey::from_bytes(&seed))
}

/// A camera's password, read from its file, if it has one.
fn password(camera: &CameraConfig) -> Result<Option<Secret>, ConfigError> {
    let Some(file) = &camera.password_file else {
        return Ok(None);
    };
    Secret::from_file(file)
        .map(Some)
        .map_err(|source| ConfigError::Read {
            path: file.clone(),
            source,
        })
}

/// A camera URL must be RTSP and hold no credentials (they come from `username`/`password_file`).
fn check_camera_url(path: &Path, field: &str, url: &str) -> Result<(), ConfigError> {
    let Some(rest) = url.strip_prefix("rtsp://").or(url.strip_prefix("rtsps://")) else {
        return Err(field_error(
            path,
            field,
            "must start with rtsp:// or rtsps://",
        ));
    };
    if rest.split('/').next().unwrap_or("").contains('@') {
        return Err(field_error(
            path,
            field,
            "must not hold credentials; use username and password_file",
        ));
    }
    Ok(())
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
    fn the_main_stream_gets_the_cameras_credentials_and_live_pushes_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cam.pw"), "secret\n").unwrap();
        let path = dir.path().join("edge.toml");
        let head = "edge_id = \"e\"\n[mqtt]\nhost = \"c\"\npassword_file = \"pw\"\n";
        std::fs::write(
            &path,
            format!(
                "{head}[[camera]]\nid = \"cam1\"\nurl = \"rtsp://10.0.0.5/sub\"\nmain_url = \"rtsp://10.0.0.5/main\"\n\
                 username = \"admin\"\npassword_file = \"cam.pw\"\n[[camera]]\nid = \"cam2\"\nurl = \"rtsp://10.0.0.6/only\"\n"
            ),
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.live.max_push_secs, 7200);
        let live = config.live_sources().unwrap();
        assert_eq!(live[0].1.expose(), "rtsp://admin:secret@10.0.0.5/sub");
        assert_eq!(live[0].2.expose(), "rtsp://admin:secret@10.0.0.5/main");
        assert_eq!(
            live[1].2.expose(),
            "rtsp://10.0.0.6/only",
            "url serves main too"
        );
        for (extra, field) in [
            ("main_url = \"http://x/main\"\n", "camera[0].main_url"),
            ("main_url = \"rtsp://a:b@x/main\"\n", "camera[0].main_url"),
            ("[live]\nmax_push_secs = 5\n", "live.max_push_secs"),
        ] {
            let text = match extra.starts_with("[live]") {
                true => format!("{head}{extra}"),
                false => {
                    format!("{head}[[camera]]\nid = \"cam1\"\nurl = \"rtsp://x/sub\"\n{extra}")
                }
            };
            let e = load(&text).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
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
    fn evidence_gets_its_defaults_and_a_bad_value_names_its_field() {
        let head = "edge_id = \"e\"\n[mqtt]\nhost = \"c\"\npassword_file = \"pw\"\n";
        let c = load(&format!("{head}[evidence]\nurl = \"http://gw:8090\"\n")).unwrap();
        let e = c.evidence.unwrap();
        assert!(e.device_key_file.is_absolute() && e.device_key_file.ends_with("device.key"));
        assert!(e.spool_dir.ends_with("evidence-spool"));
        assert_eq!((e.pre_roll_secs, e.post_roll_secs), (10, 10));
        assert_eq!(e.pre_roll_bytes, 16 << 20);
        for (extra, field) in [
            ("url = \"gw:8090\"\n", "evidence.url"),
            (
                "url = \"http://gw\"\npre_roll_secs = 500\n",
                "evidence.pre_roll_secs",
            ),
            (
                "url = \"http://gw\"\npre_roll_bytes = 5\n",
                "evidence.pre_roll_bytes",
            ),
        ] {
            let e = load(&format!("{head}[evidence]\n{extra}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{extra:?} gave {e}");
        }
    }

    #[test]
    fn talk_settings_are_checked_and_a_bad_one_names_its_field() {
        let head = "edge_id = \"e\"\n[mqtt]\nhost = \"c\"\npassword_file = \"pw\"\n\
                    [[camera]]\nid = \"k1\"\nurl = \"rtsp://10.0.0.5/102\"\n";
        let ok = load(&format!(
            "{head}backchannel_url = \"rtsp://10.0.0.5/101\"\n[talk]\n\
             [[talk.message]]\nid = \"hat\"\ntext = \"请戴帽\"\n\
             [[talk.warning]]\nkind = \"noChefHat\"\nmessage = \"hat\"\n"
        ))
        .unwrap();
        let talk = ok.talk.unwrap();
        assert_eq!(talk.voice, "cmn");
        assert!(talk.cache_dir.is_absolute() && talk.cache_dir.ends_with("voice-cache"));
        for (extra, field) in [
            (
                "backchannel_url = \"rtsp://admin:x@10.0.0.5/101\"\n",
                "camera[0].backchannel_url",
            ),
            (
                "[talk]\n[[talk.warning]]\nkind = \"noChefHat\"\nmessage = \"nope\"\n",
                "talk.warning[0].message",
            ),
            ("[talk]\npremises_kind = \"bakery\"\n", "talk.premises_kind"),
            (
                "[talk]\n[[talk.message]]\nid = \"m\"\n",
                "talk.message[0].file",
            ),
        ] {
            let e = load(&format!("{head}{extra}")).unwrap_err().to_string();
            assert!(e.contains(field), "{extra:?} gave {e}");
        }
    }

    #[test]
    fn an_out_of_range_window_names_the_field() {
        let e = load("edge_id = \"e\"\n[mqtt]\nhost = \"c\"\npassword_file = \"pw\"\nwindow = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mqtt.window"), "{e}");
    }
}
