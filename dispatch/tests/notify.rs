//! Notification delivery against the real PostgreSQL and a real local HTTP receiver (an axum
//! server on 127.0.0.1:0 playing a webhook receiver, a WeCom robot, a DingTalk robot with 加签,
//! and an SMS provider; it checks every signature independently of dispatch's code): an escalating
//! incident reaches each channel once in its own format; a 500 is retried after the backoff; a
//! permanent failure ends dead with its error shown; a dispatch that crashes in the middle of a send
//! sends nothing twice; drills go only to channels that take drills, marked as drills.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxStatus, Uri};
use base64::Engine;
use bl_service::secret::Secret;
use common::*;
use dispatch::config::Config;
use dispatch::escalation::{Step, Target};
use dispatch::notify::{ChannelConfig, ChannelKind};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HOOK_SECRET: &str = "hook-secret-1";
const WECOM_KEY: &str = "wecom-key-693a91f6";
const DING_TOKEN: &str = "ding-token-abc";
const DING_SECRET: &str = "SECding0123456789";
const SMS_TOKEN: &str = "sms-token-9";
const TEAM_PHONE: &str = "13800000001";
const OFFICER_PHONE: &str = "13900000002";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    idempotency_key: Option<String>,
    body: Value,
    /// The path's authentication (signature, key, token) checked out.
    authentic: bool,
    at: Instant,
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<Received>,
    /// Replies to give per path before the default one.
    script: HashMap<String, VecDeque<(u16, String)>>,
}

/// The fake outside world.
#[derive(Clone, Default)]
struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
    /// While set, requests are recorded but not answered.
    hold: Arc<AtomicBool>,
}

fn hmac_sha256(key: &str, data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn query_of(uri: &Uri) -> HashMap<String, String> {
    let decode = |s: &str| {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), decode(v)))
        .collect()
}

/// Whether the request is authentic for its path, checked with the receivers' own rules.
fn authentic(path: &str, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let query = query_of(uri);
    match path {
        "/hook" => {
            let expected = format!("sha256={}", hex::encode(hmac_sha256(HOOK_SECRET, body)));
            header("x-brightline-signature") == Some(expected.as_str())
        }
        "/wecom/send" => query.get("key").map(String::as_str) == Some(WECOM_KEY),
        "/dingtalk/send" => {
            let (Some(token), Some(ts), Some(sign)) = (
                query.get("access_token"),
                query.get("timestamp"),
                query.get("sign"),
            ) else {
                return false;
            };
            let age = chrono::Utc::now().timestamp_millis() - ts.parse::<i64>().unwrap();
            let expected = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(
                DING_SECRET,
                format!("{ts}\n{DING_SECRET}").as_bytes(),
            ));
            token == DING_TOKEN && *sign == expected && (0..3_600_000).contains(&age)
        }
        "/sms" => header("authorization") == Some(&format!("Bearer {SMS_TOKEN}")),
        _ => false,
    }
}

