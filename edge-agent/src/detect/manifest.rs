//! Site-trained head models: an ONNX file with a TOML manifest beside it that says how to feed it and
//! what its outputs mean (format in DETECTION.md, "Loading a site-trained model").
//!
//! Built: the `classify` layout (one probability per class for a head crop), loaded with OpenCV DNN
//! as a [`HeadClassifier`]. The `yolov5` / `yolov8` detection layouts are recognised in the manifest
//! but refused at load with a clear message: decoding them is not built yet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use opencv::core::{Mat, Scalar, Size};
use opencv::dnn;
use opencv::prelude::*;
use serde::Deserialize;

use super::DetectError;
use super::head::{HeadClassifier, HeadVerdict};

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
    /// YOLOv5 detection output `[1, N, 5 + classes]` (opset 12, static shape). Not decoded yet.
    Yolov5,
    /// YOLOv8 detection output cut before the DFL node. Not decoded yet.
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

/// A site-trained head classifier (`classify` layout).
pub struct OnnxHead {
    manifest: Manifest,
    net: dnn::Net,
    /// Output column of each violation: (kind, column, threshold).
    columns: Vec<(String, usize, f32)>,
}

impl OnnxHead {
    /// Loads the model a manifest describes.
    pub fn load(manifest_path: &Path) -> Result<OnnxHead, DetectError> {
        let (manifest, file) = Manifest::load(manifest_path)?;
        if manifest.layout != Layout::Classify {
            return Err(DetectError::Model(format!(
                "{}: layout {:?} is recognised but its decoding is not built yet; use `classify`",
                manifest_path.display(),
                manifest.layout
            )));
        }
        if !file.is_file() {
            return Err(DetectError::Model(format!("{} is missing", file.display())));
        }
        let net = dnn::read_net_from_onnx(&file)?;
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
        Ok(OnnxHead {
            manifest,
            net,
            columns,
        })
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
        let i = &self.manifest.input;
        let rgb = i.channels == "rgb";
        let mean = if rgb {
            Scalar::new(i.mean[0], i.mean[1], i.mean[2], 0.0)
        } else {
            Scalar::new(i.mean[2], i.mean[1], i.mean[0], 0.0)
        };
        let blob = dnn::blob_from_image(
            head,
            i.scale,
            Size::new(i.width, i.height),
            mean,
            rgb,
            false,
            opencv::core::CV_32F,
        )?;
        self.net.set_input(&blob, "", 1.0, Scalar::default())?;
        let out: Mat = self.net.forward_single_def()?;
        let scores = out.data_typed::<f32>()?;
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
            if kind == "noChefHat" {
                (v.hat, v.hat_confidence) = (answer, confidence);
            } else {
                (v.mask, v.mask_confidence) = (answer, confidence);
            }
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
    fn a_yolo_layout_is_recognised_but_refused_at_load_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.toml");
        std::fs::write(&path, GOOD.replace("\"classify\"", "\"yolov8\"")).unwrap();
        let err = OnnxHead::load(&path).err().unwrap().to_string();
        assert!(err.contains("not built yet"), "{err}");
    }
}
