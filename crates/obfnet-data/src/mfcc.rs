//! MFCC features (for the spoken-digit case study), their `u8` quantisation, and the way back to
//! audio (inverse DCT → mel → linear magnitude → Griffin–Lim) so people can *listen* to what an
//! obfuscated or reconstructed feature map still says.
//!
//! # The features ([`MfccConfig::FSDD`], the defaults)
//!
//! | step | setting |
//! |---|---|
//! | input | mono, 8 kHz, samples scaled to `[-1, 1)` (`s / 32768`) |
//! | fixed length | zero-pad or truncate **at the end** to `frame_len + (frames − 1) · hop` = 5 296 samples (0.66 s; 95 % of FSDD clips are shorter) |
//! | pre-emphasis | none |
//! | frames | 256 samples (32 ms), hop 80 (10 ms), periodic Hann window, 64 frames |
//! | spectrum | 256-point FFT, power `|X|²` of bins 0..=128 |
//! | mel bands | 32 triangular filters (HTK mel scale, `2595 · log10(1 + f/700)`), 0–4000 Hz, peak 1 |
//! | log | natural log of `max(band energy, 1e-6)` |
//! | cepstrum | orthonormal DCT-II of the 32 log energies, coefficients 0..20 kept (c0 included) |
//!
//! A clip becomes a `20 × 64` map: **row = coefficient, column = frame (time)**, so it can be
//! drawn and handled like a 20 × 64 image.
//!
//! # The `u8` map ([`MfccQuantiser`])
//!
//! Each coefficient is standardised with the mean and standard deviation of that coefficient
//! over every frame of the training split, then coded as `u = clamp(round(128 + 32 · z), 0, 255)`:
//! 32 codes per standard deviation, covering `z ∈ [−4, +3.97]`. Inside that range the rounding
//! error is at most 1/64 σ (RMS σ/111); values outside are clipped (measured on FSDD:
//! [`MfccQuantiser::clipped_fraction`]). Decoding is `z = (u − 128) / 32`, `c = μ + σ z`, and
//! accepts fractional codes, so the real-valued output of an obfuscator decodes too.

//! # One implementation
//!
//! The features and the quantiser are computed by the `no_std` crate [`obfnet_dsp`] (re-exported
//! here), the same code a device runs, so devices and the datasets agree bit for bit
//! (`tests/mfcc_bit_exact.rs` pins them to the std implementation this module used to hold).
//! The way back to audio (Griffin–Lim) needs no device and stays here.

use crate::error::{Error, Result};

pub use obfnet_dsp::{CODES_PER_STD, MfccConfig, MfccQuantiser, ZERO_CODE};

impl From<obfnet_dsp::ConfigError> for Error {
    fn from(e: obfnet_dsp::ConfigError) -> Error {
        Error::Config {
            field: e.field,
            reason: e.reason,
        }
    }
}

use obfnet_dsp::{fft, stft};

/// An MFCC extractor with its window, filterbank and DCT precomputed ([`obfnet_dsp::Mfcc`]),
/// plus the way back to audio.
#[derive(Clone, Debug)]
pub struct Mfcc {
    inner: obfnet_dsp::Mfcc,
}

impl Mfcc {
    /// Builds the extractor.
    ///
    /// # Errors
    /// [`Error::Config`] if `cfg` does not validate.
    pub fn new(cfg: MfccConfig) -> Result<Mfcc> {
        Ok(Mfcc {
            inner: obfnet_dsp::Mfcc::new(cfg)?,
        })
    }

    /// The device-side extractor this wraps.
    pub fn dsp(&self) -> &obfnet_dsp::Mfcc {
        &self.inner
    }

    /// The configuration.
    pub fn config(&self) -> &MfccConfig {
        self.inner.config()
    }

    /// The triangular filters, `[n_mels][n_fft/2 + 1]`.
    pub fn filters(&self) -> &[Vec<f32>] {
        self.inner.filters()
    }

    /// `audio` padded with zeros or truncated at the end to [`MfccConfig::samples`].
    pub fn fit_length(&self, audio: &[f32]) -> Vec<f32> {
        self.inner.fit_length(audio)
    }

    /// Mel band energies (before the log) of each frame, `[frames][n_mels]`, after fixing the
    /// length.
    pub fn mel_energies(&self, audio: &[f32]) -> Vec<Vec<f32>> {
        self.inner.mel_energies(audio)
    }

    /// The MFCC map of one clip: `n_mfcc × frames` values, coefficient-major (row = coefficient,
    /// column = frame).
    pub fn compute(&self, audio: &[f32]) -> Vec<f32> {
        self.inner.compute(audio)
    }

    /// Log mel energies from an MFCC map (inverse DCT with the dropped coefficients set to 0),
    /// `[frames][n_mels]`.
    fn log_mel_from_mfcc(&self, mfcc: &[f32]) -> Vec<Vec<f32>> {
        let cfg = self.config();
        let (nc, nf, nm) = (cfg.n_mfcc, cfg.frames, cfg.n_mels);
        let dct = self.inner.dct();
        (0..nf)
            .map(|t| {
                (0..nm)
                    .map(|i| {
                        (0..nc)
                            .map(|k| dct[k][i] * mfcc.get(k * nf + t).copied().unwrap_or(0.0))
                            .sum()
                    })
                    .collect()
            })
            .collect()
    }

