//! Scores the rodent detector on a camsim scenario against its ground truth (`edge-agent detect
//! --scenario FILE`, `make bench`).
//!
//! Frames are rendered by camsim's own renderer (no RTSP, no codec), shrunk to the detector's working
//! size and fed at [`ScoreOptions::detector_fps`] of scenario time. Then:
//!
//! - **recall**: a rodent interval of the truth counts as detected when a box overlapping that rodent
//!   is reported between its start and one second after its end; **time to alarm** is the delay from
//!   the start to that first box;
//! - **precision**: boxes overlapping a truth rodent over all boxes reported;
//! - **false alarms**: frames with a box that overlaps no truth rodent, grouped into alarm episodes
//!   (boxes less than [`FALSE_ALARM_GAP_SECS`] apart are one episode);
//! - **CPU**: wall time of each `process` call (nothing else in the process runs meanwhile, and OpenCV
//!   is held to one thread, so it is the CPU time of the call), mean and 95th percentile;
//! - **empty night clips**: the same scenario with its rodents removed, a different seed per loop,
//!   cut into clips; every false alarm is counted in the clip it starts in.

use std::fmt;
use std::path::Path;
use std::time::Instant;

use camsim::scenario::{ActorKind, Scenario};
use camsim::scene::ObjectClass;
use camsim::truth::{TruthLine, truth_lines};
use camsim::{Renderer, ScenarioError};

use super::{DetectError, Detector, RodentConfig, RodentDetector, downscale, zone};

/// Boxes of false alarms less than this many seconds apart belong to one alarm episode.
pub const FALSE_ALARM_GAP_SECS: f64 = 2.0;
/// A rodent interval still counts as detected by a box this long after its end.
pub const LATE_GRACE_SECS: f64 = 1.0;

/// How to score.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Frames per second of scenario time given to the detector. Default 5.
    pub detector_fps: f64,
    /// First second of the loop scored. Default 0.
    pub start_secs: f64,
    /// Second of the loop where scoring stops; `None` is the end of the loop. Default `None`.
    pub end_secs: Option<f64>,
    /// The detector's set-up. Default: whole frame, all day, camsim's frame-number strip ignored (it
    /// stands for the OSD clock of a real camera).
    pub config: RodentConfig,
    /// Local minute of the day passed with every frame. Default 23:00.
    pub minute_of_day: u16,
    /// Also count false alarms on at least this many empty (rodent-free) clips; 0 skips it.
    /// Default 0.
    pub empty_clips: usize,
    /// Length of one empty clip, seconds. Default 10.
    pub clip_secs: f64,
    /// Worker threads OpenCV may use (a process-wide setting, applied when scoring starts); `None`
    /// leaves it alone. Default 1: the agent runs one detector per camera on its own thread, and with
    /// one OpenCV thread the wall time of `process` is its CPU time.
    pub opencv_threads: Option<i32>,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            detector_fps: 5.0,
            start_secs: 0.0,
            end_secs: None,
            config: RodentConfig {
                ignore: vec![camsim_strip()],
                ..RodentConfig::default()
            },
            minute_of_day: 23 * 60,
            empty_clips: 0,
            clip_secs: 10.0,
            opencv_threads: Some(1),
        }
    }
}

/// The area of camsim's frame-number strip (top left), normalised.
pub fn camsim_strip() -> bl_proto::config::Polygon {
    zone::rect(0.0, 0.0, 0.27, 0.075)
}

/// Why scoring failed.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The scenario file is missing or invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The detector could not be built or could not shrink a frame.
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// An option is out of range.
    #[error("invalid score option {0}")]
    Option(&'static str),
}

/// One rodent interval of the truth and what the detector made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalScore {
    /// The rodent's id in the scenario.
    pub object: String,
    /// Body length in pixels at the scenario's size (camsim's `body_length_px`).
    pub body_length_px: f64,
    /// `[from, to)`, seconds of the loop (clipped to the scored range).
    pub from: f64,
    pub to: f64,
    /// Seconds from `from` to the first box on this rodent; `None` if missed.
    pub time_to_alarm: Option<f64>,
}

/// Wall time of the detector's `process` calls.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timing {
    pub frames: usize,
    pub mean_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

