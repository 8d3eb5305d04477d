//! The one RTP stream both servers relay: camsim's 720p 2 Mbps H.264 main stream. The gateway pulls
//! it over RTSP itself; a second RTSP client of the same (shared, encoded once) camsim media here,
//! the tap, notes when each packet arrived and forwards it as plain RTP over UDP to Janus's
//! streaming mountpoint. A viewer's arrival time minus the tap's for the same packet is the latency
//! the server (plus the client's own receive path) added.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;

/// How many recent packets the tap remembers (about 20 s at 2 Mbps).
const REMEMBERED: usize = 4096;

/// Identifies a packet by its whole payload, which neither server changes (both rewrite SSRC, Janus
/// also sequence numbers and timestamps). Payloads do repeat: the middle fragments of a still
/// picture's P-frames are byte for byte the same frame after frame, so see [`Arrivals::get`].
pub fn packet_key(payload: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

/// The payload of an RTP packet (after the fixed header, CSRCs and any extension).
fn rtp_payload(packet: &[u8]) -> Option<&[u8]> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let mut at = 12 + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(at + 2..at + 4)?;
        at += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    packet.get(at..)
}

/// When each recent packet reached the tap.
#[derive(Default)]
pub struct Arrivals {
    recent: Mutex<Recent>,
    /// Packets the tap received.
    pub packets: AtomicU64,
}

/// The last [`REMEMBERED`] packets: when each copy of each payload arrived, oldest first.
#[derive(Default)]
struct Recent {
    at: HashMap<u64, VecDeque<Instant>>,
    order: VecDeque<u64>,
}

impl Arrivals {
    fn note(&self, key: u64, now: Instant) {
        let mut recent = self.recent.lock().unwrap();
        let Recent { at, order } = &mut *recent;
        at.entry(key).or_default().push_back(now);
        order.push_back(key);
        if order.len() > REMEMBERED
            && let Some(old) = order.pop_front()
            && let Some(copies) = at.get_mut(&old)
        {
            copies.pop_front();
            if copies.is_empty() {
                at.remove(&old);
            }
        }
    }

    /// When the packet with this key reached the tap, if it is remembered and unambiguous: a
    /// payload the tap saw twice (a repeated fragment of a still picture) could be either copy, and
    /// a server ahead of the tap would be matched to the previous frame's copy, a frame interval
    /// "late". Such packets are not measured.
    pub fn get(&self, key: u64) -> Option<Instant> {
        match self.recent.lock().unwrap().at.get(&key) {
            Some(copies) if copies.len() == 1 => copies.front().copied(),
            _ => None,
        }
    }
}

/// The running tap; stops its pipeline when dropped.
pub struct Tap {
    pipeline: gst::Element,
    pub arrivals: Arc<Arrivals>,
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Tap {
    /// Pulls `rtsp_url`'s video and forwards every RTP packet to `janus_rtp` (nothing listens
    /// there while the gateway is measured; the datagrams are dropped).
    pub async fn start(
        rtsp_url: &str,
        listen: SocketAddr,
        janus_rtp: SocketAddr,
    ) -> anyhow::Result<Tap> {
        let socket = tokio::net::UdpSocket::bind(listen).await?;
        let port = socket.local_addr()?.port();
        let arrivals = Arc::new(Arrivals::default());
        let a = arrivals.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                let Ok(n) = socket.recv(&mut buf).await else {
                    return;
                };
                let now = Instant::now();
                if let Some(payload) = rtp_payload(&buf[..n]) {
                    a.note(packet_key(payload), now);
                }
                a.packets.fetch_add(1, Relaxed);
                let _ = socket.send_to(&buf[..n], janus_rtp).await;
            }
        });
        gst::init()?;
        let pipeline = gst::parse::launch(&format!(
            "rtspsrc location={rtsp_url} protocols=tcp latency=0 ! application/x-rtp,media=video ! \
             udpsink host={} port={port} sync=false async=false",
            listen.ip()
        ))?;
        pipeline.set_state(gst::State::Playing)?;
        Ok(Tap { pipeline, arrivals })
    }
}
