//! Group broadcast (issue 7): **one operator's WHIP ingest fanned out to the talk channel of every
//! target camera** ([`super::talk`]). Each target gets a leg: an ordinary talk session of its
//! camera whose packets are the broadcast's, cloned (the Opus frames are shared bytes, never
//! decoded or re-encoded; each camera's channel only rewrites the RTP header to its own SSRC). So
//! every leg is exactly a talk-down: its channel mounts the camera's pull path, asks the edge
//! (`talk-start` through dispatch), and ends with `talk-stop`.
//!
//! dispatch has taken the floor of every camera named in the broadcast token; a leg taken over
//! later (a supervisor talking to that one camera) just ends, the others carry on.
//!
//! The operator's voice is recorded once per broadcast ([`crate::voicerec`]), listing its
//! cameras; the legs are not recorded on their own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bl_proto::CameraId;
use bl_proto::broadcast_token::BroadcastClaims;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Live;
use super::peer::PeerEvent;
use super::talk::TalkError;
use super::talk_peer::{TalkPacket, TalkPeer};
use crate::voicerec::{Voice, VoiceKind, VoiceMeta};

/// The broadcasts of this gateway (part of [`Live`]).
#[derive(Default)]
pub struct Broadcasts {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Broadcast ingests (WHIP) opened since start.
    pub opened: AtomicU64,
}

/// One broadcast ingest.
struct Session {
    broadcast: uuid::Uuid,
    cameras: Vec<CameraId>,
    stop: CancellationToken,
}

/// One camera's leg: where its copy of the broadcast goes.
struct Leg {
    camera: CameraId,
    session: String,
    events: mpsc::Sender<PeerEvent>,
    packets: mpsc::Sender<TalkPacket>,
}

impl Live {
    /// Starts a broadcast ingest to every camera of `claims`, each as a talk session of its camera,
    /// and fans the operator's audio out until DELETE, disconnection or shutdown. Returns its id.
    pub fn start_broadcast(
        self: &Arc<Self>,
        claims: &BroadcastClaims,
        peer: TalkPeer,
        events: mpsc::Receiver<PeerEvent>,
        packets: mpsc::Receiver<TalkPacket>,
    ) -> Result<String, TalkError> {
        if self.push.is_none() {
            return Err(TalkError::NoRtspServer);
        }
        let talker = format!("{} (broadcast {})", claims.sub, claims.broadcast);
        let mut legs = Vec::with_capacity(claims.cameras.len());
        for camera in &claims.cameras {
            let (events_tx, events_rx) = mpsc::channel(16);
            // About 5 s of 20 ms frames, like a talker's own.
            let (packets_tx, packets_rx) = mpsc::channel(256);
            let session = self.start_talk_leg(camera, talker.clone(), events_rx, packets_rx)?;
            legs.push(Leg {
                camera: camera.clone(),
                session,
                events: events_tx,
                packets: packets_tx,
            });
        }
        // One recording of the operator's voice for the whole broadcast, listing its cameras.
        let voice = self.voice.get().and_then(|v| {
            v.start(VoiceMeta {
                kind: VoiceKind::Broadcast,
                talker: claims.sub.clone(),
                cameras: claims.cameras.clone(),
                broadcast: Some(claims.broadcast),
                premises: false,
            })
        });
        let id = hex::encode(rand::random::<[u8; 16]>());
        let session = Arc::new(Session {
            broadcast: claims.broadcast,
            cameras: claims.cameras.clone(),
            stop: CancellationToken::new(),
        });
        self.broadcasts
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), session.clone());
        self.broadcasts.opened.fetch_add(1, Relaxed);
        let live = self.clone();
        let span = tracing::info_span!("broadcast", broadcast = %claims.broadcast, session = %id,
                                       cameras = claims.cameras.len());
        let id2 = id.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                tracing::info!("broadcast started");
                let reason = fan_out(events, packets, &legs, &session.stop, voice.as_deref()).await;
                tracing::info!(reason, "broadcast ended");
                if let Some(voice) = voice {
                    tokio::spawn(voice.finish());
                }
                peer.close().await;
                for leg in &legs {
                    live.end_talk_session(&leg.camera, &leg.session);
                }
                live.broadcasts
                    .sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id2);
            },
            span,
        ));
        Ok(id)
    }

    /// Ends broadcast ingest `id` of `broadcast`; false if there is no such session.
    pub fn end_broadcast(&self, broadcast: uuid::Uuid, id: &str) -> bool {
        let sessions = self
            .broadcasts
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match sessions.get(id) {
            Some(s) if s.broadcast == broadcast => {
                s.stop.cancel();
                true
            }
            _ => false,
        }
    }

    /// The talk state of every camera of `broadcast` on this gateway.
    pub fn broadcast_status(&self, broadcast: uuid::Uuid) -> Value {
        let cameras: Vec<CameraId> = self
            .broadcasts
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| s.broadcast == broadcast)
            .flat_map(|s| s.cameras.clone())
            .collect();
        let targets: Vec<Value> = cameras.iter().map(|c| self.talk_status(c)).collect();
        json!({"v": 1, "broadcast": broadcast, "active": !targets.is_empty(), "cameras": targets})
    }

    /// Ends every broadcast (shutdown; the talk channels end with [`Live::shutdown_talk`]).
    pub fn shutdown_broadcasts(&self) {
        for s in self
            .broadcasts
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            s.stop.cancel();
        }
    }
}

/// Copies the operator's connection events and packets to every leg until the connection or the
/// audio ends or `stop`; returns why.
async fn fan_out(
    mut events: mpsc::Receiver<PeerEvent>,
    mut packets: mpsc::Receiver<TalkPacket>,
    legs: &[Leg],
    stop: &CancellationToken,
    voice: Option<&Voice>,
) -> &'static str {
    loop {
        tokio::select! {
            () = stop.cancelled() => return "ended by the operator or shutdown",
            e = events.recv() => {
                let e = e.unwrap_or(PeerEvent::Closed);
                for leg in legs {
                    // A leg that ended (taken over) has dropped its receiver: nothing to do.
                    let _ = leg.events.try_send(e);
                }
                if e == PeerEvent::Closed {
                    return "the operator's connection closed";
                }
            }
            p = packets.recv() => {
                let Some(p) = p else { return "the operator's audio ended" };
                if let Some(v) = voice {
                    v.push_center(&super::talk::rtp_packet(0, p.seq, p.timestamp, p.marker, &p.payload));
                }
                for leg in legs {
                    // A full leg is behind: drop (live audio), as a talker's own channel does.
                    let _ = leg.packets.try_send(p.clone());
                }
            }
        }
    }
}
