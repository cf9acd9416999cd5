//! The workspace's one seedable generator: SplitMix64, with the `rand_core` traits.
//!
//! Training uses it for initialisation and data order (a net's weights depend only on its own
//! seed, whatever K it is trained with), tests and experiments use it for reproducible choices
//! ([`crate::runtime::SeededRandom`] is this type). It is **not** a cryptographic generator:
//! anyone who knows the seed knows every output. Devices choose nets with
//! [`crate::runtime::OsRandom`] or a hardware generator (any `rand_core` generator is a
//! [`crate::runtime::RandomSource`]).

use alloc::vec::Vec;

use rand_core::{RngCore, SeedableRng};

/// SplitMix64 (Steele, Lea and Flood 2014): one 64-bit state, one output per step.
///
/// # Examples
///
/// ```
/// use obfnet_core::rng::SplitMix64;
/// use rand_core::RngCore;
/// let mut a = SplitMix64::new(7);
/// let x = a.next_u64();
/// let mut b = SplitMix64::new(7);
/// assert_eq!(RngCore::next_u64(&mut b), x);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 24 bits of precision.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[-bound, bound)`.
    pub fn uniform(&mut self, bound: f32) -> f32 {
        (self.next_f32() * 2.0 - 1.0) * bound
    }

    /// Uniform in `0..n` (n > 0), without modulo bias worth worrying about for n < 2^32.
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// A fresh Fisher–Yates permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i + 1);
            p.swap(i, j);
        }
        p
    }
}

impl RngCore for SplitMix64 {
    /// The low 32 bits of the next 64-bit output.
    fn next_u32(&mut self) -> u32 {
        SplitMix64::next_u64(self) as u32
    }

    fn next_u64(&mut self) -> u64 {
        SplitMix64::next_u64(self)
    }

    /// Little-endian bytes of successive 64-bit outputs; a tail shorter than 8 bytes takes the
    /// first bytes of one more output (the same bytes `rand_core`'s `fill_bytes_via_next` gives).
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = SplitMix64::next_u64(self).to_le_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or_default());
        }
    }
}

impl SeedableRng for SplitMix64 {
    /// The initial state, little-endian.
    type Seed = [u8; 8];

    fn from_seed(seed: [u8; 8]) -> Self {
        SplitMix64(u64::from_le_bytes(seed))
    }

    /// The same generator as [`SplitMix64::new`] (the state is the seed; no extra mixing).
    fn seed_from_u64(state: u64) -> Self {
        SplitMix64(state)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // Reference outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(SplitMix64::seed_from_u64(5), SplitMix64::new(5));
        assert_eq!(SplitMix64::from_seed(5u64.to_le_bytes()), SplitMix64::new(5));
    }

    #[test]
    fn fill_bytes_matches_rand_core_reference() {
        for len in [0usize, 1, 3, 4, 5, 8, 13, 16, 21] {
            let (mut a, mut b) = (SplitMix64::new(9), SplitMix64::new(9));
            let mut x = alloc::vec![0u8; len];
            let mut y = alloc::vec![0u8; len];
            a.fill_bytes(&mut x);
            rand_core::impls::fill_bytes_via_next(&mut b, &mut y);
            assert_eq!(x, y, "len {len}");
            assert_eq!(a, b, "len {len}");
        }
    }

    #[test]
    fn permutation_is_a_permutation_and_seeded() {
        let p = SplitMix64::new(7).permutation(1000);
        let mut s = p.clone();
        s.sort_unstable();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
        assert_eq!(p, SplitMix64::new(7).permutation(1000));
        assert_ne!(p, SplitMix64::new(8).permutation(1000));
    }

    #[test]
    fn uniform_stays_in_bounds_and_is_centred() {
        let mut r = SplitMix64::new(1);
        let xs: Vec<f32> = (0..100_000).map(|_| r.uniform(0.5)).collect();
        assert!(xs.iter().all(|x| (-0.5..0.5).contains(x)));
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        // Standard error of the mean is 0.5/sqrt(3)/sqrt(1e5) ≈ 9e-4; 5 sigma.
        assert!(mean.abs() < 5e-3, "mean {mean}");
    }
}
