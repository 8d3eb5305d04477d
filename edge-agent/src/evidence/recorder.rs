//! One camera's evidence recorder: the pre-roll plus the clips being collected for open episodes.
//! Ingest pushes every encoded unit in (from GStreamer's streaming thread: each push is a short
//! lock and a copy of an `Arc`, never I/O); the evidence worker opens a clip when an episode starts,
//! closes it when the episode ends, and takes the finished ones once their post-roll has arrived.

use super::preroll::{Bounds, PreRoll, Unit};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The video codec of a camera's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

impl Codec {
    /// From the caps name GStreamer gives the parsed stream (`video/x-h264`, `video/x-h265`).
    pub fn from_caps_name(name: &str) -> Option<Codec> {
        match name {
            "video/x-h264" => Some(Codec::H264),
            "video/x-h265" => Some(Codec::H265),
            _ => None,
        }
    }
}

/// The pre-roll keeps this much video beyond the pre-roll itself: a clip starts at the keyframe
/// before its pre-roll, up to one GOP earlier (cameras send one every 1 to 4 s).
const GOP_SLACK_MS: i64 = 5_000;

/// How long clips reach before the start and after the end of an episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolls {
    pub pre_ms: i64,
    pub post_ms: i64,
}

/// A clip being collected.
#[derive(Debug)]
struct OpenClip {
    episode: Uuid,
    units: Vec<Unit>,
    bytes: usize,
    /// Set at the episode's end: the clip is complete once a unit at or after this time arrived.
    until_ms: Option<i64>,
    /// The clip hit `max_clip_bytes`: it takes nothing more and is cut short.
    full: bool,
}

/// A complete clip, ready to be remuxed.
#[derive(Debug, Clone)]
pub struct FinishedClip {
    pub episode: Uuid,
    /// `None` when no video ever arrived (then `units` is empty too).
    pub codec: Option<Codec>,
    pub units: Vec<Unit>,
    /// The clip was cut at `max_clip_bytes`.
    pub truncated: bool,
}

#[derive(Debug)]
struct State {
    preroll: PreRoll,
    codec: Option<Codec>,
    open: Vec<OpenClip>,
    finished: Vec<FinishedClip>,
    rolls: Rolls,
    preroll_bytes: usize,
    max_clip_bytes: usize,
}

fn bounds(max_bytes: usize, rolls: Rolls) -> Bounds {
    Bounds {
        max_bytes,
        max_age_ms: rolls.pre_ms + GOP_SLACK_MS,
    }
}

/// Shared between the camera's ingest thread and the evidence worker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder(Arc<Mutex<State>>);

