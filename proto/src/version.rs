//! The payload version field, `"v": 1`.
//!
//! Within v1, fields may be added (readers ignore fields they do not know), never removed or changed in
//! meaning; anything else bumps the version, and an old build then refuses the payload with a clear
//! "upgrade" message (see [`crate::decode()`]) instead of misreading it.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The one payload version this build writes and understands.
pub const SUPPORTED_VERSION: u64 = 1;

/// The `v` field of every payload: serialises as the number `1` and accepts nothing else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct V1;

impl Serialize for V1 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(SUPPORTED_VERSION)
    }
}

impl<'de> Deserialize<'de> for V1 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        if v == SUPPORTED_VERSION {
            Ok(V1)
        } else {
            Err(serde::de::Error::custom(format_args!(
                "payload version {v} is not {SUPPORTED_VERSION}"
            )))
        }
    }
}

impl JsonSchema for V1 {
    fn schema_name() -> Cow<'static, str> {
        "V1".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Payload version; this schema describes version 1.",
            "type": "integer",
            "const": SUPPORTED_VERSION,
        })
    }
}
