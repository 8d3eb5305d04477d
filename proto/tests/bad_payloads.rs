//! Untrusted bytes that must be refused, each with an error that says what was wrong.

mod common;

use bl_proto::command::{Command, CommandResult};
use bl_proto::config::EdgeConfig;
use bl_proto::decode::MAX_PAYLOAD_BYTES;
use bl_proto::event::{EdgeEvent, EpisodePhase};
use bl_proto::state::EdgeState;
use bl_proto::{DecodeError, Message, decode};
use common::*;
use serde_json::{Value, json};

/// Decodes `value` as `M` and returns the error's message, failing if it decoded.
fn refuse<M: Message + std::fmt::Debug>(value: &Value) -> (DecodeError, String) {
    let err = decode::<M>(value.to_string().as_bytes()).expect_err("hostile payload was accepted");
    let text = err.to_string();
    (err, text)
}

fn detection_json() -> Value {
    serde_json::to_value(EdgeEvent::Detection(detection(EpisodePhase::Start))).unwrap()
}

#[test]
fn bytes_that_are_not_json_are_rejected_as_not_json() {
    for bytes in [&b"hello"[..], b"", b"{\"v\":1,", b"\xff\xfe{}", b"{'v':1}"] {
        let err = decode::<EdgeState>(bytes).unwrap_err();
        assert!(matches!(err, DecodeError::NotJson { .. }), "{err:?}");
        assert!(err.to_string().starts_with("payload is not JSON"), "{err}");
    }
}

#[test]
fn json_that_is_not_an_object_is_rejected_naming_what_it_was() {
    for (bytes, what) in [
        (&b"[1,2]"[..], "array"),
        (b"\"edgeState\"", "string"),
        (b"1", "number"),
        (b"null", "null"),
    ] {
        let err = decode::<EdgeEvent>(bytes).unwrap_err();
        assert_eq!(err, DecodeError::NotAnObject { got: what });
        assert!(err.to_string().contains(&format!("a JSON {what}")), "{err}");
    }
}

#[test]
fn a_payload_without_a_version_is_rejected() {
    let mut v = serde_json::to_value(edge_state()).unwrap();
    v.as_object_mut().unwrap().remove("v");
    let (err, text) = refuse::<EdgeState>(&v);
    assert_eq!(err, DecodeError::MissingVersion);
    assert!(text.contains("no \"v\" field"), "{text}");
}

#[test]
fn a_newer_payload_version_is_rejected_with_an_upgrade_hint() {
    let mut v = serde_json::to_value(edge_state()).unwrap();
    v["v"] = json!(2);
    let (err, text) = refuse::<EdgeState>(&v);
    assert_eq!(
        err,
        DecodeError::UnsupportedVersion {
            got: 2,
            supported: 1
        }
    );
    assert_eq!(
        text,
        "payload version 2 is newer than this build understands (1); upgrade"
    );
}

#[test]
fn a_version_that_is_not_a_positive_integer_is_rejected() {
    for bad in [json!(0), json!("1"), json!(1.5), json!(-1), json!(null)] {
        let mut v = serde_json::to_value(result_ok()).unwrap();
        v["v"] = bad.clone();
        let (err, text) = refuse::<CommandResult>(&v);
        assert!(
            matches!(err, DecodeError::BadVersion { .. }),
            "{bad}: {err:?}"
        );
        assert!(text.contains("expected the number 1"), "{text}");
    }
}

#[test]
fn an_unknown_or_missing_type_is_rejected_listing_the_known_types() {
    let mut v = detection_json();
    v["type"] = json!("explosion");
    let (err, text) = refuse::<EdgeEvent>(&v);
    assert_eq!(
        err,
        DecodeError::UnknownType {
            got: Some("explosion".into()),
            expected: &["detection", "camera", "warning"]
        }
    );
    assert!(text.contains("\"explosion\""), "{text}");
    assert!(text.contains("detection, camera, warning"), "{text}");

    v.as_object_mut().unwrap().remove("type");
    let (_, text) = refuse::<EdgeEvent>(&v);
    assert!(text.contains("no \"type\" field"), "{text}");

    v["type"] = json!(7);
    let (_, text) = refuse::<EdgeEvent>(&v);
    assert!(text.contains("\"7\""), "{text}");
}

