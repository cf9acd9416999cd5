//! The Free Spoken Digit Dataset (FSDD) read from its raw WAV recordings into MFCC maps.
//!
//! FSDD (Jakobovski et al., <https://github.com/Jakobovski/free-spoken-digit-dataset>,
//! DOI 10.5281/zenodo.1342401) is licensed **CC BY-SA 4.0**: attribute it wherever results on it
//! are shown ([`FSDD_ATTRIBUTION`]). Files are `recordings/{digit}_{speaker}_{take}.wav`, mono
//! 16-bit 8 kHz. The official split: takes 0–4 of every speaker and digit are the test set,
//! the rest the training set.
//!
//! Each clip becomes an MFCC map ([`crate::mfcc`]); the maps are coded as `u8` with a
//! [`MfccQuantiser`] fitted on the training split only, so the result is an [`ImageDataset`] of
//! `n_mfcc × frames` "images" that the rest of obfnet handles like MNIST.

use std::path::{Path, PathBuf};

use crate::dataset::{ImageDataset, LabeledImages};
use crate::error::{Error, Result};
use crate::mfcc::{Mfcc, MfccConfig, MfccQuantiser};
use crate::wav::read_wav;

/// The attribution to show next to any result on FSDD.
pub const FSDD_ATTRIBUTION: &str = "Free Spoken Digit Dataset (FSDD) by Zohar Jackson and contributors, \
https://github.com/Jakobovski/free-spoken-digit-dataset \
(commit 26eb9aa; DOI 10.5281/zenodo.1342401), licensed CC BY-SA 4.0";

/// Takes `0..FSDD_TEST_TAKES` of each speaker and digit form the official test set.
pub const FSDD_TEST_TAKES: u32 = 5;

/// One recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsddClip {
    /// The spoken digit (the label).
    pub digit: u8,
    /// The speaker's name.
    pub speaker: String,
    /// The take index.
    pub take: u32,
    /// The WAV file.
    pub path: PathBuf,
}

impl FsddClip {
    /// Whether the clip is in the official test split.
    pub fn is_test(&self) -> bool {
        self.take < FSDD_TEST_TAKES
    }

    /// `{digit}_{speaker}_{take}`.
    pub fn id(&self) -> String {
        format!("{}_{}_{}", self.digit, self.speaker, self.take)
    }

    /// Parses a `{digit}_{speaker}_{take}.wav` path.
    ///
    /// # Errors
    /// [`Error::FsddName`] if the name does not follow the pattern.
    pub fn from_path(path: &Path) -> Result<FsddClip> {
        let bad = || Error::FsddName {
            path: path.to_path_buf(),
        };
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wav"))
            .ok_or_else(bad)?;
        let mut parts = stem.split('_');
        let (Some(d), Some(speaker), Some(t), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let digit: u8 = d.parse().ok().filter(|&d| d < 10).ok_or_else(bad)?;
        let take: u32 = t.parse().map_err(|_| bad())?;
        if speaker.is_empty() || !speaker.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        Ok(FsddClip {
            digit,
            speaker: speaker.to_owned(),
            take,
            path: path.to_path_buf(),
        })
    }
}

/// The recordings directory of an FSDD copy: `dir/recordings` if it exists, else `dir`.
pub fn recordings_dir(dir: &Path) -> PathBuf {
    let sub = dir.join("recordings");
    if sub.is_dir() { sub } else { dir.to_path_buf() }
}

/// Lists the `*.wav` recordings of an FSDD copy in the order the splits use: by take, then
/// speaker, then digit (so the first ten test clips are digits 0–9 of one speaker's take 0).
///
/// # Errors
/// [`Error::Missing`] if there is no such directory, [`Error::Io`], [`Error::FsddName`].
pub fn list_recordings(dir: &Path) -> Result<Vec<FsddClip>> {
    let rec = recordings_dir(dir);
    let entries = std::fs::read_dir(&rec).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::Missing {
            path: rec.clone(),
            hint: "run `obfnet fetch --dataset fsdd` to extract the recordings there".into(),
        },
        _ => Error::Io {
            path: rec.clone(),
            source,
        },
    })?;
    let mut clips = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Io {
                path: rec.clone(),
                source,
            })?
            .path();
        if path.extension().is_some_and(|e| e == "wav") {
            clips.push(FsddClip::from_path(&path)?);
        }
    }
    clips.sort_by(|a, b| (a.take, &a.speaker, a.digit).cmp(&(b.take, &b.speaker, b.digit)));
    Ok(clips)
}

