//! A camera's health from what its pipeline delivers: online, fps, bitrate, last frame, and the
//! problems an operator must hear about (offline, frozen image, covered lens). Plain logic over
//! timestamps the caller passes in, so it is tested without a camera or a clock.

use bl_proto::CameraId;
use bl_proto::event::CameraEventKind;
use bl_proto::state::{CameraHealth, CameraProblem};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;

/// When a condition becomes a problem.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// No frame for this long: offline. Default 10 s.
    pub offline_after_ms: i64,
    /// Identical frames for this long: frozen. Default 30 s.
    pub frozen_after_ms: i64,
    /// A featureless image (lens covered, black, blinded) for this long: covered. Default 30 s.
    pub covered_after_ms: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            offline_after_ms: 10_000,
            frozen_after_ms: 30_000,
            covered_after_ms: 30_000,
        }
    }
}

/// Frames closer than this mean absolute difference (0–255 grey levels) count as identical: a live
/// sensor always differs by more, a frozen encoder repeats its picture exactly.
const FROZEN_DIFF: f64 = 0.05;
/// A grey-level standard deviation below this is a featureless image.
const COVERED_STDDEV: f64 = 4.0;
const RATE_WINDOW_MS: i64 = 5_000;

#[derive(Debug, Clone)]
pub struct HealthTracker {
    limits: Thresholds,
    online: bool,
    problem: Option<CameraProblem>,
    last_frame_ms: Option<i64>,
    frame_times: VecDeque<i64>,
    byte_counts: VecDeque<(i64, u64)>,
    previous: Vec<u8>,
    still_since: Option<i64>,
    blank_since: Option<i64>,
}

impl HealthTracker {
    pub fn new(limits: Thresholds) -> Self {
        Self {
            limits,
            online: false,
            problem: None,
            last_frame_ms: None,
            frame_times: VecDeque::new(),
            byte_counts: VecDeque::new(),
            previous: Vec::new(),
            still_since: None,
            blank_since: None,
        }
    }

    /// Encoded bytes received from the camera (for the bitrate).
    pub fn on_bytes(&mut self, now_ms: i64, bytes: u64) {
        self.byte_counts.push_back((now_ms, bytes));
        trim(&mut self.byte_counts, now_ms, |(t, _)| *t);
    }

    /// A decoded grey frame; returns the events this frame causes, in order.
    pub fn on_frame(&mut self, now_ms: i64, luma: &[u8]) -> Vec<CameraEventKind> {
        let mut events = Vec::new();
        if !self.online {
            self.online = true;
            self.problem = None;
            events.push(CameraEventKind::Online);
        }
        self.last_frame_ms = Some(now_ms);
        self.frame_times.push_back(now_ms);
        trim(&mut self.frame_times, now_ms, |t| *t);

        let still =
            self.previous.len() == luma.len() && mean_abs_diff(&self.previous, luma) < FROZEN_DIFF;
        self.still_since = if still {
            self.still_since.or(Some(now_ms))
        } else {
            None
        };
        self.blank_since = if stddev(luma) < COVERED_STDDEV {
            self.blank_since.or(Some(now_ms))
        } else {
            None
        };
        self.previous.clear();
        self.previous.extend_from_slice(luma);

        let lasted = |since: Option<i64>, limit: i64| since.is_some_and(|s| now_ms - s >= limit);
        let now_problem = if lasted(self.blank_since, self.limits.covered_after_ms) {
            Some(CameraProblem::Covered)
        } else if lasted(self.still_since, self.limits.frozen_after_ms) {
            Some(CameraProblem::Frozen)
        } else {
            None
        };
        match (self.problem, now_problem) {
            (None, Some(p)) => events.push(event_for(p)),
            (Some(_), None) => events.push(CameraEventKind::Online), // back to normal
            (Some(a), Some(b)) if a != b => events.push(event_for(b)),
            _ => {}
        }
        self.problem = now_problem;
        events
    }

    /// Time passes without frames (called about once a second).
    pub fn on_tick(&mut self, now_ms: i64) -> Option<CameraEventKind> {
        let silent = self
            .last_frame_ms
            .is_none_or(|t| now_ms - t >= self.limits.offline_after_ms);
        if self.online && silent {
            return self.go_offline();
        }
        None
    }

    /// The pipeline failed (refused, unreachable, error from the stream).
    pub fn on_failure(&mut self) -> Option<CameraEventKind> {
        if self.online || self.problem.is_none() {
            return self.go_offline();
        }
        None
    }

    fn go_offline(&mut self) -> Option<CameraEventKind> {
        self.online = false;
        self.problem = Some(CameraProblem::Offline);
        self.frame_times.clear();
        self.byte_counts.clear();
        self.still_since = None;
        self.blank_since = None;
        Some(CameraEventKind::Offline)
    }

