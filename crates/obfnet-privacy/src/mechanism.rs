//! What each input-protection scheme guarantees, and the local noise mechanisms used as
//! baselines (Laplace and Gaussian noise added to the image on the device).
//!
//! # Where the noise comes from
//! The noise of a DP baseline is drawn from a [`NoiseRng`]: ChaCha20 seeded from the operating
//! system ([`NoiseRng::from_os`], via `getrandom`) — unpredictable, as the guarantee needs. A
//! fixed seed ([`NoiseRng::seeded`]) stays possible to reproduce a report, but then anyone who
//! knows the seed knows the noise, and the scheme reports its guarantee as
//! [`Guarantee::VoidDp`] for that run.
//!
//! # Floating-point caveat (Mironov 2012)
//! The ε reported is the bound for *exact, real-valued* Laplace / Gaussian noise. The samplers
//! here are floating point (inverse CDF for Laplace, Box–Muller for Gaussian, from 53-bit
//! uniforms), and the set of values such a sampler can output depends on the input it is added
//! to; Mironov ("On significance of the least significant bits for differential privacy",
//! CCS 2012) shows this can reveal the input exactly for some outputs. No snapping or discrete
//! mechanism is applied, so the stated ε is an idealised bound, and the guarantee text says so.
//! For these baselines on MNIST the bound is in the hundreds anyway (no practical protection);
//! the attacks measure what the noise does in practice.

use obfnet_nn::SplitMix64;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The kind of privacy statement a scheme (or a number in a report) carries.
///
/// A results table never mixes these without saying which is which.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Guarantee {
    /// A formal local differential-privacy guarantee per image: for any two images, the
    /// output distributions differ by at most `e^epsilon` (plus `delta`).
    FormalDp {
        /// Privacy-loss bound ε, per image sent.
        epsilon: f64,
        /// Failure probability δ (0 for pure ε-DP).
        delta: f64,
        /// The sensitivity argument the bound rests on.
        basis: String,
    },
    /// The formal DP bound that *would* hold, void for this run: the noise came from a seeded
    /// generator (to reproduce a report), so whoever knows the seed knows the noise.
    VoidDp {
        /// The ε that fresh OS randomness would give.
        epsilon: f64,
        /// The δ with it.
        delta: f64,
        /// The sensitivity argument.
        basis: String,
        /// Why the guarantee does not hold for this run.
        reason: String,
    },
    /// A computational guarantee resting on a cryptographic assumption.
    Cryptographic {
        /// The assumption.
        assumption: String,
    },
    /// No formal guarantee: privacy is only what the attacks here measure.
    Empirical,
}

impl Guarantee {
    /// A short label for tables: `formal (ε = …, δ = …)`, `cryptographic`, or `empirical only`.
    pub fn label(&self) -> String {
        match self {
            Guarantee::FormalDp { epsilon, delta, .. } if *delta == 0.0 => {
                format!("formal ε-DP, ε = {epsilon:.3e} per image ({FLOAT_CAVEAT_SHORT})")
            }
            Guarantee::FormalDp { epsilon, delta, .. } => {
                format!(
                    "formal (ε, δ)-DP, ε = {epsilon:.3e}, δ = {delta:.0e} per image ({FLOAT_CAVEAT_SHORT})"
                )
            }
            Guarantee::VoidDp { epsilon, delta, .. } => {
                format!(
                    "VOID for this run (seeded noise): ε = {epsilon:.3e}, δ = {delta:.0e} would hold with OS randomness"
                )
            }
            Guarantee::Cryptographic { .. } => "cryptographic".into(),
            Guarantee::Empirical => "none (empirical only)".into(),
        }
    }
}

/// The floating-point caveat, short, for labels next to a reported ε.
pub const FLOAT_CAVEAT_SHORT: &str = "ideal real-valued noise; float sampler, cf. Mironov 2012";

/// The floating-point caveat in full, appended to a formal guarantee's basis.
pub const FLOAT_CAVEAT: &str = "ε is the bound for exact real-valued noise; the sampler is floating point (inverse CDF / Box–Muller over 53-bit uniforms, no snapping), which can leak more (Mironov 2012)";

/// A source of uniform 64-bit words for the samplers.
pub trait Bits64 {
    /// The next 64 random bits.
    fn next_bits(&mut self) -> u64;
}

