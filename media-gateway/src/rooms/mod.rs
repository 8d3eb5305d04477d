//! Consult rooms (网上会商) and incident voice channels: a selective forwarding unit. **Each
//! participant sends once (WHIP to `/rooms/{room}/whip`) and receives each other participant on
//! its own connection (WHEP to `/rooms/{room}/whep/{participant}`); packets are forwarded as they
//! came, never decoded, and a room holds at most [`MAX_PARTICIPANTS`] senders.**
//!
//! Why one connection per direction and per participant rather than one renegotiated connection
//! per participant: webrtc-rs answers offers well but renegotiating from the server side (a new
//! participant adds tracks to everybody's connection) needs glare handling and a signalling
//! channel from the gateway to the browser; with plain WHIP/WHEP requests the browser drives every
//! change, each connection is as simple as the live view's, and a failure affects one stream only.
//! The cost is more connections (n·(n−1) subscriptions, 240 at 16 participants), each cheap.
//!
//! This file is the room bookkeeping, plain data behind a mutex; [`peer`] owns the WebRTC side,
//! [`http`] the requests, [`floor`] the push-to-talk rule of voice channels and [`record`] the
//! recording of each push-to-talk transmission.

pub mod clip;
pub mod floor;
pub mod http;
pub mod peer;
pub mod record;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::live::peer::PeerSettings;
use clip::ClipPlayer;
use floor::{AudioGate, Change, Decision, EndReason, FloorChange, FloorError, Grant, Holding};
use peer::{PublishPeer, SubscribePeer};
use record::RoomRecording;

/// The most participants sending into one room (a 17th is refused with `room_full`).
pub const MAX_PARTICIPANTS: usize = 16;

/// What one participant sends, fanned out to its subscribers. Bounded: a slow subscriber skips.
pub struct Feed {
    pub audio: broadcast::Sender<rtc::rtp::Packet>,
    pub video: broadcast::Sender<rtc::rtp::Packet>,
    /// Keyframe requests for the sender's video (a new or recovering subscriber).
    pub keyframe: mpsc::Sender<()>,
    /// What the sender's audio passes before it reaches [`Feed::audio`] (push-to-talk).
    pub audio_gate: AudioGate,
    /// The video is H.264 (an evidence clip), not the participants' VP8.
    pub video_h264: bool,
}

impl Feed {
    fn new(push_to_talk: bool, video_h264: bool) -> (Arc<Feed>, mpsc::Receiver<()>) {
        let (keyframe, requests) = mpsc::channel(4);
        // About 5 s of 20 ms audio frames; about 1 s of video at 1.5 Mbit/s.
        let feed = Feed {
            audio: broadcast::channel(256).0,
            video: broadcast::channel(512).0,
            keyframe,
            audio_gate: AudioGate::new(push_to_talk),
            video_h264,
        };
        (Arc::new(feed), requests)
    }
}

/// A participant as listed to the room.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantView {
    /// The participant's id (its WHIP session and the path to subscribe to it).
    pub id: String,
    /// Who joined: the media token's subject (dispatch writes `user:{username}` or
    /// `guest:{name}`).
    pub sub: String,
    pub audio: bool,
    pub video: bool,
    pub joined_at: DateTime<Utc>,
}

struct Participant {
    view: ParticipantView,
    feed: Arc<Feed>,
    peer: Option<Arc<PublishPeer>>,
}

#[derive(Default)]
struct Room {
    participants: BTreeMap<String, Participant>,
    subscriptions: HashMap<String, Arc<SubscribePeer>>,
    /// Push-to-talk rooms: who talks now, and the newest holding ever granted here.
    floor: Option<Holding>,
    newest_floor: i64,
    /// The evidence clip playing into the room (also one of `participants`).
    clip: Option<ClipPlayer>,
}

impl Room {
    fn is_empty(&self) -> bool {
        self.participants.is_empty() && self.subscriptions.is_empty()
    }
}

/// Why a participant cannot join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("room {room} has its maximum of {MAX_PARTICIPANTS} participants")]
    Full { room: String },
}

