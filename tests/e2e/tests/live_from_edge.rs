//! The edge-agent answering the center's commands, every part real: camsim's night kitchen over
//! RTSP → the `edge-agent` binary, commands and results through a private mosquitto, the
//! `media-gateway` binary taking the box's RTSP RECORD push and relaying it to a WHEP viewer
//! (media-gateway's own webrtc-rs test client), and its evidence store taking the snapshot.
//!
//! The center's side is played by the test: it publishes `Command`s on `bl/v1/edge/{edge}/cmd`
//! with `push` tokens signed by the key the gateway trusts, as dispatch's `live-start` does.

#[allow(dead_code)]
#[path = "../../../media-gateway/tests/common/whep.rs"]
mod whep;

use bl_e2e::{Running, keygen, night_kitchen};
use bl_proto::command::{
    Command, CommandAction, CommandResult, Outcome, Recheck, SnapshotCmd, StartLive, StopLive,
    codes,
};
use bl_proto::event::ViolationKind;
use bl_proto::evidence::{self, EvidenceMeta};
use bl_proto::state::EdgeState;
use bl_proto::stream::Stream;
use bl_proto::token::{self, MediaAction, MediaClaims, MediaToken};
use bl_proto::{CameraId, SigningKey, V1};
use bl_test_support::broker::{PrivateBroker, free_port};
use chrono::{Duration as Span, Utc};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};
use uuid::Uuid;

const EDGE: &str = "live-edge";
const CAMERA: &str = "cam-edge";
const NODE: &str = "gw-1";

fn dispatch_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// The gateway: HTTP on `port`, RTSP RECORD on `push_port`, the camera pushed by the box, the
/// box's evidence key, dispatch's token key.
fn gateway_config(dir: &Path, port: u16, push_port: u16, edge_public: &str) -> PathBuf {
    let public = bl_proto::keys::encode_public(&dispatch_key().verifying_key());
    std::fs::write(dir.join("token.pub"), public).unwrap();
    let file = dir.join("gw.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{port}\"\nnode_id = \"{NODE}\"\ndata_dir = \"data\"\n\
             token_public_key_file = \"token.pub\"\n\
             [live]\nbind_ip = \"127.0.0.1\"\npush_listen = \"127.0.0.1:{push_port}\"\nstart_timeout_secs = 60\n\
             [[edge]]\nid = \"{EDGE}\"\npublic_key = \"{edge_public}\"\n\
             [[camera]]\nid = \"{CAMERA}\"\nedge = \"{EDGE}\"\n"
        ),
    )
    .unwrap();
    file
}

fn edge_config(dir: &Path, broker: &PrivateBroker, camera_url: &str, gateway_port: u16) -> PathBuf {
    std::fs::write(dir.join("mqtt.password"), broker.add_user(EDGE)).unwrap();
    let file = dir.join("edge.toml");
    std::fs::write(
        &file,
        format!(
            "edge_id = \"{EDGE}\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\npassword_file = \"mqtt.password\"\n\
             [evidence]\nurl = \"http://127.0.0.1:{gateway_port}\"\nretry_max_secs = 2\n\
             [[camera]]\nid = \"{CAMERA}\"\nurl = \"{camera_url}\"\nrodent = true\n",
            broker.port
        ),
    )
    .unwrap();
    file
}

fn media_token(action: MediaAction, stream: Option<Stream>, secs: i64) -> String {
    let now = Utc::now().timestamp();
    let claims = MediaClaims {
        sub: format!("edge:{EDGE}"),
        camera: CAMERA.parse().unwrap(),
        action,
        node: NODE.parse().unwrap(),
        stream,
        iat: now - 5,
        exp: now + secs,
        jti: Uuid::now_v7().to_string(),
    };
    token::sign(&claims, &dispatch_key())
}

fn command(action: CommandAction) -> Command {
    let now = Utc::now();
    Command {
        v: V1,
        cmd_id: Uuid::now_v7(),
        issued_at: now,
        expires_at: Some(now + Span::seconds(30)),
        action,
    }
}

fn camera() -> CameraId {
    CAMERA.parse().unwrap()
}