    /// Audio re-synthesised from an MFCC map (`n_mfcc × frames`, as [`Mfcc::compute`] returns):
    /// inverse DCT (dropped coefficients = 0) → `exp` → mel energies → linear power spectrum by
    /// non-negative least squares against the filterbank (100 multiplicative updates) → magnitude
    /// → Griffin–Lim phase recovery (`iterations` rounds from a seeded random phase) → overlap-add.
    /// The result has [`MfccConfig::samples`] samples and is scaled to a peak of 0.5 (loudness
    /// is not what is being judged; silence stays silence).
    ///
    /// # Errors
    /// [`Error::Config`] if `mfcc` does not hold `n_mfcc × frames` finite values.
    pub fn resynthesise(&self, mfcc: &[f32], iterations: usize, seed: u64) -> Result<Vec<f32>> {
        let cfg = self.config();
        let (nc, nf) = (cfg.n_mfcc, cfg.frames);
        if mfcc.len() != nc * nf || mfcc.iter().any(|v| !v.is_finite()) {
            return Err(Error::Config {
                field: "mfcc",
                reason: format!("expected {nc} × {nf} finite values, got {}", mfcc.len()),
            });
        }
        let bins = self.config().bins();
        let mags: Vec<Vec<f32>> = self
            .log_mel_from_mfcc(mfcc)
            .into_iter()
            .map(|logs| {
                // exp of values at the floor gives the floor back; cap to keep exp finite
                let mel: Vec<f32> = logs.iter().map(|&l| l.min(30.0).exp()).collect();
                self.mel_to_power(&mel).into_iter().map(f32::sqrt).collect()
            })
            .collect();
        let mut rng = seed ^ 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut phases: Vec<Vec<f32>> = (0..nf)
            .map(|_| (0..bins).map(|_| next() * std::f32::consts::TAU).collect())
            .collect();
        let mut audio = Vec::new();
        for it in 0..=iterations {
            let spec: Vec<(Vec<f32>, Vec<f32>)> = mags
                .iter()
                .zip(&phases)
                .map(|(m, p)| {
                    (
                        m.iter().zip(p).map(|(a, ph)| a * ph.cos()).collect(),
                        m.iter().zip(p).map(|(a, ph)| a * ph.sin()).collect(),
                    )
                })
                .collect();
            audio = istft(&spec, self.inner.window(), cfg);
            if it == iterations {
                break;
            }
            phases = stft(&audio, self.inner.window(), cfg)
                .into_iter()
                .map(|(re, im)| re.iter().zip(&im).map(|(r, i)| i.atan2(*r)).collect())
                .collect();
        }
        let peak = audio.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if peak > 1e-9 {
            audio.iter_mut().for_each(|v| *v *= 0.5 / peak);
        }
        Ok(audio)
    }

    /// Non-negative least squares `min ‖F p − mel‖², p ≥ 0` by multiplicative updates.
    fn mel_to_power(&self, mel: &[f32]) -> Vec<f32> {
        let bins = self.config().bins();
        let ft_mel: Vec<f32> = (0..bins)
            .map(|k| self.filters().iter().zip(mel).map(|(f, m)| f[k] * m).sum())
            .collect();
        let colsum: Vec<f32> = (0..bins)
            .map(|k| self.filters().iter().map(|f| f[k]).sum())
            .collect();
        let mut p: Vec<f32> = ft_mel
            .iter()
            .zip(&colsum)
            .map(|(a, c)| if *c > 0.0 { a / (c * c) } else { 0.0 })
            .collect();
        for _ in 0..100 {
            let fp: Vec<f32> = self
                .filters()
                .iter()
                .map(|f| f.iter().zip(&p).map(|(w, v)| w * v).sum())
                .collect();
            for k in 0..bins {
                let denom: f32 = self.filters().iter().zip(&fp).map(|(f, v)| f[k] * v).sum();
                if denom > 0.0 {
                    p[k] *= ft_mel[k] / denom;
                }
            }
        }
        p
    }
}

