//! `recheck`: watch a camera for `forSecs` through the detectors already running on it and say
//! whether the rule was kept (DESIGN §4: a rectification check).
//!
//! The watch listens to the detection worker's [`Sighting`]s of that camera and runs them through
//! a fresh episode tracker with the kind's default rules, so "not kept" means exactly what an alarm
//! means — the violation persisted long enough to open an episode — including one that was already
//! going on when the watch began. Answers:
//! - `ok` with a detail: kept for the whole watch;
//! - `notKept` as soon as an episode opens (no need to wait for the end);
//! - `cameraOffline`: the camera sent no frames for a long part of the watch, so it proves nothing;
//! - `unsupported`: the camera's detectors do not look for that kind.

use super::admit::{error, ok};
use crate::episode::Episodes;
use crate::watch::Sighting;
use bl_proto::command::{Outcome, Recheck, codes};
use bl_proto::event::{EpisodePhase, ViolationKind};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// A gap without frames longer than this (or than a fifth of the watch, if longer) makes the
/// watch inconclusive.
const MAX_GAP_MS: i64 = 10_000;

/// Watches `cmd.camera_id` as the command asks; `stop` ends it early (the agent is stopping).
pub async fn run(
    sightings: &broadcast::Sender<Sighting>,
    cmd: &Recheck,
    stop: &CancellationToken,
) -> Outcome {
    let mut rx = sightings.subscribe();
    let started_ms = chrono::Utc::now().timestamp_millis();
    let mut watch = Watch::new(cmd.kind, started_ms);
    let until = tokio::time::Instant::now() + Duration::from_secs(cmd.for_secs.into());
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break,
            _ = stop.cancelled() => return error(codes::INTERNAL, "the agent stopped during the watch"),
            sighting = rx.recv() => match sighting {
                Ok(s) if s.camera == cmd.camera_id => {
                    watch.observe(&s);
                    if watch.broken_at.is_some() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(camera = %cmd.camera_id, skipped = n, "re-check fell behind detection; some frames were not looked at");
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return error(codes::INTERNAL, "detection stopped during the watch");
                }
            },
        }
    }
    watch.outcome(chrono::Utc::now().timestamp_millis())
}

/// The plain state of one watch: frames in (with their times), a verdict out.
#[derive(Debug)]
pub struct Watch {
    kind: ViolationKind,
    episodes: Episodes,
    started_ms: i64,
    frames: u64,
    /// Frames of a camera whose detectors do not look for `kind`.
    unwatched: u64,
    last_ms: Option<i64>,
    longest_gap_ms: i64,
    /// When an episode of `kind` opened, with its confidence.
    pub broken_at: Option<(i64, f32)>,
}

impl Watch {
    pub fn new(kind: ViolationKind, started_ms: i64) -> Watch {
        Watch {
            kind,
            episodes: Episodes::new(),
            started_ms,
            frames: 0,
            unwatched: 0,
            last_ms: None,
            longest_gap_ms: 0,
            broken_at: None,
        }
    }

    pub fn observe(&mut self, s: &Sighting) {
        if !s.watching.contains(&self.kind) {
            self.unwatched += 1;
            return;
        }
        let previous = self.last_ms.unwrap_or(self.started_ms);
        self.longest_gap_ms = self.longest_gap_ms.max(s.at_ms - previous);
        self.last_ms = Some(s.at_ms);
        self.frames += 1;
        let mine: Vec<_> = s
            .detections
            .iter()
            .filter(|d| d.kind == self.kind)
            .cloned()
            .collect();
        for change in self.episodes.observe(s.at_ms.max(0) as u64, &mine) {
            if change.phase == EpisodePhase::Start && self.broken_at.is_none() {
                self.broken_at = Some((change.at_ms as i64, change.detection.confidence));
            }
        }
    }

