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
//! This file is the room bookkeeping, plain data behind a mutex; [`peer`] owns the WebRTC side and
//! [`http`] the requests.

pub mod http;
pub mod peer;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::live::peer::PeerSettings;
use peer::{PublishPeer, SubscribePeer};

/// The most participants sending into one room (a 17th is refused with `room_full`).
pub const MAX_PARTICIPANTS: usize = 16;

/// What one participant sends, fanned out to its subscribers. Bounded: a slow subscriber skips.
pub struct Feed {
    pub audio: broadcast::Sender<rtc::rtp::Packet>,
    pub video: broadcast::Sender<rtc::rtp::Packet>,
    /// Keyframe requests for the sender's video (a new or recovering subscriber).
    pub keyframe: mpsc::Sender<()>,
}

impl Feed {
    fn new() -> (Arc<Feed>, mpsc::Receiver<()>) {
        let (keyframe, requests) = mpsc::channel(4);
        // About 5 s of 20 ms audio frames; about 1 s of video at 1.5 Mbit/s.
        let feed = Feed {
            audio: broadcast::channel(256).0,
            video: broadcast::channel(512).0,
            keyframe,
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
}

/// Why a participant cannot join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("room {room} has its maximum of {MAX_PARTICIPANTS} participants")]
    Full { room: String },
}

/// Every room on this gateway node. A room exists while someone is in it.
pub struct Rooms {
    pub settings: PeerSettings,
    rooms: Mutex<HashMap<String, Room>>,
}

impl Rooms {
    pub fn new(settings: PeerSettings) -> Self {
        Self {
            settings,
            rooms: Mutex::new(HashMap::new()),
        }
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
        (audio, video): (bool, bool),
        now: DateTime<Utc>,
    ) -> Result<(String, Arc<Feed>, mpsc::Receiver<()>), JoinError> {
        let mut rooms = self.lock();
        let r = rooms.entry(room.to_owned()).or_default();
        if r.participants.len() >= MAX_PARTICIPANTS {
            return Err(JoinError::Full {
                room: room.to_owned(),
            });
        }
        let id = format!("{:016x}", rand::random::<u64>());
        let (feed, requests) = Feed::new();
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
            if r.participants.is_empty() && r.subscriptions.is_empty() {
                rooms.remove(room);
            }
            removed
        };
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
            if r.participants.is_empty() && r.subscriptions.is_empty() {
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
}
