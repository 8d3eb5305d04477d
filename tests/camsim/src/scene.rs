//! What is in frame `n` of a scenario: each visible object as a list of shapes. The renderer draws
//! these shapes and the ground truth takes its boxes from the very same shapes.

use std::f64::consts::TAU;

use serde::{Deserialize, Serialize};

use crate::render::canvas::{Shape, union_bounds};
use crate::render::person::person;
pub use crate::render::person::person_height;
use crate::scenario::{Actor, ActorKind, Distractor, DistractorKind, Role, Scenario, position_at};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectClass {
    Person,
    Rodent,
    Insect,
    Cloth,
}

/// One object as drawn in one frame.
#[derive(Debug, Clone)]
pub struct SceneObject {
    pub id: String,
    pub class: ObjectClass,
    pub shapes: Vec<Shape>,
    /// Persons only.
    pub hat: Option<bool>,
    /// Persons only.
    pub mask: Option<bool>,
    /// Persons only.
    pub role: Option<Role>,
    /// Box `[x, y, w, h]` normalised to 0..1, clipped to the frame.
    pub bbox: [f64; 4],
}

/// Everything in one frame.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Seconds into the loop.
    pub t: f64,
    pub lights_on: bool,
    /// In drawing order (back to front).
    pub objects: Vec<SceneObject>,
}