#[test]
fn a_warning_with_a_message_id_that_is_no_id_or_an_outcome_code_with_spaces_is_rejected() {
    let good = serde_json::to_value(EdgeEvent::Warning(warning_failed())).unwrap();
    let mut v = good.clone();
    v["message"] = json!("../../etc/passwd");
    let (_, text) = refuse::<EdgeEvent>(&v);
    assert!(text.contains("`message`"), "{text}");
    let mut v = good;
    v["outcome"]["code"] = json!("no speaker");
    let (_, text) = refuse::<EdgeEvent>(&v);
    assert!(text.contains("`outcome.code`"), "{text}");
}

#[test]
fn a_field_of_the_wrong_type_is_rejected_naming_its_path() {
    let mut v = detection_json();
    v["boxes"][0]["x"] = json!("left");
    let (err, text) = refuse::<EdgeEvent>(&v);
    assert!(
        matches!(err, DecodeError::Invalid { ref path, .. } if path == "boxes[0].x"),
        "{err:?}"
    );
    assert!(text.contains("`boxes[0].x`"), "{text}");
    assert!(text.contains("invalid detection payload"), "{text}");

    let mut v = serde_json::to_value(edge_state()).unwrap();
    v["cameras"][1]["bitrateKbps"] = json!(-5);
    let (_, text) = refuse::<EdgeState>(&v);
    assert!(text.contains("`cameras[1].bitrateKbps`"), "{text}");
}

#[test]
fn a_missing_field_is_rejected_naming_it() {
    let mut v = detection_json();
    v.as_object_mut().unwrap().remove("episodeId");
    let (_, text) = refuse::<EdgeEvent>(&v);
    assert!(text.contains("missing field `episodeId`"), "{text}");
}

#[test]
fn a_bad_edge_id_inside_a_payload_is_rejected_naming_the_field_and_the_rule() {
    let mut v = detection_json();
    v["edgeId"] = json!("../../etc");
    let (_, text) = refuse::<EdgeEvent>(&v);
    assert!(text.contains("`edgeId`"), "{text}");
    assert!(text.contains("invalid edge id \"../../etc\""), "{text}");

    let mut v = serde_json::to_value(edge_config()).unwrap();
    v["cameras"][0]["cameraId"] = json!("Cam 1");
    let (_, text) = refuse::<EdgeConfig>(&v);
    assert!(text.contains("`cameras[0].cameraId`"), "{text}");
    assert!(text.contains("invalid camera id"), "{text}");
}

#[test]
fn a_sha256_that_is_not_64_lowercase_hex_is_rejected() {
    for bad in [
        "abc",
        &CLIP_SHA.to_uppercase(),
        &format!("{}zz", &CLIP_SHA[2..]),
    ] {
        let mut v = detection_json();
        v["snapshot"]["sha256"] = json!(bad);
        let (_, text) = refuse::<EdgeEvent>(&v);
        assert!(text.contains("`snapshot.sha256`"), "{text}");
        assert!(text.contains("64 lowercase hex"), "{text}");
    }
}

#[test]
fn a_confidence_above_one_is_rejected() {
    let mut v = detection_json();
    v["confidence"] = json!(1.5);
    let (err, text) = refuse::<EdgeEvent>(&v);
    assert!(
        matches!(err, DecodeError::Invalid { ref path, .. } if path == "confidence"),
        "{err:?}"
    );
    assert!(text.contains("1.5 is outside 0..=1"), "{text}");

    let mut v = detection_json();
    v["boxes"][0]["confidence"] = json!(-0.1);
    let (_, text) = refuse::<EdgeEvent>(&v);
    assert!(
        text.contains("`boxes[0].confidence`: -0.1 is outside"),
        "{text}"
    );
}

