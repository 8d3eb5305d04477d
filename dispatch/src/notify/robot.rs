//! Group robots: WeCom (企业微信群机器人) and DingTalk (钉钉自定义机器人). Both take a text message
//! that @mentions phones, answer `{"errcode": 0}` on success, and have no idempotency key — so a
//! send of unknown outcome is never repeated (see [`super::ChannelKind::receiver_dedupes`]).

use super::{Channel, ChannelKind, HttpRequest, Message, Outcome, judge_status, snippet};
use base64::Engine;
use bl_service::secret::Secret;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use uuid::Uuid;

/// Reads a robot's `{"errcode": n, "errmsg": "…"}`: 0 delivered, the codes in `retry` (busy, rate
/// limits) retry, any other code is permanent, an unreadable answer to a 2xx is unknown.
fn judge_errcode(status: u16, body: &[u8], retry: &[i64]) -> Outcome {
    if let Some(o) = judge_status(status, body) {
        return o;
    }
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Outcome::Unknown(format!("unreadable answer: {}", snippet(body)));
    };
    match answer["errcode"].as_i64() {
        Some(0) => Outcome::Delivered,
        Some(code) => {
            let why = format!(
                "errcode {code}: {}",
                answer["errmsg"].as_str().unwrap_or("")
            );
            if retry.contains(&code) {
                Outcome::Retry(why)
            } else {
                Outcome::Permanent(why)
            }
        }
        None => Outcome::Unknown(format!("answer without errcode: {}", snippet(body))),
    }
}

fn mentions(msg: &Message) -> Vec<&str> {
    if msg.phone.is_empty() {
        Vec::new()
    } else {
        vec![msg.phone.as_str()]
    }
}

/// WeCom group robot: `{"msgtype":"text","text":{"content","mentioned_mobile_list"}}`; the URL
/// (`…/cgi-bin/webhook/send?key=…`) is the secret.
pub struct Wecom {
    pub url: Secret,
    pub console_url: Option<String>,
}

impl Wecom {
    pub fn body(&self, msg: &Message) -> serde_json::Value {
        json!({
            "msgtype": "text",
            "text": {
                "content": msg.text(self.console_url.as_deref()),
                "mentioned_mobile_list": mentions(msg),
            }
        })
    }
}

impl Channel for Wecom {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Wecom
    }

    fn render(&self, msg: &Message, _: Uuid, _: DateTime<Utc>) -> Result<HttpRequest, String> {
        Ok(HttpRequest {
            url: self.url.clone(),
            headers: Vec::new(),
            body: self.body(msg).to_string().into_bytes(),
        })
    }

    /// -1 system busy, 45009 frequency limit.
    fn judge(&self, status: u16, body: &[u8]) -> Outcome {
        judge_errcode(status, body, &[-1, 45009])
    }
}

/// DingTalk robot: `{"msgtype":"text","text":{"content"},"at":{"atMobiles"}}`; with a 加签 secret
/// the URL gets `timestamp` and `sign` (see [`dingtalk_sign`]). DingTalk highlights a mention only
/// when the content names the phone, so the content ends with `@phone`.
pub struct Dingtalk {
    pub url: Secret,
    pub secret: Option<Secret>,
    pub console_url: Option<String>,
}

/// DingTalk's 加签: urlencode(base64(HMAC-SHA256(key = secret, "{timestamp}\n{secret}"))), the
/// timestamp in milliseconds.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    // base64's alphabet needs only these three escaped in a query
    b64.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

impl Dingtalk {
    pub fn body(&self, msg: &Message) -> serde_json::Value {
        let mut content = msg.text(self.console_url.as_deref());
        for phone in mentions(msg) {
            content.push_str(&format!(" @{phone}"));
        }
        json!({
            "msgtype": "text",
            "text": { "content": content },
            "at": { "atMobiles": mentions(msg), "isAtAll": false },
        })
    }