impl Bits64 for SplitMix64 {
    fn next_bits(&mut self) -> u64 {
        self.next_u64()
    }
}

/// The generator DP noise is drawn from: ChaCha20, a CSPRNG, keyed from the OS or (for
/// reproducing a report, guarantee void) from a seed.
#[derive(Clone, Debug)]
pub struct NoiseRng {
    rng: ChaCha20Rng,
    seeded: bool,
}

impl NoiseRng {
    /// Keyed with 256 bits from the operating system (`getrandom`).
    ///
    /// # Errors
    /// The OS has no randomness to give.
    pub fn from_os() -> Result<NoiseRng> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| Error::config("noise", format!("no OS randomness for the DP noise: {e}")))?;
        Ok(NoiseRng {
            rng: ChaCha20Rng::from_seed(key),
            seeded: false,
        })
    }

    /// Keyed from `seed`: reproducible, and so predictable — a run using it has no DP guarantee.
    pub fn seeded(seed: u64) -> NoiseRng {
        NoiseRng {
            rng: ChaCha20Rng::seed_from_u64(seed),
            seeded: true,
        }
    }

    /// Whether this generator came from a seed (guarantee void).
    pub fn is_seeded(&self) -> bool {
        self.seeded
    }
}

impl Bits64 for NoiseRng {
    fn next_bits(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// Noise a device adds to the image in pixel space (`[0, 1]`) before sending it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Noise {
    /// i.i.d. Laplace noise of scale `b` per pixel.
    Laplace {
        /// Scale `b` (pixel units; standard deviation `b·√2`).
        scale: f64,
    },
    /// i.i.d. Gaussian noise of standard deviation `sigma` per pixel.
    Gaussian {
        /// Standard deviation (pixel units).
        sigma: f64,
    },
    /// The device-side output noise of bundle format 3 ([`obfnet_core::OutputNoise`], drawn
    /// with its own code): `σ · (u₁ + … + u₁₂ − 6)`, mean 0, deviation σ, bounded at ±6σ. An
    /// empirical defence after an obfuscator, not a DP mechanism.
    IrwinHall12 {
        /// Standard deviation (pixel units).
        sigma: f64,
    },
}

impl Noise {
    /// Checks the scale is finite and positive.
    pub fn validate(&self) -> Result<()> {
        let s = match *self {
            Noise::Laplace { scale } => scale,
            Noise::Gaussian { sigma } | Noise::IrwinHall12 { sigma } => sigma,
        };
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::config(
                "noise",
                format!("scale {s} must be finite and > 0"),
            ));
        }
        Ok(())
    }

    /// One noise sample (pixel units). DP noise should come from a [`NoiseRng`].
    pub fn sample(&self, rng: &mut impl Bits64) -> f64 {
        match *self {
            Noise::Laplace { scale } => {
                let u = open_uniform(rng) - 0.5;
                -scale * u.signum() * (1.0 - 2.0 * u.abs()).ln()
            }
            Noise::Gaussian { sigma } => sigma * standard_normal(rng),
            Noise::IrwinHall12 { sigma } => {
                let mut words = [0u32; obfnet_core::noise::WORDS_PER_VALUE];
                for pair in words.chunks_exact_mut(2) {
                    let b = rng.next_bits();
                    pair[0] = b as u32;
                    pair[1] = (b >> 32) as u32;
                }
                sigma * f64::from(obfnet_core::OutputNoise::standard(&words))
            }
        }
    }

    /// Standard deviation per pixel.
    pub fn std_dev(&self) -> f64 {
        match *self {
            Noise::Laplace { scale } => scale * std::f64::consts::SQRT_2,
            Noise::Gaussian { sigma } | Noise::IrwinHall12 { sigma } => sigma,
        }
    }

    /// The formal guarantee for images of `d` pixels in `[0, 1]` (neighbouring = any two images):
    /// Laplace: L1 sensitivity `d`, so ε = d / b (pure DP); Gaussian: L2 sensitivity `√d`, ε
    /// from the analytic Gaussian mechanism (Balle & Wang 2018, Thm. 8) at the given δ;
    /// Irwin–Hall output noise: none ([`Guarantee::Empirical`]).
    pub fn guarantee(&self, d: usize, delta: f64) -> Result<Guarantee> {
        self.validate()?;
        let df = d as f64;
        Ok(match *self {
            Noise::Laplace { scale } => Guarantee::FormalDp {
                epsilon: df / scale,
                delta: 0.0,
                basis: format!(
                    "pixels clipped to [0, 1]; L1 sensitivity of the whole {d}-pixel image = {d}; ε = {d}/b; {FLOAT_CAVEAT}"
                ),
            },
            Noise::Gaussian { sigma } => Guarantee::FormalDp {
                epsilon: analytic_gaussian_epsilon(df.sqrt(), sigma, delta)?,
                delta,
                basis: format!(
                    "pixels clipped to [0, 1]; L2 sensitivity √{d} = {:.1}; analytic Gaussian mechanism (Balle & Wang 2018); {FLOAT_CAVEAT}",
                    df.sqrt()
                ),
            },
            Noise::IrwinHall12 { .. } => Guarantee::Empirical,
        })
    }

    /// [`Noise::guarantee`] for noise drawn with `seed` (`None`: from the OS): a seeded run's
    /// guarantee is [`Guarantee::VoidDp`].
    pub fn guarantee_for(&self, d: usize, delta: f64, seed: Option<u64>) -> Result<Guarantee> {
        let g = self.guarantee(d, delta)?;
        Ok(match (g, seed) {
            (
                Guarantee::FormalDp {
                    epsilon,
                    delta,
                    basis,
                },
                Some(seed),
            ) => Guarantee::VoidDp {
                epsilon,
                delta,
                basis,
                reason: format!(
                    "noise drawn from a generator seeded with {seed} (to reproduce a report): predictable to anyone who knows the seed"
                ),
            },
            (g, _) => g,
        })
    }
}

