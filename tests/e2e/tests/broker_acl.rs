//! The broker is the first line of defence between edges (DESIGN.md §3.1): no anonymous client gets
//! in, and an edge can publish only under its own `bl/v1/edge/{edge}/` subtree.

use bl_test_support::stack::Stack;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
    SubscribeReasonCode,
};
use std::time::Duration;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

fn options(stack: &Stack, client_id: &str, login: Option<(&str, &str)>) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, &stack.mqtt_host, stack.mqtt_port);
    o.set_keep_alive(Duration::from_secs(5));
    if let Some((user, password)) = login {
        o.set_credentials(user, password);
    }
    o
}

/// Polls until the broker's CONNACK, returning the refusal if there is one.
async fn connect(events: &mut EventLoop) -> Result<(), ConnectionError> {
    loop {
        match timeout(WAIT, events.poll())
            .await
            .expect("broker answers")?
        {
            Event::Incoming(Packet::ConnAck(_)) => return Ok(()),
            _ => continue,
        }
    }
}

/// Drives `events` until a PUBLISH arrives and returns its topic and payload.
async fn next_publish(events: &mut EventLoop) -> (String, Vec<u8>) {
    loop {
        let event = timeout(WAIT, events.poll())
            .await
            .expect("a message arrives in time")
            .expect("connection stays up");
        if let Event::Incoming(Packet::Publish(p)) = event {
            return (p.topic, p.payload.to_vec());
        }
    }
}

/// Drives `events` until the SUBACK and returns its reason codes.
async fn next_suback(events: &mut EventLoop) -> Vec<SubscribeReasonCode> {
    loop {
        let event = timeout(WAIT, events.poll()).await.unwrap().unwrap();
        if let Event::Incoming(Packet::SubAck(ack)) = event {
            return ack.return_codes;
        }
    }
}

/// Keeps an event loop turning in the background so the client's publishes go out.
fn drive(mut events: EventLoop) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while events.poll().await.is_ok() {} })
}

#[tokio::test]
async fn an_anonymous_client_is_refused() {
    let stack = Stack::from_env();
    let (_client, mut events) = AsyncClient::new(options(&stack, "anon-probe", None), 10);
    let refused = connect(&mut events)
        .await
        .expect_err("anonymous login must fail");
    assert!(
        matches!(
            refused,
            ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized)
                | ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword)
        ),
        "unexpected refusal: {refused:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let stack = Stack::from_env();
    stack.add_mqtt_user("test-edge-wrongpw");
    let login = Some(("test-edge-wrongpw", "not-the-password"));
    let (_client, mut events) = AsyncClient::new(options(&stack, "wrongpw", login), 10);
    assert!(connect(&mut events).await.is_err());
}

#[tokio::test]
async fn an_edge_cannot_publish_under_another_edges_topics() {
    let stack = Stack::from_env();
    let (a, b) = ("test-edge-a", "test-edge-b");
    let a_password = stack.add_mqtt_user(a);
    stack.add_mqtt_user(b);

    // dispatch's service account watches every edge's events and results.
    let service = Some((
        stack.mqtt_service_user.as_str(),
        stack.mqtt_service_password.as_str(),
    ));
    let (center, mut center_events) = AsyncClient::new(options(&stack, "acl-center", service), 10);
    connect(&mut center_events).await.unwrap();
    center
        .subscribe("bl/v1/edge/+/events", QoS::AtLeastOnce)
        .await
        .unwrap();
    center
        .subscribe("bl/v1/edge/+/cmd/result", QoS::AtLeastOnce)
        .await
        .unwrap();
    next_suback(&mut center_events).await;
    next_suback(&mut center_events).await;

    let (edge, mut edge_events) =
        AsyncClient::new(options(&stack, "acl-edge-a", Some((a, &a_password))), 10);
    connect(&mut edge_events)
        .await
        .expect("edge A logs in with its own account");

    let _driver = drive(edge_events);

    // A publishes as B (forged), then as itself. The broker keeps one client's messages in order,
    // so if the forged message got through it would arrive before A's own.
    for topic in [
        format!("bl/v1/edge/{b}/events"),
        format!("bl/v1/edge/{b}/cmd/result"),
    ] {
        edge.publish(topic, QoS::AtLeastOnce, false, b"forged".to_vec())
            .await
            .unwrap();
    }
    let own = format!("bl/v1/edge/{a}/events");
    edge.publish(&own, QoS::AtLeastOnce, false, b"genuine".to_vec())
        .await
        .unwrap();

    let (topic, payload) = next_publish(&mut center_events).await;
    assert_eq!(
        topic, own,
        "the first message the center sees is A's own, not the forged one"
    );
    assert_eq!(payload, b"genuine");
}

#[tokio::test]
async fn an_edge_cannot_read_another_edges_commands() {
    let stack = Stack::from_env();
    let (a, b) = ("test-edge-reader", "test-edge-victim");
    let a_password = stack.add_mqtt_user(a);
    let (edge, mut edge_events) =
        AsyncClient::new(options(&stack, "acl-reader", Some((a, &a_password))), 10);
    connect(&mut edge_events).await.unwrap();
    // mosquitto grants the subscription and enforces the read ACL on delivery.
    for edge_id in [b, a] {
        edge.subscribe(format!("bl/v1/edge/{edge_id}/cmd"), QoS::AtLeastOnce)
            .await
            .unwrap();
        next_suback(&mut edge_events).await;
    }

    // The center sends B's command first, then A's: A must see only its own.
    let service = Some((
        stack.mqtt_service_user.as_str(),
        stack.mqtt_service_password.as_str(),
    ));
    let (center, center_events) =
        AsyncClient::new(options(&stack, "acl-reader-center", service), 10);
    let _driver = drive(center_events);
    for edge_id in [b, a] {
        let topic = format!("bl/v1/edge/{edge_id}/cmd");
        center
            .publish(topic, QoS::AtLeastOnce, false, edge_id.as_bytes().to_vec())
            .await
            .unwrap();
    }
    let (topic, payload) = next_publish(&mut edge_events).await;
    assert_eq!(topic, format!("bl/v1/edge/{a}/cmd"));
    assert_eq!(payload, a.as_bytes());
}

#[tokio::test]
async fn an_edge_cannot_forge_commands_to_itself() {
    let stack = Stack::from_env();
    let a = "test-edge-selfcmd";
    let a_password = stack.add_mqtt_user(a);
    let (edge, mut edge_events) =
        AsyncClient::new(options(&stack, "acl-selfcmd", Some((a, &a_password))), 10);
    connect(&mut edge_events).await.unwrap();
    let cmd = format!("bl/v1/edge/{a}/cmd");
    edge.subscribe(&cmd, QoS::AtLeastOnce).await.unwrap();
    assert!(matches!(
        next_suback(&mut edge_events).await[..],
        [SubscribeReasonCode::Success(_)]
    ));

    // Only the center may write commands: A's own publish there is dropped, the center's arrives.
    edge.publish(&cmd, QoS::AtLeastOnce, false, b"forged".to_vec())
        .await
        .unwrap();
    let service = Some((
        stack.mqtt_service_user.as_str(),
        stack.mqtt_service_password.as_str(),
    ));
    let (center, center_events) =
        AsyncClient::new(options(&stack, "acl-selfcmd-center", service), 10);
    let _driver = drive(center_events);
    center
        .publish(&cmd, QoS::AtLeastOnce, false, b"genuine".to_vec())
        .await
        .unwrap();

    let (topic, payload) = next_publish(&mut edge_events).await;
    assert_eq!(topic, cmd);
    assert_eq!(payload, b"genuine");
}
