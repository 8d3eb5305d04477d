//! Identifiers that become MQTT topic segments and file-system path components.
//!
//! This is the one place where such identifiers are validated (DESIGN §6): once a value has one of these
//! types it is safe to put in `bl/v1/edge/{edge}/…` or in `…/{camera}/segments/`, because it cannot hold
//! `/`, `+`, `#`, `..`, whitespace, uppercase or anything outside `[a-z0-9_-]`. Deserialising validates too,
//! so a payload with a bad id never becomes a value.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest identifier accepted, in bytes (= characters, as only ASCII is allowed).
pub const MAX_ID_LEN: usize = 64;

/// The rule every identifier follows, as a regular expression (also used in the JSON Schemas).
pub const ID_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";

/// The rule in words, for error messages shown to people who typed a bad id.
pub const ID_RULE: &str =
    "1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit";

/// Offending values are echoed in errors but cut to this many characters, so that a hostile
/// megabyte-long "id" does not end up whole in every log line.
const ECHO_LIMIT: usize = 80;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {problem}; ids are {ID_RULE}")]
pub struct IdError {
    /// Which kind of id was being parsed, e.g. "edge id".
    pub kind: &'static str,
    /// The offending value (cut to 80 characters).
    pub value: String,
    /// What exactly is wrong with it.
    pub problem: IdProblem,
}

/// The specific way an identifier breaks [`ID_RULE`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdProblem {
    /// The string is empty.
    #[error("it is empty")]
    Empty,
    /// The string is longer than [`MAX_ID_LEN`].
    #[error("it is {len} characters long")]
    TooLong {
        /// Length of the rejected value in bytes.
        len: usize,
    },
    /// The first character is `_` or `-`.
    #[error("it starts with {ch:?}")]
    BadStart {
        /// The rejected first character.
        ch: char,
    },
    /// A character outside `[a-z0-9_-]`.
    #[error("{ch:?} at position {at} is not allowed")]
    BadChar {
        /// The rejected character.
        ch: char,
        /// Its character index (0-based).
        at: usize,
    },
}

/// Checks `value` against [`ID_RULE`]; `kind` names the id in the error ("edge id", "camera id", …).
pub fn validate_id(kind: &'static str, value: &str) -> Result<(), IdError> {
    let fail = |problem| IdError {
        kind,
        value: value.chars().take(ECHO_LIMIT).collect(),
        problem,
    };
    if value.is_empty() {
        return Err(fail(IdProblem::Empty));
    }
    if value.len() > MAX_ID_LEN {
        return Err(fail(IdProblem::TooLong { len: value.len() }));
    }
    for (at, ch) in value.chars().enumerate() {
        let ok = ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-';
        if !ok {
            return Err(fail(IdProblem::BadChar { ch, at }));
        }
        if at == 0 && (ch == '_' || ch == '-') {
            return Err(fail(IdProblem::BadStart { ch }));
        }
    }
    Ok(())
}

/// Defines a validated identifier newtype: parsing, display, serde that validates, and a JSON Schema
/// string with [`ID_PATTERN`]. One macro so that every id kind follows exactly the same rule.
macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// What this id is called in error messages.
            pub const KIND: &'static str = $kind;

            /// Validates and wraps `value`.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate_id(Self::KIND, &value)?;
                Ok(Self(value))
            }

            /// The id as a string slice (always matches [`ID_PATTERN`]).
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::new(raw).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "description": concat!("Identifier (", $kind, "): ", "1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit."),
                    "pattern": ID_PATTERN,
                    "minLength": 1,
                    "maxLength": MAX_ID_LEN,
                })
            }
        }
    };
}

define_id!(
    /// An edge box (one per premises, usually): the `{edge}` in `bl/v1/edge/{edge}/…`.
    EdgeId,
    "edge id"
);

define_id!(
    /// A camera, unique across the district; names recording and evidence directories.
    CameraId,
    "camera id"
);

define_id!(
    /// A media-gateway node; media tokens are bound to the node that owns the camera.
    GatewayNodeId,
    "gateway node id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lowercase_ids_with_digits_dashes_and_underscores_are_accepted() {
        for ok in ["a", "0", "edge-01", "mtg_school_3", "x".repeat(64).as_str()] {
            assert_eq!(EdgeId::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn ids_that_could_escape_a_topic_or_a_path_are_rejected() {
        for bad in [
            "", "/", "a/b", "+", "#", "..", "../etc", ".hidden", "A", "Edge", "a b", " a", "a\n",
            "-a", "_a", "é", "a\0",
        ] {
            assert!(CameraId::new(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(CameraId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn the_error_names_the_kind_of_id_the_value_and_the_rule() {
        let e = GatewayNodeId::new("Node/1").unwrap_err().to_string();
        assert!(e.contains("gateway node id"), "{e}");
        assert!(e.contains("\"Node/1\""), "{e}");
        assert!(e.contains("'N' at position 0"), "{e}");
        assert!(e.contains(ID_RULE), "{e}");
    }

    #[test]
    fn a_huge_bad_id_is_echoed_only_in_part() {
        let e = EdgeId::new("Z".repeat(100_000)).unwrap_err();
        assert_eq!(e.value.len(), 80);
        assert_eq!(e.problem, IdProblem::TooLong { len: 100_000 });
    }

    #[test]
    fn deserialising_an_id_validates_it() {
        let ok: EdgeId = serde_json::from_str("\"edge-7\"").unwrap();
        assert_eq!(ok.to_string(), "edge-7");
        let err = serde_json::from_str::<EdgeId>("\"../x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid edge id"), "{err}");
    }
}
