//! Which of a camera's encoder streams is meant; shared by live commands and media tokens.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A camera's main (full resolution) or sub (small, for wall tiles) stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Stream {
    /// Full-resolution stream, used when a tile is maximised.
    Main,
    /// Low-resolution stream, used for small tiles on the video wall.
    Sub,
}

impl Stream {
    /// The wire name, `main` or `sub`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Main => "main",
            Stream::Sub => "sub",
        }
    }
}