/// Least-squares inverse of [`obfnet_dsp::stft`]: inverse FFT of each frame (Hermitian-completed), windowed
/// overlap-add, divided by the summed squared window.
fn istft(spec: &[(Vec<f32>, Vec<f32>)], window: &[f32], cfg: &MfccConfig) -> Vec<f32> {
    let n = cfg.n_fft;
    let mut out = vec![0.0f32; cfg.samples()];
    let mut norm = vec![0.0f32; cfg.samples()];
    for (t, (sre, sim)) in spec.iter().enumerate() {
        let mut re = vec![0.0f32; n];
        let mut im = vec![0.0f32; n];
        for k in 0..sre.len().min(n / 2 + 1) {
            re[k] = sre[k];
            im[k] = sim[k];
            if k > 0 && k < n / 2 {
                re[n - k] = sre[k];
                im[n - k] = -sim[k];
            }
        }
        im[0] = 0.0;
        im[n / 2] = 0.0;
        fft(&mut re, &mut im, true);
        for (i, w) in window.iter().enumerate() {
            if let (Some(o), Some(z)) = (out.get_mut(t * cfg.hop + i), norm.get_mut(t * cfg.hop + i)) {
                *o += re[i] / n as f32 * w;
                *z += w * w;
            }
        }
    }
    for (o, z) in out.iter_mut().zip(&norm) {
        if *z > 1e-6 {
            *o /= z;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use obfnet_dsp::{hz_to_mel, mel_to_hz};

    fn sine(freq: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.5 * (std::f32::consts::TAU * freq * i as f32 / 8000.0).sin())
            .collect()
    }

    /// The frequency of the largest bin of the whole signal's spectrum (16384-point FFT).
    fn dominant_hz(x: &[f32]) -> f32 {
        let n = 16384;
        let mut re = vec![0.0; n];
        let mut im = vec![0.0; n];
        for (r, v) in re.iter_mut().zip(x) {
            *r = *v;
        }
        fft(&mut re, &mut im, false);
        let k = (1..n / 2)
            .max_by(|&a, &b| (re[a].hypot(im[a])).total_cmp(&re[b].hypot(im[b])))
            .unwrap_or(0);
        k as f32 * 8000.0 / n as f32
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
                let a = -2.0 * std::f64::consts::PI * (k * i) as f64 / n as f64;
                dr += f64::from(*v) * a.cos();
                di += f64::from(*v) * a.sin();
            }
            assert!((f64::from(re[k]) - dr).abs() < 1e-4 && (f64::from(im[k]) - di).abs() < 1e-4);
        }
        fft(&mut re, &mut im, true);
        for (a, b) in re.iter().zip(&x) {
            assert!((a / n as f32 - b).abs() < 1e-5);
        }
    }

    #[test]
    fn shape_and_validation() {
        let m = Mfcc::new(MfccConfig::FSDD).expect("valid");
        assert_eq!(MfccConfig::FSDD.samples(), 5296);
        assert_eq!(m.compute(&sine(440.0, 3000)).len(), 20 * 64);
        // a long clip is truncated: same map as its first 5296 samples
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
            assert!(matches!(Mfcc::new(bad), Err(Error::Config { .. })));
        }
    }

    #[test]
    fn a_tone_lights_the_mel_band_around_its_frequency() {
        let m = Mfcc::new(MfccConfig::FSDD).expect("valid");
        for f in [300.0f32, 1000.0, 2500.0] {
            let mel = m.mel_energies(&sine(f, 5296));
            let band = (0..32)
                .max_by(|&a, &b| mel[10][a].total_cmp(&mel[10][b]))
                .unwrap_or(0);
            // the band whose triangle peaks nearest the tone
            let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(4000.0));
            let centre = |b: usize| mel_to_hz(lo + (hi - lo) * (b + 1) as f32 / 33.0);
            let nearest = (0..32)
                .min_by(|&a, &b| (centre(a) - f).abs().total_cmp(&(centre(b) - f).abs()))
                .unwrap_or(0);
            assert!(
                band.abs_diff(nearest) <= 1,
                "{f} Hz: peak band {band}, nearest {nearest}"
            );
        }
    }

    #[test]
    fn resynthesis_keeps_a_tones_frequency() {
        let m = Mfcc::new(MfccConfig::FSDD).expect("valid");
        for f in [500.0f32, 1200.0] {
            let audio = m
                .resynthesise(&m.compute(&sine(f, 5296)), 32, 7)
                .expect("resynth");
            assert_eq!(audio.len(), 5296);
            let got = dominant_hz(&audio);
            // 20 cepstral coefficients smooth the spectrum to about one mel band (~100 Hz here)
            assert!((got - f).abs() < 120.0, "{f} Hz came back at {got} Hz");
        }
    }

    #[test]
    fn quantiser_round_trip_error_is_within_half_a_code() {
        let maps: Vec<f32> = (0..2 * 3 * 4).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let q = MfccQuantiser::fit(&maps, 3, 4).expect("fit");
        let codes = q.encode(&maps);
        // standardised: the codes of the fitted data average to the zero code
        let mean = codes.iter().map(|&c| f64::from(c)).sum::<f64>() / codes.len() as f64;
        assert!((mean - f64::from(ZERO_CODE)).abs() < 1.0, "mean code {mean}");
        let back = q.decode(&codes.iter().map(|&c| f32::from(c)).collect::<Vec<_>>());
        for (i, (a, b)) in maps.iter().zip(&back).enumerate() {
            let k = (i / 4) % 3;
            assert!(
                (a - b).abs() <= 0.5 * q.std[k] / CODES_PER_STD + 1e-5,
                "{a} vs {b}"
            );
        }
        assert_eq!(q.clipped_fraction(&maps), 0.0);
        assert!(MfccQuantiser::fit(&maps[..5], 3, 4).is_err());
    }
}
