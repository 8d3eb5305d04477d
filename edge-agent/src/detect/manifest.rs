//! Site-trained head models: an ONNX file with a TOML manifest beside it that says how to feed it and
//! what its outputs mean (format in DETECTION.md, "Loading a site-trained model").
//!
//! Layouts: `classify` (one probability per class for a head crop) and the detectors `yolov5` /
//! `yolov8` (boxes with classes, found in the head crop; decoded by [`super::yolo_decode`], which
//! recognises the exact output layout from its shape, the YOLOv8 graph cut before its DFL
//! included). Each is loaded with OpenCV DNN as a [`HeadClassifier`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use opencv::core::{Mat, Scalar, Size};
use opencv::dnn;
use opencv::prelude::*;
use serde::Deserialize;

use super::DetectError;
use super::head::{HeadClassifier, HeadVerdict};
use super::yolo_decode::{self, YoloLayout};

/// `model.toml`, beside the ONNX file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    /// Name reported in `DetectionEvent.model.name`.
    pub name: String,
    /// Version reported in `DetectionEvent.model.version`.
    pub version: String,
    /// The ONNX file, relative to the manifest.
    pub file: PathBuf,
    /// How the outputs are laid out.
    pub layout: Layout,
    /// What the network takes.
    pub input: Input,
    /// Class names, in output order.
    pub classes: Vec<String>,
    /// Which class means which violation (`noChefHat`, `noMask`).
    pub violations: BTreeMap<String, Violation>,
}

/// Output layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Layout {
    /// One probability per class (the network ends in softmax or sigmoid), for a head crop.
    Classify,
    /// YOLOv5 detection output `[1, N, 5 + classes]` (opset 12, static shape).
    Yolov5,
    /// YOLOv8 detection output `[1, 4 + classes, N]`, or the graph cut before the DFL node
    /// (`[1, 64 + classes, N]`), which is what OpenCV 4.6 can load.
    Yolov8,
}

/// Network input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Input {
    /// Pixels, e.g. 64.
    pub width: i32,
    pub height: i32,
    /// Channel order the network was trained on: `rgb` or `bgr`. Default `rgb`.
    #[serde(default = "rgb")]
    pub channels: String,
    /// Pixel values are multiplied by this after the mean is subtracted. Default 1/255.
    #[serde(default = "unit_scale")]
    pub scale: f64,
    /// Subtracted per channel (in `channels` order) before scaling. Default `[0, 0, 0]`.
    #[serde(default)]
    pub mean: [f64; 3],
}

fn rgb() -> String {
    "rgb".into()
}

fn unit_scale() -> f64 {
    1.0 / 255.0
}

/// One violation class.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Violation {
    /// The class whose probability means the rule is broken (e.g. `no_hat`).
    pub class: String,
    /// From this probability on it is reported; at or under `1 - threshold` the rule counts as kept.
    pub threshold: f32,
}

/// The violation kinds a head model may name.
pub const KINDS: [&str; 2] = ["noChefHat", "noMask"];

impl Manifest {
    /// Reads and checks a manifest; errors name the file and the field.
    pub fn load(path: &Path) -> Result<(Manifest, PathBuf), DetectError> {
        let bad = |reason: String| DetectError::Model(format!("{}: {reason}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let m: Manifest = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        m.check().map_err(bad)?;
        let file = path.parent().unwrap_or(Path::new(".")).join(&m.file);
        Ok((m, file))
    }

    /// Checks what serde cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.input.width < 8 || self.input.height < 8 {
            return Err("input.width and input.height must be at least 8".into());
        }
        if !matches!(self.input.channels.as_str(), "rgb" | "bgr") {
            return Err(format!(
                "input.channels `{}`: use rgb or bgr",
                self.input.channels
            ));
        }
        if self.classes.is_empty() {
            return Err("classes: at least one class".into());
        }
        if self.violations.is_empty() {
            return Err("violations: name at least one (noChefHat, noMask)".into());
        }
        for (kind, v) in &self.violations {
            if !KINDS.contains(&kind.as_str()) {
                return Err(format!(
                    "violations.{kind}: a head model reports noChefHat or noMask"
                ));
            }
            if !self.classes.contains(&v.class) {
                return Err(format!(
                    "violations.{kind}.class `{}` is not in classes",
                    v.class
                ));
            }
            if !(0.5..=1.0).contains(&v.threshold) {
                return Err(format!("violations.{kind}.threshold must be in 0.5..=1"));
            }
        }
        Ok(())
    }
}

