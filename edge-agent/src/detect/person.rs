//! No chef hat / no mask: find the people, cut each one's head region, let a head classifier judge it.
//!
//! ```text
//! frame ─▶ motion gate ─(moved, or the last look is older than refresh_ms)─▶ person finder
//!       ─▶ head region (top quarter of each person box) ─▶ head classifier ─▶ noChefHat / noMask
//! ```
//!
//! Both stages are pluggable: a [`PersonFinder`] (default [`YoloPersons`], the COCO yolov3-tiny) and
//! a [`HeadClassifier`] (default [`HeuristicHead`]). While nothing moves the last answer stands, so a
//! cook standing still without a hat stays an open episode without running the network again.

use std::sync::{Arc, Mutex};

use bl_proto::event::{NormBox, ViolationKind};
use opencv::core::{CV_8UC3, Mat, Rect};
use opencv::prelude::*;

use super::head::{HeadClassifier, HeuristicHead, head_region, head_search_region};
use super::motion::MotionGate;
use super::yolo::{PersonBox, PersonModel, YoloConfig};
use super::{DetectError, Detection, Detector, Frame};

/// Finds people in a picture; pluggable.
pub trait PersonFinder: Send {
    /// Short name for `DetectionEvent.model.name`.
    fn name(&self) -> &str;
    /// Version for `DetectionEvent.model.version`.
    fn version(&self) -> &str;
    /// The people in `bgr` (the frame's picture in colour), in its pixels.
    fn find(&mut self, frame: &Frame<'_>, bgr: &Mat) -> Result<Vec<PersonBox>, DetectError>;
}

/// The default person finder: the COCO yolov3-tiny network ([`PersonModel`]).
pub struct YoloPersons {
    model: PersonModel,
}

impl YoloPersons {
    /// Loads the network (see [`YoloConfig`]).
    pub fn load(config: YoloConfig) -> Result<YoloPersons, DetectError> {
        Ok(YoloPersons {
            model: PersonModel::load(config)?,
        })
    }
}

impl PersonFinder for YoloPersons {
    fn name(&self) -> &str {
        "yolov3-tiny-coco"
    }

    fn version(&self) -> &str {
        "darknet-2018"
    }

    fn find(&mut self, _frame: &Frame<'_>, bgr: &Mat) -> Result<Vec<PersonBox>, DetectError> {
        self.model.detect(bgr)
    }
}

/// The default person model, loaded once per process and shared by every camera's detector: one
/// detection worker runs them one after another, so a box holds one copy of the network.
#[derive(Clone)]
pub struct SharedPersons(Arc<Mutex<YoloPersons>>);

impl SharedPersons {
    /// The default model from [`super::yolo::models_dir`], loaded at the first call (a failed load
    /// is not remembered: installing the model and applying the rules again works).
    pub fn default_model() -> Result<SharedPersons, DetectError> {
        static LOADED: Mutex<Option<SharedPersons>> = Mutex::new(None);
        let mut loaded = LOADED.lock().expect("person model lock");
        if let Some(m) = loaded.as_ref() {
            return Ok(m.clone());
        }
        let dir = super::yolo::models_dir().join(super::yolo::DEFAULT_MODEL_DIR);
        let m = SharedPersons(Arc::new(Mutex::new(YoloPersons::load(
            YoloConfig::in_dir(dir),
        )?)));
        *loaded = Some(m.clone());
        Ok(m)
    }
}

impl PersonFinder for SharedPersons {
    fn name(&self) -> &str {
        "yolov3-tiny-coco"
    }

    fn version(&self) -> &str {
        "darknet-2018"
    }

    fn find(&mut self, frame: &Frame<'_>, bgr: &Mat) -> Result<Vec<PersonBox>, DetectError> {
        self.0.lock().expect("person model lock").find(frame, bgr)
    }
}

/// The head classifier a box uses: a site-trained model when `{models}/head/model.toml` exists
/// (see edge-agent/README.md), else the colour heuristic.
pub fn default_head() -> Result<Box<dyn HeadClassifier>, DetectError> {
    let manifest = super::yolo::models_dir().join("head").join("model.toml");
    if manifest.is_file() {
        Ok(Box::new(super::manifest::OnnxHead::load(&manifest)?))
    } else {
        Ok(Box::new(HeuristicHead::default()))
    }
}

/// Which rules apply and how often to look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HatMaskConfig {
    /// Report heads without a chef hat (`noChefHat`). Default true.
    pub hat: bool,
    /// Report faces without a mask (`noMask`; needs colour frames). Default true.
    pub mask: bool,
    /// Heads whose region is less than this many pixels high are not judged. Default 20.
    pub min_head_px: i32,
    /// Without movement, the last answer stands for this long before the model runs again.
    /// Default 10 000 ms.
    pub refresh_ms: u64,
}

