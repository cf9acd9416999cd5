//! obfnet's audio front end for devices (`no_std` + `alloc`): MFCC features and their `u8`
//! quantiser, so a device turns a spoken-digit clip into the coded MFCC map the obfuscators and
//! the server model take, and the raw audio never leaves it.
//!
//! This is the **one** implementation: `obfnet-data` (std) calls it to build the FSDD dataset,
//! so what a device computes is bit-for-bit what the server model was trained on. The
//! transcendental functions come from [`libm`] (the `ln`, `log10`, `powf`, `sin`, `cos` of
//! std on Linux come from glibc); `obfnet-data`'s tests check that the results are
//! bit-for-bit those of the std-math version this replaced, on every FSDD clip and on generated
//! signals.
//!
//! # The features ([`MfccConfig::FSDD`], the defaults)
//!
//! | step | setting |
//! |---|---|
//! | input | mono, 8 kHz, samples scaled to `[-1, 1)` (`s / 32768`) |
//! | fixed length | zero-pad or truncate **at the end** to `frame_len + (frames − 1) · hop` = 5 296 samples (0.66 s) |
//! | pre-emphasis | none |
//! | frames | 256 samples (32 ms), hop 80 (10 ms), periodic Hann window, 64 frames |
//! | spectrum | 256-point FFT, power `|X|²` of bins 0..=128 |
//! | mel bands | 32 triangular filters (HTK mel scale, `2595 · log10(1 + f/700)`), 0–4000 Hz, peak 1 |
//! | log | natural log of `max(band energy, 1e-6)` |
//! | cepstrum | orthonormal DCT-II of the 32 log energies, coefficients 0..20 kept (c0 included) |
//!
//! A clip becomes a `20 × 64` map: **row = coefficient, column = frame (time)**.
//!
//! # The `u8` map ([`MfccQuantiser`])
//!
//! Each coefficient is standardised with the mean and standard deviation of that coefficient
//! over every frame of the training split, then coded as `u = clamp(round(128 + 32 · z), 0, 255)`.
//! Decoding is `z = (u − 128) / 32`, `c = μ + σ z`.
//!
//! # Example
//! ```
//! use obfnet_dsp::{Mfcc, MfccConfig};
//! let mfcc = Mfcc::new(MfccConfig::FSDD)?;
//! let tone: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.3).sin() * 0.5).collect();
//! assert_eq!(mfcc.compute(&tone).len(), 20 * 64);
//! # Ok::<(), obfnet_dsp::ConfigError>(())
//! ```
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::f64::consts::PI;

/// A configuration value out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// Why it is rejected.
    pub reason: String,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "bad MFCC setting {}: {}", self.field, self.reason)
    }
}

impl core::error::Error for ConfigError {}

/// How MFCCs are computed (see the crate docs for the defaults and why).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct MfccConfig {
    /// Expected sample rate in Hz (no resampling is done). Default 8000.
    pub sample_rate: u32,
    /// Samples per analysis frame (Hann window length). Default 256 (32 ms).
    pub frame_len: usize,
    /// Samples between frame starts. Default 80 (10 ms).
    pub hop: usize,
    /// FFT size (a power of two, at least `frame_len`). Default 256.
    pub n_fft: usize,
    /// Triangular mel filters. Default 32.
    pub n_mels: usize,
    /// Cepstral coefficients kept (c0 first). Default 20.
    pub n_mfcc: usize,
    /// Lowest filter edge in Hz. Default 0.
    pub f_min: f32,
    /// Highest filter edge in Hz (at most the Nyquist frequency). Default 4000.
    pub f_max: f32,
    /// Band energies below this are raised to it before the log. Default 1e-6.
    pub log_floor: f32,
    /// Frames per clip (the clip is padded / truncated to fit exactly). Default 64.
    pub frames: usize,
}

impl MfccConfig {
    /// The FSDD features (the defaults).
    pub const FSDD: MfccConfig = MfccConfig {
        sample_rate: 8000,
        frame_len: 256,
        hop: 80,
        n_fft: 256,
        n_mels: 32,
        n_mfcc: 20,
        f_min: 0.0,
        f_max: 4000.0,
        log_floor: 1e-6,
        frames: 64,
    };

