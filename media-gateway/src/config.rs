//! The gateway's TOML config file ([`File`]) and the checked settings it becomes ([`Config`]).
//!
//! ```toml
//! listen = "0.0.0.0:8090"
//! node_id = "gw-1"
//! data_dir = "/var/lib/brightline/gateway"
//! token_public_key_file = "/etc/brightline/dispatch-token.pub"
//! signing_key_file = "/etc/brightline/gateway.key"
//!
//! [[edge]]
//! id = "mtg-school-3"
//! public_key = "base64 or hex of the edge's Ed25519 device key"
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bl_proto::{CameraId, EdgeId, GatewayNodeId, VerifyingKey};
use bl_service::config::{ConfigError, field_error};
use serde::Deserialize;

use crate::evidence::backend::{EvidenceBackend, EvidenceFile};
use crate::keyfile::{self, PrivateKey};
use crate::live::LiveSettings;
use crate::live::ingest::Backoff;
use crate::live::peer::PeerSettings;
use crate::live::source::Source;
use crate::recording::{RecordingSettings, retention};

/// Default for [`File::listen`].
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// Default for [`File::max_evidence_bytes`]: 1 GiB, well above a few minutes of 1080p.
pub const DEFAULT_MAX_EVIDENCE_BYTES: u64 = 1 << 30;
/// Default for [`File::max_concurrent_uploads`].
pub const DEFAULT_MAX_CONCURRENT_UPLOADS: usize = 64;

/// The config file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// Address and port the HTTP API listens on. Default `"127.0.0.1:8090"`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// This gateway node's id; media tokens must name it. Required.
    pub node_id: String,
    /// Directory for the evidence store (`{data_dir}/evidence`) and recordings
    /// (`{data_dir}/recordings`). Required.
    pub data_dir: PathBuf,
    /// File holding dispatch's Ed25519 media-token public key (hex or base64). Required.
    pub token_public_key_file: PathBuf,
    /// File holding this gateway's Ed25519 private key (hex or base64), used to sign exports; make one
    /// with `media-gateway keygen`. Default: none (then `export` refuses to run).
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// Largest accepted evidence upload in bytes. Default 1073741824 (1 GiB).
    #[serde(default = "default_max_evidence_bytes")]
    pub max_evidence_bytes: u64,
    /// Uploads streamed at the same time; more are answered 503 with `Retry-After`. Default 64.
    #[serde(default = "default_max_concurrent_uploads")]
    pub max_concurrent_uploads: usize,
    /// Edges allowed to upload evidence and their device keys; with `[dispatch]`, enrolled edges
    /// are found there too. Default: none (without `[dispatch]` every upload is refused as
    /// `unknown_edge`).
    #[serde(default)]
    pub edge: Vec<EdgeEntry>,
    /// Live relay settings. Default: every field's default.
    #[serde(default)]
    pub live: LiveFile,
    /// Cameras this gateway serves from this file; with `[dispatch]`, these first and every other
    /// camera from dispatch (a static camera beside the registry). Default: none.
    #[serde(default)]
    pub camera: Vec<CameraEntry>,
    /// Recording settings. Default: every field's default.
    #[serde(default)]
    pub recording: RecordingFile,
    /// Evidence backend. Default: the filesystem under `data_dir`.
    #[serde(default)]
    pub evidence: EvidenceFile,
    /// Dispatch's internal API; when present, sources of cameras not in `[[camera]]` come from it,
    /// edges not listed in `[[edge]]` have their device keys looked up there, and edges are asked
    /// through it to push live video and to play talk audio.
    /// Default: none.
    #[serde(default)]
    pub dispatch: Option<DispatchEntry>,
}

