//! Head classifiers: is this head under a chef hat, is this lower face under a mask?
//!
//! A classifier gets the head region of one person (cut from the top of the person box, see
//! [`head_region`]) as a BGR crop and answers for each rule `Some(true)` (worn), `Some(false)`
//! (not worn) or `None` (cannot tell: too small, too dark, covered). Only `Some(false)` becomes a
//! violation, so a classifier that is unsure stays silent.
//!
//! The default, [`HeuristicHead`], is a calibrated colour rule. **It is assistive and needs review:**
//! it knows a white hat from dark hair and a light-blue mask from skin, and nothing else.

use opencv::core::{Mat, Rect};
use opencv::prelude::*;

/// What a classifier says about one head. Confidences are `0..=1` for the answer given.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HeadVerdict {
    /// Chef hat worn?
    pub hat: Option<bool>,
    pub hat_confidence: f32,
    /// Mask over mouth and nose?
    pub mask: Option<bool>,
    pub mask_confidence: f32,
    /// Rows of the crop the judged head spans (hat or hair to chin), when the classifier located
    /// it; the reported box is then these rows, else the whole crop.
    pub rows: Option<(i32, i32)>,
}

/// Judges head crops; pluggable (the default heuristic, or a site-trained model).
pub trait HeadClassifier: Send {
    /// Short name for `DetectionEvent.model.name` (joined with the person model's).
    fn name(&self) -> &str;
    /// Version for `DetectionEvent.model.version`.
    fn version(&self) -> &str;
    /// Judges one head crop (BGR, 8-bit, 3 channels).
    fn judge(&mut self, head: &Mat) -> Result<HeadVerdict, opencv::Error>;
    /// Whether it finds the head inside a taller crop by itself (and says where in
    /// [`HeadVerdict::rows`]); then it is given [`head_search_region`], else [`head_region`].
    fn locates_head(&self) -> bool {
        false
    }
}

/// Share of the person box's height, from its top, that holds the head (and a hat on it). A COCO
/// person box of an upright adult starts at the top of the head or hat; the head is about 1/7 of
/// the body and a chef hat adds half a head.
pub const HEAD_FRACTION: f64 = 0.25;

/// Share of the person box's height above its top that is searched for the head too: small COCO
/// models (yolov3-tiny) often box only the torso of a person seen from a ceiling corner, with the
/// head above the box. The classifier finds the face in the region, so wall above a whole-person
/// box does no harm to it.
pub const ABOVE_FRACTION: f64 = 0.6;

/// The head region of a person box `[x, y, w, h]` (pixels): its top quarter, clipped to a
/// `width x height` picture; `None` when it is too small to judge (under `min_px` high).
pub fn head_region(person: Rect, width: i32, height: i32, min_px: i32) -> Option<Rect> {
    let h = (person.height as f64 * HEAD_FRACTION).round() as i32;
    let x0 = person.x.clamp(0, width);
    let y0 = person.y.clamp(0, height);
    let x1 = (person.x + person.width).clamp(0, width);
    let y1 = (person.y + h).clamp(0, height);
    (y1 - y0 >= min_px && x1 - x0 >= min_px / 2).then(|| Rect::new(x0, y0, x1 - x0, y1 - y0))
}

/// The region searched for the head of a person box by a classifier that locates heads: from
/// [`ABOVE_FRACTION`] of its height above it down to [`HEAD_FRACTION`] into it, clipped to a
/// `width x height` picture; `None` when it is under `min_px` high.
pub fn head_search_region(person: Rect, width: i32, height: i32, min_px: i32) -> Option<Rect> {
    let h = (person.height as f64 * HEAD_FRACTION).round() as i32;
    let above = (person.height as f64 * ABOVE_FRACTION).round() as i32;
    let x0 = person.x.clamp(0, width);
    let y0 = (person.y - above).clamp(0, height);
    let x1 = (person.x + person.width).clamp(0, width);
    let y1 = (person.y + h).clamp(0, height);
    (y1 - y0 >= min_px && x1 - x0 >= min_px / 2).then(|| Rect::new(x0, y0, x1 - x0, y1 - y0))
}

