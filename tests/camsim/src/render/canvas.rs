//! An RGB canvas, the shapes drawn on it, and the conversion to I420.

/// An sRGB colour.
pub type Rgb = [u8; 3];

/// A drawable primitive in pixel coordinates. Scenes are lists of shapes, so the same list both draws
/// an object and gives its ground-truth box.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        color: Rgb,
    },
    Ellipse {
        cx: f64,
        cy: f64,
        rx: f64,
        ry: f64,
        color: Rgb,
    },
    /// A convex polygon.
    Polygon { pts: Vec<(f64, f64)>, color: Rgb },
    /// A soft round blob: opacity `alpha` at the centre falling smoothly to 0 at radius `r`.
    Blob {
        cx: f64,
        cy: f64,
        r: f64,
        color: Rgb,
        alpha: f64,
    },
    /// `inner` (a rect, ellipse or polygon) lit like a rounded surface: lighter left of its middle,
    /// darker towards its left and right edges (`amount` 0..1 sets how much), with a faint fixed
    /// grain (cloth, skin) so it is not one flat colour.
    Shaded { inner: Box<Shape>, amount: f64 },
}

impl Shape {
    /// Bounding box `(x0, y0, x1, y1)` in pixels.
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        match self {
            Shape::Rect { x, y, w, h, .. } => (*x, *y, x + w, y + h),
            Shape::Ellipse { cx, cy, rx, ry, .. } => (cx - rx, cy - ry, cx + rx, cy + ry),
            Shape::Polygon { pts, .. } => pts.iter().fold(
                (
                    f64::INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NEG_INFINITY,
                ),
                |(a, b, c, d), &(x, y)| (a.min(x), b.min(y), c.max(x), d.max(y)),
            ),
            Shape::Blob { cx, cy, r, .. } => (cx - r, cy - r, cx + r, cy + r),
            Shape::Shaded { inner, .. } => inner.bounds(),
        }
    }

    /// This shape, lit as a rounded surface (see [`Shape::Shaded`]).
    pub fn shaded(self, amount: f64) -> Shape {
        Shape::Shaded {
            inner: Box::new(self),
            amount,
        }
    }

    /// A thick line segment as a polygon.
    pub fn segment(a: (f64, f64), b: (f64, f64), width: f64, color: Rgb) -> Shape {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-6);
        let (nx, ny) = (-dy / len * width / 2.0, dx / len * width / 2.0);
        Shape::Polygon {
            pts: vec![
                (a.0 + nx, a.1 + ny),
                (b.0 + nx, b.1 + ny),
                (b.0 - nx, b.1 - ny),
                (a.0 - nx, a.1 - ny),
            ],
            color,
        }
    }

    /// An ellipse rotated by `angle` radians, as a polygon.
    pub fn rotated_ellipse(cx: f64, cy: f64, rx: f64, ry: f64, angle: f64, color: Rgb) -> Shape {
        let (s, c) = angle.sin_cos();
        let pts = (0..20)
            .map(|i| {
                let a = i as f64 / 20.0 * std::f64::consts::TAU;
                let (x, y) = (rx * a.cos(), ry * a.sin());
                (cx + x * c - y * s, cy + x * s + y * c)
            })
            .collect();
        Shape::Polygon { pts, color }
    }
}

/// Union of shape bounds, `(x0, y0, x1, y1)`; `None` for no shapes.
pub fn union_bounds(shapes: &[Shape]) -> Option<(f64, f64, f64, f64)> {
    shapes
        .iter()
        .map(Shape::bounds)
        .reduce(|a, b| (a.0.min(b.0), a.1.min(b.1), a.2.max(b.2), a.3.max(b.3)))
}

