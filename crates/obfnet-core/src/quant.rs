//! Symmetric int8 quantisation helpers shared by the bundle writer and the runtime.

use alloc::vec::Vec;

/// Largest magnitude of a symmetric int8 value (`-127..=127`; `-128` is never produced, so
/// negation is always exact).
pub(crate) const Q_MAX: f32 = 127.0;

/// `round(x)` half away from zero, without `std` (`f32::round` needs `std` or `libm`).
pub(crate) fn round(x: f32) -> f32 {
    // |x| < 2^23 for every value rounded here (they are clamped to 255 or 127 first), so the
    // truncating cast is exact.
    let t = x as i32 as f32;
    let frac = x - t;
    if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

/// Quantises a row-major matrix with `rows` rows (one per output channel), symmetric per row:
/// `scale[r] = max|w[r, ..]| / 127` (1 for an all-zero row), `q = round(w / scale[r])`.
///
/// Returns the quantised values and the scales. `weight.len()` must be a multiple of `rows`
/// (the bundle guarantees it); a remainder is quantised with the last row's scale.
pub(crate) fn quantize_rows(weight: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let cols = weight.len().checked_div(rows).unwrap_or(0);
    let mut scales = Vec::with_capacity(rows);
    let mut q = Vec::with_capacity(weight.len());
    for r in 0..rows {
        let row = weight.get(r * cols..(r + 1) * cols).unwrap_or_default();
        let max = row.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        let scale = if max > 0.0 { max / Q_MAX } else { 1.0 };
        scales.push(scale);
        q.extend(row.iter().map(|&x| round((x / scale).clamp(-Q_MAX, Q_MAX)) as i8));
    }
    (q, scales)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn rounding_is_half_away_from_zero() {
        for (x, r) in [
            (0.0, 0.0),
            (0.49, 0.0),
            (0.5, 1.0),
            (1.5, 2.0),
            (-0.5, -1.0),
            (-1.49, -1.0),
            (126.6, 127.0),
            (-127.0, -127.0),
        ] {
            assert_eq!(round(x), r, "round({x})");
        }
    }

    #[test]
    fn rows_are_quantised_with_their_own_scale() {
        let w = vec![1.0, -0.5, 0.25, 0.0, 0.0, 0.0, 100.0, 50.0, -100.0];
        let (q, s) = quantize_rows(&w, 3);
        assert_eq!(s, vec![1.0 / 127.0, 1.0, 100.0 / 127.0]);
        assert_eq!(q, vec![127, -64, 32, 0, 0, 0, 127, 64, -127]);
        for (r, row) in w.chunks(3).enumerate() {
            for (c, &x) in row.iter().enumerate() {
                let back = f32::from(q[r * 3 + c]) * s[r];
                assert!((back - x).abs() <= s[r] / 2.0 + 1e-6, "{x} -> {back}");
            }
        }
    }
}
