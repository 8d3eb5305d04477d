//! Scores the chef-hat / mask detector on a camsim scenario against its ground truth (`edge-agent
//! detect --scenario FILE` for scenarios with `noChefHat` or `noMask` rules).
//!
//! Frames are rendered by camsim's renderer in colour (no RTSP, no codec), resized to
//! [`PersonScoreOptions::width`] and fed at 5 fps of scenario time through the detector and the
//! episode logic. Reported per kind:
//!
//! - **recall**: a truth violation interval (one person, one kind) counts as detected when a head box
//!   of that kind falls on that person between its start and one second after its end; **time to
//!   alarm** is the delay to that first box (the episode logic adds its 2 s `minDuration`);
//! - **precision**: head boxes on a person who breaks that rule at that moment, over all head boxes;
//! - **episodes**: the episodes the detections make, with the people their boxes fell on;
//! - **person recall**: people fully in the picture that the person stage found, in the frames it
//!   looked at; **CPU**: wall time of `process` per frame (OpenCV on one thread), and per look of
//!   the person model.
//!
//! The person stage is either the real model ([`PersonSource::Model`]) or camsim's truth boxes
//! ([`PersonSource::Truth`]): the latter scores the head classifier and the episodes alone, on the
//! boxes a perfect person detector would give. Reports say which one was used.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bl_proto::event::{EpisodePhase, ViolationKind};
use camsim::Renderer;
use camsim::scenario::{self, Scenario};
use camsim::scene::ObjectClass;
use camsim::truth::{TruthLine, TruthObject, truth_lines};
use opencv::core::{Mat, Size};
use opencv::prelude::*;

use super::head::HeuristicHead;
use super::person::{HatMaskConfig, HatMaskDetector, PersonFinder, YoloPersons};
use super::score::{LATE_GRACE_SECS, ScoreError, Timing};
use super::yolo::{PersonBox, YoloConfig};
use super::{DetectError, Frame};
use crate::episode::Episodes;

/// Where the person boxes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum PersonSource {
    /// The person model (the default yolov3-tiny).
    Model(YoloConfig),
    /// camsim's ground-truth person boxes (an ideal person detector): scores the head stage alone.
    Truth,
}

/// How to score.
#[derive(Debug, Clone)]
pub struct PersonScoreOptions {
    /// Frames per second of scenario time. Default 5.
    pub detector_fps: f64,
    /// Width the frames are resized to (height keeps the aspect). Default 1280 (a main stream).
    pub width: u32,
    pub persons: PersonSource,
    pub config: HatMaskConfig,
    /// OpenCV worker threads (process-wide). Default 1.
    pub opencv_threads: Option<i32>,
}

impl PersonScoreOptions {
    /// Defaults with the given person stage.
    pub fn new(persons: PersonSource) -> PersonScoreOptions {
        PersonScoreOptions {
            detector_fps: 5.0,
            width: 1280,
            persons,
            config: HatMaskConfig::default(),
            opencv_threads: Some(1),
        }
    }
}

/// One truth violation interval and what the detector made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub object: String,
    pub from: f64,
    pub to: f64,
    pub time_to_alarm: Option<f64>,
}

/// One episode the detections made.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeSeen {
    pub start_s: f64,
    pub end_s: Option<f64>,
    /// Truth people its boxes fell on (`-` for a box on nobody).
    pub objects: BTreeSet<String>,
}

/// The score of one violation kind.
#[derive(Debug, Clone, PartialEq)]
pub struct KindScore {
    pub kind: ViolationKind,
    pub intervals: Vec<Interval>,
    pub true_boxes: usize,
    pub false_boxes: usize,
    pub episodes: Vec<EpisodeSeen>,
}

impl KindScore {
    pub fn recall(&self) -> f64 {
        let hit = self
            .intervals
            .iter()
            .filter(|i| i.time_to_alarm.is_some())
            .count();
        if self.intervals.is_empty() {
            1.0
        } else {
            hit as f64 / self.intervals.len() as f64
        }
    }