/// Thresholds of [`HeuristicHead`], calibrated on camsim's drawn cooks (see DETECTION.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeuristicTuning {
    /// Share of the top band that is white for "hat". Default 0.45.
    pub hat_white: f32,
    /// Share of the top band that is dark (hair) needed for "no hat". Default 0.2.
    pub hair_dark: f32,
    /// Mask share of (mask + skin) pixels in the face band for "mask". Default 0.2.
    pub mask_share: f32,
    /// Below this mask share, with enough skin seen, "no mask". Default 0.06.
    pub no_mask_share: f32,
    /// Skin needed (share of the face band) to say "no mask". Default 0.08.
    pub min_skin: f32,
}

impl Default for HeuristicTuning {
    fn default() -> Self {
        HeuristicTuning {
            hat_white: 0.45,
            hair_dark: 0.2,
            mask_share: 0.2,
            no_mask_share: 0.06,
            min_skin: 0.08,
        }
    }
}

/// The default head classifier: colour rules over the central columns of the head crop.
///
/// - the face begins at the first row whose central part is partly skin (Kovač's RGB skin rule)
///   or mask;
/// - the band right above it (15 % of the crop's width high): mostly white (bright, unsaturated)
///   → hat; dark (hair) outweighing the white → no hat;
/// - the face band (three such bands from the face's top): light blue/green pixels (a surgical
///   mask) against skin → mask share; much skin and almost no mask colour → no mask.
/// - no skin found: the upper 35 % of the crop is the top band and the rest the face band.
#[derive(Debug, Clone, Default)]
pub struct HeuristicHead {
    pub tuning: HeuristicTuning,
}

/// Pixel counts of one band.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    all: u32,
    white: u32,
    dark: u32,
    skin: u32,
    mask: u32,
}

impl Counts {
    fn share(&self, n: u32) -> f32 {
        if self.all == 0 {
            0.0
        } else {
            n as f32 / self.all as f32
        }
    }
}

fn count(
    head: &Mat,
    rows: std::ops::Range<i32>,
    cols: std::ops::Range<i32>,
) -> opencv::Result<Counts> {
    let mut c = Counts::default();
    for y in rows {
        for x in cols.clone() {
            let p = head.at_2d::<opencv::core::Vec3b>(y, x)?;
            let (b, g, r) = (p[0] as i32, p[1] as i32, p[2] as i32);
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
            c.all += 1;
            if min >= 185 && max - min <= 35 {
                c.white += 1;
            } else if max <= 70 {
                c.dark += 1;
            } else if r > 95 && g > 40 && b > 20 && max - min > 15 && r > g && r > b + 15 {
                c.skin += 1;
            } else if b >= r + 20 && g >= r && b >= 120 {
                c.mask += 1;
            }
        }
    }
    Ok(c)
}

impl HeadClassifier for HeuristicHead {
    fn name(&self) -> &str {
        "hat-mask-heuristic"
    }

    fn locates_head(&self) -> bool {
        true
    }

    fn version(&self) -> &str {
        "0.2.0"
    }

