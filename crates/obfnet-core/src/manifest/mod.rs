//! The bundle manifest: typed description of the nets and its line-oriented text form.
//!
//! The text form is deliberately trivial to parse on a microcontroller: `\n`-terminated lines,
//! single-space separated tokens, `key=value` tokens without quoting, records in a fixed order.
//! See `FORMAT.md` for the grammar.

use alloc::string::String;
use alloc::vec::Vec;

use crate::{
    DType, Error, MAX_DIM, MAX_LAYERS, MAX_NETS, MAX_RANK, Result, TensorSpec, hex, numel_saturating,
    parse_hex32,
};

/// How raw sensor bytes become model input: `x = (raw * scale - mean) / std`.
///
/// # Examples
///
/// ```
/// use obfnet_core::Normalisation;
/// let n = Normalisation::MNIST;
/// let x = n.apply(200);
/// assert!((n.invert(x) - 200.0).abs() < 1e-3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalisation {
    /// Multiplier applied to the raw value first (e.g. `1/255`). Must be finite and `> 0`.
    pub scale: f32,
    /// Subtracted after scaling. Must be finite.
    pub mean: f32,
    /// Divisor applied last. Must be finite and `> 0`.
    pub std: f32,
}

impl Normalisation {
    /// The usual MNIST normalisation: `scale = 1/255`, `mean = 0.1307`, `std = 0.3081`.
    pub const MNIST: Normalisation = Normalisation {
        scale: 1.0 / 255.0,
        mean: 0.1307,
        std: 0.3081,
    };

    /// Maps one raw byte to model input.
    pub fn apply(&self, raw: u8) -> f32 {
        (f32::from(raw) * self.scale - self.mean) / self.std
    }

    /// Maps a model-input value back to the raw `0..=255` scale (not clamped, not rounded).
    pub fn invert(&self, x: f32) -> f32 {
        (x * self.std + self.mean) / self.scale
    }

    /// Checks that all parameters are finite and `scale`, `std` are positive.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidNormalisation`].
    pub fn validate(&self) -> Result<()> {
        let reason = if !(self.scale.is_finite() && self.mean.is_finite() && self.std.is_finite()) {
            "scale, mean and std must be finite"
        } else if self.std <= 0.0 {
            "std must be > 0"
        } else if self.scale <= 0.0 {
            "scale must be > 0"
        } else {
            return Ok(());
        };
        Err(Error::InvalidNormalisation { reason })
    }
}

/// Activation applied after a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Identity.
    None,
    /// `max(0, x)`.
    Relu,
    /// Clip to the model-input image of the raw byte range: `clamp(x, lo, hi)` with
    /// `lo = normalise(0)` and `hi = normalise(255)` under the manifest's [`Normalisation`].
    /// Meant for a net's last layer: its outputs are then exactly representable by the `u8`
    /// wire encoding (up to rounding). Format version 2 and later.
    Clip,
}

impl Activation {
    /// The manifest token (`none`, `relu`).
    pub const fn name(self) -> &'static str {
        match self {
            Activation::None => "none",
            Activation::Relu => "relu",
            Activation::Clip => "clip",
        }
    }
}

/// One layer of an obfuscator net.
///
/// Tensors (see `FORMAT.md`): dense weight `[outputs, inputs]` (one row per output, PyTorch
/// convention), dense bias `[outputs]`; conv2d weight `[out_channels, in_channels, kernel,
/// kernel]`, bias `[out_channels]`. A conv2d layer reads its input as `[in_channels,
/// in_height, in_width]` (channel-major) and its output, `[out_channels, oh, ow]` with
/// `oh = (in_height + 2 * padding - kernel) / stride + 1` (floor, like PyTorch), is flattened
/// channel-major for the next layer.
///
/// The size methods saturate instead of overflowing, so they never panic on unvalidated specs;
/// on a spec accepted by [`Manifest::validate`] they are exact.
///
/// # Examples
///
/// ```
/// use obfnet_core::{Activation, LayerSpec};
/// let conv = LayerSpec::Conv2d {
///     in_channels: 1, out_channels: 4, kernel: 5, stride: 2, padding: 2,
///     in_height: 28, in_width: 28, act: Activation::Relu,
/// };
/// assert_eq!(conv.input_len(), 784);
/// assert_eq!(conv.output_shape(), vec![4, 14, 14]);
/// assert_eq!(conv.weight_shape(), vec![4, 1, 5, 5]);
/// assert_eq!(conv.macs(), 4 * 14 * 14 * 25);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum LayerSpec {
    /// Fully connected: `y = act(W x + b)`.
    Dense {
        /// Input width.
        inputs: usize,
        /// Output width.
        outputs: usize,
        /// Activation.
        act: Activation,
    },
    /// 2-D convolution with square kernel, equal stride and zero padding on both axes.
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel side.
        kernel: usize,
        /// Stride (both axes).
        stride: usize,
        /// Zero padding on every side.
        padding: usize,
        /// Input height.
        in_height: usize,
        /// Input width.
        in_width: usize,
        /// Activation.
        act: Activation,
    },
}