    /// What goes into the retained state.
    pub fn snapshot(&self, camera: &CameraId, now_ms: i64) -> CameraHealth {
        let window_ms = RATE_WINDOW_MS
            .min(now_ms - self.frame_times.front().copied().unwrap_or(now_ms))
            .max(1);
        let fps = if self.frame_times.len() > 1 {
            (self.frame_times.len() - 1) as f32 * 1000.0 / window_ms as f32
        } else {
            0.0
        };
        let bytes: u64 = self.byte_counts.iter().map(|(_, b)| b).sum();
        CameraHealth {
            camera_id: camera.clone(),
            online: self.online,
            fps,
            bitrate_kbps: (bytes * 8 / RATE_WINDOW_MS as u64) as u32,
            last_frame_at: self
                .last_frame_ms
                .and_then(DateTime::<Utc>::from_timestamp_millis),
            problem: self.problem,
        }
    }
}

fn event_for(problem: CameraProblem) -> CameraEventKind {
    match problem {
        CameraProblem::Frozen => CameraEventKind::Frozen,
        CameraProblem::Covered => CameraEventKind::Covered,
        CameraProblem::SceneChanged => CameraEventKind::SceneChanged,
        _ => CameraEventKind::Offline,
    }
}

fn trim<T>(queue: &mut VecDeque<T>, now_ms: i64, at: impl Fn(&T) -> i64) {
    while queue
        .front()
        .is_some_and(|x| now_ms - at(x) > RATE_WINDOW_MS)
    {
        queue.pop_front();
    }
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    let sum: u64 = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as u64).sum();
    sum as f64 / a.len().max(1) as f64
}

fn stddev(luma: &[u8]) -> f64 {
    let n = luma.len().max(1) as f64;
    let mean = luma.iter().map(|&v| v as f64).sum::<f64>() / n;
    (luma.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use CameraEventKind::*;

    fn limits() -> Thresholds {
        Thresholds {
            offline_after_ms: 3_000,
            frozen_after_ms: 5_000,
            covered_after_ms: 5_000,
        }
    }

    /// A textured frame that changes with `n`.
    fn live(n: u8) -> Vec<u8> {
        (0..64u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(n))
            .collect()
    }

    #[test]
    fn the_first_frame_brings_a_camera_online_and_silence_takes_it_offline() {
        let mut h = HealthTracker::new(limits());
        assert_eq!(h.on_frame(0, &live(0)), vec![Online]);
        assert_eq!(h.on_frame(200, &live(1)), vec![]);
        assert_eq!(h.on_tick(2_000), None);
        assert_eq!(h.on_tick(3_200), Some(Offline));
        assert_eq!(h.on_tick(9_000), None, "offline is reported once");
        assert_eq!(h.on_frame(9_100, &live(2)), vec![Online]);
    }

    #[test]
    fn a_camera_that_never_answers_is_reported_offline_once() {
        let mut h = HealthTracker::new(limits());
        assert_eq!(h.on_failure(), Some(Offline));
        assert_eq!(h.on_failure(), None);
        assert_eq!(h.on_frame(1, &live(0)), vec![Online]);
        assert_eq!(h.on_failure(), Some(Offline));
    }

    #[test]
    fn a_repeated_picture_is_frozen_after_the_threshold_and_clears_when_it_moves() {
        let mut h = HealthTracker::new(limits());
        h.on_frame(0, &live(0));
        let mut events = Vec::new();
        for t in (200..=6_000).step_by(200) {
            events.extend(h.on_frame(t, &live(0)));
        }
        assert_eq!(events, vec![Frozen]);
        assert_eq!(
            h.snapshot(&CameraId::new("c").unwrap(), 6_000).problem,
            Some(CameraProblem::Frozen)
        );
        assert_eq!(h.on_frame(6_200, &live(9)), vec![Online]);
    }

    #[test]
    fn a_black_lens_is_covered_not_frozen() {
        let mut h = HealthTracker::new(limits());
        h.on_frame(0, &live(0));
        let mut events = Vec::new();
        for (i, t) in (200..=6_000).step_by(200).enumerate() {
            // a covered lens still shows a little noise, so it is not frozen
            let frame: Vec<u8> = (0..64).map(|p| 10 + ((p + i) % 3) as u8).collect();
            events.extend(h.on_frame(t, &frame));
        }
        assert_eq!(events, vec![Covered]);
    }

    #[test]
    fn fps_and_bitrate_come_from_the_last_seconds() {
        let mut h = HealthTracker::new(limits());
        for i in 0..=25 {
            h.on_frame(i * 200, &live(i as u8));
            h.on_bytes(i * 200, 25_000);
        }
        let s = h.snapshot(&CameraId::new("c").unwrap(), 5_000);
        assert!((s.fps - 5.0).abs() < 0.3, "{}", s.fps);
        assert!(
            s.bitrate_kbps > 900 && s.bitrate_kbps < 1100,
            "{}",
            s.bitrate_kbps
        );
        assert!(s.online && s.problem.is_none());
    }
}
