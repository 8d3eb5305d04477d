//! The person model: a COCO YOLO network loaded with OpenCV DNN (default: Darknet yolov3-tiny,
//! installed by `deploy/dev/install-models.sh` into `.data/models/yolov3-tiny/`).
//!
//! One colour picture in, person boxes out (pixels of that picture). The network sees the whole
//! picture letterboxed into its square input, so people keep their proportions.

use std::path::{Path, PathBuf};

use opencv::core::{Mat, Rect, Scalar, Size, Vector};
use opencv::dnn;
use opencv::prelude::*;

use super::DetectError;

/// Where the set-up script puts the default model, relative to the repository or `$BL_MODELS_DIR`.
pub const DEFAULT_MODEL_DIR: &str = "yolov3-tiny";

/// How the person model runs.
#[derive(Debug, Clone, PartialEq)]
pub struct YoloConfig {
    /// Folder with `yolov3-tiny.cfg`, `yolov3-tiny.weights` and `coco.names`.
    pub dir: PathBuf,
    /// Side of the square network input, a multiple of 32. Default 416 (320 is faster and misses
    /// more small, far people).
    pub input: i32,
    /// A person box is kept from this score on (objectness × class score). Default 0.25.
    pub min_score: f32,
    /// Boxes overlapping more than this (IoU) are one person. Default 0.45.
    pub nms_iou: f32,
}

impl YoloConfig {
    /// The default settings for the model in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> YoloConfig {
        YoloConfig {
            dir: dir.into(),
            input: 416,
            min_score: 0.25,
            nms_iou: 0.45,
        }
    }
}

/// The models folder: `$BL_MODELS_DIR`, else `.data/models` of the repository this binary was built
/// in (the dev set-up; a deployed box sets the variable).
pub fn models_dir() -> PathBuf {
    match std::env::var_os("BL_MODELS_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.data/models"),
    }
}

/// One person found, in pixels of the picture given to [`PersonModel::detect`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PersonBox {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
    pub score: f32,
}

/// A loaded person network.
pub struct PersonModel {
    net: dnn::Net,
    outputs: Vector<String>,
    config: YoloConfig,
    person_class: usize,
}

impl PersonModel {
    /// Loads the network; the error names the missing file and how to get it.
    pub fn load(config: YoloConfig) -> Result<PersonModel, DetectError> {
        if config.input < 32 || config.input % 32 != 0 {
            return Err(DetectError::Config {
                field: "input",
                reason: format!("{} is not a positive multiple of 32", config.input),
            });
        }
        let file = |name: &str| -> Result<PathBuf, DetectError> {
            let p = config.dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(DetectError::Model(format!(
                    "{} is missing; run deploy/dev/install-models.sh (or set BL_MODELS_DIR)",
                    p.display()
                )))
            }
        };
        let cfg = file("yolov3-tiny.cfg")?;
        let weights = file("yolov3-tiny.weights")?;
        let names = std::fs::read_to_string(file("coco.names")?)
            .map_err(|e| DetectError::Model(format!("coco.names: {e}")))?;
        let person_class = names
            .lines()
            .position(|l| l.trim() == "person")
            .ok_or_else(|| DetectError::Model("coco.names has no `person` class".into()))?;
        let weights = weights
            .to_str()
            .ok_or_else(|| DetectError::Model("model path is not UTF-8".into()))?;
        let mut net = dnn::read_net_from_darknet(&cfg, weights)?;
        net.set_preferable_backend(dnn::DNN_BACKEND_OPENCV)?;
        net.set_preferable_target(dnn::DNN_TARGET_CPU)?;
        let outputs = net.get_unconnected_out_layers_names()?;
        Ok(PersonModel {
            net,
            outputs,
            config,
            person_class,
        })
    }

    /// The persons in a BGR picture (8-bit, 3 channels).
    pub fn detect(&mut self, bgr: &Mat) -> Result<Vec<PersonBox>, DetectError> {
        let (w, h) = (bgr.cols(), bgr.rows());
        let side = self.config.input;
        // Letterbox: scale the longer side to the input, pad the rest with grey.
        let scale = side as f64 / w.max(h) as f64;
        let (sw, sh) = (
            ((w as f64 * scale).round() as i32).max(1),
            ((h as f64 * scale).round() as i32).max(1),
        );
        let mut resized = Mat::default();
        opencv::imgproc::resize(
            bgr,
            &mut resized,
            Size::new(sw, sh),
            0.0,
            0.0,
            opencv::imgproc::INTER_AREA,
        )?;
        let mut square = Mat::default();
        opencv::core::copy_make_border(
            &resized,
            &mut square,
            0,
            side - sh,
            0,
            side - sw,
            opencv::core::BORDER_CONSTANT,
            Scalar::all(114.0),
        )?;
        let blob = dnn::blob_from_image(
            &square,
            1.0 / 255.0,
            Size::new(side, side),
            Scalar::default(),
            true,
            false,
            opencv::core::CV_32F,
        )?;
        self.net.set_input(&blob, "", 1.0, Scalar::default())?;
        let mut outs: Vector<Mat> = Vector::new();
        self.net.forward(&mut outs, &self.outputs)?;

        // Each row: cx, cy, w, h (of the square input, 0..1), objectness, then one score per class
        // (OpenCV's region layer already multiplies the class scores by the objectness).
        let mut rects: Vector<Rect> = Vector::new();
        let mut scores: Vector<f32> = Vector::new();
        let col = 5 + self.person_class as i32;
        for out in &outs {
            for r in 0..out.rows() {
                let score = *out.at_2d::<f32>(r, col)?;
                if score < self.config.min_score {
                    continue;
                }
                let v = |c: i32| {
                    out.at_2d::<f32>(r, c)
                        .map(|x| *x as f64 * side as f64 / scale)
                };
                let (cx, cy, bw, bh) = (v(0)?, v(1)?, v(2)?, v(3)?);
                let x0 = (cx - bw / 2.0).clamp(0.0, w as f64);
                let y0 = (cy - bh / 2.0).clamp(0.0, h as f64);
                let x1 = (cx + bw / 2.0).clamp(0.0, w as f64);
                let y1 = (cy + bh / 2.0).clamp(0.0, h as f64);
                if x1 - x0 < 2.0 || y1 - y0 < 2.0 {
                    continue;
                }
                rects.push(Rect::new(
                    x0 as i32,
                    y0 as i32,
                    (x1 - x0) as i32,
                    (y1 - y0) as i32,
                ));
                scores.push(score);
            }
        }
        let mut keep: Vector<i32> = Vector::new();
        dnn::nms_boxes(
            &rects,
            &scores,
            self.config.min_score,
            self.config.nms_iou,
            &mut keep,
            1.0,
            0,
        )?;
        let mut found = Vec::with_capacity(keep.len());
        for i in keep {
            let r = rects.get(i as usize)?;
            found.push(PersonBox {
                x: r.x,
                y: r.y,
                w: r.width,
                h: r.height,
                score: scores.get(i as usize)?,
            });
        }
        Ok(found)
    }
}
