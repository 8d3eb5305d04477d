//! The center's retained config switches detection on a camera, its revision shows in the state,
//! and a broken revision is refused while the rules in force keep working.

use bl_proto::event::{EdgeEvent, ViolationKind};
use bl_proto::state::EdgeState;
mod common;

use bl_test_support::broker::PrivateBroker;
use rumqttc::{Event, EventLoop, Packet, QoS};
use std::time::{Duration, Instant};

fn config(edge: &str, revision: u64, camera: &str) -> String {
    format!(
        r#"{{"type":"edgeConfig","v":1,"edgeId":"{edge}","revision":{revision},"timezone":"Asia/Shanghai","cameras":[{{"cameraId":"{camera}","preRollSecs":10,"postRollSecs":10,"rules":[{{"kind":"rodent","enabled":true,"minDurationSecs":0,"cooldownSecs":60,"activeHours":null,"zones":[]}}]}}]}}"#
    )
}

/// Waits for a message matching `want`, for at most `limit`.
async fn wait_for(
    events: &mut EventLoop,
    limit: Duration,
    mut want: impl FnMut(&str, &[u8]) -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Ok(Event::Incoming(Packet::Publish(p)))) =
            tokio::time::timeout(Duration::from_secs(1), events.poll()).await
            && want(&p.topic, &p.payload)
        {
            return true;
        }
    }
    false
}

fn revision_in_state(topic: &str, payload: &[u8]) -> Option<Option<u64>> {
    topic
        .ends_with("/state")
        .then(|| bl_proto::decode::<EdgeState>(payload).ok())
        .flatten()
        .filter(|s| s.online)
        .map(|s| s.config_revision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_centers_config_turns_rodent_detection_on_and_a_broken_one_is_refused() {
    let camsim = common::night_kitchen();
    let broker = PrivateBroker::start();
    let edge = "config-edge";
    let (center, mut events) = common::center(&broker, "bl/v1/edge/+/#").await;

    // The center's desired config is retained before the box even starts.
    let config_topic = format!("bl/v1/edge/{edge}/config");
    center
        .publish(
            &config_topic,
            QoS::AtLeastOnce,
            true,
            config(edge, 7, "night"),
        )
        .await
        .unwrap();

    // Locally the camera has no detector at all: only the center's config can turn it on.
    let dir = tempfile::tempdir().unwrap();
    let url = camsim.url("night", camsim::Stream::Sub);
    let mut agent = common::start_agent(dir.path(), &broker, edge, &url, "");

    let applied = wait_for(&mut events, Duration::from_secs(30), |t, p| {
        revision_in_state(t, p) == Some(Some(7))
    })
    .await;
    assert!(applied, "the state never reported revision 7");
    let rodent = wait_for(&mut events, Duration::from_secs(60), |t, p| {
        t.ends_with("/events")
            && matches!(bl_proto::decode::<EdgeEvent>(p), Ok(EdgeEvent::Detection(d)) if d.kind == ViolationKind::Rodent)
    })
    .await;
    assert!(
        rodent,
        "the rule from the center did not start rodent detection"
    );

    // Revision 8 names a camera the box does not have: refused, revision 7 stays in force. Only
    // states made well after the publish count (older ones may still be queued).
    let sent = chrono::Utc::now();
    center
        .publish(
            &config_topic,
            QoS::AtLeastOnce,
            true,
            config(edge, 8, "no-such-camera"),
        )
        .await
        .unwrap();
    let mut later_revision = None;
    let seen = wait_for(&mut events, Duration::from_secs(15), |t, p| {
        match (t.ends_with("/state"), bl_proto::decode::<EdgeState>(p)) {
            (true, Ok(s)) if s.online && s.at > sent + chrono::Duration::seconds(2) => {
                later_revision = Some(s.config_revision);
                true
            }
            _ => false,
        }
    })
    .await;
    assert!(seen, "no state after the refused revision");
    assert_eq!(
        later_revision,
        Some(Some(7)),
        "a refused revision must not replace the one in force"
    );

    agent.kill().unwrap();
    agent.wait().unwrap();
    center
        .publish(&config_topic, QoS::AtLeastOnce, true, Vec::new())
        .await
        .unwrap();
}