/// A site-trained head model: a classifier, or a YOLO detector run over the head crop.
pub struct OnnxHead {
    manifest: Manifest,
    net: dnn::Net,
    /// Output column (class) of each violation: (kind, column, threshold).
    columns: Vec<(String, usize, f32)>,
    /// For the detection layouts: the exact layout, recognised from the output shape at load.
    yolo: Option<YoloLayout>,
}

/// Boxes under this score are not considered by a detection-layout head model.
const YOLO_MIN_SCORE: f32 = 0.25;

impl OnnxHead {
    /// Loads the model a manifest describes.
    pub fn load(manifest_path: &Path) -> Result<OnnxHead, DetectError> {
        let (manifest, file) = Manifest::load(manifest_path)?;
        if !file.is_file() {
            return Err(DetectError::Model(format!("{} is missing", file.display())));
        }
        let mut net = dnn::read_net_from_onnx(&file)?;
        let columns = manifest
            .violations
            .iter()
            .map(|(k, v)| {
                let col = manifest
                    .classes
                    .iter()
                    .position(|c| c == &v.class)
                    .unwrap_or(0);
                (k.clone(), col, v.threshold)
            })
            .collect();
        let yolo = match manifest.layout {
            Layout::Classify => None,
            declared => {
                // One run on a blank input tells the output shape, hence the exact layout.
                let blank = Mat::new_rows_cols_with_default(
                    manifest.input.height,
                    manifest.input.width,
                    opencv::core::CV_8UC3,
                    Scalar::all(0.0),
                )?;
                let (_, shape) = forward(&mut net, &manifest.input, &blank)?;
                let bad = |reason: String| {
                    DetectError::Model(format!("{}: {reason}", manifest_path.display()))
                };
                let found = yolo_decode::recognise(&shape, manifest.classes.len()).map_err(bad)?;
                let family = match found {
                    YoloLayout::V5 { .. } => Layout::Yolov5,
                    _ => Layout::Yolov8,
                };
                if family != declared {
                    return Err(bad(format!(
                        "layout is {declared:?} but the output shape {shape:?} is {found:?}"
                    )));
                }
                Some(found)
            }
        };
        Ok(OnnxHead {
            manifest,
            net,
            columns,
            yolo,
        })
    }

    /// The verdict of a detection-layout model: per violation, the best box of its class against
    /// the best box of any other class.
    fn judge_boxes(&self, boxes: &[yolo_decode::YoloBox]) -> HeadVerdict {
        let mut v = HeadVerdict::default();
        for (kind, col, threshold) in &self.columns {
            let of = |same: bool| {
                boxes
                    .iter()
                    .filter(|b| (b.class == *col) == same)
                    .map(|b| b.score)
                    .fold(0.0f32, f32::max)
            };
            let (broken, other) = (of(true), of(false));
            let (answer, confidence) = if broken >= *threshold {
                (Some(false), broken)
            } else if other >= *threshold && broken <= 1.0 - threshold {
                (Some(true), other)
            } else {
                (None, 0.0)
            };
            set(&mut v, kind, answer, confidence);
        }
        v
    }
}

