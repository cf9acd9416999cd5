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
//! # Kernels
//!
//! Dense layers run on SIMD kernels when the CPU has them (AVX2 + FMA, AVX-512 with VNNI for
//! int8; chosen at load by [`Isa::detect`], the one module of the workspace allowed `unsafe`),
//! with the weights packed at load into panels so that one broadcast activation feeds a whole
//! register of outputs. The int8 kernels compute the same exact integer sums as the portable
//! ones, so int8 results are bit-identical whichever kernel runs; `f32` results differ only by
//! summation order. [`Kernels::Portable`] forces the safe portable kernels (the reference).
//! Convolutions always use the portable kernels.
//!
//! # Memory budget
//!
//! A [`RuntimeConfig`] carries a memory budget (256 MiB by default with `std`; required
//! without). At load, before allocating anything from the bundle's declared sizes, the runtime
//! computes the bytes it will hold — weights in run-time layout plus one [`Scratch`], whose
//! buffers depend on the widest layer and the weight type (no int8 or `i64` buffers for `f32`
//! bundles) — and refuses a bundle that needs more with [`Error::MemoryBudget`]. A bundle of a
//! few kilobytes can declare 2^28 activations; this is what stops it.
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

use crate::{Activation, Bundle, DType, Error, LayerParams, LayerSpec, Normalisation, Result};

mod kernels;
mod random;
mod simd;
mod wire;

use kernels::{conv_f32, conv_i8, dense_f32, dense_i8, dense_i8_from_dots, quantize_activations};
#[cfg(feature = "std")]
pub use random::OsRandom;
pub use random::{NetChoice, RandomSource, SeededRandom, uniform_index};
pub use simd::Isa;
use simd::{I8Scratch, Packed};
pub use wire::Wire;

/// Geometry of one prepared layer.
#[derive(Clone, Debug)]
pub(super) enum Geometry {
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

    pub(super) fn output_len(&self) -> usize {
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
        /// Dense layers: the weights in the SIMD kernel's panel layout (when one runs here).
        packed: Option<Packed<f32>>,
    },
    I8 {
        weight: Vec<i8>,
        scale: Vec<f32>,
        bias: Vec<f32>,
        /// Dense only: `Σ_i q[o, i]` per output (the conv path sums in-bounds taps itself).
        row_sums: Vec<i64>,
        /// Dense layers: the weights in the SIMD kernel's panel layout (when one runs here).
        packed: Option<Packed<i8>>,
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
    /// Activation and accumulator buffers of the int8 SIMD kernels.
    simd: I8Scratch,
}

impl Scratch {
    /// Grows the buffers to `plan` if they are smaller (a scratch made by another runtime):
    /// allocates only then, never per sample with the runtime's own scratch.
    fn fit(&mut self, plan: &ScratchPlan) {
        fn grow<T: Clone + Default>(v: &mut Vec<T>, n: usize) {
            if v.len() < n {
                v.resize(n, T::default());
            }
        }
        grow(&mut self.a, plan.width);
        grow(&mut self.b, plan.width);
        grow(&mut self.codes, plan.codes);
        grow(&mut self.dot, plan.conv_acc);
        grow(&mut self.sum_q, plan.conv_acc);
        if !self.simd.fits(plan.simd) {
            self.simd = I8Scratch::new(plan.simd);
        }
    }
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
    plan: ScratchPlan,
    normalisation: Normalisation,
    /// `(normalise(0), normalise(255))`, the range of [`Activation::Clip`].
    clip: (f32, f32),
    weights: DType,
    isa: (Isa, Isa),
    memory_bytes: u64,
}

/// Default memory budget of [`RuntimeConfig::default`]: 256 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

/// Which kernels a runtime runs dense layers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kernels {
    /// The fastest this CPU supports ([`Isa::detect`]): SIMD where available, else portable.
    #[default]
    Auto,
    /// Always the safe portable kernels (the reference).
    Portable,
}

/// How a [`Runtime`] is prepared: its memory budget and its kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Most bytes the runtime may hold: its weights in run-time layout plus one [`Scratch`].
    /// A bundle that needs more is refused at load with [`Error::MemoryBudget`], before any
    /// buffer is allocated from its declared sizes.
    pub memory_budget: usize,
    /// Kernel selection.
    pub kernels: Kernels,
}

impl RuntimeConfig {
    /// A configuration with this memory budget (bytes) and automatic kernel selection. Devices
    /// without `std` must state their budget.
    pub fn new(memory_budget: usize) -> RuntimeConfig {
        RuntimeConfig {
            memory_budget,
            kernels: Kernels::Auto,
        }
    }
}

#[cfg(feature = "std")]
impl Default for RuntimeConfig {
    /// [`DEFAULT_MEMORY_BUDGET`] (256 MiB) and automatic kernels.
    fn default() -> RuntimeConfig {
        RuntimeConfig::new(DEFAULT_MEMORY_BUDGET)
    }
}