impl Timing {
    pub(crate) fn of(mut ms: Vec<f64>) -> Timing {
        if ms.is_empty() {
            return Timing::default();
        }
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        Timing {
            frames: n,
            mean_ms: ms.iter().sum::<f64>() / n as f64,
            p95_ms: ms[((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1],
            max_ms: ms[n - 1],
        }
    }
}

/// False alarms on rodent-free clips.
#[derive(Debug, Clone, PartialEq)]
pub struct EmptyScore {
    /// Clips scored.
    pub clips: usize,
    /// Length of each, seconds.
    pub clip_secs: f64,
    /// False-alarm episodes started in them.
    pub false_alarms: usize,
    /// Clips with at least one.
    pub clips_with_alarm: usize,
    /// When (loop, second of the loop) each false alarm started.
    pub alarm_starts: Vec<(usize, f64)>,
}

impl EmptyScore {
    /// False alarms per 100 clips.
    pub fn per_100_clips(&self) -> f64 {
        if self.clips == 0 {
            0.0
        } else {
            self.false_alarms as f64 * 100.0 / self.clips as f64
        }
    }
}

/// The result of scoring one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Scored range of the loop, seconds.
    pub from_secs: f64,
    pub to_secs: f64,
    /// Working size of the detector.
    pub width: u32,
    pub height: u32,
    pub detector_fps: f64,
    /// Rodent intervals of the truth in the scored range.
    pub intervals: Vec<IntervalScore>,
    /// Boxes that overlapped a truth rodent.
    pub true_boxes: usize,
    /// Boxes that overlapped none.
    pub false_boxes: usize,
    /// False-alarm episodes: `[first, last]` box time, seconds of the loop.
    pub false_alarms: Vec<(f64, f64)>,
    /// CPU per frame (the main run, and the empty clips if any).
    pub timing: Timing,
    /// False alarms on empty clips, when asked for.
    pub empty: Option<EmptyScore>,
}

impl Report {
    /// Detected intervals over all intervals (1 when there is none).
    pub fn recall(&self) -> f64 {
        if self.intervals.is_empty() {
            return 1.0;
        }
        let hit = self
            .intervals
            .iter()
            .filter(|i| i.time_to_alarm.is_some())
            .count();
        hit as f64 / self.intervals.len() as f64
    }

    /// True boxes over all boxes (1 when nothing was reported).
    pub fn precision(&self) -> f64 {
        let all = self.true_boxes + self.false_boxes;
        if all == 0 {
            1.0
        } else {
            self.true_boxes as f64 / all as f64
        }
    }

    /// Recall over the rodents whose body is at least `px` long (at the scenario's size); `None` when
    /// there is none.
    pub fn recall_at_least(&self, px: f64) -> Option<f64> {
        let big: Vec<&IntervalScore> = self
            .intervals
            .iter()
            .filter(|i| i.body_length_px >= px)
            .collect();
        let hit = big.iter().filter(|i| i.time_to_alarm.is_some()).count();
        (!big.is_empty()).then(|| hit as f64 / big.len() as f64)
    }

    /// Mean time to alarm of the detected intervals, seconds.
    pub fn mean_time_to_alarm(&self) -> Option<f64> {
        let t: Vec<f64> = self
            .intervals
            .iter()
            .filter_map(|i| i.time_to_alarm)
            .collect();
        (!t.is_empty()).then(|| t.iter().sum::<f64>() / t.len() as f64)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {} · {:.0}–{:.0} s · rodent detector at {} fps, {}x{}",
            self.scenario, self.from_secs, self.to_secs, self.detector_fps, self.width, self.height
        )?;
        writeln!(
            f,
            "  {:<12} {:>8} {:>7} {:>7} {:>9} {:>14}",
            "rodent", "body px", "from s", "to s", "detected", "time to alarm"
        )?;
        for i in &self.intervals {
            let (det, tta) = match i.time_to_alarm {
                Some(t) => ("yes", format!("{t:.1} s")),
                None => ("NO", "-".to_string()),
            };
            writeln!(
                f,
                "  {:<12} {:>8.0} {:>7.1} {:>7.1} {:>9} {:>14}",
                i.object, i.body_length_px, i.from, i.to, det, tta
            )?;
        }
        let hit = self
            .intervals
            .iter()
            .filter(|i| i.time_to_alarm.is_some())
            .count();
        writeln!(
            f,
            "  recall {hit}/{} = {:.2} · precision (boxes) {}/{} = {:.2} · false alarms {} · mean time to alarm {}",
            self.intervals.len(),
            self.recall(),
            self.true_boxes,
            self.true_boxes + self.false_boxes,
            self.precision(),
            self.false_alarms.len(),
            self.mean_time_to_alarm()
                .map_or("-".to_string(), |t| format!("{t:.1} s")),
        )?;
        if self.intervals.iter().any(|i| i.body_length_px < 16.0)
            && let Some(r) = self.recall_at_least(16.0)
        {
            writeln!(
                f,
                "  recall of rodents with bodies of 16 px or more: {r:.2}"
            )?;
        }
        for (a, b) in &self.false_alarms {
            writeln!(f, "    false alarm {a:.1}–{b:.1} s")?;
        }
        if let Some(e) = &self.empty {
            writeln!(
                f,
                "  empty night clips: {} of {:.0} s · {} false alarms in {} clips · {:.1} per 100 clips",
                e.clips,
                e.clip_secs,
                e.false_alarms,
                e.clips_with_alarm,
                e.per_100_clips()
            )?;
            for (l, t) in &e.alarm_starts {
                writeln!(f, "    false alarm in empty loop {l} at {t:.1} s")?;
            }
        }
        writeln!(
            f,
            "  cpu per frame: mean {:.2} ms · p95 {:.2} ms · max {:.2} ms ({} frames)",
            self.timing.mean_ms, self.timing.p95_ms, self.timing.max_ms, self.timing.frames
        )
    }
}