    /// Samples a clip is padded or truncated to: `frame_len + (frames − 1) · hop`.
    pub fn samples(&self) -> usize {
        self.frame_len + (self.frames.saturating_sub(1)) * self.hop
    }

    /// FFT bins kept: `n_fft / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Values in one map: `n_mfcc × frames`.
    pub fn map_len(&self) -> usize {
        self.n_mfcc * self.frames
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, reason: String| Err(ConfigError { field, reason });
        if self.sample_rate == 0 {
            return bad("sample_rate", "must be positive".into());
        }
        if !self.n_fft.is_power_of_two() || !(4..=65_536).contains(&self.n_fft) {
            return bad(
                "n_fft",
                format!("{} is not a power of two in 4..=65536", self.n_fft),
            );
        }
        if self.frame_len == 0 || self.frame_len > self.n_fft {
            return bad("frame_len", format!("{} is not in 1..=n_fft", self.frame_len));
        }
        if self.hop == 0 || self.hop > self.frame_len {
            return bad("hop", format!("{} is not in 1..=frame_len", self.hop));
        }
        if self.n_mels < 2 || self.n_mels > self.bins() {
            return bad("n_mels", format!("{} is not in 2..={}", self.n_mels, self.bins()));
        }
        if self.n_mfcc == 0 || self.n_mfcc > self.n_mels {
            return bad("n_mfcc", format!("{} is not in 1..=n_mels", self.n_mfcc));
        }
        let nyquist = self.sample_rate as f32 / 2.0;
        if !(self.f_min >= 0.0 && self.f_min < self.f_max && self.f_max <= nyquist) {
            return bad(
                "f_max",
                format!(
                    "need 0 <= f_min ({}) < f_max ({}) <= {nyquist}",
                    self.f_min, self.f_max
                ),
            );
        }
        if !(self.log_floor.is_finite() && self.log_floor > 0.0) {
            return bad("log_floor", format!("{} must be positive", self.log_floor));
        }
        if self.frames == 0 || self.frames > 100_000 {
            return bad("frames", format!("{} is not in 1..=100000", self.frames));
        }
        Ok(())
    }
}

impl Default for MfccConfig {
    fn default() -> Self {
        MfccConfig::FSDD
    }
}

