//! The edge runtime: runs one of a bundle's obfuscator nets on one sample, in `f32` or int8.
//!
//! This is everything a device needs after it has a bundle: [`Runtime::from_bytes`] validates
//! the bundle (version, shapes, sha256 trailer and per-net digests) and prepares the nets; a
//! [`NetChoice`] picks the net for each sample; [`Runtime::obfuscate`] runs it; [`Wire`]
//! encodes the result for sending. No engine, no allocation per sample (the caller owns a
//! [`Scratch`]), no floating-point library calls, so it builds with `--no-default-features`
//! for targets without `std`.
//!
//! # Numerics
//!
//! * **`f32` nets** compute exactly the layers of `FORMAT.md` in `f32`: raw bytes are first
//!   normalised (`(r * scale - mean) / std`), then each layer is a dense product or a direct
//!   convolution with zero padding, plus bias, plus activation. Only the summation order differs
//!   from a training engine's (the parity test holds the two within 1e-5).
//! * **int8 nets** ([`crate::Bundle::quantize_int8`]) keep per-output-channel symmetric int8
//!   weights `w = q_w * s_w[o]`. Every layer input is held as `u8` codes with an affine map
//!   `x = a * u + c`: raw sensor bytes are used as they are, with the normalisation folded into
//!   `(a, c)` (no rounding at all on the first layer's input); hidden activations are quantised
//!   per sample to the full `0..=255` range between their minimum (or 0, whichever is lower) and
//!   maximum. A layer is then `y[o] = b[o] + s_w[o] * (a * Σ q_w u + c * Σ q_w)`, where both
//!   sums run over the same taps in `i32` (`|q_w u| <= 127 * 255`; rows longer than 16 384 taps
//!   are summed in chunks into `i64`, so nothing overflows). Zero padding of a convolution is
//!   padding in the input's real-valued space, handled exactly by leaving padded taps out of
//!   both sums.
//!
//! # Why the choice of net must be unpredictable
//!
//! The server trained all K nets and knows their weights. Its one uncertainty about a sample is
//! *which* net the device used; an attacker who can predict the index only has to invert a single
//! known net. So the index must come from a source the server cannot predict or observe: the OS's
//! cryptographic generator ([`OsRandom`], the default with `std`) or a hardware TRNG on a
//! microcontroller (implement [`RandomSource`]). A counter, a timestamp, a seed shared with the
//! server, or [`SeededRandom`] would let the server replay the choices. The index is never sent
//! and nothing in the output encodes it. This hides the choice; it does not by itself make the
//! output hard to invert — whether the nets' outputs betray which net made them, and how well
//! they can be inverted, is measured by `obfnet attack` (an empirical result, not a guarantee).
//!
//! # Examples
//!
//! ```
//! # fn demo(bundle_bytes: &[u8], image: &[u8]) -> obfnet_core::Result<()> {
//! use obfnet_core::runtime::{NetChoice, Runtime, Wire};
//! # #[cfg(feature = "std")] {
//! let rt = Runtime::from_bytes(bundle_bytes)?;
//! let mut scratch = rt.scratch();
//! let mut out = vec![0.0f32; rt.output_len()];
//! let mut rng = obfnet_core::runtime::OsRandom;
//! let _net = rt.obfuscate(image, NetChoice::Random(&mut rng), &mut out, &mut scratch)?;
//! let mut payload = Vec::new();
//! Wire::U8.encode(&out, rt.normalisation(), &mut payload); // same size and dtype as `image`
//! # }
//! # Ok(()) }
//! ```

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::quant::round;
use crate::{Activation, Bundle, DType, Error, LayerParams, LayerSpec, Normalisation, Result};

/// Rows longer than this are summed in `i32` chunks of this length, then in `i64`.
const I32_CHUNK: usize = 16_384;

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

/// How an obfuscated sample is encoded for the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// The net's `f32` outputs (model-input space), little-endian: 4 bytes per value.
    F32,
    /// One byte per value in the raw sensor range: `clamp(round(invert(y)), 0, 255)` with the
    /// bundle's normalisation. The sample then has the size and dtype of a raw one, and the
    /// server normalises it exactly like a raw sample, so nothing tells the two apart on the
    /// wire. Values outside the raw range are clipped (its accuracy cost is measured by
    /// `obfnet evaluate --wire u8`).
    U8,
}

impl Wire {
    /// Appends the encoding of `values` to `dst`.
    pub fn encode(self, values: &[f32], norm: Normalisation, dst: &mut Vec<u8>) {
        match self {
            Wire::F32 => {
                dst.reserve(values.len() * 4);
                for v in values {
                    dst.extend_from_slice(&v.to_le_bytes());
                }
            }
            Wire::U8 => {
                dst.reserve(values.len());
                dst.extend(values.iter().map(|&v| to_raw_byte(norm, v)));
            }
        }
    }

