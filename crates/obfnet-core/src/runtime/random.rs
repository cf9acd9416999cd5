//! Random sources for choosing nets, and the unbiased index draw.

use rand_core::TryRngCore;

use crate::{Error, Result};

/// A source of random bytes for choosing nets.
///
/// Every `rand_core` generator is one (a blanket implementation over
/// [`rand_core::TryRngCore`], which every [`rand_core::RngCore`] implements): plug a
/// microcontroller's hardware random number generator in by implementing `RngCore` (or
/// `TryRngCore` when it can fail) for it. With `std`, [`OsRandom`] reads the operating system's
/// cryptographic generator.
pub trait RandomSource {
    /// Fills `dest` with random bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Randomness`] when the source cannot deliver.
    fn fill_bytes(&mut self, dest: &mut [u8]) -> Result<()>;
}

impl<R: TryRngCore + ?Sized> RandomSource for R {
    fn fill_bytes(&mut self, dest: &mut [u8]) -> Result<()> {
        self.try_fill_bytes(dest).map_err(|e| Error::Randomness {
            reason: alloc::format!("{e}"),
        })
    }
}

/// The operating system's cryptographic random generator (`getrandom`).
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

#[cfg(feature = "std")]
impl TryRngCore for OsRandom {
    type Error = Error;

    fn try_next_u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<()> {
        getrandom::fill(dest).map_err(|e| Error::Randomness {
            reason: alloc::format!("{e}"),
        })
    }
}

#[cfg(feature = "std")]
impl rand_core::TryCryptoRng for OsRandom {}

/// A deterministic generator for tests and reproducible experiments: the workspace's one
/// SplitMix64 ([`crate::rng::SplitMix64`]).
///
/// **Not for devices**: anyone who knows the seed knows every choice. See the module docs.
pub type SeededRandom = crate::rng::SplitMix64;

/// A uniformly distributed index in `0..k` (unbiased: rejection sampling on 32-bit draws).
///
/// # Errors
///
/// [`Error::NoSuchNet`] for `k == 0` or `k > u32::MAX`; the source's own errors.
///
/// # Examples
///
/// ```
/// use obfnet_core::runtime::{SeededRandom, uniform_index};
/// let mut rng = SeededRandom::new(7);
/// let i = uniform_index(&mut rng, 10)?;
/// assert!(i < 10);
/// # Ok::<(), obfnet_core::Error>(())
/// ```
pub fn uniform_index(rng: &mut dyn RandomSource, k: usize) -> Result<usize> {
    let Ok(k32) = u32::try_from(k) else {
        return Err(Error::NoSuchNet { index: k, k });
    };
    if k32 == 0 {
        return Err(Error::NoSuchNet { index: 0, k });
    }
    // Accept draws below the largest multiple of k that fits in 2^32.
    let zone = u64::from(u32::MAX) + 1 - (u64::from(u32::MAX) + 1) % u64::from(k32);
    loop {
        let mut b = [0u8; 4];
        rng.fill_bytes(&mut b)?;
        let x = u64::from(u32::from_le_bytes(b));
        if x < zone {
            return Ok((x % u64::from(k32)) as usize);
        }
    }
}

/// How the net for a sample is chosen.
pub enum NetChoice<'a> {
    /// Uniformly at random from this source (use a cryptographic one on devices).
    Random(&'a mut dyn RandomSource),
    /// Always this net (tests, debugging, attack experiments).
    Fixed(usize),
}

impl core::fmt::Debug for NetChoice<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetChoice::Random(_) => f.write_str("Random(..)"),
            NetChoice::Fixed(i) => f.debug_tuple("Fixed").field(i).finish(),
        }
    }
}
