//! Sample readers: PNG, IDX, raw bytes, and WAV (turned into a coded MFCC map on the device).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use obfnet_dsp::{Mfcc, MfccConfig, MfccQuantiser};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest sample file read (IDX files of a whole test split fit).
pub const MAX_SAMPLE_FILE_BYTES: u64 = 256 << 20;

/// How sample files are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// By extension: `.png`, `.wav`, `.idx` / `-ubyte` / `.gz` (IDX), anything else raw.
    Auto,
    /// An 8-bit PNG (grayscale, or colour converted with Rec. 601 luma).
    Png,
    /// An IDX images file (optionally gzip'd), one sample per image.
    Idx,
    /// Raw bytes, a whole number of samples back to back.
    Raw,
    /// A 16-bit PCM WAV clip, turned into a coded MFCC map ([`MfccFrontEnd`]).
    Wav,
}

/// One sample as the device's sensor gives it: raw bytes (pixels, or MFCC codes).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// File name, with `#index` for files holding several samples.
    pub name: String,
    /// The sensor bytes (`input_len` of them).
    pub data: Vec<u8>,
    /// The true label when the source tells it (IDX with a labels file, FSDD file names).
    pub label: Option<u8>,
    /// Time to read and preprocess it, µs: the file read plus decoding (PNG, IDX, and for WAV
    /// the whole MFCC front end). A file holding several samples (IDX, raw) shares its time
    /// equally among the samples taken from it.
    pub read_us: f64,
}

/// The MFCC front end of a device: feature settings plus the quantiser fitted on the training
/// split (the same one the dataset the nets were trained on used). A versioned JSON artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MfccFrontEnd {
    /// Schema version ([`MfccFrontEnd::VERSION`]).
    pub version: u32,
    /// How MFCCs are computed.
    pub config: MfccConfig,
    /// How MFCCs become `u8` codes.
    pub quantiser: MfccQuantiser,
}

impl MfccFrontEnd {
    /// The schema version written.
    pub const VERSION: u32 = 1;

    /// Fits the front end the way `obfnet-data` builds the FSDD dataset (default features,
    /// quantiser fitted on the training split of the FSDD copy in `fsdd_dir`).
    ///
    /// # Errors
    /// The dataset errors of [`obfnet_data::load_fsdd`].
    pub fn fit_fsdd(fsdd_dir: &Path) -> Result<MfccFrontEnd> {
        let data = obfnet_data::load_fsdd(fsdd_dir, &MfccConfig::FSDD)?;
        Ok(MfccFrontEnd {
            version: Self::VERSION,
            config: data.config,
            quantiser: data.quantiser,
        })
    }

    /// Reads and checks a front end saved by [`MfccFrontEnd::save`].
    ///
    /// # Errors
    /// [`Error::Sample`] for an unreadable file, [`Error::Config`] for a wrong version or
    /// inconsistent settings.
    pub fn load(path: &Path) -> Result<MfccFrontEnd> {
        let text = std::fs::read(path).map_err(|e| Error::sample(path, e.to_string()))?;
        let f: MfccFrontEnd = serde_json::from_slice(&text).map_err(|e| Error::Config {
            field: "mfcc front end",
            reason: format!("{}: {e}", path.display()),
        })?;
        if f.version != Self::VERSION {
            return Err(Error::Config {
                field: "mfcc front end",
                reason: format!("version {} (this device reads {})", f.version, Self::VERSION),
            });
        }
        f.config.validate()?;
        f.quantiser.validate_for(&f.config)?;
        Ok(f)
    }

    /// Writes the front end as JSON.
    ///
    /// # Errors
    /// [`Error::Sample`] naming the file when it cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| Error::sample(path, e.to_string()))
    }

    /// The coded MFCC map of a WAV clip (bytes of a `.wav` file).
    ///
    /// # Errors
    /// WAV errors, a sample rate other than the features', bad settings.
    pub fn encode_wav(&self, path: &Path, wav_bytes: &[u8]) -> Result<Vec<u8>> {
        let wav = obfnet_data::parse_wav(wav_bytes)?;
        if wav.sample_rate != self.config.sample_rate {
            return Err(Error::sample(
                path,
                format!(
                    "sample rate {} Hz, the features need {} Hz (no resampling on the device)",
                    wav.sample_rate, self.config.sample_rate
                ),
            ));
        }
        let mfcc = Mfcc::new(self.config.clone())?;
        Ok(self.quantiser.encode(&mfcc.compute(&wav.to_f32())))
    }
}

/// What the samples must look like, and how to read the ones that need help.
#[derive(Clone, Debug)]
pub struct SampleSpec<'a> {
    /// Bytes per sample.
    pub input_len: usize,
    /// `(rows, cols)` of image samples, when the input is an image.
    pub image: Option<(usize, usize)>,
    /// Labels for IDX samples (an IDX labels file).
    pub labels: Option<&'a Path>,
    /// Read at most this many samples over all files.
    pub limit: Option<usize>,
    /// The MFCC front end, needed for WAV input.
    pub mfcc: Option<&'a MfccFrontEnd>,
}