impl Recorder {
    /// A recorder whose pre-roll holds at most `preroll_bytes`.
    pub fn new(preroll_bytes: usize, rolls: Rolls, max_clip_bytes: usize) -> Self {
        Self(Arc::new(Mutex::new(State {
            preroll: PreRoll::new(bounds(preroll_bytes, rolls)),
            preroll_bytes,
            codec: None,
            open: Vec::new(),
            finished: Vec::new(),
            rolls,
            max_clip_bytes,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The center changed the camera's pre- and post-roll; the pre-roll's time span follows.
    pub fn set_rolls(&self, rolls: Rolls) {
        let mut s = self.state();
        s.rolls = rolls;
        let bounds = bounds(s.preroll_bytes, rolls);
        s.preroll.set_bounds(bounds);
    }

    pub fn rolls(&self) -> Rolls {
        self.state().rolls
    }

    /// The stream (re)started with `codec`: what came before may not continue into what follows.
    pub fn restart(&self, codec: Codec) {
        let mut s = self.state();
        s.codec = Some(codec);
        s.preroll.clear();
    }

    /// The next unit of the stream (called from the streaming thread).
    pub fn push(&self, unit: Unit) {
        let mut s = self.state();
        let max = s.max_clip_bytes;
        let mut done = Vec::new();
        for (i, clip) in s.open.iter_mut().enumerate() {
            if clip.until_ms.is_some_and(|until| unit.at_ms >= until) {
                done.push(i);
                continue;
            }
            if clip.full {
                continue;
            }
            if clip.bytes + unit.len() > max {
                clip.full = true;
                tracing::warn!(episode = %clip.episode, bytes = clip.bytes, "clip reached max_clip_bytes; it is cut here");
                continue;
            }
            clip.bytes += unit.len();
            clip.units.push(unit.clone());
        }
        for i in done.into_iter().rev() {
            let clip = s.open.remove(i);
            finish(&mut s, clip);
        }
        s.preroll.push(unit);
    }

    /// An episode started at `at_ms`: its clip begins with the pre-roll before it.
    pub fn open(&self, episode: Uuid, at_ms: i64) {
        let mut s = self.state();
        if s.open.iter().any(|c| c.episode == episode) {
            return;
        }
        let mut units = s.preroll.since(at_ms - s.rolls.pre_ms);
        let max = s.max_clip_bytes;
        let mut bytes = 0;
        units.retain(|u| {
            bytes += u.len();
            bytes <= max
        });
        let bytes = units.iter().map(Unit::len).sum();
        s.open.push(OpenClip {
            episode,
            units,
            bytes,
            until_ms: None,
            full: false,
        });
    }

    /// The episode ended at `at_ms`: the clip takes the post-roll and is then finished. An episode
    /// whose start this recorder never saw (e.g. after a restart) gets a clip around its end.
    pub fn close(&self, episode: Uuid, at_ms: i64) {
        if !self.state().open.iter().any(|c| c.episode == episode) {
            self.open(episode, at_ms);
        }
        let mut s = self.state();
        let post = s.rolls.post_ms;
        if let Some(clip) = s.open.iter_mut().find(|c| c.episode == episode) {
            clip.until_ms = Some(at_ms + post);
        }
    }

    /// Finishes every clip now, with what it has (shutdown: a short clip beats none).
    pub fn flush(&self) {
        let mut s = self.state();
        let open = std::mem::take(&mut s.open);
        for clip in open {
            finish(&mut s, clip);
        }
    }

    /// The clips whose post-roll has arrived, and those whose post-roll should have ended more
    /// than `grace_ms` before `now_ms` (the camera went quiet: they end with what they have).
    pub fn take_finished(&self, now_ms: i64, grace_ms: i64) -> Vec<FinishedClip> {
        let mut s = self.state();
        let (late, open): (Vec<_>, Vec<_>) = std::mem::take(&mut s.open)
            .into_iter()
            .partition(|c| c.until_ms.is_some_and(|until| now_ms > until + grace_ms));
        s.open = open;
        for clip in late {
            tracing::warn!(episode = %clip.episode, "no video for the end of the clip; it ends early");
            finish(&mut s, clip);
        }
        std::mem::take(&mut s.finished)
    }

    /// The units to decode for a still of the moment `at_ms`, with the codec.
    pub fn frame_at(&self, at_ms: i64) -> Option<(Codec, Vec<Unit>)> {
        let s = self.state();
        let units = s.preroll.frame_at(at_ms);
        Some((s.codec?, units)).filter(|(_, u)| !u.is_empty())
    }

    /// Bytes held by the pre-roll.
    pub fn preroll_bytes(&self) -> usize {
        self.state().preroll.bytes()
    }
}

/// Moves a clip to the finished list, even an empty one: its end event waits for it.
fn finish(s: &mut State, clip: OpenClip) {
    s.finished.push(FinishedClip {
        episode: clip.episode,
        codec: s.codec,
        units: clip.units,
        truncated: clip.full,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(i: i64) -> Unit {
        Unit {
            at_ms: i * 100,
            pts_ns: Some(i as u64 * 100_000_000),
            keyframe: i % 10 == 0,
            data: vec![0; 100].into(),
        }
    }

    fn recorder(max_clip_bytes: usize) -> Recorder {
        let r = Recorder::new(
            1 << 20,
            Rolls {
                pre_ms: 2_000,
                post_ms: 1_500,
            },
            max_clip_bytes,
        );
        r.restart(Codec::H264);
        r
    }

    #[test]
    fn a_clip_whose_camera_went_quiet_ends_with_what_it_has() {
        let r = recorder(1 << 20);
        let episode = Uuid::now_v7();
        for i in 0..=20 {
            r.push(unit(i));
        }
        r.open(episode, 1_000);
        r.close(episode, 2_000); // until 3.5 s, but no more video comes
        assert!(r.take_finished(5_000, 5_000).is_empty());
        let clips = r.take_finished(9_000, 5_000);
        assert_eq!(clips[0].units.last().unwrap().at_ms, 2_000);
    }

    #[test]
    fn a_clip_runs_from_the_keyframe_before_the_pre_roll_to_the_end_of_the_post_roll() {
        let r = recorder(1 << 20);
        let episode = Uuid::now_v7();
        for i in 0..=50 {
            r.push(unit(i));
        }
        r.open(episode, 5_000); // pre-roll back to 3 s: the keyframe at 3 s
        for i in 51..=80 {
            r.push(unit(i));
        }
        r.close(episode, 8_000); // post-roll until 9.5 s
        for i in 81..=94 {
            r.push(unit(i));
        }
        assert!(
            r.take_finished(0, 0).is_empty(),
            "the post-roll is not complete"
        );
        r.push(unit(95));
        let clips = r.take_finished(0, 0);
        assert_eq!(clips.len(), 1);
        let clip = &clips[0];
        assert_eq!(clip.episode, episode);
        assert_eq!(clip.units.first().unwrap().at_ms, 3_000);
        assert!(clip.units.first().unwrap().keyframe);
        assert_eq!(clip.units.last().unwrap().at_ms, 9_400);
        assert_eq!(clip.units.len(), 65, "no unit lost or doubled");
        assert!(!clip.truncated);
    }

    #[test]
    fn a_clip_stops_growing_at_its_byte_bound_and_says_it_was_cut() {
        let r = recorder(1_000);
        let episode = Uuid::now_v7();
        r.push(unit(0));
        r.open(episode, 0);
        for i in 1..30 {
            r.push(unit(i));
        }
        r.close(episode, 2_900);
        for i in 30..50 {
            r.push(unit(i));
        }
        let clips = r.take_finished(0, 0);
        assert_eq!(clips[0].units.len(), 10);
        assert!(clips[0].truncated);
    }

    #[test]
    fn an_end_without_a_start_still_gets_a_clip_around_it() {
        let r = recorder(1 << 20);
        let episode = Uuid::now_v7();
        for i in 0..=40 {
            r.push(unit(i));
        }
        r.close(episode, 4_000);
        for i in 41..=60 {
            r.push(unit(i));
        }
        let clips = r.take_finished(0, 0);
        assert_eq!(clips[0].units.first().unwrap().at_ms, 2_000);
        assert_eq!(clips[0].units.last().unwrap().at_ms, 5_400);
    }
}
