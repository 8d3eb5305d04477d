//! A test gateway node talking to dispatch's `/internal` routes: its service token, which node owns
//! a camera, and a POST as that node.

use bl_proto::{CameraId, GatewayNodeId};
use dispatch::auth::service::ServiceToken;
use dispatch::media::choose_gateway;
use reqwest::StatusCode;
use serde_json::Value;

use super::Server;

/// Two gateway nodes, as the tests configure them.
pub const GATEWAYS: &[(&str, &str)] = &[
    ("gw-1", "http://127.0.0.1:8090"),
    ("gw-2", "http://127.0.0.1:8091"),
];

/// The service token a test gives gateway `node`.
pub fn service_token(node: &str) -> String {
    format!("{node}-service-token-0123456789abcdef0123456789")
}

/// A `[media]` section with [`GATEWAYS`], each with its [`service_token`].
pub fn media_with_services() -> dispatch::config::MediaConfig {
    let mut media = super::media_config(GATEWAYS);
    for g in &mut media.gateway {
        g.service_token = Some(ServiceToken::from_secret(&service_token(&g.node)).unwrap());
    }
    media
}

/// The node of [`GATEWAYS`] that owns `camera`.
pub fn owner(camera: &str) -> String {
    let nodes: Vec<GatewayNodeId> = GATEWAYS
        .iter()
        .map(|(n, _)| GatewayNodeId::new(*n).unwrap())
        .collect();
    choose_gateway(&CameraId::new(camera).unwrap(), &nodes)
        .as_str()
        .to_owned()
}

/// `POST path` as gateway `node`; the status and the JSON body (or the text as a JSON string).
pub async fn internal_post(
    server: &Server,
    path: &str,
    node: &str,
    body: Value,
) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{}{path}", server.addr))
        .bearer_auth(service_token(node))
        .header("x-bl-node", node)
        .json(&body)
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
