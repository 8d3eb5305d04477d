//! Static backdrops, drawn once per camera and cached: a kitchen seen from a ceiling corner and a
//! pharmacy counter.

use super::canvas::{Canvas, Rgb, Shape};
use crate::scenario::BackdropKind;
use crate::scene::mix64;

/// Draws the empty scene (lights on, in colour).
pub fn draw(kind: BackdropKind, width: usize, height: usize, seed: u64) -> Canvas {
    let mut c = Canvas::new(width, height, [214, 214, 204]);
    match kind {
        BackdropKind::Kitchen => kitchen(&mut c),
        BackdropKind::Pharmacy => pharmacy(&mut c, seed),
    }
    c
}

/// Shorthand: a rectangle in normalised coordinates.
fn rect(c: &mut Canvas, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb) {
    let (w, h) = (c.width as f64, c.height as f64);
    c.draw(&Shape::Rect {
        x: x0 * w,
        y: y0 * h,
        w: (x1 - x0) * w,
        h: (y1 - y0) * h,
        color,
    });
}

fn ellipse(c: &mut Canvas, cx: f64, cy: f64, rx: f64, ry: f64, color: Rgb) {
    let (w, h) = (c.width as f64, c.height as f64);
    c.draw(&Shape::Ellipse {
        cx: cx * w,
        cy: cy * h,
        rx: rx * w,
        ry: ry * h,
        color,
    });
}

fn poly(c: &mut Canvas, pts: &[(f64, f64)], color: Rgb) {
    let (w, h) = (c.width as f64, c.height as f64);
    c.draw(&Shape::Polygon {
        pts: pts.iter().map(|&(x, y)| (x * w, y * h)).collect(),
        color,
    });
}

/// Wall tiles above `y1` (normalised): a grid of grout lines.
fn wall_tiles(c: &mut Canvas, y1: f64, tile: Rgb, grout: Rgb) {
    let (w, h) = (c.width, c.height);
    let step = (h as f64 * 0.045).max(4.0) as usize;
    let yend = (y1 * h as f64) as usize;
    for y in 0..yend.min(h) {
        for x in 0..w {
            let g = y % step == 0 || x % step == 0;
            c.put(x, y, if g { grout } else { tile });
        }
    }
}

/// Floor tiles in perspective below `top` (normalised), vanishing point at (`vx`, `vy`).
fn floor(c: &mut Canvas, top: f64, vx: f64, vy: f64, a: Rgb, b: Rgb, grout: Rgb) {
    let (w, h) = (c.width as f64, c.height as f64);
    let (vx, vy) = (vx * w, vy * h);
    for y in (top * h) as usize..c.height {
        let dy = y as f64 + 0.5 - vy;
        let v = h * 4.5 / dy;
        for x in 0..c.width {
            let u = (x as f64 + 0.5 - vx) / dy * 9.0;
            let (fu, fv) = (u - u.floor(), v - v.floor());
            let gu = 0.045 * (dy / h).recip().min(6.0);
            let col = if fu < gu || fv < gu * 1.5 {
                grout
            } else if (u.floor() as i64 + v.floor() as i64) % 2 == 0 {
                a
            } else {
                b
            };
            c.put(x, y, col);
        }
    }
}

