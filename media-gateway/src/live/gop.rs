//! The GOP cache: the RTP packets of one stream since its last keyframe, so that a new viewer starts
//! decoding at once instead of waiting up to a whole GOP. Plain data, no I/O.

use bytes::Bytes;

/// Whether an RTP packet carrying H.264 (RFC 6184) begins a keyframe: its first NAL unit is an SPS
/// (the ingest's `h264parse config-interval=-1` puts SPS and PPS before every IDR), directly, as the
/// first unit of a STAP-A, or as the start of an FU-A; or it starts an IDR slice without one.
pub fn starts_keyframe(rtp: &[u8]) -> bool {
    let Some(payload) = rtp_payload(rtp) else {
        return false;
    };
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        7 => true,
        24 => payload.get(3).is_some_and(|h| h & 0x1f == 7),
        28 => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && matches!(fu & 0x1f, 5 | 7)),
        _ => false,
    }
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

/// Packets since the last keyframe, bounded in bytes.
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

    /// Adds the next packet. A keyframe start empties the cache first; before the first keyframe,
    /// and after a GOP outgrew the bound, nothing is kept until the next keyframe.
    pub fn push(&mut self, packet: Bytes, keyframe_start: bool) {
        if keyframe_start {
            self.clear();
            self.keyed = true;
        }
        if !self.keyed {
            return;
        }
        if self.bytes + packet.len() > self.max_bytes {
            self.clear();
            return;
        }
        self.bytes += packet.len();
        self.packets.push(packet);
    }

    /// Empties the cache; it fills again from the next keyframe.
    pub fn clear(&mut self) {
        self.packets.clear();
        self.bytes = 0;
        self.keyed = false;
    }

    /// The cached packets, oldest first: a keyframe and what followed it, or nothing.
    pub fn packets(&self) -> &[Bytes] {
        &self.packets
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
        let mut p = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(payload);
        Bytes::from(p)
    }

    #[test]
    fn an_sps_a_stap_a_with_an_sps_or_the_start_of_a_fragmented_idr_begins_a_keyframe() {
        assert!(starts_keyframe(&rtp(&[0x67, 1, 2])));
        assert!(starts_keyframe(&rtp(&[0x78, 0, 3, 0x67, 1, 2])));
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
        c.push(rtp(&[0x41]), false);
        assert!(c.packets().is_empty(), "nothing before the first keyframe");
        c.push(rtp(&[0x67]), true);
        c.push(rtp(&[0x41]), false);
        c.push(rtp(&[0x67, 7]), true);
        c.push(rtp(&[0x41, 8]), false);
        assert_eq!(c.packets(), &[rtp(&[0x67, 7]), rtp(&[0x41, 8])]);
    }

    #[test]
    fn a_gop_larger_than_the_bound_is_dropped_until_the_next_keyframe() {
        let mut c = GopCache::new(30);
        c.push(rtp(&[0x67]), true);
        c.push(rtp(&[0x41; 10]), false);
        c.push(rtp(&[0x41; 10]), false);
        assert!(c.packets().is_empty() && c.bytes() == 0);
        c.push(rtp(&[0x41]), false);
        assert!(c.packets().is_empty());
        c.push(rtp(&[0x67]), true);
        assert_eq!(c.packets().len(), 1);
    }
}
