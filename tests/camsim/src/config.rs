//! The server's configuration: the TOML file, the quick command-line camera specs, and their
//! resolution into a validated [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;
use crate::scenario::{Scenario, valid_id};

/// Video codec of a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    #[default]
    H264,
    H265,
}

/// Audio track of a camera's main stream: kitchen ambience (quiet noise) with a marker tone of
/// [`MARKER_TONE_HZ`], so a test can recognise the camera's own sound wherever it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audio {
    /// G.711 µ-law, 8 kHz mono, RTP payload type 0.
    Pcmu,
    /// G.711 A-law, 8 kHz mono, RTP payload type 8.
    Pcma,
    /// AAC-LC, 16 kHz mono, RTP `MPEG4-GENERIC` (RFC 3640), payload type 97.
    Aac,
}

/// The frequency of the marker tone in every camera's audio.
pub const MARKER_TONE_HZ: u32 = 700;

/// The config file as written (`camsim --config FILE`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address the RTSP server listens on; port 0 picks a free port. Default `127.0.0.1:8554`.
    #[serde(default)]
    pub listen: Option<String>,
    /// Directory for `{camera}.jsonl` ground-truth files, relative to the config file. Default: none
    /// written.
    #[serde(default)]
    pub truth_dir: Option<PathBuf>,
    /// The cameras. At least one.
    #[serde(default, rename = "camera")]
    pub cameras: Vec<FileCamera>,
    /// Address of the HTTP control endpoint that plays scenes on cameras at run time (port 0
    /// picks one). Default: none, no endpoint.
    #[serde(default)]
    pub control: Option<String>,
    /// Folder of scenario files the control endpoint can play, by their `name`, relative to the
    /// config file. Default: none (then only the cameras' own scenarios).
    #[serde(default)]
    pub scenes_dir: Option<PathBuf>,
}

/// One `[[camera]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCamera {
    /// `[a-z0-9][a-z0-9_-]{0,63}`, unique. Required.
    pub id: String,
    /// Scenario file, relative to the config file. Required.
    pub scenario: PathBuf,
    /// `h264` or `h265`. Default `h264`.
    #[serde(default)]
    pub codec: Codec,
    /// An audio track on the main stream: `pcmu`, `pcma` or `aac`. Default: none, except `pcmu`
    /// with `onvif_backchannel` (such cameras have a microphone too).
    #[serde(default)]
    pub audio: Option<Audio>,
    /// Serve the main stream with an ONVIF audio backchannel. Default false.
    #[serde(default)]
    pub onvif_backchannel: bool,
    /// Where backchannel audio is recorded, relative to the config file. Required with
    /// `onvif_backchannel`.
    #[serde(default)]
    pub record_dir: Option<PathBuf>,
}

/// A validated camera.
#[derive(Debug, Clone)]
pub struct CameraConfig {
    pub id: String,
    pub scenario: Scenario,
    pub codec: Codec,
    /// The main stream's audio track, if any.
    pub audio: Option<Audio>,
    /// `Some(dir)`: serve an ONVIF backchannel recording to `dir`.
    pub backchannel_dir: Option<PathBuf>,
}

impl CameraConfig {
    /// An H.264 camera without backchannel.
    pub fn new(id: &str, scenario: Scenario) -> CameraConfig {
        CameraConfig {
            id: id.to_string(),
            scenario,
            codec: Codec::H264,
            audio: None,
            backchannel_dir: None,
        }
    }
}

/// A validated server configuration, what [`crate::serve`] takes.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub truth_dir: Option<PathBuf>,
    pub cameras: Vec<CameraConfig>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8554";

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        message: message.into(),
    }
}

/// Parses a listen address such as `127.0.0.1:8554` or `0.0.0.0:0`.
pub fn parse_listen(field: &str, s: &str) -> Result<SocketAddr, Error> {
    s.parse().map_err(|_| {
        invalid(
            field,
            format!("{s:?} is not an address like 127.0.0.1:8554"),
        )
    })
}

