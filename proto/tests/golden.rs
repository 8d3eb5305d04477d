//! The exact wire shape of one message of each kind: camelCase fields, `"v": 1`, `"type"`, RFC 3339
//! timestamps with milliseconds. If one of these changes, every other implementation must change too.

mod common;

use bl_proto::encode;
use bl_proto::event::{EdgeEvent, EpisodePhase};
use common::*;
use serde_json::{Value, json};

fn wire<M: bl_proto::Message>(m: &M) -> Value {
    serde_json::from_slice(&encode(m)).unwrap()
}

#[test]
fn an_edge_state_has_exactly_this_wire_shape() {
    assert_eq!(
        wire(&edge_state()),
        json!({
            "type": "edgeState",
            "v": 1,
            "edgeId": "mtg-dyl-school-03",
            "online": true,
            "agentVersion": "0.1.0",
            "at": "2025-03-01T08:15:30.123Z",
            "cameras": [
                {
                    "cameraId": "mtg-dyl-school-03-cam1",
                    "online": true,
                    "fps": 12.5,
                    "bitrateKbps": 2048,
                    "lastFrameAt": "2025-03-01T08:15:30.040Z",
                    "problem": null
                },
                {
                    "cameraId": "mtg-dyl-school-03-cam2",
                    "online": false,
                    "fps": 0.0,
                    "bitrateKbps": 0,
                    "lastFrameAt": null,
                    "problem": "authFailed"
                }
            ],
            "disk": {"totalBytes": 256000000000u64, "freeBytes": 118500000000u64},
            "outboxDepth": 3,
            "configRevision": 42
        })
    );
}

