//! How a person looks: a standing or walking figure with human proportions, seen from a ceiling
//! corner, as a list of shapes (drawn by the renderer, boxed by the ground truth).
//!
//! Proportions follow an adult (head 1/7.5 of the height, shoulders twice the head's width, arms
//! to mid-thigh, two-part limbs), and the rounded parts are shaded as if lit from the upper left,
//! so a real person detector trained on photographs (COCO) takes the figure for a person; flat
//! rectangles and ellipses were found by yolov3-tiny about a quarter of the time. A cook wears a
//! white jacket, a dark apron string and dark trousers; the head shows dark hair or a white chef
//! hat, the lower face a light-blue mask or skin.

use std::f64::consts::TAU;

use super::canvas::{Rgb, Shape};
use crate::scenario::{Action, Actor, Role, position_at};
use crate::scene::str_hash;

/// Height in pixels of a person whose feet are at normalised `y` (perspective of a ceiling corner).
pub fn person_height(y: f64, h: f64) -> f64 {
    h * (0.30 + 0.15 * ((y - 0.5) / 0.5).clamp(0.0, 1.0))
}

/// Head height as a share of the person's height (without a hat).
pub const HEAD_SHARE: f64 = 0.135;

const SKINS: [Rgb; 4] = [
    [226, 186, 152],
    [205, 160, 122],
    [238, 200, 170],
    [180, 135, 100],
];
const CLOTHES: [Rgb; 5] = [
    [170, 40, 45],
    [40, 90, 160],
    [60, 130, 70],
    [200, 150, 40],
    [90, 60, 120],
];
const HAIR: Rgb = [28, 22, 20];
const HAT: Rgb = [248, 248, 248];
const MASK: Rgb = [172, 212, 236];
const SHOES: Rgb = [25, 25, 28];

