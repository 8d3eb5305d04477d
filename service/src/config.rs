//! TOML configuration files.
//!
//! Every service describes its file as structs with `#[serde(deny_unknown_fields)]` and a doc comment
//! per field stating its default; [`load`] and [`parse`] turn any mistake into an error that names the
//! file, the line and the field, so an operator can fix it without reading code.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, a field is unknown, missing or has the wrong type.
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// The values parse but break a rule (checked by the service's own `validate`).
    #[error("config file {path}: field `{field}`: {message}")]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
}

/// Reads and parses the TOML file at `path`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Parses TOML `text` that came from `path` (the path is only used in error messages).
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        message: describe(&e, text),
    })
}

/// A validation failure of one field, for a service's `validate` step after parsing.
pub fn field_error(path: &Path, field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        path: path.to_owned(),
        field: field.to_owned(),
        message: message.into(),
    }
}

/// One line: "line 3, column 7: unknown field `prot`, expected one of `port`, `host`".
fn describe(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim_end().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        port: u16,
        #[serde(default)]
        #[allow(dead_code)]
        camera: Vec<Camera>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Camera {
        #[allow(dead_code)]
        id: String,
    }

    fn err(text: &str) -> String {
        parse::<Sample>(Path::new("edge.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn an_unknown_field_is_named_with_its_line_and_the_expected_fields() {
        let e = err("port = 1\nprot = 2\n");
        assert!(e.contains("edge.toml"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("unknown field `prot`"), "{e}");
        assert!(e.contains("`port`"), "{e}");
    }

    #[test]
    fn a_wrong_type_inside_a_table_array_names_the_line() {
        let e = err("port = 1\n[[camera]]\nid = 5\n");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let e = err("");
        assert!(e.contains("missing field `port`"), "{e}");
    }

    #[test]
    fn an_out_of_range_number_is_rejected() {
        let e = err("port = 70000\n");
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let e = load::<Sample>(Path::new("/nonexistent/bl.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/bl.toml"), "{e}");
    }

    #[test]
    fn field_errors_name_the_field() {
        let e = field_error(Path::new("gw.toml"), "recording.dir", "must be absolute");
        assert_eq!(
            e.to_string(),
            "config file gw.toml: field `recording.dir`: must be absolute"
        );
    }
}