/// `(n + 2 * pad - kernel) / stride + 1`, or 0 when undefined. Never panics.
fn conv_out(n: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    let padded = n.saturating_add(pad.saturating_mul(2));
    match padded.checked_sub(kernel) {
        Some(span) if stride > 0 => span / stride + 1,
        _ => 0,
    }
}

fn to_usize(x: u64) -> usize {
    usize::try_from(x).unwrap_or(usize::MAX)
}

fn mul_u64(factors: &[usize]) -> u64 {
    factors.iter().fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
}

impl LayerSpec {
    /// Number of input values per sample.
    pub fn input_len(&self) -> usize {
        match *self {
            LayerSpec::Dense { inputs, .. } => inputs,
            LayerSpec::Conv2d {
                in_channels,
                in_height,
                in_width,
                ..
            } => numel_saturating(&[in_channels, in_height, in_width]),
        }
    }

    /// Per-sample output shape: `[outputs]` or `[out_channels, oh, ow]`.
    pub fn output_shape(&self) -> Vec<usize> {
        match *self {
            LayerSpec::Dense { outputs, .. } => alloc::vec![outputs],
            LayerSpec::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                in_height,
                in_width,
                ..
            } => {
                alloc::vec![
                    out_channels,
                    conv_out(in_height, kernel, stride, padding),
                    conv_out(in_width, kernel, stride, padding),
                ]
            }
        }
    }

    /// Number of output values per sample (product of [`LayerSpec::output_shape`]).
    pub fn output_len(&self) -> usize {
        numel_saturating(&self.output_shape())
    }

    /// Shape of the weight tensor: `[outputs, inputs]` or `[out_ch, in_ch, kernel, kernel]`.
    pub fn weight_shape(&self) -> Vec<usize> {
        match *self {
            LayerSpec::Dense { inputs, outputs, .. } => alloc::vec![outputs, inputs],
            LayerSpec::Conv2d {
                in_channels,
                out_channels,
                kernel,
                ..
            } => {
                alloc::vec![out_channels, in_channels, kernel, kernel]
            }
        }
    }

    /// Shape of the bias tensor: `[outputs]` or `[out_channels]`.
    pub fn bias_shape(&self) -> Vec<usize> {
        match *self {
            LayerSpec::Dense { outputs, .. } => alloc::vec![outputs],
            LayerSpec::Conv2d { out_channels, .. } => alloc::vec![out_channels],
        }
    }

    /// The activation applied after the layer.
    pub fn activation(&self) -> Activation {
        match *self {
            LayerSpec::Dense { act, .. } | LayerSpec::Conv2d { act, .. } => act,
        }
    }

    /// Multiply-adds per sample (bias additions not counted).
    pub fn macs(&self) -> u64 {
        match *self {
            LayerSpec::Dense { inputs, outputs, .. } => mul_u64(&[inputs, outputs]),
            LayerSpec::Conv2d {
                in_channels, kernel, ..
            } => {
                let out = self.output_shape();
                mul_u64(&out).saturating_mul(mul_u64(&[in_channels, kernel, kernel]))
            }
        }
    }

    /// Weight plus bias element count, in `u64` (saturating).
    fn param_count_u64(&self) -> u64 {
        mul_u64(&self.weight_shape()).saturating_add(mul_u64(&self.bias_shape()))
    }
}

