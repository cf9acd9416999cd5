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

use kernels::{
    conv_f32, conv_f32_packed, conv_i8, dense_f32, dense_i8, dense_i8_from_dots, maxpool_f32,
    quantize_activations,
};
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
    /// Max pooling, `size × size` windows, stride `size`, no padding; no parameters.
    Pool {
        ch: usize,
        size: usize,
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
            Geometry::Pool { ch, out_h, out_w, .. } => ch * out_h * out_w,
        }
    }

    /// Values per input sample (saturating: also used on unvalidated program layers).
    fn input_len(&self) -> usize {
        match *self {
            Geometry::Dense { inputs, .. } => inputs,
            Geometry::Conv {
                in_ch, in_h, in_w, ..
            }
            | Geometry::Pool {
                ch: in_ch,
                in_h,
                in_w,
                ..
            } => crate::numel_saturating(&[in_ch, in_h, in_w]),
        }
    }

    /// Weight and bias element counts `(weights, biases)`, saturating.
    fn param_counts(&self) -> (u64, u64) {
        let mul = |f: &[usize]| f.iter().fold(1u64, |acc, &d| acc.saturating_mul(d as u64));
        match *self {
            Geometry::Dense { inputs, outputs } => (mul(&[inputs, outputs]), outputs as u64),
            Geometry::Conv {
                in_ch,
                out_ch,
                kernel,
                ..
            } => (mul(&[out_ch, in_ch, kernel, kernel]), out_ch as u64),
            Geometry::Pool { .. } => (0, 0),
        }
    }

    /// Inputs of the dense product a convolution runs per output position: `in_ch · k · k`.
    fn conv_taps(&self) -> usize {
        match *self {
            Geometry::Conv { in_ch, kernel, .. } => crate::numel_saturating(&[in_ch, kernel, kernel]),
            _ => 0,
        }
    }
}

#[derive(Clone, Debug)]
enum Params {
    /// A layer without parameters (max pooling).
    None,
    F32 {
        weight: Vec<f32>,
        bias: Vec<f32>,
        /// Dense layers, and convolutions as one dense product per output position: the
        /// weights in the SIMD kernel's panel layout (when one runs here).
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
    /// f32 convolutions on the SIMD kernels: one position's input taps, and its outputs.
    patch: Vec<f32>,
    col: Vec<f32>,
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
        grow(&mut self.patch, plan.patch);
        grow(&mut self.col, plan.col);
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
    /// Noise added to every output by [`Runtime::obfuscate`] with a random choice.
    output_noise: Option<crate::OutputNoise>,
}

/// One layer of a program built in memory with [`Runtime::from_program`]: `f32` only.
///
/// This is how a model that is not an obfuscator bundle (the server's LeNet-5, copied out of
/// its training engine) runs on the edge kernels. Pooling is a program layer, not a bundle
/// layer: obfuscator nets never pool, so the bundle format stays as it is.
#[derive(Clone, Debug, PartialEq)]
pub enum ProgramLayer<'a> {
    /// A dense or conv2d layer: `weight` in the layout of [`LayerSpec::weight_shape`]
    /// (`[outputs, inputs]`, `[out_ch, in_ch, k, k]`), `bias` of [`LayerSpec::bias_shape`].
    Weighted {
        /// Shape and activation.
        spec: LayerSpec,
        /// Weights, row-major.
        weight: &'a [f32],
        /// Biases.
        bias: &'a [f32],
    },
    /// Max pooling over `size × size` windows with stride `size`, no padding: `[channels,
    /// in_height, in_width]` in, `[channels, in_height / size, in_width / size]` out (floor,
    /// like PyTorch's and burn's `MaxPool2d` with `kernel = stride = size`).
    MaxPool2d {
        /// Channels.
        channels: usize,
        /// Window side and stride.
        size: usize,
        /// Input height.
        in_height: usize,
        /// Input width.
        in_width: usize,
    },
}

