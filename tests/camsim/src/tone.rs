//! Recognising a tone in audio: what tests use to check that a camera's marker tone, or an
//! operator's test tone, arrived where it should.

/// Power of `freq` Hz in 16-bit mono PCM sampled at `rate` Hz (Goertzel), normalised by length, so
/// powers of clips of different lengths compare.
pub fn tone_power(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s = x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len().max(1) as f64).powi(2)
}

/// True when `freq` carries at least `ratio` times the power of each of a few frequencies well
/// away from it (a quarter, half, one and a half and three times it) and is audible at all.
pub fn has_tone(samples: &[i16], rate: u32, freq: f64, ratio: f64) -> bool {
    let p = tone_power(samples, rate, freq);
    p > 1000.0
        && [0.37, 0.55, 1.45, 2.6]
            .iter()
            .all(|k| p > ratio * tone_power(samples, rate, freq * k))
}

/// The strongest frequency from `from` to `to` Hz (inclusive), in `step` Hz steps.
pub fn peak_frequency(samples: &[i16], rate: u32, from: u32, to: u32, step: usize) -> u32 {
    (from..=to)
        .step_by(step)
        .map(|f| (f, tone_power(samples, rate, f as f64)))
        .fold((0, f64::MIN), |best, x| if x.1 > best.1 { x } else { best })
        .0
}

/// Root mean square of `samples`: 0 for silence.
pub fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| (s as f64).powi(2)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn a_sine_is_found_at_its_frequency_only() {
        let s = sine(8000, 700.0, 8000);
        assert!(has_tone(&s, 8000, 700.0, 20.0));
        assert!(!has_tone(&s, 8000, 1000.0, 20.0));
        assert!(!has_tone(&[0; 8000], 8000, 700.0, 20.0));
        assert_eq!(peak_frequency(&s, 8000, 300, 1000, 5), 700);
        assert_eq!(rms(&[0; 100]), 0.0);
    }
}
