//! **Brightline's wire vocabulary: every byte that crosses a process boundary is shaped, versioned and
//! validated here, and nowhere else.**
//!
//! This crate holds serde types only and does no I/O, so the edge agent, the media gateway, dispatch and
//! the test tools can share it without pulling in a runtime. The pieces:
//!
//! - [`id`]: identifiers that end up in MQTT topics and file paths, validated in this one place;
//! - [`topic`]: the MQTT topic tree of DESIGN §3.1, built and parsed;
//! - [`mod@decode`] / [`version`]: the one way to turn untrusted bytes into a message (`"v": 1`, `"type"`);
//! - [`state`], [`event`], [`command`], [`config`]: the MQTT payloads;
//! - [`evidence`]: blob references, evidence upload headers and their device signature;
//! - [`keys`]: Ed25519 keys as text (hex or base64), parsed and written in one place;
//! - [`token`]: the short-lived media token dispatch signs and the gateway verifies;
//! - [`voice`]: the center's voice warnings for an edge and the signed fetch of their audio;
//! - [`schema`]: JSON Schemas of all of the above for outsiders.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broadcast_token;
pub mod clip_token;
pub mod command;
pub mod config;
pub mod decode;
pub mod event;
pub mod evidence;
pub mod floor_token;
pub mod id;
pub mod keys;
pub mod schema;
pub mod state;
pub mod stream;
pub mod time;
pub mod token;
pub mod topic;
pub mod version;
pub mod voice;

mod check;

pub use decode::{DecodeError, Message, decode, encode};
pub use id::{CameraId, EdgeId, GatewayNodeId, IdError};
pub use version::V1;

/// Re-exported so users sign and verify with exactly the key types this crate was built against.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