/// Scratch buffer lengths of a runtime (elements), fixed at load.
#[derive(Clone, Copy, Debug, Default)]
struct ScratchPlan {
    /// f32 activations (two buffers).
    width: usize,
    /// int8 nets: activation codes.
    codes: usize,
    /// int8 convolutions: i64 accumulators (two buffers).
    conv_acc: usize,
    /// int8 SIMD kernels: widest dense layer (inputs and outputs).
    simd: usize,
}

impl ScratchPlan {
    fn bytes(&self) -> u64 {
        let w = |n: usize, size: usize| (n as u64).saturating_mul(size as u64);
        w(self.width, 8)
            .saturating_add(w(self.codes, 2))
            .saturating_add(w(self.conv_acc, 16))
            .saturating_add(if self.simd > 0 {
                I8Scratch::bytes_for(self.simd) as u64
            } else {
                0
            })
    }
}

impl Runtime {
    /// Parses, fully validates ([`Bundle::from_bytes`]) and prepares a bundle, with the default
    /// configuration (256 MiB budget, automatic kernels).
    ///
    /// # Errors
    ///
    /// Every error of [`Bundle::from_bytes`]; [`Error::MemoryBudget`].
    #[cfg(feature = "std")]
    pub fn from_bytes(bytes: &[u8]) -> Result<Runtime> {
        Runtime::from_bundle(&Bundle::from_bytes(bytes)?)
    }

    /// Parses, fully validates ([`Bundle::from_bytes`]) and prepares a bundle under `config`.
    ///
    /// # Errors
    ///
    /// Every error of [`Bundle::from_bytes`]; [`Error::MemoryBudget`].
    pub fn from_bytes_with(bytes: &[u8], config: &RuntimeConfig) -> Result<Runtime> {
        Runtime::from_bundle_with(&Bundle::from_bytes(bytes)?, config)
    }

    /// Prepares an already validated bundle with the default configuration.
    ///
    /// # Errors
    ///
    /// As [`Runtime::from_bundle_with`].
    #[cfg(feature = "std")]
    pub fn from_bundle(bundle: &Bundle) -> Result<Runtime> {
        Runtime::from_bundle_with(bundle, &RuntimeConfig::default())
    }

