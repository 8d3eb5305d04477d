//! Log set-up: `tracing` to stderr with UTC timestamps.
//!
//! `BL_LOG` (or `RUST_LOG`) is the filter, default `info`; `BL_LOG_FORMAT=json` switches to one JSON
//! object per line for log shippers.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber for the binary `service`. Safe to call twice (the second call is a
/// no-op), so tests that share a process may all call it.
pub fn init(service: &str) {
    let filter = std::env::var("BL_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "{service}: ignoring invalid log filter {filter:?}: {e}"
        );
        EnvFilter::new("info")
    });
    // A closed stderr must not panic whatever task logs (the signal handler's among them).
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .log_internal_errors(false);
    let installed = if std::env::var("BL_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if installed.is_ok() {
        tracing::debug!(service, "logging started");
    }
}
