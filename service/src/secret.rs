//! Secrets (camera passwords, keys, tokens) in a type whose `Debug` and `Display` never print them.
//!
//! Config takes secrets from files ([`Secret::from_file`]) so they stay out of config files, process
//! listings and shell history.

use std::fmt;
use std::path::Path;

/// A value that must never reach a log. Read it with [`Secret::expose`], only where it is used.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Reads a secret from a file, dropping one trailing newline (as editors and `echo` add).
    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        Ok(Self(text.to_owned()))
    }

    /// The secret itself; call it at the point of use, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[redacted]\")")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Writes a URL with any `user:password@` part replaced, for logs: `rtsp://[redacted]@10.0.0.5/ch1`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}[redacted]@{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_secret_file_loses_only_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "p@ss word\n").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), "p@ss word");
    }

    #[test]
    fn credentials_in_urls_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_url("rtsp://admin:s3cr@t@10.1.2.3:554/Streaming/101?x=1"),
            "rtsp://[redacted]@10.1.2.3:554/Streaming/101?x=1"
        );
        assert_eq!(redact_url("rtsp://cam.local/live"), "rtsp://cam.local/live");
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(
            redact_url("rtsp://host/path@weird"),
            "rtsp://host/path@weird"
        );
    }
}