impl ProgramLayer<'_> {
    /// Geometry of the layer after range checks (`j`: its index, for the error).
    fn geometry(&self, j: usize) -> Result<Geometry> {
        let bad = |reason| Error::InvalidLayer {
            net: 0,
            layer: j,
            reason,
        };
        match self {
            ProgramLayer::Weighted { spec, weight, bias } => {
                spec.validate(0, j)?;
                let (w, b) = (spec.weight_shape(), spec.bias_shape());
                if weight.len() != crate::numel_saturating(&w) || bias.len() != crate::numel_saturating(&b) {
                    return Err(bad("weight or bias length does not match the layer's shape"));
                }
                Ok(Geometry::of(spec))
            }
            &ProgramLayer::MaxPool2d {
                channels,
                size,
                in_height,
                in_width,
            } => {
                let dims = [channels, size, in_height, in_width];
                if dims.contains(&0) {
                    return Err(bad("sizes must be at least 1"));
                }
                if dims.iter().any(|&d| d > crate::MAX_DIM) {
                    return Err(bad("a dimension exceeds the limit of 1<<20"));
                }
                if size > in_height || size > in_width {
                    return Err(bad("the pooling window is larger than the input"));
                }
                if crate::numel_saturating(&[channels, in_height, in_width]) > crate::MAX_ELEMENTS {
                    return Err(bad("input holds more than 1<<28 values"));
                }
                Ok(Geometry::Pool {
                    ch: channels,
                    size,
                    in_h: in_height,
                    in_w: in_width,
                    out_h: in_height / size,
                    out_w: in_width / size,
                })
            }
        }
    }

    fn activation(&self) -> Activation {
        match self {
            ProgramLayer::Weighted { spec, .. } => spec.activation(),
            ProgramLayer::MaxPool2d { .. } => Activation::None,
        }
    }
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
    /// f32 convolutions on the SIMD kernels: most input taps per output position.
    patch: usize,
    /// f32 convolutions on the SIMD kernels: most output channels.
    col: usize,
}

impl ScratchPlan {
    fn bytes(&self) -> u64 {
        let w = |n: usize, size: usize| (n as u64).saturating_mul(size as u64);
        w(self.width, 8)
            .saturating_add(w(self.codes, 2))
            .saturating_add(w(self.conv_acc, 16))
            .saturating_add(w(self.patch, 4))
            .saturating_add(w(self.col, 4))
            .saturating_add(if self.simd > 0 {
                I8Scratch::bytes_for(self.simd) as u64
            } else {
                0
            })
    }

    /// Adds layer `g` to the plan (scratch it needs) and returns the bytes its parameters take
    /// in run-time layout. Saturating: never overflows on unvalidated sizes.
    fn layer(&mut self, g: &Geometry, int8: bool, (isa_f32, isa_i8): (Isa, Isa)) -> u64 {
        let mul = |a: usize, b: usize| (a as u64).saturating_mul(b as u64);
        self.width = self.width.max(g.output_len());
        let (params, outs) = g.param_counts();
        let bytes = match (g, int8) {
            (Geometry::Pool { .. }, _) => 0,
            (Geometry::Dense { inputs, outputs }, false) if isa_f32 != Isa::Portable => {
                mul(simd::padded_outputs(isa_f32, *outputs), *inputs)
                    .saturating_mul(4)
                    .saturating_add(outs.saturating_mul(4))
            }
            (Geometry::Conv { out_ch, .. }, false) if isa_f32 != Isa::Portable => {
                let taps = g.conv_taps();
                self.patch = self.patch.max(taps);
                self.col = self.col.max(*out_ch);
                mul(simd::padded_outputs(isa_f32, *out_ch), taps)
                    .saturating_mul(4)
                    .saturating_add(outs.saturating_mul(4))
            }
            (Geometry::Dense { inputs, outputs }, true)
                if isa_i8 != Isa::Portable && *inputs <= simd::MAX_I8_INPUTS =>
            {
                mul(simd::padded_outputs(isa_i8, *outputs), inputs.div_ceil(4) * 4)
                    .saturating_add(outs.saturating_mul(16))
            }
            (_, false) => params.saturating_add(outs).saturating_mul(4),
            (_, true) => params.saturating_add(outs.saturating_mul(16)),
        };
        if int8 {
            match *g {
                Geometry::Conv { .. } => self.conv_acc = self.conv_acc.max(g.output_len()),
                Geometry::Dense { inputs, outputs } if isa_i8 != Isa::Portable => {
                    self.simd = self.simd.max(inputs).max(outputs);
                }
                Geometry::Dense { .. } | Geometry::Pool { .. } => {}
            }
        }
        bytes
    }
}

/// Total bytes of `weight_bytes` plus one scratch of `plan`, or [`Error::MemoryBudget`] when
/// over `config.memory_budget`.
fn check_budget(plan: &ScratchPlan, weight_bytes: u64, config: &RuntimeConfig) -> Result<u64> {
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
    Ok(needed)
}

