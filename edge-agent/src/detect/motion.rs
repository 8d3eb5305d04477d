//! A cheap motion gate: the expensive person model runs only when something in the picture moved.
//!
//! Frames are shrunk to 80x45 grey; a pixel moved when it differs from the previous small frame by
//! more than [`PIXEL_DIFF`] luma steps; the picture moved when more than [`MOVED_SHARE`] of the pixels
//! did (at 80x45: 4 pixels, a walking person at the far wall moves dozens).

use super::{DetectError, Frame, downscale};

const SMALL_W: u32 = 80;
const SMALL_H: u32 = 45;
/// Luma change of one small pixel that counts as movement (sensor noise is averaged away by the
/// shrinking).
pub const PIXEL_DIFF: u8 = 12;
/// Share of moved pixels that counts as movement of the picture.
pub const MOVED_SHARE: f64 = 0.001;

/// Remembers the last small frame.
#[derive(Debug, Default)]
pub struct MotionGate {
    previous: Option<Vec<u8>>,
}

impl MotionGate {
    /// Whether this frame differs from the last one (the first frame always does).
    pub fn moved(&mut self, frame: &Frame<'_>) -> Result<bool, DetectError> {
        let small = downscale(frame.luma, frame.width, frame.height, SMALL_W, SMALL_H)?.luma;
        let moved = match &self.previous {
            None => true,
            Some(prev) => {
                let n = prev
                    .iter()
                    .zip(&small)
                    .filter(|(a, b)| a.abs_diff(**b) > PIXEL_DIFF)
                    .count();
                n as f64 > MOVED_SHARE * small.len() as f64
            }
        };
        self.previous = Some(small);
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(luma: &[u8]) -> Frame<'_> {
        Frame {
            width: 160,
            height: 90,
            luma,
            bgr: None,
            at_ms: 0,
            minute_of_day: 0,
        }
    }

    #[test]
    fn a_still_picture_does_not_move_and_a_new_object_does() {
        let mut gate = MotionGate::default();
        let still = vec![100u8; 160 * 90];
        assert!(gate.moved(&frame(&still)).unwrap(), "first frame");
        assert!(!gate.moved(&frame(&still)).unwrap());
        let mut walker = still.clone();
        for y in 30..60 {
            for x in 40..50 {
                walker[y * 160 + x] = 20;
            }
        }
        assert!(gate.moved(&frame(&walker)).unwrap());
        assert!(!gate.moved(&frame(&walker)).unwrap());
    }
}