/// Scores the rodent detector on the scenario at `scenario_path`.
pub fn run(scenario_path: &Path, options: &ScoreOptions) -> Result<Report, ScoreError> {
    let scenario = Scenario::load(scenario_path)?;
    run_scenario(scenario, options)
}

/// [`run`] on a scenario already loaded (tests edit scenarios in code).
pub fn run_scenario(scenario: Scenario, options: &ScoreOptions) -> Result<Report, ScoreError> {
    if !(options.detector_fps > 0.0 && options.detector_fps <= scenario.fps as f64) {
        return Err(ScoreError::Option(
            "detector_fps: must be above 0 and at most the scenario's fps",
        ));
    }
    if !(options.clip_secs > 0.0 && options.clip_secs.is_finite()) {
        return Err(ScoreError::Option("clip_secs: must be above 0"));
    }
    let from = options.start_secs.max(0.0);
    let to = options
        .end_secs
        .unwrap_or(scenario.duration_secs)
        .min(scenario.duration_secs);
    if from >= to {
        return Err(ScoreError::Option("start_secs: must be before end_secs"));
    }
    if let Some(n) = options.opencv_threads {
        opencv::core::set_num_threads(n).map_err(DetectError::from)?;
    }
    let run = Pass::new(&scenario, options)?.run(from, to)?;
    let mut ms = run.ms;

    // Truth intervals in range, and their first true box.
    let mut intervals = Vec::new();
    for l in truth_lines("score", &scenario) {
        if let TruthLine::Violation {
            kind: camsim::scenario::ViolationKind::Rodent,
            object,
            from: a,
            to: b,
        } = l
            && a < to
            && b > from
        {
            let (a, b) = (a.max(from), b.min(to));
            let first = run
                .hits
                .iter()
                .find(|(t, id)| id == &object && *t >= a && *t < b + LATE_GRACE_SECS)
                .map(|(t, _)| t - a);
            let body_length_px = scenario
                .actors
                .iter()
                .find(|x| x.id == object)
                .and_then(|x| x.body_length_px)
                .unwrap_or(30.0);
            intervals.push(IntervalScore {
                object,
                body_length_px,
                from: a,
                to: b,
                time_to_alarm: first,
            });
        }
    }

    let empty = if options.empty_clips > 0 {
        let (e, more) = empty_clips(&scenario, options)?;
        ms.extend(more);
        Some(e)
    } else {
        None
    };

    Ok(Report {
        scenario: scenario.name.clone(),
        from_secs: from,
        to_secs: to,
        width: options.config.tuning.width,
        height: options.config.tuning.height,
        detector_fps: options.detector_fps,
        intervals,
        true_boxes: run.true_boxes,
        false_boxes: run.false_boxes,
        false_alarms: run.false_alarms,
        timing: Timing::of(ms),
        empty,
    })
}

/// The scenario with every rodent removed.
pub fn without_rodents(scenario: &Scenario) -> Scenario {
    let mut s = scenario.clone();
    s.actors.retain(|a| a.kind != ActorKind::Rodent);
    s
}

/// Runs the detector over rodent-free loops (a new seed each) cut into clips.
fn empty_clips(
    scenario: &Scenario,
    options: &ScoreOptions,
) -> Result<(EmptyScore, Vec<f64>), ScoreError> {
    let per_loop = ((scenario.duration_secs / options.clip_secs).floor() as usize).max(1);
    let loops = options.empty_clips.div_ceil(per_loop);
    let span = per_loop as f64 * options.clip_secs;
    let mut score = EmptyScore {
        clips: loops * per_loop,
        clip_secs: options.clip_secs,
        false_alarms: 0,
        clips_with_alarm: 0,
        alarm_starts: Vec::new(),
    };
    let mut ms = Vec::new();
    for l in 0..loops {
        let mut s = without_rodents(scenario);
        s.seed = scenario.seed.wrapping_add(1 + l as u64);
        let run = Pass::new(&s, options)?.run(0.0, span)?;
        ms.extend(run.ms);
        let mut clips: Vec<usize> = Vec::new();
        for (a, _) in &run.false_alarms {
            score.false_alarms += 1;
            score.alarm_starts.push((l, *a));
            clips.push((a / options.clip_secs) as usize);
        }
        clips.dedup();
        score.clips_with_alarm += clips.len();
    }
    Ok((score, ms))
}

