//! Random sources for choosing nets, and the unbiased index draw.

use crate::{Error, Result};

/// A source of random bytes for choosing nets.
///
/// Implement it over a hardware random number generator on a microcontroller. With `std`,
/// [`OsRandom`] reads the operating system's cryptographic generator.
pub trait RandomSource {
    /// Fills `dest` with random bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Randomness`] when the source cannot deliver.
    fn fill_bytes(&mut self, dest: &mut [u8]) -> Result<()>;
}

/// The operating system's cryptographic random generator (`getrandom`).
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

#[cfg(feature = "std")]
impl RandomSource for OsRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) -> Result<()> {
        getrandom::fill(dest).map_err(|e| Error::Randomness {
            reason: alloc::format!("{e}"),
        })
    }
}

/// A deterministic generator (SplitMix64) for tests and reproducible experiments.
///
/// **Not for devices**: anyone who knows the seed knows every choice. See the module docs.
#[derive(Clone, Debug)]
pub struct SeededRandom(u64);

impl SeededRandom {
    /// Starts the sequence at `seed`.
    pub fn new(seed: u64) -> SeededRandom {
        SeededRandom(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl RandomSource for SeededRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) -> Result<()> {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or_default());
        }
        Ok(())
    }
}

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