/// One trained obfuscator net.
///
/// # Examples
///
/// ```
/// use obfnet_core::{Activation, LayerSpec, NetSpec};
/// let net = NetSpec {
///     name: "obfnet2-0".into(), arch: "obfnet2".into(), seed: 1000,
///     layers: vec![
///         LayerSpec::Dense { inputs: 784, outputs: 1000, act: Activation::Relu },
///         LayerSpec::Dense { inputs: 1000, outputs: 784, act: Activation::Relu },
///     ],
///     sha256: [0; 32],
/// };
/// assert_eq!(net.param_count(), 784 * 1000 + 1000 + 1000 * 784 + 784);
/// assert_eq!(net.macs(), 2 * 784 * 1000);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NetSpec {
    /// Human-readable name (a manifest token: printable ASCII, no spaces).
    pub name: String,
    /// Architecture family (a manifest token).
    pub arch: String,
    /// Seed the trainer used for this net.
    pub seed: u64,
    /// Layers, applied in order.
    pub layers: Vec<LayerSpec>,
    /// sha256 over the net's parameters (see `FORMAT.md`); [`crate::Bundle::new`] fills it in.
    pub sha256: [u8; 32],
}

impl NetSpec {
    /// Multiply-adds per sample over all layers (saturating).
    pub fn macs(&self) -> u64 {
        self.layers
            .iter()
            .fold(0u64, |acc, l| acc.saturating_add(l.macs()))
    }

    /// Number of parameters (weights and biases) over all layers (saturating).
    pub fn param_count(&self) -> usize {
        to_usize(self.param_count_u64())
    }

    fn param_count_u64(&self) -> u64 {
        self.layers
            .iter()
            .fold(0u64, |acc, l| acc.saturating_add(l.param_count_u64()))
    }
}

/// Everything a device needs to know about a bundle besides the weights.
///
/// # Examples
///
/// ```
/// use obfnet_core::Manifest;
/// let text = "obfnet-bundle 1\ncreated-by obfnet-0.1.0\ndataset mnist\n\
///     input shape=1,28,28 dtype=f32\nnormalise scale=0.003921569 mean=0.1307 std=0.3081\n\
///     output shape=1,28,28 dtype=f32\n\
///     server-model sha256=0000000000000000000000000000000000000000000000000000000000000000\n\
///     nets 1\n\
///     net index=0 name=n0 arch=obfnet1 seed=7 layers=1 \
///     sha256=0000000000000000000000000000000000000000000000000000000000000000\n\
///     layer net=0 index=0 kind=dense in=784 out=784 act=none\nend\n";
/// let m = Manifest::parse(text)?;
/// assert_eq!(m.nets[0].layers[0].output_len(), 784);
/// assert_eq!(m.to_text(), text);
/// # Ok::<(), obfnet_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Format version, [`MIN_FORMAT_VERSION`](crate::MIN_FORMAT_VERSION)`..=`[`FORMAT_VERSION`](crate::FORMAT_VERSION). [`crate::Bundle::new`]
    /// and [`crate::Bundle::quantize_int8`] set it to [`Manifest::oldest_version`].
    pub format_version: u32,
    /// Tool that wrote the bundle (a manifest token).
    pub created_by: String,
    /// Dataset the nets were trained on (a manifest token).
    pub dataset: String,
    /// Per-sample input of every net.
    pub input: TensorSpec,
    /// How raw sensor bytes become [`Manifest::input`].
    pub normalisation: Normalisation,
    /// Per-sample output of every net (what is sent to the server).
    pub output: TensorSpec,
    /// Element type of the layer weights: [`DType::F32`], or [`DType::I8`] for nets quantised
    /// per output channel (see [`crate::Bundle::quantize_int8`]). `I8` needs format version 2;
    /// version 1 manifests have no `weights` record and are always `F32`.
    pub weights: DType,
    /// Noise the device adds to every output before sending it ([`crate::OutputNoise`]);
    /// `Some` needs format version 3, whose manifests always carry an `output-noise` record
    /// (`kind=none` when `None`).
    pub output_noise: Option<crate::OutputNoise>,
    /// sha256 of the frozen server model the nets were trained against.
    pub server_model_sha256: [u8; 32],
    /// The nets, in index order.
    pub nets: Vec<NetSpec>,
}

mod text;
mod validate;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
