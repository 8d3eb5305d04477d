//! The whole edge path for real: camsim's night kitchen over RTSP → ingest → the rodent detector →
//! an episode → DetectionEvents through the outbox and mosquitto to the center.

mod common;

use bl_proto::event::{EdgeEvent, EpisodePhase, ViolationKind};
use bl_test_support::broker::PrivateBroker;
use rumqttc::{Event, Packet};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rodent_at_night_reaches_the_center_as_one_episode() {
    let camsim = common::night_kitchen();
    let broker = PrivateBroker::start();
    let (_center, mut events) = common::center(&broker, "bl/v1/edge/+/events").await;
    let dir = tempfile::tempdir().unwrap();
    let url = camsim.url("night", camsim::Stream::Sub);
    let mut agent =
        common::start_agent(dir.path(), &broker, "rodent-edge", &url, "rodent = true\n");
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
