//! Rooms on their incident's timeline (issue 7 item 7, "listed on the incident"): opening,
//! closing, who joined (once per person and room: a join is also asked again to refresh a token)
//! and what was shared. Entries carry a note code ([`crate::incident::note`]) so the console says
//! them in the reader's language, the English beside it, and the room's id in `refs`.

use crate::incident::note::Note;
use crate::incident::store::{self, Entry};
use crate::incident::{Actor, IncidentId};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;

/// What happened in a room, for its incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent<'a> {
    Opened,
    Closed,
    /// `who`: a user's display name, or a guest's name as invited.
    Joined {
        who: &'a str,
        guest: bool,
    },
    /// A live camera shared into the room, or `None`: sharing stopped.
    CameraShared(Option<&'a str>),
    /// An evidence clip played into the room (its evidence id), or `None`: stopped.
    ClipShared(Option<&'a str>),
}

/// The room as the timeline names it.
#[derive(Debug, Clone, Copy)]
pub struct RoomRef<'a> {
    pub id: &'a str,
    /// `consult` or `voice`.
    pub kind: &'a str,
    pub title: &'a str,
}

/// The entry's action, coded note, English note and references (plain logic).
pub fn entry_of(room: RoomRef<'_>, event: &RoomEvent<'_>) -> (&'static str, Note, String) {
    let voice = room.kind == "voice";
    let action = if voice { "voice" } else { "room" };
    let title = room.title;
    let (code, params, english) = match *event {
        RoomEvent::Opened if voice => (
            "voiceOpened",
            json!({}),
            "the incident's voice channel was opened".to_owned(),
        ),
        RoomEvent::Opened => (
            "roomOpened",
            json!({"title": title}),
            format!("consult room \"{title}\" opened"),
        ),
        RoomEvent::Closed => (
            "roomClosed",
            json!({"title": title}),
            format!("consult room \"{title}\" closed"),
        ),
        RoomEvent::Joined { who, guest: true } => (
            "roomGuestJoined",
            json!({"title": title, "who": who}),
            format!("invited guest {who} joined consult room \"{title}\""),
        ),
        RoomEvent::Joined { who, .. } if voice => (
            "voiceJoined",
            json!({"who": who}),
            format!("{who} joined the voice channel"),
        ),
        RoomEvent::Joined { who, .. } => (
            "roomJoined",
            json!({"title": title, "who": who}),
            format!("{who} joined consult room \"{title}\""),
        ),
        RoomEvent::CameraShared(Some(camera)) => (
            "roomCameraShared",
            json!({"title": title, "camera": camera}),
            format!("camera {camera} shared into consult room \"{title}\""),
        ),
        RoomEvent::CameraShared(None) => (
            "roomCameraStopped",
            json!({"title": title}),
            format!("camera sharing in consult room \"{title}\" stopped"),
        ),
        RoomEvent::ClipShared(Some(clip)) => (
            "roomClipShared",
            json!({"title": title, "clip": clip}),
            format!("evidence clip {clip} played in consult room \"{title}\""),
        ),
        RoomEvent::ClipShared(None) => (
            "roomClipStopped",
            json!({"title": title}),
            format!("evidence clip in consult room \"{title}\" stopped"),
        ),
    };
    (action, Note::new(code, params), english)
}

/// Writes `event` on the room's incident timeline. A join is written only the first time `who`
/// joins this room.
pub async fn write(
    conn: &mut PgConnection,
    incident: IncidentId,
    room: RoomRef<'_>,
    actor: &Actor,
    event: RoomEvent<'_>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if let RoomEvent::Joined { who, .. } = event {
        let seen: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM incident_timeline WHERE incident_id = $1 \
               AND note_code IN ('roomJoined', 'roomGuestJoined', 'voiceJoined') \
               AND refs->>'room' = $2 AND note_params->>'who' = $3)",
        )
        .bind(incident)
        .bind(room.id)
        .bind(who)
        .fetch_one(&mut *conn)
        .await?;
        if seen {
            return Ok(());
        }
    }
    let (action, note, english) = entry_of(room, &event);
    let mut entry = Entry::note(at, actor, action, english).with(note);
    entry.refs = json!({"room": room.id});
    store::append(conn, incident, &entry).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_room_event_has_its_code_and_the_voice_channel_its_own_words() {
        let consult = RoomRef {
            id: "room-1",
            kind: "consult",
            title: "专家会商",
        };
        let voice = RoomRef {
            id: "voice-1",
            kind: "voice",
            title: "对讲",
        };
        let (action, note, english) = entry_of(
            consult,
            &RoomEvent::Joined {
                who: "王专家",
                guest: true,
            },
        );
        assert_eq!((action, note.code), ("room", "roomGuestJoined"));
        assert_eq!(note.params, json!({"title": "专家会商", "who": "王专家"}));
        assert!(english.contains("王专家"), "{english}");
        let (action, note, _) = entry_of(
            voice,
            &RoomEvent::Joined {
                who: "李四",
                guest: false,
            },
        );
        assert_eq!((action, note.code), ("voice", "voiceJoined"));
        assert_eq!(entry_of(voice, &RoomEvent::Opened).1.code, "voiceOpened");
        assert_eq!(
            entry_of(consult, &RoomEvent::CameraShared(None)).1.code,
            "roomCameraStopped"
        );
        assert_eq!(
            entry_of(consult, &RoomEvent::ClipShared(Some("ev-1")))
                .1
                .params["clip"],
            "ev-1"
        );
    }
}
