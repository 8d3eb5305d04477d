//! RTP pass-through of a camera's H.264 (RFC 3550, RFC 6184): the relay's one continuous numbering
//! across source reconnections ([`Renumber`]), each viewer's own numbering ([`ViewerSeq`]), the
//! parameter sets of the SDP as an aggregation packet, and FU-A fragmentation of a packet too big
//! for WebRTC. Packets are never depayloaded. Plain logic, no I/O.

use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;

use super::gop::{aggregated_units, rtp_payload};

/// The largest RTP packet sent to a viewer: with SRTP's 10-byte tag and UDP/IPv6 headers it still
/// fits an Ethernet frame. Cameras usually send at most this; a bigger packet is split.
pub const MAX_RTP_SIZE: usize = 1400;

/// How far a source's sequence number may jump forward and still be the same run (packets the
/// source lost); beyond it, or backwards, the source restarted.
const MAX_SEQ_GAP: u16 = 3000;

/// The RTP clock of video.
const VIDEO_CLOCK_HZ: u128 = 90_000;

/// The sequence number of an RTP packet (0 when too short).
pub fn seq(rtp: &[u8]) -> u16 {
    rtp.get(2..4)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}

/// The timestamp of an RTP packet (0 when too short).
pub fn timestamp(rtp: &[u8]) -> u32 {
    rtp.get(4..8)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The SSRC of an RTP packet (0 when too short).
pub fn ssrc(rtp: &[u8]) -> u32 {
    rtp.get(8..12)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Writes `seq` and `ts` into an RTP header of at least 12 bytes.
pub fn set_seq_and_timestamp(rtp: &mut [u8], seq: u16, ts: u32) {
    rtp[2..4].copy_from_slice(&seq.to_be_bytes());
    rtp[4..8].copy_from_slice(&ts.to_be_bytes());
}

/// Maps a source's sequence numbers and timestamps to the relay's: one run while the source keeps
/// its SSRC and numbering; when it restarts (a reconnection: another SSRC, or a jump), the relay's
/// numbering continues right after its last packet, and its clock by the wall time in between, so
/// viewers see one seamless stream.
#[derive(Debug, Default)]
pub struct Renumber {
    seq_delta: u16,
    ts_delta: u32,
    /// The source's SSRC and last sequence number.
    last_in: Option<(u32, u16)>,
    /// The relay's last sequence number and timestamp, and when.
    last_out: Option<(u16, u32, Instant)>,
}

impl Renumber {
    /// The relay's sequence number and timestamp of the source's next packet, arriving `now`.
    pub fn next(&mut self, ssrc: u32, seq: u16, ts: u32, now: Instant) -> (u16, u32) {
        let same_run = self.last_in.is_some_and(|(s, q)| {
            let ahead = seq.wrapping_sub(q);
            // duplicates and short reordering stay in the run too
            s == ssrc && (ahead <= MAX_SEQ_GAP || ahead > u16::MAX - 100)
        });
        if !same_run && let Some((out_seq, out_ts, at)) = self.last_out {
            let ticks = now.saturating_duration_since(at).as_micros() * VIDEO_CLOCK_HZ / 1_000_000;
            let next_ts = out_ts.wrapping_add((ticks as u32).max(1));
            self.seq_delta = out_seq.wrapping_add(1).wrapping_sub(seq);
            self.ts_delta = next_ts.wrapping_sub(ts);
        }
        self.last_in = Some((ssrc, seq));
        let out = (
            seq.wrapping_add(self.seq_delta),
            ts.wrapping_add(self.ts_delta),
        );
        if self
            .last_out
            .is_none_or(|(s, _, _)| out.0.wrapping_sub(s) <= MAX_SEQ_GAP)
        {
            self.last_out = Some((out.0, out.1, now));
        }
        out
    }

    /// The relay's sequence number for a packet the relay adds after the last one (a fragment of a
    /// split packet): the source's later packets shift by one.
    pub fn extra(&mut self) -> u16 {
        self.seq_delta = self.seq_delta.wrapping_add(1);
        let last = self.last_out.get_or_insert((0, 0, Instant::now()));
        last.0 = last.0.wrapping_add(1);
        last.0
    }
}

/// One viewer's sequence numbers: the relay's shifted by a constant, re-chosen wherever the viewer's
/// stream has a hole the relay's has not (it starts, skipped packets, or got an added packet), so the
/// viewer sees no loss it would ask to be resent.
#[derive(Debug)]
pub struct ViewerSeq {
    delta: u16,
    last: Option<u16>,
    first: u16,
    resync: bool,
}

impl ViewerSeq {
    /// Numbering that starts at `first` (random, as RFC 3550 asks).
    pub fn new(first: u16) -> Self {
        Self {
            delta: 0,
            last: None,
            first,
            resync: true,
        }
    }

    fn following(&self) -> u16 {
        self.last.map_or(self.first, |l| l.wrapping_add(1))
    }

    /// The viewer's number for the relay's packet `relay_seq`.
    pub fn map(&mut self, relay_seq: u16) -> u16 {
        if self.resync {
            self.delta = self.following().wrapping_sub(relay_seq);
            self.resync = false;
        }
        let out = relay_seq.wrapping_add(self.delta);
        self.last = Some(out);
        out
    }

    /// The viewer's number for a packet the gateway adds (parameter sets before a keyframe).
    pub fn extra(&mut self) -> u16 {
        let out = self.following();
        self.last = Some(out);
        self.resync = true;
        out
    }

    /// The viewer skips relay packets: the next one sent follows the last without a hole.
    pub fn skip(&mut self) {
        self.resync = true;
    }
}

/// Whether an H.264 RTP packet carries a sequence parameter set (alone, aggregated or as the start
/// of a fragment).
pub fn carries_sps(rtp: &[u8]) -> bool {
    let Some(payload) = rtp_payload(rtp) else {
        return false;
    };
    match payload.first().map(|b| b & 0x1f) {
        Some(7) => true,
        Some(24) => {
            aggregated_units(&payload[1..]).any(|n| n.first().is_some_and(|h| h & 0x1f == 7))
        }
        Some(28) => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == 7),
        _ => false,
    }
}

/// The STAP-A payload (RFC 6184 §5.7.1) of an SDP's `sprop-parameter-sets` (base64 NAL units,
/// comma-separated), or None when it has none that decode.
pub fn parameter_sets_stap_a(sprop: &str) -> Option<Bytes> {
    let units: Vec<Vec<u8>> = sprop
        .split(',')
        .filter_map(|u| {
            base64::engine::general_purpose::STANDARD
                .decode(u.trim())
                .ok()
        })
        .filter(|u| !u.is_empty() && u.len() <= usize::from(u16::MAX))
        .collect();
    if !units.iter().any(|u| u[0] & 0x1f == 7) {
        return None;
    }
    // F is the OR of the units' F bits, NRI their highest
    let forbidden = units.iter().fold(0, |f, u| f | (u[0] & 0x80));
    let nri = units.iter().map(|u| u[0] & 0x60).max().unwrap_or(0x60);
    let mut out = vec![forbidden | nri | 24];
    for u in &units {
        out.extend_from_slice(&(u.len() as u16).to_be_bytes());
        out.extend_from_slice(u);
    }
    Some(out.into())
}

/// An RTP packet of `payload` with `template`'s version, payload type, timestamp and SSRC, no
/// marker, CSRC or extension (its sequence number is the viewer's business).
pub fn packet_like(template: &[u8], payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(12 + payload.len());
    out.extend_from_slice(&[0x80, template.get(1).map_or(96, |b| b & 0x7f), 0, 0]);
    out.extend_from_slice(&timestamp(template).to_be_bytes());
    out.extend_from_slice(&ssrc(template).to_be_bytes());
    out.extend_from_slice(payload);
    out.into()
}

/// Splits an H.264 RTP packet bigger than `max` bytes into FU-A fragments (RFC 6184 §5.8) of at
/// most `max` bytes, each with the packet's header (the marker only on the last, padding dropped).
/// A single NAL unit or a fragment is split; anything else (an aggregation packet), a packet that
/// fits and a malformed one come back whole.
pub fn split_h264(rtp: &[u8], max: usize) -> Vec<Vec<u8>> {
    let whole = || vec![rtp.to_vec()];
    let Some(payload) = rtp_payload(rtp) else {
        return whole();
    };
    let header_len = payload.as_ptr() as usize - rtp.as_ptr() as usize;
    if rtp.len() <= max || max < header_len + 3 {
        return whole();
    }
    let (indicator, fu_type, starts, ends, body) = match payload[0] & 0x1f {
        1..=23 => (
            (payload[0] & 0xe0) | 28,
            payload[0] & 0x1f,
            true,
            true,
            &payload[1..],
        ),
        28 if payload.len() > 2 => (
            payload[0],
            payload[1] & 0x1f,
            payload[1] & 0x80 != 0,
            payload[1] & 0x40 != 0,
            &payload[2..],
        ),
        _ => return whole(),
    };
    let marker = rtp[1] & 0x80;
    let chunks: Vec<&[u8]> = body.chunks(max - header_len - 2).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = Vec::with_capacity(header_len + 2 + chunk.len());
            p.extend_from_slice(&rtp[..header_len]);
            p[0] &= !0x20;
            p[1] = (p[1] & 0x7f) | if i == last { marker } else { 0 };
            let s = if i == 0 && starts { 0x80 } else { 0 };
            let e = if i == last && ends { 0x40 } else { 0 };
            p.extend_from_slice(&[indicator, s | e | fu_type]);
            p.extend_from_slice(chunk);
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn a_reconnected_source_continues_the_relays_numbering_and_clock() {
        let t0 = Instant::now();
        let mut r = Renumber::default();
        assert_eq!(r.next(1, 100, 9000, t0), (100, 9000));
        assert_eq!(r.next(1, 101, 12000, t0), (101, 12000));
        // packets lost upstream stay a gap
        assert_eq!(r.next(1, 104, 15000, t0), (104, 15000));
        // the camera reconnects 2 s later: new SSRC, numbering and clock
        let later = t0 + Duration::from_secs(2);
        assert_eq!(r.next(2, 40000, 77, later), (105, 15000 + 180_000));
        assert_eq!(r.next(2, 40001, 3077, later), (106, 18000 + 180_000));
        // the same SSRC restarting its numbering is a restart too
        assert_eq!(r.next(2, 5, 3077, later), (107, 198_001));
    }

    #[test]
    fn a_split_packets_fragments_shift_the_following_numbers() {
        let t0 = Instant::now();
        let mut r = Renumber::default();
        assert_eq!(r.next(1, 10, 0, t0).0, 10);
        assert_eq!(r.extra(), 11);
        assert_eq!(r.next(1, 11, 0, t0).0, 12);
    }

    #[test]
    fn a_viewer_numbers_without_holes_across_skips_and_added_packets() {
        let mut v = ViewerSeq::new(500);
        assert_eq!(v.extra(), 500, "the parameter sets first");
        assert_eq!(v.map(9000), 501);
        assert_eq!(v.map(9001), 502);
        assert_eq!(v.map(9003), 504, "the relay's own gap stays");
        v.skip();
        assert_eq!(v.map(9500), 505);
        assert_eq!(v.map(9501), 506);
    }

    #[test]
    fn parameter_sets_from_the_sdp_become_one_aggregation_packet() {
        // SPS 67 42 e0 1f, PPS 68 ce 3c 80
        let stap = parameter_sets_stap_a("Z0LgHw==,aM48gA==").unwrap();
        assert_eq!(
            &stap[..],
            &[
                0x78, 0, 4, 0x67, 0x42, 0xe0, 0x1f, 0, 4, 0x68, 0xce, 0x3c, 0x80
            ]
        );
        assert!(carries_sps(&packet_like(&rtp(1, 5, true, &[0x65]), &stap)));
        assert_eq!(parameter_sets_stap_a("aM48gA=="), None, "no SPS");
        assert_eq!(parameter_sets_stap_a("!!"), None);
    }

    #[test]
    fn only_a_packet_over_the_limit_is_split_into_fu_a_fragments() {
        let small = rtp(1, 5, true, &[0x65, 1, 2, 3]);
        assert_eq!(split_h264(&small, 1400), vec![small.clone()]);

        // an IDR slice of 2 + 20 bytes in packets of at most 12 + 2 + 8 bytes
        let mut nal = vec![0x65];
        nal.extend(1..=21u8);
        let parts = split_h264(&rtp(1, 5, true, &nal), 22);
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts[0],
            rtp(1, 5, false, &[0x7c, 0x85, 1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert_eq!(
            parts[1],
            rtp(1, 5, false, &[0x7c, 0x05, 9, 10, 11, 12, 13, 14, 15, 16])
        );
        assert_eq!(parts[2], rtp(1, 5, true, &[0x7c, 0x45, 17, 18, 19, 20, 21]));

        // a middle FU-A fragment stays a middle: no start, no end
        let mid = rtp(1, 5, false, &[0x7c, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let parts = split_h264(&mid, 20);
        assert_eq!(parts[0][12..14], [0x7c, 0x05]);
        assert_eq!(parts[1][12..14], [0x7c, 0x05]);
        // an aggregation packet is left whole
        let stap = rtp(1, 5, false, &[0x78, 0, 3, 0x67, 1, 2, 0, 3, 0x68, 1, 2]);
        assert_eq!(split_h264(&stap, 16), vec![stap.clone()]);
    }
}
