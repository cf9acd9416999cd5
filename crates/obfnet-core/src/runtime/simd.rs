//! The one audited `unsafe` module of the workspace: x86-64 SIMD kernels for dense layers.
//!
//! Everything here is a faster way to compute exactly what the portable kernels in
//! `kernels.rs` compute (those stay the reference and the fallback):
//!
//! * **int8** — the exact integer `Σ_i q[o, i] u[i]` for every output `o` of a dense layer
//!   (`q` int8 weights in `-127..=127`, `u` activation codes in `0..=255`), so the result is
//!   **bit-identical** to the portable path (the same integer goes through the same `f32`
//!   arithmetic afterwards). Two kernels:
//!   - AVX-512 VNNI: `vpdpbusd` multiplies 4 `u8 × i8` pairs and adds them to an `i32` lane
//!     with no intermediate saturation;
//!   - AVX2: `vpmaddubsw` adds *pairs* of `u8 × i8` products into a *saturating* `i16`, and
//!     `255 · 127 · 2 = 64 770` does not fit. Each code is therefore split as
//!     `u = l + 128 h` (`l` in `0..=127`, `h` in `{0, 1}`): `l`-pairs are at most
//!     `127 · 127 · 2 = 32 258` and `h`-pairs at most `254` in magnitude, so neither saturates;
//!     `l`-pairs are widened to `i32` at once (`vpmaddwd` with ones), `h`-pairs are summed in
//!     `i16` for at most 128 input groups (`128 · 254 = 32 512`) and then added as `128 · Σ`
//!     in `i32`. All sums are exact integers.
//!
//!   `i32` accumulators cannot overflow: rows are at most [`MAX_I8_INPUTS`] long and
//!   `127 · 255 · 65 536 < 2^31` (longer rows use the portable kernel's `i64` chunks).
//! * **f32** — `y[o] = Σ_i w[o, i] x[i]` with fused multiply-adds, streaming the weights once
//!   (AVX2 + FMA and AVX-512F). The summation order differs from the portable kernel's, so the
//!   results agree to rounding (the tests hold them within 1e-6 of `Σ |w x|`).
//!
//! **Layout.** Weights are packed once, when a runtime is built, into blocks of `LANES` outputs
//! (8 for AVX2, 16 for AVX-512) by a group of input values (4 for int8, 1 for f32), so that one
//! broadcast activation feeds a whole register of outputs; up to `NB` blocks form a *panel*
//! stored contiguously input after input, so a panel's weights are one sequential stream.
//! Outputs are padded to a whole block with zero weights, inputs to a whole group with zero
//! weights (and zero codes).
//!
//! **Dispatch.** With `std`, [`Isa::detect`] asks the CPU at run time
//! (`is_x86_feature_detected!`); without `std` only what the build enables at compile time
//! (`-C target-feature` / `-C target-cpu`) is used. A [`Packed`] layout remembers the
//! instruction set it was packed for, and the safe entry points below only call a
//! `#[target_feature]` function for an instruction set that [`Isa::detect`] found.
//!
//! **Safety argument** (the same for every `unsafe` block): (1) the `#[target_feature]`
//! functions are only called after [`Isa::detect`] has reported the features they enable;
//! (2) every load and store goes through a pointer obtained from a slice that safe code has
//! already cut to at least the bytes accessed (`chunks_exact` of the panel size, output slices
//! of the block size), and the unaligned load/store intrinsics have no alignment requirement.
#![allow(unsafe_code)]

use alloc::vec;
use alloc::vec::Vec;

/// Longest int8 row the SIMD kernels take (`i32` accumulators stay exact).
pub(crate) const MAX_I8_INPUTS: usize = 65_536;

/// Input groups summed in `i16` before the AVX2 kernel's `h` part is flushed to `i32`.
const H_FLUSH: usize = 128;

/// The instruction set a kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// The safe portable kernels (the reference).
    Portable,
    /// AVX2 (+ FMA for `f32`).
    Avx2,
    /// AVX-512 F + BW (+ VNNI for int8).
    Avx512,
}

impl Isa {
    /// The best instruction set this CPU offers for `f32` and for int8 dense kernels.
    pub fn detect() -> (Isa, Isa) {
        let best = |int8| {
            [Isa::Avx512, Isa::Avx2]
                .into_iter()
                .find(|&isa| isa.supported(int8))
                .unwrap_or(Isa::Portable)
        };
        (best(false), best(true))
    }

