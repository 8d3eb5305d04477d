//! The pre-roll: the last seconds of a camera's encoded video, kept in memory so that a clip can
//! start before the moment something was seen. Plain data, no GStreamer: ingest pushes access units
//! in, clips and snapshots copy ranges out.
//!
//! **Always GOP-aligned and bounded.** The buffer starts at a keyframe (units before the first
//! keyframe cannot be decoded and are not kept) and whole GOPs leave from the front when it holds
//! more bytes than its bound or older video than its time span. A single GOP larger than the bound
//! is dropped whole and the buffer waits for the next keyframe: the bound is never exceeded.

use std::collections::VecDeque;
use std::sync::Arc;

/// One encoded frame (H.264/H.265 access unit, Annex B byte-stream with in-band parameter sets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Wall-clock arrival time, UTC milliseconds (the same clock as detection frames).
    pub at_ms: i64,
    /// The stream's presentation time, nanoseconds, if it had one.
    pub pts_ns: Option<u64>,
    /// True for a keyframe (a decoder can start here).
    pub keyframe: bool,
    /// The bytes, shared between the buffer and the clips that copied them.
    pub data: Arc<[u8]>,
}

impl Unit {
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// The bounds of one camera's pre-roll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Most bytes held.
    pub max_bytes: usize,
    /// Oldest video kept, relative to the newest unit, milliseconds (the pre-roll plus one GOP is
    /// enough: older video can never be asked for).
    pub max_age_ms: i64,
}

/// One camera's pre-roll buffer.
#[derive(Debug)]
pub struct PreRoll {
    bounds: Bounds,
    units: VecDeque<Unit>,
    bytes: usize,
    /// A GOP was too big and dropped: skip units until the next keyframe.
    waiting_for_keyframe: bool,
}

