//! `[ws]`: the consoles' WebSocket.

use serde::Deserialize;

/// `[ws]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsConfig {
    /// Origins allowed to open `/api/ws` besides the server's own (the request's `Host`), exactly as
    /// browsers send them, e.g. `"https://console.example.cn"` (scheme, host, optional port; no
    /// path). Default `[]`.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// How often each socket re-checks its session (expiry, a disabled user, a changed role or
    /// scope); a logout closes sockets at once. Default `30`; 1 to 3600.
    #[serde(default = "default_session_check")]
    pub session_check_secs: u64,
    /// Changes held for the slowest socket; a socket that falls this far behind is told to
    /// `resync` (reload) instead of growing memory. Default `1024`; 16 to 65536.
    #[serde(default = "default_buffer")]
    pub buffer: usize,
    /// A socket whose client takes longer than this to accept one message is closed. Default `10`;
    /// 1 to 300.
    #[serde(default = "default_send_timeout")]
    pub send_timeout_secs: u64,
    /// Most open sockets per replica; beyond it `/api/ws` answers 503 `ws_full`. Default `1000`;
    /// at least 1.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_session_check() -> u64 {
    30
}
fn default_buffer() -> usize {
    1024
}
fn default_send_timeout() -> u64 {
    10
}
fn default_max_connections() -> usize {
    1000
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            session_check_secs: default_session_check(),
            buffer: default_buffer(),
            send_timeout_secs: default_send_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

impl WsConfig {
    /// Checks the rules serde cannot express: `Err((field, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |field: &str, msg: &str| Err((format!("ws.{field}"), msg.to_owned()));
        for (i, o) in self.allowed_origins.iter().enumerate() {
            if !super::origin::is_origin(o) {
                return err(
                    &format!("allowed_origins[{i}]"),
                    "must be an origin like \"https://console.example.cn\" (scheme, host, optional port, no path)",
                );
            }
        }
        if !(1..=3600).contains(&self.session_check_secs) {
            return err("session_check_secs", "must be between 1 and 3600");
        }
        if !(16..=65536).contains(&self.buffer) {
            return err("buffer", "must be between 16 and 65536");
        }
        if !(1..=300).contains(&self.send_timeout_secs) {
            return err("send_timeout_secs", "must be between 1 and 300");
        }
        if self.max_connections == 0 {
            return err("max_connections", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_field() {
        assert_eq!(WsConfig::default().validate(), Ok(()));
        let c = WsConfig {
            allowed_origins: vec!["https://ok.example".into(), "https://x.example/path".into()],
            ..WsConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "ws.allowed_origins[1]");
        let c = WsConfig {
            buffer: 4,
            ..WsConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "ws.buffer");
        let c = WsConfig {
            session_check_secs: 0,
            ..WsConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "ws.session_check_secs");
    }
}