    /// Whether this CPU runs this instruction set's `f32` (`int8 == false`) or int8 kernels:
    /// AVX2 needs AVX2 + FMA; AVX-512 needs F + BW, and VNNI for int8. With `std` the CPU is
    /// asked at run time; without, only features enabled at compile time count.
    pub fn supported(self, int8: bool) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2 => has_avx2(),
            Isa::Avx512 => has_avx512() && (!int8 || has_vnni()),
        }
    }

    /// Block width (outputs per register) of this instruction set's kernels.
    fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            _ => 8,
        }
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}
#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
}
#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn has_vnni() -> bool {
    std::is_x86_feature_detected!("avx512vnni")
}
#[cfg(not(all(feature = "std", target_arch = "x86_64")))]
fn has_avx2() -> bool {
    cfg!(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))
}
#[cfg(not(all(feature = "std", target_arch = "x86_64")))]
fn has_avx512() -> bool {
    cfg!(all(
        target_arch = "x86_64",
        target_feature = "avx512f",
        target_feature = "avx512bw"
    ))
}
#[cfg(not(all(feature = "std", target_arch = "x86_64")))]
fn has_vnni() -> bool {
    cfg!(all(target_arch = "x86_64", target_feature = "avx512vnni"))
}

/// Blocks per panel: enough independent accumulators to hide the multiply-add latency while
/// staying inside 16 (AVX2) / 32 (AVX-512) vector registers.
fn panel_blocks(isa: Isa, int8: bool) -> usize {
    match (isa, int8) {
        (Isa::Avx2, true) => 4,
        _ => 8,
    }
}

/// A dense layer's weights in panel layout for one instruction set.
#[derive(Clone, Debug)]
pub(crate) struct Packed<T> {
    isa: Isa,
    outputs: usize,
    /// Input groups (int8: 4 inputs each; f32: 1).
    groups: usize,
    data: Vec<T>,
}

/// Output count rounded up to whole blocks.
pub(crate) fn padded_outputs(isa: Isa, outputs: usize) -> usize {
    outputs.div_ceil(isa.lanes()) * isa.lanes()
}

/// Packs row-major `w[o, i]` (`outputs × inputs`) into panels of `nb` blocks of `lanes`
/// outputs by `group` inputs: panel-major, then input group, then block, then output lane, then
/// the input inside the group.
fn pack<T: Copy + Default>(isa: Isa, int8: bool, w: &[T], inputs: usize, outputs: usize) -> Packed<T> {
    let (lanes, nb) = (isa.lanes(), panel_blocks(isa, int8));
    let group = if int8 { 4 } else { 1 };
    let groups = inputs.div_ceil(group);
    let blocks = outputs.div_ceil(lanes);
    let mut data = vec![T::default(); blocks * lanes * groups * group];
    let mut at = 0;
    for panel_start in (0..blocks).step_by(nb) {
        let panel = nb.min(blocks - panel_start);
        for g in 0..groups {
            for b in 0..panel {
                for lane in 0..lanes {
                    let o = (panel_start + b) * lanes + lane;
                    for k in 0..group {
                        let i = g * group + k;
                        if o < outputs
                            && i < inputs
                            && let (Some(dst), Some(&src)) = (data.get_mut(at), w.get(o * inputs + i))
                        {
                            *dst = src;
                        }
                        at += 1;
                    }
                }
            }
        }
    }
    Packed {
        isa,
        outputs,
        groups,
        data,
    }
}

/// Packs an int8 dense layer for `isa`, or `None` when the portable kernel should run it.
pub(crate) fn pack_i8(isa: Isa, w: &[i8], inputs: usize, outputs: usize) -> Option<Packed<i8>> {
    if isa == Isa::Portable || inputs == 0 || inputs > MAX_I8_INPUTS || w.len() != inputs * outputs {
        return None;
    }
    Some(pack(isa, true, w, inputs, outputs))
}

/// Packs an `f32` dense layer for `isa`, or `None` when the portable kernel should run it.
pub(crate) fn pack_f32(isa: Isa, w: &[f32], inputs: usize, outputs: usize) -> Option<Packed<f32>> {
    if isa == Isa::Portable || inputs == 0 || w.len() != inputs * outputs {
        return None;
    }
    Some(pack(isa, false, w, inputs, outputs))
}

/// Per-layer activation buffers of the int8 kernels: the codes as bytes, and (AVX2) split
/// into `l` and `h` parts, four codes per `u32` so that one broadcast covers an input group.
#[derive(Clone, Debug, Default)]
pub(crate) struct I8Scratch {
    lo: Vec<u32>,
    hi: Vec<u32>,
    dots: Vec<i32>,
}

