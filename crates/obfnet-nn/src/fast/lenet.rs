//! The frozen LeNet-5 as one block that computes the forward pass, the cross-entropy loss and
//! the gradient with respect to its **input** only (no weight gradients: the model is frozen).
//!
//! conv1 (1 → 6, 5×5, pad 2) is a direct convolution (and its transpose for the input
//! gradient); conv2 (6 → 16, 5×5) is im2col + one matrix product (and `W₂ᵀ · dY` + col2im back);
//! both 2×2 max-pools remember their winners; the three dense layers are matrix products.
//! Samples go through in micro-batches of [`MICRO_BATCH`] so every buffer stays in cache.

use super::gemm::{Op, gemm};
use crate::lenet::LeNet;
use crate::{Error, Result};

/// Samples per micro-batch of the frozen model.
pub const MICRO_BATCH: usize = 32;

const C1: usize = 6;
const C2: usize = 16;
const KS: usize = 5;
const H1: usize = 120;
const H2: usize = 84;

/// The weights of a frozen LeNet-5, copied out of burn once.
#[derive(Clone, Debug)]
pub struct FrozenLeNet {
    rows: usize,
    cols: usize,
    classes: usize,
    /// `[6, 25]`
    c1w: Vec<f32>,
    c1b: Vec<f32>,
    /// `[16, 150]` (rows: out channel; columns: in channel, ky, kx)
    c2w: Vec<f32>,
    c2b: Vec<f32>,
    /// burn's `Linear` layout `[in, out]`
    f1w: Vec<f32>,
    f1b: Vec<f32>,
    f2w: Vec<f32>,
    f2b: Vec<f32>,
    f3w: Vec<f32>,
    f3b: Vec<f32>,
}

/// Sizes derived from the input size.
#[derive(Clone, Copy, Debug)]
struct Dims {
    r: usize,
    c: usize,
    /// padded input rows (2 above, 2 below) and row length (2 left, zeros to the right, room
    /// for 8-wide loads past the last column)
    pr: usize,
    pc: usize,
    /// after pool 1
    h1: usize,
    w1: usize,
    /// conv2 output
    h2c: usize,
    w2c: usize,
    /// after pool 2
    h2: usize,
    w2: usize,
}

impl Dims {
    fn new(r: usize, c: usize) -> Dims {
        let (h1, w1) = (r / 2, c / 2);
        let (h2c, w2c) = (h1 - (KS - 1), w1 - (KS - 1));
        Dims {
            r,
            c,
            pr: r + 4,
            pc: c.div_ceil(8) * 8 + 8,
            h1,
            w1,
            h2c,
            w2c,
            h2: h2c / 2,
            w2: w2c / 2,
        }
    }
    fn flat(&self) -> usize {
        C2 * self.h2 * self.w2
    }
    fn nc2(&self) -> usize {
        self.h2c * self.w2c
    }
}

/// Per-thread scratch of the frozen block for up to [`MICRO_BATCH`] samples.
#[derive(Clone, Debug)]
pub struct LeNetWork {
    xp: Vec<f32>,
    c1: Vec<f32>,
    p1: Vec<f32>,
    p1_win: Vec<u8>,
    cols: Vec<f32>,
    y2: Vec<f32>,
    flat: Vec<f32>,
    p2_win: Vec<u32>,
    a1: Vec<f32>,
    a2: Vec<f32>,
    logits: Vec<f32>,
    dlogits: Vec<f32>,
    da2: Vec<f32>,
    da1: Vec<f32>,
    dflat: Vec<f32>,
    dy2: Vec<f32>,
    dp1: Vec<f32>,
    dc1: Vec<f32>,
    /// conv1's output gradient, zero-padded like `xp`, per channel
    dxp: Vec<f32>,
}

