//! The video codecs a camera stream may carry (H.264, H.265): their RTP names, the GStreamer
//! elements that depayload, parse and re-payload them unchanged, and where a keyframe begins.
//! Plain data, no I/O.

use super::gop::rtp_payload;

/// A camera stream's video codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoCodec {
    /// H.264 (RFC 6184): every browser plays it.
    #[default]
    H264,
    /// H.265 (RFC 7798): relayed as is to viewers that offer it, transcoded to H.264 for the rest.
    H265,
}

impl VideoCodec {
    /// The codec of an RTP `encoding-name` (`H264`, `H265`), case-insensitive; None for others.
    pub fn from_encoding_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "H264" => Some(Self::H264),
            "H265" => Some(Self::H265),
            _ => None,
        }
    }

    /// The RTP encoding name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::H264 => "H264",
            Self::H265 => "H265",
        }
    }

    /// The depayloader, parser and payloader element names.
    pub fn elements(self) -> [&'static str; 3] {
        match self {
            Self::H264 => ["rtph264depay", "h264parse", "rtph264pay"],
            Self::H265 => ["rtph265depay", "h265parse", "rtph265pay"],
        }
    }

    /// Whether an RTP packet of this codec begins a keyframe (see [`super::gop::starts_keyframe`]
    /// for H.264; for H.265 the parser puts VPS, SPS and PPS before every IRAP picture).
    pub fn starts_keyframe(self, rtp: &[u8]) -> bool {
        match self {
            Self::H264 => super::gop::starts_keyframe(rtp),
            Self::H265 => starts_keyframe_h265(rtp),
        }
    }
}

/// Whether an RTP packet carrying H.265 (RFC 7798) begins a keyframe: it is a VPS, directly or
/// inside an aggregation packet, or it starts an IRAP picture (types 16–21) directly or as the first
/// fragment of one.
pub fn starts_keyframe_h265(rtp: &[u8]) -> bool {
    let Some(payload) = rtp_payload(rtp) else {
        return false;
    };
    let nal_type = |b: u8| (b >> 1) & 0x3f;
    let Some(&first) = payload.first() else {
        return false;
    };
    match nal_type(first) {
        32 | 16..=21 => true,
        // Aggregation packet: 2-byte header, then (2-byte size, unit) repeated.
        48 => super::gop::aggregated_units(payload.get(2..).unwrap_or_default())
            .any(|nal| nal.first().is_some_and(|&h| nal_type(h) == 32)),
        // Fragmentation unit: 2-byte header, then the FU header (S bit, type).
        49 => payload
            .get(2)
            .is_some_and(|&fu| fu & 0x80 != 0 && matches!(fu & 0x3f, 16..=21 | 32)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn an_h265_vps_an_aggregate_starting_with_one_or_an_irap_start_begins_a_keyframe() {
        let h = |t: u8| t << 1;
        assert!(starts_keyframe_h265(&rtp(&[h(32), 1, 9])), "VPS");
        assert!(starts_keyframe_h265(&rtp(&[h(19), 1, 9])), "IDR_W_RADL");
        assert!(
            starts_keyframe_h265(&rtp(&[h(48), 1, 0, 3, h(32), 1, 9])),
            "AP with VPS"
        );
        assert!(
            starts_keyframe_h265(&rtp(&[h(49), 1, 0x80 | 19, 9])),
            "first FU of an IDR"
        );
        assert!(!starts_keyframe_h265(&rtp(&[h(49), 1, 19, 9])), "middle FU");
        assert!(
            !starts_keyframe_h265(&rtp(&[h(1), 1, 9])),
            "a trailing picture"
        );
        assert!(!starts_keyframe_h265(&[0x80, 96]), "too short");
    }

    #[test]
    fn codecs_are_known_by_their_rtp_names() {
        assert_eq!(
            VideoCodec::from_encoding_name("h265"),
            Some(VideoCodec::H265)
        );
        assert_eq!(
            VideoCodec::from_encoding_name("H264"),
            Some(VideoCodec::H264)
        );
        assert_eq!(VideoCodec::from_encoding_name("JPEG"), None);
    }
}
