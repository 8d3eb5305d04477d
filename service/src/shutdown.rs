//! Two-phase shutdown: the first SIGTERM or SIGINT asks every task to drain; a second one exits at
//! once (DESIGN.md §7). Components take the token (or `token.cancelled_owned()` as their `shutdown`
//! future), so tests stop them the same way `main` does, by cancelling.

use tokio_util::sync::CancellationToken;

/// Exit status after a second signal: 128 + SIGINT, as shells report an interrupted program.
const FORCED_EXIT_STATUS: i32 = 130;

/// Returns a token cancelled by the first SIGTERM/SIGINT; the second one exits the process.
/// Must be called inside a tokio runtime.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(err = %e, "cannot listen for SIGTERM; stop with SIGINT");
                    return;
                }
            };
        let mut signals = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
            }
            signals += 1;
            // Act first, log second: logging can fail (a closed stderr) and must not stop the exit.
            if signals == 1 {
                trigger.cancel();
                tracing::info!("shutdown requested; draining (signal again to exit at once)");
            } else {
                std::process::exit(FORCED_EXIT_STATUS);
            }
        }
    });
    token
}