/// Runs the network on one crop; returns the output values and the output shape.
fn forward(
    net: &mut dnn::Net,
    i: &Input,
    crop: &Mat,
) -> Result<(Vec<f32>, Vec<usize>), opencv::Error> {
    let rgb = i.channels == "rgb";
    let mean = if rgb {
        Scalar::new(i.mean[0], i.mean[1], i.mean[2], 0.0)
    } else {
        Scalar::new(i.mean[2], i.mean[1], i.mean[0], 0.0)
    };
    let blob = dnn::blob_from_image(
        crop,
        i.scale,
        Size::new(i.width, i.height),
        mean,
        rgb,
        false,
        opencv::core::CV_32F,
    )?;
    net.set_input(&blob, "", 1.0, Scalar::default())?;
    let out: Mat = net.forward_single_def()?;
    let shape = out.mat_size().iter().map(|&d| d.max(0) as usize).collect();
    Ok((out.data_typed::<f32>()?.to_vec(), shape))
}

fn set(v: &mut HeadVerdict, kind: &str, answer: Option<bool>, confidence: f32) {
    if kind == "noChefHat" {
        (v.hat, v.hat_confidence) = (answer, confidence);
    } else {
        (v.mask, v.mask_confidence) = (answer, confidence);
    }
}

impl HeadClassifier for OnnxHead {
    fn name(&self) -> &str {
        &self.manifest.name
    }

    fn version(&self) -> &str {
        &self.manifest.version
    }

    fn judge(&mut self, head: &Mat) -> Result<HeadVerdict, opencv::Error> {
        let (scores, _) = forward(&mut self.net, &self.manifest.input, head)?;
        if let Some(layout) = self.yolo {
            let i = &self.manifest.input;
            let boxes = yolo_decode::decode(
                layout,
                &scores,
                self.manifest.classes.len(),
                i.width as usize,
                i.height as usize,
                YOLO_MIN_SCORE,
                0.45,
            )
            .map_err(|e| opencv::Error::new(opencv::core::StsError, e))?;
            return Ok(self.judge_boxes(&boxes));
        }
        let mut v = HeadVerdict::default();
        for (kind, col, threshold) in &self.columns {
            let p = scores.get(*col).copied().unwrap_or(0.0);
            let (answer, confidence) = if p >= *threshold {
                (Some(false), p)
            } else if p <= 1.0 - threshold {
                (Some(true), 1.0 - p)
            } else {
                (None, 0.0)
            };
            set(&mut v, kind, answer, confidence);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "site-hat"
version = "2026-11-01"
file = "hat.onnx"
layout = "classify"
classes = ["hat", "no_hat", "mask", "no_mask"]
[input]
width = 64
height = 64
[violations]
noChefHat = { class = "no_hat", threshold = 0.6 }
noMask = { class = "no_mask", threshold = 0.7 }
"#;

    #[test]
    fn a_documented_manifest_parses_with_its_defaults() {
        let m: Manifest = toml::from_str(GOOD).unwrap();
        m.check().unwrap();
        assert_eq!(m.input.channels, "rgb");
        assert!((m.input.scale - 1.0 / 255.0).abs() < 1e-12);
        assert_eq!(m.violations["noMask"].threshold, 0.7);
    }

    #[test]
    fn a_manifest_naming_an_unknown_class_or_kind_is_refused_by_field() {
        let m: Manifest =
            toml::from_str(&GOOD.replace("class = \"no_hat\"", "class = \"bare\"")).unwrap();
        assert!(
            m.check()
                .unwrap_err()
                .contains("violations.noChefHat.class `bare`")
        );
        let m: Manifest = toml::from_str(&GOOD.replace("noMask =", "smoking =")).unwrap();
        assert!(m.check().unwrap_err().contains("violations.smoking"));
        assert!(toml::from_str::<Manifest>(&GOOD.replace("layout", "shape")).is_err());
    }

    #[test]
    fn a_missing_model_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.toml");
        std::fs::write(&path, GOOD.replace("\"classify\"", "\"yolov8\"")).unwrap();
        let err = OnnxHead::load(&path).err().unwrap().to_string();
        assert!(err.contains("hat.onnx is missing"), "{err}");
    }
}
