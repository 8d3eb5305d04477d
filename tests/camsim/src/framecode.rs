//! The frame-number strip: every frame carries its absolute frame number (frames since the camera
//! started) as black/white blocks in the top-left corner.
//!
//! Layout, all in units of a block `B = height / 45` (16 px at 720p, 8 px at 360p, so the strip scales
//! with the picture and survives the sub stream's downscale): a black quiet zone, then two rows of 20
//! blocks starting at (B/2, B/2). Blocks 0–3 are the start marker (white, black, white, black), blocks
//! 4–35 the 32-bit frame number (most significant bit first, white = 1), blocks 36–39 a 4-bit check
//! (XOR of the number's nibbles, inverted). The number wraps after 2^32 frames (13 years at 10 fps).

/// Blocks per row.
const COLS: usize = 20;
/// Rows of blocks.
const ROWS: usize = 2;
const DATA_BITS: usize = 32;
const MARKER: [bool; 4] = [true, false, true, false];

const BLACK: u8 = 16;
const WHITE: u8 = 235;

fn block_size(height: usize) -> f64 {
    height as f64 / 45.0
}

fn check_nibble(v: u32) -> u32 {
    (0..8).fold(0, |acc, i| acc ^ ((v >> (i * 4)) & 0xF)) ^ 0xF
}

fn bits_of(n: u64) -> [bool; COLS * ROWS] {
    let v = (n & 0xFFFF_FFFF) as u32;
    let mut bits = [false; COLS * ROWS];
    bits[..4].copy_from_slice(&MARKER);
    for i in 0..DATA_BITS {
        bits[4 + i] = (v >> (DATA_BITS - 1 - i)) & 1 == 1;
    }
    let c = check_nibble(v);
    for i in 0..4 {
        bits[4 + DATA_BITS + i] = (c >> (3 - i)) & 1 == 1;
    }
    bits
}

/// Pixel rectangle `(x0, y0, x1, y1)` of block `i`.
fn block_rect(i: usize, b: f64) -> (f64, f64, f64, f64) {
    let (col, row) = ((i % COLS) as f64, (i / COLS) as f64);
    let (x0, y0) = (b * 0.5 + col * b, b * 0.5 + row * b);
    (x0, y0, x0 + b, y0 + b)
}

/// Stamps frame number `n` into an I420 frame of `width` x `height`.
pub fn stamp_i420(i420: &mut [u8], width: usize, height: usize, n: u64) {
    let b = block_size(height);
    let zone_w = ((COLS as f64 + 1.0) * b).ceil() as usize;
    let zone_h = ((ROWS as f64 + 1.0) * b).ceil() as usize;
    let (luma, chroma) = i420.split_at_mut(width * height);
    for y in 0..zone_h.min(height) {
        luma[y * width..y * width + zone_w.min(width)].fill(BLACK);
    }
    for (i, bit) in bits_of(n).iter().enumerate() {
        if !bit {
            continue;
        }
        let (x0, y0, x1, y1) = block_rect(i, b);
        for y in (y0.round() as usize)..(y1.round() as usize).min(height) {
            let row = &mut luma[y * width..(y + 1) * width];
            row[(x0.round() as usize).min(width)..(x1.round() as usize).min(width)].fill(WHITE);
        }
    }
    let (cw, ch) = (width / 2, height / 2);
    for plane in chroma.chunks_exact_mut(cw * ch) {
        for y in 0..(zone_h / 2 + 1).min(ch) {
            plane[y * cw..y * cw + (zone_w / 2 + 1).min(cw)].fill(128);
        }
    }
}

/// Mean luma over the centre half of block `i`.
fn sample(luma: &[u8], width: usize, height: usize, i: usize, b: f64) -> Option<f64> {
    let (x0, y0, x1, y1) = block_rect(i, b);
    let q = b / 4.0;
    let (xa, xb) = ((x0 + q).round() as usize, (x1 - q).round() as usize);
    let (ya, yb) = ((y0 + q).round() as usize, (y1 - q).round() as usize);
    if xb > width || yb > height || xa >= xb || ya >= yb {
        return None;
    }
    let mut sum = 0u64;
    for y in ya..yb {
        sum += luma[y * width + xa..y * width + xb]
            .iter()
            .map(|&v| v as u64)
            .sum::<u64>();
    }
    Some(sum as f64 / ((xb - xa) * (yb - ya)) as f64)
}

/// Reads the absolute frame number from a luma plane (`width` x `height`, one byte per pixel, no
/// padding). `None` when the strip is missing, unreadable or its check fails.
pub fn read_frame_number(luma: &[u8], width: usize, height: usize) -> Option<u64> {
    if luma.len() < width * height || height < 45 {
        return None;
    }
    let b = block_size(height);
    let mut levels = [0.0; COLS * ROWS];
    for (i, level) in levels.iter_mut().enumerate() {
        *level = sample(luma, width, height, i, b)?;
    }
    let (white, black) = ((levels[0] + levels[2]) / 2.0, (levels[1] + levels[3]) / 2.0);
    if white - black < 60.0 {
        return None;
    }
    let threshold = (white + black) / 2.0;
    let bits: Vec<bool> = levels.iter().map(|&l| l > threshold).collect();
    if bits[..4] != MARKER {
        return None;
    }
    let v = bits[4..4 + DATA_BITS]
        .iter()
        .fold(0u32, |acc, &bit| (acc << 1) | bit as u32);
    let c = bits[4 + DATA_BITS..]
        .iter()
        .fold(0u32, |acc, &bit| (acc << 1) | bit as u32);
    (c == check_nibble(v)).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(w: usize, h: usize, fill: u8) -> Vec<u8> {
        let mut f = vec![fill; w * h];
        f.extend(std::iter::repeat_n(128, w * h / 2));
        f
    }

    #[test]
    fn frame_numbers_round_trip_through_the_strip_at_main_and_sub_size() {
        for (w, h) in [(1280, 720), (640, 360), (1920, 1080)] {
            for n in [0u64, 1, 2, 599, 600, 123_456, 0xFFFF_FFFF] {
                let mut f = blank(w, h, 120);
                stamp_i420(&mut f, w, h, n);
                assert_eq!(
                    read_frame_number(&f[..w * h], w, h),
                    Some(n),
                    "{w}x{h} frame {n}"
                );
            }
        }
    }

    #[test]
    fn a_frame_without_a_strip_reads_as_none() {
        let f = blank(1280, 720, 200);
        assert_eq!(read_frame_number(&f[..1280 * 720], 1280, 720), None);
    }

    #[test]
    fn the_strip_survives_a_2x_box_downscale_and_noise() {
        let (w, h) = (1280, 720);
        let mut f = blank(w, h, 90);
        stamp_i420(&mut f, w, h, 987_654);
        let mut small = vec![0u8; 640 * 360];
        for y in 0..360 {
            for x in 0..640 {
                let s: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                    .iter()
                    .map(|(dx, dy)| f[(y * 2 + dy) * w + x * 2 + dx] as u32)
                    .sum();
                let noise = ((x * 7 + y * 13) % 31) as i32 - 15;
                small[y * 640 + x] = ((s / 4) as i32 + noise).clamp(0, 255) as u8;
            }
        }
        assert_eq!(read_frame_number(&small, 640, 360), Some(987_654));
    }
}
