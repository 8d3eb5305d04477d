//! What one viewer is sent of a relay: the cached GOP, then the live packets, each with the viewer's
//! own sequence number ([`ViewerSeq`]). A keyframe a viewer starts at that lacks its parameter sets
//! gets the camera's SDP ones before it. A viewer that falls more than the relay's ring behind
//! skips to the next keyframe instead of buffering: its queue is its place in the shared ring.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::sync::broadcast::{self, error::RecvError};

use super::relay::{Joined, Packet};
use super::rtp::{self, ViewerSeq};

/// One packet to send: the relay's bytes and the viewer's sequence number for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The RTP packet as relayed (its sequence number is the relay's).
    pub rtp: Bytes,
    /// The viewer's sequence number.
    pub seq: u16,
}

/// The video one viewer is sent.
pub struct ViewerFeed {
    ready: VecDeque<Outgoing>,
    rx: broadcast::Receiver<Packet>,
    seq: ViewerSeq,
    parameter_sets: Option<Bytes>,
    skipping: bool,
    skipped: u64,
}

impl ViewerFeed {
    /// The video feed of a viewer that joined with `joined`, numbered from `first_seq`, and the
    /// joined audio.
    pub fn new(joined: Joined, first_seq: u16) -> (Self, broadcast::Receiver<Bytes>) {
        let Joined {
            backlog,
            rx,
            audio,
            parameter_sets,
        } = joined;
        let mut feed = Self {
            ready: VecDeque::with_capacity(backlog.len() + 1),
            rx,
            seq: ViewerSeq::new(first_seq),
            parameter_sets,
            skipping: backlog.is_empty(),
            skipped: 0,
        };
        if let Some(first) = backlog.first() {
            let ts = rtp::timestamp(first);
            let first_unit_has_sps = backlog
                .iter()
                .take_while(|p| rtp::timestamp(p) == ts)
                .any(|p| rtp::carries_sps(p));
            if !first_unit_has_sps {
                feed.add_parameter_sets(first);
            }
        }
        for p in backlog {
            let seq = feed.seq.map(rtp::seq(&p));
            feed.ready.push_back(Outgoing { rtp: p, seq });
        }
        (feed, audio)
    }