/// The center: publishes commands, collects the box's results and state.
struct Center {
    client: AsyncClient,
    events: EventLoop,
    results: HashMap<Uuid, Vec<Outcome>>,
    online: bool,
}

impl Center {
    async fn connect(broker: &PrivateBroker) -> Center {
        let mut options = MqttOptions::new("test-center", "127.0.0.1", broker.port);
        options.set_credentials(&broker.service_user, &broker.service_password);
        let (client, events) = AsyncClient::new(options, 64);
        for topic in ["cmd/result", "state"] {
            client
                .subscribe(format!("bl/v1/edge/{EDGE}/{topic}"), QoS::AtLeastOnce)
                .await
                .unwrap();
        }
        Center {
            client,
            events,
            results: HashMap::new(),
            online: false,
        }
    }

    async fn send(&self, cmd: &Command) {
        self.send_raw(bl_proto::encode(cmd)).await;
    }

    async fn send_raw(&self, payload: Vec<u8>) {
        self.client
            .publish(
                format!("bl/v1/edge/{EDGE}/cmd"),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .unwrap();
    }

    /// Turns the event loop for up to `within`, or until `done` says so.
    async fn pump(&mut self, within: Duration, done: impl Fn(&Center) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) && Instant::now() < deadline {
            let Ok(event) =
                tokio::time::timeout(Duration::from_millis(200), self.events.poll()).await
            else {
                continue;
            };
            let Event::Incoming(Packet::Publish(p)) = event.expect("the broker is up") else {
                continue;
            };
            if p.topic.ends_with("/state") {
                let state: EdgeState = bl_proto::decode(&p.payload).unwrap();
                self.online = state.online;
            } else {
                let result: CommandResult = bl_proto::decode(&p.payload).unwrap();
                assert_eq!(result.edge_id.as_str(), EDGE);
                self.results
                    .entry(result.cmd_id)
                    .or_default()
                    .push(result.outcome);
            }
        }
    }

    /// The first answer to `cmd_id`, waiting up to `within`.
    async fn answer(&mut self, cmd_id: Uuid, within: Duration) -> Outcome {
        self.pump(within, |c| c.results.contains_key(&cmd_id)).await;
        self.results
            .get(&cmd_id)
            .and_then(|r| r.first().cloned())
            .unwrap_or_else(|| panic!("no answer to command {cmd_id} within {within:?}"))
    }

    async fn answers(&mut self, cmd_id: Uuid, n: usize, within: Duration) -> Vec<Outcome> {
        self.pump(within, |c| {
            c.results.get(&cmd_id).is_some_and(|r| r.len() >= n)
        })
        .await;
        self.results.get(&cmd_id).cloned().unwrap_or_default()
    }
}

fn ok_detail(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok { detail } => detail.clone().unwrap_or_default(),
        Outcome::Error { code, message } => panic!("expected ok, got {code}: {message}"),
    }
}

fn error_code(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Error { code, .. } => code,
        Outcome::Ok { detail } => panic!("expected an error, got ok ({detail:?})"),
    }
}

