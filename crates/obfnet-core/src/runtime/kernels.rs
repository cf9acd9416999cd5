//! The portable (safe, reference) kernels: dense and direct-convolution layers in `f32` and int8.

use super::Geometry;
use super::simd::{self, Packed};

/// Rows longer than this are summed in `i32` chunks of this length, then in `i64`.
const I32_CHUNK: usize = 16_384;

/// Quantises `x` to `u8` codes (0..=255, held in `i16`) with `x ≈ a * u + c`,
/// `c = min(0, min x)`, over the full range.
pub(super) fn quantize_activations(x: &[f32], codes: &mut [i16]) -> (f32, f32) {
    let (lo, hi) = x
        .iter()
        .fold((0.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        codes.fill(0);
        return (1.0, lo);
    }
    let a = span / 255.0;
    let inv = 255.0 / span;
    for (dst, &v) in codes.iter_mut().zip(x) {
        // v - lo >= 0, so adding 0.5 and truncating rounds half up (one instruction fewer
        // than a general rounding function in this hot loop).
        *dst = ((v - lo) * inv + 0.5).clamp(0.0, 255.0) as i16;
    }
    (a, lo)
}

/// Lanes of independent accumulators in the dot products (lets LLVM vectorise the sums).
const LANES: usize = 16;

pub(super) fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let wc = w.chunks_exact(LANES);
    let xc = x.chunks_exact(LANES);
    let (wr, xr) = (wc.remainder(), xc.remainder());
    for (wv, xv) in wc.zip(xc) {
        for ((a, &wi), &xi) in acc.iter_mut().zip(wv).zip(xv) {
            *a += wi * xi;
        }
    }
    let mut tail = 0.0f32;
    for (&wi, &xi) in wr.iter().zip(xr) {
        tail += wi * xi;
    }
    acc.iter().sum::<f32>() + tail
}

pub(super) fn dot_i8(w: &[i8], u: &[i16]) -> i64 {
    let mut total = 0i64;
    for (wc, uc) in w.chunks(I32_CHUNK).zip(u.chunks(I32_CHUNK)) {
        let mut acc = [0i32; LANES];
        let wl = wc.chunks_exact(LANES);
        let ul = uc.chunks_exact(LANES);
        let (wr, ur) = (wl.remainder(), ul.remainder());
        for (wv, uv) in wl.zip(ul) {
            for ((a, &wi), &ui) in acc.iter_mut().zip(wv).zip(uv) {
                *a += i32::from(wi) * i32::from(ui);
            }
        }
        let mut tail = 0i32;
        for (&wi, &ui) in wr.iter().zip(ur) {
            tail += i32::from(wi) * i32::from(ui);
        }
        total += i64::from(acc.iter().sum::<i32>() + tail);
    }
    total
}

/// `y[o] = b[o] + Σ_i w[o, i] x[i]`.
pub(super) fn dense_f32(w: &[f32], bias: &[f32], inputs: usize, x: &[f32], y: &mut [f32]) {
    for ((yo, row), &b) in y.iter_mut().zip(w.chunks_exact(inputs.max(1))).zip(bias) {
        *yo = b + dot_f32(row, x);
    }
}

/// int8 dense layer; see the module docs for the arithmetic.
#[allow(clippy::too_many_arguments)]
pub(super) fn dense_i8(
    w: &[i8],
    scale: &[f32],
    bias: &[f32],
    row_sums: &[i64],
    inputs: usize,
    u: &[i16],
    (a, c): (f32, f32),
    y: &mut [f32],
) {
    let rows = w.chunks_exact(inputs.max(1)).zip(scale).zip(bias).zip(row_sums);
    for (yo, (((row, &s), &b), &sum_q)) in y.iter_mut().zip(rows) {
        *yo = dequantize(dot_i8(row, u), s, b, sum_q, (a, c));
    }
}

/// One int8 dense output from its exact integer dot product `Σ q_w u`: the single place the
/// `f32` arithmetic happens, shared by the portable and the SIMD paths (so they agree bit for
/// bit).
#[inline(always)]
pub(super) fn dequantize(dot: i64, s: f32, b: f32, sum_q: i64, (a, c): (f32, f32)) -> f32 {
    b + s * (a * dot as f32 + c * sum_q as f32)
}

/// int8 dense layer from precomputed exact dot products (the SIMD path).
pub(super) fn dense_i8_from_dots(
    dots: &[i32],
    scale: &[f32],
    bias: &[f32],
    row_sums: &[i64],
    affine: (f32, f32),
    y: &mut [f32],
) {
    let rows = dots.iter().zip(scale).zip(bias).zip(row_sums);
    for (yo, (((&d, &s), &b), &sum_q)) in y.iter_mut().zip(rows) {
        *yo = dequantize(i64::from(d), s, b, sum_q, affine);
    }
}