/// One pass of the detector over a stretch of a scenario.
struct Pass<'a> {
    scenario: &'a Scenario,
    options: &'a ScoreOptions,
    renderer: Renderer,
    detector: RodentDetector,
    /// Per frame of the loop: the truth rodents (id, `[x, y, w, h]`).
    truth: Vec<Vec<(String, [f64; 4])>>,
}

struct PassResult {
    /// (time, rodent id) of every box that overlapped a truth rodent.
    hits: Vec<(f64, String)>,
    true_boxes: usize,
    false_boxes: usize,
    false_alarms: Vec<(f64, f64)>,
    ms: Vec<f64>,
}

impl<'a> Pass<'a> {
    fn new(scenario: &'a Scenario, options: &'a ScoreOptions) -> Result<Pass<'a>, ScoreError> {
        let mut truth = Vec::new();
        for l in truth_lines("score", scenario) {
            if let TruthLine::Frame { objects, .. } = l {
                truth.push(
                    objects
                        .into_iter()
                        .filter(|o| o.class == ObjectClass::Rodent)
                        .map(|o| (o.id, o.bbox))
                        .collect(),
                );
            }
        }
        Ok(Pass {
            scenario,
            options,
            renderer: Renderer::new(scenario.clone()),
            detector: RodentDetector::new(options.config.clone())?,
            truth,
        })
    }

    fn run(mut self, from: f64, to: f64) -> Result<PassResult, ScoreError> {
        let fps = self.scenario.fps as f64;
        let (w, h) = (
            self.options.config.tuning.width,
            self.options.config.tuning.height,
        );
        let mut out = PassResult {
            hits: Vec::new(),
            true_boxes: 0,
            false_boxes: 0,
            false_alarms: Vec::new(),
            ms: Vec::new(),
        };
        let mut k = (from * self.options.detector_fps).ceil() as u64;
        loop {
            let t = k as f64 / self.options.detector_fps;
            if t >= to {
                break;
            }
            k += 1;
            let n = (t * fps).round() as u64;
            let picture = self.renderer.render(n);
            let small = downscale(
                picture.luma(),
                picture.width as u32,
                picture.height as u32,
                w,
                h,
            )?;
            let frame = small.frame((t * 1000.0).round() as u64, self.options.minute_of_day);
            let started = Instant::now();
            let detections = self.detector.process(&frame);
            out.ms.push(started.elapsed().as_secs_f64() * 1000.0);

            let truth = &self.truth[(n % self.scenario.frames_per_loop()) as usize];
            let mut false_box = false;
            for b in detections.iter().flat_map(|d| &d.boxes) {
                let bb = [b.x as f64, b.y as f64, b.w as f64, b.h as f64];
                match truth.iter().find(|(_, tb)| overlaps(bb, *tb)) {
                    Some((id, _)) => {
                        out.true_boxes += 1;
                        out.hits.push((t, id.clone()));
                    }
                    None => {
                        out.false_boxes += 1;
                        false_box = true;
                    }
                }
            }
            if false_box {
                match out.false_alarms.last_mut() {
                    Some(last) if t - last.1 < FALSE_ALARM_GAP_SECS => last.1 = t,
                    _ => out.false_alarms.push((t, t)),
                }
            }
        }
        Ok(out)
    }
}

/// Whether a detected box touches a truth box grown by 1 % of the frame on each side (boxes of
/// 4-px rodents at 320 px are coarse).
fn overlaps(d: [f64; 4], t: [f64; 4]) -> bool {
    const M: f64 = 0.01;
    d[0] < t[0] + t[2] + M
        && t[0] - M < d[0] + d[2]
        && d[1] < t[1] + t[3] + M
        && t[1] - M < d[1] + d[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_takes_the_95th_percentile_from_the_sorted_times() {
        let t = Timing::of((1..=100).map(f64::from).collect());
        assert_eq!(t.frames, 100);
        assert_eq!(t.p95_ms, 95.0);
        assert_eq!(t.max_ms, 100.0);
        assert!((t.mean_ms - 50.5).abs() < 1e-9);
    }

    #[test]
    fn boxes_a_little_apart_still_overlap_but_far_apart_do_not() {
        let t = [0.5, 0.5, 0.02, 0.01];
        assert!(overlaps([0.525, 0.5, 0.01, 0.01], t));
        assert!(!overlaps([0.6, 0.5, 0.01, 0.01], t));
    }
}