/// The gateway's view of the camera's sub-stream source: `connecting`, `live` or `offline`.
async fn source_state(http: &reqwest::Client, base: &str) -> String {
    let view = media_token(MediaAction::View, None, 300);
    let status: serde_json::Value = http
        .get(format!("{base}/live/{CAMERA}/status"))
        .bearer_auth(view)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["streams"]["sub"]["source"]["state"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

async fn wait_source(
    http: &reqwest::Client,
    base: &str,
    want: impl Fn(&str) -> bool,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let state = source_state(http, base).await;
        if want(&state) || Instant::now() > deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A blob as the gateway stored it: bytes, metadata and signature.
fn stored(data: &Path, sha256: &str) -> Option<(Vec<u8>, EvidenceMeta, String)> {
    let folder = data.join("evidence/blobs").join(sha256.get(..2)?);
    let record = std::fs::read(folder.join(format!("{sha256}.json"))).ok()?;
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    let meta: EvidenceMeta = serde_json::from_value(record["meta"].clone()).unwrap();
    let signature = record["signature"].as_str().unwrap().to_owned();
    Some((std::fs::read(folder.join(sha256)).unwrap(), meta, signature))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_edge_pushes_live_on_start_live_stops_on_stop_live_and_answers_each_command_once() {
    let dir = tempfile::tempdir().unwrap();
    let agent_bin = bl_e2e::binary("edge-agent", "edge-agent", dir.path());
    let gateway_bin = bl_e2e::binary("media-gateway", "media-gateway", dir.path());
    let camsim = night_kitchen("night");
    let broker = PrivateBroker::start();
    let (edge_dir, gw_dir) = (dir.path().join("box"), dir.path().join("gw"));
    std::fs::create_dir_all(&edge_dir).unwrap();
    std::fs::create_dir_all(&gw_dir).unwrap();
    let edge_public = keygen(&agent_bin, &edge_dir);
    let edge_key = bl_proto::keys::parse_public(&edge_public).unwrap();
    let (port, push_port) = (free_port(), free_port());
    let gw_config = gateway_config(&gw_dir, port, push_port, &edge_public);
    let edge_config = edge_config(
        &edge_dir,
        &broker,
        &camsim.url("night", camsim::Stream::Sub),
        port,
    );
    let _gateway = Running(
        Process::new(&gateway_bin)
            .args(["run", "--config"])
            .arg(&gw_config)
            .current_dir(&gw_dir)
            .env("BL_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let mut center = Center::connect(&broker).await;
    let _agent = Running(
        Process::new(&agent_bin)
            .args(["run", "--config"])
            .arg(&edge_config)
            .env("BL_LOG", "info")
            .spawn()
            .unwrap(),
    );
    // The box subscribes to its commands before it publishes its first state.
    center.pump(Duration::from_secs(60), |c| c.online).await;
    assert!(center.online, "the box did not come online");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    // A viewer asks for the box's camera: the gateway waits for a push.
    let view = media_token(MediaAction::View, None, 300);
    let (client, b) = (http.clone(), base.clone());
    let viewer = tokio::spawn(async move {
        whep::connect(&client, &b, &format!("/whep/{CAMERA}?stream=sub"), &view).await
    });
    let state = wait_source(&http, &base, |s| s == "connecting", Duration::from_secs(20)).await;
    assert_eq!(state, "connecting");

    // startLive, as dispatch sends it: the box pushes and answers ok once video flows.
    let push_url = format!("rtsp://127.0.0.1:{push_port}/push/{CAMERA}/sub");
    let start = command(CommandAction::StartLive(StartLive {
        camera_id: camera(),
        stream: Stream::Sub,
        push_url: push_url.clone(),
        token: MediaToken::new(media_token(MediaAction::Push, Some(Stream::Sub), 120)),
    }));
    center.send(&start).await;
    let answer = center.answer(start.cmd_id, Duration::from_secs(60)).await;
    assert_eq!(ok_detail(&answer), "pushing");
    let viewer = tokio::time::timeout(Duration::from_secs(30), viewer)
        .await
        .expect("the viewer's WHEP request was answered")
        .unwrap();
    let frames = viewer.wait_frames(20, Duration::from_secs(30)).await;
    assert!(
        frames >= 20,
        "the viewer decoded {frames} frames of the pushed stream"
    );
    assert_eq!(source_state(&http, &base).await, "live");

    // The same command redelivered runs once: the first answer again. Another startLive for the
    // running push is ok without a second push.
    center.send(&start).await;
    let again = center
        .answers(start.cmd_id, 2, Duration::from_secs(20))
        .await;
    assert_eq!(again, vec![answer.clone(), answer.clone()]);
    let second = command(CommandAction::StartLive(StartLive {
        camera_id: camera(),
        stream: Stream::Sub,
        push_url: push_url.clone(),
        token: MediaToken::new(media_token(MediaAction::Push, Some(Stream::Sub), 120)),
    }));
    center.send(&second).await;
    let answer = center.answer(second.cmd_id, Duration::from_secs(20)).await;
    assert_eq!(ok_detail(&answer), "already pushing");

    // A command past its expiry is refused, with a result that says so.
    let mut late = command(CommandAction::StopLive(StopLive {
        camera_id: camera(),
        stream: Stream::Sub,
    }));
    late.issued_at = Utc::now() - Span::seconds(60);
    late.expires_at = Some(Utc::now() - Span::seconds(30));
    center.send(&late).await;
    let answer = center.answer(late.cmd_id, Duration::from_secs(20)).await;
    assert_eq!(error_code(&answer), codes::EXPIRED);
    assert_eq!(
        source_state(&http, &base).await,
        "live",
        "an expired stopLive acted"
    );

    // Garbage with a cmdId is answered `invalid`, naming the field; the box carries on.
    let bad_id = Uuid::now_v7();
    center
        .send_raw(
            serde_json::to_vec(&serde_json::json!({
                "v": 1, "type": "recheck", "cmdId": bad_id, "issuedAt": Utc::now(),
                "cameraId": CAMERA, "kind": "rodent", "forSecs": 0,
            }))
            .unwrap(),
        )
        .await;
    let answer = center.answer(bad_id, Duration::from_secs(20)).await;
    assert_eq!(error_code(&answer), codes::INVALID);

    // A snapshot: a JPEG of the camera now, signed by the box, stored by the gateway; its sha256
    // in the answer. Its repeat is answered with the same picture, not a second one.
    let snap = command(CommandAction::Snapshot(SnapshotCmd {
        camera_id: camera(),
    }));
    center.send(&snap).await;
    let sha256 = ok_detail(&center.answer(snap.cmd_id, Duration::from_secs(30)).await);
    center.send(&snap).await;
    let both = center
        .answers(snap.cmd_id, 2, Duration::from_secs(20))
        .await;
    assert_eq!(ok_detail(&both[1]), sha256);
    let data = gw_dir.join("data");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (bytes, meta, signature) = loop {
        if let Some(blob) = stored(&data, &sha256) {
            break blob;
        }
        assert!(
            Instant::now() < deadline,
            "the snapshot {sha256} never reached the gateway"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(&bytes[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    assert_eq!(evidence::sha256_hex(&bytes).as_str(), sha256);
    assert_eq!(meta.camera_id.as_str(), CAMERA);
    evidence::verify(&meta, &signature, &edge_key).expect("signed by the box's device key");

    // Re-checks: a kind the camera does not look for is unsupported; rodents get a verdict.
    let hats = command(CommandAction::Recheck(Recheck {
        camera_id: camera(),
        kind: ViolationKind::NoChefHat,
        for_secs: 2,
    }));
    let rodents = command(CommandAction::Recheck(Recheck {
        camera_id: camera(),
        kind: ViolationKind::Rodent,
        for_secs: 4,
    }));
    center.send(&hats).await;
    center.send(&rodents).await;
    let answer = center.answer(hats.cmd_id, Duration::from_secs(30)).await;
    assert_eq!(error_code(&answer), codes::UNSUPPORTED);
    let answer = center.answer(rodents.cmd_id, Duration::from_secs(30)).await;
    match &answer {
        Outcome::Ok { detail } => {
            assert!(detail.as_deref().unwrap().contains("frames"), "{answer:?}")
        }
        Outcome::Error { code, .. } => assert_eq!(code, codes::NOT_KEPT, "{answer:?}"),
    }

    // stopLive: the push ends and the gateway sees its source go.
    let stop = command(CommandAction::StopLive(StopLive {
        camera_id: camera(),
        stream: Stream::Sub,
    }));
    center.send(&stop).await;
    assert_eq!(
        ok_detail(&center.answer(stop.cmd_id, Duration::from_secs(20)).await),
        "stopped"
    );
    let state = wait_source(&http, &base, |s| s != "live", Duration::from_secs(40)).await;
    assert_ne!(
        state, "live",
        "the gateway still receives the push after stopLive"
    );
    let frames = viewer
        .received
        .frames_after_key
        .load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = viewer
        .received
        .frames_after_key
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        later - frames <= 1,
        "frames still arrive after stopLive: {frames} then {later}"
    );
}