impl Default for HatMaskConfig {
    fn default() -> Self {
        HatMaskConfig {
            hat: true,
            mask: true,
            min_head_px: 20,
            refresh_ms: 10_000,
        }
    }
}

/// The chef-hat / mask detector of one camera.
pub struct HatMaskDetector {
    persons: Box<dyn PersonFinder>,
    heads: Box<dyn HeadClassifier>,
    config: HatMaskConfig,
    gate: MotionGate,
    last: Vec<Detection>,
    last_look_ms: Option<u64>,
    looks: u64,
    name: String,
    version: String,
}

impl HatMaskDetector {
    /// A detector from its two stages.
    pub fn new(
        persons: Box<dyn PersonFinder>,
        heads: Box<dyn HeadClassifier>,
        config: HatMaskConfig,
    ) -> HatMaskDetector {
        HatMaskDetector {
            name: format!("{}+{}", persons.name(), heads.name()),
            version: format!("{}+{}", persons.version(), heads.version()),
            persons,
            heads,
            config,
            gate: MotionGate::default(),
            last: Vec::new(),
            last_look_ms: None,
            looks: 0,
        }
    }

    /// The default: yolov3-tiny from `model` and the colour heuristic.
    pub fn with_defaults(
        model: YoloConfig,
        config: HatMaskConfig,
    ) -> Result<HatMaskDetector, DetectError> {
        Ok(HatMaskDetector::new(
            Box::new(YoloPersons::load(model)?),
            Box::new(HeuristicHead::default()),
            config,
        ))
    }

    /// The detector a camera's rules ask for (`hat`: noChefHat, `mask`: noMask): the shared default
    /// person model and [`default_head`].
    pub fn for_rules(hat: bool, mask: bool) -> Result<HatMaskDetector, DetectError> {
        Ok(HatMaskDetector::new(
            Box::new(SharedPersons::default_model()?),
            default_head()?,
            HatMaskConfig {
                hat,
                mask,
                ..HatMaskConfig::default()
            },
        ))
    }

    /// How many frames the person finder has looked at (the rest were skipped by the motion gate).
    pub fn looks(&self) -> u64 {
        self.looks
    }

    /// [`Detector::process`] with OpenCV's errors returned.
    pub fn try_process(&mut self, frame: &Frame<'_>) -> Result<Vec<Detection>, DetectError> {
        let moved = self.gate.moved(frame)?;
        let fresh = self
            .last_look_ms
            .is_some_and(|t| frame.at_ms.saturating_sub(t) < self.config.refresh_ms);
        if !moved && fresh {
            return Ok(self.last.clone());
        }
        let (bgr, colour) = picture(frame)?;
        let persons = self.persons.find(frame, &bgr)?;
        self.looks += 1;
        let (w, h) = (frame.width as f32, frame.height as f32);
        let mut no_hat = Vec::new();
        let mut no_mask = Vec::new();
        for p in persons {
            let person = Rect::new(p.x, p.y, p.w, p.h);
            let (cols, rows, min) = (bgr.cols(), bgr.rows(), self.config.min_head_px);
            // A classifier that finds the head itself searches above the box too (see
            // head_search_region); where it finds none, the box's top quarter is judged.
            let mut found = None;
            if self.heads.locates_head()
                && let Some(search) = head_search_region(person, cols, rows, min)
            {
                let v = self.heads.judge(&Mat::roi(&bgr, search)?.try_clone()?)?;
                if let Some((top, bottom)) = v.rows.filter(|(t, b)| b > t) {
                    let r = Rect::new(search.x, search.y + top, search.width, bottom - top);
                    found = Some((r, v));
                }
            }
            let (r, v) = match found {
                Some(f) => f,
                None => {
                    let Some(r) = head_region(person, cols, rows, min) else {
                        continue;
                    };
                    (r, self.heads.judge(&Mat::roi(&bgr, r)?.try_clone()?)?)
                }
            };
            let head = |confidence: f32| NormBox {
                x: r.x as f32 / w,
                y: r.y as f32 / h,
                w: r.width as f32 / w,
                h: r.height as f32 / h,
                label: Some("head".into()),
                confidence: Some((confidence * p.score).clamp(0.0, 1.0)),
            };
            if self.config.hat && v.hat == Some(false) {
                no_hat.push(head(v.hat_confidence));
            }
            if self.config.mask && colour && v.mask == Some(false) {
                no_mask.push(head(v.mask_confidence));
            }
        }
        self.last = [
            (ViolationKind::NoChefHat, no_hat),
            (ViolationKind::NoMask, no_mask),
        ]
        .into_iter()
        .filter(|(_, boxes)| !boxes.is_empty())
        .map(|(kind, boxes)| Detection {
            kind,
            confidence: boxes
                .iter()
                .filter_map(|b| b.confidence)
                .fold(0.0, f32::max),
            boxes,
        })
        .collect();
        self.last_look_ms = Some(frame.at_ms);
        Ok(self.last.clone())
    }
}