/// In-place radix-2 complex FFT (`inverse` computes the unscaled inverse). `re.len()` must be a
/// power of two equal to `im.len()`; other lengths leave the buffers untouched.
pub fn fft(re: &mut [f32], im: &mut [f32], inverse: bool) {
    let n = re.len();
    if n < 2 || im.len() != n || !n.is_power_of_two() {
        return;
    }
    let bits = n.trailing_zeros();
    for i in 0..n {
        let j = i.reverse_bits() >> (usize::BITS - bits);
        if j > i {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let ang = sign * 2.0 * PI / len as f64;
        for k in 0..len / 2 {
            let a = ang * k as f64;
            let (wr, wi) = (libm::cos(a) as f32, libm::sin(a) as f32);
            for start in (0..n).step_by(len) {
                let (a, b) = (start + k, start + k + len / 2);
                let (xr, xi) = (re[b] * wr - im[b] * wi, re[b] * wi + im[b] * wr);
                re[b] = re[a] - xr;
                im[b] = im[a] - xi;
                re[a] += xr;
                im[a] += xi;
            }
        }
        len <<= 1;
    }
}

/// HTK mel scale: `2595 · log10(1 + f/700)` (with [`DefaultMath`]).
pub fn hz_to_mel(f: f32) -> f32 {
    hz_to_mel_with::<DefaultMath>(f)
}

/// Inverse of [`hz_to_mel`].
pub fn mel_to_hz(m: f32) -> f32 {
    mel_to_hz_with::<DefaultMath>(m)
}

fn hz_to_mel_with<M: Math>(f: f32) -> f32 {
    2595.0 * M::log10(1.0 + f / 700.0)
}

fn mel_to_hz_with<M: Math>(m: f32) -> f32 {
    700.0 * (M::powf(10.0, m / 2595.0) - 1.0)
}

/// Frames `audio` (windowed, zero-padded to `n_fft`) and returns each frame's spectrum bins
/// `0..=n_fft/2` as (re, im). Frames start at `t · hop` for `t < cfg.frames`; samples past the
/// end of `audio` count as zeros.
pub fn stft(audio: &[f32], window: &[f32], cfg: &MfccConfig) -> Vec<(Vec<f32>, Vec<f32>)> {
    let bins = cfg.bins();
    (0..cfg.frames)
        .map(|t| {
            let mut re = vec![0.0f32; cfg.n_fft];
            let mut im = vec![0.0f32; cfg.n_fft];
            for (i, w) in window.iter().enumerate() {
                if let Some(r) = re.get_mut(i) {
                    *r = audio.get(t * cfg.hop + i).copied().unwrap_or(0.0) * w;
                }
            }
            fft(&mut re, &mut im, false);
            re.truncate(bins);
            im.truncate(bins);
            (re, im)
        })
        .collect()
}

/// The `f32` math functions whose last bit differs between libm and the platform's library:
/// the natural log (applied to data) and `log10` / `powf` (the mel filter edges). The `f64`
/// `sin`, `cos` and `sqrt` behind the window, FFT twiddles and DCT give the same bits either way
/// (checked by `obfnet-data`'s tests) and always come from libm.
///
/// Measured: libm's `logf` and glibc's differ in the last bit on 0.9 % of the inputs at or
/// above the log floor (all of them checked), and the FSDD filterbank differs in a few values.
/// So a build with the `std` feature takes the platform's functions ([`StdMath`]), which is
/// what the FSDD features have always used, and a `no_std` build takes [`LibmMath`]. What that
/// changes in the FSDD `u8` codes is measured by `obfnet-data`'s test
/// `libm_math_changes_few_fsdd_codes`.
pub trait Math {
    /// `ln(x)`.
    fn ln(x: f32) -> f32;
    /// `log10(x)`.
    fn log10(x: f32) -> f32;
    /// `x^y`.
    fn powf(x: f32, y: f32) -> f32;
}

/// [`Math`] from [`libm`] (no_std).
#[derive(Clone, Copy, Debug, Default)]
pub struct LibmMath;

impl Math for LibmMath {
    fn ln(x: f32) -> f32 {
        libm::logf(x)
    }
    fn log10(x: f32) -> f32 {
        libm::log10f(x)
    }
    fn powf(x: f32, y: f32) -> f32 {
        libm::powf(x, y)
    }
}

/// [`Math`] from the platform (glibc on Linux), through std.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, Default)]
pub struct StdMath;

#[cfg(feature = "std")]
impl Math for StdMath {
    fn ln(x: f32) -> f32 {
        x.ln()
    }
    fn log10(x: f32) -> f32 {
        x.log10()
    }
    fn powf(x: f32, y: f32) -> f32 {
        x.powf(y)
    }
}

/// The [`Math`] of [`Mfcc::new`]: [`StdMath`] with the `std` feature, [`LibmMath`] without.
#[cfg(feature = "std")]
pub type DefaultMath = StdMath;
/// The [`Math`] of [`Mfcc::new`]: [`StdMath`] with the `std` feature, [`LibmMath`] without.
#[cfg(not(feature = "std"))]
pub type DefaultMath = LibmMath;

/// An MFCC extractor with its window, filterbank and DCT precomputed.
#[derive(Clone, Debug)]
pub struct Mfcc {
    cfg: MfccConfig,
    window: Vec<f32>,
    /// `[n_mels][bins]`
    filters: Vec<Vec<f32>>,
    /// `[n_mels][n_mels]` orthonormal DCT-II, row k = coefficient k.
    dct: Vec<Vec<f32>>,
    /// The natural log applied to band energies.
    ln: fn(f32) -> f32,
}

impl Mfcc {
    /// Builds the extractor with [`DefaultMath`].
    ///
    /// # Errors
    /// [`ConfigError`] if `cfg` does not validate.
    pub fn new(cfg: MfccConfig) -> Result<Mfcc, ConfigError> {
        Mfcc::new_with::<DefaultMath>(cfg)
    }

    /// Builds the extractor with the math functions `M` (see [`Math`]).
    ///
    /// # Errors
    /// [`ConfigError`] if `cfg` does not validate.
    pub fn new_with<M: Math>(cfg: MfccConfig) -> Result<Mfcc, ConfigError> {
        cfg.validate()?;
        // periodic Hann (as librosa / torch use for STFTs)
        let window = (0..cfg.frame_len)
            .map(|i| {
                let x = 2.0 * PI * i as f64 / cfg.frame_len as f64;
                (0.5 - 0.5 * libm::cos(x)) as f32
            })
            .collect();
        let bins = cfg.bins();
        let (lo, hi) = (hz_to_mel_with::<M>(cfg.f_min), hz_to_mel_with::<M>(cfg.f_max));
        let edges: Vec<f32> = (0..cfg.n_mels + 2)
            .map(|i| mel_to_hz_with::<M>(lo + (hi - lo) * i as f32 / (cfg.n_mels + 1) as f32))
            .collect();
        let bin_hz = cfg.sample_rate as f32 / cfg.n_fft as f32;
        let filters = edges
            .windows(3)
            .map(|e| {
                let (l, c, r) = (e[0], e[1], e[2]);
                (0..bins)
                    .map(|k| {
                        let f = k as f32 * bin_hz;
                        let up = (f - l) / (c - l);
                        let down = (r - f) / (r - c);
                        up.min(down).max(0.0)
                    })
                    .collect()
            })
            .collect();
        let n = cfg.n_mels;
        let dct = (0..n)
            .map(|k| {
                let scale = if k == 0 {
                    libm::sqrt(1.0 / n as f64)
                } else {
                    libm::sqrt(2.0 / n as f64)
                };
                (0..n)
                    .map(|i| {
                        let a = PI * k as f64 * (2 * i + 1) as f64 / (2 * n) as f64;
                        (scale * libm::cos(a)) as f32
                    })
                    .collect()
            })
            .collect();
        Ok(Mfcc {
            cfg,
            window,
            filters,
            dct,
            ln: M::ln,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MfccConfig {
        &self.cfg
    }

    /// The analysis window (periodic Hann, `frame_len` values).
    pub fn window(&self) -> &[f32] {
        &self.window
    }

    /// The triangular filters, `[n_mels][n_fft/2 + 1]`.
    pub fn filters(&self) -> &[Vec<f32>] {
        &self.filters
    }

    /// The orthonormal DCT-II matrix, `[n_mels][n_mels]`, row k = coefficient k.
    pub fn dct(&self) -> &[Vec<f32>] {
        &self.dct
    }

    /// `audio` padded with zeros or truncated at the end to [`MfccConfig::samples`].
    pub fn fit_length(&self, audio: &[f32]) -> Vec<f32> {
        let mut a: Vec<f32> = audio.iter().take(self.cfg.samples()).copied().collect();
        a.resize(self.cfg.samples(), 0.0);
        a
    }

    /// Mel band energies (before the log) of each frame, `[frames][n_mels]`, after fixing the
    /// length.
    pub fn mel_energies(&self, audio: &[f32]) -> Vec<Vec<f32>> {
        stft(&self.fit_length(audio), &self.window, &self.cfg)
            .into_iter()
            .map(|(re, im)| {
                let p: Vec<f32> = re.iter().zip(&im).map(|(r, i)| r * r + i * i).collect();
                self.filters
                    .iter()
                    .map(|f| f.iter().zip(&p).map(|(w, e)| w * e).sum())
                    .collect()
            })
            .collect()
    }

    /// The MFCC map of one clip: `n_mfcc × frames` values, coefficient-major (row = coefficient,
    /// column = frame).
    pub fn compute(&self, audio: &[f32]) -> Vec<f32> {
        let mel = self.mel_energies(audio);
        let (nc, nf) = (self.cfg.n_mfcc, self.cfg.frames);
        let mut out = vec![0.0f32; nc * nf];
        for (t, bands) in mel.iter().enumerate() {
            let logs: Vec<f32> = bands
                .iter()
                .map(|&e| (self.ln)(e.max(self.cfg.log_floor)))
                .collect();
            for (k, row) in self.dct.iter().take(nc).enumerate() {
                if let Some(o) = out.get_mut(k * nf + t) {
                    *o = row.iter().zip(&logs).map(|(d, l)| d * l).sum();
                }
            }
        }
        out
    }

    /// 16-bit PCM samples scaled to `[-1, 1)` (`s / 32768`), as the features expect.
    pub fn pcm_to_f32(samples: &[i16]) -> Vec<f32> {
        samples.iter().map(|&s| f32::from(s) / 32768.0).collect()
    }
}

/// The per-coefficient affine map between MFCC values and `u8` codes (see the crate docs).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MfccQuantiser {
    /// Mean of each coefficient over the training frames.
    pub mean: Vec<f32>,
    /// Standard deviation of each coefficient over the training frames (at least 1e-6).
    pub std: Vec<f32>,
    /// Frames per map (the map is `mean.len() × frames`).
    pub frames: usize,
}

/// Codes per standard deviation.
pub const CODES_PER_STD: f32 = 32.0;
/// The code of the mean.
pub const ZERO_CODE: f32 = 128.0;

impl MfccQuantiser {
    /// Fits the map to MFCC maps (`n_mfcc × frames` each, back to back).
    ///
    /// # Errors
    /// [`ConfigError`] if `maps` is empty or not a whole number of maps.
    pub fn fit(maps: &[f32], n_mfcc: usize, frames: usize) -> Result<MfccQuantiser, ConfigError> {
        let d = n_mfcc * frames;
        if d == 0 || maps.is_empty() || !maps.len().is_multiple_of(d) {
            return Err(ConfigError {
                field: "maps",
                reason: format!(
                    "{} values are not a whole number of {n_mfcc} × {frames} maps",
                    maps.len()
                ),
            });
        }
        // values per coefficient: maps × frames
        let count = maps.len() as f64 / n_mfcc as f64;
        let mut sum = vec![0.0f64; n_mfcc];
        let mut sq = vec![0.0f64; n_mfcc];
        for map in maps.chunks(d) {
            for ((row, s), q) in map.chunks(frames).zip(&mut sum).zip(&mut sq) {
                for &v in row {
                    *s += f64::from(v);
                    *q += f64::from(v) * f64::from(v);
                }
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| (libm::sqrt((s / count - m * m).max(0.0)) as f32).max(1e-6))
            .collect();
        Ok(MfccQuantiser {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
            frames,
        })
    }

    /// Checks that the quantiser fits maps of `cfg` (`n_mfcc` coefficients, `frames` frames)
    /// and that every standard deviation is positive and finite.
    ///
    /// # Errors
    /// [`ConfigError`] naming the mismatch.
    pub fn validate_for(&self, cfg: &MfccConfig) -> Result<(), ConfigError> {
        if self.mean.len() != cfg.n_mfcc || self.std.len() != cfg.n_mfcc || self.frames != cfg.frames {
            return Err(ConfigError {
                field: "quantiser",
                reason: format!(
                    "fits {} × {} maps ({} stds), the features are {} × {}",
                    self.mean.len(),
                    self.frames,
                    self.std.len(),
                    cfg.n_mfcc,
                    cfg.frames
                ),
            });
        }
        if self.mean.iter().any(|m| !m.is_finite()) || self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(ConfigError {
                field: "quantiser",
                reason: "means must be finite and standard deviations positive".into(),
            });
        }
        Ok(())
    }

    /// The (unclamped) code of value `v` at position `i` of a map.
    fn code(&self, i: usize, v: f32) -> f32 {
        let k = (i / self.frames.max(1)) % self.mean.len().max(1);
        match (self.mean.get(k), self.std.get(k)) {
            (Some(m), Some(s)) => ZERO_CODE + CODES_PER_STD * (v - m) / s,
            _ => f32::NAN,
        }
    }

    /// Codes of one or more maps back to back (coefficient `k` at row `k` of each map).
    pub fn encode(&self, map: &[f32]) -> Vec<u8> {
        map.iter()
            .enumerate()
            .map(|(i, &v)| {
                let u = self.code(i, v);
                // clamped into 0..=255 first, so the cast is exact
                if u.is_finite() {
                    libm::roundf(u).clamp(0.0, 255.0) as u8
                } else {
                    0
                }
            })
            .collect()
    }

    /// MFCC values of (possibly fractional) codes of one or more maps.
    pub fn decode(&self, codes: &[f32]) -> Vec<f32> {
        codes
            .iter()
            .enumerate()
            .map(|(i, &u)| {
                let k = (i / self.frames.max(1)) % self.mean.len().max(1);
                match (self.mean.get(k), self.std.get(k)) {
                    (Some(m), Some(s)) => m + s * (u - ZERO_CODE) / CODES_PER_STD,
                    _ => f32::NAN,
                }
            })
            .collect()
    }

    /// Share of values of `maps` that fall outside the codable range `[−4, +3.97] σ`.
    pub fn clipped_fraction(&self, maps: &[f32]) -> f64 {
        if maps.is_empty() {
            return 0.0;
        }
        let clipped = maps
            .iter()
            .enumerate()
            .filter(|&(i, &v)| !(-0.5..255.5).contains(&self.code(i, v)))
            .count();
        clipped as f64 / maps.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.5 * libm::sinf(core::f32::consts::TAU * freq * i as f32 / 8000.0))
            .collect()
    }

    #[test]
    fn fft_matches_a_direct_dft() {
        let n = 16;
        let x: Vec<f32> = (0..n).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let (mut re, mut im) = (x.clone(), vec![0.0; n]);
        fft(&mut re, &mut im, false);
        for k in 0..n {
            let (mut dr, mut di) = (0.0f64, 0.0f64);
            for (i, v) in x.iter().enumerate() {
                let a = -2.0 * PI * (k * i) as f64 / n as f64;
                dr += f64::from(*v) * libm::cos(a);
                di += f64::from(*v) * libm::sin(a);
            }
            assert!(libm::fabs(f64::from(re[k]) - dr) < 1e-4 && libm::fabs(f64::from(im[k]) - di) < 1e-4);
        }
        fft(&mut re, &mut im, true);
        for (a, b) in re.iter().zip(&x) {
            assert!(libm::fabsf(a / n as f32 - b) < 1e-5);
        }
    }

    #[test]
    fn shape_truncation_and_validation() {
        let m = Mfcc::new(MfccConfig::FSDD).expect("valid");
        assert_eq!(MfccConfig::FSDD.samples(), 5296);
        assert_eq!(m.compute(&sine(440.0, 3000)).len(), 20 * 64);
        let long = sine(440.0, 9000);
        assert_eq!(m.compute(&long), m.compute(&long[..5296]));
        for bad in [
            MfccConfig {
                n_fft: 200,
                ..MfccConfig::FSDD
            },
            MfccConfig {
                hop: 0,
                ..MfccConfig::FSDD
            },
            MfccConfig {
                n_mfcc: 33,
                ..MfccConfig::FSDD
            },
            MfccConfig {
                f_max: 5000.0,
                ..MfccConfig::FSDD
            },
            MfccConfig {
                log_floor: 0.0,
                ..MfccConfig::FSDD
            },
        ] {
            assert!(Mfcc::new(bad).is_err());
        }
    }

    #[test]
    fn quantiser_round_trip_and_validation() {
        let maps: Vec<f32> = (0..2 * 3 * 4).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let q = MfccQuantiser::fit(&maps, 3, 4).expect("fit");
        let codes = q.encode(&maps);
        let back = q.decode(&codes.iter().map(|&c| f32::from(c)).collect::<Vec<_>>());
        for (i, (a, b)) in maps.iter().zip(&back).enumerate() {
            let k = (i / 4) % 3;
            assert!(libm::fabsf(a - b) <= 0.5 * q.std[k] / CODES_PER_STD + 1e-5);
        }
        assert_eq!(q.clipped_fraction(&maps), 0.0);
        assert!(MfccQuantiser::fit(&maps[..5], 3, 4).is_err());
        let cfg = MfccConfig {
            n_mfcc: 3,
            frames: 4,
            n_mels: 4,
            ..MfccConfig::FSDD
        };
        assert!(q.validate_for(&cfg).is_ok());
        assert!(q.validate_for(&MfccConfig::FSDD).is_err());
        // a quantiser with missing rows codes as 0 instead of panicking
        let broken = MfccQuantiser {
            mean: vec![],
            std: vec![],
            frames: 4,
        };
        assert_eq!(broken.encode(&[1.0, 2.0]), vec![0, 0]);
    }
}
