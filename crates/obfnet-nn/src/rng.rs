/// A small, fast, seedable PRNG (SplitMix64). Used for initialisation and data order so that a
/// net's weights depend only on its own seed, whatever K it is trained with.
#[derive(Clone, Debug)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
