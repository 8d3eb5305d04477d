//! The edge's automatic voice warning ([`WarningEvent`]) on the timeline of its episode's incident:
//! `voiceWarning` when the message played, `voiceWarningFailed` with the edge's code when it could
//! not (no speaker, an operator talking, a failed backchannel). The entry holds codes and ids only
//! (`refs`); the console words it in the reader's language.
//!
//! The edge sends the outcome after the episode's start, so the episode normally has its incident
//! already; a warning that overtakes its start anyway is stored and written on the timeline when
//! the start arrives ([`catch_up`]).

use super::incident::{self, Outcome};
use crate::incident::Actor;
use crate::incident::store::{self, Entry};
use bl_proto::command::Outcome as Played;
use bl_proto::event::WarningEvent;
use sqlx::PgConnection;
use uuid::Uuid;

/// The timeline action and references of a warning's outcome (plain logic).
pub fn entry_of(w: &WarningEvent) -> (&'static str, serde_json::Value) {
    let mut refs = serde_json::json!({
        "eventId": w.event_id,
        "cameraId": w.camera_id,
        "message": w.message,
        "output": w.output,
    });
    match &w.outcome {
        Played::Ok { .. } => ("voiceWarning", refs),
        Played::Error { code, message } => {
            refs["code"] = code.as_str().into();
            refs["reason"] = message.as_str().into();
            ("voiceWarningFailed", refs)
        }
    }
}

/// Writes a newly stored warning on its episode's incident, if the episode has one yet.
pub async fn to_incident(
    conn: &mut PgConnection,
    w: &WarningEvent,
) -> Result<Option<Outcome>, sqlx::Error> {
    let found: Option<Uuid> =
        sqlx::query_scalar("SELECT incident_id FROM incident_episodes WHERE episode_id = $1")
            .bind(w.episode_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(incident) = found else {
        tracing::info!(event = %w.event_id, episode = %w.episode_id, "voice warning before its episode's incident; written when the start arrives");
        return Ok(None);
    };
    write(conn, incident, w).await?;
    Ok(Some(Outcome::Attached(incident)))
}

/// Writes the warnings of `episode` that arrived before its start on `incident`.
pub async fn catch_up(
    conn: &mut PgConnection,
    episode: Uuid,
    incident: Uuid,
) -> Result<(), sqlx::Error> {
    let early: Vec<sqlx::types::Json<bl_proto::event::EdgeEvent>> = sqlx::query_scalar(
        "SELECT e.payload FROM edge_events e \
          WHERE e.episode_id = $1 AND e.type = 'warning' \
            AND NOT EXISTS (SELECT 1 FROM incident_events ie WHERE ie.event_id = e.event_id) \
          ORDER BY e.at",
    )
    .bind(episode)
    .fetch_all(&mut *conn)
    .await?;
    for event in early {
        if let bl_proto::event::EdgeEvent::Warning(w) = event.0 {
            write(conn, incident, &w).await?;
        }
    }
    Ok(())
}

async fn write(
    conn: &mut PgConnection,
    incident: Uuid,
    w: &WarningEvent,
) -> Result<(), sqlx::Error> {
    incident::link_event(conn, incident, w.event_id).await?;
    let actor = Actor::Edge(w.edge_id.to_string());
    let (action, refs) = entry_of(w);
    let mut entry = Entry::note(w.at, &actor, action, String::new());
    entry.refs = refs;
    store::append(conn, incident, &entry).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bl_proto::command::{TalkOutput, codes};

    fn warning(outcome: Played) -> WarningEvent {
        WarningEvent {
            v: bl_proto::V1,
            event_id: Uuid::now_v7(),
            episode_id: Uuid::now_v7(),
            edge_id: bl_proto::EdgeId::new("edge-a").unwrap(),
            camera_id: bl_proto::CameraId::new("edge-a-cam1").unwrap(),
            kind: bl_proto::event::ViolationKind::NoChefHat,
            at: chrono::Utc::now(),
            message: "wear-hat-zh".into(),
            output: Some(TalkOutput::Backchannel),
            outcome,
            exercise: None,
        }
    }

    #[test]
    fn a_played_warning_is_a_voice_warning_entry_naming_message_camera_and_output() {
        let (action, refs) = entry_of(&warning(Played::Ok { detail: None }));
        assert_eq!(action, "voiceWarning");
        assert_eq!(refs["message"], "wear-hat-zh");
        assert_eq!(refs["cameraId"], "edge-a-cam1");
        assert_eq!(refs["output"], "backchannel");
        assert!(refs.get("code").is_none());
    }

    #[test]
    fn a_failed_warning_keeps_the_edges_code_for_the_console_to_word() {
        let (action, refs) = entry_of(&warning(Played::Error {
            code: codes::UNSUPPORTED.into(),
            message: "camera has no speaker".into(),
        }));
        assert_eq!(action, "voiceWarningFailed");
        assert_eq!(refs["code"], "unsupported");
        assert_eq!(refs["reason"], "camera has no speaker");
    }
}