impl Config {
    /// Resolves a config file's contents; relative paths are taken from `base` (the file's folder).
    pub fn from_file(fc: FileConfig, base: &Path) -> Result<Config, Error> {
        let listen = parse_listen("listen", fc.listen.as_deref().unwrap_or(DEFAULT_LISTEN))?;
        let mut cameras = Vec::new();
        for (i, c) in fc.cameras.into_iter().enumerate() {
            let scenario = Scenario::load(&base.join(&c.scenario))?;
            let backchannel_dir = match (c.onvif_backchannel, c.record_dir) {
                (true, Some(d)) => Some(base.join(d)),
                (true, None) => {
                    return Err(invalid(
                        format!("camera[{i}].record_dir"),
                        "is required with onvif_backchannel",
                    ));
                }
                (false, _) => None,
            };
            let audio = c.audio.or(backchannel_dir.as_ref().map(|_| Audio::Pcmu));
            cameras.push(CameraConfig {
                id: c.id,
                scenario,
                codec: c.codec,
                audio,
                backchannel_dir,
            });
        }
        let c = Config {
            listen,
            truth_dir: fc.truth_dir.map(|d| base.join(d)),
            cameras,
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks ids (pattern, uniqueness) and that there is a camera.
    pub fn validate(&self) -> Result<(), Error> {
        if self.cameras.is_empty() {
            return Err(invalid("camera", "at least one camera is needed"));
        }
        for (i, c) in self.cameras.iter().enumerate() {
            if !valid_id(&c.id) {
                return Err(invalid(
                    format!("camera[{i}].id"),
                    format!("{:?} must match [a-z0-9][a-z0-9_-]{{0,63}}", c.id),
                ));
            }
            if self.cameras[..i].iter().any(|o| o.id == c.id) {
                return Err(invalid(
                    format!("camera[{i}].id"),
                    format!("{:?} is used twice", c.id),
                ));
            }
        }
        Ok(())
    }
}

/// Every scenario file (`*.toml`) in `dir`, for the control endpoint; errors name the file.
pub fn load_scenes(dir: &Path) -> Result<Vec<Scenario>, Error> {
    let io = |source| Error::Io {
        what: format!("read the scenes folder {}", dir.display()),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    paths.iter().map(|p| Ok(Scenario::load(p)?)).collect()
}

/// Parses a quick camera spec `ID=SCENARIO_PATH[,h264|h265][,pcmu|pcma|aac]` from the command line.
pub fn parse_camera_spec(spec: &str) -> Result<CameraConfig, Error> {
    let field = "--camera";
    let usage = "ID=SCENARIO_PATH[,h264|h265][,pcmu|pcma|aac]";
    let (id, rest) = spec
        .split_once('=')
        .ok_or_else(|| invalid(field, format!("{spec:?} is not {usage}")))?;
    let mut parts = rest.split(',');
    let path = parts.next().unwrap_or_default();
    let (mut codec, mut audio) = (Codec::H264, None);
    for option in parts {
        match option {
            "h264" => codec = Codec::H264,
            "h265" => codec = Codec::H265,
            "pcmu" => audio = Some(Audio::Pcmu),
            "pcma" => audio = Some(Audio::Pcma),
            "aac" => audio = Some(Audio::Aac),
            other => {
                return Err(invalid(
                    field,
                    format!("unknown option {other:?} in {spec:?}, use {usage}"),
                ));
            }
        }
    }
    if !valid_id(id) {
        return Err(invalid(
            field,
            format!("camera id {id:?} must match [a-z0-9][a-z0-9_-]{{0,63}}"),
        ));
    }
    let scenario = Scenario::load(Path::new(path))?;
    Ok(CameraConfig {
        id: id.to_string(),
        scenario,
        codec,
        audio,
        backchannel_dir: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_spec_names_id_scenario_and_codec() {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/pharmacy.toml");
        let c = parse_camera_spec(&format!("ph-1={p},h265")).unwrap();
        assert_eq!((c.id.as_str(), c.codec), ("ph-1", Codec::H265));
        assert_eq!(
            parse_camera_spec(&format!("ph-1={p}")).unwrap().codec,
            Codec::H264
        );
        let c = parse_camera_spec(&format!("ph-1={p},pcma")).unwrap();
        assert_eq!((c.codec, c.audio), (Codec::H264, Some(Audio::Pcma)));
        let e = parse_camera_spec(&format!("Bad={p}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--camera") && e.contains("Bad"), "{e}");
        let e = parse_camera_spec(&format!("ph-1={p},opus"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("opus"), "{e}");
    }

    #[test]
    fn the_demo_config_resolves_with_four_cameras() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(dir.join("demo.toml")).unwrap();
        let fc: FileConfig = toml::from_str(&text).unwrap();
        let c = Config::from_file(fc, dir).unwrap();
        assert_eq!(c.cameras.len(), 4);
    }

    #[test]
    fn duplicate_camera_ids_are_rejected_naming_the_field() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let fc: FileConfig = toml::from_str(
            "[[camera]]\nid = \"a\"\nscenario = \"scenarios/pharmacy.toml\"\n[[camera]]\nid = \"a\"\nscenario = \"scenarios/pharmacy.toml\"\n",
        )
        .unwrap();
        let e = Config::from_file(fc, dir).unwrap_err().to_string();
        assert!(e.contains("camera[1].id"), "{e}");
    }
}