/// The output columns `ox` whose tap `kx` lands inside the input row (`0 <= ox*stride + kx - pad
/// < in_w`), as a half-open range, so the inner loops need no per-tap bounds test.
fn valid_cols(kx: usize, stride: usize, pad: usize, in_w: usize, out_w: usize) -> (usize, usize) {
    // ox*stride + kx >= pad  <=>  ox >= ceil((pad - kx) / stride)
    let lo = pad.saturating_sub(kx).div_ceil(stride.max(1));
    // ox*stride + kx - pad <= in_w - 1  <=>  ox <= (in_w - 1 + pad - kx) / stride
    let hi = match (in_w + pad).checked_sub(kx + 1) {
        Some(v) => (v / stride.max(1) + 1).min(out_w),
        None => 0,
    };
    (lo.min(hi), hi)
}

/// Calls `tap(oc, out_row_start, in_row_start, w_index, ox_range)` for every (output channel,
/// input channel, ky, kx, output row) whose input row is inside the image; `ox_range` holds the
/// output columns whose input column is inside too. Both convolutions are written on top of it.
fn for_each_conv_tap(g: &Geometry, mut tap: impl FnMut(usize, usize, usize, usize, (usize, usize))) {
    let &Geometry::Conv {
        in_ch,
        out_ch,
        kernel,
        stride,
        pad,
        in_h,
        in_w,
        out_h,
        out_w,
    } = g
    else {
        return;
    };
    for oc in 0..out_ch {
        for ic in 0..in_ch {
            for ky in 0..kernel {
                for kx in 0..kernel {
                    let wi = ((oc * in_ch + ic) * kernel + ky) * kernel + kx;
                    let cols = valid_cols(kx, stride, pad, in_w, out_w);
                    for oy in 0..out_h {
                        let Some(iy) = (oy * stride + ky).checked_sub(pad).filter(|&v| v < in_h) else {
                            continue;
                        };
                        tap(oc, (oc * out_h + oy) * out_w, (ic * in_h + iy) * in_w, wi, cols);
                    }
                }
            }
        }
    }
}

/// Direct convolution, zero padding, channel-major `[ch, h, w]` in and out.
pub(super) fn conv_f32(g: &Geometry, w: &[f32], bias: &[f32], x: &[f32], y: &mut [f32]) {
    let (out_h, out_w, stride, kernel, pad) = match *g {
        Geometry::Conv {
            out_h,
            out_w,
            stride,
            kernel,
            pad,
            ..
        } => (out_h, out_w, stride, kernel, pad),
        Geometry::Dense { .. } | Geometry::Pool { .. } => return,
    };
    for (oc, plane) in y.chunks_mut((out_h * out_w).max(1)).enumerate() {
        plane.fill(bias.get(oc).copied().unwrap_or(0.0));
    }
    for_each_conv_tap(g, |_, out_row, in_row, wi, (lo, hi)| {
        let wv = w.get(wi).copied().unwrap_or(0.0);
        let kx = wi % kernel.max(1);
        for ox in lo..hi {
            if let (Some(dst), Some(&xv)) = (y.get_mut(out_row + ox), x.get(in_row + ox * stride + kx - pad))
            {
                *dst += wv * xv;
            }
        }
    });
}

/// int8 direct convolution: padded taps are left out of both sums (padding is zero in the
/// real-valued input, which has no exact `u8` code when `c != 0`).
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_i8(
    g: &Geometry,
    w: &[i8],
    scale: &[f32],
    bias: &[f32],
    u: &[i16],
    (a, c): (f32, f32),
    (dot, sum_q): (&mut [i64], &mut [i64]),
    y: &mut [f32],
) {
    let (out_h, out_w, stride, kernel, pad) = match *g {
        Geometry::Conv {
            out_h,
            out_w,
            stride,
            kernel,
            pad,
            ..
        } => (out_h, out_w, stride, kernel, pad),
        Geometry::Dense { .. } | Geometry::Pool { .. } => return,
    };
    let plane = out_h * out_w;
    // Per output value: Σ q_w u and Σ q_w over in-bounds taps (i64: any tap count is safe).
    dot.fill(0);
    sum_q.fill(0);
    for_each_conv_tap(g, |_, out_row, in_row, wi, (lo, hi)| {
        let wv = i64::from(w.get(wi).copied().unwrap_or(0));
        let kx = wi % kernel.max(1);
        for ox in lo..hi {
            if let (Some(d), Some(sq), Some(&uv)) = (
                dot.get_mut(out_row + ox),
                sum_q.get_mut(out_row + ox),
                u.get(in_row + ox * stride + kx - pad),
            ) {
                *d += wv * i64::from(uv);
                *sq += wv;
            }
        }
    });
    for (oc, ((yp, dp), sp)) in y
        .chunks_mut(plane.max(1))
        .zip(dot.chunks(plane.max(1)))
        .zip(sum_q.chunks(plane.max(1)))
        .enumerate()
    {
        let b = bias.get(oc).copied().unwrap_or(0.0);
        let s = scale.get(oc).copied().unwrap_or(0.0);
        for ((dst, &d), &sq) in yp.iter_mut().zip(dp).zip(sp) {
            *dst = b + s * (a * d as f32 + c * sq as f32);
        }
    }
}

