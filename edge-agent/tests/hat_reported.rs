//! The no-chef-hat path for real: camsim's day kitchen over RTSP → ingest's colour branch → the
//! installed person model (yolov3-tiny) and the head classifier → episodes → DetectionEvents
//! through the outbox and mosquitto to the center. Each reported head is checked against camsim's
//! ground truth at the moment it was seen: it must be the head of a cook without a hat.

mod common;

use bl_proto::event::{EdgeEvent, EpisodePhase, NormBox, ViolationKind};
use bl_test_support::broker::PrivateBroker;
use edge_agent::detect::yolo;
use rumqttc::{Event, Packet};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The people whose head (top quarter of their truth box) `b` overlaps, in the frame nearest to
/// `around` (within 2 s: the event's time is the agent's clock) where it overlaps any.
fn whose_heads(s: &camsim::Scenario, around: u64, b: &NormBox) -> BTreeSet<(String, bool)> {
    let fps = s.fps as i64;
    let on = |n: u64| {
        let mut found = BTreeSet::new();
        for o in camsim::scene::compose(s, n).objects {
            let Some(hat) = o.hat else { continue };
            let h = [o.bbox[0], o.bbox[1], o.bbox[2], o.bbox[3] * 0.25];
            let (bx, by, bw, bh) = (b.x as f64, b.y as f64, b.w as f64, b.h as f64);
            let ix = (bx + bw).min(h[0] + h[2]) - bx.max(h[0]);
            let iy = (by + bh).min(h[1] + h[3]) - by.max(h[1]);
            if ix > 0.3 * bw && iy > 0.3 * bh {
                found.insert((o.id, hat));
            }
        }
        found
    };
    (0..=2 * fps)
        .flat_map(|d| [around as i64 - d, around as i64 + d])
        .filter(|&n| n >= 0)
        .map(|n| on(n as u64))
        .find(|found| !found.is_empty())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooks_without_hats_reach_the_center_as_a_no_chef_hat_episode_seen_by_the_real_person_model()
 {
    let weights = yolo::models_dir()
        .join(yolo::DEFAULT_MODEL_DIR)
        .join("yolov3-tiny.weights");
    if !weights.is_file() {
        eprintln!(
            "SKIPPED: the person model is not installed ({} is missing); `make deps` installs it",
            weights.display()
        );
        return;
    }
    let scenario = common::scenario("kitchen-day.toml");
    let started = chrono::Utc::now();
    let camsim = common::serve_scenario("day", "kitchen-day.toml");
    let broker = PrivateBroker::start();
    let (_center, mut events) = common::center(&broker, "bl/v1/edge/+/events").await;
    let dir = tempfile::tempdir().unwrap();
    // The sub stream (640x360): what a box would watch; colour frames at its full width.
    let url = camsim.url("day", camsim::Stream::Sub);
    let mut agent = common::start_agent_for(
        dir.path(),
        &broker,
        "hat-edge",
        "day",
        &url,
        "no_chef_hat = true\n",
    );
    // p2 (no hat) walks in at 8 s and works at the island until 60 s; p4 (no hat) from 45 s.
    // Watch until 20 s after the episode started (its updates), at most 120 s.
    let start = Instant::now();
    let mut until = start + Duration::from_secs(120);
    let mut seen = Vec::new();
    while Instant::now() < until {
        let Ok(Ok(event)) = tokio::time::timeout(Duration::from_secs(1), events.poll()).await
        else {
            continue;
        };
        if let Event::Incoming(Packet::Publish(p)) = event
            && let EdgeEvent::Detection(d) = bl_proto::decode::<EdgeEvent>(&p.payload).unwrap()
        {
            if d.phase == EpisodePhase::Start {
                until = until.min(Instant::now() + Duration::from_secs(20));
            }
            seen.push(d);
        }
    }
    agent.kill().unwrap();
    agent.wait().unwrap();

    assert!(!seen.is_empty(), "no detection event within 120 s");
    assert!(
        seen.iter().all(|d| d.kind == ViolationKind::NoChefHat),
        "only the rule asked for: {:?}",
        seen.iter().map(|d| d.kind).collect::<Vec<_>>()
    );
    let starts = seen
        .iter()
        .filter(|d| d.phase == EpisodePhase::Start)
        .count();
    assert_eq!(starts, 1, "one episode, not one per look");
    assert!(
        seen[0].model.name.starts_with("yolov3-tiny-coco+"),
        "the real person model: {:?}",
        seen[0].model
    );
    // An end reports the last box seen, at the time the episode ended (10 s later): only the
    // start's and the updates' boxes are of their moment.
    for d in seen.iter().filter(|d| d.phase != EpisodePhase::End) {
        assert!(
            !d.boxes.is_empty(),
            "{:?} carries where the head is",
            d.phase
        );
        let n = ((d.at - started).num_milliseconds().max(0) as u64) * scenario.fps as u64 / 1000;
        for b in &d.boxes {
            let people = whose_heads(&scenario, n, b);
            assert!(
                !people.is_empty() && people.iter().all(|(_, hat)| !hat),
                "{:?} box {b:?} at frame {n} is on {people:?}, not only on cooks without hats",
                d.phase
            );
        }
    }
}
