//! `make bench`: how fast the edge's durable path is — outbox writes (each one on disk before it
//! returns) and delivery through a real mosquitto to a subscriber, with latency from the write to
//! the subscriber. Prints a table; passes or fails nothing.

use bl_proto::EdgeId;
use bl_proto::topic::Topic;
use bl_service::secret::Secret;
use bl_test_support::broker::PrivateBroker;
use edge_agent::ingest::HealthBoard;
use edge_agent::outbox::Outbox;
use edge_agent::uplink::{self, UplinkConfig};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const EVENTS: usize = 2000;

#[tokio::main]
async fn main() {
    let broker = PrivateBroker::start();
    let edge = "bench-edge";
    let password = broker.add_user(edge);
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("outbox.db"), 256 << 20)
        .await
        .unwrap();

    // The center: when each event arrived.
    let arrivals: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let mut options = MqttOptions::new("bench-center", "127.0.0.1", broker.port);
    options.set_credentials(&broker.service_user, &broker.service_password);
    let (center, mut center_events) = AsyncClient::new(options, 100);
    center
        .subscribe("bl/v1/edge/+/events", QoS::AtLeastOnce)
        .await
        .unwrap();
    let seen = arrivals.clone();
    tokio::spawn(async move {
        let _center = center;
        while let Ok(event) = center_events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                let n = u64::from_le_bytes(p.payload[..8].try_into().unwrap());
                seen.lock().unwrap().insert(n, Instant::now());
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stop = CancellationToken::new();
    let config = UplinkConfig {
        edge_id: EdgeId::new(edge).unwrap(),
        host: "127.0.0.1".into(),
        port: broker.port,
        password: Secret::new(password),
        keep_alive: Duration::from_secs(15),
        window: 64,
        state_interval: Duration::from_secs(30),
        commands: None,
        data_dir: dir.path().to_owned(),
        config_payloads: tokio::sync::watch::channel(Vec::new()).0,
        applied_revision: Default::default(),
    };
    let link = tokio::spawn(uplink::run(
        config,
        outbox.clone(),
        HealthBoard::default(),
        stop.clone(),
    ));

    // A detection event is ~700 bytes on the wire.
    let topic = Topic::EdgeEvents(EdgeId::new(edge).unwrap());
    let mut written = Vec::with_capacity(EVENTS);
    let start = Instant::now();
    for n in 0..EVENTS as u64 {
        let mut payload = n.to_le_bytes().to_vec();
        payload.resize(700, b'x');
        written.push(Instant::now());
        outbox.push(&topic, &payload).await.unwrap();
    }
    let write_secs = start.elapsed().as_secs_f64();
    while arrivals.lock().unwrap().len() < EVENTS {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "delivery stalled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total_secs = start.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = {
        let arrivals = arrivals.lock().unwrap();
        (0..EVENTS)
            .map(|n| (arrivals[&(n as u64)] - written[n]).as_secs_f64() * 1000.0)
            .collect()
    };
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    stop.cancel();
    let _ = link.await;

    println!(
        "edge uplink: outbox (SQLite, synchronous=FULL) → mosquitto → subscriber, {EVENTS} events of 700 B\n"
    );
    println!("| outbox writes/s | delivered/s | write→subscriber p50 ms | p99 ms | max ms |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {:.0} | {:.0} | {:.1} | {:.1} | {:.1} |",
        EVENTS as f64 / write_secs,
        EVENTS as f64 / total_secs,
        pct(0.5),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
}