impl FrozenLeNet {
    /// Copies the weights out of `model`.
    ///
    /// # Errors
    /// [`Error::Backend`] if burn cannot read a tensor back, [`Error::Shape`] if the parameter
    /// count does not fit a LeNet-5 of the model's input size.
    pub fn from_lenet(model: &LeNet) -> Result<FrozenLeNet> {
        let w = model.weights()?;
        let (rows, cols, classes) = (w.rows, w.cols, w.classes);
        if w.flat != Dims::new(rows, cols).flat() {
            return Err(Error::Shape(format!(
                "a LeNet-5 for {rows}×{cols} flattens {} values, the fast path expects {}",
                w.flat,
                Dims::new(rows, cols).flat()
            )));
        }
        let ((c1w, c1b), (c2w, c2b), (f1w, f1b)) = (w.conv1, w.conv2, w.fc1);
        let ((f2w, f2b), (f3w, f3b)) = (w.fc2, w.fc3);
        Ok(FrozenLeNet {
            rows,
            cols,
            classes,
            c1w,
            c1b,
            c2w,
            c2b,
            f1w,
            f1b,
            f2w,
            f2b,
            f3w,
            f3b,
        })
    }

    /// Pixels per input.
    pub fn input_len(&self) -> usize {
        self.rows * self.cols
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    fn dims(&self) -> Dims {
        Dims::new(self.rows, self.cols)
    }

    /// Scratch buffers for one thread.
    pub fn work(&self) -> LeNetWork {
        let d = self.dims();
        let mb = MICRO_BATCH;
        let n1 = mb * C1 * d.r * d.c;
        let np1 = mb * C1 * d.h1 * d.w1;
        let n2 = mb * d.nc2();
        LeNetWork {
            xp: vec![0.0; d.pr * d.pc],
            c1: vec![0.0; n1],
            p1: vec![0.0; np1],
            p1_win: vec![0; np1],
            cols: vec![0.0; C1 * KS * KS * n2],
            y2: vec![0.0; C2 * n2],
            flat: vec![0.0; mb * d.flat()],
            p2_win: vec![0; mb * d.flat()],
            a1: vec![0.0; mb * H1],
            a2: vec![0.0; mb * H2],
            logits: vec![0.0; mb * self.classes],
            dlogits: vec![0.0; mb * self.classes],
            da2: vec![0.0; mb * H2],
            da1: vec![0.0; mb * H1],
            dflat: vec![0.0; mb * d.flat()],
            dy2: vec![0.0; C2 * n2],
            dp1: vec![0.0; np1],
            dc1: vec![0.0; n1],
            dxp: vec![0.0; C1 * d.pr * d.pc],
        }
    }

    /// Forward pass of up to [`MICRO_BATCH`] samples `x` (`[mb, rows·cols]`); the logits end up
    /// in `w.logits`. Compiled for the best vector extension the CPU has (run-time dispatch).
    fn forward_micro(&self, w: &mut LeNetWork, x: &[f32], mb: usize) {
        pulp::Arch::new().dispatch(Micro {
            net: self,
            w,
            x,
            dx: &mut [],
            mb,
            backward: false,
        });
    }

    #[inline(always)]
    fn forward_micro_impl(&self, w: &mut LeNetWork, x: &[f32], mb: usize) {
        let d = self.dims();
        let (r, c, pc) = (d.r, d.c, d.pc);
        let plane = r * c;
        // conv1, direct, per sample, on a zero-padded copy
        for s in 0..mb {
            let img = &x[s * plane..(s + 1) * plane];
            for y in 0..r {
                w.xp[(y + 2) * pc + 2..(y + 2) * pc + 2 + c].copy_from_slice(&img[y * c..(y + 1) * c]);
            }
            // per channel and output row, tiles of up to 4 blocks of 8 columns: independent
            // accumulators (the adds of one output are a dependent chain; four chains keep the
            // FMA pipes busy); each output sums its taps in the order ky, kx, then adds the bias
            let out = &mut w.c1[s * C1 * plane..(s + 1) * C1 * plane];
            for oc in 0..C1 {
                let k: &[f32; KS * KS] = self.c1w[oc * KS * KS..(oc + 1) * KS * KS]
                    .try_into()
                    .unwrap_or(&[0.0; KS * KS]);
                let bias = self.c1b[oc];
                for y in 0..r {
                    let row = &mut out[oc * plane + y * c..oc * plane + (y + 1) * c];
                    conv_row(row, &[(&w.xp[..], y * pc)], pc, &[k], false, bias);
                }
            }
        }
        // ReLU + pool 1 (ReLU of the max = max of the ReLUs), winners kept
        let (h1, w1) = (d.h1, d.w1);
        for sc in 0..mb * C1 {
            let src = &w.c1[sc * plane..(sc + 1) * plane];
            for py in 0..h1 {
                for px in 0..w1 {
                    let (v, k) = max4(src, 2 * py * c + 2 * px, c);
                    let o = (sc * h1 + py) * w1 + px;
                    w.p1[o] = v.max(0.0);
                    w.p1_win[o] = k;
                }
            }
        }
        // conv2: im2col, one product
        let nc2 = d.nc2();
        let n2 = mb * nc2;
        let (h2c, w2c) = (d.h2c, d.w2c);
        for ci in 0..C1 {
            for ky in 0..KS {
                for kx in 0..KS {
                    let row = (ci * KS + ky) * KS + kx;
                    let dst = &mut w.cols[row * n2..(row + 1) * n2];
                    for s in 0..mb {
                        let src = &w.p1[(s * C1 + ci) * h1 * w1..(s * C1 + ci + 1) * h1 * w1];
                        for oy in 0..h2c {
                            let o = s * nc2 + oy * w2c;
                            dst[o..o + w2c]
                                .copy_from_slice(&src[(oy + ky) * w1 + kx..(oy + ky) * w1 + kx + w2c]);
                        }
                    }
                }
            }
        }
        let k2 = C1 * KS * KS;
        gemm(
            &mut w.y2[..C2 * n2],
            Op::n(&self.c2w, C2, k2),
            Op::n(&w.cols[..k2 * n2], k2, n2),
            false,
        );
        // bias + ReLU + pool 2 into the flat [mb, 16·h2·w2] (channel-major, as burn's flatten)
        let (h2, w2) = (d.h2, d.w2);
        let flat = d.flat();
        for oc in 0..C2 {
            let row = &mut w.y2[oc * n2..(oc + 1) * n2];
            let b = self.c2b[oc];
            for v in row.iter_mut() {
                *v += b;
            }
            for s in 0..mb {
                let base = s * nc2;
                for py in 0..h2 {
                    for px in 0..w2 {
                        let start = base + 2 * py * w2c + 2 * px;
                        let (v, k) = max4(row, start, w2c);
                        let o = s * flat + (oc * h2 + py) * w2 + px;
                        w.flat[o] = v.max(0.0);
                        w.p2_win[o] = (oc * n2 + start + (k as usize >> 1) * w2c + (k as usize & 1)) as u32;
                    }
                }
            }
        }
        // the dense head
        dense(&mut w.a1, &w.flat, &self.f1w, &self.f1b, mb, flat, H1, true);
        dense(&mut w.a2, &w.a1, &self.f2w, &self.f2b, mb, H1, H2, true);
        dense(
            &mut w.logits,
            &w.a2,
            &self.f3w,
            &self.f3b,
            mb,
            H2,
            self.classes,
            false,
        );
    }

    /// Cross-entropy of the logits in `w.logits` against `labels`; writes `scale · ∂loss/∂logits`
    /// into `w.dlogits`; returns the summed loss and the number of correct predictions.
    fn loss_micro(&self, w: &mut LeNetWork, labels: &[u8], mb: usize, scale: f32) -> (f64, usize) {
        let nc = self.classes;
        let mut loss = 0.0f64;
        let mut correct = 0;
        for s in 0..mb {
            let l = &w.logits[s * nc..(s + 1) * nc];
            let g = &mut w.dlogits[s * nc..(s + 1) * nc];
            let (arg, max) = argmax(l);
            let y = usize::from(labels[s]);
            correct += usize::from(arg == y);
            let mut sum = 0.0f32;
            for (gv, &lv) in g.iter_mut().zip(l) {
                *gv = (lv - max).exp();
                sum += *gv;
            }
            loss += f64::from(sum.ln() + max - l[y]);
            let inv = scale / sum;
            for gv in g.iter_mut() {
                *gv *= inv;
            }
            g[y] -= scale;
        }
        (loss, correct)
    }

    /// The gradient with respect to the input, from `w.dlogits`, into `dx` (`[mb, rows·cols]`).
    fn backward_micro(&self, w: &mut LeNetWork, dx: &mut [f32], mb: usize) {
        pulp::Arch::new().dispatch(Micro {
            net: self,
            w,
            x: &[],
            dx,
            mb,
            backward: true,
        });
    }

    #[inline(always)]
    fn backward_micro_impl(&self, w: &mut LeNetWork, dx: &mut [f32], mb: usize) {
        let d = self.dims();
        let nc = self.classes;
        let flat = d.flat();
        // dense head, input gradients only, through the ReLU masks
        gemm(
            &mut w.da2[..mb * H2],
            Op::n(&w.dlogits, mb, nc),
            Op::t(&self.f3w, H2, nc),
            false,
        );
        mask(&mut w.da2[..mb * H2], &w.a2);
        gemm(
            &mut w.da1[..mb * H1],
            Op::n(&w.da2, mb, H2),
            Op::t(&self.f2w, H1, H2),
            false,
        );
        mask(&mut w.da1[..mb * H1], &w.a1);
        gemm(
            &mut w.dflat[..mb * flat],
            Op::n(&w.da1, mb, H1),
            Op::t(&self.f1w, flat, H1),
            false,
        );
        // pool 2 + ReLU back to conv2's output
        let n2 = mb * d.nc2();
        w.dy2[..C2 * n2].fill(0.0);
        for ((&g, &v), &win) in w.dflat[..mb * flat].iter().zip(&w.flat).zip(&w.p2_win) {
            if v > 0.0 {
                w.dy2[win as usize] = g;
            }
        }
        // conv2's input gradient: W₂ᵀ · dY, then col2im
        let k2 = C1 * KS * KS;
        gemm(
            &mut w.cols[..k2 * n2],
            Op::t(&self.c2w, C2, k2),
            Op::n(&w.dy2[..C2 * n2], C2, n2),
            false,
        );
        let (h1, w1, h2c, w2c, nc2) = (d.h1, d.w1, d.h2c, d.w2c, d.nc2());
        w.dp1[..mb * C1 * h1 * w1].fill(0.0);
        for ci in 0..C1 {
            for ky in 0..KS {
                for kx in 0..KS {
                    let row = (ci * KS + ky) * KS + kx;
                    let src = &w.cols[row * n2..(row + 1) * n2];
                    for s in 0..mb {
                        let dst = &mut w.dp1[(s * C1 + ci) * h1 * w1..(s * C1 + ci + 1) * h1 * w1];
                        for oy in 0..h2c {
                            let o = s * nc2 + oy * w2c;
                            let t = (oy + ky) * w1 + kx;
                            for (dv, &sv) in dst[t..t + w2c].iter_mut().zip(&src[o..o + w2c]) {
                                *dv += sv;
                            }
                        }
                    }
                }
            }
        }
        // pool 1 + ReLU back to conv1's output
        let (r, c, pc) = (d.r, d.c, d.pc);
        let plane = r * c;
        w.dc1[..mb * C1 * plane].fill(0.0);
        for sc in 0..mb * C1 {
            for py in 0..h1 {
                for px in 0..w1 {
                    let o = (sc * h1 + py) * w1 + px;
                    if w.p1[o] > 0.0 {
                        let k = usize::from(w.p1_win[o]);
                        let at = sc * plane + (2 * py + (k >> 1)) * c + 2 * px + (k & 1);
                        w.dc1[at] = w.dp1[o];
                    }
                }
            }
        }
        // conv1 transposed: the input gradient is the correlation of the zero-padded output
        // gradient with the flipped kernels, tiled as in the forward pass
        for s in 0..mb {
            for oc in 0..C1 {
                let g = &w.dc1[(s * C1 + oc) * plane..(s * C1 + oc + 1) * plane];
                let dst = &mut w.dxp[oc * d.pr * pc..(oc + 1) * d.pr * pc];
                for y in 0..r {
                    dst[(y + 2) * pc + 2..(y + 2) * pc + 2 + c].copy_from_slice(&g[y * c..(y + 1) * c]);
                }
            }
            let out = &mut dx[s * plane..(s + 1) * plane];
            let kernels: [&[f32; KS * KS]; C1] = std::array::from_fn(|oc| {
                self.c1w[oc * KS * KS..(oc + 1) * KS * KS]
                    .try_into()
                    .unwrap_or(&[0.0; KS * KS])
            });
            let plane_p = d.pr * pc;
            for y in 0..r {
                let srcs: [(&[f32], usize); C1] =
                    std::array::from_fn(|oc| (&w.dxp[oc * plane_p..(oc + 1) * plane_p], y * pc));
                conv_row(&mut out[y * c..(y + 1) * c], &srcs, pc, &kernels, true, 0.0);
            }
        }
    }

    /// Forward, loss and input gradient of `labels.len()` samples `x`, micro-batch by
    /// micro-batch. `dx` gets `scale · ∂(Σ loss)/∂x`. Returns the summed loss and the number of
    /// correct predictions.
    ///
    /// # Panics
    /// If `x` or `dx` do not hold `labels.len()` inputs (a bug in the caller).
    pub fn loss_and_input_grad(
        &self,
        w: &mut LeNetWork,
        x: &[f32],
        labels: &[u8],
        dx: &mut [f32],
        scale: f32,
    ) -> (f64, usize) {
        let d = self.input_len();
        assert!(x.len() == labels.len() * d && dx.len() == x.len());
        let (mut loss, mut correct) = (0.0, 0);
        for ((xc, yc), dc) in x
            .chunks(MICRO_BATCH * d)
            .zip(labels.chunks(MICRO_BATCH))
            .zip(dx.chunks_mut(MICRO_BATCH * d))
        {
            let mb = yc.len();
            self.forward_micro(w, xc, mb);
            let (l, c) = self.loss_micro(w, yc, mb, scale);
            loss += l;
            correct += c;
            self.backward_micro(w, dc, mb);
        }
        (loss, correct)
    }

    /// Predicted classes of the inputs `x` (`[n, rows·cols]`) into `out`.
    ///
    /// # Panics
    /// If `x` does not hold `out.len()` inputs.
    pub fn predict(&self, w: &mut LeNetWork, x: &[f32], out: &mut [usize]) {
        let d = self.input_len();
        assert_eq!(x.len(), out.len() * d);
        let nc = self.classes;
        for (xc, oc) in x.chunks(MICRO_BATCH * d).zip(out.chunks_mut(MICRO_BATCH)) {
            let mb = oc.len();
            self.forward_micro(w, xc, mb);
            for (s, o) in oc.iter_mut().enumerate() {
                *o = argmax(&w.logits[s * nc..(s + 1) * nc]).0;
            }
        }
    }

    /// The logits of up to [`MICRO_BATCH`] inputs (for tests).
    pub fn logits(&self, w: &mut LeNetWork, x: &[f32]) -> Vec<f32> {
        let mb = x.len() / self.input_len();
        self.forward_micro(w, x, mb);
        w.logits[..mb * self.classes].to_vec()
    }
}

/// One output row of a 5×5 correlation (`flip`: with the kernels turned 180°, the transposed
/// convolution): `row[x] = bias + Σ_i Σ_ky Σ_kx k_i[ky, kx] · src_i[at_i + ky·stride + x + kx]`,
/// summed in that order (i, ky, kx) for every output, so the result does not depend on the tiling.
/// Each source must hold `8·⌈len/8⌉ + 4` values past `at + 4·stride`.
#[inline(always)]
fn conv_row(
    row: &mut [f32],
    srcs: &[(&[f32], usize)],
    stride: usize,
    kernels: &[&[f32; KS * KS]],
    flip: bool,
    bias: f32,
) {
    let c = row.len();
    let mut x0 = 0;
    while x0 < c {
        let nb = (c - x0).div_ceil(8).min(4);
        let dst = &mut row[x0..(x0 + 8 * nb).min(c)];
        match nb {
            4 => conv_tile::<4>(dst, srcs, x0, stride, kernels, flip, bias),
            3 => conv_tile::<3>(dst, srcs, x0, stride, kernels, flip, bias),
            2 => conv_tile::<2>(dst, srcs, x0, stride, kernels, flip, bias),
            _ => conv_tile::<1>(dst, srcs, x0, stride, kernels, flip, bias),
        }
        x0 += 8 * nb;
    }
}

/// [`conv_row`] for `NB` blocks of 8 outputs starting at column `x0`, in registers.
#[inline(always)]
fn conv_tile<const NB: usize>(
    dst: &mut [f32],
    srcs: &[(&[f32], usize)],
    x0: usize,
    stride: usize,
    kernels: &[&[f32; KS * KS]],
    flip: bool,
    bias: f32,
) {
    let mut acc = [[0.0f32; 8]; NB];
    for (&(src, at), k) in srcs.iter().zip(kernels) {
        for ky in 0..KS {
            let start = at + ky * stride + x0;
            let line = &src[start..start + 8 * NB + KS - 1];
            for kx in 0..KS {
                let wv = if flip {
                    k[(KS - 1 - ky) * KS + (KS - 1 - kx)]
                } else {
                    k[ky * KS + kx]
                };
                for (bi, a) in acc.iter_mut().enumerate() {
                    let v: &[f32; 8] = line[8 * bi + kx..8 * bi + kx + 8].try_into().unwrap_or(&[0.0; 8]);
                    for (aj, vj) in a.iter_mut().zip(v) {
                        *aj += wv * vj;
                    }
                }
            }
        }
    }
    for (o, v) in dst.iter_mut().zip(acc.iter().flatten()) {
        *o = v + bias;
    }
}

/// Max of the 2×2 window starting at `start` (row stride `stride`) and which of the four
/// (0: top left, 1: top right, 2: bottom left, 3: bottom right) won, the first on ties.
#[inline(always)]
fn max4(src: &[f32], start: usize, stride: usize) -> (f32, u8) {
    let v = [
        src[start],
        src[start + 1],
        src[start + stride],
        src[start + stride + 1],
    ];
    let mut best = (v[0], 0u8);
    for (i, &x) in v.iter().enumerate().skip(1) {
        if x > best.0 {
            best = (x, i as u8);
        }
    }
    best
}

fn argmax(v: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, &x) in v.iter().enumerate() {
        if x > best.1 {
            best = (i, x);
        }
    }
    best
}