impl I8Scratch {
    /// Buffers for rows of up to `width` inputs and layers of up to `width` outputs.
    pub(crate) fn new(width: usize) -> I8Scratch {
        let groups = width.div_ceil(4);
        I8Scratch {
            lo: vec![0; groups],
            hi: vec![0; groups],
            dots: vec![0; width.div_ceil(16) * 16],
        }
    }

    /// Whether the buffers take layers of up to `width` inputs and outputs.
    pub(crate) fn fits(&self, width: usize) -> bool {
        let groups = width.div_ceil(4);
        self.lo.len() >= groups && self.hi.len() >= groups && self.dots.len() >= width.div_ceil(16) * 16
    }

    /// Bytes held.
    pub(crate) fn bytes_for(width: usize) -> usize {
        8 * width.div_ceil(4) + 4 * width.div_ceil(16) * 16
    }
}

/// `dots[o] = Σ_i q[o, i] u[i]` (exact) for the packed int8 layer `p`; `u` holds the layer's
/// input codes (`0..=255`). Returns `false` (and computes nothing) when the buffers do not fit
/// the layer, so that the caller falls back to the portable kernel.
pub(crate) fn dense_i8_dots<'s>(p: &Packed<i8>, u: &[i16], s: &'s mut I8Scratch) -> Option<&'s [i32]> {
    let groups = p.groups;
    let padded = padded_outputs(p.isa, p.outputs);
    if u.len().div_ceil(4) != groups || s.lo.len() < groups || s.hi.len() < groups || s.dots.len() < padded {
        return None;
    }
    let byte = |g: usize, k: usize| {
        u.get(g * 4 + k)
            .map_or(0u32, |&v| (v.clamp(0, 255) as u32) & 0xff)
    };
    let (lo, hi) = (&mut s.lo[..groups], &mut s.hi[..groups]);
    match p.isa {
        Isa::Avx2 => {
            for (g, (l, h)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                let (mut lw, mut hw) = (0u32, 0u32);
                for k in 0..4 {
                    let v = byte(g, k);
                    lw |= (v & 0x7f) << (8 * k);
                    hw |= (v >> 7) << (8 * k);
                }
                (*l, *h) = (lw, hw);
            }
        }
        _ => {
            for (g, l) in lo.iter_mut().enumerate() {
                *l = (0..4).fold(0u32, |acc, k| acc | byte(g, k) << (8 * k));
            }
        }
    }
    let dots = &mut s.dots[..padded];
    let (lo, hi) = (&s.lo[..groups], &s.hi[..groups]);
    #[cfg(target_arch = "x86_64")]
    {
        let lanes = p.isa.lanes();
        let nb = panel_blocks(p.isa, true);
        let mut w = p.data.as_slice();
        let mut out = &mut dots[..];
        while !out.is_empty() {
            let blocks = nb.min(out.len() / lanes);
            let (wp, wrest) = w.split_at_checked(blocks * lanes * 4 * groups)?;
            let (op, orest) = core::mem::take(&mut out).split_at_mut_checked(blocks * lanes)?;
            let done = match p.isa {
                Isa::Avx2 => x86::i8_avx2_panel(blocks, wp, lo, hi, op),
                Isa::Avx512 => x86::i8_vnni_panel(blocks, wp, lo, op),
                Isa::Portable => false,
            };
            if !done {
                return None;
            }
            (w, out) = (wrest, orest);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (lo, hi);
        return None;
    }
    s.dots.get(..p.outputs)
}