fn kitchen(c: &mut Canvas) {
    wall_tiles(c, 0.42, [218, 218, 208], [188, 188, 180]);
    floor(
        c,
        0.42,
        0.62,
        0.05,
        [178, 172, 160],
        [166, 160, 148],
        [118, 116, 110],
    );
    // left side wall
    poly(
        c,
        &[(0.0, 0.0), (0.125, 0.0), (0.125, 0.42), (0.0, 0.62)],
        [196, 196, 188],
    );
    // wall shelf with plates
    rect(c, 0.20, 0.15, 0.50, 0.165, [150, 152, 156]);
    for i in 0..6 {
        ellipse(
            c,
            0.23 + i as f64 * 0.05,
            0.13,
            0.018,
            0.02,
            [240, 240, 236],
        );
    }
    // back counter: top, front, panels, kick plate
    rect(c, 0.16, 0.33, 0.70, 0.36, [214, 219, 224]);
    rect(c, 0.16, 0.36, 0.70, 0.50, [166, 171, 177]);
    for i in 1..5 {
        let x = 0.16 + i as f64 * 0.108;
        rect(c, x, 0.365, x + 0.002, 0.49, [130, 134, 140]);
    }
    rect(c, 0.16, 0.49, 0.70, 0.505, [70, 72, 76]);
    // pots on the counter
    rect(c, 0.24, 0.285, 0.30, 0.335, [120, 124, 130]);
    ellipse(c, 0.27, 0.285, 0.03, 0.012, [150, 154, 160]);
    rect(c, 0.52, 0.30, 0.56, 0.335, [180, 90, 50]);
    // stove and hood
    poly(
        c,
        &[(0.70, 0.05), (0.95, 0.05), (0.97, 0.18), (0.68, 0.18)],
        [186, 189, 194],
    );
    rect(c, 0.72, 0.33, 0.93, 0.37, [62, 62, 66]);
    rect(c, 0.72, 0.37, 0.93, 0.52, [46, 46, 51]);
    for (x, y) in [(0.76, 0.34), (0.82, 0.34), (0.87, 0.355), (0.78, 0.36)] {
        ellipse(c, x, y, 0.022, 0.009, [28, 28, 28]);
    }
    for i in 0..4 {
        ellipse(
            c,
            0.75 + i as f64 * 0.05,
            0.40,
            0.008,
            0.012,
            [200, 200, 200],
        );
    }
    rect(c, 0.745, 0.43, 0.905, 0.50, [34, 34, 38]);
    // tall cabinet on the left wall, on legs with a dark gap under it
    rect(c, 0.015, 0.14, 0.11, 0.58, [234, 230, 218]);
    rect(c, 0.0615, 0.15, 0.0635, 0.57, [170, 166, 156]);
    rect(c, 0.050, 0.33, 0.055, 0.40, [120, 120, 120]);
    rect(c, 0.070, 0.33, 0.075, 0.40, [120, 120, 120]);
    rect(c, 0.015, 0.58, 0.11, 0.625, [38, 35, 32]);
    rect(c, 0.018, 0.58, 0.024, 0.625, [150, 150, 150]);
    rect(c, 0.101, 0.58, 0.107, 0.625, [150, 150, 150]);
    // island counter front right
    rect(c, 0.60, 0.70, 0.92, 0.74, [212, 216, 222]);
    rect(c, 0.60, 0.74, 0.92, 0.86, [160, 165, 172]);
    rect(c, 0.60, 0.85, 0.92, 0.862, [72, 74, 78]);
}

fn pharmacy(c: &mut Canvas, seed: u64) {
    wall_tiles(c, 0.55, [232, 234, 236], [224, 226, 228]);
    floor(
        c,
        0.55,
        0.5,
        0.10,
        [204, 204, 200],
        [196, 196, 192],
        [160, 160, 156],
    );
    // shelves with boxes
    const BOXES: [Rgb; 7] = [
        [200, 60, 60],
        [60, 120, 200],
        [240, 240, 235],
        [90, 170, 90],
        [230, 190, 60],
        [160, 90, 170],
        [250, 140, 60],
    ];
    rect(c, 0.05, 0.05, 0.85, 0.52, [205, 190, 165]);
    for row in 0..5 {
        let board = 0.13 + row as f64 * 0.09;
        rect(c, 0.05, board, 0.85, board + 0.012, [150, 120, 85]);
        let mut x = 0.06;
        let mut k = 0u64;
        while x < 0.83 {
            let r = mix64(seed, row * 1000 + k);
            let bw = 0.015 + (r % 25) as f64 / 1000.0;
            let bh = 0.04 + ((r >> 8) % 30) as f64 / 1000.0;
            let col = BOXES[((r >> 16) % BOXES.len() as u64) as usize];
            rect(c, x, board - bh, (x + bw).min(0.84), board, col);
            x += bw + 0.004;
            k += 1;
        }
    }
    // green cross sign
    rect(c, 0.895, 0.10, 0.935, 0.22, [30, 160, 80]);
    rect(c, 0.870, 0.14, 0.960, 0.18, [30, 160, 80]);
    // counter with glass top and wooden front
    rect(c, 0.10, 0.62, 0.90, 0.66, [226, 236, 240]);
    rect(c, 0.10, 0.66, 0.90, 0.80, [150, 110, 80]);
    for i in 1..4 {
        let x = 0.10 + i as f64 * 0.2;
        rect(c, x, 0.67, x + 0.003, 0.79, [120, 86, 60]);
    }
    rect(c, 0.40, 0.60, 0.48, 0.62, [50, 50, 55]);
}