fn format_of(path: &Path, format: InputFormat) -> InputFormat {
    if format != InputFormat::Auto {
        return format;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".png") {
        InputFormat::Png
    } else if name.ends_with(".wav") {
        InputFormat::Wav
    } else if name.ends_with(".idx") || name.contains("-ubyte") || name.ends_with(".gz") {
        InputFormat::Idx
    } else {
        InputFormat::Raw
    }
}

/// Expands directories (their files, sorted by name, not recursive).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::sample(p, e.to_string()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        return Err(Error::Config {
            field: "samples",
            reason: "no sample files given".into(),
        });
    }
    Ok(out)
}

fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::sample(path, e.to_string()))?;
    if meta.len() > MAX_SAMPLE_FILE_BYTES {
        return Err(Error::sample(
            path,
            format!(
                "{} bytes is over the {MAX_SAMPLE_FILE_BYTES}-byte limit",
                meta.len()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| Error::sample(path, e.to_string()))
}

/// Reads samples from files and directories.
///
/// # Errors
/// [`Error::Sample`] naming the file for unreadable or ill-sized samples, dataset errors for
/// bad IDX / WAV files, [`Error::Config`] for WAV input without a front end.
pub fn read_samples(paths: &[PathBuf], format: InputFormat, spec: &SampleSpec<'_>) -> Result<Vec<Sample>> {
    let limit = spec.limit.unwrap_or(usize::MAX);
    let d = spec.input_len;
    let mut out = Vec::new();
    for path in expand(paths)? {
        if out.len() >= limit {
            break;
        }
        let started = std::time::Instant::now();
        let first = out.len();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let bytes = read_capped(&path)?;
        match format_of(&path, format) {
            InputFormat::Png => {
                let (rows, cols) = spec.image.unwrap_or((1, d));
                out.push(Sample {
                    name,
                    data: decode_png(&path, &bytes, rows, cols)?,
                    label: None,
                    read_us: 0.0,
                });
            }
            InputFormat::Wav => {
                let Some(front) = spec.mfcc else {
                    return Err(Error::Config {
                        field: "mfcc front end",
                        reason: format!(
                            "{} is audio: give the MFCC front end (--mfcc FILE or --fsdd-dir DIR)",
                            path.display()
                        ),
                    });
                };
                let data = front.encode_wav(&path, &bytes)?;
                if data.len() != d {
                    return Err(Error::sample(
                        &path,
                        format!("the MFCC map has {} values, the bundle takes {d}", data.len()),
                    ));
                }
                let label = obfnet_data::FsddClip::from_path(&path).ok().map(|c| c.digit);
                out.push(Sample {
                    name,
                    data,
                    label,
                    read_us: 0.0,
                });
            }
            InputFormat::Idx => {
                let (n, rows, cols, pixels) = obfnet_data::parse_idx_images(&bytes)?;
                if rows * cols != d {
                    return Err(Error::sample(
                        &path,
                        format!("images are {rows}×{cols}, the bundle takes {d} values"),
                    ));
                }
                let labels = match spec.labels {
                    Some(l) => {
                        let v = obfnet_data::parse_idx_labels(&read_capped(l)?)?;
                        if v.len() != n {
                            return Err(Error::sample(l, format!("{} labels for {n} images", v.len())));
                        }
                        Some(v)
                    }
                    None => None,
                };
                for (i, img) in pixels.chunks_exact(d).take(n).enumerate() {
                    if out.len() >= limit {
                        break;
                    }
                    out.push(Sample {
                        name: format!("{name}#{i}"),
                        data: img.to_vec(),
                        label: labels.as_ref().and_then(|l| l.get(i).copied()),
                        read_us: 0.0,
                    });
                }
            }
            InputFormat::Raw | InputFormat::Auto => {
                if bytes.is_empty() || !bytes.len().is_multiple_of(d) {
                    return Err(Error::sample(
                        &path,
                        format!("{} bytes is not a whole number of {d}-byte samples", bytes.len()),
                    ));
                }
                let many = bytes.len() > d;
                for (i, s) in bytes.chunks_exact(d).enumerate() {
                    if out.len() >= limit {
                        break;
                    }
                    out.push(Sample {
                        name: if many { format!("{name}#{i}") } else { name.clone() },
                        data: s.to_vec(),
                        label: None,
                        read_us: 0.0,
                    });
                }
            }
        }
        let taken = &mut out[first..];
        let share = started.elapsed().as_secs_f64() * 1e6 / taken.len().max(1) as f64;
        for s in taken {
            s.read_us = share;
        }
    }
    Ok(out)
}

/// Decodes an 8-bit PNG to grayscale (colour via Rec. 601 luma; alpha ignored).
fn decode_png(path: &Path, bytes: &[u8], rows: usize, cols: usize) -> Result<Vec<u8>> {
    let bad = |r: String| Error::sample(path, r);
    let mut decoder = png::Decoder::new(std::io::BufReader::new(Cursor::new(bytes)));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(format!("not a readable PNG: {e}")))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| bad("PNG too large".into()))?;
    if size > 64 << 20 {
        return Err(bad(format!("PNG too large ({size} bytes decoded)")));
    }
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(format!("decoding PNG: {e}")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    if (h, w) != (rows, cols) {
        return Err(bad(format!(
            "the image is {w}×{h} pixels, the bundle's nets take {cols}×{rows}"
        )));
    }
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(bad("indexed PNG was not expanded".into())),
    };
    let line = info.line_size;
    let mut out = Vec::with_capacity(rows * cols);
    for y in 0..h {
        let row = buf
            .get(y * line..y * line + w * channels)
            .ok_or_else(|| bad("short PNG row".into()))?;
        for px in row.chunks_exact(channels) {
            out.push(if channels < 3 {
                px[0]
            } else {
                let l = 0.299 * f32::from(px[0]) + 0.587 * f32::from(px[1]) + 0.114 * f32::from(px[2]);
                l.round().clamp(0.0, 255.0) as u8
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn front_end() -> MfccFrontEnd {
        let cfg = MfccConfig::FSDD;
        MfccFrontEnd {
            version: MfccFrontEnd::VERSION,
            quantiser: MfccQuantiser {
                mean: (0..cfg.n_mfcc).map(|k| -(k as f32)).collect(),
                std: vec![2.0; cfg.n_mfcc],
                frames: cfg.frames,
            },
            config: cfg,
        }
    }

    #[test]
    fn a_wav_clip_becomes_the_coded_mfcc_map_obfnet_data_computes() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("7_jackson_3.wav");
        let audio: Vec<f32> = (0..4000).map(|i| 0.3 * (i as f32 * 0.21).sin()).collect();
        let wav = obfnet_data::Wav::from_f32(8000, &audio);
        std::fs::write(&path, wav.to_bytes().expect("wav bytes")).expect("write");
        let front = front_end();
        let spec = SampleSpec {
            input_len: 20 * 64,
            image: Some((20, 64)),
            labels: None,
            limit: None,
            mfcc: Some(&front),
        };
        let got = read_samples(std::slice::from_ref(&path), InputFormat::Auto, &spec).expect("read");
        let mfcc = obfnet_data::Mfcc::new(MfccConfig::FSDD).expect("mfcc");
        let want = front.quantiser.encode(&mfcc.compute(&wav.to_f32()));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, want);
        assert_eq!(got[0].label, Some(7), "FSDD file names carry the digit");
        // saved and loaded, the front end is the same
        let saved = dir.path().join("mfcc.json");
        front.save(&saved).expect("save");
        assert_eq!(MfccFrontEnd::load(&saved).expect("load"), front);
        // a 16 kHz clip is refused, naming the file
        let path16 = dir.path().join("1_x_0.wav");
        std::fs::write(
            &path16,
            obfnet_data::Wav::from_f32(16_000, &audio)
                .to_bytes()
                .expect("wav"),
        )
        .expect("write");
        let err = read_samples(&[path16], InputFormat::Wav, &spec).expect_err("16 kHz");
        assert!(err.to_string().contains("1_x_0.wav"), "{err}");
        assert_eq!(err.exit_code(), 2);
        // audio without a front end is a usage error
        let no_front = SampleSpec { mfcc: None, ..spec };
        assert!(matches!(
            read_samples(&[path], InputFormat::Auto, &no_front),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn raw_files_split_into_samples_and_bad_sizes_are_refused() {
        let dir = tempfile::tempdir().expect("temp");
        let p = dir.path().join("two.bin");
        std::fs::write(&p, vec![7u8; 8]).expect("write");
        let spec = SampleSpec {
            input_len: 4,
            image: None,
            labels: None,
            limit: None,
            mfcc: None,
        };
        let s = read_samples(std::slice::from_ref(&p), InputFormat::Auto, &spec).expect("read");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].name, "two.bin#1");
        let spec3 = SampleSpec {
            input_len: 3,
            ..spec.clone()
        };
        assert_eq!(
            read_samples(std::slice::from_ref(&p), InputFormat::Raw, &spec3)
                .expect_err("size")
                .exit_code(),
            2
        );
        let limited = SampleSpec {
            limit: Some(1),
            ..spec
        };
        assert_eq!(
            read_samples(&[p], InputFormat::Raw, &limited)
                .expect("read")
                .len(),
            1
        );
    }
}