/// `y[o] = bias[o] + Σ_i w[o, i] x[i]` for the packed `f32` layer `p`. Returns `false`
/// (computing nothing) when the buffers do not fit the layer.
pub(crate) fn dense_f32(p: &Packed<f32>, bias: &[f32], x: &[f32], y: &mut [f32]) -> bool {
    if x.len() != p.groups || y.len() != p.outputs || bias.len() != p.outputs {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let lanes = p.isa.lanes();
        let nb = panel_blocks(p.isa, false);
        let blocks_total = p.outputs.div_ceil(lanes);
        let mut w = p.data.as_slice();
        let mut buf = [0.0f32; 16 * 8];
        for panel_start in (0..blocks_total).step_by(nb) {
            let blocks = nb.min(blocks_total - panel_start);
            let Some((wp, wrest)) = w.split_at_checked(blocks * lanes * p.groups) else {
                return false;
            };
            let acc = &mut buf[..blocks * lanes];
            let done = match p.isa {
                Isa::Avx2 => x86::f32_avx2_panel(blocks, wp, x, acc),
                Isa::Avx512 => x86::f32_avx512_panel(blocks, wp, x, acc),
                Isa::Portable => false,
            };
            if !done {
                return false;
            }
            let first = panel_start * lanes;
            for (k, &v) in acc.iter().enumerate() {
                if let (Some(dst), Some(&b)) = (y.get_mut(first + k), bias.get(first + k)) {
                    *dst = b + v;
                }
            }
            w = wrest;
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (bias, x, y);
        false
    }
}

#[cfg(target_arch = "x86_64")]
// The accumulators are fixed-size arrays of registers indexed by block, as in the packed layout.
#[allow(clippy::needless_range_loop)]
mod x86 {
    use core::arch::x86_64::*;

    use super::{H_FLUSH, Isa};

    /// Calls `$f::<N>` for the panel's block count `N` in `1..=8`.
    macro_rules! by_blocks {
        ($blocks:expr, $f:ident ( $($arg:expr),* )) => {
            match $blocks {
                1 => $f::<1>($($arg),*),
                2 => $f::<2>($($arg),*),
                3 => $f::<3>($($arg),*),
                4 => $f::<4>($($arg),*),
                5 => $f::<5>($($arg),*),
                6 => $f::<6>($($arg),*),
                7 => $f::<7>($($arg),*),
                8 => $f::<8>($($arg),*),
                _ => return false,
            }
        };
    }

    /// AVX2 int8 panel of `blocks` (1..=4) blocks of 8 outputs.
    pub(super) fn i8_avx2_panel(blocks: usize, w: &[i8], lo: &[u32], hi: &[u32], out: &mut [i32]) -> bool {
        if !Isa::Avx2.supported(true) || w.len() < blocks * 32 * lo.len() || out.len() < blocks * 8 {
            return false;
        }
        // SAFETY: `supported` found AVX2 on this CPU; the slice lengths were checked just above
        // and each kernel only touches `w[..N * 32 * lo.len()]` and `out[..N * 8]`.
        unsafe { by_blocks!(blocks, i8_avx2(w, lo, hi, out)) }
        true
    }

    #[target_feature(enable = "avx2")]
    fn i8_avx2<const N: usize>(w: &[i8], lo: &[u32], hi: &[u32], out: &mut [i32]) {
        let ones = _mm256_set1_epi16(1);
        let k128 = _mm256_set1_epi16(128);
        let mut acc = [_mm256_setzero_si256(); N];
        let mut acc_h = [_mm256_setzero_si256(); N];
        for (g, ((wg, &l), &h)) in w.chunks_exact(N * 32).zip(lo).zip(hi).enumerate() {
            let bl = _mm256_set1_epi32(l as i32);
            let bh = _mm256_set1_epi32(h as i32);
            for b in 0..N {
                let Some(wb) = wg.get(b * 32..b * 32 + 32) else {
                    return;
                };
                // SAFETY: `wb` is exactly 32 bytes; unaligned load.
                let wv = unsafe { _mm256_loadu_si256(wb.as_ptr().cast()) };
                // l-pairs: |l0 w0 + l1 w1| <= 32 258, no saturation; widened to i32 at once.
                acc[b] = _mm256_add_epi32(acc[b], _mm256_madd_epi16(_mm256_maddubs_epi16(bl, wv), ones));
                // h-pairs: |h0 w0 + h1 w1| <= 254; summed in i16 for at most H_FLUSH groups.
                acc_h[b] = _mm256_add_epi16(acc_h[b], _mm256_maddubs_epi16(bh, wv));
            }
            if g % H_FLUSH == H_FLUSH - 1 {
                for b in 0..N {
                    acc[b] = _mm256_add_epi32(acc[b], _mm256_madd_epi16(acc_h[b], k128));
                    acc_h[b] = _mm256_setzero_si256();
                }
            }
        }
        for b in 0..N {
            acc[b] = _mm256_add_epi32(acc[b], _mm256_madd_epi16(acc_h[b], k128));
            let Some(ob) = out.get_mut(b * 8..b * 8 + 8) else {
                return;
            };
            // SAFETY: `ob` is exactly 8 i32 = 32 bytes; unaligned store.
            unsafe { _mm256_storeu_si256(ob.as_mut_ptr().cast(), acc[b]) };
        }
    }

    /// AVX-512 VNNI int8 panel of `blocks` (1..=8) blocks of 16 outputs.
    pub(super) fn i8_vnni_panel(blocks: usize, w: &[i8], codes: &[u32], out: &mut [i32]) -> bool {
        if !Isa::Avx512.supported(true) || w.len() < blocks * 64 * codes.len() || out.len() < blocks * 16 {
            return false;
        }
        // SAFETY: `supported` found AVX-512 F, BW and VNNI on this CPU; lengths checked above.
        unsafe { by_blocks!(blocks, i8_vnni(w, codes, out)) }
        true
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn i8_vnni<const N: usize>(w: &[i8], codes: &[u32], out: &mut [i32]) {
        let mut acc = [_mm512_setzero_si512(); N];
        for (wg, &u) in w.chunks_exact(N * 64).zip(codes) {
            let bu = _mm512_set1_epi32(u as i32);
            for b in 0..N {
                let Some(wb) = wg.get(b * 64..b * 64 + 64) else {
                    return;
                };
                // SAFETY: `wb` is exactly 64 bytes; unaligned load.
                let wv = unsafe { _mm512_loadu_si512(wb.as_ptr().cast()) };
                // Four u8 × i8 products per lane, added to the i32 lane without saturation.
                acc[b] = _mm512_dpbusd_epi32(acc[b], bu, wv);
            }
        }
        for b in 0..N {
            let Some(ob) = out.get_mut(b * 16..b * 16 + 16) else {
                return;
            };
            // SAFETY: `ob` is exactly 16 i32 = 64 bytes; unaligned store.
            unsafe { _mm512_storeu_si512(ob.as_mut_ptr().cast(), acc[b]) };
        }
    }

    /// AVX2 + FMA `f32` panel of `blocks` (1..=8) blocks of 8 outputs.
    pub(super) fn f32_avx2_panel(blocks: usize, w: &[f32], x: &[f32], out: &mut [f32]) -> bool {
        if !Isa::Avx2.supported(false) || w.len() < blocks * 8 * x.len() || out.len() < blocks * 8 {
            return false;
        }
        // SAFETY: `supported` found AVX2 and FMA on this CPU; lengths checked above.
        unsafe { by_blocks!(blocks, f32_avx2(w, x, out)) }
        true
    }

    #[target_feature(enable = "avx2,fma")]
    fn f32_avx2<const N: usize>(w: &[f32], x: &[f32], out: &mut [f32]) {
        let mut acc = [_mm256_setzero_ps(); N];
        for (wi, &xv) in w.chunks_exact(N * 8).zip(x) {
            let bx = _mm256_set1_ps(xv);
            for b in 0..N {
                let Some(wb) = wi.get(b * 8..b * 8 + 8) else {
                    return;
                };
                // SAFETY: `wb` is exactly 8 f32; unaligned load.
                let wv = unsafe { _mm256_loadu_ps(wb.as_ptr()) };
                acc[b] = _mm256_fmadd_ps(wv, bx, acc[b]);
            }
        }
        for b in 0..N {
            let Some(ob) = out.get_mut(b * 8..b * 8 + 8) else {
                return;
            };
            // SAFETY: `ob` is exactly 8 f32; unaligned store.
            unsafe { _mm256_storeu_ps(ob.as_mut_ptr(), acc[b]) };
        }
    }

    /// AVX-512F `f32` panel of `blocks` (1..=8) blocks of 16 outputs.
    pub(super) fn f32_avx512_panel(blocks: usize, w: &[f32], x: &[f32], out: &mut [f32]) -> bool {
        if !Isa::Avx512.supported(false) || w.len() < blocks * 16 * x.len() || out.len() < blocks * 16 {
            return false;
        }
        // SAFETY: `supported` found AVX-512 F and BW on this CPU; lengths checked above.
        unsafe { by_blocks!(blocks, f32_avx512(w, x, out)) }
        true
    }

    #[target_feature(enable = "avx512f")]
    fn f32_avx512<const N: usize>(w: &[f32], x: &[f32], out: &mut [f32]) {
        let mut acc = [_mm512_setzero_ps(); N];
        for (wi, &xv) in w.chunks_exact(N * 16).zip(x) {
            let bx = _mm512_set1_ps(xv);
            for b in 0..N {
                let Some(wb) = wi.get(b * 16..b * 16 + 16) else {
                    return;
                };
                // SAFETY: `wb` is exactly 16 f32; unaligned load.
                let wv = unsafe { _mm512_loadu_ps(wb.as_ptr()) };
                acc[b] = _mm512_fmadd_ps(wv, bx, acc[b]);
            }
        }
        for b in 0..N {
            let Some(ob) = out.get_mut(b * 16..b * 16 + 16) else {
                return;
            };
            // SAFETY: `ob` is exactly 16 f32; unaligned store.
            unsafe { _mm512_storeu_ps(ob.as_mut_ptr(), acc[b]) };
        }
    }
}
