//! Service plumbing shared by every Brightline binary (`dispatch`, `media-gateway`, `edge-agent`,
//! `camsim`), so that each exists once: log set-up, TOML config loading with errors that name the
//! field, secrets that never print, and two-phase signal shutdown.
#![forbid(unsafe_code)]

pub mod config;
pub mod secret;
pub mod shutdown;
pub mod telemetry;