/// A well-mixed 64-bit hash (splitmix64 finaliser) of two words.
pub fn mix64(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable hash of a string (FNV-1a).
pub fn str_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// A number in 0..1 from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Composes frame `n` (absolute; the loop position is `n % frames_per_loop`).
pub fn compose(s: &Scenario, n: u64) -> Scene {
    let t = s.time_of(n);
    let (w, h) = (s.width as f64, s.height as f64);
    let mut objects = Vec::new();
    for d in &s.distractors {
        if d.kind == DistractorKind::Cloth
            && let Some(shapes) = cloth(d, t, w, h)
        {
            objects.push(object(
                d.id.clone().unwrap_or_default(),
                ObjectClass::Cloth,
                shapes,
                None,
                w,
                h,
            ));
        }
    }
    for a in s.actors.iter().filter(|a| a.kind == ActorKind::Rodent) {
        if let Some(shapes) = rodent(a, t, w, h) {
            objects.push(object(
                a.id.clone(),
                ObjectClass::Rodent,
                shapes,
                None,
                w,
                h,
            ));
        }
    }
    let mut people: Vec<(f64, &Actor)> = s
        .actors
        .iter()
        .filter(|a| a.kind == ActorKind::Person)
        .filter_map(|a| position_at(&a.path, t).map(|p| (p.y, a)))
        .collect();
    people.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (_, a) in people {
        if let Some(shapes) = person(a, t, w, h) {
            objects.push(object(
                a.id.clone(),
                ObjectClass::Person,
                shapes,
                Some(a),
                w,
                h,
            ));
        }
    }
    for d in &s.distractors {
        if d.kind == DistractorKind::Insect
            && let Some(shapes) = insect(d, s.seed, t, w, h)
        {
            objects.push(object(
                d.id.clone().unwrap_or_default(),
                ObjectClass::Insect,
                shapes,
                None,
                w,
                h,
            ));
        }
    }
    objects.retain(|o| o.bbox[2] > 0.0 && o.bbox[3] > 0.0);
    Scene {
        t,
        lights_on: s.lights_on(t),
        objects,
    }
}

fn object(
    id: String,
    class: ObjectClass,
    shapes: Vec<Shape>,
    person: Option<&Actor>,
    w: f64,
    h: f64,
) -> SceneObject {
    let bbox = match union_bounds(&shapes) {
        Some((x0, y0, x1, y1)) => {
            let (x0, y0) = (x0.clamp(0.0, w), y0.clamp(0.0, h));
            let (x1, y1) = (x1.clamp(0.0, w), y1.clamp(0.0, h));
            if x1 - x0 < 1.0 || y1 - y0 < 1.0 {
                [0.0; 4]
            } else {
                [x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h]
            }
        }
        None => [0.0; 4],
    };
    SceneObject {
        id,
        class,
        shapes,
        hat: person.map(Actor::hat),
        mask: person.map(Actor::mask),
        role: person.map(Actor::role),
        bbox,
    }
}

fn active(d: &Distractor, t: f64) -> bool {
    t >= d.on_at.unwrap_or(0.0) && t < d.off_at.unwrap_or(f64::INFINITY)
}

fn rodent(a: &Actor, t: f64, w: f64, h: f64) -> Option<Vec<Shape>> {
    let p = position_at(&a.path, t)?;
    let l = a.body_length_px.unwrap_or(30.0);
    let (cx, cy) = (p.x * w, p.y * h);
    let (vx, vy) = (p.vx * w, p.vy * h);
    let ang = if vx.hypot(vy) > 1.0 {
        vy.atan2(vx)
    } else {
        0.0
    };
    let (dy, dx) = ang.sin_cos();
    let wiggle = (t * TAU * 3.0).sin() * l * 0.15;
    let tail_a = (cx - dx * l * 0.45, cy - dy * l * 0.45);
    let tail_b = (
        cx - dx * l * 1.2 - dy * wiggle,
        cy - dy * l * 1.2 + dx * wiggle,
    );
    Some(vec![
        Shape::segment(tail_a, tail_b, (l * 0.06).max(1.5), [125, 105, 100]),
        Shape::rotated_ellipse(cx, cy, l / 2.0, l * 0.22, ang, [92, 80, 72]),
        Shape::rotated_ellipse(
            cx + dx * l * 0.5,
            cy + dy * l * 0.5,
            l * 0.2,
            l * 0.14,
            ang,
            [102, 88, 80],
        ),
        Shape::Ellipse {
            cx: cx + dx * l * 0.38 - dy * l * 0.12,
            cy: cy + dy * l * 0.38 + dx * l * 0.12,
            rx: l * 0.07,
            ry: l * 0.07,
            color: [150, 120, 115],
        },
    ])
}

fn insect(d: &Distractor, seed: u64, t: f64, w: f64, h: f64) -> Option<Vec<Shape>> {
    if !active(d, t) {
        return None;
    }
    let p = position_at(d.path.as_deref()?, t)?;
    let hid = mix64(seed, str_hash(d.id.as_deref().unwrap_or("")));
    let j = d.jitter_px.unwrap_or(40.0);
    let ph = |k: u64| unit(mix64(hid, k)) * TAU;
    let jx = j * (0.6 * (TAU * 1.3 * t + ph(1)).sin() + 0.4 * (TAU * 3.7 * t + ph(2)).sin());
    let jy = j * (0.6 * (TAU * 1.1 * t + ph(3)).sin() + 0.4 * (TAU * 4.3 * t + ph(4)).sin());
    let r = d.size_px.unwrap_or(100.0) / 2.0;
    Some(vec![Shape::Blob {
        cx: p.x * w + jx,
        cy: p.y * h + jy,
        r,
        color: [28, 24, 22],
        alpha: 0.85,
    }])
}

fn cloth(d: &Distractor, t: f64, w: f64, h: f64) -> Option<Vec<Shape>> {
    if !active(d, t) {
        return None;
    }
    let (hx, hy) = (d.x? * w, d.y? * h);
    let l = d.length_px?;
    let amp = d.amplitude_deg.unwrap_or(15.0).to_radians();
    let theta = amp * (TAU * t / d.period_secs.unwrap_or(3.0)).sin();
    let (s, c) = theta.sin_cos();
    let rot = |x: f64, y: f64| (hx + x * c - y * s, hy + x * s + y * c);
    let cw = l * 0.45;
    let quad = |y0: f64, y1: f64| {
        vec![
            rot(-cw / 2.0, y0),
            rot(cw / 2.0, y0),
            rot(cw / 2.0, y1),
            rot(-cw / 2.0, y1),
        ]
    };
    Some(vec![
        Shape::Polygon {
            pts: quad(0.0, l),
            color: [150, 62, 56],
        },
        Shape::Polygon {
            pts: quad(l * 0.70, l * 0.80),
            color: [240, 236, 226],
        },
        Shape::Rect {
            x: hx - 3.0,
            y: hy - 4.0,
            w: 6.0,
            h: 6.0,
            color: [60, 60, 60],
        },
    ])
}
