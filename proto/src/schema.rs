//! JSON Schemas of every message, for implementers outside this workspace (and the docs).
//!
//! The checked-in copies under `docs/reference/schema/` are compared with these by a test, so the
//! published reference cannot drift from the code; `make schemas` (the `export-schemas` binary)
//! rewrites them.

use schemars::{JsonSchema, Schema, generate::SchemaSettings};

use crate::command::{Command, CommandResult};
use crate::config::EdgeConfig;
use crate::decode::Message;
use crate::event::EdgeEvent;
use crate::evidence::EvidenceMeta;
use crate::state::EdgeState;
use crate::token::MediaClaims;

/// Where the schemas live, relative to the workspace root.
pub const SCHEMA_DIR: &str = "docs/reference/schema";

fn schema_of<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// Every schema as (file stem, schema); the file is `{stem}.schema.json`.
pub fn all() -> Vec<(&'static str, Schema)> {
    vec![
        (EdgeState::SCHEMA_NAME, schema_of::<EdgeState>()),
        (EdgeEvent::SCHEMA_NAME, schema_of::<EdgeEvent>()),
        (Command::SCHEMA_NAME, schema_of::<Command>()),
        (CommandResult::SCHEMA_NAME, schema_of::<CommandResult>()),
        (EdgeConfig::SCHEMA_NAME, schema_of::<EdgeConfig>()),
        ("media-claims", schema_of::<MediaClaims>()),
        ("evidence-meta", schema_of::<EvidenceMeta>()),
    ]
}

/// The exact file content for a schema: pretty JSON and a trailing newline.
pub fn render(schema: &Schema) -> String {
    let mut s = serde_json::to_string_pretty(schema).expect("schemas always serialise");
    s.push('\n');
    s
}
