//! A small, strict WAV (RIFF) reader and writer for mono 16-bit PCM, the format of the Free
//! Spoken Digit Dataset, and the format obfnet writes its re-synthesised audio in.
//!
//! The reader walks the RIFF chunks (skipping unknown ones such as `LIST`), requires a `fmt `
//! chunk before `data`, and accepts only PCM (format tag 1, or `WAVE_FORMAT_EXTENSIBLE` with
//! the PCM sub-format), one channel, 16 bits per sample. Every length is checked against the
//! bytes present; nothing here panics on bad input.

use std::path::Path;

use crate::error::{Error, Result, WavError};

/// The largest WAV file accepted: 64 MiB (an FSDD clip is a few kB).
pub const MAX_WAV_BYTES: u64 = 64 * 1024 * 1024;

/// Mono 16-bit PCM audio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wav {
    /// Samples per second.
    pub sample_rate: u32,
    /// The samples, in time order.
    pub samples: Vec<i16>,
}

impl Wav {
    /// The samples scaled to `[-1, 1)` (`s / 32768`).
    pub fn to_f32(&self) -> Vec<f32> {
        self.samples.iter().map(|&s| f32::from(s) / 32768.0).collect()
    }

    /// Audio from float samples: each is clamped to `[-1, 1]` and rounded to 16 bits
    /// (`round(x · 32767)`); non-finite samples become 0.
    pub fn from_f32(sample_rate: u32, samples: &[f32]) -> Wav {
        let samples = samples
            .iter()
            .map(|&x| {
                let x = if x.is_finite() { x.clamp(-1.0, 1.0) } else { 0.0 };
                // in range after the clamp, so the cast cannot saturate
                (x * 32767.0).round() as i16
            })
            .collect();
        Wav { sample_rate, samples }
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate.max(1))
    }

    /// The canonical 44-byte-header WAV encoding (RIFF, `fmt ` PCM mono 16-bit, `data`).
    ///
    /// # Errors
    /// [`WavError::TooLong`] (inside [`Error::Wav`] with the placeholder path `<memory>`) if the
    /// data would not fit a RIFF size field.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let data_len = self
            .samples
            .len()
            .checked_mul(2)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| n.checked_add(36).is_some())
            .ok_or_else(|| Error::Wav {
                path: crate::MEMORY_PATH.into(),
                source: WavError::TooLong,
            })?;
        let mut out = Vec::with_capacity(44 + self.samples.len() * 2);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&self.sample_rate.to_le_bytes());
        out.extend_from_slice(&self.sample_rate.saturating_mul(2).to_le_bytes()); // byte rate
        out.extend_from_slice(&2u16.to_le_bytes()); // block align
        out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for s in &self.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        Ok(out)
    }
}

/// Parses a WAV file held in memory (see the module docs for what is accepted).
///
/// # Errors
/// [`Error::Wav`] naming `<memory>` with the [`WavError`] found.
pub fn parse_wav(bytes: &[u8]) -> Result<Wav> {
    parse_inner(bytes).map_err(|source| Error::Wav {
        path: crate::MEMORY_PATH.into(),
        source,
    })
}