/// Why a clip does not play.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("{0}")]
    Full(JoinError),
    #[error("the clip cannot be played: {0}")]
    Player(String),
}

/// Every room on this gateway node. A room exists while someone is in it.
pub struct Rooms {
    pub settings: PeerSettings,
    rooms: Mutex<HashMap<String, Room>>,
    floor_changes: broadcast::Sender<FloorChange>,
    /// Consult rooms being recorded on request, by room id.
    recordings: Mutex<HashMap<String, RoomRecording>>,
}

impl Rooms {
    pub fn new(settings: PeerSettings) -> Self {
        Self {
            settings,
            rooms: Mutex::new(HashMap::new()),
            floor_changes: broadcast::channel(256).0,
            recordings: Mutex::new(HashMap::new()),
        }
    }

    /// Starts recording `room`'s voices for `by`; false if it records already. A recording ends
    /// on [`Rooms::stop_recording`] or when the room empties.
    pub fn start_recording(
        self: &Arc<Self>,
        recordings: &Arc<crate::voicerec::VoiceRecordings>,
        room: &str,
        by: &str,
    ) -> Result<bool, String> {
        let mut running = self.recordings.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|_, r| !r.is_finished());
        if running.contains_key(room) {
            return Ok(false);
        }
        let r = RoomRecording::start(self.clone(), recordings, room, by)
            .ok_or("the recording could not start (see the gateway's log)")?;
        running.insert(room.to_owned(), r);
        Ok(true)
    }

    /// The recording of `room`, taken out to be stopped ([`RoomRecording::stop`]); `None` if it
    /// does not record (any more).
    pub fn stop_recording(&self, room: &str) -> Option<RoomRecording> {
        let mut running = self.recordings.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|_, r| !r.is_finished());
        running.remove(room)
    }

    /// Whether `room` is being recorded.
    pub fn is_recording(&self, room: &str) -> bool {
        self.recordings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(room)
            .is_some_and(|r| !r.is_finished())
    }

    /// Every start and end of a transmission in a push-to-talk room, in order (a recorder of
    /// talk audio subscribes here, then to the talker's feed). Bounded: a slow reader skips.
    pub fn floor_changes(&self) -> broadcast::Receiver<FloorChange> {
        self.floor_changes.subscribe()
    }

    fn announce(&self, room: &str, h: &Holding, change: Change) {
        let _ = self.floor_changes.send(FloorChange {
            room: room.to_owned(),
            participant: h.participant.clone(),
            sub: h.sub.clone(),
            floor_session: h.floor_session,
            change,
            at: Utc::now(),
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds a place in `room` for a new participant (before its connection is set up, so that
    /// two joining at once cannot both be the 16th); returns its id, feed and keyframe requests.
    pub fn reserve(
        &self,
        room: &str,
        sub: &str,
        kinds: (bool, bool),
        now: DateTime<Utc>,
    ) -> Result<(String, Arc<Feed>, mpsc::Receiver<()>), JoinError> {
        self.reserve_feed(room, sub, kinds, now, false)
    }

    fn reserve_feed(
        &self,
        room: &str,
        sub: &str,
        (audio, video): (bool, bool),
        now: DateTime<Utc>,
        video_h264: bool,
    ) -> Result<(String, Arc<Feed>, mpsc::Receiver<()>), JoinError> {
        let mut rooms = self.lock();
        let r = rooms.entry(room.to_owned()).or_default();
        if r.participants.len() >= MAX_PARTICIPANTS {
            return Err(JoinError::Full {
                room: room.to_owned(),
            });
        }
        let id = format!("{:016x}", rand::random::<u64>());
        let (feed, requests) = Feed::new(floor::is_push_to_talk(room), video_h264);
        let view = ParticipantView {
            id: id.clone(),
            sub: sub.to_owned(),
            audio,
            video,
            joined_at: now,
        };
        r.participants.insert(
            id.clone(),
            Participant {
                view,
                feed: feed.clone(),
                peer: None,
            },
        );
        Ok((id, feed, requests))
    }

    /// Attaches the connection of a reserved participant; false if it left meanwhile.
    pub fn attach(&self, room: &str, id: &str, peer: Arc<PublishPeer>) -> bool {
        let mut rooms = self.lock();
        match rooms.get_mut(room).and_then(|r| r.participants.get_mut(id)) {
            Some(p) => {
                p.peer = Some(peer);
                true
            }
            None => false,
        }
    }

    /// Removes a participant (its subscribers' forwarding ends with its feed); false if unknown.
    pub fn leave(&self, room: &str, id: &str) -> bool {
        let removed = {
            let mut rooms = self.lock();
            let Some(r) = rooms.get_mut(room) else {
                return false;
            };
            let removed = r.participants.remove(id);
            let clip = r.clip.take_if(|c| c.participant == id);
            if let Some(h) = r.floor.take_if(|h| h.participant == id) {
                self.announce(room, &h, Change::Ended(EndReason::Left));
            }
            if r.is_empty() {
                rooms.remove(room);
            }
            (removed, clip)
        };
        // Stopping a pipeline waits for its threads: not under the lock.
        let (removed, clip) = removed;
        drop(clip);
        let Some(p) = removed else {
            return false;
        };
        if let Some(peer) = p.peer {
            tokio::spawn(async move { peer.close().await });
        }
        true
    }

    /// The feed of a participant, to subscribe to.
    pub fn feed(&self, room: &str, id: &str) -> Option<Arc<Feed>> {
        self.lock()
            .get(room)
            .and_then(|r| r.participants.get(id))
            .map(|p| p.feed.clone())
    }

    /// Records a subscription; returns its session id.
    pub fn add_subscription(&self, room: &str, peer: Arc<SubscribePeer>) -> String {
        let id = format!("{:016x}", rand::random::<u64>());
        self.lock()
            .entry(room.to_owned())
            .or_default()
            .subscriptions
            .insert(id.clone(), peer);
        id
    }

    /// Ends a subscription; false if unknown.
    pub fn end_subscription(&self, room: &str, session: &str) -> bool {
        let removed = {
            let mut rooms = self.lock();
            let Some(r) = rooms.get_mut(room) else {
                return false;
            };
            let removed = r.subscriptions.remove(session);
            if r.is_empty() {
                rooms.remove(room);
            }
            removed
        };
        match removed {
            Some(peer) => {
                tokio::spawn(async move { peer.close().await });
                true
            }
            None => false,
        }
    }

    /// The participants of `room`, oldest first (empty for a room nobody is in).
    pub fn participants(&self, room: &str) -> Vec<ParticipantView> {
        let mut list: Vec<_> = self
            .lock()
            .get(room)
            .map(|r| r.participants.values().map(|p| p.view.clone()).collect())
            .unwrap_or_default();
        list.sort_by(|a, b| a.joined_at.cmp(&b.joined_at).then(a.id.cmp(&b.id)));
        list
    }

    /// Opens `participant`'s audio under a floor grant (already verified for this room and node);
    /// ends the transmission it supersedes at once. Returns true for a new transmission, false
    /// for a renewal.
    pub fn grant_floor(
        &self,
        room: &str,
        participant: &str,
        grant: &Grant,
    ) -> Result<bool, FloorError> {
        if !floor::is_push_to_talk(room) {
            return Err(FloorError::NotPushToTalk {
                room: room.to_owned(),
            });
        }
        let mut rooms = self.lock();
        let r = rooms.get_mut(room).ok_or(FloorError::UnknownParticipant)?;
        let sub = r
            .participants
            .get(participant)
            .map(|p| p.view.sub.clone())
            .ok_or(FloorError::UnknownParticipant)?;
        if sub != grant.sub {
            return Err(FloorError::NotYours {
                grant: grant.sub.clone(),
                participant: sub,
            });
        }
        let holding = Holding {
            participant: participant.to_owned(),
            sub,
            floor_session: grant.floor_session,
            exp: grant.exp,
        };
        let started = match floor::decide(r.floor.as_ref(), r.newest_floor, participant, grant) {
            Decision::Refuse { current } => {
                return Err(FloorError::Superseded {
                    grant: grant.floor_session,
                    current,
                });
            }
            Decision::Renew => false,
            Decision::Start { ends } => {
                if let Some(old) = ends {
                    if let Some(p) = r.participants.get(&old.participant) {
                        p.feed.audio_gate.close();
                    }
                    self.announce(room, &old, Change::Ended(EndReason::Superseded));
                }
                true
            }
        };
        if let Some(p) = r.participants.get(participant) {
            p.feed.audio_gate.open_until(grant.exp.saturating_mul(1000));
        }
        r.newest_floor = grant.floor_session;
        if started {
            self.announce(room, &holding, Change::Started);
        }
        r.floor = Some(holding);
        Ok(started)
    }

    /// Ends `participant`'s transmission (they let go); false if they did not hold the floor.
    pub fn release_floor(&self, room: &str, participant: &str) -> bool {
        self.end_floor(room, |h| h.participant == participant, EndReason::Released)
    }

    /// Ends the transmission of holding `floor_session` if it still runs to `exp` (its grant ran
    /// out without renewal); the gate has closed on its own already.
    pub fn expire_floor(&self, room: &str, floor_session: i64, exp: i64) -> bool {
        self.end_floor(
            room,
            |h| h.floor_session == floor_session && h.exp == exp,
            EndReason::Expired,
        )
    }

    fn end_floor(&self, room: &str, which: impl Fn(&Holding) -> bool, why: EndReason) -> bool {
        let mut rooms = self.lock();
        let Some(r) = rooms.get_mut(room) else {
            return false;
        };
        let Some(h) = r.floor.take_if(|h| which(h)) else {
            return false;
        };
        if let Some(p) = r.participants.get(&h.participant) {
            p.feed.audio_gate.close();
        }
        self.announce(room, &h, Change::Ended(why));
        true
    }

    /// Plays the evidence clip `bytes` (an MP4 with H.264 video) into `room` as participant
    /// `clip:{sha256}`, replacing the clip playing there; returns the participant's id. The
    /// participant leaves when the clip ends.
    pub fn play_clip(
        self: &Arc<Self>,
        room: &str,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<String, ClipError> {
        if let Some(old) = self.clip_participant(room) {
            self.leave(room, &old);
        }
        let (id, feed, _keyframes) = self
            .reserve_feed(
                room,
                &format!("clip:{sha256}"),
                (false, true),
                Utc::now(),
                true,
            )
            .map_err(ClipError::Full)?;
        let rooms = Arc::downgrade(self);
        let (r, i) = (room.to_owned(), id.clone());
        let on_end = move || {
            if let Some(rooms) = rooms.upgrade() {
                rooms.leave(&r, &i);
            }
        };
        let player = match ClipPlayer::start(bytes, id.clone(), sha256.to_owned(), feed, on_end) {
            Ok(p) => p,
            Err(e) => {
                self.leave(room, &id);
                return Err(ClipError::Player(e));
            }
        };
        let mut rooms = self.lock();
        match rooms.get_mut(room) {
            Some(r) if r.participants.contains_key(&id) => {
                r.clip = Some(player);
                Ok(id)
            }
            // It ended (or failed) already.
            _ => Err(ClipError::Player(
                "the clip ended as soon as it started".into(),
            )),
        }
    }

    /// The participant id of the clip playing in `room`.
    pub fn clip_participant(&self, room: &str) -> Option<String> {
        self.lock()
            .get(room)
            .and_then(|r| r.clip.as_ref().map(|c| c.participant.clone()))
    }

    /// Pauses (or resumes) the clip playing in `room`; false if none plays.
    pub fn pause_clip(&self, room: &str, pause: bool) -> bool {
        let rooms = self.lock();
        let Some(clip) = rooms.get(room).and_then(|r| r.clip.as_ref()) else {
            return false;
        };
        if pause {
            clip.pause()
        } else {
            clip.resume()
        }
        true
    }

    /// Who talks in `room` now (push-to-talk rooms).
    pub fn floor(&self, room: &str) -> Option<Holding> {
        self.lock().get(room).and_then(|r| r.floor.clone())
    }

    /// Room connections (senders and receivers) in all rooms: they count toward the gateway's
    /// `live.max_sessions` with the live view's.
    pub fn connection_count(&self) -> usize {
        let (_, senders, receivers) = self.counts();
        senders + receivers
    }

    /// Open connections in all rooms (senders, receivers), for the metrics.
    pub fn counts(&self) -> (usize, usize, usize) {
        let rooms = self.lock();
        let senders = rooms.values().map(|r| r.participants.len()).sum();
        let receivers = rooms.values().map(|r| r.subscriptions.len()).sum();
        (rooms.len(), senders, receivers)
    }

    /// Renders the rooms' gauges.
    pub fn render_metrics(&self, out: &mut String) {
        let (rooms, senders, receivers) = self.counts();
        out.push_str(&format!(
            "# TYPE bl_gateway_rooms gauge\nbl_gateway_rooms {rooms}\n\
             # TYPE bl_gateway_room_senders gauge\nbl_gateway_room_senders {senders}\n\
             # TYPE bl_gateway_room_receivers gauge\nbl_gateway_room_receivers {receivers}\n"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rooms() -> Rooms {
        Rooms::new(PeerSettings {
            bind_ip: "127.0.0.1".parse().unwrap(),
            public_ip: None,
            ports: None,
            gather_timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn the_seventeenth_participant_is_refused_and_a_place_frees_when_one_leaves() {
        let rooms = rooms();
        let now = Utc::now();
        let ids: Vec<String> = (0..MAX_PARTICIPANTS)
            .map(|i| {
                rooms
                    .reserve("room-a", &format!("user:u{i}"), (true, false), now)
                    .unwrap()
                    .0
            })
            .collect();
        assert_eq!(
            rooms
                .reserve("room-a", "user:late", (true, true), now)
                .err(),
            Some(JoinError::Full {
                room: "room-a".into()
            })
        );
        // Another room is not affected.
        assert!(rooms.reserve("room-b", "user:x", (true, true), now).is_ok());
        // A reserved participant has no connection yet, so leaving spawns nothing.
        assert!(rooms.leave("room-a", &ids[3]));
        assert!(
            rooms
                .reserve("room-a", "user:late", (true, true), now)
                .is_ok()
        );
        assert_eq!(rooms.participants("room-a").len(), MAX_PARTICIPANTS);
    }

    #[tokio::test]
    async fn every_transmission_start_and_end_is_announced_for_a_recorder() {
        let rooms = rooms();
        let mut changes = rooms.floor_changes();
        let now = Utc::now();
        let room = "voice-1";
        let (a, feed_a, _) = rooms.reserve(room, "user:a", (true, false), now).unwrap();
        let (b, feed_b, _) = rooms.reserve(room, "user:b", (true, false), now).unwrap();
        let grant = |sub: &str, floor_session| Grant {
            sub: sub.into(),
            floor_session,
            exp: now.timestamp() + 60,
        };
        assert!(!feed_a.audio_gate.is_open_now());
        assert_eq!(rooms.grant_floor(room, &a, &grant("user:a", 1)), Ok(true));
        assert_eq!(rooms.grant_floor(room, &a, &grant("user:a", 1)), Ok(false));
        assert!(feed_a.audio_gate.is_open_now());
        assert_eq!(rooms.grant_floor(room, &b, &grant("user:b", 2)), Ok(true));
        assert!(!feed_a.audio_gate.is_open_now() && feed_b.audio_gate.is_open_now());
        assert!(rooms.leave(room, &b));
        let seen: Vec<_> = std::iter::from_fn(|| changes.try_recv().ok())
            .map(|c| (c.participant, c.floor_session, c.change))
            .collect();
        assert_eq!(
            seen,
            vec![
                (a.clone(), 1, Change::Started),
                (a, 1, Change::Ended(EndReason::Superseded)),
                (b.clone(), 2, Change::Started),
                (b, 2, Change::Ended(EndReason::Left)),
            ]
        );
    }
}