/// The speaker of every clip of the training and of the test split, in the splits' sample order
/// (the order [`load_fsdd`] uses), without reading the audio.
///
/// # Errors
/// As [`list_recordings`].
pub fn split_speakers(dir: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let (test, train): (Vec<FsddClip>, Vec<FsddClip>) =
        list_recordings(dir)?.into_iter().partition(FsddClip::is_test);
    let names = |c: Vec<FsddClip>| c.into_iter().map(|c| c.speaker).collect();
    Ok((names(train), names(test)))
}

/// FSDD as MFCC maps, with everything needed to go back to audio.
#[derive(Clone, Debug)]
pub struct FsddData {
    /// The `u8`-coded maps, rows = coefficients, columns = frames.
    pub dataset: ImageDataset,
    /// The feature settings.
    pub config: MfccConfig,
    /// The map between MFCC values and codes (fitted on the training split).
    pub quantiser: MfccQuantiser,
    /// The clips of the training split, in sample order.
    pub train_clips: Vec<FsddClip>,
    /// The clips of the test split, in sample order.
    pub test_clips: Vec<FsddClip>,
    /// Share of training MFCC values clipped by the `u8` code.
    pub train_clipped: f64,
    /// Share of test MFCC values clipped by the `u8` code.
    pub test_clipped: f64,
    /// Clips longer than the fixed length (truncated), over both splits.
    pub truncated_clips: usize,
}

