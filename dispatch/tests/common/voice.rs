//! Voice messages for tests: a WAV tone and a raw upload as an admin.

use super::Client;
use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;

/// A 16-bit mono PCM WAV of `ms` milliseconds of a 440 Hz tone at `rate`.
pub fn wav(rate: u32, ms: u32) -> Vec<u8> {
    let n = rate * ms / 1000;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + n * 2).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(n * 2).to_le_bytes());
    for i in 0..n {
        let s = (f64::from(i) * 440.0 * std::f64::consts::TAU / f64::from(rate)).sin();
        b.extend_from_slice(&((s * 8000.0) as i16).to_le_bytes());
    }
    b
}

/// PUTs raw bytes with `content_type` as `client`'s session; status, JSON body.
pub async fn put_bytes(
    addr: SocketAddr,
    client: &Client,
    path: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .put(format!("http://{addr}{path}"))
        .header(
            "cookie",
            format!("__Host-bl_session={}", client.cookie.as_ref().unwrap()),
        )
        .header("x-csrf-token", client.csrf.as_ref().unwrap())
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