/// `out = act(x · W + b)` with burn's `Linear` layout `W: [inputs, outputs]`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dense(
    out: &mut [f32],
    x: &[f32],
    w: &[f32],
    b: &[f32],
    mb: usize,
    inputs: usize,
    outputs: usize,
    relu: bool,
) {
    let out = &mut out[..mb * outputs];
    gemm(out, Op::n(x, mb, inputs), Op::n(w, inputs, outputs), false);
    for row in out.chunks_exact_mut(outputs) {
        for (o, &bv) in row.iter_mut().zip(b) {
            *o += bv;
            if relu {
                *o = o.max(0.0);
            }
        }
    }
}

/// Zeroes the gradient where the ReLU output was 0.
#[inline(always)]
fn mask(g: &mut [f32], a: &[f32]) {
    for (gv, &av) in g.iter_mut().zip(a) {
        if av <= 0.0 {
            *gv = 0.0;
        }
    }
}

/// One micro-batch pass, compiled for the CPU's vector extensions (see the note at the end of
/// `dense.rs` on why this is a struct and not a closure).
struct Micro<'a> {
    net: &'a FrozenLeNet,
    w: &'a mut LeNetWork,
    x: &'a [f32],
    dx: &'a mut [f32],
    mb: usize,
    backward: bool,
}

impl pulp::WithSimd for Micro<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        if self.backward {
            self.net.backward_micro_impl(self.w, self.dx, self.mb);
        } else {
            self.net.forward_micro_impl(self.w, self.x, self.mb);
        }
    }
}