/// Reads every recording of an FSDD copy in `dir` and computes the coded MFCC maps.
///
/// # Errors
/// Listing or WAV errors naming the file, [`Error::SampleRate`] for a clip not at
/// `cfg.sample_rate`, [`Error::FsddIncomplete`] if either split is empty, [`Error::Config`].
pub fn load_fsdd(dir: &Path, cfg: &MfccConfig) -> Result<FsddData> {
    let mfcc = Mfcc::new(cfg.clone())?;
    let clips = list_recordings(dir)?;
    let (test_clips, train_clips): (Vec<FsddClip>, Vec<FsddClip>) =
        clips.into_iter().partition(FsddClip::is_test);
    if train_clips.is_empty() || test_clips.is_empty() {
        return Err(Error::FsddIncomplete {
            dir: recordings_dir(dir),
            found: train_clips.len() + test_clips.len(),
            expected: 2,
            hint: "need clips of takes 0-4 (test) and 5+ (train); run `obfnet fetch --dataset fsdd`".into(),
        });
    }
    let mut truncated_clips = 0;
    let mut features = |clips: &[FsddClip]| -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(clips.len() * cfg.n_mfcc * cfg.frames);
        for c in clips {
            let wav = read_wav(&c.path)?;
            if wav.sample_rate != cfg.sample_rate {
                return Err(Error::SampleRate {
                    path: c.path.clone(),
                    found: wav.sample_rate,
                    expected: cfg.sample_rate,
                });
            }
            truncated_clips += usize::from(wav.samples.len() > cfg.samples());
            out.extend(mfcc.compute(&wav.to_f32()));
        }
        Ok(out)
    };
    let train_maps = features(&train_clips)?;
    let test_maps = features(&test_clips)?;
    let quantiser = MfccQuantiser::fit(&train_maps, cfg.n_mfcc, cfg.frames)?;
    let d = cfg.n_mfcc * cfg.frames;
    let code = |maps: &[f32]| -> Vec<u8> { maps.chunks(d).flat_map(|m| quantiser.encode(m)).collect() };
    let split = |maps: &[f32], clips: &[FsddClip]| LabeledImages {
        rows: cfg.n_mfcc,
        cols: cfg.frames,
        pixels: code(maps),
        labels: clips.iter().map(|c| c.digit).collect(),
    };
    let dataset = ImageDataset {
        name: "fsdd".into(),
        train: split(&train_maps, &train_clips),
        test: split(&test_maps, &test_clips),
        classes: 10,
    };
    Ok(FsddData {
        train_clipped: quantiser.clipped_fraction(&train_maps),
        test_clipped: quantiser.clipped_fraction(&test_maps),
        dataset,
        config: cfg.clone(),
        quantiser,
        train_clips,
        test_clips,
        truncated_clips,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wav::Wav;

    #[test]
    fn names_parse_and_reject() {
        let c = FsddClip::from_path(Path::new("x/7_george_12.wav")).expect("parse");
        assert_eq!(
            (c.digit, c.speaker.as_str(), c.take, c.is_test()),
            (7, "george", 12, false)
        );
        assert!(
            FsddClip::from_path(Path::new("0_theo_4.wav"))
                .expect("parse")
                .is_test()
        );
        for bad in [
            "10_george_1.wav",
            "a_b_c.wav",
            "1_george.wav",
            "1_george_2_3.wav",
            "1__2.wav",
            "1_g_2.mp3",
        ] {
            assert!(
                matches!(FsddClip::from_path(Path::new(bad)), Err(Error::FsddName { .. })),
                "{bad}"
            );
        }
    }

    /// A tiny synthetic FSDD: digit d is a tone at 300 + 200·d Hz, two speakers, takes 0..7.
    #[test]
    fn loads_a_synthetic_copy_with_the_official_split() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rec = dir.path().join("recordings");
        std::fs::create_dir(&rec).expect("mkdir");
        for d in 0..3u8 {
            for s in ["alice", "bob"] {
                for t in 0..7 {
                    let f = 300.0 + 200.0 * f32::from(d);
                    let n = 2000 + 400 * t;
                    let x: Vec<f32> = (0..n)
                        .map(|i| 0.3 * (std::f32::consts::TAU * f * i as f32 / 8000.0).sin())
                        .collect();
                    let bytes = Wav::from_f32(8000, &x).to_bytes().expect("wav");
                    std::fs::write(rec.join(format!("{d}_{s}_{t}.wav")), bytes).expect("write");
                }
            }
        }
        std::fs::write(rec.join("README.txt"), b"ignored").expect("write");
        let data = load_fsdd(dir.path(), &MfccConfig::FSDD).expect("load");
        assert_eq!(data.dataset.test.len(), 3 * 2 * 5);
        assert_eq!(data.dataset.train.len(), 3 * 2 * 2);
        assert_eq!((data.dataset.test.rows, data.dataset.test.cols), (20, 64));
        // sample order: take, speaker, digit
        assert_eq!(data.dataset.test.labels[..4], [0, 1, 2, 0]);
        assert_eq!(data.test_clips[3].speaker, "bob");
        assert_eq!(data.truncated_clips, 0);
        assert_eq!(data.quantiser.mean.len(), 20);

        // a clip at another sample rate is a typed error naming it
        let bytes = Wav::from_f32(16_000, &[0.0; 100]).to_bytes().expect("wav");
        std::fs::write(rec.join("1_carol_9.wav"), bytes).expect("write");
        let err = load_fsdd(dir.path(), &MfccConfig::FSDD).expect_err("16 kHz");
        assert!(matches!(&err, Error::SampleRate { found: 16_000, .. }), "{err:?}");
        assert!(err.to_string().contains("1_carol_9.wav"), "{err}");
    }

    #[test]
    fn missing_dir_says_fetch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load_fsdd(&dir.path().join("nope"), &MfccConfig::FSDD).expect_err("missing");
        assert!(err.to_string().contains("obfnet fetch --dataset fsdd"), "{err}");
    }
}