#[test]
fn a_box_outside_the_frame_is_rejected() {
    let mut v = detection_json();
    v["boxes"][0]["y"] = json!(1.2);
    let (_, text) = refuse::<EdgeEvent>(&v);
    assert!(
        text.contains("`boxes[0].y`: 1.2 is outside 0..=1"),
        "{text}"
    );

    let mut v = detection_json();
    v["boxes"][0]["x"] = json!(0.95);
    v["boxes"][0]["w"] = json!(0.1);
    let (_, text) = refuse::<EdgeEvent>(&v);
    assert!(
        text.contains("`boxes[0].w`: x + w goes past the right edge"),
        "{text}"
    );
}

#[test]
fn a_clip_whose_range_runs_backwards_is_rejected() {
    let mut v = detection_json();
    v["clip"] = serde_json::to_value(clip_ref()).unwrap();
    v["clip"]["to"] = json!("2025-03-01T08:00:00.000Z");
    let (_, text) = refuse::<EdgeEvent>(&v);
    assert!(text.contains("`clip.to`: is before `from`"), "{text}");
}

#[test]
fn a_bad_timestamp_is_rejected_naming_the_field() {
    let mut v = serde_json::to_value(edge_state()).unwrap();
    v["at"] = json!("yesterday");
    let (_, text) = refuse::<EdgeState>(&v);
    assert!(text.contains("`at`"), "{text}");
    assert!(text.contains("not an RFC 3339 timestamp"), "{text}");
}

#[test]
fn errors_inside_a_command_action_name_the_field_despite_flatten() {
    let mut v = serde_json::to_value(&all_commands()[0]).unwrap(); // startLive
    v["stream"] = json!("ultra");
    let (err, text) = refuse::<Command>(&v);
    assert!(
        matches!(err, DecodeError::Invalid { ref path, ref ty, .. } if path == "stream" && ty == "startLive"),
        "{err:?}"
    );
    assert!(text.contains("unknown variant `ultra`"), "{text}");

    let mut v = serde_json::to_value(&all_commands()[5]).unwrap(); // recheck
    v.as_object_mut().unwrap().remove("forSecs");
    let (_, text) = refuse::<Command>(&v);
    assert!(text.contains("missing field `forSecs`"), "{text}");

    let mut v = serde_json::to_value(&all_commands()[5]).unwrap();
    v["cmdId"] = json!("not-a-uuid");
    let (_, text) = refuse::<Command>(&v);
    assert!(text.contains("`cmdId`"), "{text}");
}

#[test]
fn a_command_that_expires_before_it_was_issued_is_rejected() {
    let mut v = serde_json::to_value(&all_commands()[1]).unwrap();
    v["expiresAt"] = json!("2025-03-01T08:15:00.000Z");
    let (_, text) = refuse::<Command>(&v);
    assert!(
        text.contains("`expiresAt`: is not after `issuedAt`"),
        "{text}"
    );
}

#[test]
fn a_push_url_that_is_not_a_url_is_rejected() {
    let mut v = serde_json::to_value(&all_commands()[0]).unwrap();
    v["pushUrl"] = json!("gw-1 /live");
    let (_, text) = refuse::<Command>(&v);
    assert!(text.contains("`pushUrl`"), "{text}");
}

#[test]
fn a_command_result_error_code_must_be_a_stable_identifier() {
    let mut v = serde_json::to_value(result_error()).unwrap();
    v["outcome"]["code"] = json!("camera is offline!");
    let (_, text) = refuse::<CommandResult>(&v);
    assert!(text.contains("`outcome.code`"), "{text}");
}

