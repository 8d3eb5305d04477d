//! The GOP cache: the RTP packets of one stream since its last keyframe, so that a new viewer starts
//! decoding at once instead of waiting up to a whole GOP. Plain data, no I/O.

use bytes::Bytes;

/// Whether an RTP packet carrying H.264 (RFC 6184), as the camera sent it, begins a keyframe: it is
/// an SPS or an IDR slice, as a single NAL unit, inside a STAP-A (possibly after an access unit
/// delimiter) or as the first fragment of an FU-A (see [`GopCache`] for how the packets before it
/// in its access unit are kept).
pub fn starts_keyframe(rtp: &[u8]) -> bool {
    let Some(payload) = rtp_payload(rtp) else {
        return false;
    };
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        5 | 7 => true,
        24 => aggregated_units(&payload[1..])
            .any(|nal| nal.first().is_some_and(|h| matches!(h & 0x1f, 5 | 7))),
        28 => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && matches!(fu & 0x1f, 5 | 7)),
        _ => false,
    }
}

/// The NAL units of an aggregation packet's body (after its header): 2-byte size, unit, repeated.
pub fn aggregated_units(mut body: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let size = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
        let unit = body.get(2..2 + size)?;
        body = &body[2 + size..];
        Some(unit)
    })
}

/// The payload of an RTP packet (after CSRCs and the header extension), or None if malformed.
pub fn rtp_payload(rtp: &[u8]) -> Option<&[u8]> {
    if rtp.len() < 12 || rtp[0] >> 6 != 2 {
        return None;
    }
    let mut at = 12 + 4 * usize::from(rtp[0] & 0x0f);
    if rtp[0] & 0x10 != 0 {
        let len = rtp.get(at + 2..at + 4)?;
        at += 4 + 4 * usize::from(u16::from_be_bytes([len[0], len[1]]));
    }
    let end = if rtp[0] & 0x20 != 0 {
        rtp.len().checked_sub(usize::from(*rtp.last()?))?
    } else {
        rtp.len()
    };
    rtp.get(at..end)
}

/// The RTP timestamp of a packet (0 when too short to have one).
fn rtp_timestamp(rtp: &[u8]) -> u32 {
    rtp.get(4..8)
        .map_or(0, |t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]))
}

/// Packets since the last keyframe, bounded in bytes.
///
/// A keyframe starts with the packets of its access unit that come before the picture (an access
/// unit delimiter, the parameter sets), all with the picture's RTP timestamp: those are kept with it,
/// whichever of them [`starts_keyframe`] recognised, so a new viewer's decoder gets the parameter
/// sets first.
#[derive(Debug)]
pub struct GopCache {
    packets: Vec<Bytes>,
    bytes: usize,
    max_bytes: usize,
    keyed: bool,
}