    pub fn precision(&self) -> f64 {
        let all = self.true_boxes + self.false_boxes;
        if all == 0 {
            1.0
        } else {
            self.true_boxes as f64 / all as f64
        }
    }

    pub fn mean_time_to_alarm(&self) -> Option<f64> {
        let t: Vec<f64> = self
            .intervals
            .iter()
            .filter_map(|i| i.time_to_alarm)
            .collect();
        (!t.is_empty()).then(|| t.iter().sum::<f64>() / t.len() as f64)
    }

    /// Every person any episode's boxes fell on.
    pub fn episode_objects(&self) -> BTreeSet<String> {
        self.episodes
            .iter()
            .flat_map(|e| e.objects.iter().cloned())
            .collect()
    }
}

/// The result of scoring one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonReport {
    pub scenario: String,
    pub detector: String,
    pub persons_label: &'static str,
    /// Frames per second of scenario time given to the detector.
    pub fps: f64,
    pub width: u32,
    pub height: u32,
    /// People fully in frame found / seen, in the frames the person stage looked at.
    pub persons_found: usize,
    pub persons_seen: usize,
    /// Person boxes on nobody.
    pub persons_false: usize,
    pub kinds: Vec<KindScore>,
    /// Per frame (all frames), and per look of the person stage.
    pub timing: Timing,
    pub look_timing: Timing,
}

impl PersonReport {
    pub fn kind(&self, kind: ViolationKind) -> Option<&KindScore> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    pub fn person_recall(&self) -> f64 {
        if self.persons_seen == 0 {
            1.0
        } else {
            self.persons_found as f64 / self.persons_seen as f64
        }
    }
}

impl fmt::Display for PersonReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {} · {} at {} fps, {}x{} · person boxes from {}",
            self.scenario, self.detector, self.fps, self.width, self.height, self.persons_label
        )?;
        writeln!(
            f,
            "  persons found {}/{} = {:.2} (people fully in frame, frames looked at) · person boxes on nobody {}",
            self.persons_found,
            self.persons_seen,
            self.person_recall(),
            self.persons_false
        )?;
        for k in &self.kinds {
            let hit = k
                .intervals
                .iter()
                .filter(|i| i.time_to_alarm.is_some())
                .count();
            writeln!(
                f,
                "  {:<9} recall {hit}/{} = {:.2} · precision (boxes) {}/{} = {:.2} · mean time to alarm {}",
                format!("{:?}", k.kind),
                k.intervals.len(),
                k.recall(),
                k.true_boxes,
                k.true_boxes + k.false_boxes,
                k.precision(),
                k.mean_time_to_alarm()
                    .map_or("-".into(), |t| format!("{t:.1} s")),
            )?;
            for i in &k.intervals {
                writeln!(
                    f,
                    "    {:<4} {:>6.1}–{:<6.1} s {}",
                    i.object,
                    i.from,
                    i.to,
                    i.time_to_alarm
                        .map_or("MISSED".into(), |t| format!("alarm after {t:.1} s"))
                )?;
            }
            for e in &k.episodes {
                writeln!(
                    f,
                    "    episode {:>6.1}–{} s on {}",
                    e.start_s,
                    e.end_s.map_or("open".into(), |t| format!("{t:.1}")),
                    e.objects.iter().cloned().collect::<Vec<_>>().join(", ")
                )?;
            }
        }
        writeln!(
            f,
            "  cpu per frame: mean {:.1} ms · p95 {:.1} ms ({} frames) · per person-model look: mean {:.1} ms ({} looks)",
            self.timing.mean_ms,
            self.timing.p95_ms,
            self.timing.frames,
            self.look_timing.mean_ms,
            self.look_timing.frames
        )
    }
}

/// Truth person boxes of every frame of the loop, with their hat and mask.
struct Truth {
    frames: Vec<Vec<TruthObject>>,
    fps: f64,
}

