//! The one way to turn untrusted bytes into a message, and the one way back.
//!
//! [`decode`] reads the envelope first (`"v"`, `"type"`) so that a payload from a newer build or of the
//! wrong kind is refused with a message that says so, instead of a confusing serde error about some field.
//! Only then are the fields deserialised (errors name the field path, e.g. `boxes[0].x`) and checked for
//! rules serde cannot express ([`Message::validate`]). It never panics, whatever the input.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::version::SUPPORTED_VERSION;

/// Payloads larger than this are refused before parsing: MQTT allows 256 MiB messages, and nothing in
/// this vocabulary legitimately comes near 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// A payload type carried on the wire: JSON, `"v": 1`, internally tagged with `"type"`.
pub trait Message: Serialize + DeserializeOwned {
    /// Every `"type"` value this message may carry (one for a struct, one per variant for an enum).
    const TYPES: &'static [&'static str];

    /// Stem of the JSON Schema file describing it, e.g. `edge-state`.
    const SCHEMA_NAME: &'static str;

    /// Checks rules that the types alone cannot express (ranges, orderings, uniqueness).
    fn validate(&self) -> Result<(), Violation> {
        Ok(())
    }

    /// Deserialises a payload whose `v` and `type` were already checked.
    ///
    /// The default runs serde with path tracking. Messages built from internally tagged enums or
    /// `#[serde(flatten)]` override it to dispatch on `ty` themselves, because serde buffers such
    /// content and loses the field path of an error inside it.
    fn from_checked(ty: &str, value: &Value) -> Result<Self, Violation> {
        let _ = ty;
        tracked(value)
    }
}

/// A rule broken inside a payload: where (`path`, e.g. `boxes[0].x`, or `.` for the whole payload) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{detail}", at(path))]
pub struct Violation {
    /// Dotted path of the offending field; `.` for the payload as a whole.
    pub path: String,
    /// What is wrong, in words.
    pub detail: String,
}

