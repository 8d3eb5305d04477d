//! The rodent detector: background subtraction at night, blob filters and a tracker.
//!
//! Per frame (about 5 a second, grey, shrunk to 320x180):
//!
//! 1. **Background model** (OpenCV MOG2, no shadows): pixels that differ from the learnt background are
//!    foreground. MOG2 keeps several modes per pixel, so things that swing in place (a towel on a hook)
//!    end up in the background.
//! 2. **Whole-picture change** (lights switched on, camera exposure or IR cut-over): when more than
//!    [`RodentTuning::global_change_fraction`] of the picture is foreground, every track is dropped, the
//!    model re-learns fast and nothing is reported for [`RodentTuning::settle_frames`] frames.
//! 3. **Zones**: foreground outside the configured zones (or inside an ignored area such as an OSD
//!    clock) is cleared.
//! 4. **Blobs**: a 3x3 closing joins body and head; connected components are kept if their size fits a
//!    rodent ([`RodentTuning::min_length_px`] … [`RodentTuning::max_length_px`], area, aspect). Blobs near a
//!    big foreground region (a person walking through, an insect on the lens) are dropped with it.
//! 5. **Tracking**: only blobs that move consistently — about one body length in one direction over a
//!    few frames — become rodents (see `track.rs`). Each confirmed track seen in the frame is one box.
//!
//! The detector reads no clock: active hours are checked against [`Frame::minute_of_day`]. Outside them
//! the background model keeps learning (so it is warm when the hours begin) and nothing is reported.

use bl_proto::config::{HoursRange, Polygon, Rule};
use bl_proto::event::{NormBox, ViolationKind};
use opencv::core::{self, Mat, Point, Ptr, Size};
use opencv::imgproc;
use opencv::prelude::*;
use opencv::video::{self, BackgroundSubtractorMOG2, BackgroundSubtractorTrait};
use serde::Deserialize;

use super::track::{Blob, TrackParams, Tracker};
use super::{DetectError, Detection, Detector, Frame, zone};

/// Model name reported in events.
pub const MODEL_NAME: &str = "rodent-mog2";
/// Model version reported in events; bump it whenever a default in [`RodentTuning`] changes.
pub const MODEL_VERSION: &str = "0.1.0";

/// Where and when the rodent rule applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RodentConfig {
    /// Areas of the frame where rodents count (floor, counters); empty is the whole frame.
    pub zones: Vec<Polygon>,
    /// Areas that are never looked at, whatever the zones say (an on-screen clock, a TV).
    pub ignore: Vec<Polygon>,
    /// Local hours in which the rule applies (e.g. 22:00–06:00); `None` is all day.
    pub active_hours: Option<HoursRange>,
    /// Thresholds; the defaults fit a ceiling-corner kitchen camera.
    pub tuning: RodentTuning,
}

impl RodentConfig {
    /// The zones and hours of a `rodent` rule from the center's config, with default tuning.
    pub fn from_rule(rule: &Rule) -> Result<RodentConfig, DetectError> {
        if rule.kind != ViolationKind::Rodent {
            return Err(DetectError::Config {
                field: "kind",
                reason: format!("a {:?} rule given to the rodent detector", rule.kind),
            });
        }
        Ok(RodentConfig {
            zones: rule.zones.clone(),
            ignore: Vec::new(),
            active_hours: rule.active_hours,
            tuning: RodentTuning::default(),
        })
    }
}

