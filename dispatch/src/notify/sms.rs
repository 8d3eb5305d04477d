//! SMS through a provider. [`SmsProvider`] is the seam for a vendor's API; [`HttpJsonProvider`] is
//! the generic one (no real vendor is reachable from here):
//!
//! ```text
//! POST {url}
//! Content-Type: application/json
//! Idempotency-Key: {delivery id}        (the provider must drop a repeat)
//! Authorization: Bearer {token}         (when secret_file is set)
//! {"to": "13800000001", "text": "【紧急】…", "clientRef": "{delivery id}"}
//! ```
//!
//! Any 2xx is accepted; 408, 409, 425, 429 and 5xx retry; other statuses are permanent.

use super::{Channel, ChannelKind, HttpRequest, Message, Outcome, judge_status};
use bl_service::secret::Secret;
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

/// A vendor's way of sending one text to one phone.
pub trait SmsProvider: Send + Sync {
    /// The request that sends `text` to `phone`, with `key` as its idempotency key.
    fn request(&self, phone: &str, text: &str, key: Uuid) -> HttpRequest;
    /// What the provider's answer means.
    fn judge(&self, status: u16, body: &[u8]) -> Outcome;
}

/// The generic HTTP-JSON provider (the shape above).
pub struct HttpJsonProvider {
    pub url: Secret,
    pub token: Option<Secret>,
}

impl SmsProvider for HttpJsonProvider {
    fn request(&self, phone: &str, text: &str, key: Uuid) -> HttpRequest {
        let mut headers = vec![("idempotency-key", key.to_string())];
        if let Some(token) = &self.token {
            headers.push(("authorization", format!("Bearer {}", token.expose())));
        }
        HttpRequest {
            url: self.url.clone(),
            headers,
            body: json!({"to": phone, "text": text, "clientRef": key})
                .to_string()
                .into_bytes(),
        }
    }

    fn judge(&self, status: u16, body: &[u8]) -> Outcome {
        judge_status(status, body).unwrap_or(Outcome::Delivered)
    }
}

/// The SMS channel: the recipient's phone and the short text, through a provider.
pub struct SmsChannel {
    pub provider: Box<dyn SmsProvider>,
}

impl Channel for SmsChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn render(
        &self,
        msg: &Message,
        delivery: Uuid,
        _: DateTime<Utc>,
    ) -> Result<HttpRequest, String> {
        if msg.phone.is_empty() {
            return Err(format!(
                "{} {:?} has no phone number; add one or leave this target kind out of the channel",
                msg.target_kind, msg.target_name
            ));
        }
        Ok(self.provider.request(&msg.phone, &msg.sms_text(), delivery))
    }

    fn judge(&self, status: u16, body: &[u8]) -> Outcome {
        self.provider.judge(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::tests::rodent;

    fn channel() -> SmsChannel {
        SmsChannel {
            provider: Box::new(HttpJsonProvider {
                url: Secret::new("http://sms.local/send"),
                token: Some(Secret::new("tok")),
            }),
        }
    }

    #[test]
    fn an_sms_goes_to_the_recipients_phone_with_the_key_and_token() {
        let id = Uuid::now_v7();
        let req = channel().render(&rodent(), id, Utc::now()).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["to"], "13800000001");
        assert_eq!(body["clientRef"], id.to_string());
        assert!(
            body["text"]
                .as_str()
                .unwrap()
                .starts_with("【紧急】斋堂镇老王饭店发现老鼠")
        );
        assert!(req.headers.contains(&("idempotency-key", id.to_string())));
        assert!(
            req.headers
                .contains(&("authorization", "Bearer tok".to_owned()))
        );
    }

    #[test]
    fn a_recipient_without_a_phone_is_a_permanent_failure_naming_it() {
        let mut m = rodent();
        m.phone.clear();
        let e = channel()
            .render(&m, Uuid::now_v7(), Utc::now())
            .unwrap_err();
        assert!(e.contains("斋堂镇全天组") && e.contains("no phone"), "{e}");
    }
}
