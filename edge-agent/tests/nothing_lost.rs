//! DESIGN.md §7: an event written to the edge's outbox reaches the center even when the agent is
//! killed mid-burst or the broker goes away, and a resend is always recognisable by its `eventId`.
//!
//! Each test runs the real `edge-agent` binary against a private mosquitto (configured like the dev
//! stack's, same ACL) and counts event ids at a subscriber with a persistent session, as dispatch
//! will be.

use bl_proto::EdgeId;
use bl_proto::event::EdgeEvent;
use bl_proto::topic::Topic;
use bl_test_support::broker::PrivateBroker;
use edge_agent::outbox::Outbox;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const EVENTS: usize = 3000;
const WINDOW: usize = 64;

/// A realistic detection event with the given id.
fn detection(edge: &str, event_id: Uuid) -> Vec<u8> {
    let json = format!(
        r#"{{"type":"detection","v":1,"eventId":"{event_id}","episodeId":"{}","phase":"start","edgeId":"{edge}","cameraId":"{edge}-cam1","kind":"rodent","at":"2026-11-23T22:15:30.123Z","confidence":0.91,"boxes":[{{"x":0.41,"y":0.72,"w":0.03,"h":0.02,"label":"rodent","confidence":0.91}}],"snapshot":null,"clip":null,"model":{{"name":"rodent-mog2","version":"0.1.0"}},"exercise":null}}"#,
        Uuid::now_v7()
    );
    let event: EdgeEvent = bl_proto::decode(json.as_bytes()).expect("a valid detection");
    bl_proto::encode(&event)
}

/// The center's side: a persistent-session subscriber counting every event id it receives.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<HashMap<Uuid, usize>>>);

impl Received {
    fn distinct(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }
    fn ids(&self) -> HashSet<Uuid> {
        self.0.lock().unwrap().keys().copied().collect()
    }
}

async fn subscribe(broker: &PrivateBroker) -> Received {
    let received = Received::default();
    let mut options = MqttOptions::new("test-center", "127.0.0.1", broker.port);
    options
        .set_credentials(&broker.service_user, &broker.service_password)
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 100);
    client
        .subscribe("bl/v1/edge/+/events", QoS::AtLeastOnce)
        .await
        .unwrap();
    let sink = received.clone();
    tokio::spawn(async move {
        let _client = client; // keeps the request channel open
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let event: EdgeEvent = bl_proto::decode(&p.payload).expect("valid event");
                    *sink.0.lock().unwrap().entry(event.event_id()).or_default() += 1;
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    // The subscription must be in place before anything is published.
    let wait_for = Instant::now();
    while wait_for.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if std::fs::read_to_string(broker.data_dir().join("mqtt/mosquitto.log"))
            .unwrap_or_default()
            .contains("test-center")
        {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    received
}

struct Agent {
    config: PathBuf,
    child: Option<Child>,
}

impl Agent {
    fn configure(dir: &Path, broker: &PrivateBroker, edge: &str) -> Agent {
        let password = broker.add_user(edge);
        std::fs::write(dir.join("mqtt.password"), format!("{password}\n")).unwrap();
        let config = dir.join("edge.toml");
        std::fs::write(
            &config,
            format!(
                "edge_id = \"{edge}\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\npassword_file = \"mqtt.password\"\nwindow = {WINDOW}\nkeep_alive_secs = 5\n",
                broker.port
            ),
        )
        .unwrap();
        Agent {
            config,
            child: None,
        }
    }

    fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("BL_LOG", "warn")
            .spawn()
            .expect("start edge-agent");
        self.child = Some(child);
    }

    /// SIGKILL: no chance to flush or say goodbye, as in a power cut.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Pushes `ids` into the outbox, as the detection pipeline does, at a steady pace.
async fn produce(outbox: Outbox, edge: String, ids: Vec<Uuid>) {
    let topic = Topic::EdgeEvents(EdgeId::new(&edge).unwrap());
    for (i, id) in ids.into_iter().enumerate() {
        outbox.push(&topic, &detection(&edge, id)).await.unwrap();
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn wait_for(what: &str, limit: Duration, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_all_arrived_once_by_id(received: &Received, ids: &[Uuid]) {
    let expected: HashSet<Uuid> = ids.iter().copied().collect();
    let got = received.ids();
    let missing = expected.difference(&got).count();
    let unexpected = got.difference(&expected).count();
    assert_eq!(missing, 0, "{missing} events never arrived");
    assert_eq!(
        unexpected, 0,
        "{unexpected} events arrived that were never sent"
    );
    // At-least-once: only what was in flight at a failure may come twice, never more.
    let resent = received.total() - received.distinct();
    println!(
        "{} events, {} deliveries, {resent} resends",
        ids.len(),
        received.total()
    );
    assert!(
        resent <= 2 * WINDOW,
        "{resent} resends exceed what can be in flight"
    );
}

/// A running agent in the middle of a burst of [`EVENTS`] events pushed into its outbox.
struct Burst {
    agent: Agent,
    received: Received,
    outbox: Outbox,
    ids: Vec<Uuid>,
    producer: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// Starts the agent and the burst, and returns once a third of it has reached the center.
async fn burst_under_way(broker: &PrivateBroker, edge: &str) -> Burst {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::configure(dir.path(), broker, edge);
    let received = subscribe(broker).await;
    let outbox = Outbox::open(&dir.path().join("outbox.db"), 64 << 20)
        .await
        .unwrap();
    agent.start();
    let ids: Vec<Uuid> = (0..EVENTS).map(|_| Uuid::now_v7()).collect();
    let producer = tokio::spawn(produce(outbox.clone(), edge.into(), ids.clone()));
    wait_for("a third of the burst", Duration::from_secs(60), || {
        received.distinct() >= EVENTS / 3
    })
    .await;
    Burst {
        agent,
        received,
        outbox,
        ids,
        producer,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_burst_loses_no_event_once_restarted() {
    let broker = PrivateBroker::start();
    let Burst {
        mut agent,
        received,
        outbox,
        ids,
        producer,
        _dir,
    } = burst_under_way(&broker, "kill-test-edge").await;
    agent.kill();
    let at_kill = received.distinct();
    assert!(
        at_kill < EVENTS,
        "the burst ended before the kill; nothing was tested"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    agent.start();
    producer.await.unwrap();

    wait_for("every event", Duration::from_secs(90), || {
        received.distinct() >= EVENTS
    })
    .await;
    assert_all_arrived_once_by_id(&received, &ids);
    let start = Instant::now();
    while outbox.depth().await.unwrap().messages > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the outbox never emptied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_going_away_mid_burst_loses_no_event() {
    let broker = PrivateBroker::start();
    let Burst {
        mut agent,
        received,
        outbox,
        ids,
        producer,
        _dir,
    } = burst_under_way(&broker, "outage-test-edge").await;
    broker.stop();
    // Events keep coming while the broker is away; they wait in the outbox.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let queued = outbox.depth().await.unwrap().messages;
    broker.start_again();
    producer.await.unwrap();

    wait_for("every event", Duration::from_secs(90), || {
        received.distinct() >= EVENTS
    })
    .await;
    println!("{queued} events waited in the outbox during the outage");
    assert!(
        queued > 0,
        "nothing waited in the outbox; the outage was not exercised"
    );
    assert_all_arrived_once_by_id(&received, &ids);
    agent.kill();
}
