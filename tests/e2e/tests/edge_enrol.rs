//! `edge-agent enrol` against a real dispatch and a real mosquitto: the box makes its device key,
//! trades the one-time code for its own broker account, and prints the head of its `edge.toml`;
//! a used or wrong code and an unreachable dispatch are refused in words an installer can act on,
//! and enrolling again with a new code keeps the box's key.

#[path = "../../../dispatch/tests/common/mod.rs"]
mod common;
mod edge_box;

use bl_test_support::broker::{PrivateBroker, free_port};
use common::{ADMIN_PASSWORD, Server, TestDb, create_premises};
use edge_box::{broker_accepts, config, enrol, http, listed, register, text};
use reqwest::StatusCode;
use serde_json::json;
use std::os::unix::fs::PermissionsExt as _;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_enrols_with_its_code_logs_in_with_the_issued_account_and_keeps_its_key_when_enrolled_again()
 {
    let work = tempfile::tempdir().unwrap();
    let bin = edge_box::agent_binary(work.path());
    let broker = PrivateBroker::start();
    let db = TestDb::new().await;
    let mut c = config(&db, &work);
    c.enrolment = Some(edge_box::enrolment_config(&broker));
    let server = Server::start(c).await;
    let mut admin = server.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let (status, premises) = create_premises(&mut admin, "zhaitang", "斋堂镇老街饭馆").await;
    assert_eq!(status, StatusCode::CREATED, "{premises}");
    let edge = "zt-laojie-box";
    let code = register(&mut admin, edge, premises["id"].as_str().unwrap()).await;
    let box_dir = work.path().join("box");
    let dispatch = http(server.addr);

    // A mistyped code: refused, and nothing is issued.
    let out = enrol(&bin, &dispatch, edge, "not-the-code", &box_dir);
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(said.contains("dispatch refused the enrolment"), "{said}");
    assert!(!box_dir.join("mqtt.password").exists());

    let out = enrol(&bin, &dispatch, edge, &code, &box_dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let head = text(&out.stdout);
    let password = std::fs::read_to_string(box_dir.join("mqtt.password")).unwrap();
    let password = password.trim();
    assert!(!head.contains(password), "the password is never printed");
    assert_eq!(mode(&box_dir.join("device.key")), 0o600);
    assert_eq!(mode(&box_dir.join("mqtt.password")), 0o600);
    let public = std::fs::read_to_string(box_dir.join("device.key.pub")).unwrap();
    assert_eq!(listed(&mut admin, edge).await["publicKey"], public.trim());

    // What it printed is a config the agent accepts, and the account logs in.
    std::fs::write(box_dir.join("edge.toml"), &head).unwrap();
    let check = std::process::Command::new(&bin)
        .args(["check-config", "--config"])
        .arg(box_dir.join("edge.toml"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{head}\n{}", text(&check.stderr));
    assert!(head.contains(&format!("port = {}", broker.port)), "{head}");
    assert!(
        broker_accepts(broker.port, edge, password).await,
        "the issued account logs in: {}",
        broker.log()
    );

    // The code is used up.
    let out = enrol(&bin, &dispatch, edge, &code, &box_dir);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("dispatch refused the enrolment"));
    let unchanged = std::fs::read_to_string(box_dir.join("mqtt.password")).unwrap();
    assert_eq!(unchanged.trim(), password, "a refusal changes nothing");

    // A new code (a re-install): the same key, a new password.
    let (status, fresh) = admin
        .post(&format!("/api/edges/{edge}/enrolment-code"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let out = enrol(
        &bin,
        &dispatch,
        edge,
        fresh["enrolmentCode"].as_str().unwrap(),
        &box_dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("(kept)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(box_dir.join("device.key.pub")).unwrap(),
        public
    );
    assert_eq!(listed(&mut admin, edge).await["publicKey"], public.trim());
    let renewed = std::fs::read_to_string(box_dir.join("mqtt.password")).unwrap();
    assert_ne!(renewed.trim(), password);
    assert!(broker_accepts(broker.port, edge, renewed.trim()).await);

    server.stop().await;
    db.drop_now().await;
}

#[test]
fn an_unreachable_dispatch_is_named_and_nothing_is_written_but_the_key() {
    let work = tempfile::tempdir().unwrap();
    let bin = edge_box::agent_binary(work.path());
    let box_dir = work.path().join("box");
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let out = enrol(&bin, &nobody, "zt-box", "some-code", &box_dir);
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(
        said.contains(&format!("cannot reach dispatch at {nobody}/api/enrol")),
        "{said}"
    );
    assert!(!box_dir.join("mqtt.password").exists());
    assert!(text(&out.stdout).is_empty());
}