    /// Bytes per value on the wire.
    pub fn bytes_per_value(self) -> usize {
        match self {
            Wire::F32 => 4,
            Wire::U8 => 1,
        }
    }

    /// The values the server will see after decoding (and, for `U8`, normalising) `values`'
    /// encoding: identity for `F32`, the quantisation round trip for `U8`.
    pub fn round_trip(self, values: &mut [f32], norm: Normalisation) {
        if self == Wire::U8 {
            for v in values {
                *v = norm.apply(to_raw_byte(norm, *v));
            }
        }
    }
}

/// `clamp(round(invert(v)), 0, 255)`; NaN maps to 0.
fn to_raw_byte(norm: Normalisation, v: f32) -> u8 {
    let r = norm.invert(v);
    if r.is_nan() {
        return 0;
    }
    round(r.clamp(0.0, 255.0)) as u8
}

/// Geometry of one prepared layer.
#[derive(Clone, Debug)]
enum Geometry {
    Dense {
        inputs: usize,
        outputs: usize,
    },
    Conv {
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        in_h: usize,
        in_w: usize,
        out_h: usize,
        out_w: usize,
    },
}

impl Geometry {
    fn of(spec: &LayerSpec) -> Geometry {
        match *spec {
            LayerSpec::Dense { inputs, outputs, .. } => Geometry::Dense { inputs, outputs },
            LayerSpec::Conv2d {
                in_channels,
                out_channels,
                kernel,
                stride,
                padding,
                in_height,
                in_width,
                ..
            } => {
                let shape = spec.output_shape();
                Geometry::Conv {
                    in_ch: in_channels,
                    out_ch: out_channels,
                    kernel,
                    stride,
                    pad: padding,
                    in_h: in_height,
                    in_w: in_width,
                    out_h: shape.get(1).copied().unwrap_or(0),
                    out_w: shape.get(2).copied().unwrap_or(0),
                }
            }
        }
    }

    fn output_len(&self) -> usize {
        match *self {
            Geometry::Dense { outputs, .. } => outputs,
            Geometry::Conv {
                out_ch, out_h, out_w, ..
            } => out_ch * out_h * out_w,
        }
    }
}

#[derive(Clone, Debug)]
enum Params {
    F32 {
        weight: Vec<f32>,
        bias: Vec<f32>,
    },
    I8 {
        weight: Vec<i8>,
        scale: Vec<f32>,
        bias: Vec<f32>,
        /// Dense only: `Σ_i q[o, i]` per output (the conv path sums in-bounds taps itself).
        row_sums: Vec<i64>,
    },
}

#[derive(Clone, Debug)]
struct Layer {
    geometry: Geometry,
    act: Activation,
    params: Params,
}

/// Buffers for one forward pass; make one per thread with [`Runtime::scratch`] and reuse it.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    /// `u8` activation codes, held as `i16` so the products feed 16-bit multiply-adds.
    codes: Vec<i16>,
    /// int8 convolution accumulators: Σ q_w u and Σ q_w per output value.
    dot: Vec<i64>,
    sum_q: Vec<i64>,
}

/// Summary of one net, for reports.
#[derive(Clone, Debug, PartialEq)]
pub struct NetInfo {
    /// Name from the manifest.
    pub name: String,
    /// Multiply-adds per sample.
    pub macs: u64,
    /// Bytes of parameters as held in memory (int8 weights count one byte each; scales, biases
    /// and row sums are included).
    pub param_bytes: usize,
}

/// Prepared obfuscator nets, ready to run one sample at a time.
#[derive(Clone, Debug)]
pub struct Runtime {
    nets: Vec<Vec<Layer>>,
    info: Vec<NetInfo>,
    input_len: usize,
    output_len: usize,
    max_width: usize,
    normalisation: Normalisation,
    /// `(normalise(0), normalise(255))`, the range of [`Activation::Clip`].
    clip: (f32, f32),
    weights: DType,
}