    /// The answer at `now_ms`.
    pub fn outcome(&self, now_ms: i64) -> Outcome {
        let kind = kind_name(self.kind);
        if let Some((at_ms, confidence)) = self.broken_at {
            let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
            return error(
                codes::NOT_KEPT,
                format!(
                    "{kind} seen at {} (confidence {confidence:.2}), {} s into the watch",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    (at_ms - self.started_ms).max(0) / 1000
                ),
            );
        }
        if self.frames == 0 && self.unwatched > 0 {
            return error(
                codes::UNSUPPORTED,
                format!("this camera's detectors do not look for {kind}"),
            );
        }
        let secs = (now_ms - self.started_ms).max(0) / 1000;
        if self.frames == 0 {
            return error(
                codes::CAMERA_OFFLINE,
                format!("no frames from the camera in the {secs} s watch"),
            );
        }
        let tail = now_ms - self.last_ms.unwrap_or(self.started_ms);
        let gap = self.longest_gap_ms.max(tail);
        let allowed = MAX_GAP_MS.max((now_ms - self.started_ms) / 5);
        if gap > allowed {
            return error(
                codes::CAMERA_OFFLINE,
                format!(
                    "the camera sent nothing for {} s of the {secs} s watch",
                    gap / 1000
                ),
            );
        }
        ok(format!("no {kind} in {} frames over {secs} s", self.frames))
    }
}

/// The kind as the wire spells it (`noChefHat`).
fn kind_name(kind: ViolationKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Detection;
    use bl_proto::CameraId;

    const T0: i64 = 1_764_000_000_000;

    fn sighting(at_ms: i64, kinds: &[ViolationKind]) -> Sighting {
        Sighting {
            camera: CameraId::new("cam-1").unwrap(),
            at_ms,
            watching: vec![ViolationKind::Rodent],
            detections: kinds
                .iter()
                .map(|&kind| Detection {
                    kind,
                    boxes: Vec::new(),
                    confidence: 0.8,
                })
                .collect(),
        }
    }

    fn code(o: &Outcome) -> &str {
        match o {
            Outcome::Ok { .. } => "ok",
            Outcome::Error { code, .. } => code,
        }
    }

    #[test]
    fn a_quiet_camera_for_the_whole_watch_keeps_the_rule() {
        let mut w = Watch::new(ViolationKind::Rodent, T0);
        for i in 0..150 {
            w.observe(&sighting(T0 + i * 200, &[]));
        }
        let o = w.outcome(T0 + 30_000);
        assert_eq!(code(&o), "ok", "{o:?}");
    }

    #[test]
    fn the_kind_seen_during_the_watch_breaks_the_rule_at_once_and_others_do_not() {
        let mut w = Watch::new(ViolationKind::Rodent, T0);
        w.observe(&sighting(T0 + 200, &[ViolationKind::NoChefHat]));
        assert!(w.broken_at.is_none());
        w.observe(&sighting(T0 + 400, &[ViolationKind::Rodent]));
        assert!(w.broken_at.is_some());
        assert_eq!(code(&w.outcome(T0 + 500)), codes::NOT_KEPT);
    }

    #[test]
    fn a_camera_that_goes_quiet_proves_nothing() {
        let mut w = Watch::new(ViolationKind::Rodent, T0);
        w.observe(&sighting(T0 + 200, &[]));
        assert_eq!(code(&w.outcome(T0 + 60_000)), codes::CAMERA_OFFLINE);
        let empty = Watch::new(ViolationKind::Rodent, T0);
        assert_eq!(code(&empty.outcome(T0 + 5_000)), codes::CAMERA_OFFLINE);
    }

    #[test]
    fn a_kind_the_camera_does_not_look_for_is_unsupported_not_kept() {
        let mut w = Watch::new(ViolationKind::NoMask, T0);
        w.observe(&sighting(T0 + 200, &[]));
        assert_eq!(code(&w.outcome(T0 + 5_000)), codes::UNSUPPORTED);
    }
}
