//! Plain logic of the WHEP engine's packet path, no I/O: a relayed RTP packet's parts as str0m
//! takes them ([`Outgoing`]), 16-bit sequence numbers extended to str0m's 64-bit ones
//! ([`SeqExtender`]), and one copy of a payload shared by every viewer ([`SharedPayloads`]).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use crate::live::gop::rtp_payload;
use crate::live::rtp;

/// What str0m needs of a relayed RTP packet: it writes its own header (the viewer's SSRC, payload
/// type and sequence number) around the payload, which passes unchanged.
#[derive(Debug, PartialEq, Eq)]
pub struct Outgoing<'a> {
    /// The marker bit (the last packet of a video frame).
    pub marker: bool,
    /// The RTP timestamp, unchanged.
    pub timestamp: u32,
    /// The payload (no header, CSRCs, extension or padding).
    pub payload: &'a [u8],
}

impl<'a> Outgoing<'a> {
    /// The parts of `packet`, or None when it is not RTP.
    pub fn parse(packet: &'a [u8]) -> Option<Self> {
        let payload = rtp_payload(packet)?;
        Some(Self {
            marker: packet[1] & 0x80 != 0,
            timestamp: rtp::timestamp(packet),
            payload,
        })
    }
}

/// Extends a stream's 16-bit RTP sequence numbers to the 64-bit ones str0m counts with (it
/// derives the SRTP rollover counter from them): each number is placed nearest to the previous.
#[derive(Debug, Default)]
pub struct SeqExtender {
    last: Option<u64>,
}

impl SeqExtender {
    /// The extended value of `seq`.
    pub fn extend(&mut self, seq: u16) -> u64 {
        let extended = match self.last {
            None => u64::from(seq),
            Some(last) => {
                let delta = seq.wrapping_sub(last as u16) as i16;
                // never below zero: a packet "before" the first one stays in the first cycle
                last.saturating_add_signed(i64::from(delta))
            }
        };
        self.last = Some(self.last.map_or(extended, |l| l.max(extended)));
        extended
    }
}

/// How many recent payloads [`SharedPayloads`] remembers: more than a burst of one frame's
/// packets, which all viewers are sent within the same few loop turns.
const SHARED_PAYLOADS: usize = 256;

/// The payloads of recent packets, copied once for all viewers: every viewer is handed a clone of
/// the relay's same `Bytes`, so its address names the packet. str0m keeps each sent packet for
/// NACK; with the copy shared, a viewer's send buffer holds headers and a pointer per packet.
#[derive(Default)]
pub struct SharedPayloads {
    /// The packet (kept so its address cannot be reused while remembered) and its payload.
    recent: VecDeque<(Bytes, Arc<[u8]>)>,
}

impl SharedPayloads {
    /// The payload of `packet` (its `payload` range), copied on first sight.
    pub fn get(&mut self, packet: &Bytes, payload: &[u8]) -> Arc<[u8]> {
        let same = |b: &Bytes| b.as_ptr() == packet.as_ptr() && b.len() == packet.len();
        if let Some((_, shared)) = self.recent.iter().rev().find(|(b, _)| same(b)) {
            return shared.clone();
        }
        let shared: Arc<[u8]> = Arc::from(payload);
        if self.recent.len() == SHARED_PAYLOADS {
            self.recent.pop_front();
        }
        self.recent.push_back((packet.clone(), shared.clone()));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(marker: bool, csrcs: u8, extension_words: Option<u16>, padding: u8) -> Vec<u8> {
        let mut p = vec![0x80 | csrcs, 96 | if marker { 0x80 } else { 0 }, 0, 7];
        p.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        p.extend_from_slice(&[9; 4]);
        p.extend(std::iter::repeat_n(0xcc, 4 * usize::from(csrcs)));
        if let Some(words) = extension_words {
            p[0] |= 0x10;
            p.extend_from_slice(&[0xbe, 0xde]);
            p.extend_from_slice(&words.to_be_bytes());
            p.extend(std::iter::repeat_n(0xee, 4 * usize::from(words)));
        }
        p.extend_from_slice(b"payload");
        if padding > 0 {
            p[0] |= 0x20;
            p.extend(std::iter::repeat_n(0, usize::from(padding - 1)));
            p.push(padding);
        }
        p
    }

    #[test]
    fn the_payload_is_what_follows_csrcs_and_extension_without_padding() {
        for (marker, csrcs, ext, pad) in [(true, 0, None, 0), (false, 2, Some(1), 3)] {
            let p = packet(marker, csrcs, ext, pad);
            assert_eq!(
                Outgoing::parse(&p),
                Some(Outgoing {
                    marker,
                    timestamp: 0x0102_0304,
                    payload: b"payload"
                })
            );
        }
        assert_eq!(Outgoing::parse(b"short"), None);
        assert_eq!(Outgoing::parse(&[0u8; 20]), None, "not version 2");
    }

    #[test]
    fn sequence_numbers_extend_across_wraps_and_tolerate_reordering() {
        let mut s = SeqExtender::default();
        assert_eq!(s.extend(65_534), 65_534);
        assert_eq!(s.extend(65_535), 65_535);
        assert_eq!(s.extend(0), 65_536);
        assert_eq!(s.extend(65_535), 65_535, "a late packet stays in its cycle");
        assert_eq!(s.extend(1), 65_537);
        let mut s = SeqExtender::default();
        assert_eq!(s.extend(3), 3);
        assert_eq!(s.extend(65_535), 0, "never below the first cycle");
    }

    #[test]
    fn viewers_of_the_same_packet_share_one_copy() {
        let mut shared = SharedPayloads::default();
        let a = Bytes::from(packet(true, 0, None, 0));
        let b = Bytes::from(packet(true, 0, None, 0));
        let pa = Outgoing::parse(&a).unwrap().payload;
        let first = shared.get(&a.clone(), pa);
        let again = shared.get(&a, pa);
        assert!(
            Arc::ptr_eq(&first, &again),
            "the relay's same bytes: one copy"
        );
        let other = shared.get(&b, Outgoing::parse(&b).unwrap().payload);
        assert!(
            !Arc::ptr_eq(&first, &other),
            "equal content, another packet"
        );
        assert_eq!(&*other, b"payload");
    }
}
