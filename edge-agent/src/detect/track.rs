//! A small multi-object tracker for foreground blobs: nearest-neighbour association with a motion
//! prediction, and a confirmation rule that asks for consistent movement. Plain Rust, no OpenCV.
//!
//! A blob that flickers in place (noise, a swinging cloth, a dripping tap) never travels far from where
//! it started, or goes back and forth; a rodent crossing the floor travels steadily, at least about
//! one body length, in roughly one direction. Once a track is confirmed it stays confirmed until it
//! is lost, so a rodent that stops to sniff keeps its track.

use std::collections::VecDeque;

/// A foreground blob in working-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Blob {
    /// Centroid.
    pub cx: f32,
    pub cy: f32,
    /// Bounding box.
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
    /// Pixels.
    pub area: i32,
}

impl Blob {
    fn length(&self) -> f32 {
        self.w.max(self.h) as f32
    }
}

/// Tracker settings, in working-image pixels and frames.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TrackParams {
    /// Farthest a blob may be from a track's predicted position to continue it.
    pub gate_px: f32,
    /// Frames with a blob a track needs before it can be confirmed.
    pub min_hits: u32,
    /// Least distance between the oldest and the newest remembered position.
    pub min_travel_px: f32,
    /// ...and at least this many times the blob's typical length.
    pub min_travel_lengths: f32,
    /// Straight-line distance over the path walked, over the remembered positions (1 = straight).
    pub min_straightness: f32,
    /// Positions remembered per track.
    pub window: usize,
    /// A track that missed this many frames in a row is dropped.
    pub max_misses: u32,
    /// At most this many tracks at once (bounds the work on a noisy picture).
    pub max_tracks: usize,
}

#[derive(Debug, Clone)]
pub(super) struct Track {
    pub id: u64,
    /// Recent centroids, oldest first, at most `window`.
    path: VecDeque<(f32, f32)>,
    /// Recent blob lengths, same order.
    lengths: VecDeque<f32>,
    /// Velocity estimate, px per frame.
    vx: f32,
    vy: f32,
    pub hits: u32,
    pub misses: u32,
    pub confirmed: bool,
    /// The blob of the last hit.
    pub last: Blob,
    /// Straightness when last checked (for the confidence).
    pub straightness: f32,
}

impl Track {
    fn new(id: u64, b: Blob) -> Track {
        Track {
            id,
            path: VecDeque::from([(b.cx, b.cy)]),
            lengths: VecDeque::from([b.length()]),
            vx: 0.0,
            vy: 0.0,
            hits: 1,
            misses: 0,
            confirmed: false,
            last: b,
            straightness: 0.0,
        }
    }

    fn predicted(&self) -> (f32, f32) {
        let (x, y) = *self.path.back().expect("a track has a position");
        let k = (self.misses + 1) as f32;
        (x + self.vx * k, y + self.vy * k)
    }

    fn hit(&mut self, b: Blob, p: &TrackParams) {
        let (px, py) = *self.path.back().expect("a track has a position");
        let k = (self.misses + 1) as f32;
        let (dx, dy) = ((b.cx - px) / k, (b.cy - py) / k);
        if self.hits == 1 {
            (self.vx, self.vy) = (dx, dy);
        } else {
            self.vx = 0.5 * self.vx + 0.5 * dx;
            self.vy = 0.5 * self.vy + 0.5 * dy;
        }
        self.path.push_back((b.cx, b.cy));
        self.lengths.push_back(b.length());
        while self.path.len() > p.window {
            self.path.pop_front();
            self.lengths.pop_front();
        }
        self.hits += 1;
        self.misses = 0;
        self.last = b;
        if !self.confirmed && self.hits >= p.min_hits {
            self.confirmed = self.moves_consistently(p);
        }
    }

    /// The confirmation rule (see the module comment).
    fn moves_consistently(&mut self, p: &TrackParams) -> bool {
        let (x0, y0) = self.path[0];
        let (x1, y1) = *self.path.back().expect("a track has a position");
        let net = (x1 - x0).hypot(y1 - y0);
        let walked: f32 = self
            .path
            .iter()
            .zip(self.path.iter().skip(1))
            .map(|(a, b)| (b.0 - a.0).hypot(b.1 - a.1))
            .sum();
        self.straightness = if walked > 0.0 { net / walked } else { 0.0 };
        let mut lengths: Vec<f32> = self.lengths.iter().copied().collect();
        lengths.sort_by(f32::total_cmp);
        let typical = lengths[lengths.len() / 2];
        net >= p.min_travel_px.max(p.min_travel_lengths * typical)
            && self.straightness >= p.min_straightness
    }
}