/// Uniform in the open interval (0, 1), 53 bits.
fn open_uniform(rng: &mut impl Bits64) -> f64 {
    ((rng.next_bits() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// A standard normal sample (Box–Muller).
pub(crate) fn standard_normal(rng: &mut impl Bits64) -> f64 {
    let (u1, u2) = (open_uniform(rng), open_uniform(rng));
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `ln erfc(z)` for `z ≥ 0` (Numerical Recipes' Chebyshev fit, relative error of erfc below
/// 1.2e-7 everywhere; computed in log space so large `z` does not underflow).
fn ln_erfc_nonneg(z: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t.ln() + poly
}

/// `ln Φ(x)`, Φ the standard normal CDF.
fn ln_phi(x: f64) -> f64 {
    let z = -x / std::f64::consts::SQRT_2;
    if z >= 0.0 {
        (0.5f64).ln() + ln_erfc_nonneg(z)
    } else {
        // erfc(z) = 2 − erfc(−z) for negative z
        (0.5 * (2.0 - ln_erfc_nonneg(-z).exp())).ln()
    }
}

/// δ(ε) of the Gaussian mechanism with L2 sensitivity `delta2` and noise `sigma`
/// (Balle & Wang 2018, Theorem 8): `Φ(Δ/2σ − εσ/Δ) − e^ε Φ(−Δ/2σ − εσ/Δ)`.
pub fn gaussian_delta(delta2: f64, sigma: f64, epsilon: f64) -> f64 {
    let a = delta2 / (2.0 * sigma);
    let b = epsilon * sigma / delta2;
    ln_phi(a - b).exp() - (epsilon + ln_phi(-a - b)).exp()
}

/// The smallest ε for which the Gaussian mechanism (sensitivity `delta2`, noise `sigma`) is
/// (ε, δ)-DP, by bisection on [`gaussian_delta`] (which decreases in ε) to a relative 1e-9.
///
/// # Errors
/// Non-positive or non-finite inputs, δ outside (0, 1).
pub fn analytic_gaussian_epsilon(delta2: f64, sigma: f64, delta: f64) -> Result<f64> {
    if !(delta2.is_finite() && delta2 > 0.0 && sigma.is_finite() && sigma > 0.0) {
        return Err(Error::config("sigma", "sensitivity and σ must be finite and > 0"));
    }
    if !(delta > 0.0 && delta < 1.0) {
        return Err(Error::config("delta", format!("{delta} is not in (0, 1)")));
    }
    if gaussian_delta(delta2, sigma, 0.0) <= delta {
        return Ok(0.0);
    }
    let mut hi = 1.0;
    while gaussian_delta(delta2, sigma, hi) > delta {
        hi *= 2.0;
        if hi > 1e12 {
            return Err(Error::config("sigma", "ε does not converge"));
        }
    }
    let mut lo = 0.0;
    while hi - lo > 1e-9 * hi {
        let mid = 0.5 * (lo + hi);
        if gaussian_delta(delta2, sigma, mid) > delta {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_phi_matches_known_values() {
        // Φ(0) = 0.5, Φ(1.96) ≈ 0.9750021, Φ(−5) ≈ 2.8665157e-7
        assert!((ln_phi(0.0).exp() - 0.5).abs() < 1e-7);
        assert!((ln_phi(1.96).exp() - 0.975_002_1).abs() < 1e-6);
        assert!((ln_phi(-5.0).exp() / 2.866_515_7e-7 - 1.0).abs() < 1e-5);
        // far tail stays finite: ln Φ(−40) ≈ −804.61
        assert!((ln_phi(-40.0) + 804.608).abs() < 0.01, "{}", ln_phi(-40.0));
    }

    fn draws(rng: &mut NoiseRng, n: usize) -> Vec<u64> {
        (0..n).map(|_| rng.next_bits()).collect()
    }

    #[test]
    fn os_keyed_noise_differs_per_generator_and_seeded_noise_repeats() {
        let (mut a, mut b) = (NoiseRng::from_os().expect("os"), NoiseRng::from_os().expect("os"));
        assert!(!a.is_seeded());
        // Two OS-keyed generators agree on 8 words with probability 2^-512.
        assert_ne!(draws(&mut a, 8), draws(&mut b, 8));
        let (mut s1, mut s2) = (NoiseRng::seeded(42), NoiseRng::seeded(42));
        assert!(s1.is_seeded());
        assert_eq!(draws(&mut s1, 8), draws(&mut s2, 8));
        assert_ne!(
            draws(&mut NoiseRng::seeded(42), 8),
            draws(&mut NoiseRng::seeded(43), 8)
        );
    }

    #[test]
    fn chacha_noise_has_the_stated_moments() {
        // 100 000 Laplace draws from the CSPRNG: E|X| = b, sd = b√2 (5 standard errors).
        let mut rng = NoiseRng::from_os().expect("os");
        let b = 0.3;
        let n = 100_000;
        let xs: Vec<f64> = (0..n)
            .map(|_| Noise::Laplace { scale: b }.sample(&mut rng))
            .collect();
        let mean_abs = xs.iter().map(|x| x.abs()).sum::<f64>() / n as f64;
        assert!(
            (mean_abs - b).abs() < 5.0 * b / (n as f64).sqrt(),
            "E|X| {mean_abs}"
        );
        let g: Vec<f64> = (0..n)
            .map(|_| Noise::Gaussian { sigma: 0.5 }.sample(&mut rng))
            .collect();
        let sd = (g.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
        assert!((sd - 0.5).abs() < 5.0 * 0.5 / (2.0 * n as f64).sqrt(), "sd {sd}");
    }

    #[test]
    fn a_seeded_run_voids_the_guarantee_and_says_so() {
        let noise = Noise::Laplace { scale: 1.0 };
        let fresh = noise.guarantee_for(784, 0.0, None).expect("g");
        assert!(matches!(fresh, Guarantee::FormalDp { .. }));
        assert!(fresh.label().contains("Mironov"), "{}", fresh.label());
        match &fresh {
            Guarantee::FormalDp { basis, .. } => assert!(basis.contains("Mironov 2012"), "{basis}"),
            other => panic!("{other:?}"),
        }
        let seeded = noise.guarantee_for(784, 0.0, Some(7)).expect("g");
        match &seeded {
            Guarantee::VoidDp { epsilon, reason, .. } => {
                assert!((epsilon - 784.0).abs() < 1e-9);
                assert!(reason.contains("seeded with 7"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(seeded.label().starts_with("VOID"), "{}", seeded.label());
        // The report's JSON carries the void marker.
        let json = serde_json::to_string(&seeded).expect("json");
        assert!(json.contains("\"kind\":\"void_dp\""), "{json}");
    }
}
