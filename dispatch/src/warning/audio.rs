//! Checks an uploaded voice message before it is stored: a WAV file (PCM 8/16-bit, or G.711 µ-law
//! / A-law), mono or stereo, 8 to 48 kHz, 0.5 to 60 seconds — what the edge's player and a camera's
//! G.711 backchannel take without surprises. Plain logic over the bytes; the errors say what to do.

/// Longest message, milliseconds: a warning is a sentence or two.
pub const MAX_DURATION_MS: u64 = 60_000;
/// Shortest message, milliseconds.
pub const MIN_DURATION_MS: u64 = 500;

/// What an accepted file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioInfo {
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_ms: u64,
}

/// Why a file was refused: `code` is the API error code, `message` the words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

fn not_wav(why: impl std::fmt::Display) -> Refused {
    Refused {
        code: "not_audio",
        message: format!(
            "not a WAV file the boxes can play ({why}); convert it, e.g. `ffmpeg -i in.mp3 -ac 1 -ar 16000 out.wav`"
        ),
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the WAV header and checks format and length.
pub fn check_wav(bytes: &[u8]) -> Result<AudioInfo, Refused> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(not_wav("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut format: Option<(u16, u16, u32, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_at(bytes, at + 4) as usize;
        let body = at + 8;
        if id == b"fmt " {
            if size < 16 || body + 16 > bytes.len() {
                return Err(not_wav("its fmt chunk is cut short"));
            }
            format = Some((
                u16_at(bytes, body),
                u16_at(bytes, body + 2),
                u32_at(bytes, body + 4),
                u32_at(bytes, body + 8),
                u16_at(bytes, body + 14),
            ));
        } else if id == b"data" {
            let Some((tag, channels, rate, byte_rate, bits)) = format else {
                return Err(not_wav("its data comes before its fmt chunk"));
            };
            match (tag, bits) {
                (1, 8) | (1, 16) | (6, 8) | (7, 8) => {}
                (1, b) => return Err(not_wav(format!("{b}-bit PCM; use 16-bit"))),
                (t, _) => {
                    return Err(not_wav(format!(
                        "format tag {t}; use PCM or G.711 µ-law/A-law"
                    )));
                }
            }
            if !(1..=2).contains(&channels) {
                return Err(not_wav(format!("{channels} channels; use mono")));
            }
            if !(8_000..=48_000).contains(&rate) {
                return Err(not_wav(format!("{rate} Hz; use 8000 to 48000 Hz")));
            }
            if byte_rate == 0 {
                return Err(not_wav("a byte rate of 0"));
            }
            // A streamed WAV may claim more data than follows; count what is there.
            let data = size.min(bytes.len() - body) as u64;
            let duration_ms = data * 1000 / u64::from(byte_rate);
            if !(MIN_DURATION_MS..=MAX_DURATION_MS).contains(&duration_ms) {
                return Err(Refused {
                    code: "audio_duration",
                    message: format!(
                        "the message is {:.1} s long; it must be {:.1} to {} s",
                        duration_ms as f64 / 1000.0,
                        MIN_DURATION_MS as f64 / 1000.0,
                        MAX_DURATION_MS / 1000
                    ),
                });
            }
            return Ok(AudioInfo {
                sample_rate: rate,
                channels,
                duration_ms,
            });
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(size).saturating_add(size & 1);
    }
    Err(not_wav("no data chunk"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 16-bit mono PCM WAV of `ms` milliseconds of a 440 Hz tone at `rate`.
    pub fn wav(rate: u32, ms: u32) -> Vec<u8> {
        let n = rate * ms / 1000;
        let mut data = Vec::with_capacity(n as usize * 2);
        for i in 0..n {
            let s = (f64::from(i) * 440.0 * std::f64::consts::TAU / f64::from(rate)).sin();
            data.extend_from_slice(&((s * 8000.0) as i16).to_le_bytes());
        }
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * 2).to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&data);
        b
    }

    #[test]
    fn a_two_second_mono_pcm_wav_is_accepted_with_its_duration() {
        let info = check_wav(&wav(16_000, 2_000)).unwrap();
        assert_eq!(info.sample_rate, 16_000);
        assert_eq!(info.channels, 1);
        assert_eq!(info.duration_ms, 2_000);
    }

    #[test]
    fn an_mp3_or_a_cut_header_is_not_audio_and_says_how_to_convert() {
        for bytes in [
            &b"ID3\x03\x00\x00\x00"[..],
            b"",
            b"RIFF\0\0\0\0WAVE",
            b"RIFF1234WAVEfmt ",
        ] {
            let e = check_wav(bytes).unwrap_err();
            assert_eq!(e.code, "not_audio", "{e}");
            assert!(e.message.contains("ffmpeg"), "{e}");
        }
    }

    #[test]
    fn too_long_or_too_short_a_message_is_refused_naming_the_limits() {
        let e = check_wav(&wav(8_000, 61_000)).unwrap_err();
        assert_eq!(e.code, "audio_duration");
        assert!(e.message.contains("61.0 s"), "{e}");
        assert_eq!(
            check_wav(&wav(8_000, 200)).unwrap_err().code,
            "audio_duration"
        );
    }

    #[test]
    fn a_96_khz_or_32_bit_file_is_refused_naming_the_problem() {
        let mut b = wav(8_000, 1_000);
        b[24..28].copy_from_slice(&96_000u32.to_le_bytes());
        assert!(check_wav(&b).unwrap_err().message.contains("96000 Hz"));
        let mut b = wav(8_000, 1_000);
        b[34..36].copy_from_slice(&32u16.to_le_bytes());
        assert!(check_wav(&b).unwrap_err().message.contains("32-bit"));
    }
}
