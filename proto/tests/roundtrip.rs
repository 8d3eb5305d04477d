//! Every message and variant survives encode → decode unchanged, through `decode` and through plain serde.

mod common;

use bl_proto::command::{Command, CommandResult};
use bl_proto::config::EdgeConfig;
use bl_proto::event::EdgeEvent;
use bl_proto::state::EdgeState;
use bl_proto::{Message, decode, encode};
use common::*;

fn round_trip<M: Message + PartialEq + std::fmt::Debug>(msg: &M) {
    let bytes = encode(msg);
    let back: M = decode(&bytes)
        .unwrap_or_else(|e| panic!("{e}\npayload: {}", String::from_utf8_lossy(&bytes)));
    assert_eq!(&back, msg, "decode(encode(x)) differs");
    // Plain serde (what a receiver embedding the type elsewhere uses) must agree with `decode`.
    let via_serde: M = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(&via_serde, msg, "serde_json::from_slice(encode(x)) differs");
    assert_eq!(encode(&back), bytes, "re-encoding is not byte-identical");
}

#[test]
fn an_edge_state_round_trips() {
    round_trip(&edge_state());
}

#[test]
fn the_last_will_round_trips_and_says_offline_with_no_cameras() {
    let will = EdgeState::offline(edge(), t("2025-03-01T06:00:00.000Z"));
    round_trip(&will);
    assert!(!will.online);
    assert!(will.cameras.is_empty());
}

#[test]
fn every_detection_phase_every_violation_kind_and_every_camera_event_round_trips() {
    let events = all_events();
    assert!(events.len() >= 18);
    for e in &events {
        round_trip(e);
    }
}

#[test]
fn every_command_action_round_trips() {
    let cmds = all_commands();
    let types: Vec<&str> = cmds.iter().map(|c| c.action.type_name()).collect();
    assert_eq!(types, Command::TYPES, "fixtures must cover every action");
    for c in &cmds {
        round_trip(c);
    }
}

#[test]
fn ok_and_error_command_results_round_trip() {
    round_trip(&result_ok());
    round_trip(&result_error());
    let mut with_detail = result_ok();
    with_detail.outcome = bl_proto::command::Outcome::Ok {
        detail: Some(SNAPSHOT_SHA.into()),
    };
    round_trip(&with_detail);
}

#[test]
fn an_edge_config_round_trips() {
    round_trip(&edge_config());
}

#[test]
fn an_edge_config_without_timezone_gets_the_district_default() {
    let mut v = serde_json::to_value(edge_config()).unwrap();
    v.as_object_mut().unwrap().remove("timezone");
    let cfg: EdgeConfig = decode(v.to_string().as_bytes()).unwrap();
    assert_eq!(cfg.timezone, "Asia/Shanghai");
}

#[test]
fn an_edge_config_without_exercises_stages_none() {
    let mut v = serde_json::to_value(edge_config()).unwrap();
    v.as_object_mut().unwrap().remove("exercises");
    let cfg: EdgeConfig = decode(v.to_string().as_bytes()).unwrap();
    assert!(cfg.exercises.is_empty());
}

#[test]
fn an_edge_config_from_an_older_center_has_no_warnings() {
    let mut v = serde_json::to_value(edge_config()).unwrap();
    v.as_object_mut().unwrap().remove("warnings");
    let cfg: EdgeConfig = decode(v.to_string().as_bytes()).unwrap();
    assert!(cfg.warnings.is_empty());
}

#[test]
fn a_message_decoded_by_the_wrong_receiver_names_the_types_it_expected() {
    let bytes = encode(&edge_state());
    let err = decode::<CommandResult>(&bytes).unwrap_err().to_string();
    assert!(err.contains("\"edgeState\""), "{err}");
    assert!(err.contains("commandResult"), "{err}");
    let err = decode::<EdgeEvent>(&encode(&edge_config()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("detection, camera, warning"), "{err}");
}

#[test]
fn timestamps_from_other_offsets_are_read_as_utc() {
    let mut v = serde_json::to_value(edge_state()).unwrap();
    v["at"] = "2025-03-01T16:15:30.123+08:00".into();
    let s: EdgeState = decode(v.to_string().as_bytes()).unwrap();
    assert_eq!(s.at, t("2025-03-01T08:15:30.123Z"));
}

#[test]
fn unknown_fields_from_a_newer_v1_writer_are_ignored() {
    let mut v = serde_json::to_value(result_ok()).unwrap();
    v["addedLater"] = serde_json::json!({"x": 1});
    let r: CommandResult = decode(v.to_string().as_bytes()).unwrap();
    assert_eq!(r, result_ok());
}

#[test]
fn every_fuzz_seed_in_the_corpus_is_a_valid_message() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let ok = decode::<EdgeState>(&bytes).is_ok()
            || decode::<EdgeEvent>(&bytes).is_ok()
            || decode::<Command>(&bytes).is_ok()
            || decode::<CommandResult>(&bytes).is_ok()
            || decode::<EdgeConfig>(&bytes).is_ok();
        assert!(ok, "{} is not a valid message", path.display());
        seen += 1;
    }
    assert!(seen >= 5, "the seed corpus is nearly empty");
}

#[test]
fn an_event_tells_its_edge_camera_id_and_exercise_whatever_its_variant() {
    for e in all_events() {
        assert_eq!(e.edge_id(), &edge());
        assert!(e.camera_id().as_str().starts_with("mtg-dyl-school-03-cam"));
        assert!(!e.event_id().is_nil());
    }
    let drill = all_events()
        .into_iter()
        .filter(|e| e.exercise().is_some())
        .count();
    assert_eq!(drill, bl_proto::event::ViolationKind::ALL.len());
}