impl PreRoll {
    pub fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            units: VecDeque::new(),
            bytes: 0,
            waiting_for_keyframe: true,
        }
    }

    pub fn set_bounds(&mut self, bounds: Bounds) {
        self.bounds = bounds;
        self.trim();
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Units held, oldest first.
    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.units.iter()
    }

    /// Adds the next unit of the stream.
    pub fn push(&mut self, unit: Unit) {
        if unit.keyframe {
            self.waiting_for_keyframe = false;
        }
        if self.waiting_for_keyframe {
            return;
        }
        self.bytes += unit.len();
        self.units.push_back(unit);
        self.trim();
    }

    /// Forgets everything (the stream was rebuilt: what comes next may not continue it).
    pub fn clear(&mut self) {
        self.units.clear();
        self.bytes = 0;
        self.waiting_for_keyframe = true;
    }

    /// Drops whole GOPs from the front until both bounds hold.
    fn trim(&mut self) {
        let newest = self.units.back().map_or(0, |u| u.at_ms);
        while self.bytes > self.bounds.max_bytes
            || self
                .second_gop_start()
                .is_some_and(|i| newest - self.units[i].at_ms >= self.bounds.max_age_ms)
        {
            match self.second_gop_start() {
                Some(end) => self.drop_front(end),
                None => {
                    // One GOP alone is over the bound: drop it and start again at the next keyframe.
                    self.clear();
                    break;
                }
            }
        }
    }

    /// Where the second GOP starts: the oldest GOP can go when even the one after it is old enough.
    fn second_gop_start(&self) -> Option<usize> {
        self.units
            .iter()
            .skip(1)
            .position(|u| u.keyframe)
            .map(|i| i + 1)
    }

    fn drop_front(&mut self, count: usize) {
        for unit in self.units.drain(..count) {
            self.bytes -= unit.len();
        }
    }

    /// The units from the last keyframe at or before `from_ms` (or the oldest keyframe, if the
    /// buffer does not reach back that far) to the newest, so that a decoder can start at the first.
    pub fn since(&self, from_ms: i64) -> Vec<Unit> {
        let start = self
            .units
            .iter()
            .rposition(|u| u.keyframe && u.at_ms <= from_ms)
            .unwrap_or(0);
        self.units.range(start..).cloned().collect()
    }

    /// The units a decoder needs to show the frame at `at_ms`: from the last keyframe at or before
    /// it to the last unit at or before it (at least that keyframe). Empty when nothing is held.
    pub fn frame_at(&self, at_ms: i64) -> Vec<Unit> {
        let mut units = self.since(at_ms);
        let keep = units
            .iter()
            .position(|u| u.at_ms > at_ms)
            .unwrap_or(units.len())
            .max(1);
        units.truncate(keep);
        units
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10 fps stream with a keyframe every `gop` frames, `size` bytes per frame.
    fn unit(i: i64, gop: i64, size: usize) -> Unit {
        Unit {
            at_ms: i * 100,
            pts_ns: Some(i as u64 * 100_000_000),
            keyframe: i % gop == 0,
            data: vec![i as u8; size].into(),
        }
    }

    fn times(units: &[Unit]) -> Vec<i64> {
        units.iter().map(|u| u.at_ms).collect()
    }

    #[test]
    fn the_buffer_always_starts_at_a_keyframe_and_never_holds_more_than_its_bound() {
        let mut p = PreRoll::new(Bounds {
            max_bytes: 2_500,
            max_age_ms: i64::MAX,
        });
        for i in 3..200 {
            p.push(unit(i, 10, 100));
            assert!(p.bytes() <= 2_500, "{} bytes after unit {i}", p.bytes());
            if let Some(first) = p.units().next() {
                assert!(first.keyframe, "unit {i}: starts at {}", first.at_ms);
            } else {
                assert!(i < 10, "nothing held after the first keyframe (unit {i})");
            }
        }
        // 25 frames fit; whole GOPs of 10 leave, so 20 to 25 are held.
        let held = p.units().count();
        assert!((20..=25).contains(&held), "{held}");
        assert_eq!(p.bytes(), held * 100);
    }

    #[test]
    fn units_before_the_first_keyframe_are_not_kept() {
        let mut p = PreRoll::new(Bounds {
            max_bytes: 1 << 20,
            max_age_ms: i64::MAX,
        });
        for i in 5..12 {
            p.push(unit(i, 10, 10));
        }
        assert_eq!(times(&p.since(0)), vec![1000, 1100]);
    }

    #[test]
    fn video_older_than_the_span_leaves_a_whole_gop_at_a_time() {
        let mut p = PreRoll::new(Bounds {
            max_bytes: 1 << 20,
            max_age_ms: 3_000,
        });
        for i in 0..=100 {
            p.push(unit(i, 10, 10));
        }
        // Newest at 10 s. The GOP from 7 s is old enough to go only once the one from 8 s is 3 s
        // old too, so the buffer reaches back to 7 s or 8 s: never less than the span minus a GOP.
        let first = p.units().next().unwrap().at_ms;
        assert!([7_000, 8_000].contains(&first), "{first}");
    }

    #[test]
    fn a_gop_larger_than_the_bound_is_dropped_and_the_buffer_restarts_at_the_next_keyframe() {
        let mut p = PreRoll::new(Bounds {
            max_bytes: 500,
            max_age_ms: i64::MAX,
        });
        for i in 0..8 {
            p.push(unit(i, 10, 100)); // 8 frames of one GOP: 800 bytes
            assert!(p.bytes() <= 500);
        }
        assert_eq!(p.units().count(), 0);
        for i in 8..12 {
            p.push(unit(i, 10, 100));
        }
        assert_eq!(times(&p.since(0)), vec![1000, 1100]);
    }

    #[test]
    fn a_clip_starts_at_the_keyframe_before_the_asked_time() {
        let mut p = PreRoll::new(Bounds {
            max_bytes: 1 << 20,
            max_age_ms: i64::MAX,
        });
        for i in 0..50 {
            p.push(unit(i, 10, 10));
        }
        let clip = p.since(2_500);
        assert_eq!(clip.first().unwrap().at_ms, 2_000);
        assert!(clip.first().unwrap().keyframe);
        assert_eq!(clip.last().unwrap().at_ms, 4_900);
        // Asking for more than is held gives all of it, from its first keyframe.
        assert_eq!(p.since(-10_000).first().unwrap().at_ms, 0);
    }

    #[test]
    fn a_snapshot_decodes_from_its_keyframe_up_to_the_frame_seen() {
        let mut p = PreRoll::new(Bounds {
            max_bytes: 1 << 20,
            max_age_ms: i64::MAX,
        });
        for i in 0..50 {
            p.push(unit(i, 10, 10));
        }
        assert_eq!(times(&p.frame_at(2_350)), vec![2_000, 2_100, 2_200, 2_300]);
        assert_eq!(times(&p.frame_at(3_000)), vec![3_000]);
        assert!(PreRoll::new(p.bounds).frame_at(0).is_empty());
    }
}