impl Truth {
    fn of(s: &Scenario) -> Truth {
        let frames = truth_lines("score", s)
            .into_iter()
            .filter_map(|l| match l {
                TruthLine::Frame { objects, .. } => Some(
                    objects
                        .into_iter()
                        .filter(|o| o.class == ObjectClass::Person)
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        Truth {
            frames,
            fps: s.fps as f64,
        }
    }

    fn at(&self, at_ms: u64) -> &[TruthObject] {
        let n = (at_ms as f64 / 1000.0 * self.fps).round() as usize;
        &self.frames[n % self.frames.len()]
    }
}

/// The ideal person stage: camsim's truth boxes.
struct TruthPersons(Arc<Truth>);

impl PersonFinder for TruthPersons {
    fn name(&self) -> &str {
        "camsim-truth"
    }
    fn version(&self) -> &str {
        "0"
    }
    fn find(&mut self, frame: &Frame<'_>, _bgr: &Mat) -> Result<Vec<PersonBox>, DetectError> {
        let (w, h) = (frame.width as f64, frame.height as f64);
        Ok(self
            .0
            .at(frame.at_ms)
            .iter()
            .map(|o| PersonBox {
                x: (o.bbox[0] * w) as i32,
                y: (o.bbox[1] * h) as i32,
                w: (o.bbox[2] * w) as i32,
                h: (o.bbox[3] * h) as i32,
                score: 1.0,
            })
            .collect())
    }
}

/// Passes through another finder and keeps what it found last.
struct Recorder {
    inner: Box<dyn PersonFinder>,
    last: Arc<Mutex<Option<Vec<PersonBox>>>>,
}

impl PersonFinder for Recorder {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn version(&self) -> &str {
        self.inner.version()
    }
    fn find(&mut self, frame: &Frame<'_>, bgr: &Mat) -> Result<Vec<PersonBox>, DetectError> {
        let found = self.inner.find(frame, bgr)?;
        *self.last.lock().expect("recorder lock") = Some(found.clone());
        Ok(found)
    }
}

fn centre_in(b: [f64; 4], x: f64, y: f64) -> bool {
    x >= b[0] && x <= b[0] + b[2] && y >= b[1] && y <= b[1] + b[3]
}

/// The person whose head (the top quarter of the truth box, as the detector cuts it) a head box
/// overlaps most; people overlap in the picture, so the box's centre alone would pick the wrong one.
fn whose_head(people: &[TruthObject], b: [f64; 4]) -> Option<&TruthObject> {
    let iou = |o: &TruthObject| {
        let h = [
            o.bbox[0],
            o.bbox[1],
            o.bbox[2],
            o.bbox[3] * super::head::HEAD_FRACTION,
        ];
        let ix = (b[0] + b[2]).min(h[0] + h[2]) - b[0].max(h[0]);
        let iy = (b[1] + b[3]).min(h[1] + h[3]) - b[1].max(h[1]);
        if ix <= 0.0 || iy <= 0.0 {
            return 0.0;
        }
        let i = ix * iy;
        i / (b[2] * b[3] + h[2] * h[3] - i)
    };
    people
        .iter()
        .map(|o| (iou(o), o))
        .filter(|(v, _)| *v > 0.0)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, o)| o)
}

fn breaks(o: &TruthObject, kind: ViolationKind) -> bool {
    match kind {
        ViolationKind::NoChefHat => o.hat == Some(false),
        ViolationKind::NoMask => o.mask == Some(false),
        _ => false,
    }
}

/// Scores the hat/mask detector on a scenario.
pub fn run_scenario(
    scenario: Scenario,
    options: &PersonScoreOptions,
) -> Result<PersonReport, ScoreError> {
    if !(options.detector_fps > 0.0 && options.detector_fps <= scenario.fps as f64) {
        return Err(ScoreError::Option(
            "detector_fps: must be above 0 and at most the scenario's fps",
        ));
    }
    if options.width < 64 {
        return Err(ScoreError::Option("width: at least 64"));
    }
    if let Some(n) = options.opencv_threads {
        opencv::core::set_num_threads(n).map_err(DetectError::from)?;
    }
    let truth = Arc::new(Truth::of(&scenario));
    let width = options.width;
    let height =
        ((scenario.height as f64 * width as f64 / scenario.width as f64).round() as u32).max(1);
    let (finder, label): (Box<dyn PersonFinder>, &'static str) = match &options.persons {
        PersonSource::Model(c) => (Box::new(YoloPersons::load(c.clone())?), "the person model"),
        PersonSource::Truth => (
            Box::new(TruthPersons(truth.clone())),
            "camsim's truth (ideal person detector)",
        ),
    };
    let last = Arc::new(Mutex::new(None));
    let mut detector = HatMaskDetector::new(
        Box::new(Recorder {
            inner: finder,
            last: last.clone(),
        }),
        Box::new(HeuristicHead::default()),
        options.config,
    );
    let kinds: Vec<ViolationKind> = [ViolationKind::NoChefHat, ViolationKind::NoMask]
        .into_iter()
        .filter(|k| match k {
            ViolationKind::NoChefHat => {
                scenario.rules.contains(&scenario::ViolationKind::NoChefHat)
            }
            _ => scenario.rules.contains(&scenario::ViolationKind::NoMask),
        })
        .collect();
    let mut scores: BTreeMap<ViolationKind, KindScore> = kinds
        .iter()
        .map(|&kind| {
            (
                kind,
                KindScore {
                    kind,
                    intervals: Vec::new(),
                    true_boxes: 0,
                    false_boxes: 0,
                    episodes: Vec::new(),
                },
            )
        })
        .collect();
    let mut hits: Vec<(f64, ViolationKind, String)> = Vec::new();
    let mut pending: BTreeMap<ViolationKind, BTreeSet<String>> = BTreeMap::new();
    let mut episodes = Episodes::new();
    let renderer = Renderer::new(scenario.clone());
    let (mut ms, mut look_ms) = (Vec::new(), Vec::new());
    let (mut found, mut seen, mut false_persons) = (0, 0, 0);

    let mut k = 0u64;
    loop {
        let t = k as f64 / options.detector_fps;
        if t >= scenario.duration_secs {
            break;
        }
        k += 1;
        let n = (t * scenario.fps as f64).round() as u64;
        let (bgr, grey) = colour_frame(&renderer.render(n), width, height)?;
        let at_ms = (t * 1000.0).round() as u64;
        let frame = Frame {
            width,
            height,
            luma: &grey,
            bgr: Some(&bgr),
            at_ms,
            minute_of_day: 12 * 60,
        };
        let started = Instant::now();
        let detections = detector.try_process(&frame)?;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        ms.push(took);
        let people = truth.at(at_ms);

        if let Some(boxes) = last.lock().expect("recorder lock").take() {
            look_ms.push(took);
            let inside: Vec<&TruthObject> = people
                .iter()
                .filter(|o| o.bbox[0] > 0.0 && o.bbox[0] + o.bbox[2] < 1.0)
                .collect();
            seen += inside.len();
            let centre = |b: &PersonBox| {
                (
                    (b.x as f64 + b.w as f64 / 2.0) / width as f64,
                    (b.y as f64 + b.h as f64 / 2.0) / height as f64,
                )
            };
            found += inside
                .iter()
                .filter(|o| {
                    boxes.iter().any(|b| {
                        let (x, y) = centre(b);
                        centre_in(o.bbox, x, y)
                    })
                })
                .count();
            false_persons += boxes
                .iter()
                .filter(|b| {
                    let (x, y) = centre(b);
                    !people.iter().any(|o| centre_in(o.bbox, x, y))
                })
                .count();
        }

        for d in &detections {
            let Some(score) = scores.get_mut(&d.kind) else {
                continue;
            };
            for b in &d.boxes {
                let bb = [b.x as f64, b.y as f64, b.w as f64, b.h as f64];
                match whose_head(people, bb) {
                    Some(o) if breaks(o, d.kind) => {
                        score.true_boxes += 1;
                        hits.push((t, d.kind, o.id.clone()));
                        pending.entry(d.kind).or_default().insert(o.id.clone());
                    }
                    other => {
                        score.false_boxes += 1;
                        let who = other.map_or("-".to_string(), |o| o.id.clone());
                        pending.entry(d.kind).or_default().insert(who);
                    }
                }
            }
        }
        let detections: Vec<_> = detections
            .into_iter()
            .filter(|d| scores.contains_key(&d.kind))
            .collect();
        for change in episodes.observe(at_ms, &detections) {
            let kind = change.detection.kind;
            let Some(score) = scores.get_mut(&kind) else {
                continue;
            };
            match change.phase {
                EpisodePhase::Start => score.episodes.push(EpisodeSeen {
                    start_s: t,
                    end_s: None,
                    objects: BTreeSet::new(),
                }),
                EpisodePhase::End => {
                    if let Some(e) = score.episodes.last_mut() {
                        e.end_s = Some(t);
                    }
                }
                EpisodePhase::Update => {}
            }
        }
        // Boxes of this frame belong to the open (or just ended) episode of their kind, if any.
        for (kind, objects) in std::mem::take(&mut pending) {
            if let Some(e) = scores.get_mut(&kind).and_then(|s| s.episodes.last_mut())
                && e.end_s.is_none_or(|end| end >= t)
            {
                e.objects.extend(objects);
            }
        }
    }

    for l in truth_lines("score", &scenario) {
        if let TruthLine::Violation {
            kind,
            object,
            from,
            to,
        } = l
        {
            let kind = match kind {
                scenario::ViolationKind::NoChefHat => ViolationKind::NoChefHat,
                scenario::ViolationKind::NoMask => ViolationKind::NoMask,
                _ => continue,
            };
            let Some(score) = scores.get_mut(&kind) else {
                continue;
            };
            let first = hits
                .iter()
                .find(|(t, k, id)| {
                    *k == kind && id == &object && *t >= from && *t < to + LATE_GRACE_SECS
                })
                .map(|(t, _, _)| (t - from).max(0.0));
            score.intervals.push(Interval {
                object,
                from,
                to,
                time_to_alarm: first,
            });
        }
    }

    Ok(PersonReport {
        scenario: scenario.name.clone(),
        detector: detector_name(&detector),
        persons_label: label,
        fps: options.detector_fps,
        width,
        height,
        persons_found: found,
        persons_seen: seen,
        persons_false: false_persons,
        kinds: scores.into_values().collect(),
        timing: Timing::of(ms),
        look_timing: Timing::of(look_ms),
    })
}

fn detector_name(d: &HatMaskDetector) -> String {
    use super::Detector;
    format!("{} {}", d.model_name(), d.model_version())
}

/// A rendered I420 picture as BGR and grey bytes at `width x height`.
fn colour_frame(
    f: &camsim::Frame,
    width: u32,
    height: u32,
) -> Result<(Vec<u8>, Vec<u8>), DetectError> {
    let yuv = Mat::new_rows_cols_with_data((f.height * 3 / 2) as i32, f.width as i32, &f.i420)?;
    let mut bgr = Mat::default();
    opencv::imgproc::cvt_color_def(&yuv, &mut bgr, opencv::imgproc::COLOR_YUV2BGR_I420)?;
    let mut small = Mat::default();
    opencv::imgproc::resize(
        &bgr,
        &mut small,
        Size::new(width as i32, height as i32),
        0.0,
        0.0,
        opencv::imgproc::INTER_AREA,
    )?;
    let mut grey = Mat::default();
    opencv::imgproc::cvt_color_def(&small, &mut grey, opencv::imgproc::COLOR_BGR2GRAY)?;
    Ok((small.data_bytes()?.to_vec(), grey.data_bytes()?.to_vec()))
}