impl Runtime {
    /// Parses, fully validates ([`Bundle::from_bytes`]) and prepares a bundle.
    ///
    /// # Errors
    ///
    /// Every error of [`Bundle::from_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Runtime> {
        Runtime::from_bundle(&Bundle::from_bytes(bytes)?)
    }

    /// Prepares an already validated bundle (copies its parameters into run-time layouts).
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`] if a layer's parameters are absent (cannot happen for a
    /// bundle from [`Bundle::new`], [`Bundle::from_bytes`] or [`Bundle::quantize_int8`]).
    pub fn from_bundle(bundle: &Bundle) -> Result<Runtime> {
        let m = &bundle.manifest;
        let input_len = m.input.numel();
        let mut max_width = input_len;
        let mut nets = Vec::with_capacity(m.nets.len());
        let mut info = Vec::with_capacity(m.nets.len());
        for (i, net) in m.nets.iter().enumerate() {
            let mut layers = Vec::with_capacity(net.layers.len());
            let mut param_bytes = 0usize;
            for (j, spec) in net.layers.iter().enumerate() {
                let geometry = Geometry::of(spec);
                max_width = max_width.max(geometry.output_len());
                let params = match bundle.layer_params(i, j) {
                    Some(LayerParams::F32 { weight, bias }) => {
                        param_bytes += 4 * (weight.len() + bias.len());
                        Params::F32 {
                            weight: weight.to_vec(),
                            bias: bias.to_vec(),
                        }
                    }
                    Some(LayerParams::I8 { weight, scale, bias }) => {
                        let row_sums: Vec<i64> = match geometry {
                            Geometry::Dense { inputs, .. } => weight
                                .chunks(inputs.max(1))
                                .map(|row| row.iter().map(|&q| i64::from(q)).sum())
                                .collect(),
                            Geometry::Conv { .. } => Vec::new(),
                        };
                        param_bytes += weight.len() + 4 * (scale.len() + bias.len()) + 8 * row_sums.len();
                        Params::I8 {
                            weight: weight.to_vec(),
                            scale: scale.to_vec(),
                            bias: bias.to_vec(),
                            row_sums,
                        }
                    }
                    None => {
                        return Err(Error::MissingTensor {
                            tensor: crate::weight_tensor_name(i, j),
                        });
                    }
                };
                layers.push(Layer {
                    geometry,
                    act: spec.activation(),
                    params,
                });
            }
            nets.push(layers);
            info.push(NetInfo {
                name: net.name.clone(),
                macs: net.macs(),
                param_bytes,
            });
        }
        Ok(Runtime {
            nets,
            info,
            input_len,
            output_len: m.output.numel(),
            max_width,
            normalisation: m.normalisation,
            clip: (m.normalisation.apply(0), m.normalisation.apply(255)),
            weights: m.weights,
        })
    }

    /// Number of nets (K).
    pub fn k(&self) -> usize {
        self.nets.len()
    }

    /// Values per input sample.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Values per output sample.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// The bundle's normalisation of raw bytes.
    pub fn normalisation(&self) -> Normalisation {
        self.normalisation
    }

    /// `F32` or `I8` weights.
    pub fn weights(&self) -> DType {
        self.weights
    }

    /// Name, multiply-adds and parameter bytes of every net.
    pub fn nets(&self) -> &[NetInfo] {
        &self.info
    }

    /// Buffers sized for the widest layer of any net.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            a: vec![0.0; self.max_width],
            b: vec![0.0; self.max_width],
            codes: vec![0; self.max_width],
            dot: vec![0; self.max_width],
            sum_q: vec![0; self.max_width],
        }
    }

    /// Picks a net with `choice` and runs it on one raw sample; returns the net's index.
    ///
    /// `raw` holds [`Runtime::input_len`] sensor bytes (e.g. an MNIST image's pixels) and `out`
    /// receives [`Runtime::output_len`] values in the server model's input space.
    ///
    /// # Errors
    ///
    /// [`Error::BufferLength`] for wrong buffer sizes, [`Error::NoSuchNet`] for a fixed index
    /// out of range, [`Error::Randomness`] from the random source.
    pub fn obfuscate(
        &self,
        raw: &[u8],
        choice: NetChoice<'_>,
        out: &mut [f32],
        scratch: &mut Scratch,
    ) -> Result<usize> {
        let net = match choice {
            NetChoice::Fixed(i) => i,
            NetChoice::Random(rng) => uniform_index(rng, self.k())?,
        };
        self.run_raw(net, raw, out, scratch)?;
        Ok(net)
    }

    /// Runs net `net` on one raw sample (bytes, normalised with the bundle's normalisation).
    ///
    /// # Errors
    ///
    /// As [`Runtime::obfuscate`].
    pub fn run_raw(&self, net: usize, raw: &[u8], out: &mut [f32], scratch: &mut Scratch) -> Result<()> {
        self.check(net, raw.len(), out.len())?;
        let n = self.normalisation;
        // x = (r * scale - mean) / std = a * r + c
        let (a, c) = (n.scale / n.std, -n.mean / n.std);
        let Scratch { a: buf, codes, .. } = scratch;
        match self.weights {
            DType::F32 => {
                let x = prefix_mut(buf, raw.len());
                for (dst, &r) in x.iter_mut().zip(raw) {
                    *dst = n.apply(r);
                }
            }
            DType::I8 => {
                for (dst, &r) in prefix_mut(codes, raw.len()).iter_mut().zip(raw) {
                    *dst = i16::from(r);
                }
            }
        }
        self.forward(net, (a, c), out, scratch)
    }

    /// Runs net `net` on one sample already in model-input space (normalised `f32`).
    ///
    /// For int8 nets the input is first quantised to 8 bits per sample (like a hidden layer);
    /// prefer [`Runtime::run_raw`] when the raw bytes are available.
    ///
    /// # Errors
    ///
    /// As [`Runtime::obfuscate`].
    pub fn run_f32(&self, net: usize, input: &[f32], out: &mut [f32], scratch: &mut Scratch) -> Result<()> {
        self.check(net, input.len(), out.len())?;
        let affine = match self.weights {
            DType::F32 => {
                prefix_mut(&mut scratch.a, input.len()).copy_from_slice(input);
                (1.0, 0.0)
            }
            DType::I8 => quantize_activations(input, prefix_mut(&mut scratch.codes, input.len())),
        };
        self.forward(net, affine, out, scratch)
    }

    fn check(&self, net: usize, input: usize, output: usize) -> Result<()> {
        if net >= self.k() {
            return Err(Error::NoSuchNet {
                index: net,
                k: self.k(),
            });
        }
        if input != self.input_len {
            return Err(Error::BufferLength {
                what: "input",
                expected: self.input_len,
                found: input,
            });
        }
        if output != self.output_len {
            return Err(Error::BufferLength {
                what: "output",
                expected: self.output_len,
                found: output,
            });
        }
        Ok(())
    }

    /// The forward pass. The input is in `scratch.a` (f32 nets) or `scratch.codes` with the
    /// affine map `affine` (int8 nets); the result goes to `out`.
    fn forward(
        &self,
        net: usize,
        mut affine: (f32, f32),
        out: &mut [f32],
        scratch: &mut Scratch,
    ) -> Result<()> {
        let layers = self.nets.get(net).map(Vec::as_slice).unwrap_or_default();
        let Scratch {
            a,
            b,
            codes,
            dot,
            sum_q,
        } = scratch;
        let (mut cur, mut next) = (a, b);
        let mut width = self.input_len;
        for (j, layer) in layers.iter().enumerate() {
            let out_len = layer.geometry.output_len();
            let last = j + 1 == layers.len();
            let y: &mut [f32] = if last {
                &mut *out
            } else {
                prefix_mut(next, out_len)
            };
            match &layer.params {
                Params::F32 { weight, bias } => {
                    let x = cur.get(..width).unwrap_or_default();
                    match layer.geometry {
                        Geometry::Dense { inputs, .. } => dense_f32(weight, bias, inputs, x, y),
                        Geometry::Conv { .. } => conv_f32(&layer.geometry, weight, bias, x, y),
                    }
                }
                Params::I8 {
                    weight,
                    scale,
                    bias,
                    row_sums,
                } => {
                    if j > 0 {
                        let x = cur.get(..width).unwrap_or_default();
                        affine = quantize_activations(x, prefix_mut(codes, width));
                    }
                    let u = codes.get(..width).unwrap_or_default();
                    match layer.geometry {
                        Geometry::Dense { inputs, .. } => {
                            dense_i8(weight, scale, bias, row_sums, inputs, u, affine, y)
                        }
                        Geometry::Conv { .. } => {
                            let acc = (prefix_mut(dot, out_len), prefix_mut(sum_q, out_len));
                            conv_i8(&layer.geometry, weight, scale, bias, u, affine, acc, y)
                        }
                    }
                }
            }
            match layer.act {
                Activation::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
                Activation::Clip => {
                    let (lo, hi) = self.clip;
                    y.iter_mut().for_each(|v| *v = v.clamp(lo, hi));
                }
                Activation::None => {}
            }
            width = out_len;
            core::mem::swap(&mut cur, &mut next);
        }
        Ok(())
    }
}

/// The first `len` elements of `v` (the scratch is sized for the widest layer, so this never
/// falls back to the empty slice for a runtime's own layers).
fn prefix_mut<T>(v: &mut [T], len: usize) -> &mut [T] {
    let n = len.min(v.len());
    v.get_mut(..n).unwrap_or_default()
}

/// Quantises `x` to `u8` codes (0..=255, held in `i16`) with `x ≈ a * u + c`,
/// `c = min(0, min x)`, over the full range.
fn quantize_activations(x: &[f32], codes: &mut [i16]) -> (f32, f32) {
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

fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
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

fn dot_i8(w: &[i8], u: &[i16]) -> i64 {
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
fn dense_f32(w: &[f32], bias: &[f32], inputs: usize, x: &[f32], y: &mut [f32]) {
    for ((yo, row), &b) in y.iter_mut().zip(w.chunks_exact(inputs.max(1))).zip(bias) {
        *yo = b + dot_f32(row, x);
    }
}

/// int8 dense layer; see the module docs for the arithmetic.
#[allow(clippy::too_many_arguments)]
fn dense_i8(
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
        let dot = dot_i8(row, u) as f32;
        *yo = b + s * (a * dot + c * sum_q as f32);
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
fn conv_f32(g: &Geometry, w: &[f32], bias: &[f32], x: &[f32], y: &mut [f32]) {
    let (out_h, out_w, stride, kernel, pad) = match *g {
        Geometry::Conv {
            out_h,
            out_w,
            stride,
            kernel,
            pad,
            ..
        } => (out_h, out_w, stride, kernel, pad),
        Geometry::Dense { .. } => return,
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
fn conv_i8(
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
        Geometry::Dense { .. } => return,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uniform_index_covers_all_and_is_in_range() {
        let mut rng = SeededRandom::new(1);
        let mut counts = [0usize; 3];
        for _ in 0..3000 {
            counts[uniform_index(&mut rng, 3).unwrap()] += 1;
        }
        // Each count is Binomial(3000, 1/3): mean 1000, sd 25.8; 6 sd either side.
        for c in counts {
            assert!((845..=1155).contains(&c), "{counts:?}");
        }
        assert!(matches!(uniform_index(&mut rng, 0), Err(Error::NoSuchNet { .. })));
        assert_eq!(uniform_index(&mut rng, 1).unwrap(), 0);
    }

    #[test]
    fn seeded_random_is_reproducible() {
        let (mut a, mut b) = (SeededRandom::new(5), SeededRandom::new(5));
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        a.fill_bytes(&mut x).unwrap();
        b.fill_bytes(&mut y).unwrap();
        assert_eq!(x, y);
        assert_ne!(x, [0u8; 13]);
    }

    #[test]
    fn activations_quantise_to_full_range() {
        let x = [0.0, 1.0, 2.0, 0.5];
        let mut u = [0i16; 4];
        let (a, c) = quantize_activations(&x, &mut u);
        assert_eq!((u, c), ([0, 128, 255, 64], 0.0));
        assert!((a - 2.0 / 255.0).abs() < 1e-9);
        let x = [-1.0, 1.0];
        let (a, c) = quantize_activations(&x, &mut u[..2]);
        assert_eq!((&u[..2], c), (&[0i16, 255][..], -1.0));
        assert!((a * 255.0 + c - 1.0).abs() < 1e-6);
        let (_, c) = quantize_activations(&[0.0; 2], &mut u[..2]);
        assert_eq!((&u[..2], c), (&[0i16, 0][..], 0.0));
    }

    #[test]
    fn dot_products_match_naive_sums() {
        let w: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
        assert!((dot_f32(&w, &x) - naive).abs() < 1e-5);

        let w: Vec<i8> = (0..40_000).map(|i| ((i * 37) % 255 - 127) as i8).collect();
        let u: Vec<i16> = (0..40_000).map(|i| ((i * 11) % 256) as i16).collect();
        let naive: i64 = w.iter().zip(&u).map(|(&a, &b)| i64::from(a) * i64::from(b)).sum();
        assert_eq!(dot_i8(&w, &u), naive);
        // The worst case that would overflow a single i32 accumulator chain.
        let w = vec![-127i8; 200_000];
        let u = vec![255i16; 200_000];
        assert_eq!(dot_i8(&w, &u), -127 * 255 * 200_000);
    }

    #[test]
    fn wire_u8_clamps_and_round_trips() {
        let n = Normalisation::MNIST;
        let mut out = Vec::new();
        Wire::U8.encode(&[n.apply(0), n.apply(200), 1e9, -1e9, f32::NAN], n, &mut out);
        assert_eq!(out, vec![0, 200, 255, 0, 0]);
        let mut v = [n.apply(17) + 1e-4];
        Wire::U8.round_trip(&mut v, n);
        assert_eq!(v[0], n.apply(17));
        let mut out = Vec::new();
        Wire::F32.encode(&[1.5], n, &mut out);
        assert_eq!(out, 1.5f32.to_le_bytes().to_vec());
    }
}