    /// Prepares an already validated bundle (copies its parameters into run-time layouts, packs
    /// dense layers for the SIMD kernels).
    ///
    /// The memory the runtime will hold — weights in run-time layout plus one [`Scratch`],
    /// whose buffers are sized by the widest layer and by the weight type — is computed from
    /// the manifest first and checked against `config.memory_budget` before anything is
    /// allocated.
    ///
    /// # Errors
    ///
    /// [`Error::MemoryBudget`] when the bundle needs more than the budget;
    /// [`Error::MissingTensor`] if a layer's parameters are absent (cannot happen for a
    /// bundle from [`Bundle::new`], [`Bundle::from_bytes`] or [`Bundle::quantize_int8`]).
    pub fn from_bundle_with(bundle: &Bundle, config: &RuntimeConfig) -> Result<Runtime> {
        let m = &bundle.manifest;
        let (isa_f32, isa_i8) = match config.kernels {
            Kernels::Auto => Isa::detect(),
            Kernels::Portable => (Isa::Portable, Isa::Portable),
        };
        let input_len = m.input.numel();
        let int8 = m.weights == DType::I8;
        // 1. Plan: scratch and weight bytes from the manifest alone.
        let mut plan = ScratchPlan {
            width: input_len,
            ..ScratchPlan::default()
        };
        let mut weight_bytes = 0u64;
        for net in &m.nets {
            for spec in &net.layers {
                let g = Geometry::of(spec);
                plan.width = plan.width.max(g.output_len());
                let params = spec.weight_shape().iter().product::<usize>() as u64;
                let outs = spec.bias_shape().iter().product::<usize>() as u64;
                weight_bytes = weight_bytes.saturating_add(match (&g, int8) {
                    (Geometry::Dense { inputs, outputs }, false) if isa_f32 != Isa::Portable => {
                        4 * (simd::padded_outputs(isa_f32, *outputs) * inputs) as u64 + 4 * outs
                    }
                    (Geometry::Dense { inputs, outputs }, true)
                        if isa_i8 != Isa::Portable && *inputs <= simd::MAX_I8_INPUTS =>
                    {
                        (simd::padded_outputs(isa_i8, *outputs) * inputs.div_ceil(4) * 4) as u64 + 16 * outs
                    }
                    (_, false) => 4 * (params + outs),
                    (_, true) => params + 16 * outs,
                });
                if int8 {
                    match g {
                        Geometry::Conv { .. } => plan.conv_acc = plan.conv_acc.max(g.output_len()),
                        Geometry::Dense { inputs, outputs } if isa_i8 != Isa::Portable => {
                            plan.simd = plan.simd.max(inputs).max(outputs);
                        }
                        Geometry::Dense { .. } => {}
                    }
                }
            }
        }
        if int8 {
            plan.codes = plan.width;
        }
        let scratch_bytes = plan.bytes();
        let needed = weight_bytes.saturating_add(scratch_bytes);
        if needed > config.memory_budget as u64 {
            return Err(Error::MemoryBudget {
                needed,
                weights: weight_bytes,
                scratch: scratch_bytes,
                budget: config.memory_budget as u64,
            });
        }
        // 2. Build.
        let mut nets = Vec::with_capacity(m.nets.len());
        let mut info = Vec::with_capacity(m.nets.len());
        for (i, net) in m.nets.iter().enumerate() {
            let mut layers = Vec::with_capacity(net.layers.len());
            let mut param_bytes = 0usize;
            for (j, spec) in net.layers.iter().enumerate() {
                let geometry = Geometry::of(spec);
                let params = match bundle.layer_params(i, j) {
                    Some(LayerParams::F32 { weight, bias }) => {
                        param_bytes += 4 * (weight.len() + bias.len());
                        let packed = match geometry {
                            Geometry::Dense { inputs, outputs } => {
                                simd::pack_f32(isa_f32, weight, inputs, outputs)
                            }
                            Geometry::Conv { .. } => None,
                        };
                        Params::F32 {
                            weight: if packed.is_some() {
                                Vec::new()
                            } else {
                                weight.to_vec()
                            },
                            bias: bias.to_vec(),
                            packed,
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
                        let packed = match geometry {
                            Geometry::Dense { inputs, outputs } => {
                                simd::pack_i8(isa_i8, weight, inputs, outputs)
                            }
                            Geometry::Conv { .. } => None,
                        };
                        Params::I8 {
                            weight: if packed.is_some() {
                                Vec::new()
                            } else {
                                weight.to_vec()
                            },
                            scale: scale.to_vec(),
                            bias: bias.to_vec(),
                            row_sums,
                            packed,
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
            plan,
            normalisation: m.normalisation,
            clip: (m.normalisation.apply(0), m.normalisation.apply(255)),
            weights: m.weights,
            isa: (isa_f32, isa_i8),
            memory_bytes: needed,
        })
    }

    /// The instruction sets the dense layers run with: `(f32 kernels, int8 kernels)`.
    pub fn isa(&self) -> (Isa, Isa) {
        self.isa
    }

    /// Bytes of weights plus one scratch, as checked against the memory budget at load.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
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

    /// Buffers sized for the widest layer of any net (only those the weight type needs).
    pub fn scratch(&self) -> Scratch {
        let p = &self.plan;
        Scratch {
            a: vec![0.0; p.width],
            b: vec![0.0; p.width],
            codes: vec![0; p.codes],
            dot: vec![0; p.conv_acc],
            sum_q: vec![0; p.conv_acc],
            simd: if p.simd > 0 {
                I8Scratch::new(p.simd)
            } else {
                I8Scratch::default()
            },
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
        scratch.fit(&self.plan);
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
        scratch.fit(&self.plan);
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
        scratch.fit(&self.plan);
        let Scratch {
            a,
            b,
            codes,
            dot,
            sum_q,
            simd: simd_scratch,
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
                Params::F32 { weight, bias, packed } => {
                    let x = cur.get(..width).unwrap_or_default();
                    match layer.geometry {
                        Geometry::Dense { .. } if packed.is_some() => {
                            if !packed.as_ref().is_some_and(|p| simd::dense_f32(p, bias, x, y)) {
                                y.fill(f32::NAN); // unreachable: the scratch was checked
                            }
                        }
                        Geometry::Dense { inputs, .. } => dense_f32(weight, bias, inputs, x, y),
                        Geometry::Conv { .. } => conv_f32(&layer.geometry, weight, bias, x, y),
                    }
                }
                Params::I8 {
                    weight,
                    scale,
                    bias,
                    row_sums,
                    packed,
                } => {
                    if j > 0 {
                        let x = cur.get(..width).unwrap_or_default();
                        affine = quantize_activations(x, prefix_mut(codes, width));
                    }
                    let u = codes.get(..width).unwrap_or_default();
                    match layer.geometry {
                        Geometry::Dense { .. } if packed.is_some() => {
                            match packed
                                .as_ref()
                                .and_then(|p| simd::dense_i8_dots(p, u, simd_scratch))
                            {
                                Some(dots) => dense_i8_from_dots(dots, scale, bias, row_sums, affine, y),
                                None => y.fill(f32::NAN), // unreachable: the scratch was checked
                            }
                        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