/// Convolution as one packed dense product per output position (im2col one column at a time):
/// gathers the `in_ch · kernel · kernel` input taps of the position into `patch` (zeros where
/// the tap falls in the padding), runs the SIMD dense kernel to get all `out_ch` outputs into
/// `col`, and scatters them into the channel-major output. Returns `false` (computing nothing
/// more) when the buffers do not fit the layer, so that the caller can fail loudly.
pub(super) fn conv_f32_packed(
    g: &Geometry,
    p: &Packed<f32>,
    bias: &[f32],
    x: &[f32],
    y: &mut [f32],
    (patch, col): (&mut [f32], &mut [f32]),
) -> bool {
    let &Geometry::Conv {
        in_ch,
        out_ch,
        kernel,
        stride,
        pad,
        in_h,
        in_w,
        out_h,
        out_w,
    } = g
    else {
        return false;
    };
    let taps = in_ch * kernel * kernel;
    let plane = out_h * out_w;
    let (Some(patch), Some(col)) = (patch.get_mut(..taps), col.get_mut(..out_ch)) else {
        return false;
    };
    if x.len() < in_ch * in_h * in_w || y.len() < out_ch * plane {
        return false;
    }
    for oy in 0..out_h {
        for ox in 0..out_w {
            let mut dst = patch.chunks_exact_mut(kernel.max(1));
            for ic in 0..in_ch {
                for ky in 0..kernel {
                    let Some(row) = dst.next() else { return false };
                    let iy = (oy * stride + ky).checked_sub(pad).filter(|&v| v < in_h);
                    let Some(iy) = iy else {
                        row.fill(0.0);
                        continue;
                    };
                    let base = (ic * in_h + iy) * in_w;
                    let x0 = ox * stride;
                    if x0 >= pad && x0 + kernel <= in_w + pad {
                        // The whole kernel row is inside the image: one copy.
                        match x.get(base + x0 - pad..base + x0 - pad + kernel) {
                            Some(src) => row.copy_from_slice(src),
                            None => return false,
                        }
                    } else {
                        for (kx, v) in row.iter_mut().enumerate() {
                            *v = (x0 + kx)
                                .checked_sub(pad)
                                .filter(|&ix| ix < in_w)
                                .and_then(|ix| x.get(base + ix).copied())
                                .unwrap_or(0.0);
                        }
                    }
                }
            }
            if !simd::dense_f32(p, bias, patch, col) {
                return false;
            }
            let pos = oy * out_w + ox;
            for (oc, &v) in col.iter().enumerate() {
                if let Some(dst) = y.get_mut(oc * plane + pos) {
                    *dst = v;
                }
            }
        }
    }
    true
}

/// Max pooling over `size × size` windows with stride `size`, no padding (the output keeps
/// `floor(in / size)` positions per axis, like PyTorch and burn), channel-major in and out.
pub(super) fn maxpool_f32(g: &Geometry, x: &[f32], y: &mut [f32]) {
    let &Geometry::Pool {
        ch,
        size,
        in_h,
        in_w,
        out_h,
        out_w,
    } = g
    else {
        return;
    };
    let mut out = y.iter_mut();
    for c in 0..ch {
        for oy in 0..out_h {
            for ox in 0..out_w {
                let mut m = f32::NEG_INFINITY;
                for ky in 0..size {
                    let start = (c * in_h + oy * size + ky) * in_w + ox * size;
                    for &v in x.get(start..start + size).unwrap_or_default() {
                        m = m.max(v);
                    }
                }
                if let Some(dst) = out.next() {
                    *dst = m;
                }
            }
        }
    }
}
