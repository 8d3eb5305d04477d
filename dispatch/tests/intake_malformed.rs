//! Malformed edge reports, generated: tens of thousands of mutated payloads and topics go through
//! the consumer's parser without a panic, and hundreds of them published through the real broker
//! to a running dispatch leave nothing stored but what the parser accepted — the consumer keeps
//! going and a valid report sent after them is stored.
//!
//! The mutations are seeded, so a failure names a seed that reproduces it.

mod common;

use bl_test_support::stack::{Stack, random_token};
use common::edge::{self, Detection, count, mqtt_config, register_edge};
use common::{TestDb, config};
use dispatch::intake::edge::{EdgeReport, parse};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use uuid::Uuid;

fn valid(edge: &str, camera: &str) -> Vec<u8> {
    Detection {
        event_id: Uuid::now_v7(),
        episode_id: Uuid::now_v7(),
        phase: "start",
        edge,
        camera,
        kind: "rodent",
        at: "2026-11-23T22:15:30.123Z".parse().unwrap(),
        exercise: None,
    }
    .json()
}

/// Values that break types, ranges and parsers, spliced in place of a JSON value.
const HOSTILE: &[&str] = &[
    "null",
    "-1",
    "1e999",
    "18446744073709551616",
    "\"\"",
    "\"\\u0000\"",
    "\"../../etc/passwd\"",
    "\"bl/v1/edge/other/events\"",
    "[]",
    "{}",
    "true",
    "\"2026-13-45T99:99:99Z\"",
    "\"0000000-0000-0000-0000-000000000000\"",
    "\"斋堂镇\"",
];

/// One mutation of `base`: byte flips, cuts, insertions, a value swapped for a hostile one, a
/// key dropped, deep nesting, or random bytes.
fn mutate(rng: &mut StdRng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    match rng.random_range(0..8) {
        0 => {
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
        }
        1 => b.truncate(rng.random_range(0..b.len())),
        2 => {
            let i = rng.random_range(0..b.len());
            let junk: Vec<u8> = (0..rng.random_range(1..32)).map(|_| rng.random()).collect();
            b.splice(i..i, junk);
        }
        3 | 4 => {
            // replace the value after a random `":` with a hostile one
            let text = String::from_utf8_lossy(&b).into_owned();
            let cuts: Vec<usize> = text.match_indices("\":").map(|(i, _)| i + 2).collect();
            let at = cuts[rng.random_range(0..cuts.len())];
            let end = text[at..].find([',', '}']).map_or(text.len(), |e| at + e);
            let value = HOSTILE[rng.random_range(0..HOSTILE.len())];
            b = format!("{}{}{}", &text[..at], value, &text[end..]).into_bytes();
        }
        5 => {
            // drop a key and its value
            let text = String::from_utf8_lossy(&b).into_owned();
            let keys: Vec<usize> = text.match_indices(",\"").map(|(i, _)| i).collect();
            let at = keys[rng.random_range(0..keys.len())];
            let end = text[at + 1..]
                .find(",\"")
                .map_or(text.len() - 1, |e| at + 1 + e);
            b = format!("{}{}", &text[..at], &text[end..]).into_bytes();
        }
        6 => {
            // (kept under rumqttc's default 10 KiB packet limit)
            let depth = rng.random_range(100..2000);
            b = format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
        }
        _ => {
            b = (0..rng.random_range(0..512))
                .map(|_| rng.random())
                .collect()
        }
    }
    b
}

fn random_topic(rng: &mut StdRng, edge: &str) -> String {
    let parts = [
        "bl", "v1", "v2", "edge", edge, "other", "events", "state", "cmd", "result", "+", "#", "",
        "..", "斋堂", "$share",
    ];
    let n = rng.random_range(0..8);
    (0..n)
        .map(|_| parts[rng.random_range(0..parts.len())])
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_parser_survives_fifty_thousand_mutated_payloads_and_topics() {
    let seed = 0x5eed_2026;
    let mut rng = StdRng::seed_from_u64(seed);
    let base = valid("zt-edge-1", "zt-edge-1-cam1");
    let events = "bl/v1/edge/zt-edge-1/events";
    let mut accepted = 0;
    for i in 0..50_000 {
        let (topic, payload) = if i % 5 == 0 {
            (random_topic(&mut rng, "zt-edge-1"), base.clone())
        } else {
            (events.to_owned(), mutate(&mut rng, &base))
        };
        if parse(&topic, &payload).is_ok() {
            accepted += 1;
        }
    }
    // Some mutations stay valid (a flipped digit in a confidence); most must not.
    assert!(
        accepted < 10_000,
        "seed {seed:#x}: {accepted} of 50000 mutations were accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_reports_through_the_broker_store_nothing_and_the_consumer_goes_on() {
    let stack = Stack::from_env();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&db, &dir);
    let run = random_token();
    c.mqtt = Some(mqtt_config(&stack, &run));
    let server = common::Server::start(c).await;
    let pool = db.pool().await;
    let edge = format!("fuzz-{}", &run[..8]);
    let camera = format!("{edge}-cam1");
    register_edge(&pool, &edge, &camera, "restaurant", "斋堂镇川味小馆", None).await;
    let client = edge::connect(&stack, &pool, &edge).await;

    let mut rng = StdRng::seed_from_u64(0xb10c_2026);
    let base = valid(&edge, &camera);
    let topic = format!("bl/v1/edge/{edge}/events");
    let mut payloads = Vec::new();
    let mut parseable = HashSet::new();
    for _ in 0..400 {
        let p = mutate(&mut rng, &base);
        if let Ok(EdgeReport::Event(e)) = parse(&topic, &p) {
            parseable.insert(e.event_id());
        }
        payloads.push(p);
    }
    let marker = Uuid::now_v7();
    let marker_event = Detection {
        event_id: marker,
        episode_id: Uuid::now_v7(),
        phase: "start",
        edge: &edge,
        camera: &camera,
        kind: "rodent",
        at: "2026-11-23T22:16:00.000Z".parse().unwrap(),
        exercise: None,
    }
    .json();
    payloads.push(marker_event);
    edge::publish(&client, &edge, payloads).await;
    edge::wait_for_event(&pool, marker).await;

    // Everything stored is the marker or a mutation the parser accepted as a whole event.
    let stored: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM edge_events")
        .fetch_all(&pool)
        .await
        .unwrap();
    for id in &stored {
        assert!(
            *id == marker || parseable.contains(id),
            "event {id} was stored but never parsed as valid"
        );
    }
    assert!(stored.len() <= parseable.len() + 1);
    let incidents = count(&pool, "SELECT count(*) FROM incidents").await;
    assert!(
        incidents >= 1,
        "the valid marker opened (or joined) an incident"
    );
    server.stop().await;
    db.drop_now().await;
}
