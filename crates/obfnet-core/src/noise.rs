//! Output noise: randomness a device adds to every output of its net before sending it
//! (bundle format 3, the `output-noise` record).
//!
//! A deterministic obfuscator leaks whatever of its input survives in its output, however
//! small, to a decoder that standardises its inputs; noise drawn on the device, which the server
//! cannot subtract, is what drowns that residue. The law is fixed here so that the device and the
//! privacy evaluation draw from the same one: each value gets `σ · (u₁ + … + u₁₂ − 6)` in pixel
//! units (the raw range mapped to `[0, 1]`; divided by the normalisation's `std` in the model's
//! input units), `uᵢ` uniform on `[0, 1)` from 24 bits of one 32-bit word of the random source.
//! That is the Irwin–Hall approximation of a Gaussian: mean 0, variance exactly σ², bounded at
//! ±6σ; no floating-point transcendental is needed, so `no_std` devices draw it as is.
//!
//! This is an empirical defence, not differential privacy: what it hides is what the attacks
//! fail to recover (`obfnet report`).

use crate::runtime::RandomSource;
use crate::{Error, Normalisation, Result};

/// Uniform words per noise value.
pub const WORDS_PER_VALUE: usize = 12;

/// Largest σ accepted (pixel units): beyond it nothing of the output survives.
pub const MAX_SIGMA: f32 = 16.0;

/// Noise a device adds to each output value (the manifest's `output-noise` record).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutputNoise {
    /// Standard deviation in pixel units (raw values × the normalisation's `scale`).
    pub sigma: f32,
}

impl OutputNoise {
    /// The manifest's name of the law.
    pub const KIND: &'static str = "irwin-hall12";

    /// Checks σ is finite and in `(0, MAX_SIGMA]`.
    ///
    /// # Errors
    /// [`Error::InvalidField`] otherwise.
    pub fn validate(&self) -> Result<()> {
        if !(self.sigma.is_finite() && self.sigma > 0.0 && self.sigma <= MAX_SIGMA) {
            return Err(Error::InvalidField {
                field: "output-noise sigma".into(),
                reason: "must be finite and in (0, 16]",
            });
        }
        Ok(())
    }

    /// One standardised draw (mean 0, variance 1) from [`WORDS_PER_VALUE`] uniform 32-bit
    /// words: `Σ (wᵢ >> 8) · 2⁻²⁴ − 6`, summed in `f64`.
    pub fn standard(words: &[u32; WORDS_PER_VALUE]) -> f32 {
        let sum: f64 = words
            .iter()
            .map(|&w| f64::from(w >> 8) * (1.0 / 16_777_216.0))
            .sum();
        (sum - 6.0) as f32
    }

    /// Adds one draw to every value of `out` (model-input units: σ / `std` each), reading
    /// `12 · out.len()` words from `rng` in chunks.
    ///
    /// # Errors
    /// [`Error::Randomness`] when the source cannot deliver.
    pub fn add_to(
        &self,
        out: &mut [f32],
        normalisation: &Normalisation,
        rng: &mut dyn RandomSource,
    ) -> Result<()> {
        const CHUNK: usize = 64;
        let scale = self.sigma / normalisation.std;
        let mut bytes = [0u8; CHUNK * WORDS_PER_VALUE * 4];
        for values in out.chunks_mut(CHUNK) {
            let need = values.len() * WORDS_PER_VALUE * 4;
            let buf = bytes.get_mut(..need).unwrap_or_default();
            rng.fill_bytes(buf)?;
            for (v, chunk) in values.iter_mut().zip(buf.chunks_exact(WORDS_PER_VALUE * 4)) {
                let mut words = [0u32; WORDS_PER_VALUE];
                for (w, b) in words.iter_mut().zip(chunk.chunks_exact(4)) {
                    *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                *v += scale * Self::standard(&words);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::runtime::SeededRandom;

    #[test]
    fn the_extremes_and_the_middle_of_the_law() {
        assert_eq!(OutputNoise::standard(&[0; 12]), -6.0);
        let top = OutputNoise::standard(&[u32::MAX; 12]);
        assert!(top < 6.0 && top > 5.9999, "{top}");
        // twelve halves: exactly 0
        assert_eq!(OutputNoise::standard(&[1 << 31; 12]), 0.0);
    }

    #[test]
    fn draws_have_the_asked_mean_and_deviation() {
        let n = Normalisation {
            scale: 1.0 / 255.0,
            mean: 0.1307,
            std: 0.3081,
        };
        let noise = OutputNoise { sigma: 0.25 };
        let mut out = alloc::vec![1.5f32; 100_000];
        noise.add_to(&mut out, &n, &mut SeededRandom::new(3)).unwrap();
        let m = out.iter().map(|&v| f64::from(v - 1.5)).sum::<f64>() / out.len() as f64;
        let sd =
            (out.iter().map(|&v| (f64::from(v - 1.5) - m).powi(2)).sum::<f64>() / out.len() as f64).sqrt();
        let want = 0.25 / 0.3081;
        // standard error of the sd ≈ want / √(2n) ≈ 0.2 %; 2 % is far beyond it
        assert!((sd / want - 1.0).abs() < 0.02, "sd {sd} vs {want}");
        assert!(m.abs() < 0.02 * want, "mean {m}");
        assert!(
            out.iter()
                .all(|&v| (f64::from(v - 1.5)).abs() <= 6.0 * want + 1e-4)
        );
    }

    #[test]
    fn bad_scales_are_refused() {
        for s in [0.0, -1.0, f32::NAN, f32::INFINITY, 17.0] {
            assert!(OutputNoise { sigma: s }.validate().is_err(), "{s}");
        }
        assert!(OutputNoise { sigma: 0.05 }.validate().is_ok());
    }
}