#[derive(Debug)]
pub(super) struct Tracker {
    params: TrackParams,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(params: TrackParams) -> Tracker {
        Tracker {
            params,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Forgets every track (after the whole picture changed).
    pub fn clear(&mut self) {
        self.tracks.clear();
    }

    /// Feeds the blobs of one frame; returns the confirmed tracks that were seen in it.
    pub fn update(&mut self, blobs: &[Blob]) -> Vec<&Track> {
        let p = &self.params;
        let mut taken = vec![false; blobs.len()];
        // Older tracks choose first: they are the likelier continuation.
        self.tracks.sort_by_key(|t| std::cmp::Reverse(t.hits));
        for t in &mut self.tracks {
            let (px, py) = t.predicted();
            let gate = p.gate_px.max(t.last.length());
            let best = blobs
                .iter()
                .enumerate()
                .filter(|(i, _)| !taken[*i])
                .map(|(i, b)| (i, (b.cx - px).hypot(b.cy - py)))
                .filter(|(_, d)| *d <= gate)
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((i, _)) => {
                    taken[i] = true;
                    t.hit(blobs[i], p);
                }
                None => t.misses += 1,
            }
        }
        let max_misses = p.max_misses;
        self.tracks.retain(|t| t.misses <= max_misses);
        for (i, b) in blobs.iter().enumerate() {
            if !taken[i] && self.tracks.len() < self.params.max_tracks {
                self.tracks.push(Track::new(self.next_id, *b));
                self.next_id += 1;
            }
        }
        let mut seen: Vec<&Track> = self
            .tracks
            .iter()
            .filter(|t| t.confirmed && t.misses == 0)
            .collect();
        seen.sort_by_key(|t| t.id);
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> TrackParams {
        TrackParams {
            gate_px: 12.0,
            min_hits: 5,
            min_travel_px: 5.0,
            min_travel_lengths: 1.0,
            min_straightness: 0.6,
            window: 12,
            max_misses: 4,
            max_tracks: 16,
        }
    }

    fn blob(cx: f32, cy: f32) -> Blob {
        Blob {
            cx,
            cy,
            x: cx as i32 - 3,
            y: cy as i32 - 1,
            w: 6,
            h: 3,
            area: 14,
        }
    }

    #[test]
    fn a_blob_moving_steadily_is_confirmed_after_a_few_frames() {
        let mut t = Tracker::new(params());
        let mut confirmed_at = None;
        for i in 0..10 {
            let seen = t.update(&[blob(20.0 + 3.0 * i as f32, 50.0)]);
            if !seen.is_empty() && confirmed_at.is_none() {
                confirmed_at = Some(i);
            }
        }
        assert_eq!(confirmed_at, Some(4));
    }

    #[test]
    fn a_blob_that_flickers_in_place_is_never_confirmed() {
        let mut t = Tracker::new(params());
        for i in 0..40 {
            let jitter = if i % 2 == 0 { 1.0 } else { -1.0 };
            assert!(t.update(&[blob(50.0 + jitter, 50.0 - jitter)]).is_empty());
        }
    }

    #[test]
    fn a_blob_swinging_back_and_forth_is_never_confirmed() {
        let mut t = Tracker::new(params());
        for i in 0..60 {
            // A pendulum's centre moves less than its length: here 5 px peak to peak for a 6 px blob.
            let x = 80.0 + 2.5 * (i as f32 * std::f32::consts::TAU / 14.0).sin();
            assert!(t.update(&[blob(x, 40.0)]).is_empty(), "frame {i}");
        }
    }

    #[test]
    fn a_blob_zigzagging_on_the_spot_is_never_confirmed() {
        let mut t = Tracker::new(params());
        for i in 0..40 {
            let x = if i % 4 < 2 { 60.0 } else { 68.0 };
            let y = if i % 2 == 0 { 30.0 } else { 36.0 };
            assert!(t.update(&[blob(x, y)]).is_empty(), "frame {i}");
        }
    }

    #[test]
    fn a_confirmed_track_survives_a_pause_and_a_short_gap() {
        let mut t = Tracker::new(params());
        for i in 0..8 {
            t.update(&[blob(20.0 + 3.0 * i as f32, 50.0)]);
        }
        for _ in 0..10 {
            assert_eq!(t.update(&[blob(41.0, 50.0)]).len(), 1);
        }
        assert!(t.update(&[]).is_empty());
        assert_eq!(t.update(&[blob(44.0, 50.0)]).len(), 1);
    }
}