    /// The URL to post to at `now`, signed when a secret is configured.
    pub fn url_at(&self, now: DateTime<Utc>) -> Secret {
        let base = self.url.expose();
        match &self.secret {
            None => self.url.clone(),
            Some(secret) => {
                let ts = now.timestamp_millis();
                let sep = if base.contains('?') { '&' } else { '?' };
                let sign = dingtalk_sign(secret.expose(), ts);
                Secret::new(format!("{base}{sep}timestamp={ts}&sign={sign}"))
            }
        }
    }
}

impl Channel for Dingtalk {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Dingtalk
    }

    fn render(&self, msg: &Message, _: Uuid, now: DateTime<Utc>) -> Result<HttpRequest, String> {
        Ok(HttpRequest {
            url: self.url_at(now),
            headers: Vec::new(),
            body: self.body(msg).to_string().into_bytes(),
        })
    }

    /// -1 system busy, 130101 sending too fast.
    fn judge(&self, status: u16, body: &[u8]) -> Outcome {
        judge_errcode(status, body, &[-1, 130101])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::tests::rodent;

    #[test]
    fn the_dingtalk_signature_matches_the_documented_recipe() {
        // computed independently with Python's hmac, base64 and urllib.parse.quote_plus
        assert_eq!(
            dingtalk_sign("SECtest0123456789", 1_700_000_000_000),
            "yBKp5IlG6qCzcQWmgyRK%2FziJBdVNJmHfFE2ST%2FCzT%2Fg%3D"
        );
    }

    #[test]
    fn a_signed_dingtalk_url_carries_timestamp_and_sign_after_the_token() {
        let d = Dingtalk {
            url: Secret::new("https://oapi.dingtalk.com/robot/send?access_token=abc"),
            secret: Some(Secret::new("SECtest0123456789")),
            console_url: None,
        };
        let now = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        assert_eq!(
            d.url_at(now).expose(),
            "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1700000000000\
             &sign=yBKp5IlG6qCzcQWmgyRK%2FziJBdVNJmHfFE2ST%2FCzT%2Fg%3D"
        );
    }

    #[test]
    fn robots_mention_the_recipients_phone_in_their_own_formats() {
        let m = rodent();
        let w = Wecom {
            url: Secret::new("http://x"),
            console_url: None,
        }
        .body(&m);
        assert_eq!(w["msgtype"], "text");
        assert_eq!(w["text"]["mentioned_mobile_list"], json!(["13800000001"]));
        assert!(w["text"]["content"].as_str().unwrap().contains("老王饭店"));
        let d = Dingtalk {
            url: Secret::new("http://x"),
            secret: None,
            console_url: None,
        }
        .body(&m);
        assert_eq!(d["at"]["atMobiles"], json!(["13800000001"]));
        assert!(
            d["text"]["content"]
                .as_str()
                .unwrap()
                .ends_with(" @13800000001")
        );
        let mut nobody = m.clone();
        nobody.phone.clear();
        let w = Wecom {
            url: Secret::new("http://x"),
            console_url: None,
        }
        .body(&nobody);
        assert_eq!(w["text"]["mentioned_mobile_list"], json!([]));
    }

    #[test]
    fn errcode_zero_is_delivered_rate_limits_retry_and_a_bad_key_is_permanent() {
        let w = Wecom {
            url: Secret::new("http://x"),
            console_url: None,
        };
        assert_eq!(
            w.judge(200, br#"{"errcode":0,"errmsg":"ok"}"#),
            Outcome::Delivered
        );
        assert!(
            matches!(w.judge(200, br#"{"errcode":45009,"errmsg":"api freq out of limit"}"#),
                         Outcome::Retry(e) if e.starts_with("errcode 45009"))
        );
        assert!(
            matches!(w.judge(200, br#"{"errcode":93000,"errmsg":"invalid webhook url"}"#),
                         Outcome::Permanent(e) if e == "errcode 93000: invalid webhook url")
        );
        assert!(matches!(w.judge(200, b"<html>"), Outcome::Unknown(_)));
        assert!(matches!(w.judge(502, b""), Outcome::Retry(_)));
    }
}