/// Thresholds of the rodent detector. Lengths are in pixels of the working picture
/// (`width` x `height`); at the default 320 px, 1 px is 4 px of a 1280x720 main stream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct RodentTuning {
    /// Working width; frames of another size are shrunk to it. Default 320.
    pub width: u32,
    /// Working height. Default 180.
    pub height: u32,
    /// Frames of background history (MOG2 `history`). Default 250 (50 s at 5 fps).
    pub history: i32,
    /// MOG2 `varThreshold`: squared distance, in variances, beyond which a pixel is foreground.
    /// Default 16 (4 standard deviations).
    pub var_threshold: f64,
    /// Largest frame-to-frame brightness change corrected before background subtraction (0.25 = a
    /// quarter brighter or darker than the recent average); 0 turns the correction off. Default 0.25.
    pub max_gain_correction: f64,
    /// Fraction of foreground pixels above which the whole picture is taken to have changed. Default
    /// 0.15.
    pub global_change_fraction: f32,
    /// Frames reported as nothing after a whole-picture change. Default 10 (2 s at 5 fps).
    pub settle_frames: u32,
    /// Learning rate while settling. Default 0.2.
    pub settle_learning_rate: f64,
    /// Shortest blob side that can be a rodent (longer side of its box). Default 3 (12 px at 1280).
    pub min_length_px: i32,
    /// Longest. Default 24 (96 px at 1280: a big rat with part of its tail).
    pub max_length_px: i32,
    /// Fewest pixels. Default 4.
    pub min_area_px: i32,
    /// Most pixels. Default 220.
    pub max_area_px: i32,
    /// Longest side over shortest side, at most. Default 6.
    pub max_aspect: f32,
    /// Blobs closer than this to a foreground region too big for a rodent, in this frame or the one
    /// before, are part of it (a person's head or feet, the fringe of an insect on the lens)...
    /// Default 4.
    pub big_region_margin_px: i32,
    /// ...or closer than this fraction of that region's longer side. Default 0.3.
    pub big_region_margin_ratio: f32,
    /// Farthest a blob may be from where a track was expected. Default 14 (a rat running at 2 m/s).
    pub gate_px: f32,
    /// Frames with a blob before a track can be confirmed. Default 5 (1 s at 5 fps).
    pub min_hits: u32,
    /// Least travel before a track is confirmed. Default 5.
    pub min_travel_px: f32,
    /// ...and at least this many blob lengths. Default 1.
    pub min_travel_lengths: f32,
    /// Least straightness (distance over path length) of the remembered positions. Default 0.6.
    pub min_straightness: f32,
    /// Positions remembered per track. Default 12.
    pub track_window: usize,
    /// Frames a track may go unseen before it is dropped. Default 4.
    pub max_misses: u32,
}

impl Default for RodentTuning {
    fn default() -> Self {
        RodentTuning {
            width: 320,
            height: 180,
            history: 250,
            var_threshold: 16.0,
            max_gain_correction: 0.25,
            global_change_fraction: 0.15,
            settle_frames: 10,
            settle_learning_rate: 0.2,
            min_length_px: 3,
            max_length_px: 24,
            min_area_px: 4,
            max_area_px: 220,
            max_aspect: 6.0,
            big_region_margin_px: 4,
            big_region_margin_ratio: 0.3,
            gate_px: 14.0,
            min_hits: 5,
            min_travel_px: 5.0,
            min_travel_lengths: 1.0,
            min_straightness: 0.6,
            track_window: 12,
            max_misses: 4,
        }
    }
}

impl RodentTuning {
    fn validate(&self) -> Result<(), DetectError> {
        let bad = |field: &'static str, reason: &str| {
            Err(DetectError::Config {
                field,
                reason: reason.to_string(),
            })
        };
        if !(16..=1920).contains(&self.width) || !(16..=1080).contains(&self.height) {
            return bad("width/height", "working size must be 16..1920 x 16..1080");
        }
        if self.history < 2 {
            return bad("history", "at least 2 frames");
        }
        if !(0.0..=0.5).contains(&self.max_gain_correction) {
            return bad("maxGainCorrection", "must be in 0..0.5");
        }
        if !(self.global_change_fraction > 0.0 && self.global_change_fraction <= 1.0) {
            return bad("globalChangeFraction", "must be in (0, 1]");
        }
        if !(self.settle_learning_rate > 0.0 && self.settle_learning_rate <= 1.0) {
            return bad("settleLearningRate", "must be in (0, 1]");
        }
        if self.min_length_px < 1 || self.max_length_px < self.min_length_px {
            return bad("minLengthPx/maxLengthPx", "need 1 <= min <= max");
        }
        if self.min_area_px < 1 || self.max_area_px < self.min_area_px {
            return bad("minAreaPx/maxAreaPx", "need 1 <= min <= max");
        }
        if self.min_hits < 2 || self.track_window < 2 {
            return bad("minHits/trackWindow", "at least 2");
        }
        Ok(())
    }
}

