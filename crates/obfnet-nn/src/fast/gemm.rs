//! The one matrix product of the fast path: row-major `f32` slices in, `faer`'s safe `matmul`
//! underneath (cache-blocked, with run-time AVX2 / AVX-512 dispatch), always sequential — the
//! fast path runs one net (or one slice of the frozen model's batch) per core itself.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// An operand: a row-major matrix in a slice, used as stored or transposed.
#[derive(Clone, Copy)]
pub(crate) struct Op<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a> Op<'a> {
    /// `data` holds a `rows × cols` row-major matrix, used as it is.
    pub(crate) fn n(data: &'a [f32], rows: usize, cols: usize) -> Op<'a> {
        Op {
            data: &data[..rows * cols],
            rows,
            cols,
            transposed: false,
        }
    }

    /// `data` holds a `rows × cols` row-major matrix, used transposed (`cols × rows`).
    pub(crate) fn t(data: &'a [f32], rows: usize, cols: usize) -> Op<'a> {
        Op {
            data: &data[..rows * cols],
            rows,
            cols,
            transposed: true,
        }
    }

    fn view(self) -> MatRef<'a, f32> {
        let m = MatRef::from_row_major_slice(self.data, self.rows, self.cols);
        if self.transposed { m.transpose() } else { m }
    }

    fn shape(self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }
}

/// `c = a · b` (or `c += a · b` with `accumulate`), `c` row-major `m × n` where `a` is `m × k`
/// and `b` is `k × n` after their transposition flags.
///
/// # Panics
/// If the shapes disagree (a bug in the caller: every shape here is fixed by the layer sizes).
pub(crate) fn gemm(c: &mut [f32], a: Op<'_>, b: Op<'_>, accumulate: bool) {
    let (m, k) = a.shape();
    let (k2, n) = b.shape();
    assert_eq!(k, k2, "inner dimensions of a product");
    let dst = MatMut::from_row_major_slice_mut(&mut c[..m * n], m, n);
    let beta = if accumulate { Accum::Add } else { Accum::Replace };
    matmul(dst, beta, a.view(), b.view(), 1.0f32, Par::Seq);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_the_naive_product_in_every_orientation() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect(); // k × m
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect(); // n × k
        let mut want = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                want[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        for (ao, bo) in [
            (Op::n(&a, m, k), Op::n(&b, k, n)),
            (Op::t(&at, k, m), Op::n(&b, k, n)),
            (Op::n(&a, m, k), Op::t(&bt, n, k)),
            (Op::t(&at, k, m), Op::t(&bt, n, k)),
        ] {
            let mut c = vec![1.0f32; m * n];
            gemm(&mut c, ao, bo, false);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-5, "{x} vs {y}");
            }
            gemm(&mut c, ao, bo, true);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - 2.0 * y).abs() < 1e-5, "{x} vs 2·{y}");
            }
        }
    }
}
