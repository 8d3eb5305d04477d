//! camsim: simulated RTSP cameras for Brightline's tests and demo.
//!
//! Each camera plays a scenario file (see [`scenario`]); frame `n` is a pure function of the scenario
//! and `n`, carries `n` in a code strip ([`read_frame_number`]), and has ground truth ([`truth`]).
#![forbid(unsafe_code)]

pub mod backchannel;
pub mod config;
pub mod framecode;
pub mod render;
pub mod scenario;
pub mod scene;
mod server;
pub mod tone;
pub mod truth;

pub use config::{Audio, CameraConfig, Codec, Config, MARKER_TONE_HZ};
pub use framecode::read_frame_number;
pub use render::{Frame, Renderer};
pub use scenario::{Scenario, ScenarioError};
pub use server::{Server, Stream, serve};

/// Everything that can go wrong starting camsim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("config field `{field}`: {message}")]
    Config { field: String, message: String },
    #[error("gstreamer: {0} (are the GStreamer plugins installed? run deploy/dev/install-deps.sh)")]
    Gst(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}
