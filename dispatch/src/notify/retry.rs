//! What a delivery becomes after an attempt or an interruption. Pure: outcome, attempt count and
//! channel kind in, the next state out.

use super::{ChannelKind, Outcome};
use chrono::{DateTime, Duration, Utc};

/// The state a delivery moves to, with its error and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// `sent`, `failed`, `dead` or `uncertain`.
    pub state: &'static str,
    pub error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
}

/// Retry timing: the wait after the `attempts`-th failed attempt doubles from `base_ms` up to
/// `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub max_attempts: u32,
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Backoff {
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(40);
        let ms = self
            .base_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms);
        Duration::milliseconds(ms as i64)
    }
}

/// The state after attempt number `attempts` (1 for the first) ended in `outcome` at `now`.
pub fn settle(
    outcome: Outcome,
    kind: ChannelKind,
    attempts: u32,
    backoff: &Backoff,
    now: DateTime<Utc>,
) -> Settled {
    let retry = |error: String| {
        if attempts >= backoff.max_attempts {
            Settled {
                state: "dead",
                error: Some(format!("gave up after {attempts} attempts: {error}")),
                next_attempt_at: now,
            }
        } else {
            Settled {
                state: "failed",
                error: Some(error),
                next_attempt_at: now + backoff.delay(attempts),
            }
        }
    };
    match outcome {
        Outcome::Delivered => Settled {
            state: "sent",
            error: None,
            next_attempt_at: now,
        },
        Outcome::Retry(e) => retry(e),
        Outcome::Unknown(e) if kind.receiver_dedupes() => retry(format!("outcome unknown: {e}")),
        Outcome::Unknown(e) => Settled {
            state: "uncertain",
            error: Some(format!(
                "outcome unknown ({e}); a robot cannot drop a repeat, so it is not resent — check the group"
            )),
            next_attempt_at: now,
        },
        Outcome::Permanent(e) => Settled {
            state: "dead",
            error: Some(e),
            next_attempt_at: now,
        },
    }
}

/// The state of a delivery found `sending` with an expired lease: its worker stopped (crash, kill)
/// during the send, so whether it arrived is unknown. Resent with the same idempotency key where
/// the receiver drops repeats; otherwise `uncertain`.
pub fn after_interruption(
    kind: ChannelKind,
    attempts: u32,
    worker: &str,
    backoff: &Backoff,
    now: DateTime<Utc>,
) -> Settled {
    let mut s = settle(
        Outcome::Unknown(format!("{worker} stopped during the send")),
        kind,
        attempts,
        backoff,
        now,
    );
    if s.state == "failed" {
        // the interruption was not the receiver's fault: resend at once
        s.next_attempt_at = now;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        max_attempts: 4,
        base_ms: 1000,
        max_ms: 5000,
    };

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn waits_double_from_the_base_up_to_the_cap() {
        let waits: Vec<i64> = (1..=5).map(|a| B.delay(a).num_milliseconds()).collect();
        assert_eq!(waits, [1000, 2000, 4000, 5000, 5000]);
        assert_eq!(B.delay(1000).num_milliseconds(), 5000);
    }

    #[test]
    fn a_retryable_failure_waits_then_the_last_attempt_makes_it_dead_with_the_error() {
        let s = settle(
            Outcome::Retry("HTTP 500: x".into()),
            ChannelKind::Webhook,
            2,
            &B,
            now(),
        );
        assert_eq!(s.state, "failed");
        assert_eq!(s.next_attempt_at, now() + Duration::seconds(2));
        let s = settle(
            Outcome::Retry("HTTP 500: x".into()),
            ChannelKind::Wecom,
            4,
            &B,
            now(),
        );
        assert_eq!(s.state, "dead");
        assert_eq!(s.error.unwrap(), "gave up after 4 attempts: HTTP 500: x");
    }

    #[test]
    fn a_permanent_failure_is_dead_at_once_and_success_is_sent() {
        let s = settle(
            Outcome::Permanent("errcode 93000".into()),
            ChannelKind::Wecom,
            1,
            &B,
            now(),
        );
        assert_eq!(
            (s.state, s.error.as_deref()),
            ("dead", Some("errcode 93000"))
        );
        assert_eq!(
            settle(Outcome::Delivered, ChannelKind::Sms, 3, &B, now()).state,
            "sent"
        );
    }

    #[test]
    fn an_unknown_outcome_is_retried_only_where_the_receiver_drops_repeats() {
        let s = settle(
            Outcome::Unknown("timeout".into()),
            ChannelKind::Webhook,
            1,
            &B,
            now(),
        );
        assert_eq!(s.state, "failed");
        let s = settle(
            Outcome::Unknown("timeout".into()),
            ChannelKind::Dingtalk,
            1,
            &B,
            now(),
        );
        assert_eq!(s.state, "uncertain");
        assert!(s.error.unwrap().contains("not resent"));
    }

    #[test]
    fn an_interrupted_send_is_resent_at_once_to_a_webhook_and_left_uncertain_for_a_robot() {
        let s = after_interruption(ChannelKind::Sms, 1, "dispatch-1", &B, now());
        assert_eq!((s.state, s.next_attempt_at), ("failed", now()));
        assert!(
            s.error
                .unwrap()
                .contains("dispatch-1 stopped during the send")
        );
        let s = after_interruption(ChannelKind::Wecom, 1, "dispatch-1", &B, now());
        assert_eq!(s.state, "uncertain");
        let s = after_interruption(ChannelKind::Webhook, 4, "dispatch-1", &B, now());
        assert_eq!(s.state, "dead");
    }
}
