//! The one place a notification leaves dispatch: POST a channel's request, judge the answer.
//! Errors never carry the URL (robot keys live in it).

use super::{Channel, Message, Outcome};
use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

/// The client every send uses: no redirects (a key-bearing URL is never forwarded elsewhere).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("brightline-dispatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a TLS-capable HTTP client builds")
}

/// What went wrong with a request, with its causes but without its URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Renders `msg` for `channel` as delivery `delivery` and sends it within `timeout`.
pub async fn send(
    client: &reqwest::Client,
    channel: &dyn Channel,
    msg: &Message,
    delivery: Uuid,
    now: DateTime<Utc>,
    timeout: Duration,
) -> Outcome {
    let req = match channel.render(msg, delivery, now) {
        Ok(r) => r,
        Err(why) => return Outcome::Permanent(why),
    };
    let mut builder = client
        .post(req.url.expose())
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(req.body);
    for (name, value) in req.headers {
        builder = builder.header(name, value);
    }
    match builder.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(body) => channel.judge(status, &body),
                Err(e) => Outcome::Unknown(format!(
                    "HTTP {status}, then reading the answer failed: {}",
                    describe(e)
                )),
            }
        }
        // nothing left this machine: safe to try again for every channel
        Err(e) if e.is_connect() => Outcome::Retry(format!("cannot connect: {}", describe(e))),
        Err(e) if e.is_builder() => Outcome::Permanent(format!("bad request: {}", describe(e))),
        // a timeout or a broken connection after the request left: it may have arrived
        Err(e) => Outcome::Unknown(describe(e)),
    }
}