async fn receive(
    State(r): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (AxStatus, String) {
    let path = uri.path().to_owned();
    let reply = {
        let mut s = r.state.lock().unwrap();
        s.received.push(Received {
            path: path.clone(),
            idempotency_key: headers
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            authentic: authentic(&path, &uri, &headers, &body),
            at: Instant::now(),
        });
        s.script.get_mut(&path).and_then(VecDeque::pop_front)
    };
    let held = Instant::now();
    while r.hold.load(Ordering::SeqCst) && held.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, text) = reply.unwrap_or_else(|| match path.as_str() {
        "/wecom/send" | "/dingtalk/send" => (200, r#"{"errcode":0,"errmsg":"ok"}"#.into()),
        _ => (200, r#"{"ok":true}"#.into()),
    });
    (AxStatus::from_u16(status).unwrap(), text)
}

impl Receiver {
    async fn start() -> (Receiver, SocketAddr) {
        let r = Receiver::default();
        let app = axum::Router::new().fallback(receive).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, addr)
    }

    fn script(&self, path: &str, replies: &[(u16, &str)]) {
        let mut s = self.state.lock().unwrap();
        s.script.insert(
            path.into(),
            replies.iter().map(|(c, t)| (*c, (*t).to_owned())).collect(),
        );
    }

    fn received(&self, path: &str) -> Vec<Received> {
        let s = self.state.lock().unwrap();
        s.received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

/// A channel of `kind` named `name` posting to the receiver at `addr`.
fn channel(name: &str, kind: ChannelKind, addr: SocketAddr) -> ChannelConfig {
    let (url, secret) = match kind {
        ChannelKind::Webhook => (format!("http://{addr}/hook"), Some(HOOK_SECRET)),
        ChannelKind::Wecom => (format!("http://{addr}/wecom/send?key={WECOM_KEY}"), None),
        ChannelKind::Dingtalk => (
            format!("http://{addr}/dingtalk/send?access_token={DING_TOKEN}"),
            Some(DING_SECRET),
        ),
        ChannelKind::Sms => (format!("http://{addr}/sms"), Some(SMS_TOKEN)),
    };
    ChannelConfig {
        name: name.into(),
        kind,
        url_file: PathBuf::from("<test>"),
        secret_file: None,
        url: Some(Secret::new(url)),
        secret: secret.map(Secret::new),
        timeout_ms: 2000,
        targets: Vec::new(),
        towns: Vec::new(),
        tiers: Vec::new(),
        drills: false,
    }
}

/// Fast polling and retries; immediate incidents notify the team, and the town officers after
/// `officers_after` seconds when given.
fn fast(c: &mut Config, officers_after: Option<u64>) {
    c.escalation.poll_interval_ms = 50;
    c.escalation.immediate = vec![Step::Notify {
        target: Target::Team,
    }];
    if let Some(secs) = officers_after {
        c.escalation.immediate.push(Step::Wait { secs });
        c.escalation.immediate.push(Step::Notify {
            target: Target::TownOfficers,
        });
    }
    c.notify.poll_interval_ms = 50;
    c.notify.retry_base_ms = 400;
    c.notify.console_url = Some("https://bl.example.cn".into());
}

/// A team on duty around the clock in 斋堂镇 with a phone.
async fn zhaitang_team(pool: &PgPool) {
    let team = team_on_duty(pool, "zhaitang", "斋堂镇全天组").await;
    sqlx::query("UPDATE teams SET phone = $2 WHERE id = $1")
        .bind(team)
        .bind(TEAM_PHONE)
        .execute(pool)
        .await
        .unwrap();
}

/// An operator of 斋堂镇, logged in, and a town officer with a phone.
async fn operator(admin: &mut Client, pool: &PgPool, addr: SocketAddr) -> Client {
    create_user(admin, "zt-officer", "townOfficer", Some(&["zhaitang"])).await;
    sqlx::query("UPDATE users SET phone = $1 WHERE username = 'zt-officer'")
        .bind(OFFICER_PHONE)
        .execute(pool)
        .await
        .unwrap();
    create_user(admin, "zt-operator", "operator", Some(&["zhaitang"])).await;
    let mut op = Client::new(addr);
    assert_eq!(
        op.login("zt-operator", USER_PASSWORD).await.0,
        StatusCode::OK
    );
    op
}

/// A rodent at a new restaurant in 斋堂镇 (a drill when `exercise` is given); the incident id.
async fn rodent(admin: &mut Client, op: &mut Client, name: &str, exercise: Option<&str>) -> String {
    let (status, p) = create_premises(admin, "zhaitang", name).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let body = json!({"source": "manual", "premisesId": p["id"], "kind": "rodent",
                      "description": "后厨发现老鼠", "exercise": exercise});
    let (status, d) = op.post("/api/incidents", body).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    d["id"].as_str().unwrap().to_owned()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until `sql` counts `n`.
async fn wait_for(pool: &PgPool, sql: &str, n: i64, within: Duration) {
    let start = Instant::now();
    loop {
        let got = count(pool, sql).await;
        if got == n {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{sql}: {got}, not {n} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The deliveries of every notification of an incident, as the API shows them.
async fn deliveries(client: &mut Client, incident: &str) -> Vec<Value> {
    let (status, d) = client.get(&format!("/api/incidents/{incident}")).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    d["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["deliveries"].as_array().unwrap().clone())
        .collect()
}

fn content(r: &Received) -> String {
    r.body["text"]["content"]
        .as_str()
        .or(r.body["text"].as_str())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_escalating_incident_is_delivered_once_to_every_channel_in_its_own_format() {
    let (rx, raddr) = Receiver::start().await;
    let (db, _dir, server, mut admin) = setup_with(|c| {
        fast(c, Some(1));
        c.notify.channel = vec![
            channel("hook", ChannelKind::Webhook, raddr),
            channel("wecom", ChannelKind::Wecom, raddr),
            channel("dingtalk", ChannelKind::Dingtalk, raddr),
            channel("sms", ChannelKind::Sms, raddr),
        ];
    })
    .await;
    let pool = db.pool().await;
    zhaitang_team(&pool).await;
    let mut op = operator(&mut admin, &pool, server.addr).await;
    let id = rodent(&mut admin, &mut op, "斋堂镇老王饭店", None).await;

    // the team at once, the town officer a second later: 2 notifications × 4 channels
    let sent = "SELECT count(*) FROM notification_deliveries WHERE state = 'sent'";
    wait_for(&pool, sent, 8, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count(&pool, "SELECT count(*) FROM notification_deliveries").await,
        8
    );
    let all = rx.all();
    assert_eq!(all.len(), 8, "{all:#?}");
    assert!(all.iter().all(|r| r.authentic), "{all:#?}");

    let hook = rx.received("/hook");
    assert_eq!(hook.len(), 2);
    let team = hook
        .iter()
        .find(|r| r.body["targetKind"] == "team")
        .unwrap();
    assert_eq!(team.body["type"], "notification");
    assert_eq!(team.body["incidentId"], id.as_str());
    assert_eq!(team.body["kind"], "rodent");
    assert_eq!(team.body["kindZh"], "发现老鼠");
    assert_eq!(team.body["phone"], TEAM_PHONE);
    assert_eq!(
        team.idempotency_key.as_deref(),
        team.body["deliveryId"].as_str()
    );
    let text = team.body["text"].as_str().unwrap();
    assert!(
        text.starts_with("【紧急】斋堂镇 斋堂镇老王饭店：发现老鼠"),
        "{text}"
    );
    assert!(
        text.contains(&format!("https://bl.example.cn/incidents/{id}")),
        "{text}"
    );

    for r in rx.received("/wecom/send") {
        assert_eq!(r.body["msgtype"], "text");
        let phones = &r.body["text"]["mentioned_mobile_list"];
        assert!(
            *phones == json!([TEAM_PHONE]) || *phones == json!([OFFICER_PHONE]),
            "{phones}"
        );
    }
    let ding = rx.received("/dingtalk/send");
    let officer = ding
        .iter()
        .find(|r| r.body["at"]["atMobiles"] == json!([OFFICER_PHONE]))
        .expect("the officer is @mentioned on DingTalk");
    let text = content(officer);
    assert!(
        text.contains("无人确认，升级至镇街") && text.ends_with(&format!("@{OFFICER_PHONE}")),
        "{text}"
    );
    let mut to: Vec<String> = rx
        .received("/sms")
        .iter()
        .map(|r| r.body["to"].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    assert_eq!(to, [TEAM_PHONE, OFFICER_PHONE]);

    // the incident shows each delivery, the admin route each channel
    let shown = deliveries(&mut op, &id).await;
    assert_eq!(shown.len(), 8);
    assert!(
        shown
            .iter()
            .all(|d| d["state"] == "sent" && d["attempts"] == 1),
        "{shown:#?}"
    );
    let keys: Vec<&str> = shown.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert!(
        hook.iter()
            .all(|r| keys.contains(&r.idempotency_key.as_deref().unwrap()))
    );
    let (status, ch) = admin.get("/api/notify/channels").await;
    assert_eq!(status, StatusCode::OK, "{ch}");
    for c in ch["items"].as_array().unwrap() {
        assert_eq!(c["counts"]["sent"], 2, "{c}");
        assert_eq!(c["configured"], true);
        assert!(c["lastSentAt"].is_string());
    }
    let (status, _) = op.get("/api/notify/channels").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_receiver_answering_500_then_200_gets_one_retry_after_the_backoff_and_one_success() {
    let (rx, raddr) = Receiver::start().await;
    rx.script("/hook", &[(500, "database is down")]);
    let (db, _dir, server, mut admin) = setup_with(|c| {
        fast(c, None);
        c.notify.channel = vec![channel("hook", ChannelKind::Webhook, raddr)];
    })
    .await;
    let pool = db.pool().await;
    zhaitang_team(&pool).await;
    let mut op = operator(&mut admin, &pool, server.addr).await;
    let id = rodent(&mut admin, &mut op, "斋堂镇小吃店", None).await;

    let sent = "SELECT count(*) FROM notification_deliveries WHERE state = 'sent'";
    wait_for(&pool, sent, 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = rx.received("/hook");
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].idempotency_key, got[1].idempotency_key);
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(400), "retried after {gap:?}");
    let shown = deliveries(&mut op, &id).await;
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["state"], "sent");
    assert_eq!(shown[0]["attempts"], 2);
    assert_eq!(shown[0]["lastError"], "HTTP 500: database is down");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_permanently_failing_channel_ends_dead_with_its_error_visible() {
    let (rx, raddr) = Receiver::start().await;
    rx.script(
        "/wecom/send",
        &[(200, r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#)],
    );
    let unavailable: Vec<(u16, &str)> = vec![(503, "maintenance"); 10];
    rx.script("/hook", &unavailable);
    let (db, _dir, server, mut admin) = setup_with(|c| {
        fast(c, None);
        c.notify.retry_base_ms = 100;
        c.notify.max_attempts = 3;
        c.notify.channel = vec![
            channel("wecom", ChannelKind::Wecom, raddr),
            channel("hook", ChannelKind::Webhook, raddr),
        ];
    })
    .await;
    let pool = db.pool().await;
    zhaitang_team(&pool).await;
    let mut op = operator(&mut admin, &pool, server.addr).await;
    let id = rodent(&mut admin, &mut op, "斋堂镇烧烤店", None).await;

    let dead = "SELECT count(*) FROM notification_deliveries WHERE state = 'dead'";
    wait_for(&pool, dead, 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rx.received("/wecom/send").len(),
        1,
        "a bad key is not retried"
    );
    assert_eq!(rx.received("/hook").len(), 3, "three attempts, then dead");
    let shown = deliveries(&mut op, &id).await;
    let by = |name: &str| shown.iter().find(|d| d["channel"] == name).unwrap().clone();
    assert_eq!(
        by("wecom")["lastError"],
        "errcode 93000: invalid webhook url"
    );
    assert_eq!(by("wecom")["attempts"], 1);
    assert_eq!(
        by("hook")["lastError"],
        "gave up after 3 attempts: HTTP 503: maintenance"
    );
    let (_, ch) = admin.get("/api/notify/channels").await;
    let hook = ch["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hook")
        .unwrap()
        .clone();
    assert_eq!(hook["counts"]["dead"], 1, "{hook}");
    assert_eq!(hook["counts"]["sent"], 0, "{hook}");
    assert!(
        hook["lastError"].as_str().unwrap().contains("HTTP 503"),
        "{hook}"
    );
    server.stop().await;
    db.drop_now().await;
}

/// dispatch on a runtime of its own, so that the test can kill it mid-request like a crash: every
/// task (HTTP server, workers, sends in flight) stops where it is.
struct Crashable {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
}

impl Crashable {
    async fn start(config: Config) -> Crashable {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            dispatch::run(config, listener, std::future::pending()).await
        });
        let addr = rx.await.unwrap();
        let http = reqwest::Client::new();
        let start = Instant::now();
        while !http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(start.elapsed() < Duration::from_secs(60), "did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Crashable { runtime, addr }
    }

    fn crash(self) {
        self.runtime.shutdown_background();
    }
}

#[tokio::test]
async fn a_dispatch_that_crashes_mid_send_and_two_that_carry_on_send_nothing_twice() {
    let (rx, raddr) = Receiver::start().await;
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&db, &dir);
    fast(&mut c, None);
    c.notify.lease_secs = 1; // below the start-up rule, so the test need not wait long
    c.notify.channel = vec![
        channel("hook", ChannelKind::Webhook, raddr),
        channel("wecom", ChannelKind::Wecom, raddr),
    ];
    let pool = db.pool().await;

    // the first dispatch sends, the receiver takes both requests and does not answer yet: crash
    rx.hold.store(true, Ordering::SeqCst);
    let first = Crashable::start(c.clone()).await;
    zhaitang_team(&pool).await;
    let mut admin = Client::new(first.addr);
    admin.login("admin", ADMIN_PASSWORD).await;
    let mut op = operator(&mut admin, &pool, first.addr).await;
    let crashed = rodent(&mut admin, &mut op, "斋堂镇农家院", None).await;
    let start = Instant::now();
    while rx.all().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "nothing sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.crash();
    rx.hold.store(false, Ordering::SeqCst);
    let sending = "SELECT count(*) FROM notification_deliveries WHERE state = 'sending'";
    assert_eq!(
        count(&pool, sending).await,
        2,
        "both were marked before they left"
    );

    // two dispatch servers carry on: the webhook (which drops repeats) gets it again with the
    // same key, the robot (which cannot) is left uncertain; new incidents go out once
    let one = Server::start(c.clone()).await;
    let two = Server::start(c).await;
    let mut admin = one.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let mut op = Client::new(two.addr);
    op.login("zt-operator", USER_PASSWORD).await;
    for i in 0..5 {
        rodent(&mut admin, &mut op, &format!("斋堂镇饭馆{i}"), None).await;
    }
    let settled =
        "SELECT count(*) FROM notification_deliveries WHERE state IN ('sent', 'uncertain')";
    wait_for(&pool, settled, 12, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let shown = deliveries(&mut admin, &crashed).await;
    let by = |name: &str| shown.iter().find(|d| d["channel"] == name).unwrap().clone();
    assert_eq!(by("hook")["state"], "sent");
    assert_eq!(by("hook")["attempts"], 2);
    assert!(
        by("hook")["lastError"]
            .as_str()
            .unwrap()
            .contains("stopped during the send")
    );
    assert_eq!(by("wecom")["state"], "uncertain");
    assert!(
        by("wecom")["lastError"]
            .as_str()
            .unwrap()
            .contains("not resent")
    );

    // the robot got each of the 6 incidents once; the webhook each key once, except the
    // interrupted one, which it got twice under one key and so takes once
    let wecom = rx.received("/wecom/send");
    assert_eq!(wecom.len(), 6, "{wecom:#?}");
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for r in rx.received("/hook") {
        *per_key.entry(r.idempotency_key.unwrap()).or_default() += 1;
    }
    assert_eq!(per_key.len(), 6);
    let crashed_key = by("hook")["id"].as_str().unwrap().to_owned();
    for (key, n) in &per_key {
        assert_eq!(*n, if *key == crashed_key { 2 } else { 1 }, "{key}");
    }
    let workers = "SELECT count(DISTINCT claimed_by) FROM notification_deliveries";
    assert!(count(&pool, workers).await >= 2);
    one.stop().await;
    two.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn drill_notifications_go_only_to_channels_that_take_drills_and_say_so_first() {
    let (rx, raddr) = Receiver::start().await;
    let (db, _dir, server, mut admin) = setup_with(|c| {
        fast(c, None);
        let mut drills = channel("dingtalk", ChannelKind::Dingtalk, raddr);
        drills.drills = true;
        c.notify.channel = vec![channel("wecom", ChannelKind::Wecom, raddr), drills];
    })
    .await;
    let pool = db.pool().await;
    zhaitang_team(&pool).await;
    let mut op = operator(&mut admin, &pool, server.addr).await;
    let real = rodent(&mut admin, &mut op, "斋堂镇面馆", None).await;
    let drill = rodent(&mut admin, &mut op, "斋堂镇演练食堂", Some("drill-2024-01")).await;

    let sent = "SELECT count(*) FROM notification_deliveries WHERE state = 'sent'";
    wait_for(&pool, sent, 3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let wecom = rx.received("/wecom/send");
    assert_eq!(
        wecom.len(),
        1,
        "the drill never reaches a channel without drills = true"
    );
    assert!(content(&wecom[0]).starts_with("【紧急】斋堂镇 斋堂镇面馆"));
    let ding = rx.received("/dingtalk/send");
    assert_eq!(ding.len(), 2);
    let drill_text = ding
        .iter()
        .map(content)
        .find(|t| t.contains("演练食堂"))
        .unwrap();
    assert!(
        drill_text.starts_with("【演练 DRILL】【紧急】斋堂镇 斋堂镇演练食堂"),
        "{drill_text}"
    );
    assert!(
        ding.iter()
            .map(content)
            .any(|t| t.starts_with("【紧急】斋堂镇 斋堂镇面馆"))
    );
    assert_eq!(deliveries(&mut op, &real).await.len(), 2);
    let d = deliveries(&mut op, &drill).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["channel"], "dingtalk");
    server.stop().await;
    db.drop_now().await;
}