impl Violation {
    /// A violation at `path`.
    pub fn new(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// Prefixes the path with `parent` (used when a nested value is validated on its own).
    pub fn under(mut self, parent: &str) -> Self {
        self.path = if self.path == "." {
            parent.to_string()
        } else if self.path.starts_with('[') {
            format!("{parent}{}", self.path)
        } else {
            format!("{parent}.{}", self.path)
        };
        self
    }
}

fn at(path: &str) -> String {
    if path == "." || path.is_empty() {
        String::new()
    } else {
        format!("`{path}`: ")
    }
}

/// Why bytes could not be decoded into a message. Every variant reads as a sentence for a log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// More than [`MAX_PAYLOAD_BYTES`].
    #[error("payload is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Size of the rejected payload.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not valid JSON (or not UTF-8).
    #[error("payload is not JSON: {detail}")]
    NotJson {
        /// The parser's complaint, with line and column.
        detail: String,
    },
    /// Valid JSON, but not an object.
    #[error("payload is a JSON {got}, expected an object with \"v\" and \"type\"")]
    NotAnObject {
        /// What it was instead: "array", "string", …
        got: &'static str,
    },
    /// No `"v"` field.
    #[error(
        "payload has no \"v\" field; every Brightline payload carries \"v\": {SUPPORTED_VERSION}"
    )]
    MissingVersion,
    /// `"v"` is present but not a positive integer.
    #[error("payload \"v\" is {got}, expected the number {SUPPORTED_VERSION}")]
    BadVersion {
        /// The value as JSON text.
        got: String,
    },
    /// `"v"` is newer than this build.
    #[error("payload version {got} is newer than this build understands ({supported}); upgrade")]
    UnsupportedVersion {
        /// The version found.
        got: u64,
        /// The version this build understands.
        supported: u64,
    },
    /// `"type"` missing, not a string, or not one this message knows.
    #[error("{}; expected one of: {}", describe_type(got), expected.join(", "))]
    UnknownType {
        /// The `type` found (JSON text if it was not a string), or `None` when absent.
        got: Option<String>,
        /// The types the caller was decoding.
        expected: &'static [&'static str],
    },
    /// The envelope is fine but a field is missing, has the wrong type, or breaks a rule.
    #[error("invalid {ty} payload: {}{detail}", at(path))]
    Invalid {
        /// The payload's `type`.
        ty: String,
        /// Path of the offending field, `.` for the payload as a whole.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

fn describe_type(got: &Option<String>) -> String {
    match got {
        None => "payload has no \"type\" field".to_string(),
        Some(t) => format!("payload type {t:?} is not one this receiver accepts"),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Echoes of untrusted values in errors are cut to this many characters.
const ECHO_LIMIT: usize = 80;

fn echo(s: &str) -> String {
    s.chars().take(ECHO_LIMIT).collect()
}

/// Decodes untrusted bytes into `M`: size, JSON, object, version, type, fields, then [`Message::validate`].
pub fn decode<M: Message>(bytes: &[u8]) -> Result<M, DecodeError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| DecodeError::NotJson {
        detail: e.to_string(),
    })?;
    let Value::Object(obj) = &value else {
        return Err(DecodeError::NotAnObject {
            got: json_kind(&value),
        });
    };
    match obj.get("v") {
        None => return Err(DecodeError::MissingVersion),
        Some(v) => match v.as_u64() {
            Some(SUPPORTED_VERSION) => {}
            Some(n) if n > SUPPORTED_VERSION => {
                return Err(DecodeError::UnsupportedVersion {
                    got: n,
                    supported: SUPPORTED_VERSION,
                });
            }
            _ => {
                return Err(DecodeError::BadVersion {
                    got: echo(&v.to_string()),
                });
            }
        },
    }
    let ty = match obj.get("type") {
        Some(Value::String(s)) if M::TYPES.contains(&s.as_str()) => s.as_str(),
        other => {
            return Err(DecodeError::UnknownType {
                got: other.map(|t| match t {
                    Value::String(s) => echo(s),
                    other => echo(&other.to_string()),
                }),
                expected: M::TYPES,
            });
        }
    };
    let invalid = |v: Violation| DecodeError::Invalid {
        ty: ty.to_string(),
        path: v.path,
        detail: v.detail,
    };
    let msg = M::from_checked(ty, &value).map_err(invalid)?;
    msg.validate().map_err(invalid)?;
    Ok(msg)
}

/// Encodes a message as compact JSON. Infallible for this crate's types (all map keys are strings).
pub fn encode<M: Message>(msg: &M) -> Vec<u8> {
    serde_json::to_vec(msg).expect("proto messages always serialise: every map key is a string")
}

/// Deserialises `T` from `value`, reporting the path of the first offending field.
pub fn tracked<T: DeserializeOwned>(value: &Value) -> Result<T, Violation> {
    serde_path_to_error::deserialize(value).map_err(|e| Violation {
        path: e.path().to_string(),
        detail: e.inner().to_string(),
    })
}

/// Adds the `"type": "<tag>"` property to a struct's JSON Schema.
///
/// serde writes the tag of `#[serde(tag = "type")]` structs but schemars does not describe it, so
/// structs that are messages of their own attach this with `#[schemars(transform = TypeTag("…"))]`.
#[derive(Debug, Clone, Copy)]
pub struct TypeTag(pub &'static str);

impl schemars::transform::Transform for TypeTag {
    fn transform(&mut self, schema: &mut schemars::Schema) {
        let obj = schema.ensure_object();
        let props = obj
            .entry("properties")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(props) = props {
            props.insert(
                "type".to_string(),
                serde_json::json!({ "type": "string", "const": self.0 }),
            );
        }
        let required = obj
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(req) = required
            && !req.iter().any(|r| r == "type")
        {
            req.insert(0, Value::String("type".to_string()));
        }
    }
}
