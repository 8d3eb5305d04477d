//! Detection: frames in, violations out.
//!
//! **A detector is plain code over plain data: it owns no thread, reads no clock and does no I/O.** The
//! caller (the worker that pulls decoded frames from ingest) passes each frame with its timestamp and
//! the local minute of the day, and hands the [`Detection`]s to the episode logic. Anything that
//! implements [`Detector`] can be plugged in there.
//!
//! Built so far: the rodent detector ([`rodent`]: background subtraction, blob filters and a small
//! tracker), the chef-hat / mask detector ([`person`]: a person model ([`yolo`]) gated by motion
//! ([`motion`]), heads judged by a pluggable classifier ([`head`], user models described by a
//! [`manifest`])) and the scoring tools that run them over camsim scenarios against their ground
//! truth ([`score`], [`score_person`]).

use bl_proto::config::Polygon;
use bl_proto::event::{NormBox, ViolationKind};
use opencv::core::{Mat, Size};
use opencv::prelude::*;

pub mod head;
pub mod manifest;
pub mod motion;
pub mod person;
pub mod rodent;
pub mod score;
pub mod score_person;
mod track;
pub mod yolo;
pub mod yolo_decode;
pub mod zone;

pub use rodent::{RodentConfig, RodentDetector, RodentTuning};

/// One grey picture handed to a detector.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Luma (grey), `width * height` bytes, row by row, no padding.
    pub luma: &'a [u8],
    /// The same picture in colour, BGR, `width * height * 3` bytes, when the caller has it. Detectors
    /// of people use it (a mask is told from skin by colour); without it they work on grey and leave
    /// colour-only judgements out.
    pub bgr: Option<&'a [u8]>,
    /// When it was captured, milliseconds (UTC epoch, or stream time in tools); only differences are
    /// used.
    pub at_ms: u64,
    /// Local time of day of the capture in minutes, `0..=1439` (00:00 = 0); the caller converts with
    /// the site's time zone. Rules with active hours are checked against it.
    pub minute_of_day: u16,
}

/// One kind of violation seen in one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// What was seen.
    pub kind: ViolationKind,
    /// Where, normalised; one box per object (each with its own label and confidence).
    pub boxes: Vec<NormBox>,
    /// The highest confidence of the boxes, `0..=1`.
    pub confidence: f32,
}

/// A detector the episode logic can consume: one frame in, the violations seen in it out.
///
/// Detectors are stateful (background models, tracks): feed the frames of one camera in order, at a
/// steady rate (the rodent detector is tuned for about 5 frames a second).
pub trait Detector: Send {
    /// Short name of the model, for `DetectionEvent.model.name` (e.g. `rodent-mog2`).
    fn model_name(&self) -> &str;
    /// Version of the model, for `DetectionEvent.model.version`.
    fn model_version(&self) -> &str;
    /// Looks at the next frame. An empty vector means nothing was seen (or the rule is outside its
    /// hours, or the detector is re-learning after the whole picture changed).
    fn process(&mut self, frame: &Frame<'_>) -> Vec<Detection>;
    /// The kinds it can report. A camera re-check for a kind no detector of the camera reports is
    /// answered `unsupported` rather than "kept", so the default (none) is the safe one.
    fn kinds(&self) -> &[ViolationKind] {
        &[]
    }

    /// Whether it wants the larger colour frames (people) rather than the grey 320x180 stream
    /// (rodents). Default: grey.
    fn wants_colour(&self) -> bool {
        false
    }
}

/// Why a detector could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A setting is out of range; the message names the field.
    #[error("invalid detector setting {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A zone polygon has fewer than 3 points or a coordinate outside `0..=1`.
    #[error("zone {index} is not a polygon in 0..1: {reason}")]
    Zone {
        /// Position in the zone list.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A model file is missing or unusable; the message names it and how to get it.
    #[error("model: {0}")]
    Model(String),
    /// OpenCV failed (usually a missing or broken OpenCV installation).
    #[error("opencv: {0}; check that libopencv (4.x) is installed")]
    OpenCv(#[from] opencv::Error),
}

/// An owned grey picture, for callers that have to resize before detecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreyImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` bytes.
    pub luma: Vec<u8>,
}

impl GreyImage {
    /// A [`Frame`] borrowing this picture.
    pub fn frame(&self, at_ms: u64, minute_of_day: u16) -> Frame<'_> {
        Frame {
            width: self.width,
            height: self.height,
            luma: &self.luma,
            bgr: None,
            at_ms,
            minute_of_day,
        }
    }
}

/// Shrinks a grey picture to `width x height` by area averaging (what a detector wants: it also
/// averages away sensor noise). Fails when `luma` is not `src_width * src_height` bytes.
pub fn downscale(
    luma: &[u8],
    src_width: u32,
    src_height: u32,
    width: u32,
    height: u32,
) -> Result<GreyImage, DetectError> {
    let src = grey_mat(luma, src_width, src_height)?;
    let mut dst = Mat::default();
    opencv::imgproc::resize(
        &src,
        &mut dst,
        Size::new(width as i32, height as i32),
        0.0,
        0.0,
        opencv::imgproc::INTER_AREA,
    )?;
    Ok(GreyImage {
        width,
        height,
        luma: dst.data_bytes()?.to_vec(),
    })
}

/// A Mat header over a grey byte slice (no copy).
fn grey_mat(
    luma: &[u8],
    width: u32,
    height: u32,
) -> Result<opencv::boxed_ref::BoxedRef<'_, Mat>, DetectError> {
    if width == 0 || height == 0 || luma.len() != width as usize * height as usize {
        return Err(DetectError::Config {
            field: "frame",
            reason: format!(
                "{} bytes of luma for {width}x{height} (expected {})",
                luma.len(),
                width as usize * height as usize
            ),
        });
    }
    Ok(Mat::new_rows_cols_with_data(
        height as i32,
        width as i32,
        luma,
    )?)
}

/// Checks zone polygons: at least 3 points, every coordinate in `0..=1`.
fn check_zones(zones: &[Polygon]) -> Result<(), DetectError> {
    for (index, z) in zones.iter().enumerate() {
        if z.0.len() < 3 {
            return Err(DetectError::Zone {
                index,
                reason: format!("{} points, at least 3 needed", z.0.len()),
            });
        }
        if let Some(p) =
            z.0.iter()
                .find(|p| !(0.0..=1.0).contains(&p.x) || !(0.0..=1.0).contains(&p.y))
        {
            return Err(DetectError::Zone {
                index,
                reason: format!("point ({}, {}) is outside the frame", p.x, p.y),
            });
        }
    }
    Ok(())
}