    /// The next packet to send, waiting for the relay; None when the relay ended.
    pub async fn next(&mut self) -> Option<Outgoing> {
        loop {
            if let Some(out) = self.ready.pop_front() {
                return Some(out);
            }
            match self.rx.recv().await {
                Ok((rtp, key)) => self.accept(rtp, key),
                Err(RecvError::Lagged(n)) => self.fell_behind(n),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// As [`ViewerFeed::next`] without waiting: None when nothing is ready now (or the relay ended).
    pub fn try_next(&mut self) -> Option<Outgoing> {
        loop {
            if let Some(out) = self.ready.pop_front() {
                return Some(out);
            }
            match self.rx.try_recv() {
                Ok((rtp, key)) => self.accept(rtp, key),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.fell_behind(n),
                Err(_) => return None,
            }
        }
    }

    /// Relay packets this viewer skipped since the last call.
    pub fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }

    fn fell_behind(&mut self, n: u64) {
        tracing::warn!(
            skipped = n,
            "viewer fell behind; resuming at the next keyframe"
        );
        self.skipped += n;
        self.skipping = true;
        self.seq.skip();
    }

    fn accept(&mut self, rtp: Bytes, key: bool) {
        if self.skipping {
            if !key {
                self.skipped += 1;
                return;
            }
            self.skipping = false;
            if !rtp::carries_sps(&rtp) {
                self.add_parameter_sets(&rtp);
            }
        }
        let seq = self.seq.map(rtp::seq(&rtp));
        self.ready.push_back(Outgoing { rtp, seq });
    }

    /// Queues the camera's parameter sets (if known) in the access unit of `keyframe`.
    fn add_parameter_sets(&mut self, keyframe: &[u8]) {
        if let Some(sets) = &self.parameter_sets {
            let rtp = rtp::packet_like(keyframe, sets);
            let seq = self.seq.extra();
            self.ready.push_back(Outgoing { rtp, seq });
        }
    }
}

#[cfg(test)]
mod tests {
    use bl_proto::stream::Stream;

    use super::super::relay::{FANOUT_BUFFER, Relay};
    use super::*;

    const SPROP: &str = "Z0LgHw==,aM48gA==";

    fn rtp(seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn relay() -> Relay {
        let r = Relay::new("cam-1".parse().unwrap(), Stream::Sub, 1 << 20);
        r.set_parameter_sets(SPROP);
        r
    }

    fn feed(r: &Relay, first_seq: u16) -> ViewerFeed {
        ViewerFeed::new(r.join(), first_seq).0
    }

    fn drain(feed: &mut ViewerFeed) -> Vec<Outgoing> {
        std::iter::from_fn(|| feed.try_next()).collect()
    }

    fn nal(o: &Outgoing) -> u8 {
        o.rtp[12] & 0x1f
    }

    #[test]
    fn a_keyframe_without_parameter_sets_in_band_gets_the_sdps_first() {
        let r = relay();
        r.push(&rtp(10, 3000, &[0x41, 1]));
        r.push(&rtp(11, 6000, &[0x65, 1])); // IDR, no SPS in band
        r.push(&rtp(12, 9000, &[0x41, 2]));
        let mut feed = feed(&r, 700);
        r.push(&rtp(13, 12000, &[0x41, 3]));
        let out = drain(&mut feed);
        let kinds: Vec<u8> = out.iter().map(nal).collect();
        assert_eq!(kinds, [24, 5, 1, 1], "STAP-A with SPS/PPS, IDR, P, P");
        assert!(rtp::carries_sps(&out[0].rtp));
        assert_eq!(
            rtp::timestamp(&out[0].rtp),
            6000,
            "in the IDR's access unit"
        );
        let seqs: Vec<u16> = out.iter().map(|o| o.seq).collect();
        assert_eq!(seqs, [700, 701, 702, 703]);
    }

    #[test]
    fn in_band_parameter_sets_are_not_repeated() {
        let r = relay();
        r.push(&rtp(1, 3000, &[0x67, 1]));
        r.push(&rtp(2, 3000, &[0x68, 1]));
        r.push(&rtp(3, 3000, &[0x65, 1]));
        let out = drain(&mut feed(&r, 0));
        assert_eq!(out.iter().map(nal).collect::<Vec<_>>(), [7, 8, 5]);
    }

    #[test]
    fn a_stalled_viewer_holds_no_more_than_its_place_and_resumes_at_a_keyframe_without_holes() {
        let r = relay();
        r.push(&rtp(0, 0, &[0x65, 0]));
        let mut feed = feed(&r, 100);
        assert_eq!(
            drain(&mut feed).len(),
            2,
            "parameter sets and the cached IDR"
        );
        // the viewer stalls while the camera sends 10 rings' worth, a keyframe every 100
        let mut seq = 1u16;
        for i in 1..(10 * FANOUT_BUFFER) {
            let payload = if i % 100 == 0 { [0x65, 0] } else { [0x41, 0] };
            r.push(&rtp(seq, i as u32 * 3000, &payload));
            seq = seq.wrapping_add(1);
        }
        let out = drain(&mut feed);
        assert!(
            out.len() <= FANOUT_BUFFER + 1,
            "all it had queued is its place in the shared ring: {}",
            out.len()
        );
        assert!(feed.take_skipped() > 9 * FANOUT_BUFFER as u64 - 100);
        assert_eq!(nal(&out[0]), 24, "parameter sets before the keyframe");
        assert_eq!(nal(&out[1]), 5, "resumes at a keyframe");
        let seqs: Vec<u16> = out.iter().map(|o| o.seq).collect();
        let expected: Vec<u16> = (102..102 + out.len() as u16).collect();
        assert_eq!(seqs, expected, "no hole the viewer would ask to resend");
    }

    #[test]
    fn a_source_reconnection_is_seamless_for_a_viewer() {
        let r = relay();
        r.push(&rtp(500, 90_000, &[0x65, 0]));
        r.push(&rtp(501, 93_000, &[0x41, 0]));
        let mut feed = feed(&r, 1);
        // the camera comes back with another SSRC and numbering
        let mut again = rtp(7, 5, &[0x65, 0]);
        again[8..12].copy_from_slice(&9u32.to_be_bytes());
        r.push(&again);
        let out = drain(&mut feed);
        let seqs: Vec<u16> = out.iter().map(|o| o.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        let ts: Vec<u32> = out.iter().map(|o| rtp::timestamp(&o.rtp)).collect();
        assert!(ts[3] > ts[2], "the clock goes on: {ts:?}");
    }

    #[test]
    fn a_big_packet_reaches_viewers_as_fu_a_fragments_with_their_own_numbers() {
        let r = relay();
        let mut big = vec![0x65];
        big.extend(std::iter::repeat_n(7u8, 3000));
        r.push(&rtp(40, 0, &big));
        r.push(&rtp(41, 3000, &[0x41, 0]));
        let out = drain(&mut feed(&r, 0));
        // STAP-A, then 3 fragments of at most MAX_RTP_SIZE, then the P slice
        assert_eq!(out.iter().map(nal).collect::<Vec<_>>(), [24, 28, 28, 28, 1]);
        assert!(out.iter().all(|o| o.rtp.len() <= rtp::MAX_RTP_SIZE));
        assert_eq!(
            out.iter().map(|o| o.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
    }
}