impl GopCache {
    /// An empty cache holding at most `max_bytes` of packets.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            packets: Vec::new(),
            bytes: 0,
            max_bytes,
            keyed: false,
        }
    }

    /// Adds the next packet. A keyframe start drops everything before its access unit; before the
    /// first keyframe, and after a GOP outgrew the bound, only the current access unit is kept
    /// (it may turn out to be a keyframe's).
    pub fn push(&mut self, packet: Bytes, keyframe_start: bool) {
        let ts = rtp_timestamp(&packet);
        if keyframe_start {
            if !self.keyed {
                self.keep_access_unit(ts);
            } else if self.packets.last().is_none_or(|p| rtp_timestamp(p) != ts) {
                self.packets.clear();
                self.bytes = 0;
            } else {
                // The keyframe's access unit began with packets already cached.
                self.keep_access_unit(ts);
            }
            self.keyed = true;
        } else if !self.keyed {
            self.keep_access_unit(ts);
        }
        if self.bytes + packet.len() > self.max_bytes {
            self.clear();
            return;
        }
        self.bytes += packet.len();
        self.packets.push(packet);
    }

    /// Drops every cached packet not of the access unit at RTP timestamp `ts` (the trailing run).
    fn keep_access_unit(&mut self, ts: u32) {
        let start = self
            .packets
            .iter()
            .rposition(|p| rtp_timestamp(p) != ts)
            .map_or(0, |i| i + 1);
        if start > 0 {
            self.packets.drain(..start);
            self.bytes = self.packets.iter().map(Bytes::len).sum();
        }
    }

    /// Empties the cache; it fills again from the next keyframe.
    pub fn clear(&mut self) {
        self.packets.clear();
        self.bytes = 0;
        self.keyed = false;
    }

    /// The cached packets, oldest first: a keyframe and what followed it, or nothing.
    pub fn packets(&self) -> &[Bytes] {
        if self.keyed { &self.packets } else { &[] }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(payload: &[u8]) -> Bytes {
        rtp_at(0, payload)
    }

    /// A packet with RTP timestamp `ts`.
    fn rtp_at(ts: u8, payload: &[u8]) -> Bytes {
        let mut p = vec![0x80, 96, 0, 1, 0, 0, 0, ts, 0, 0, 0, 1];
        p.extend_from_slice(payload);
        Bytes::from(p)
    }

    #[test]
    fn an_sps_or_an_idr_alone_aggregated_or_as_a_first_fragment_begins_a_keyframe() {
        assert!(starts_keyframe(&rtp(&[0x67, 1, 2])));
        assert!(starts_keyframe(&rtp(&[0x65, 1, 2])), "a single-NAL IDR");
        assert!(
            starts_keyframe(&rtp(&[0x78, 0, 2, 0x09, 0x10, 0, 2, 0x65, 1])),
            "an IDR in a STAP-A"
        );
        assert!(
            !starts_keyframe(&rtp(&[0x78, 0, 2, 0x41, 1])),
            "a P slice in a STAP-A"
        );
        assert!(starts_keyframe(&rtp(&[0x7c, 0x87, 9])), "a fragmented SPS");
        assert!(starts_keyframe(&rtp(&[0x78, 0, 3, 0x67, 1, 2])));
        assert!(
            starts_keyframe(&rtp(&[0x78, 0, 2, 0x09, 0x10, 0, 3, 0x67, 1, 2])),
            "an SPS after an access unit delimiter"
        );
        assert!(starts_keyframe(&rtp(&[0x7c, 0x85, 9])));
        assert!(
            !starts_keyframe(&rtp(&[0x7c, 0x05, 9])),
            "a middle fragment"
        );
        assert!(!starts_keyframe(&rtp(&[0x41, 1])), "a P slice");
        assert!(!starts_keyframe(&[0x80, 96]), "too short");
    }

    #[test]
    fn a_new_viewer_gets_the_last_keyframe_and_everything_after_it() {
        let mut c = GopCache::new(1 << 20);
        c.push(rtp_at(1, &[0x41]), false);
        assert!(c.packets().is_empty(), "nothing before the first keyframe");
        c.push(rtp_at(2, &[0x67]), true);
        c.push(rtp_at(3, &[0x41]), false);
        c.push(rtp_at(4, &[0x67, 7]), true);
        c.push(rtp_at(5, &[0x41, 8]), false);
        assert_eq!(c.packets(), &[rtp_at(4, &[0x67, 7]), rtp_at(5, &[0x41, 8])]);
    }

    #[test]
    fn the_packets_of_a_keyframes_access_unit_before_its_picture_stay_with_it() {
        let mut c = GopCache::new(1 << 20);
        c.push(rtp_at(1, &[0x41]), false);
        // An access unit delimiter (not recognised as a keyframe start), then a fragmented IDR.
        c.push(rtp_at(2, &[0x09, 0x10]), false);
        c.push(rtp_at(2, &[0x7c, 0x85, 1]), true);
        c.push(rtp_at(2, &[0x7c, 0x45, 2]), false);
        c.push(rtp_at(3, &[0x41]), false);
        assert_eq!(
            c.packets(),
            &[
                rtp_at(2, &[0x09, 0x10]),
                rtp_at(2, &[0x7c, 0x85, 1]),
                rtp_at(2, &[0x7c, 0x45, 2]),
                rtp_at(3, &[0x41])
            ]
        );
        // SPS/PPS in a STAP-A and the IDR's first fragment: both start "a keyframe", one is kept.
        c.push(rtp_at(4, &[0x78, 0, 3, 0x67, 1, 2]), true);
        c.push(rtp_at(4, &[0x7c, 0x85, 3]), true);
        assert_eq!(
            c.packets(),
            &[
                rtp_at(4, &[0x78, 0, 3, 0x67, 1, 2]),
                rtp_at(4, &[0x7c, 0x85, 3])
            ]
        );
    }

    #[test]
    fn a_gop_larger_than_the_bound_is_dropped_until_the_next_keyframe() {
        let mut c = GopCache::new(30);
        c.push(rtp_at(1, &[0x67]), true);
        c.push(rtp_at(2, &[0x41; 10]), false);
        assert!(c.packets().is_empty() && c.bytes() == 0);
        c.push(rtp_at(3, &[0x41; 10]), false);
        assert!(c.packets().is_empty());
        c.push(rtp_at(4, &[0x67]), true);
        assert_eq!(c.packets(), &[rtp_at(4, &[0x67])]);
    }
}