/// The `[live]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveFile {
    /// IP the WebRTC UDP sockets bind to; `0.0.0.0` binds every non-loopback interface. Default
    /// `"0.0.0.0"`.
    pub bind_ip: String,
    /// IP advertised in ICE host candidates instead of the bound one (a 1:1 NAT's public address).
    /// Default: none (advertise the bound addresses).
    pub public_ip: Option<String>,
    /// First UDP port for WebRTC: all WHEP viewers share the first free port of the range; each
    /// talk or room connection takes one port of it. Default: none (any free port).
    pub udp_port_min: Option<u16>,
    /// Last UDP port, inclusive; equal to `udp_port_min` for a single port (then the WHEP viewers
    /// only). Default: `udp_port_min`.
    pub udp_port_max: Option<u16>,
    /// Seconds an ingest keeps running after its last viewer left. Default 10.
    pub linger_secs: u64,
    /// Seconds a WHEP request waits for a cold camera to send video before 503 `source_offline`.
    /// Default 10.
    pub start_timeout_secs: u64,
    /// First retry wait after an ingest failure, in milliseconds; doubles up to `retry_max_secs`.
    /// Default 500.
    pub retry_initial_ms: u64,
    /// Longest retry wait in seconds. Default 30.
    pub retry_max_secs: u64,
    /// Bound of each camera stream's GOP cache in bytes. Default 8388608 (8 MiB).
    pub gop_cache_bytes: usize,
    /// Most live sessions at once; more get 503 `too_many_sessions`. Default 500.
    pub max_sessions: usize,
    /// Origins (e.g. `"https://console.example"`) allowed to call `/whep/*` from a browser.
    /// Default: none.
    pub allowed_origins: Vec<String>,
    /// `ip:port` of the RTSP RECORD server edges push to (e.g. `"0.0.0.0:8554"`). Default: none
    /// (edge-pushed cameras answer 409 `push_not_supported`).
    pub push_listen: Option<String>,
    /// What edges dial to push, without a path, e.g. `"rtsp://gw.example:8554"`. Default
    /// `rtsp://{push_listen}`; required when `push_listen` binds every interface.
    pub push_url: Option<String>,
}

impl Default for LiveFile {
    fn default() -> Self {
        Self {
            bind_ip: "0.0.0.0".into(),
            public_ip: None,
            udp_port_min: None,
            udp_port_max: None,
            linger_secs: 10,
            start_timeout_secs: 10,
            retry_initial_ms: 500,
            retry_max_secs: 30,
            gop_cache_bytes: 8 << 20,
            max_sessions: 500,
            allowed_origins: Vec::new(),
            push_listen: None,
            push_url: None,
        }
    }
}

/// The `[recording]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingFile {
    /// Target segment length in seconds; a segment ends at the first keyframe after it. Default 10.
    pub segment_secs: u64,
    /// Most bytes of recordings kept, all cameras together; the oldest unheld segments go first.
    /// Default: none (no quota).
    pub max_bytes: Option<u64>,
    /// Oldest a segment may get, in hours, unless held. Default: none (kept until the quota).
    pub max_age_hours: Option<u64>,
    /// Free bytes the disk must have before a recorder starts or resumes after a full disk.
    /// Default 268435456 (256 MiB).
    pub min_free_bytes: u64,
    /// Cameras recorded continuously when sources come from dispatch (with `[[camera]]`, use its
    /// `record = "continuous"`). Default: none.
    pub continuous: Vec<String>,
}

impl Default for RecordingFile {
    fn default() -> Self {
        Self {
            segment_secs: 10,
            max_bytes: None,
            max_age_hours: None,
            min_free_bytes: 256 << 20,
            continuous: Vec::new(),
        }
    }
}

/// When a `[[camera]]` is recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordMode {
    /// Only after `POST /recording/{camera}/start`.
    #[default]
    OnRequest,
    /// From the gateway's start to its shutdown.
    Continuous,
}

/// One `[[camera]]` the gateway pulls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraEntry {
    /// Camera id, as in media tokens. Required.
    pub id: String,
    /// RTSP URL of the main stream. Required, unless `edge` is given.
    #[serde(default)]
    pub url: Option<String>,
    /// The edge box that pushes this camera on demand (instead of `url`). Default: none.
    #[serde(default)]
    pub edge: Option<String>,
    /// RTSP URL of the sub-stream. Default: none (the main stream serves both).
    #[serde(default)]
    pub sub_url: Option<String>,
    /// RTSP user name. Default: none.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the RTSP password. Default: none.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// `"on_request"` or `"continuous"`. Default `"on_request"`.
    #[serde(default)]
    pub record: RecordMode,
}

/// The `[dispatch]` table: where camera sources come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchEntry {
    /// Dispatch's base URL, e.g. `"http://dispatch:8080"`. Required.
    pub url: String,
    /// File holding this node's service token (dispatch's `[[media.gateway]] service_token_file`).
    /// Required.
    pub service_token_file: PathBuf,
}

