//! Turns frame `n` of a scenario into an I420 picture: cached backdrop, the scene's shapes, the
//! infrared look while the lights are off, and the frame-number strip.

pub mod backdrop;
pub mod canvas;
pub mod person;

use crate::framecode;
use crate::scenario::Scenario;
use crate::scene::{self, mix64};
use canvas::{Canvas, luma};

/// One rendered picture in I420 (planar Y, then U and V at half resolution).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub i420: Vec<u8>,
}

impl Frame {
    /// The luma plane, `width * height` bytes.
    pub fn luma(&self) -> &[u8] {
        &self.i420[..self.width * self.height]
    }

    /// The picture as binary PPM (P6, RGB), for looking at it.
    pub fn to_ppm(&self) -> Vec<u8> {
        let (w, h) = (self.width, self.height);
        let mut out = format!("P6\n{w} {h}\n255\n").into_bytes();
        let (u, v) = self.i420[w * h..].split_at(w * h / 4);
        for y in 0..h {
            for x in 0..w {
                let c = (y / 2) * (w / 2) + x / 2;
                let yy = 1.164 * (self.i420[y * w + x] as f64 - 16.0);
                let (cb, cr) = (u[c] as f64 - 128.0, v[c] as f64 - 128.0);
                for p in [
                    yy + 1.596 * cr,
                    yy - 0.392 * cb - 0.813 * cr,
                    yy + 2.017 * cb,
                ] {
                    out.push(p.round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        out
    }
}

/// Renders one scenario. Building it draws and caches the backdrop; rendering a frame is then cheap.
#[derive(Debug, Clone)]
pub struct Renderer {
    scenario: Scenario,
    backdrop: Canvas,
    /// Per-pixel infrared gain (vignette), for scenes with infrared.
    vignette: Option<Vec<f32>>,
}

impl Renderer {
    pub fn new(scenario: Scenario) -> Renderer {
        let (w, h) = (scenario.width as usize, scenario.height as usize);
        let backdrop = backdrop::draw(scenario.backdrop, w, h, scenario.seed);
        let vignette = scenario.infrared.as_ref().map(|ir| {
            let mut v = Vec::with_capacity(w * h);
            let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
            let norm = (cx * cx + cy * cy).sqrt();
            for y in 0..h {
                for x in 0..w {
                    let r = ((x as f64 + 0.5 - cx).powi(2) + (y as f64 + 0.5 - cy).powi(2)).sqrt()
                        / norm;
                    v.push((1.0 - ir.vignette * r * r) as f32);
                }
            }
            v
        });
        Renderer {
            scenario,
            backdrop,
            vignette,
        }
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Absolute frame `n` as the camera sends it.
    pub fn render(&self, n: u64) -> Frame {
        self.render_with(n, true)
    }

    /// Frame `n` with every object left out: the empty scene with the same lighting, noise and strip.
    pub fn render_empty(&self, n: u64) -> Frame {
        self.render_with(n, false)
    }

    fn render_with(&self, n: u64, objects: bool) -> Frame {
        let s = &self.scenario;
        let (w, h) = (s.width as usize, s.height as usize);
        let mut c = self.backdrop.clone();
        let scene = scene::compose(s, n);
        if objects {
            for o in &scene.objects {
                for shape in &o.shapes {
                    c.draw(shape);
                }
            }
        }
        let mut i420 = match (&s.infrared, &self.vignette, scene.lights_on) {
            (Some(ir), Some(vig), false) => {
                infrared(&c, vig, ir.noise, ir.flicker, mix64(s.seed, n))
            }
            _ => c.to_i420(),
        };
        framecode::stamp_i420(&mut i420, w, h, n);
        Frame {
            width: w,
            height: h,
            i420,
        }
    }
}

/// The grey infrared look: monochrome, darker, vignetted, flickering, with sensor noise seeded by `key`.
fn infrared(c: &Canvas, vignette: &[f32], noise: f64, flicker: f64, key: u64) -> Vec<u8> {
    let mut out = vec![128u8; c.width * c.height * 3 / 2];
    let gain = (1.0
        + flicker * (2.0 * ((mix64(key, 0xF11C) >> 11) as f64 / (1u64 << 53) as f64) - 1.0))
        as f32;
    // sum of 4 uniforms in 0..1 has standard deviation 0.577
    let scale = (noise / 0.577 / 65536.0) as f32;
    let mut rng = mix64(key, 0x5EED) | 1;
    for (i, px) in c.rgb.chunks_exact(3).enumerate() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let u = (rng & 0xFFFF) + ((rng >> 16) & 0xFFFF) + ((rng >> 32) & 0xFFFF) + (rng >> 48);
        let n = (u as f32 - 2.0 * 65535.0) * scale;
        let y = luma(px[0], px[1], px[2]) as f32;
        let v = (22.0 + (y - 16.0) * 0.62) * vignette[i] * gain + n;
        out[i] = v.clamp(16.0, 235.0) as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn night() -> Scenario {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/kitchen-night.toml");
        Scenario::load(std::path::Path::new(p)).unwrap()
    }

    #[test]
    fn a_frame_is_a_pure_function_of_scenario_and_frame_number() {
        let s = night();
        let (a, b) = (Renderer::new(s.clone()), Renderer::new(s));
        assert_eq!(a.render(37), b.render(37));
        assert_ne!(a.render(37).luma(), a.render(38).luma());
    }

    #[test]
    fn the_rendered_frame_carries_its_absolute_number() {
        let r = Renderer::new(night());
        let n = r.scenario().frames_per_loop() * 3 + 5;
        let f = r.render(n);
        assert_eq!(
            framecode::read_frame_number(f.luma(), f.width, f.height),
            Some(n)
        );
    }

    #[test]
    fn infrared_frames_are_grey_and_lit_frames_have_colour() {
        let r = Renderer::new(night());
        let s = r.scenario();
        let dark = (0..s.frames_per_loop())
            .find(|&n| !s.lights_on(s.time_of(n)))
            .unwrap();
        let lit = (0..s.frames_per_loop())
            .find(|&n| s.lights_on(s.time_of(n)))
            .unwrap();
        let chroma = |f: &Frame| {
            f.i420[f.width * f.height..]
                .iter()
                .filter(|&&v| v != 128)
                .count()
        };
        assert_eq!(chroma(&r.render(dark)), 0);
        assert!(chroma(&r.render(lit)) > 1000);
        let mean =
            |f: &Frame| f.luma().iter().map(|&v| v as f64).sum::<f64>() / f.luma().len() as f64;
        assert!(
            mean(&r.render(lit)) > mean(&r.render(dark)) + 20.0,
            "lights on is a brightness jump"
        );
    }
}
