//! The generic webhook: a JSON POST with the delivery id as `Idempotency-Key` (a receiver must drop
//! a repeat, which is what makes a resend after a crash safe) and an HMAC-SHA256 signature of the
//! body, `X-Brightline-Signature: sha256=<hex>`, keyed with the channel's secret.

use super::{Channel, ChannelKind, HttpRequest, Message, Outcome, judge_status};
use bl_service::secret::Secret;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use uuid::Uuid;

/// The signature header's value for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub struct Webhook {
    pub url: Secret,
    pub secret: Secret,
    pub console_url: Option<String>,
}

impl Webhook {
    /// The JSON body: `{v, type: "notification", deliveryId, text, link, …the message's facts}`.
    pub fn body(&self, msg: &Message, delivery: Uuid) -> serde_json::Value {
        let mut body = json!({
            "v": 1,
            "type": "notification",
            "deliveryId": delivery,
            "text": msg.text(self.console_url.as_deref()),
            "kindZh": super::message::kind_zh(&msg.kind),
        });
        if let (Some(map), Ok(serde_json::Value::Object(facts))) =
            (body.as_object_mut(), serde_json::to_value(msg))
        {
            map.extend(facts);
        }
        body
    }
}

impl Channel for Webhook {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webhook
    }

    fn render(
        &self,
        msg: &Message,
        delivery: Uuid,
        _now: DateTime<Utc>,
    ) -> Result<HttpRequest, String> {
        let body = self.body(msg, delivery).to_string().into_bytes();
        Ok(HttpRequest {
            url: self.url.clone(),
            headers: vec![
                ("idempotency-key", delivery.to_string()),
                (
                    "x-brightline-signature",
                    signature(self.secret.expose(), &body),
                ),
            ],
            body,
        })
    }

    fn judge(&self, status: u16, body: &[u8]) -> Outcome {
        judge_status(status, body).unwrap_or(Outcome::Delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::tests::rodent;

    #[test]
    fn the_body_is_signed_with_the_secret_and_keyed_by_the_delivery_id() {
        let hook = Webhook {
            url: Secret::new("http://127.0.0.1:1/hook"),
            secret: Secret::new("s3cret"),
            console_url: None,
        };
        let id = Uuid::now_v7();
        let req = hook.render(&rodent(), id, Utc::now()).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["deliveryId"], id.to_string());
        assert_eq!(body["kind"], "rodent");
        assert_eq!(body["kindZh"], "发现老鼠");
        assert_eq!(body["townName"], "斋堂镇");
        assert_eq!(body["phone"], "13800000001");
        assert!(body["text"].as_str().unwrap().starts_with("【紧急】"));
        assert_eq!(req.headers[0], ("idempotency-key", id.to_string()));
        assert_eq!(req.headers[1].1, signature("s3cret", &req.body));
        // RFC 4231 test case 2
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn any_2xx_is_delivered() {
        let hook = Webhook {
            url: Secret::new("http://x"),
            secret: Secret::new("k"),
            console_url: None,
        };
        assert_eq!(hook.judge(202, b""), Outcome::Delivered);
        assert!(matches!(hook.judge(500, b""), Outcome::Retry(_)));
    }
}
