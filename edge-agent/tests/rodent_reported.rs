//! The whole edge path for real: camsim's night kitchen over RTSP → ingest → the rodent detector →
//! an episode → DetectionEvents through the outbox and mosquitto to the center.

use bl_proto::event::{EdgeEvent, EpisodePhase, ViolationKind};
use bl_test_support::broker::PrivateBroker;
use camsim::{CameraConfig, Config as CamsimConfig, Scenario};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rodent_at_night_reaches_the_center_as_one_episode() {
    let night = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-night.toml"
    );
    let camsim = camsim::serve(CamsimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![CameraConfig::new(
            "night",
            Scenario::load(std::path::Path::new(night)).unwrap(),
        )],
    })
    .unwrap();
    let broker = PrivateBroker::start();
    let edge = "rodent-edge";
    let password = broker.add_user(edge);

    let mut options = MqttOptions::new("rodent-center", "127.0.0.1", broker.port);
    options.set_credentials(&broker.service_user, &broker.service_password);
    let (center, mut events) = AsyncClient::new(options, 64);
    center
        .subscribe("bl/v1/edge/+/events", QoS::AtLeastOnce)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mqtt.password"), &password).unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "edge_id = \"{edge}\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\npassword_file = \"mqtt.password\"\n\
             [[camera]]\nid = \"night\"\nurl = \"{}\"\nrodent = true\n",
            broker.port,
            camsim.url("night", camsim::Stream::Sub)
        ),
    )
    .unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .spawn()
        .unwrap();

    // camsim's first rodent runs from 5 s to 14 s of the scenario.
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < Duration::from_secs(90) {
        let Ok(Ok(event)) = tokio::time::timeout(Duration::from_secs(1), events.poll()).await
        else {
            continue;
        };
        if let Event::Incoming(Packet::Publish(p)) = event
            && let EdgeEvent::Detection(d) = bl_proto::decode::<EdgeEvent>(&p.payload).unwrap()
        {
            seen.push((d.kind, d.phase, d.episode_id, d.boxes.len()));
            if d.phase == EpisodePhase::End {
                break;
            }
        }
    }
    agent.kill().unwrap();
    agent.wait().unwrap();

    let starts: Vec<_> = seen.iter().filter(|s| s.1 == EpisodePhase::Start).collect();
    assert_eq!(
        starts.len(),
        1,
        "one episode, not one event per frame: {seen:?}"
    );
    assert!(
        seen.iter().all(|s| s.0 == ViolationKind::Rodent),
        "{seen:?}"
    );
    assert!(starts[0].3 >= 1, "the start carries where the rodent was");
    let end = seen
        .iter()
        .find(|s| s.1 == EpisodePhase::End)
        .expect("the episode ended");
    assert_eq!(end.2, starts[0].2, "start and end belong to one episode");
}
