//! What the edge-agent's end-to-end tests share: camsim's night kitchen, a private broker with the
//! center listening, and the real `edge-agent` binary configured for them.
#![allow(dead_code)]

use bl_test_support::broker::PrivateBroker;
use camsim::{CameraConfig, Config as CamsimConfig, Scenario};
use rumqttc::{AsyncClient, EventLoop, MqttOptions, QoS};
use std::path::Path;
use std::process::{Child, Command};

/// camsim serving its night kitchen as camera `night`.
pub fn night_kitchen() -> camsim::Server {
    serve_scenario("night", "kitchen-night.toml")
}

/// One of camsim's scenarios (`tests/camsim/scenarios/{file}`).
pub fn scenario(file: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/camsim/scenarios")
        .join(file);
    Scenario::load(&path).unwrap()
}

/// camsim serving one scenario as camera `id`.
pub fn serve_scenario(id: &str, file: &str) -> camsim::Server {
    camsim::serve(CamsimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![CameraConfig::new(id, scenario(file))],
    })
    .unwrap()
}

/// The center's side: the service account subscribed to `filter` on `broker`.
pub async fn center(broker: &PrivateBroker, filter: &str) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new("test-center", "127.0.0.1", broker.port);
    options.set_credentials(&broker.service_user, &broker.service_password);
    let (client, events) = AsyncClient::new(options, 64);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    (client, events)
}

/// Writes `edge.toml` (with its broker account) into `dir` for one camera, with `extra` lines in
/// the camera's table, and starts the agent.
pub fn start_agent(
    dir: &Path,
    broker: &PrivateBroker,
    edge: &str,
    camera_url: &str,
    extra: &str,
) -> Child {
    start_agent_for(dir, broker, edge, "night", camera_url, extra)
}

/// [`start_agent`] for a camera with another id.
pub fn start_agent_for(
    dir: &Path,
    broker: &PrivateBroker,
    edge: &str,
    camera: &str,
    camera_url: &str,
    extra: &str,
) -> Child {
    let password = broker.add_user(edge);
    std::fs::write(dir.join("mqtt.password"), &password).unwrap();
    let file = dir.join("edge.toml");
    std::fs::write(
        &file,
        format!(
            "edge_id = \"{edge}\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\npassword_file = \"mqtt.password\"\nstate_interval_secs = 1\n\
             [[camera]]\nid = \"{camera}\"\nurl = \"{camera_url}\"\n{extra}",
            broker.port
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(["run", "--config"])
        .arg(&file)
        .spawn()
        .unwrap()
}