#[test]
fn an_edge_state_starts_with_its_type_and_version_on_the_wire() {
    let s = String::from_utf8(encode(&edge_state())).unwrap();
    assert!(
        s.starts_with(r#"{"type":"edgeState","v":1,"edgeId":"#),
        "{s}"
    );
}

#[test]
fn a_detection_event_has_exactly_this_wire_shape() {
    let ev = EdgeEvent::Detection(detection(EpisodePhase::End));
    assert_eq!(
        wire(&ev),
        json!({
            "type": "detection",
            "v": 1,
            "eventId": "01955a3c-6f1e-7b2a-9c4d-1e2f3a4b5c6d",
            "episodeId": "01955a3c-5a00-7000-8000-00000000beef",
            "phase": "end",
            "edgeId": "mtg-dyl-school-03",
            "cameraId": "mtg-dyl-school-03-cam1",
            "kind": "noChefHat",
            "at": "2025-03-01T08:15:30.123Z",
            "confidence": 0.87,
            "boxes": [{"x": 0.412, "y": 0.18, "w": 0.09, "h": 0.14, "label": "head", "confidence": 0.87}],
            "snapshot": {
                "sha256": SNAPSHOT_SHA,
                "size": 184321,
                "contentType": "image/jpeg",
                "from": null,
                "to": null
            },
            "clip": {
                "sha256": CLIP_SHA,
                "size": 7340032,
                "contentType": "video/mp4",
                "from": "2025-03-01T08:14:50.000Z",
                "to": "2025-03-01T08:16:10.500Z"
            },
            "model": {"name": "kitchen-ppe", "version": "2025.02.1"},
            "exercise": null
        })
    );
}

#[test]
fn a_camera_event_has_exactly_this_wire_shape() {
    let ev = EdgeEvent::Camera(camera_event(bl_proto::event::CameraEventKind::SceneChanged));
    assert_eq!(
        wire(&ev),
        json!({
            "type": "camera",
            "v": 1,
            "eventId": "01955a3d-0000-7c00-8a00-0000000000c1",
            "edgeId": "mtg-dyl-school-03",
            "cameraId": "mtg-dyl-school-03-cam2",
            "at": "2025-03-01T08:20:00.000Z",
            "kind": "sceneChanged",
            "detail": "rtsp: 401 Unauthorized",
            "exercise": null
        })
    );
}

#[test]
fn a_voice_warning_event_has_exactly_this_wire_shape() {
    assert_eq!(
        wire(&EdgeEvent::Warning(warning_played())),
        json!({
            "type": "warning",
            "v": 1,
            "eventId": "01955a3d-0000-7c00-8a00-0000000000d1",
            "episodeId": "01955a3c-5a00-7000-8000-00000000beef",
            "edgeId": "mtg-dyl-school-03",
            "cameraId": "mtg-dyl-school-03-cam1",
            "kind": "noChefHat",
            "at": "2025-03-01T08:15:36.500Z",
            "message": "wear-hat-zh",
            "output": "backchannel",
            "outcome": {"status": "ok", "detail": null},
            "exercise": null
        })
    );
    let failed = wire(&EdgeEvent::Warning(warning_failed()));
    assert_eq!(failed["outcome"]["status"], "error");
    assert_eq!(failed["outcome"]["code"], "unsupported");
    assert_eq!(failed["output"], Value::Null);
}

#[test]
fn a_command_has_its_action_fields_beside_the_envelope_on_the_wire() {
    let cmd = &all_commands()[2]; // startTalk
    assert_eq!(
        wire(cmd),
        json!({
            "v": 1,
            "type": "startTalk",
            "cmdId": "01955a3e-1111-7222-8333-444455556666",
            "issuedAt": "2025-03-01T08:16:00.000Z",
            "expiresAt": "2025-03-01T08:16:30.000Z",
            "cameraId": "mtg-dyl-school-03-cam1",
            "pullUrl": "rtsp://gw-1.bl.internal:8554/talk/01955a3e",
            "token": TOKEN,
            "output": "backchannel"
        })
    );
    let recheck = &all_commands()[5];
    let w = wire(recheck);
    assert_eq!(w["type"], "recheck");
    assert_eq!(w["kind"], "noChefHat");
    assert_eq!(w["forSecs"], 600);
}

#[test]
fn command_results_carry_an_outcome_tagged_by_status() {
    assert_eq!(
        wire(&result_error()),
        json!({
            "type": "commandResult",
            "v": 1,
            "cmdId": "01955a3e-1111-7222-8333-444455556666",
            "edgeId": "mtg-dyl-school-03",
            "at": "2025-03-01T08:16:01.250Z",
            "outcome": {
                "status": "error",
                "code": "cameraOffline",
                "message": "camera mtg-dyl-school-03-cam2 has sent no frame for 95 s"
            }
        })
    );
    assert_eq!(
        wire(&result_ok())["outcome"],
        json!({"status": "ok", "detail": null})
    );
}

#[test]
fn an_edge_config_has_camel_case_rules_and_hh_mm_hours_on_the_wire() {
    let w = wire(&edge_config());
    assert_eq!(w["type"], "edgeConfig");
    assert_eq!(w["v"], 1);
    assert_eq!(w["revision"], 42);
    assert_eq!(w["timezone"], "Asia/Shanghai");
    assert_eq!(
        w["cameras"][0]["rules"][1],
        json!({
            "kind": "rodent",
            "enabled": true,
            "minDurationSecs": 1,
            "cooldownSecs": 60,
            "activeHours": {"from": "22:00", "to": "06:00"},
            "zones": []
        })
    );
    assert_eq!(
        w["cameras"][0]["rules"][0]["zones"][0][0],
        json!({"x": 0.1, "y": 0.2})
    );
    assert_eq!(w["cameras"][1]["preRollSecs"], 5);
    assert_eq!(w["cameras"][1]["postRollSecs"], 10);
    assert_eq!(
        w["exercises"][0],
        json!({
            "cameraId": "mtg-dyl-school-03-cam1",
            "run": "0195a1b2-0000-7000-8000-00000000d811",
            "until": "2025-03-01T22:40:00.000Z"
        })
    );
}