    fn judge(&mut self, head: &Mat) -> Result<HeadVerdict, opencv::Error> {
        let (w, h) = (head.cols(), head.rows());
        if w < 4 || h < 8 {
            return Ok(HeadVerdict::default());
        }
        // The head sits over the middle of an upright body: look at the central half only, so the
        // wall behind and the shoulders count less.
        let cols = (w / 4)..(w - w / 4).max(w / 4 + 1);
        // Where the face begins: the first row whose central part is partly skin (or mask). The hat or the
        // hair is right above it, wherever the person box's top edge happens to be (a detector's
        // box may start above the head, with wall in it, or cut into the hat).
        let need = ((cols.len() as f32) * 0.15).ceil() as u32;
        let mut face_top = None;
        for y in 0..h {
            let row = count(head, y..y + 1, cols.clone())?;
            if row.skin + row.mask >= need.max(1) {
                face_top = Some(y);
                break;
            }
        }
        let band = ((w as f32 * 0.15).round() as i32).max(2);
        let mut rows = None;
        let (top, face) = match face_top {
            Some(f) if f >= 2 => {
                rows = Some(((f - band).max(0), (f + 3 * band).min(h)));
                (
                    count(head, (f - band).max(0)..f, cols.clone())?,
                    count(head, f..(f + 3 * band).min(h), cols)?,
                )
            }
            _ => {
                let split = (h as f32 * 0.35).round() as i32;
                (
                    count(head, 0..split, cols.clone())?,
                    count(head, split..h, cols)?,
                )
            }
        };
        let t = &self.tuning;

        let mut v = HeadVerdict::default();
        let white = top.share(top.white);
        v.rows = rows;
        let dark = top.share(top.dark);
        if white >= t.hat_white && white > dark {
            v.hat = Some(true);
            v.hat_confidence = (0.5 + white / 2.0).min(1.0);
        } else if dark >= t.hair_dark && white < dark {
            // Hair shows and outweighs anything white (a light wall behind a small head).
            v.hat = Some(false);
            // Assistive: never more sure than 0.9.
            v.hat_confidence = (0.5 + (dark - white).min(0.8) * 0.5).min(0.9);
        }

        let judged = face.skin + face.mask;
        let skin = face.share(face.skin);
        if judged > 0 {
            let share = face.mask as f32 / judged as f32;
            if share >= t.mask_share {
                v.mask = Some(true);
                v.mask_confidence = (0.5 + share / 2.0).min(1.0);
            } else if share < t.no_mask_share && skin >= t.min_skin {
                v.mask = Some(false);
                v.mask_confidence = (0.5 + skin.min(0.5) * 0.8).min(0.9);
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{CV_8UC3, Point, Scalar, Size};
    use opencv::imgproc;

    /// BGR scalar from RGB.
    fn rgb(r: f64, g: f64, b: f64) -> Scalar {
        Scalar::new(b, g, r, 0.0)
    }

    /// Draws a head crop the way a person seen from a ceiling corner looks: `hh` px of head, on a
    /// light tiled wall, with or without a white hat and a light-blue mask.
    fn drawn_head(hh: i32, hat: bool, mask: bool, skin: Scalar) -> Mat {
        let crop_h = if hat { hh * 165 / 100 } else { hh * 150 / 100 };
        let w = hh * 2;
        let mut m =
            Mat::new_size_with_default(Size::new(w, crop_h), CV_8UC3, rgb(222.0, 222.0, 214.0))
                .unwrap();
        let cx = w / 2;
        let head_top = if hat { hh * 53 / 100 } else { 0 };
        let head_cy = head_top + hh / 2;
        let ell = |m: &mut Mat, cy: i32, rx: i32, ry: i32, c: Scalar| {
            imgproc::ellipse(
                m,
                Point::new(cx, cy),
                Size::new(rx, ry),
                0.0,
                0.0,
                360.0,
                c,
                -1,
                imgproc::LINE_8,
                0,
            )
            .unwrap();
        };
        ell(&mut m, head_cy, hh * 42 / 100, hh / 2, skin);
        if hat {
            let band = head_top + hh * 22 / 100 - hh * 75 / 100;
            imgproc::rectangle(
                &mut m,
                Rect::new(
                    cx - hh * 43 / 100,
                    band.max(0),
                    hh * 86 / 100,
                    hh * 75 / 100,
                ),
                rgb(248.0, 248.0, 248.0),
                -1,
                imgproc::LINE_8,
                0,
            )
            .unwrap();
            ell(
                &mut m,
                band.max(hh * 15 / 100),
                hh * 56 / 100,
                hh * 30 / 100,
                rgb(250.0, 250.0, 250.0),
            );
        } else {
            ell(
                &mut m,
                head_cy - hh * 17 / 100,
                hh * 45 / 100,
                hh * 36 / 100,
                rgb(28.0, 22.0, 20.0),
            );
        }
        if mask {
            imgproc::rectangle(
                &mut m,
                Rect::new(
                    cx - hh * 36 / 100,
                    head_cy + hh * 8 / 100,
                    hh * 72 / 100,
                    hh * 30 / 100,
                ),
                rgb(172.0, 212.0, 236.0),
                -1,
                imgproc::LINE_8,
                0,
            )
            .unwrap();
        }
        // White jacket below the shoulders, when the crop reaches them.
        let shoulder = head_top + hh * 121 / 100;
        if shoulder < crop_h {
            imgproc::rectangle(
                &mut m,
                Rect::new(
                    cx - hh * 76 / 100,
                    shoulder,
                    hh * 152 / 100,
                    crop_h - shoulder,
                ),
                rgb(236.0, 236.0, 230.0),
                -1,
                imgproc::LINE_8,
                0,
            )
            .unwrap();
        }
        m
    }

    const SKINS: [(f64, f64, f64); 4] = [
        (226.0, 186.0, 152.0),
        (205.0, 160.0, 122.0),
        (238.0, 200.0, 170.0),
        (180.0, 135.0, 100.0),
    ];

    #[test]
    fn a_white_hat_is_a_hat_and_dark_hair_is_no_hat_for_every_skin_and_size() {
        let mut c = HeuristicHead::default();
        for (r, g, b) in SKINS {
            for hh in [20, 36, 52] {
                for mask in [false, true] {
                    let with = c.judge(&drawn_head(hh, true, mask, rgb(r, g, b))).unwrap();
                    assert_eq!(with.hat, Some(true), "hat, skin {r} head {hh} mask {mask}");
                    let without = c.judge(&drawn_head(hh, false, mask, rgb(r, g, b))).unwrap();
                    assert_eq!(
                        without.hat,
                        Some(false),
                        "no hat, skin {r} head {hh} mask {mask}"
                    );
                    assert!(without.hat_confidence > 0.5 && without.hat_confidence <= 0.9);
                }
            }
        }
    }

    #[test]
    fn a_light_blue_mask_is_a_mask_and_bare_skin_is_no_mask() {
        let mut c = HeuristicHead::default();
        for (r, g, b) in SKINS {
            for hh in [20, 36, 52] {
                for hat in [false, true] {
                    let masked = c.judge(&drawn_head(hh, hat, true, rgb(r, g, b))).unwrap();
                    assert_eq!(
                        masked.mask,
                        Some(true),
                        "mask, skin {r} head {hh} hat {hat}"
                    );
                    let bare = c.judge(&drawn_head(hh, hat, false, rgb(r, g, b))).unwrap();
                    assert_eq!(
                        bare.mask,
                        Some(false),
                        "no mask, skin {r} head {hh} hat {hat}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_blank_wall_or_a_tiny_crop_gives_no_answer() {
        let mut c = HeuristicHead::default();
        let wall = Mat::new_size_with_default(Size::new(40, 60), CV_8UC3, rgb(120.0, 120.0, 125.0))
            .unwrap();
        assert_eq!(c.judge(&wall).unwrap(), HeadVerdict::default());
        let tiny =
            Mat::new_size_with_default(Size::new(3, 5), CV_8UC3, rgb(30.0, 20.0, 20.0)).unwrap();
        assert_eq!(c.judge(&tiny).unwrap(), HeadVerdict::default());
    }

    #[test]
    fn the_head_region_is_the_top_quarter_and_the_search_reaches_above_the_box() {
        let r = head_region(Rect::new(100, -10, 60, 200), 1280, 720, 20).unwrap();
        assert_eq!(r, Rect::new(100, 0, 60, 40));
        let r = head_search_region(Rect::new(100, 300, 60, 200), 1280, 720, 20).unwrap();
        assert_eq!(r, Rect::new(100, 180, 60, 170));
        assert_eq!(
            head_region(Rect::new(100, 100, 20, 60), 1280, 720, 20),
            None
        );
    }
}