/// An `f32` layer's parameters in run-time layout: dense layers and convolutions packed for
/// the SIMD kernel when one runs here (a convolution's `[out, in, k, k]` weight is already the
/// row-major `[out, in·k·k]` matrix of its per-position dense product).
fn prepare_f32(g: &Geometry, weight: &[f32], bias: &[f32], isa_f32: Isa) -> Params {
    let packed = match *g {
        Geometry::Dense { inputs, outputs } => simd::pack_f32(isa_f32, weight, inputs, outputs),
        Geometry::Conv { out_ch, .. } => simd::pack_f32(isa_f32, weight, g.conv_taps(), out_ch),
        Geometry::Pool { .. } => None,
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
                weight_bytes = weight_bytes.saturating_add(plan.layer(&g, int8, (isa_f32, isa_i8)));
            }
        }
        if int8 {
            plan.codes = plan.width;
        }
        let needed = check_budget(&plan, weight_bytes, config)?;
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
                        prepare_f32(&geometry, weight, bias, isa_f32)
                    }
                    Some(LayerParams::I8 { weight, scale, bias }) => {
                        let row_sums: Vec<i64> = match geometry {
                            Geometry::Dense { inputs, .. } => weight
                                .chunks(inputs.max(1))
                                .map(|row| row.iter().map(|&q| i64::from(q)).sum())
                                .collect(),
                            Geometry::Conv { .. } | Geometry::Pool { .. } => Vec::new(),
                        };
                        param_bytes += weight.len() + 4 * (scale.len() + bias.len()) + 8 * row_sums.len();
                        let packed = match geometry {
                            Geometry::Dense { inputs, outputs } => {
                                simd::pack_i8(isa_i8, weight, inputs, outputs)
                            }
                            Geometry::Conv { .. } | Geometry::Pool { .. } => None,
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
            output_noise: m.output_noise,
        })
    }

    /// Prepares one `f32` net given in memory as a list of layers (a runtime with `k() == 1`;
    /// run it with [`Runtime::run_f32`] on normalised input, or [`Runtime::run_raw`] on bytes
    /// normalised with `normalisation`).
    ///
    /// Checked like a bundle: every layer's ranges ([`LayerSpec`]'s limits; pooling windows
    /// inside their input), the chaining of sizes from `input_len` on, the parameter lengths,
    /// and then the memory budget — weights in run-time layout plus one [`Scratch`], computed
    /// with saturating arithmetic before anything is allocated.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] for an empty or over-long layer list or an input size out of
    /// range; [`Error::InvalidNormalisation`]; [`Error::InvalidLayer`]; [`Error::LayerChain`];
    /// [`Error::MemoryBudget`].
    ///
    /// # Examples
    ///
    /// ```
    /// use obfnet_core::{Activation, LayerSpec, Normalisation};
    /// use obfnet_core::runtime::{ProgramLayer, Runtime, RuntimeConfig};
    /// let conv = LayerSpec::Conv2d {
    ///     in_channels: 2, out_channels: 1, kernel: 1, stride: 1, padding: 0,
    ///     in_height: 2, in_width: 2, act: Activation::None,
    /// };
    /// let (w, b) = ([1.0, -1.0], [0.5]);
    /// let layers = [
    ///     ProgramLayer::Weighted { spec: conv, weight: &w, bias: &b },
    ///     ProgramLayer::MaxPool2d { channels: 1, size: 2, in_height: 2, in_width: 2 },
    /// ];
    /// let rt = Runtime::from_program(8, &layers, Normalisation::MNIST, &RuntimeConfig::new(1 << 20))?;
    /// let mut out = [0.0f32];
    /// let x = [1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 1.0]; // channel 0, then channel 1
    /// rt.run_f32(0, &x, &mut out, &mut rt.scratch())?;
    /// assert_eq!(out, [3.5]); // max(1 - 0, 2 - 0, 3 - 0, 4 - 1) + 0.5
    /// # Ok::<(), obfnet_core::Error>(())
    /// ```
    pub fn from_program(
        input_len: usize,
        layers: &[ProgramLayer<'_>],
        normalisation: Normalisation,
        config: &RuntimeConfig,
    ) -> Result<Runtime> {
        normalisation.validate()?;
        if layers.is_empty() || layers.len() > crate::MAX_LAYERS {
            return Err(Error::InvalidField {
                field: "program layers".into(),
                reason: "a net has between 1 and 1024 layers",
            });
        }
        if input_len == 0 || input_len > crate::MAX_ELEMENTS {
            return Err(Error::InvalidField {
                field: "program input".into(),
                reason: "the input holds between 1 and 1<<28 values",
            });
        }
        let isas = match config.kernels {
            Kernels::Auto => Isa::detect(),
            Kernels::Portable => (Isa::Portable, Isa::Portable),
        };
        // 1. Check and plan, from the shapes alone.
        let mut plan = ScratchPlan {
            width: input_len,
            ..ScratchPlan::default()
        };
        let mut weight_bytes = 0u64;
        let mut geometries = Vec::with_capacity(layers.len());
        let mut incoming = input_len;
        for (j, layer) in layers.iter().enumerate() {
            let g = layer.geometry(j)?;
            if g.input_len() != incoming {
                return Err(Error::LayerChain {
                    net: 0,
                    layer: j,
                    expected: incoming,
                    found: g.input_len(),
                });
            }
            incoming = g.output_len();
            weight_bytes = weight_bytes.saturating_add(plan.layer(&g, false, isas));
            geometries.push(g);
        }
        let needed = check_budget(&plan, weight_bytes, config)?;
        // 2. Build.
        let mut prepared = Vec::with_capacity(layers.len());
        let mut param_bytes = 0usize;
        let mut macs = 0u64;
        for (layer, geometry) in layers.iter().zip(geometries) {
            let params = match layer {
                ProgramLayer::Weighted { spec, weight, bias } => {
                    param_bytes += 4 * (weight.len() + bias.len());
                    macs = macs.saturating_add(spec.macs());
                    prepare_f32(&geometry, weight, bias, isas.0)
                }
                ProgramLayer::MaxPool2d { .. } => Params::None,
            };
            prepared.push(Layer {
                geometry,
                act: layer.activation(),
                params,
            });
        }
        Ok(Runtime {
            nets: vec![prepared],
            info: vec![NetInfo {
                name: "program".into(),
                macs,
                param_bytes,
            }],
            input_len,
            output_len: incoming,
            plan,
            normalisation,
            clip: (normalisation.apply(0), normalisation.apply(255)),
            weights: DType::F32,
            isa: isas,
            memory_bytes: needed,
            output_noise: None,
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

    /// The noise the bundle asks the device to add to every output (format 3), if any.
    pub fn output_noise(&self) -> Option<crate::OutputNoise> {
        self.output_noise
    }

    /// Adds the bundle's output noise to `out` (one net's output) with draws from `rng`; does
    /// nothing for a bundle without output noise. [`Runtime::obfuscate`] calls it when it picks
    /// the net at random (with the same source).
    ///
    /// # Errors
    /// [`Error::Randomness`] from the source, [`Error::BufferLength`] for a wrong `out`.
    pub fn add_output_noise(&self, out: &mut [f32], rng: &mut dyn RandomSource) -> Result<()> {
        if out.len() != self.output_len {
            return Err(Error::BufferLength {
                what: "output",
                expected: self.output_len,
                found: out.len(),
            });
        }
        match &self.output_noise {
            Some(noise) => noise.add_to(out, &self.normalisation, rng),
            None => Ok(()),
        }
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
            patch: vec![0.0; p.patch],
            col: vec![0.0; p.col],
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
    /// receives [`Runtime::output_len`] values in the server model's input space. With
    /// [`NetChoice::Random`] the bundle's output noise (format 3) is drawn from the same source
    /// and added, as a device sends it; [`NetChoice::Fixed`] (tests, experiments) returns the
    /// net's deterministic output.
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
        match choice {
            NetChoice::Fixed(net) => {
                self.run_raw(net, raw, out, scratch)?;
                Ok(net)
            }
            NetChoice::Random(rng) => {
                let net = uniform_index(rng, self.k())?;
                self.run_raw(net, raw, out, scratch)?;
                self.add_output_noise(out, rng)?;
                Ok(net)
            }
        }
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
            patch,
            col,
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
                Params::None => {
                    // Max pooling: the input is f32 in `cur` for either weight type (an int8
                    // layer's output is f32 too; programs start with a weighted layer).
                    let x = cur.get(..width).unwrap_or_default();
                    maxpool_f32(&layer.geometry, x, y);
                }
                Params::F32 { weight, bias, packed } => {
                    let x = cur.get(..width).unwrap_or_default();
                    match (&layer.geometry, packed) {
                        (Geometry::Dense { .. }, Some(p)) => {
                            if !simd::dense_f32(p, bias, x, y) {
                                y.fill(f32::NAN); // unreachable: the scratch was checked
                            }
                        }
                        (Geometry::Conv { .. }, Some(p)) => {
                            let bufs = (patch.as_mut_slice(), col.as_mut_slice());
                            if !conv_f32_packed(&layer.geometry, p, bias, x, y, bufs) {
                                y.fill(f32::NAN); // unreachable: the scratch was checked
                            }
                        }
                        (Geometry::Dense { inputs, .. }, None) => dense_f32(weight, bias, *inputs, x, y),
                        (Geometry::Conv { .. }, None) => conv_f32(&layer.geometry, weight, bias, x, y),
                        (Geometry::Pool { .. }, _) => maxpool_f32(&layer.geometry, x, y),
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
                        Geometry::Pool { .. } => {
                            let x = cur.get(..width).unwrap_or_default();
                            maxpool_f32(&layer.geometry, x, y);
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