/// The frame as a BGR Mat, and whether it has real colour.
fn picture(frame: &Frame<'_>) -> Result<(Mat, bool), DetectError> {
    let (w, h) = (frame.width as i32, frame.height as i32);
    match frame.bgr {
        Some(bgr) => {
            if bgr.len() != frame.width as usize * frame.height as usize * 3 {
                return Err(DetectError::Config {
                    field: "frame.bgr",
                    reason: format!("{} bytes for {w}x{h} BGR", bgr.len()),
                });
            }
            let m = Mat::new_rows_cols_with_data(h, w * 3, bgr)?
                .reshape(3, h)?
                .try_clone()?;
            debug_assert_eq!(m.typ(), CV_8UC3);
            Ok((m, true))
        }
        None => {
            let grey = super::grey_mat(frame.luma, frame.width, frame.height)?;
            let mut m = Mat::default();
            opencv::imgproc::cvt_color_def(&grey, &mut m, opencv::imgproc::COLOR_GRAY2BGR)?;
            Ok((m, false))
        }
    }
}

impl Detector for HatMaskDetector {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn model_version(&self) -> &str {
        &self.version
    }

    fn kinds(&self) -> &[ViolationKind] {
        match (self.config.hat, self.config.mask) {
            (true, true) => &[ViolationKind::NoChefHat, ViolationKind::NoMask],
            (true, false) => &[ViolationKind::NoChefHat],
            (false, true) => &[ViolationKind::NoMask],
            (false, false) => &[],
        }
    }

    fn process(&mut self, frame: &Frame<'_>) -> Vec<Detection> {
        self.try_process(frame).unwrap_or_else(|e| {
            tracing::warn!(err = %e, "hat/mask detector failed on a frame");
            Vec::new()
        })
    }

    fn wants_colour(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Always finds one person at the same place.
    struct StillPerson;

    impl PersonFinder for StillPerson {
        fn name(&self) -> &str {
            "still"
        }
        fn version(&self) -> &str {
            "0"
        }
        fn find(&mut self, _: &Frame<'_>, _: &Mat) -> Result<Vec<PersonBox>, DetectError> {
            Ok(vec![PersonBox {
                x: 80,
                y: 40,
                w: 40,
                h: 160,
                score: 0.8,
            }])
        }
    }

    /// A grey 200x200 picture with dark hair on top of the person's head region.
    fn hatless() -> Vec<u8> {
        let mut luma = vec![150u8; 200 * 200];
        for y in 40..54 {
            for x in 80..120 {
                luma[y * 200 + x] = 20;
            }
        }
        luma
    }

    fn frame(luma: &[u8], at_ms: u64) -> Frame<'_> {
        Frame {
            width: 200,
            height: 200,
            luma,
            bgr: None,
            at_ms,
            minute_of_day: 600,
        }
    }

    #[test]
    fn a_still_hatless_cook_stays_reported_without_running_the_person_model_again() {
        let mut d = HatMaskDetector::new(
            Box::new(StillPerson),
            Box::new(HeuristicHead::default()),
            HatMaskConfig::default(),
        );
        let luma = hatless();
        for at_ms in (0..5_000).step_by(200) {
            let found = d.try_process(&frame(&luma, at_ms)).unwrap();
            assert_eq!(found.len(), 1, "at {at_ms} ms");
            assert_eq!(found[0].kind, ViolationKind::NoChefHat);
            assert_eq!(found[0].boxes[0].label.as_deref(), Some("head"));
        }
        assert_eq!(d.looks(), 1, "nothing moved: one look is enough");
        d.try_process(&frame(&luma, 10_000)).unwrap();
        assert_eq!(d.looks(), 2, "the answer is refreshed after refresh_ms");
    }

    #[test]
    fn grey_frames_give_no_chef_hat_but_never_no_mask() {
        let mut d = HatMaskDetector::new(
            Box::new(StillPerson),
            Box::new(HeuristicHead::default()),
            HatMaskConfig::default(),
        );
        let kinds: Vec<_> = d
            .try_process(&frame(&hatless(), 0))
            .unwrap()
            .into_iter()
            .map(|x| x.kind)
            .collect();
        assert_eq!(kinds, vec![ViolationKind::NoChefHat]);
        assert_eq!(d.model_name(), "still+hat-mask-heuristic");
    }
}