/// Detects rodents in the frames of one camera. See the module documentation.
pub struct RodentDetector {
    config: RodentConfig,
    mog: Ptr<BackgroundSubtractorMOG2>,
    tracker: Tracker,
    /// 255 where the rule looks, at the working size; `None` when it looks everywhere.
    zone_mask: Option<Mat>,
    kernel: Mat,
    /// Frames left to report nothing after a whole-picture change.
    settling: u32,
    /// Scratch images, reused frame to frame.
    small: Mat,
    fg: Mat,
    work: Mat,
    labels: Mat,
    stats: Mat,
    centroids: Mat,
    /// Slow average of the picture's mean brightness (gain correction).
    reference_mean: Option<f64>,
    /// Boxes of the foreground regions too big for a rodent in the last frame.
    big_regions: Vec<(i32, i32, i32, i32)>,
    /// Fraction of foreground pixels in the last frame (before zones), for diagnostics.
    last_foreground: f32,
}

impl std::fmt::Debug for RodentDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RodentDetector")
            .field("config", &self.config)
            .field("settling", &self.settling)
            .finish_non_exhaustive()
    }
}

impl RodentDetector {
    /// Builds a detector; fails on a bad zone or tuning value (the message names it).
    pub fn new(config: RodentConfig) -> Result<RodentDetector, DetectError> {
        config.tuning.validate()?;
        super::check_zones(&config.zones)?;
        super::check_zones(&config.ignore)?;
        let t = &config.tuning;
        let mog = video::create_background_subtractor_mog2(t.history, t.var_threshold, false)?;
        let zone_mask = if config.zones.is_empty() && config.ignore.is_empty() {
            None
        } else {
            Some(zone::mask(
                t.width,
                t.height,
                &config.zones,
                &config.ignore,
            )?)
        };
        let kernel = imgproc::get_structuring_element(
            imgproc::MORPH_ELLIPSE,
            Size::new(3, 3),
            Point::new(-1, -1),
        )?;
        let tracker = Tracker::new(TrackParams {
            gate_px: t.gate_px,
            min_hits: t.min_hits,
            min_travel_px: t.min_travel_px,
            min_travel_lengths: t.min_travel_lengths,
            min_straightness: t.min_straightness,
            window: t.track_window,
            max_misses: t.max_misses,
            max_tracks: 32,
        });
        Ok(RodentDetector {
            config,
            mog,
            tracker,
            zone_mask,
            kernel,
            settling: 0,
            small: Mat::default(),
            fg: Mat::default(),
            work: Mat::default(),
            labels: Mat::default(),
            stats: Mat::default(),
            centroids: Mat::default(),
            reference_mean: None,
            big_regions: Vec::new(),
            last_foreground: 0.0,
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &RodentConfig {
        &self.config
    }

    /// Fraction of the picture that was foreground in the last frame (0..1), zones not applied.
    pub fn last_foreground_fraction(&self) -> f32 {
        self.last_foreground
    }

    /// Whether the detector is re-learning after the whole picture changed.
    pub fn is_settling(&self) -> bool {
        self.settling > 0
    }

    /// [`Detector::process`], with OpenCV's errors.
    pub fn try_process(&mut self, frame: &Frame<'_>) -> Result<Vec<Detection>, DetectError> {
        let (w, h) = (self.config.tuning.width, self.config.tuning.height);
        let src = super::grey_mat(frame.luma, frame.width, frame.height)?;
        let in_hours = self
            .config
            .active_hours
            .is_none_or(|r| r.contains(frame.minute_of_day));
        let rate = if self.settling > 0 {
            self.config.tuning.settle_learning_rate
        } else {
            -1.0
        };
        if frame.width == w && frame.height == h {
            src.copy_to(&mut self.small)?;
        } else {
            imgproc::resize(
                &src,
                &mut self.small,
                Size::new(w as i32, h as i32),
                0.0,
                0.0,
                imgproc::INTER_AREA,
            )?;
        }
        // Cancel frame-to-frame gain jitter (IR auto-gain, mains flicker) against a slow reference.
        let mean = match &self.zone_mask {
            Some(m) => core::mean(&self.small, m)?[0],
            None => core::mean(&self.small, &core::no_array())?[0],
        };
        let reference = *self.reference_mean.get_or_insert(mean);
        let gain = if mean > 1.0 { reference / mean } else { 1.0 };
        let t = &self.config.tuning;
        if t.max_gain_correction > 0.0 && (gain - 1.0).abs() <= t.max_gain_correction {
            self.small.convert_to(&mut self.work, -1, gain, 0.0)?;
            BackgroundSubtractorTrait::apply(&mut self.mog, &self.work, &mut self.fg, rate)?;
        } else {
            BackgroundSubtractorTrait::apply(&mut self.mog, &self.small, &mut self.fg, rate)?;
        }
        self.reference_mean = Some(reference + 0.05 * (mean - reference));
        let fraction = core::count_non_zero(&self.fg)? as f32 / (w * h) as f32;
        self.last_foreground = fraction;
        if fraction > self.config.tuning.global_change_fraction {
            self.settling = self.config.tuning.settle_frames.max(1);
            self.tracker.clear();
            self.reference_mean = Some(mean);
            return Ok(Vec::new());
        }
        if self.settling > 0 {
            self.settling -= 1;
            return Ok(Vec::new());
        }
        if !in_hours {
            self.tracker.clear();
            return Ok(Vec::new());
        }

        if let Some(m) = &self.zone_mask {
            core::bitwise_and(&self.fg, m, &mut self.work, &core::no_array())?;
        } else {
            self.fg.copy_to(&mut self.work)?;
        }
        imgproc::morphology_ex(
            &self.work,
            &mut self.fg,
            imgproc::MORPH_CLOSE,
            &self.kernel,
            Point::new(-1, -1),
            1,
            core::BORDER_CONSTANT,
            imgproc::morphology_default_border_value()?,
        )?;
        let blobs = self.blobs()?;
        let tracks = self.tracker.update(&blobs);
        let (fw, fh) = (w as f32, h as f32);
        let boxes: Vec<NormBox> = tracks
            .iter()
            .map(|t| {
                let b = t.last;
                let confidence =
                    (0.5 + 0.25 * t.straightness + 0.25 * (t.hits as f32 / 20.0).min(1.0))
                        .clamp(0.0, 1.0);
                NormBox {
                    x: b.x as f32 / fw,
                    y: b.y as f32 / fh,
                    w: b.w as f32 / fw,
                    h: b.h as f32 / fh,
                    label: Some("rodent".to_string()),
                    confidence: Some(confidence),
                }
            })
            .collect();
        if boxes.is_empty() {
            return Ok(Vec::new());
        }
        let confidence = boxes
            .iter()
            .filter_map(|b| b.confidence)
            .fold(0.0, f32::max);
        Ok(vec![Detection {
            kind: ViolationKind::Rodent,
            boxes,
            confidence,
        }])
    }

    /// Connected components of the cleaned foreground that could be a rodent.
    fn blobs(&mut self) -> Result<Vec<Blob>, DetectError> {
        let n = imgproc::connected_components_with_stats(
            &self.fg,
            &mut self.labels,
            &mut self.stats,
            &mut self.centroids,
            8,
            core::CV_32S,
        )?;
        let t = &self.config.tuning;
        let mut candidates = Vec::new();
        let previous = std::mem::take(&mut self.big_regions);
        let mut big: Vec<(i32, i32, i32, i32)> = Vec::new();
        // Label 0 is the background.
        for i in 1..n {
            let s = self.stats.at_row::<i32>(i)?;
            let (x, y, w, h, area) = (s[0], s[1], s[2], s[3], s[4]);
            let length = w.max(h);
            if area > t.max_area_px || length > t.max_length_px {
                big.push((x, y, w, h));
                continue;
            }
            let thickness = w.min(h).max(1);
            if area < t.min_area_px
                || length < t.min_length_px
                || length as f32 / thickness as f32 > t.max_aspect
            {
                continue;
            }
            let c = self.centroids.at_row::<f64>(i)?;
            candidates.push(Blob {
                cx: c[0] as f32,
                cy: c[1] as f32,
                x,
                y,
                w,
                h,
                area,
            });
        }
        let (m0, ratio) = (t.big_region_margin_px, t.big_region_margin_ratio);
        candidates.retain(|b| {
            !big.iter().chain(&previous).any(|&(x, y, w, h)| {
                let m = m0.max((ratio * w.max(h) as f32).round() as i32);
                b.x < x + w + m && x < b.x + b.w + m && b.y < y + h + m && y < b.y + b.h + m
            })
        });
        self.big_regions = big;
        Ok(candidates)
    }
}

impl Detector for RodentDetector {
    fn model_name(&self) -> &str {
        MODEL_NAME
    }

    fn model_version(&self) -> &str {
        MODEL_VERSION
    }

    fn kinds(&self) -> &[ViolationKind] {
        &[ViolationKind::Rodent]
    }

    fn process(&mut self, frame: &Frame<'_>) -> Vec<Detection> {
        match self.try_process(frame) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(err = %e, "rodent detector skipped a frame");
                Vec::new()
            }
        }
    }
}