/// Where camera sources come from, checked.
#[derive(Clone)]
pub enum SourcesConfig {
    /// The `[[camera]]` tables.
    File(Vec<(CameraId, Source)>),
    /// Dispatch's internal API, after the `[[camera]]` tables.
    Dispatch {
        /// Base URL.
        url: String,
        /// This node's service token.
        token: String,
        /// The `[[camera]]` tables, asked first.
        cameras: Vec<(CameraId, Source)>,
    },
}

impl std::fmt::Debug for SourcesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourcesConfig::File(c) => write!(f, "File({} cameras)", c.len()),
            SourcesConfig::Dispatch { url, .. } => write!(f, "Dispatch({url}, token redacted)"),
        }
    }
}

/// One registered edge box.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeEntry {
    /// The edge id (as in `X-Bl-Edge`). Required.
    pub id: String,
    /// Its Ed25519 device public key, hex or base64. Required.
    pub public_key: String,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_owned()
}

fn default_max_evidence_bytes() -> u64 {
    DEFAULT_MAX_EVIDENCE_BYTES
}

fn default_max_concurrent_uploads() -> usize {
    DEFAULT_MAX_CONCURRENT_UPLOADS
}

/// Checked settings: addresses parsed, ids validated, keys read.
#[derive(Debug, Clone)]
pub struct Config {
    /// See [`File::listen`].
    pub listen: SocketAddr,
    /// See [`File::node_id`].
    pub node_id: GatewayNodeId,
    /// See [`File::data_dir`].
    pub data_dir: PathBuf,
    /// Dispatch's media-token key.
    pub token_key: VerifyingKey,
    /// The export signing key, if configured.
    pub signing_key: Option<PrivateKey>,
    /// See [`File::max_evidence_bytes`].
    pub max_evidence_bytes: u64,
    /// See [`File::max_concurrent_uploads`].
    pub max_concurrent_uploads: usize,
    /// Registered edges and their device keys.
    pub edges: Vec<(EdgeId, VerifyingKey)>,
    /// Live relay settings.
    pub live: LiveSettings,
    /// Where camera sources come from.
    pub sources: SourcesConfig,
    /// Recording settings.
    pub recording: RecordingSettings,
    /// Where evidence is stored.
    pub evidence_store: EvidenceBackend,
}

impl Config {
    /// Where evidence blobs live.
    pub fn evidence_dir(&self) -> PathBuf {
        self.data_dir.join("evidence")
    }
}

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    bl_service::config::load::<File>(path)?.validate(path)
}