/// The shapes of person `a` at `t` seconds in a `w x h` picture, back to front; `None` when the
/// person is not in the scene then.
pub fn person(a: &Actor, t: f64, w: f64, h: f64) -> Option<Vec<Shape>> {
    let p = position_at(&a.path, t)?;
    let (fx, fy) = (p.x * w, p.y * h);
    let ph = person_height(p.y, h);
    let hid = str_hash(&a.id);
    let skin = SKINS[(hid % 4) as usize];
    let (jacket, trousers) = match a.role() {
        Role::Cook => ([236, 236, 230], [45, 45, 55]),
        Role::Pharmacist => ([242, 244, 246], [70, 75, 90]),
        Role::Customer => (CLOTHES[(hid / 7 % 5) as usize], [50, 55, 75]),
        Role::Visitor => ([60, 90, 150], [60, 90, 150]),
    };
    let moving = (p.vx * w).hypot(p.vy * h) > 1.0;
    let working = p.action == Some(Action::Work);
    let phase = t * TAU * 1.6 + (hid % 100) as f64 * 0.1;
    let stride = if moving { phase.sin() } else { 0.0 };
    // y of a height share above the feet; x of a width share from the body's middle.
    let y = |k: f64| fy - ph * k;
    let x = |k: f64| fx + ph * k;
    let limb = |a: (f64, f64), b: (f64, f64), width: f64, c: Rgb| {
        Shape::segment(a, b, ph * width, c).shaded(0.35)
    };
    let mut s = Vec::with_capacity(32);

    // Legs: thigh and shin, the knee bending forward while walking, shoes.
    for side in [-1.0, 1.0] {
        let swing = side * stride * 0.07;
        let hip = (x(side * 0.05), y(0.48));
        let knee = (x(side * 0.055 + swing * 0.6), y(0.27));
        let ankle = (x(side * 0.055 + swing), y(0.035));
        s.push(limb(hip, knee, 0.085, trousers));
        s.push(limb(knee, ankle, 0.065, trousers));
        s.push(
            Shape::Ellipse {
                cx: ankle.0 + ph * 0.012,
                cy: ankle.1 + ph * 0.012,
                rx: ph * 0.042,
                ry: ph * 0.022,
                color: SHOES,
            }
            .shaded(0.3),
        );
    }
    // Torso: shoulders wider than the waist, the jacket down over the hips.
    s.push(
        Shape::Polygon {
            pts: vec![
                (x(-0.115), y(0.825)),
                (x(0.115), y(0.825)),
                (x(0.125), y(0.78)),
                (x(0.105), y(0.58)),
                (x(0.11), y(0.44)),
                (x(-0.11), y(0.44)),
                (x(-0.105), y(0.58)),
                (x(-0.125), y(0.78)),
            ],
            color: jacket,
        }
        .shaded(0.45),
    );
    if a.role() == Role::Cook {
        // Apron: a slightly greyer panel with a dark waist string, which also marks the waist.
        s.push(
            Shape::Polygon {
                pts: vec![
                    (x(-0.085), y(0.60)),
                    (x(0.085), y(0.60)),
                    (x(0.095), y(0.40)),
                    (x(-0.095), y(0.40)),
                ],
                color: [222, 222, 216],
            }
            .shaded(0.4),
        );
        s.push(Shape::Rect {
            x: x(-0.105),
            y: y(0.60),
            w: ph * 0.21,
            h: ph * 0.012,
            color: [70, 70, 78],
        });
    }
    // Neck.
    s.push(
        Shape::Rect {
            x: x(-0.028),
            y: y(0.875),
            w: ph * 0.056,
            h: ph * 0.06,
            color: skin,
        }
        .shaded(0.3),
    );
    // Arms: upper arm and forearm; at work the hands meet in front of the waist, walking they swing.
    for side in [-1.0, 1.0] {
        let shoulder = (x(side * 0.11), y(0.80));
        let (elbow, hand) = if working {
            let bob = (t * TAU * 1.2 + side).sin() * 0.02;
            ((x(side * 0.14), y(0.62)), (x(side * 0.06), y(0.56 + bob)))
        } else {
            let swing = -side * stride * 0.04;
            (
                (x(side * 0.145 + swing * 0.5), y(0.62)),
                (x(side * 0.15 + swing), y(0.45)),
            )
        };
        s.push(limb(shoulder, elbow, 0.062, jacket));
        s.push(limb(elbow, hand, 0.05, jacket));
        s.push(
            Shape::Ellipse {
                cx: hand.0,
                cy: hand.1 + ph * 0.02,
                rx: ph * 0.024,
                ry: ph * 0.03,
                color: skin,
            }
            .shaded(0.3),
        );
    }
    // Head: an upright oval with ears, eyes, brows, nose shadow and mouth.
    let hh = ph * HEAD_SHARE;
    let head_top = y(1.0);
    let head_cy = head_top + hh / 2.0;
    for side in [-1.0, 1.0] {
        s.push(Shape::Ellipse {
            cx: fx + side * hh * 0.37,
            cy: head_cy + hh * 0.03,
            rx: hh * 0.07,
            ry: hh * 0.12,
            color: darker(skin, 0.9),
        });
    }
    s.push(
        Shape::Ellipse {
            cx: fx,
            cy: head_cy,
            rx: hh * 0.37,
            ry: hh / 2.0,
            color: skin,
        }
        .shaded(0.4),
    );
    if a.hat() {
        // Chef hat: a band over the forehead and a pleated puff above it.
        let band_top = head_top - hh * 0.1;
        s.push(
            Shape::Rect {
                x: fx - hh * 0.40,
                y: band_top,
                w: hh * 0.80,
                h: hh * 0.32,
                color: HAT,
            }
            .shaded(0.12),
        );
        s.push(
            Shape::Polygon {
                pts: vec![
                    (fx - hh * 0.40, band_top + hh * 0.02),
                    (fx + hh * 0.40, band_top + hh * 0.02),
                    (fx + hh * 0.50, band_top - hh * 0.45),
                    (fx - hh * 0.50, band_top - hh * 0.45),
                ],
                color: HAT,
            }
            .shaded(0.12),
        );
        s.push(
            Shape::Ellipse {
                cx: fx,
                cy: band_top - hh * 0.48,
                rx: hh * 0.55,
                ry: hh * 0.25,
                color: HAT,
            }
            .shaded(0.12),
        );
    } else {
        // Hair: a cap over the top and back of the head, down to the ears.
        s.push(
            Shape::Ellipse {
                cx: fx,
                cy: head_top + hh * 0.27,
                rx: hh * 0.41,
                ry: hh * 0.30,
                color: HAIR,
            }
            .shaded(0.2),
        );
        s.push(Shape::Rect {
            x: fx - hh * 0.40,
            y: head_top + hh * 0.25,
            w: hh * 0.09,
            h: hh * 0.22,
            color: HAIR,
        });
        s.push(Shape::Rect {
            x: fx + hh * 0.31,
            y: head_top + hh * 0.25,
            w: hh * 0.09,
            h: hh * 0.22,
            color: HAIR,
        });
    }
    for side in [-1.0, 1.0] {
        // brow and eye
        s.push(Shape::Rect {
            x: fx + side * hh * 0.15 - hh * 0.08,
            y: head_cy - hh * 0.09,
            w: hh * 0.16,
            h: hh * 0.035,
            color: darker(HAIR, 1.4),
        });
        s.push(Shape::Ellipse {
            cx: fx + side * hh * 0.15,
            cy: head_cy + hh * 0.0,
            rx: hh * 0.055,
            ry: hh * 0.035,
            color: [30, 30, 30],
        });
    }
    if a.mask() {
        s.push(
            Shape::Polygon {
                pts: vec![
                    (fx - hh * 0.36, head_cy + hh * 0.08),
                    (fx + hh * 0.36, head_cy + hh * 0.08),
                    (fx + hh * 0.30, head_cy + hh * 0.36),
                    (fx, head_cy + hh * 0.42),
                    (fx - hh * 0.30, head_cy + hh * 0.36),
                ],
                color: MASK,
            }
            .shaded(0.15),
        );
    } else {
        s.push(Shape::Rect {
            x: fx - hh * 0.03,
            y: head_cy + hh * 0.08,
            w: hh * 0.06,
            h: hh * 0.12,
            color: darker(skin, 0.8),
        });
        s.push(Shape::Rect {
            x: fx - hh * 0.11,
            y: head_cy + hh * 0.27,
            w: hh * 0.22,
            h: hh * 0.04,
            color: [150, 70, 70],
        });
    }
    Some(s)
}

fn darker(c: Rgb, f: f64) -> Rgb {
    c.map(|v| (v as f64 * f).round().clamp(0.0, 255.0) as u8)
}
