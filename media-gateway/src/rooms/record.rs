//! Push-to-talk transmissions recorded as evidence (issue 7 item 6): **each transmission in a
//! voice channel — from the floor's start to its end (released, taken over, expired, the talker
//! left) — is one [`crate::voicerec`] recording of kind `ptt`**: the talker's audio as the
//! gateway forwarded it (left channel; the right stays silent), named in the store by the room's
//! id, with the talker (the room token's `sub`) and the times. dispatch links it to the room's
//! incident. A channel is half-duplex: each direction of a conversation is its own transmission
//! by its own talker, so "both directions" are two (or more) recordings.
//!
//! A transmission shorter than [`MIN_TRANSMISSION`] (a tap of the button) is not kept.

use std::collections::HashMap;
use std::sync::Arc;

use bl_proto::CameraId;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Rooms;
use super::floor::{Change, FloorChange};
use crate::live::talk::rtp_packet;
use crate::voicerec::{Voice, VoiceKind, VoiceMeta, VoiceRecordings};

/// Transmissions shorter than this are not kept: nothing was said.
pub const MIN_TRANSMISSION: chrono::TimeDelta = chrono::TimeDelta::milliseconds(300);

/// One transmission being recorded.
struct Running {
    voice: Arc<Voice>,
    started_at: DateTime<Utc>,
    stop: CancellationToken,
    feeding: JoinHandle<()>,
}

/// Records every transmission in `rooms`' voice channels until the floor changes end (the
/// gateway stops). Runs as one task per gateway.
pub async fn record_transmissions(rooms: Arc<Rooms>, recordings: Arc<VoiceRecordings>) {
    let mut changes = rooms.floor_changes();
    let mut running: HashMap<(String, i64), Running> = HashMap::new();
    loop {
        let change = match changes.recv().await {
            Ok(c) => c,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "push-to-talk recorder fell behind the floor changes"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let key = (change.room.clone(), change.floor_session);
        match change.change {
            Change::Started => {
                if let Some(r) = start(&rooms, &recordings, &change) {
                    // A holding starts once; a stale entry of the same key would be a bug.
                    if let Some(old) = running.insert(key, r) {
                        tokio::spawn(end(old, change.at));
                    }
                }
            }
            Change::Ended(_) => {
                if let Some(r) = running.remove(&key) {
                    tokio::spawn(end(r, change.at));
                }
            }
        }
    }
}

/// Starts recording the transmission `change` announces: the talker's feed from now on.
fn start(
    rooms: &Rooms,
    recordings: &Arc<VoiceRecordings>,
    change: &FloorChange,
) -> Option<Running> {
    let room = match CameraId::new(change.room.clone()) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(room = %change.room, err = %e, "a room id cannot name a recording; not recorded");
            return None;
        }
    };
    let feed = rooms.feed(&change.room, &change.participant)?;
    let voice = recordings.start(VoiceMeta {
        kind: VoiceKind::Ptt,
        talker: change.sub.clone(),
        cameras: vec![room],
        broadcast: None,
        premises: false,
    })?;
    let stop = CancellationToken::new();
    let mut packets = feed.audio.subscribe();
    let (v, s) = (voice.clone(), stop.clone());
    let feeding = tokio::spawn(async move {
        loop {
            let p = tokio::select! {
                () = s.cancelled() => return,
                p = packets.recv() => p,
            };
            match p {
                Ok(p) => v.push_center(&rtp_packet(
                    0,
                    p.header.sequence_number,
                    p.header.timestamp,
                    p.header.marker,
                    &p.payload,
                )),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Some(Running {
        voice,
        started_at: change.at,
        stop,
        feeding,
    })
}

/// Ends a transmission's recording: kept and reported, or dropped when too short.
async fn end(r: Running, at: DateTime<Utc>) {
    r.stop.cancel();
    let _ = r.feeding.await;
    if at - r.started_at < MIN_TRANSMISSION {
        tracing::info!(
            ms = (at - r.started_at).num_milliseconds(),
            "push-to-talk transmission too short to keep"
        );
        r.voice.discard().await;
    } else {
        r.voice.finish().await;
    }
}

/// How often a room's recording looks for participants who joined or left.
const ROOM_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// A consult room being recorded (issue 7 item 7, "recorded on request"): **every participant's
/// voice, each decoded on its own and summed into one channel** (the left; the right is silent),
/// one `room` recording from [`RoomRecording::start`] to [`RoomRecording::stop`] or until nobody
/// is left in the room. Audio only: the room's video is not recorded.
pub struct RoomRecording {
    stop: CancellationToken,
    done: JoinHandle<()>,
}

impl RoomRecording {
    /// Starts recording `room` for `by` (the requester's `sub`); `None` (logged) when this
    /// gateway does not record or the room id cannot name a recording.
    pub fn start(
        rooms: Arc<Rooms>,
        recordings: &Arc<VoiceRecordings>,
        room: &str,
        by: &str,
    ) -> Option<Self> {
        let id = CameraId::new(room.to_owned())
            .inspect_err(|e| tracing::warn!(room, err = %e, "a room id cannot name a recording"))
            .ok()?;
        let voice = recordings.start(VoiceMeta {
            kind: VoiceKind::Room,
            talker: by.to_owned(),
            cameras: vec![id],
            broadcast: None,
            premises: false,
        })?;
        let stop = CancellationToken::new();
        let done = tokio::spawn(mix_room(rooms, room.to_owned(), voice, stop.clone()));
        Some(Self { stop, done })
    }

    /// Whether it ended by itself (the room emptied).
    pub fn is_finished(&self) -> bool {
        self.done.is_finished()
    }

    /// Stops; returns once the recording is stored and its report queued.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.done.await;
    }
}

/// Feeds each participant's audio into `voice` as its own voice until `stop` or the room empties,
/// then keeps the recording.
async fn mix_room(rooms: Arc<Rooms>, room: String, voice: Arc<Voice>, stop: CancellationToken) {
    let mut inputs: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut next_source = 0u64;
    let mut tick = tokio::time::interval(ROOM_POLL);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let present = rooms.participants(&room);
        if present.is_empty() {
            tracing::info!(room, "the room emptied: its recording ends");
            break;
        }
        inputs.retain(|id, task| {
            let here = present.iter().any(|p| &p.id == id);
            if !here {
                task.abort();
            }
            here
        });
        for p in present.iter().filter(|p| p.audio) {
            if inputs.contains_key(&p.id) {
                continue;
            }
            let (Some(feed), Some(input)) =
                (rooms.feed(&room, &p.id), voice.mixed_input(next_source))
            else {
                continue;
            };
            next_source += 1;
            let mut packets = feed.audio.subscribe();
            let task = tokio::spawn(async move {
                loop {
                    match packets.recv().await {
                        Ok(p) => input.push_rtp(&rtp_packet(
                            0,
                            p.header.sequence_number,
                            p.header.timestamp,
                            p.header.marker,
                            &p.payload,
                        )),
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
            inputs.insert(p.id.clone(), task);
        }
    }
    for task in inputs.into_values() {
        task.abort();
    }
    voice.finish().await;
}
