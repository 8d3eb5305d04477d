//! Notification delivery (DESIGN.md §4): the escalation's `notifications` rows go out through
//! outbound channels — a generic webhook, WeCom and DingTalk group robots, an SMS provider.
//!
//! - [`Channel`] (plain): how a channel turns a [`Message`] into an HTTP request and judges the
//!   answer. Every channel here speaks HTTP, so one function ([`http::send`]) does the I/O for all;
//!   the channels themselves are pure and unit-tested without a network.
//! - [`store`]: the delivery rows (`notification_deliveries`, one per notification and channel):
//!   planning, claiming with `FOR UPDATE SKIP LOCKED`, the outcome, crash recovery, the views.
//! - [`worker`]: the supervised sender loop every replica runs.
//!
//! **A delivery is marked `sending` with a lease in a committed transaction before its request
//! leaves, and `sent` after; a send interrupted by a crash is repeated only to receivers that
//! de-duplicate by the `Idempotency-Key` (webhook, SMS) and otherwise left `uncertain` — so
//! nothing is lost silently and nothing reaches a group robot twice.**

pub mod config;
pub mod http;
pub mod message;
pub mod retry;
pub mod robot;
pub mod sms;
pub mod store;
pub mod webhook;
pub mod worker;

pub use config::{ChannelConfig, NotifyConfig};
pub use message::Message;

use bl_service::secret::Secret;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The kinds of outbound channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Webhook,
    Wecom,
    Dingtalk,
    Sms,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Webhook, Self::Wecom, Self::Dingtalk, Self::Sms]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// Whether the receiver drops a repeated request with the same `Idempotency-Key` (our
    /// contract with webhook receivers and SMS providers), so an uncertain send may be repeated.
    /// Group robots have no such key: a repeat would post twice.
    pub fn receiver_dedupes(self) -> bool {
        matches!(self, ChannelKind::Webhook | ChannelKind::Sms)
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver accepted it.
    Delivered,
    /// It did not arrive, or the receiver asks to try again later (5xx, 429, rate limit).
    Retry(String),
    /// Trying again cannot help (bad key, bad request, no phone number).
    Permanent(String),
    /// It may or may not have arrived (a timeout after the request left, an unreadable answer).
    Unknown(String),
}

/// A request to send, built by a channel. The URL may carry a key, hence a [`Secret`].
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub url: Secret,
    pub headers: Vec<(&'static str, String)>,
    /// JSON.
    pub body: Vec<u8>,
}

/// One outbound channel: renders a notification into a request and judges the answer.
pub trait Channel: Send + Sync {
    fn kind(&self) -> ChannelKind;

    /// The request that delivers `msg` as delivery `delivery` (the idempotency key) at `now`; an
    /// error is permanent (e.g. an SMS recipient without a phone).
    fn render(
        &self,
        msg: &Message,
        delivery: Uuid,
        now: DateTime<Utc>,
    ) -> Result<HttpRequest, String>;

    /// What the receiver's answer (`status`, `body`) means.
    fn judge(&self, status: u16, body: &[u8]) -> Outcome;
}

/// The channel a config table describes (secrets loaded; [`NotifyConfig::validate`] passed).
pub fn build(c: &ChannelConfig, console_url: Option<&str>) -> Box<dyn Channel> {
    let url = c.url.clone().unwrap_or_default();
    let console = console_url.map(str::to_owned);
    match c.kind {
        ChannelKind::Webhook => Box::new(webhook::Webhook {
            url,
            secret: c.secret.clone().unwrap_or_default(),
            console_url: console,
        }),
        ChannelKind::Wecom => Box::new(robot::Wecom {
            url,
            console_url: console,
        }),
        ChannelKind::Dingtalk => Box::new(robot::Dingtalk {
            url,
            secret: c.secret.clone(),
            console_url: console,
        }),
        ChannelKind::Sms => Box::new(sms::SmsChannel {
            provider: Box::new(sms::HttpJsonProvider {
                url,
                token: c.secret.clone(),
            }),
        }),
    }
}

/// The usual meaning of an HTTP status: `None` for 2xx (the body decides), retry for 408, 409
/// (the same key is still being processed), 425, 429 and 5xx, permanent for the rest.
pub fn judge_status(status: u16, body: &[u8]) -> Option<Outcome> {
    let why = || format!("HTTP {status}: {}", snippet(body));
    match status {
        200..=299 => None,
        408 | 409 | 425 | 429 | 500..=599 => Some(Outcome::Retry(why())),
        _ => Some(Outcome::Permanent(why())),
    }
}

/// At most 200 characters of a receiver's answer on one line, for `last_error`.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one_line.trim().to_owned()
}

/// A URL fit for logs: scheme, host and path; user info and the query (robot keys live there) are
/// dropped.
pub fn redact_url(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let bare = bl_service::secret::redact_url(&url[..cut]);
    if cut < url.len() {
        format!("{bare}?[redacted]")
    } else {
        bare
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robot_keys_in_queries_and_passwords_never_reach_a_log_line() {
        assert_eq!(
            redact_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6"),
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?[redacted]"
        );
        assert_eq!(
            redact_url("https://u:p@hooks.example.cn/x"),
            "https://[redacted]@hooks.example.cn/x"
        );
    }

    #[test]
    fn server_errors_and_throttling_retry_and_client_errors_are_permanent() {
        assert_eq!(judge_status(204, b""), None);
        assert!(matches!(
            judge_status(503, b"busy"),
            Some(Outcome::Retry(e)) if e == "HTTP 503: busy"
        ));
        assert!(matches!(judge_status(429, b""), Some(Outcome::Retry(_))));
        assert!(matches!(
            judge_status(401, b"bad\nkey"),
            Some(Outcome::Permanent(e)) if e == "HTTP 401: bad key"
        ));
    }

    #[test]
    fn only_webhooks_and_sms_are_resent_after_an_uncertain_attempt() {
        assert!(ChannelKind::Webhook.receiver_dedupes());
        assert!(ChannelKind::Sms.receiver_dedupes());
        assert!(!ChannelKind::Wecom.receiver_dedupes());
        assert!(!ChannelKind::Dingtalk.receiver_dedupes());
    }
}