impl File {
    /// Checks every value and reads the key files; errors name the field. Relative key and data paths
    /// are taken relative to the config file's folder.
    pub fn validate(self, path: &Path) -> Result<Config, ConfigError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let err = |field: &str, message: String| field_error(path, field, message);
        let listen = self.listen.parse::<SocketAddr>().map_err(|e| {
            err(
                "listen",
                format!("{:?} is not an address:port ({e})", self.listen),
            )
        })?;
        let node_id =
            GatewayNodeId::new(&self.node_id).map_err(|e| err("node_id", e.to_string()))?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(err("data_dir", "must not be empty".into()));
        }
        let token_key = keyfile::read_public(&base.join(&self.token_public_key_file))
            .map_err(|e| err("token_public_key_file", e.to_string()))?;
        let signing_key = self
            .signing_key_file
            .as_ref()
            .map(|f| PrivateKey::read(&base.join(f)))
            .transpose()
            .map_err(|e| err("signing_key_file", e.to_string()))?;
        if self.max_evidence_bytes == 0 {
            return Err(err("max_evidence_bytes", "must be at least 1".into()));
        }
        if self.max_concurrent_uploads == 0 {
            return Err(err("max_concurrent_uploads", "must be at least 1".into()));
        }
        let mut edges: Vec<(EdgeId, VerifyingKey)> = Vec::with_capacity(self.edge.len());
        for (i, entry) in self.edge.iter().enumerate() {
            let id =
                EdgeId::new(&entry.id).map_err(|e| err(&format!("edge[{i}].id"), e.to_string()))?;
            if edges.iter().any(|(seen, _)| seen == &id) {
                return Err(err(
                    &format!("edge[{i}].id"),
                    format!("edge {id} is listed twice"),
                ));
            }
            let key = keyfile::parse_public(&entry.public_key)
                .map_err(|e| err(&format!("edge[{i}].public_key"), e.to_string()))?;
            edges.push((id, key));
        }
        let live = validate_live(&self.live, &err)?;
        let evidence_store = self
            .evidence
            .validate(base)
            .map_err(|(field, message)| err(&field, message))?;
        let mut recording = validate_recording(&self.recording, &err)?;
        for (i, c) in self.camera.iter().enumerate() {
            if c.record == RecordMode::Continuous {
                let id = CameraId::new(&c.id)
                    .map_err(|e| err(&format!("camera[{i}].id"), e.to_string()))?;
                if !recording.continuous.contains(&id) {
                    recording.continuous.push(id);
                }
            }
        }
        let cameras = self.file_cameras(base, &err)?;
        let sources = match &self.dispatch {
            Some(d) => {
                let token = std::fs::read_to_string(base.join(&d.service_token_file))
                    .map_err(|e| err("dispatch.service_token_file", e.to_string()))?
                    .trim()
                    .to_owned();
                if !(d.url.starts_with("http://") || d.url.starts_with("https://")) {
                    return Err(err(
                        "dispatch.url",
                        format!("{:?} is not an http(s) URL", d.url),
                    ));
                }
                SourcesConfig::Dispatch {
                    url: d.url.clone(),
                    token,
                    cameras,
                }
            }
            None => SourcesConfig::File(cameras),
        };
        Ok(Config {
            evidence_store,
            live,
            sources,
            recording,
            listen,
            node_id,
            data_dir: base.join(self.data_dir),
            token_key,
            signing_key,
            max_evidence_bytes: self.max_evidence_bytes,
            max_concurrent_uploads: self.max_concurrent_uploads,
            edges,
        })
    }

    /// The `[[camera]]` tables, checked, with their password files read.
    fn file_cameras(
        &self,
        base: &Path,
        err: &impl Fn(&str, String) -> ConfigError,
    ) -> Result<Vec<(CameraId, Source)>, ConfigError> {
        let mut cameras: Vec<(CameraId, Source)> = Vec::new();
        for (i, c) in self.camera.iter().enumerate() {
            let field = |f: &str| format!("camera[{i}].{f}");
            let id = CameraId::new(&c.id).map_err(|e| err(&field("id"), e.to_string()))?;
            if cameras.iter().any(|(seen, _)| seen == &id) {
                return Err(err(&field("id"), format!("camera {id} is listed twice")));
            }
            if let Some(edge) = &c.edge {
                if c.url.is_some() || c.sub_url.is_some() || c.password_file.is_some() {
                    return Err(err(
                        &field("edge"),
                        "a pushed camera has no url, sub_url or password_file".into(),
                    ));
                }
                EdgeId::new(edge).map_err(|e| err(&field("edge"), e.to_string()))?;
                cameras.push((
                    id,
                    Source::Edge {
                        edge_id: edge.clone(),
                    },
                ));
                continue;
            }
            let Some(main_url) = &c.url else {
                return Err(err(
                    &field("url"),
                    "is required (or `edge` for a camera its edge box pushes)".into(),
                ));
            };
            for (name, url) in [("url", Some(main_url)), ("sub_url", c.sub_url.as_ref())] {
                if let Some(url) = url
                    && !url.starts_with("rtsp://")
                    && !url.starts_with("rtsps://")
                {
                    return Err(err(&field(name), "must be an rtsp:// URL".into()));
                }
            }
            let password = c
                .password_file
                .as_ref()
                .map(|p| std::fs::read_to_string(base.join(p)).map(|s| s.trim_end().to_owned()))
                .transpose()
                .map_err(|e| err(&field("password_file"), e.to_string()))?;
            cameras.push((
                id,
                Source::Pull {
                    url: main_url.clone(),
                    sub_url: c.sub_url.clone(),
                    username: c.username.clone(),
                    password,
                },
            ));
        }
        Ok(cameras)
    }
}

