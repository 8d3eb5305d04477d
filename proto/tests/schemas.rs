//! The checked-in JSON Schemas under docs/reference/schema are exactly what the code generates.

use std::path::PathBuf;

#[test]
fn every_checked_in_schema_matches_the_code() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(bl_proto::schema::SCHEMA_DIR);
    let mut stale = Vec::new();
    for (name, schema) in bl_proto::schema::all() {
        let rel = format!("{}/{name}.schema.json", bl_proto::schema::SCHEMA_DIR);
        let want = bl_proto::schema::render(&schema);
        match std::fs::read_to_string(dir.join(format!("{name}.schema.json"))) {
            Ok(have) if have == want => {}
            _ => stale.push(format!("{rel} is stale or missing: run `make schemas`")),
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}

#[test]
fn there_is_one_schema_per_message_and_every_message_schema_names_its_type_tag() {
    let all = bl_proto::schema::all();
    let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "edge-state",
            "edge-event",
            "command",
            "command-result",
            "edge-config",
            "media-claims",
            "evidence-meta"
        ]
    );
    // Each message schema spells out every "type" value the decoder accepts, and the version.
    fn tags<M: bl_proto::Message>(all: &[(&str, schemars::Schema)]) {
        let (_, schema) = all.iter().find(|(n, _)| *n == M::SCHEMA_NAME).unwrap();
        let text = serde_json::to_string(schema).unwrap();
        for t in M::TYPES {
            assert!(
                text.contains(&format!(r#""const":"{t}""#)),
                "{} does not name type {t}",
                M::SCHEMA_NAME
            );
        }
        assert!(text.contains(r#""const":1"#), "{} has no v", M::SCHEMA_NAME);
    }
    tags::<bl_proto::state::EdgeState>(&all);
    tags::<bl_proto::event::EdgeEvent>(&all);
    tags::<bl_proto::command::Command>(&all);
    tags::<bl_proto::command::CommandResult>(&all);
    tags::<bl_proto::config::EdgeConfig>(&all);
}