/// An RGB image, row-major, 3 bytes per pixel.
#[derive(Debug, Clone)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, fill: Rgb) -> Canvas {
        let mut rgb = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            rgb.extend_from_slice(&fill);
        }
        Canvas { width, height, rgb }
    }

    #[inline]
    pub fn put(&mut self, x: usize, y: usize, c: Rgb) {
        let i = (y * self.width + x) * 3;
        self.rgb[i..i + 3].copy_from_slice(&c);
    }

    #[inline]
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Clamped integer pixel range covering `[a, b)` along an axis of length `n`.
    fn span(a: f64, b: f64, n: usize) -> (usize, usize) {
        let lo = a.round().max(0.0).min(n as f64) as usize;
        let hi = b.round().max(0.0).min(n as f64) as usize;
        (lo, hi)
    }

    pub fn draw(&mut self, shape: &Shape) {
        match shape {
            Shape::Blob {
                cx,
                cy,
                r,
                color,
                alpha,
            } => self.blob(*cx, *cy, *r, *color, *alpha),
            Shape::Shaded { inner, amount } => {
                let (x0, _, x1, _) = inner.bounds();
                let (mid, half) = ((x0 + x1) / 2.0, ((x1 - x0) / 2.0).max(0.5));
                let amount = *amount;
                self.fill(inner, &|x, y, c| {
                    // u: -1 at the left edge, 1 at the right; the light comes from the upper left.
                    let u = ((x as f64 + 0.5 - mid) / half).clamp(-1.0, 1.0);
                    let light = 1.05 - amount * (0.75 * u * u + 0.25 * u);
                    let grain = ((crate::scene::mix64(x as u64, y as u64) & 7) as f64) - 3.5;
                    let f = |v: u8| (v as f64 * light + grain).round().clamp(0.0, 255.0) as u8;
                    [f(c[0]), f(c[1]), f(c[2])]
                });
            }
            flat => self.fill(flat, &|_, _, c| c),
        }
    }

    /// Fills a rect, ellipse or polygon, each pixel's colour from `paint(x, y, shape colour)`.
    fn fill(&mut self, shape: &Shape, paint: &dyn Fn(usize, usize, Rgb) -> Rgb) {
        match shape {
            Shape::Rect { x, y, w, h, color } => {
                let (x0, x1) = Self::span(*x, x + w, self.width);
                let (y0, y1) = Self::span(*y, y + h, self.height);
                for yy in y0..y1 {
                    for xx in x0..x1 {
                        self.put(xx, yy, paint(xx, yy, *color));
                    }
                }
            }
            Shape::Ellipse {
                cx,
                cy,
                rx,
                ry,
                color,
            } => {
                let (y0, y1) = Self::span(cy - ry, cy + ry, self.height);
                for yy in y0..y1 {
                    let dy = (yy as f64 + 0.5 - cy) / ry;
                    if dy.abs() >= 1.0 {
                        continue;
                    }
                    let half = rx * (1.0 - dy * dy).sqrt();
                    let (x0, x1) = Self::span(cx - half, cx + half, self.width);
                    for xx in x0..x1 {
                        self.put(xx, yy, paint(xx, yy, *color));
                    }
                }
            }
            Shape::Polygon { pts, color } => self.fill_polygon(pts, *color, paint),
            // A blob or a shaded shape inside a shaded one is drawn as itself.
            other => self.draw(other),
        }
    }

    fn blob(&mut self, cx: f64, cy: f64, r: f64, color: Rgb, alpha: f64) {
        let (x0, x1) = Self::span(cx - r, cx + r, self.width);
        let (y0, y1) = Self::span(cy - r, cy + r, self.height);
        for yy in y0..y1 {
            for xx in x0..x1 {
                let d =
                    ((xx as f64 + 0.5 - cx).powi(2) + (yy as f64 + 0.5 - cy).powi(2)).sqrt() / r;
                if d >= 1.0 {
                    continue;
                }
                let s = 1.0 - d;
                let a = alpha * s * s * (3.0 - 2.0 * s);
                let p = self.get(xx, yy);
                let mix = |o: u8, n: u8| (o as f64 * (1.0 - a) + n as f64 * a).round() as u8;
                self.put(
                    xx,
                    yy,
                    [
                        mix(p[0], color[0]),
                        mix(p[1], color[1]),
                        mix(p[2], color[2]),
                    ],
                );
            }
        }
    }

    /// Scanline fill (even-odd rule, pixel centres).
    fn fill_polygon(
        &mut self,
        pts: &[(f64, f64)],
        color: Rgb,
        paint: &dyn Fn(usize, usize, Rgb) -> Rgb,
    ) {
        if pts.len() < 3 {
            return;
        }
        let (_, y0, _, y1) = Shape::Polygon {
            pts: pts.to_vec(),
            color,
        }
        .bounds();
        let (ya, yb) = Self::span(y0, y1 + 1.0, self.height);
        let mut xs = Vec::with_capacity(8);
        for yy in ya..yb {
            let sy = yy as f64 + 0.5;
            xs.clear();
            for i in 0..pts.len() {
                let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
                if (a.1 <= sy && b.1 > sy) || (b.1 <= sy && a.1 > sy) {
                    xs.push(a.0 + (sy - a.1) / (b.1 - a.1) * (b.0 - a.0));
                }
            }
            xs.sort_by(f64::total_cmp);
            for pair in xs.chunks_exact(2) {
                let (x0, x1) = Self::span(pair[0], pair[1], self.width);
                for xx in x0..x1 {
                    self.put(xx, yy, paint(xx, yy, color));
                }
            }
        }
    }

    /// Converts to I420 (BT.601, limited range), the format pushed to the encoder.
    pub fn to_i420(&self) -> Vec<u8> {
        let (w, h) = (self.width, self.height);
        let mut out = vec![0u8; w * h * 3 / 2];
        let (ys, uv) = out.split_at_mut(w * h);
        let (us, vs) = uv.split_at_mut(w * h / 4);
        for (i, px) in self.rgb.chunks_exact(3).enumerate() {
            ys[i] = luma(px[0], px[1], px[2]);
        }
        for cy in 0..h / 2 {
            for cx in 0..w / 2 {
                let (mut r, mut g, mut b) = (0i32, 0i32, 0i32);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let p = self.get(cx * 2 + dx, cy * 2 + dy);
                    r += p[0] as i32;
                    g += p[1] as i32;
                    b += p[2] as i32;
                }
                let (r, g, b) = (r / 4, g / 4, b / 4);
                let u = 128 + ((-38 * r - 74 * g + 112 * b + 128) >> 8);
                let v = 128 + ((112 * r - 94 * g - 18 * b + 128) >> 8);
                us[cy * (w / 2) + cx] = u.clamp(16, 240) as u8;
                vs[cy * (w / 2) + cx] = v.clamp(16, 240) as u8;
            }
        }
        out
    }
}

/// BT.601 limited-range luma of an sRGB pixel.
#[inline]
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    let y = 16 + ((66 * r as i32 + 129 * g as i32 + 25 * b as i32 + 128) >> 8);
    y.clamp(16, 235) as u8
}