/// Reads and parses a WAV file of at most [`MAX_WAV_BYTES`].
///
/// # Errors
/// [`Error::Io`], [`Error::TooLarge`], or [`Error::Wav`] naming `path`.
pub fn read_wav(path: &Path) -> Result<Wav> {
    let bytes = crate::idx::read_file_capped_raw(path, MAX_WAV_BYTES)?;
    parse_inner(&bytes).map_err(|source| Error::Wav {
        path: path.to_path_buf(),
        source,
    })
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The GUID tail shared by the `WAVE_FORMAT_EXTENSIBLE` sub-formats (bytes 2..16).
const KSDATAFORMAT_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

fn parse_inner(b: &[u8]) -> std::result::Result<Wav, WavError> {
    if b.len() < 12 {
        return Err(WavError::Truncated { what: "RIFF header" });
    }
    if &b[0..4] != b"RIFF" {
        return Err(WavError::NotRiff);
    }
    if &b[8..12] != b"WAVE" {
        return Err(WavError::NotWave);
    }
    let mut at = 12usize;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while at < b.len() {
        let (Some(id), Some(len)) = (b.get(at..at + 4), u32_at(b, at + 4)) else {
            return Err(WavError::Truncated { what: "chunk header" });
        };
        let body_start = at + 8;
        let len = len as usize;
        let Some(body) = body_start.checked_add(len).and_then(|end| b.get(body_start..end)) else {
            return Err(WavError::Truncated {
                what: if id == b"data" { "data chunk" } else { "chunk" },
            });
        };
        match id {
            b"fmt " => {
                let (Some(tag), Some(channels), Some(rate), Some(bits)) = (
                    u16_at(body, 0),
                    u16_at(body, 2),
                    u32_at(body, 4),
                    u16_at(body, 14),
                ) else {
                    return Err(WavError::Truncated { what: "fmt chunk" });
                };
                let tag = if tag == 0xfffe {
                    // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts at byte 24
                    match (u16_at(body, 24), body.get(26..40)) {
                        (Some(sub), Some(tail)) if tail == KSDATAFORMAT_TAIL => sub,
                        _ => {
                            return Err(WavError::Truncated {
                                what: "extensible fmt chunk",
                            });
                        }
                    }
                } else {
                    tag
                };
                fmt = Some((tag, channels, rate, bits));
            }
            b"data" => {
                let Some((tag, channels, sample_rate, bits)) = fmt else {
                    return Err(WavError::DataBeforeFmt);
                };
                if tag != 1 {
                    return Err(WavError::NotPcm { format_tag: tag });
                }
                if channels != 1 {
                    return Err(WavError::NotMono { channels });
                }
                if bits != 16 {
                    return Err(WavError::Not16Bit { bits });
                }
                if sample_rate == 0 {
                    return Err(WavError::ZeroSampleRate);
                }
                if !body.len().is_multiple_of(2) {
                    return Err(WavError::OddDataLength { len: body.len() });
                }
                let samples = body
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                return Ok(Wav { sample_rate, samples });
            }
            _ => {}
        }
        // chunks are padded to an even length
        at = body_start + len + (len & 1);
    }
    Err(WavError::NoData)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone() -> Wav {
        Wav {
            sample_rate: 8000,
            samples: (0..100).map(|i| (i * 300 - 15000) as i16).collect(),
        }
    }

    #[test]
    fn round_trip() {
        let w = tone();
        let bytes = w.to_bytes().expect("encode");
        assert_eq!(bytes.len(), 44 + 200);
        assert_eq!(parse_wav(&bytes).expect("parse"), w);
    }

    #[test]
    fn skips_unknown_chunks_and_padding() {
        let w = tone();
        let canon = w.to_bytes().expect("encode");
        // insert an odd-length LIST chunk (padded to even) between fmt and data
        let mut b = canon[..36].to_vec();
        b.extend_from_slice(b"LIST");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&[1, 2, 3, 0]);
        b.extend_from_slice(&canon[36..]);
        assert_eq!(parse_wav(&b).expect("parse"), w);
    }

    #[test]
    fn typed_errors() {
        let good = tone().to_bytes().expect("encode");
        let err = |b: &[u8]| match parse_wav(b) {
            Err(Error::Wav { source, .. }) => source,
            other => panic!("expected a WAV error, got {other:?}"),
        };
        assert_eq!(err(&good[..8]), WavError::Truncated { what: "RIFF header" });
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(err(&b), WavError::NotRiff);
        let mut b = good.clone();
        b[8] = b'X';
        assert_eq!(err(&b), WavError::NotWave);
        assert_eq!(
            err(&good[..good.len() - 1]),
            WavError::Truncated { what: "data chunk" }
        );
        let mut b = good.clone();
        b[20] = 3; // IEEE float
        assert_eq!(err(&b), WavError::NotPcm { format_tag: 3 });
        let mut b = good.clone();
        b[22] = 2;
        assert_eq!(err(&b), WavError::NotMono { channels: 2 });
        let mut b = good.clone();
        b[34] = 8;
        assert_eq!(err(&b), WavError::Not16Bit { bits: 8 });
        // data before fmt
        let mut b = good[..12].to_vec();
        b.extend_from_slice(&good[36..]);
        assert_eq!(err(&b), WavError::DataBeforeFmt);
        // no data chunk at all
        assert_eq!(err(&good[..36]), WavError::NoData);
        // odd data length
        let mut b = good[..40].to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&[1, 2, 3, 0]);
        assert_eq!(err(&b), WavError::OddDataLength { len: 3 });
    }

    #[test]
    fn error_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("bad.wav");
        std::fs::write(&p, b"RIFF....WAVX").expect("write");
        let e = read_wav(&p).expect_err("bad");
        assert!(e.to_string().contains("bad.wav"), "{e}");
    }

    #[test]
    fn float_conversion_clamps() {
        let w = Wav::from_f32(8000, &[0.0, 1.5, -2.0, f32::NAN, 0.5]);
        assert_eq!(w.samples, [0, 32767, -32767, 0, 16384]);
        assert!((w.to_f32()[4] - 0.5).abs() < 1e-4);
    }
}