#[test]
fn edge_config_rules_are_checked() {
    let cases: &[(&str, Value, &str)] = &[
        ("/timezone", json!("../../etc/passwd"), "`timezone`"),
        (
            "/cameras/0/preRollSecs",
            json!(121),
            "`cameras[0].preRollSecs`: 121 is more than 120",
        ),
        (
            "/cameras/0/rules/1/activeHours",
            json!({"from": "25:00", "to": "06:00"}),
            "\"25:00\" is not a time of day",
        ),
        (
            "/cameras/0/rules/1/activeHours",
            json!({"from": "06:00", "to": "06:00"}),
            "`from` equals `to`",
        ),
        (
            "/cameras/0/rules/0/zones/0",
            json!([{"x": 0.1, "y": 0.1}, {"x": 0.2, "y": 0.2}]),
            "`cameras[0].rules[0].zones[0]`: has 2 points",
        ),
        (
            "/cameras/0/rules/0/zones/0/2/x",
            json!(1.01),
            "`cameras[0].rules[0].zones[0][2].x`: 1.01 is outside 0..=1",
        ),
        (
            "/cameras/1/cameraId",
            json!("mtg-dyl-school-03-cam1"),
            "`cameras[1].cameraId`: mtg-dyl-school-03-cam1 is listed twice",
        ),
        (
            "/cameras/0/rules/0/kind",
            json!("cameraOffline"),
            "unknown variant `cameraOffline`",
        ),
        (
            "/exercises/0/run",
            json!("run\nforged log line"),
            "`exercises[0].run`: contains the control character",
        ),
        (
            "/exercises/0/run",
            json!(""),
            "`exercises[0].run`: must not be empty",
        ),
        (
            "/exercises/0/until",
            json!("tomorrow"),
            "is not an RFC 3339 timestamp",
        ),
    ];
    for (pointer, bad, why) in cases {
        let mut v = serde_json::to_value(edge_config()).unwrap();
        *v.pointer_mut(pointer).unwrap() = bad.clone();
        let (_, text) = refuse::<EdgeConfig>(&v);
        assert!(text.contains(why), "{pointer} = {bad}: {text}");
    }
}

#[test]
fn a_camera_staged_twice_in_one_edge_config_is_rejected() {
    let mut v = serde_json::to_value(edge_config()).unwrap();
    let first = v["exercises"][0].clone();
    v["exercises"].as_array_mut().unwrap().push(first);
    let (_, text) = refuse::<EdgeConfig>(&v);
    assert!(text.contains("`exercises[1].cameraId`"), "{text}");
    assert!(text.contains("staged twice"), "{text}");
}

#[test]
fn a_warning_set_with_a_bad_hash_an_unknown_message_or_a_doubled_rule_names_the_field() {
    let cases = [
        (
            "/warnings/messages/0/content/sha256",
            json!("ABC"),
            "64 lowercase hex",
        ),
        (
            "/warnings/messages/0/content/size",
            json!(0),
            "`warnings.messages[0].content.size`",
        ),
        (
            "/warnings/messages/1/content/text",
            json!(""),
            "`warnings.messages[1].content.text`",
        ),
        (
            "/warnings/messages/1/id",
            json!("wear-hat-zh"),
            "listed twice",
        ),
        (
            "/warnings/rules/0/message",
            json!("nope"),
            "`warnings.rules[0].message`",
        ),
        ("/warnings/rules/1/cameras", json!([]), "names no camera"),
        ("/warnings/rules/1/kind", json!("noChefHat"), "second rule"),
    ];
    for (pointer, bad, why) in cases {
        let mut v = serde_json::to_value(edge_config()).unwrap();
        *v.pointer_mut(pointer).unwrap() = bad.clone();
        let (_, text) = refuse::<EdgeConfig>(&v);
        assert!(text.contains(why), "{pointer} = {bad}: {text}");
    }
}

#[test]
fn edge_state_with_more_free_than_total_disk_is_rejected() {
    let mut v = serde_json::to_value(edge_state()).unwrap();
    v["disk"]["freeBytes"] = json!(300_000_000_000u64);
    let (_, text) = refuse::<EdgeState>(&v);
    assert!(text.contains("`disk.freeBytes`"), "{text}");
}

#[test]
fn an_oversized_payload_is_refused_before_parsing() {
    let big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
    let err = decode::<EdgeState>(&big).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { .. }), "{err:?}");
}

#[test]
fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(decode::<EdgeEvent>(deep.as_bytes()).is_err());
    let deep = format!(
        r#"{{"v":1,"type":"detection","boxes":{}{}}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    assert!(decode::<EdgeEvent>(deep.as_bytes()).is_err());
}

#[test]
fn a_huge_hostile_value_is_echoed_only_in_part() {
    let mut v = detection_json();
    v["type"] = json!("x".repeat(10_000));
    let (_, text) = refuse::<EdgeEvent>(&v);
    assert!(text.len() < 300, "{} bytes", text.len());
}
