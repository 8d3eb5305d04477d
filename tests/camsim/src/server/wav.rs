//! A tiny WAV writer (16-bit PCM, mono) whose header is rewritten after every chunk, so the file is a
//! valid WAV at every moment, also when the client vanishes or the process is killed.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

pub struct WavWriter {
    file: File,
    data_len: u32,
}

impl WavWriter {
    pub fn create(path: &Path, rate: u32) -> std::io::Result<WavWriter> {
        let mut file = File::create(path)?;
        let mut h = Vec::with_capacity(44);
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&36u32.to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes()); // PCM
        h.extend_from_slice(&1u16.to_le_bytes()); // mono
        h.extend_from_slice(&rate.to_le_bytes());
        h.extend_from_slice(&(rate * 2).to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&0u32.to_le_bytes());
        file.write_all(&h)?;
        Ok(WavWriter { file, data_len: 0 })
    }

    /// Appends little-endian 16-bit samples and updates the header.
    pub fn write(&mut self, pcm: &[u8]) -> std::io::Result<()> {
        self.file.seek(SeekFrom::End(0))?;
        self.file.write_all(pcm)?;
        self.data_len = self.data_len.saturating_add(pcm.len() as u32);
        self.file.seek(SeekFrom::Start(4))?;
        self.file.write_all(&(36 + self.data_len).to_le_bytes())?;
        self.file.seek(SeekFrom::Start(40))?;
        self.file.write_all(&self.data_len.to_le_bytes())?;
        Ok(())
    }

    pub fn bytes(&self) -> u32 {
        self.data_len
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        let _ = self.file.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wav_file_is_valid_after_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        let mut w = WavWriter::create(&p, 8000).unwrap();
        w.write(&[1, 0, 2, 0]).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(b.len(), 48);
        assert_eq!(&b[4..8], &40u32.to_le_bytes());
        assert_eq!(&b[40..44], &4u32.to_le_bytes());
    }
}