fn validate_recording(
    r: &RecordingFile,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<RecordingSettings, ConfigError> {
    if !(1..=3600).contains(&r.segment_secs) {
        return Err(err(
            "recording.segment_secs",
            "must be between 1 and 3600".into(),
        ));
    }
    if r.max_bytes == Some(0) {
        return Err(err(
            "recording.max_bytes",
            "must be at least 1 (leave it out for no quota)".into(),
        ));
    }
    if r.max_age_hours == Some(0) {
        return Err(err(
            "recording.max_age_hours",
            "must be at least 1 (leave it out for no age limit)".into(),
        ));
    }
    let mut continuous = Vec::new();
    for (i, c) in r.continuous.iter().enumerate() {
        continuous.push(
            CameraId::new(c)
                .map_err(|e| err(&format!("recording.continuous[{i}]"), e.to_string()))?,
        );
    }
    Ok(RecordingSettings {
        segment: Duration::from_secs(r.segment_secs),
        limits: retention::Limits {
            max_bytes: r.max_bytes,
            max_age: r.max_age_hours.map(|h| Duration::from_secs(h * 3600)),
        },
        min_free_bytes: r.min_free_bytes,
        continuous,
        ..RecordingSettings::default()
    })
}

fn validate_live(
    l: &LiveFile,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<LiveSettings, ConfigError> {
    let ip = |field: &str, v: &str| {
        v.parse::<IpAddr>()
            .map_err(|e| err(field, format!("{v:?} is not an IP address ({e})")))
    };
    let bind_ip = ip("live.bind_ip", &l.bind_ip)?;
    let public_ip = l
        .public_ip
        .as_deref()
        .map(|v| ip("live.public_ip", v))
        .transpose()?;
    let ports = match (l.udp_port_min, l.udp_port_max) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(err(
                "live.udp_port_min",
                "is required with udp_port_max".into(),
            ));
        }
        (Some(min), max) => {
            let max = max.unwrap_or(min);
            if min == 0 || max < min {
                return Err(err(
                    "live.udp_port_max",
                    format!("{min}..={max} is not a port range"),
                ));
            }
            Some((min, max))
        }
    };
    if l.max_sessions == 0 {
        return Err(err("live.max_sessions", "must be at least 1".into()));
    }
    if l.gop_cache_bytes < 64 * 1024 {
        return Err(err("live.gop_cache_bytes", "must be at least 65536".into()));
    }
    if l.retry_initial_ms == 0 || l.retry_max_secs == 0 {
        return Err(err(
            "live.retry_initial_ms",
            "retry waits must be above 0".into(),
        ));
    }
    for (i, o) in l.allowed_origins.iter().enumerate() {
        if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
            return Err(err(
                &format!("live.allowed_origins[{i}]"),
                format!("{o:?} is not an origin like https://console.example"),
            ));
        }
    }
    let push_listen = l
        .push_listen
        .as_deref()
        .map(|v| {
            v.parse::<std::net::SocketAddr>()
                .map_err(|e| err("live.push_listen", format!("{v:?} is not ip:port ({e})")))
        })
        .transpose()?;
    if let Some(u) = &l.push_url
        && !(u.starts_with("rtsp://") && u.len() > "rtsp://".len())
    {
        return Err(err(
            "live.push_url",
            format!("{u:?} is not an rtsp:// URL like rtsp://gw.example:8554"),
        ));
    }
    if push_listen.is_some_and(|a| a.ip().is_unspecified()) && l.push_url.is_none() {
        return Err(err(
            "live.push_url",
            "is required when push_listen binds every interface: say what edges dial".into(),
        ));
    }
    Ok(LiveSettings {
        peer: PeerSettings {
            bind_ip,
            public_ip,
            ports,
            gather_timeout: Duration::from_secs(2),
        },
        linger: Duration::from_secs(l.linger_secs),
        start_timeout: Duration::from_secs(l.start_timeout_secs.max(1)),
        backoff: Backoff {
            initial: Duration::from_millis(l.retry_initial_ms),
            max: Duration::from_secs(l.retry_max_secs),
        },
        gop_cache_bytes: l.gop_cache_bytes,
        max_sessions: l.max_sessions,
        allowed_origins: l.allowed_origins.clone(),
        push_listen,
        push_url_base: l.push_url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bl_proto::SigningKey;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[1; 32]).verifying_key();
        std::fs::write(dir.path().join("token.pub"), hex::encode(key.as_bytes())).unwrap();
        let path = dir.path().join("gw.toml");
        (dir, path)
    }

    fn check(path: &Path, text: &str) -> Result<Config, String> {
        std::fs::write(path, text).unwrap();
        load(path).map_err(|e| e.to_string())
    }

    const MINIMAL: &str =
        "node_id = \"gw-1\"\ndata_dir = \"data\"\ntoken_public_key_file = \"token.pub\"\n";

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let (dir, path) = setup();
        let c = check(&path, MINIMAL).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse::<SocketAddr>().unwrap());
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert_eq!(c.max_evidence_bytes, DEFAULT_MAX_EVIDENCE_BYTES);
        assert_eq!(c.max_concurrent_uploads, DEFAULT_MAX_CONCURRENT_UPLOADS);
        assert!(c.signing_key.is_none());
        assert!(c.edges.is_empty());
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let (_dir, path) = setup();
        let e = check(&path, &format!("{MINIMAL}colour = 1\n")).unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let (_dir, path) = setup();
        let cases = [
            ("listen = \"nowhere\"\n", "`listen`"),
            ("max_evidence_bytes = 0\n", "`max_evidence_bytes`"),
            ("signing_key_file = \"missing.key\"\n", "`signing_key_file`"),
            (
                "[[edge]]\nid = \"Edge/1\"\npublic_key = \"x\"\n",
                "`edge[0].id`",
            ),
            (
                "[[edge]]\nid = \"e1\"\npublic_key = \"nope\"\n",
                "`edge[0].public_key`",
            ),
        ];
        for (extra, field) in cases {
            let e = check(&path, &format!("{MINIMAL}{extra}")).unwrap_err();
            assert!(e.contains(field), "{extra:?} gave {e}");
        }
        let e = check(&path, &MINIMAL.replace("gw-1", "GW 1")).unwrap_err();
        assert!(e.contains("`node_id`"), "{e}");
        let e = check(&path, &MINIMAL.replace("token.pub", "none.pub")).unwrap_err();
        assert!(e.contains("`token_public_key_file`"), "{e}");
    }

    #[test]
    fn live_settings_and_cameras_are_checked_by_field() {
        let (dir, path) = setup();
        std::fs::write(dir.path().join("cam.pw"), "secret\n").unwrap();
        let c = check(
            &path,
            &format!(
                "{MINIMAL}[live]\nbind_ip = \"127.0.0.1\"\npublic_ip = \"203.0.113.5\"\nudp_port_min = 40000\n\
                 [[camera]]\nid = \"cam-1\"\nurl = \"rtsp://10.0.0.5/main\"\nusername = \"v\"\npassword_file = \"cam.pw\"\n"
            ),
        )
        .unwrap();
        assert_eq!(c.live.peer.ports, Some((40000, 40000)));
        assert_eq!(c.live.linger, Duration::from_secs(10));
        let SourcesConfig::File(cams) = &c.sources else {
            panic!("file sources")
        };
        let Source::Pull { password, .. } = &cams[0].1 else {
            panic!("pull")
        };
        assert_eq!(password.as_deref(), Some("secret"));
        let cases = [
            ("[live]\npublic_ip = \"x\"\n", "`live.public_ip`"),
            (
                "[live]\nudp_port_min = 5\nudp_port_max = 4\n",
                "`live.udp_port_max`",
            ),
            (
                "[live]\nallowed_origins = [\"console\"]\n",
                "`live.allowed_origins[0]`",
            ),
            (
                "[[camera]]\nid = \"c\"\nurl = \"http://x\"\n",
                "`camera[0].url`",
            ),
            (
                "[[camera]]\nid = \"c\"\nurl = \"rtsp://x\"\npassword_file = \"no\"\n",
                "`camera[0].password_file`",
            ),
        ];
        for (extra, field) in cases {
            let e = check(&path, &format!("{MINIMAL}{extra}")).unwrap_err();
            assert!(e.contains(field), "{extra:?} gave {e}");
        }
    }

    #[test]
    fn pushed_cameras_and_the_push_server_are_read_and_checked_by_field() {
        let (_dir, path) = setup();
        let c = check(
            &path,
            &format!(
                "{MINIMAL}[live]\npush_listen = \"127.0.0.1:8554\"\n\
                 [[camera]]\nid = \"cam-9\"\nedge = \"edge-1\"\n"
            ),
        )
        .unwrap();
        assert_eq!(c.live.push_listen, Some("127.0.0.1:8554".parse().unwrap()));
        let SourcesConfig::File(cams) = &c.sources else {
            panic!("file sources")
        };
        assert!(matches!(&cams[0].1, Source::Edge { edge_id } if edge_id == "edge-1"));
        let cases = [
            ("[live]\npush_listen = \"8554\"\n", "`live.push_listen`"),
            (
                "[live]\npush_listen = \"0.0.0.0:8554\"\n",
                "`live.push_url`",
            ),
            ("[live]\npush_url = \"http://gw\"\n", "`live.push_url`"),
            (
                "[[camera]]\nid = \"c\"\nedge = \"e1\"\nurl = \"rtsp://x\"\n",
                "`camera[0].edge`",
            ),
            ("[[camera]]\nid = \"c\"\n", "`camera[0].url`"),
        ];
        for (extra, field) in cases {
            let e = check(&path, &format!("{MINIMAL}{extra}")).unwrap_err();
            assert!(e.contains(field), "{extra:?} gave {e}");
        }
    }

    #[test]
    fn recording_settings_and_continuous_cameras_are_read_and_checked_by_field() {
        let (_dir, path) = setup();
        let c = check(&path, MINIMAL).unwrap();
        assert_eq!(c.recording.segment, Duration::from_secs(10));
        assert!(c.recording.limits.max_bytes.is_none() && c.recording.continuous.is_empty());
        let c = check(
            &path,
            &format!(
                "{MINIMAL}[recording]\nsegment_secs = 4\nmax_bytes = 1000000\nmax_age_hours = 48\n\
                 [[camera]]\nid = \"cam-1\"\nurl = \"rtsp://x/1\"\nrecord = \"continuous\"\n\
                 [[camera]]\nid = \"cam-2\"\nurl = \"rtsp://x/2\"\n"
            ),
        )
        .unwrap();
        assert_eq!(c.recording.segment, Duration::from_secs(4));
        assert_eq!(c.recording.limits.max_bytes, Some(1_000_000));
        assert_eq!(
            c.recording.limits.max_age,
            Some(Duration::from_secs(48 * 3600))
        );
        assert_eq!(
            c.recording.continuous,
            ["cam-1".parse::<CameraId>().unwrap()]
        );
        let cases = [
            (
                "[recording]\nsegment_secs = 0\n",
                "`recording.segment_secs`",
            ),
            ("[recording]\nmax_bytes = 0\n", "`recording.max_bytes`"),
            (
                "[recording]\ncontinuous = [\"A B\"]\n",
                "`recording.continuous[0]`",
            ),
            (
                "[[camera]]\nid = \"c\"\nurl = \"rtsp://x\"\nrecord = \"always\"\n",
                "unknown variant `always`, expected `on_request` or `continuous`",
            ),
        ];
        for (extra, field) in cases {
            let e = check(&path, &format!("{MINIMAL}{extra}")).unwrap_err();
            assert!(e.contains(field), "{extra:?} gave {e}");
        }
    }

    #[test]
    fn file_cameras_are_kept_beside_dispatch() {
        let (dir, path) = setup();
        std::fs::write(dir.path().join("svc.token"), "svc-token\n").unwrap();
        let c = check(
            &path,
            &format!(
                "{MINIMAL}[dispatch]
url = \"http://127.0.0.1:9\"
service_token_file = \"svc.token\"
                 [[camera]]
id = \"cam-1\"
url = \"rtsp://10.0.0.5/main\"
"
            ),
        )
        .unwrap();
        let SourcesConfig::Dispatch { token, cameras, .. } = &c.sources else {
            panic!("dispatch sources")
        };
        assert_eq!(token, "svc-token");
        assert_eq!(cameras.len(), 1);
        assert_eq!(cameras[0].0.as_str(), "cam-1");
    }

    #[test]
    fn an_edge_listed_twice_is_refused() {
        let (_dir, path) = setup();
        let key = hex::encode(SigningKey::from_bytes(&[2; 32]).verifying_key().as_bytes());
        let edge = format!("[[edge]]\nid = \"e1\"\npublic_key = \"{key}\"\n");
        let e = check(&path, &format!("{MINIMAL}{edge}{edge}")).unwrap_err();
        assert!(e.contains("`edge[1].id`") && e.contains("twice"), "{e}");
    }
}
