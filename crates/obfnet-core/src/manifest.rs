//! The bundle manifest: typed description of the nets and its line-oriented text form.
//!
//! The text form is deliberately trivial to parse on a microcontroller: `\n`-terminated lines,
//! single-space separated tokens, `key=value` tokens without quoting, records in a fixed order.
//! See `FORMAT.md` for the grammar.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::{
    DType, Error, FORMAT_VERSION, MAX_DIM, MAX_ELEMENTS, MAX_LAYERS, MAX_NETS, MAX_RANK, MAX_TOKEN_LEN,
    MIN_FORMAT_VERSION, Result, TensorSpec, hex, numel_saturating, parse_hex32,
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

    /// Checks the hyper-parameters of layer `layer` of net `net` for range and sanity.
    fn validate(&self, net: usize, layer: usize) -> Result<()> {
        let bad = |reason| Err(Error::InvalidLayer { net, layer, reason });
        let dims: &[usize] = match self {
            LayerSpec::Dense { inputs, outputs, .. } => &[*inputs, *outputs],
            LayerSpec::Conv2d {
                in_channels,
                out_channels,
                kernel,
                stride,
                in_height,
                in_width,
                ..
            } => &[
                *in_channels,
                *out_channels,
                *kernel,
                *stride,
                *in_height,
                *in_width,
            ],
        };
        if dims.contains(&0) {
            return bad("sizes, kernel and stride must be at least 1");
        }
        let too_big = match self {
            LayerSpec::Conv2d { padding, .. } => dims.iter().chain([padding]).any(|&d| d > MAX_DIM),
            LayerSpec::Dense { .. } => dims.iter().any(|&d| d > MAX_DIM),
        };
        if too_big {
            return bad("a dimension exceeds the limit of 1<<20");
        }
        if let LayerSpec::Conv2d {
            kernel,
            padding,
            in_height,
            in_width,
            ..
        } = *self
        {
            let pad2 = padding.saturating_mul(2);
            if kernel > in_height.saturating_add(pad2) || kernel > in_width.saturating_add(pad2) {
                return bad("kernel is larger than the padded input");
            }
        }
        let max = MAX_ELEMENTS as u64;
        if mul_u64(&[self.input_len()]) > max || mul_u64(&self.output_shape()) > max {
            return bad("input or output holds more than 1<<28 values");
        }
        if self.param_count_u64() > max {
            return bad("more than 1<<28 parameters");
        }
        Ok(())
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
    /// Format version, [`MIN_FORMAT_VERSION`]`..=`[`FORMAT_VERSION`]. [`crate::Bundle::new`]
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
    /// sha256 of the frozen server model the nets were trained against.
    pub server_model_sha256: [u8; 32],
    /// The nets, in index order.
    pub nets: Vec<NetSpec>,
}

/// Checks that `value` can be written as a manifest token.
fn token_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("must not be empty")
    } else if value.len() > MAX_TOKEN_LEN {
        Some("longer than 128 bytes")
    } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be printable ASCII without spaces")
    } else {
        None
    }
}

fn check_token(field: impl FnOnce() -> String, value: &str) -> Result<()> {
    match token_problem(value) {
        Some(reason) => Err(Error::InvalidField {
            field: field(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Accepts the versions this crate implements.
fn check_version(found: u32) -> Result<()> {
    if (MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
        Ok(())
    } else {
        Err(Error::UnsupportedVersion {
            found,
            oldest: MIN_FORMAT_VERSION,
            newest: FORMAT_VERSION,
        })
    }
}

fn check_tensor_spec(field: &'static str, spec: &TensorSpec) -> Result<()> {
    let reason = if spec.shape.is_empty() || spec.shape.len() > MAX_RANK {
        "rank must be between 1 and 8"
    } else if spec.shape.iter().any(|&d| d == 0 || d > MAX_DIM) {
        "every dimension must be between 1 and 1<<20"
    } else if mul_u64(&spec.shape) > MAX_ELEMENTS as u64 {
        "more than 1<<28 elements"
    } else {
        return Ok(());
    };
    Err(Error::InvalidField {
        field: field.to_string(),
        reason,
    })
}

impl Manifest {
    /// Checks everything about the manifest that does not need the weights: version, tokens,
    /// shapes and limits, normalisation, layer ranges, layer chaining and the total parameter
    /// count. [`Manifest::parse`] runs it on every parsed manifest, and [`crate::Bundle`] runs
    /// it before writing.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedVersion`], [`Error::InvalidField`], [`Error::InvalidNormalisation`],
    /// [`Error::InvalidLayer`], [`Error::LayerChain`], [`Error::NetOutput`],
    /// [`Error::TooLarge`].
    pub fn validate(&self) -> Result<()> {
        check_version(self.format_version)?;
        if self.format_version < self.oldest_version() {
            return Err(Error::InvalidField {
                field: "format version".into(),
                reason: "int8 weights and clip activations need format version 2",
            });
        }
        check_token(|| "created-by".into(), &self.created_by)?;
        check_token(|| "dataset".into(), &self.dataset)?;
        check_tensor_spec("input", &self.input)?;
        check_tensor_spec("output", &self.output)?;
        self.normalisation.validate()?;
        if self.nets.is_empty() || self.nets.len() > MAX_NETS {
            return Err(Error::InvalidField {
                field: "nets".into(),
                reason: "a bundle holds between 1 and 1024 nets",
            });
        }
        let input_len = self.input.numel();
        let output_len = self.output.numel();
        let mut total_params = 0u64;
        for (i, net) in self.nets.iter().enumerate() {
            check_token(|| format!("net {i} name"), &net.name)?;
            check_token(|| format!("net {i} arch"), &net.arch)?;
            if net.layers.is_empty() || net.layers.len() > MAX_LAYERS {
                return Err(Error::InvalidField {
                    field: format!("net {i} layers"),
                    reason: "a net has between 1 and 1024 layers",
                });
            }
            let mut incoming = input_len;
            for (j, layer) in net.layers.iter().enumerate() {
                layer.validate(i, j)?;
                if layer.input_len() != incoming {
                    return Err(Error::LayerChain {
                        net: i,
                        layer: j,
                        expected: incoming,
                        found: layer.input_len(),
                    });
                }
                incoming = layer.output_len();
            }
            if incoming != output_len {
                return Err(Error::NetOutput {
                    net: i,
                    expected: output_len,
                    found: incoming,
                });
            }
            total_params = total_params.saturating_add(net.param_count_u64());
        }
        if total_params > MAX_ELEMENTS as u64 {
            return Err(Error::TooLarge {
                what: "total parameter count",
                found: total_params,
                limit: MAX_ELEMENTS as u64,
            });
        }
        Ok(())
    }

    /// The oldest format version able to express this manifest: 2 for `I8` weights or a
    /// [`Activation::Clip`] layer, else 1.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(m: &obfnet_core::Manifest) {
    /// assert!(m.oldest_version() <= obfnet_core::FORMAT_VERSION);
    /// # }
    /// ```
    pub fn oldest_version(&self) -> u32 {
        let clip = self
            .nets
            .iter()
            .flat_map(|n| &n.layers)
            .any(|l| l.activation() == Activation::Clip);
        if self.weights == DType::I8 || clip {
            2
        } else {
            MIN_FORMAT_VERSION
        }
    }

    /// Renders the manifest in its text form (see `FORMAT.md`).
    ///
    /// This does not validate: text rendered from a manifest that fails
    /// [`Manifest::validate`] (e.g. a name containing a space) will not parse back.
    /// [`crate::Bundle::to_bytes`] validates before writing.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail, so the fmt::Results below are ignored.
        let _ = writeln!(s, "obfnet-bundle {}", self.format_version);
        let _ = writeln!(s, "created-by {}", self.created_by);
        let _ = writeln!(s, "dataset {}", self.dataset);
        let _ = writeln!(
            s,
            "input shape={} dtype={}",
            join_dims(&self.input.shape),
            self.input.dtype.manifest_name()
        );
        let n = &self.normalisation;
        let _ = writeln!(s, "normalise scale={} mean={} std={}", n.scale, n.mean, n.std);
        let _ = writeln!(
            s,
            "output shape={} dtype={}",
            join_dims(&self.output.shape),
            self.output.dtype.manifest_name()
        );
        if self.format_version >= 2 {
            let _ = writeln!(s, "weights dtype={}", self.weights.manifest_name());
        }
        let _ = writeln!(s, "server-model sha256={}", hex(&self.server_model_sha256));
        let _ = writeln!(s, "nets {}", self.nets.len());
        for (i, net) in self.nets.iter().enumerate() {
            let _ = writeln!(
                s,
                "net index={i} name={} arch={} seed={} layers={} sha256={}",
                net.name,
                net.arch,
                net.seed,
                net.layers.len(),
                hex(&net.sha256)
            );
            for (j, layer) in net.layers.iter().enumerate() {
                match *layer {
                    LayerSpec::Dense { inputs, outputs, act } => {
                        let _ = writeln!(
                            s,
                            "layer net={i} index={j} kind=dense in={inputs} out={outputs} act={}",
                            act.name()
                        );
                    }
                    LayerSpec::Conv2d {
                        in_channels,
                        out_channels,
                        kernel,
                        stride,
                        padding,
                        in_height,
                        in_width,
                        act,
                    } => {
                        let _ = writeln!(
                            s,
                            "layer net={i} index={j} kind=conv2d in_ch={in_channels} \
                             out_ch={out_channels} kernel={kernel} stride={stride} pad={padding} \
                             in_h={in_height} in_w={in_width} act={}",
                            act.name()
                        );
                    }
                }
            }
        }
        s.push_str("end\n");
        s
    }

    /// Parses the text form and validates the result (see [`Manifest::validate`]).
    ///
    /// Records must appear in the order of `FORMAT.md`; the `key=value` tokens within a record
    /// may come in any order but each exactly once.
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] (with the 1-based line) for syntax errors, unknown records or keys,
    /// duplicate or missing keys, values that do not parse, out-of-range values, wrong counts
    /// and out-of-order indices; [`Error::TooLarge`] for text over 1 MiB;
    /// [`Error::UnsupportedVersion`] for a version other than [`FORMAT_VERSION`]; and every
    /// error of [`Manifest::validate`].
    pub fn parse(text: &str) -> Result<Manifest> {
        if text.len() > crate::MAX_MANIFEST_LEN {
            return Err(Error::TooLarge {
                what: "manifest length",
                found: text.len() as u64,
                limit: crate::MAX_MANIFEST_LEN as u64,
            });
        }
        let mut r = Reader::new(text)?;

        let rec = r.record("obfnet-bundle")?;
        let version = rec.single_value()?;
        let format_version: u32 = rec.uint(version)?;
        check_version(format_version)?;

        let rec = r.record("created-by")?;
        let created_by = rec.token(rec.single_value()?)?.to_string();
        let rec = r.record("dataset")?;
        let dataset = rec.token(rec.single_value()?)?.to_string();

        let rec = r.record("input")?;
        let f = rec.fields(&["shape", "dtype"])?;
        let input = TensorSpec {
            shape: rec.shape(f.get("shape")?)?,
            dtype: rec.dtype(f.get("dtype")?)?,
        };

        let rec = r.record("normalise")?;
        let f = rec.fields(&["scale", "mean", "std"])?;
        let normalisation = Normalisation {
            scale: rec.float(f.get("scale")?)?,
            mean: rec.float(f.get("mean")?)?,
            std: rec.float(f.get("std")?)?,
        };

        let rec = r.record("output")?;
        let f = rec.fields(&["shape", "dtype"])?;
        let output = TensorSpec {
            shape: rec.shape(f.get("shape")?)?,
            dtype: rec.dtype(f.get("dtype")?)?,
        };

        let weights = if format_version >= 2 {
            let rec = r.record("weights")?;
            let f = rec.fields(&["dtype"])?;
            rec.dtype(f.get("dtype")?)?
        } else {
            DType::F32
        };

        let rec = r.record("server-model")?;
        let f = rec.fields(&["sha256"])?;
        let server_model_sha256 = rec.digest(f.get("sha256")?)?;

        let rec = r.record("nets")?;
        let net_count: usize = rec.uint(rec.single_value()?)?;
        if net_count == 0 || net_count > MAX_NETS {
            return Err(rec.err("the net count must be between 1 and 1024"));
        }

        let mut nets = Vec::new();
        for i in 0..net_count {
            let rec = r.record("net")?;
            let f = rec.fields(&["index", "name", "arch", "seed", "layers", "sha256"])?;
            let index: usize = rec.uint(f.get("index")?)?;
            if index != i {
                return Err(rec.err(format!("expected net index {i}, found {index}")));
            }
            let name = rec.token(f.get("name")?)?.to_string();
            let arch = rec.token(f.get("arch")?)?.to_string();
            let seed: u64 = rec.uint(f.get("seed")?)?;
            let layer_count: usize = rec.uint(f.get("layers")?)?;
            if layer_count == 0 || layer_count > MAX_LAYERS {
                return Err(rec.err("the layer count must be between 1 and 1024"));
            }
            let sha256 = rec.digest(f.get("sha256")?)?;
            let mut layers = Vec::new();
            for j in 0..layer_count {
                layers.push(parse_layer(&r.record("layer")?, i, j)?);
            }
            nets.push(NetSpec {
                name,
                arch,
                seed,
                layers,
                sha256,
            });
        }

        let rec = r.record("end")?;
        if !rec.tokens.is_empty() {
            return Err(rec.err("`end` takes no values"));
        }
        r.finish()?;

        let manifest = Manifest {
            format_version,
            created_by,
            dataset,
            input,
            normalisation,
            output,
            weights,
            server_model_sha256,
            nets,
        };
        manifest.validate()?;
        Ok(manifest)
    }
}

fn parse_layer(rec: &Record<'_>, net: usize, index: usize) -> Result<LayerSpec> {
    const DENSE: &[&str] = &["net", "index", "kind", "in", "out", "act"];
    const CONV: &[&str] = &[
        "net", "index", "kind", "in_ch", "out_ch", "kernel", "stride", "pad", "in_h", "in_w", "act",
    ];
    let kind = rec
        .tokens
        .iter()
        .filter_map(|t| t.strip_prefix("kind="))
        .next()
        .ok_or_else(|| rec.err("missing key `kind`"))?;
    let f = match kind {
        "dense" => rec.fields(DENSE)?,
        "conv2d" => rec.fields(CONV)?,
        other => return Err(rec.err(format!("unknown layer kind `{other}` (expected dense or conv2d)"))),
    };
    let found_net: usize = rec.uint(f.get("net")?)?;
    if found_net != net {
        return Err(rec.err(format!("expected a layer of net {net}, found net={found_net}")));
    }
    let found_index: usize = rec.uint(f.get("index")?)?;
    if found_index != index {
        return Err(rec.err(format!("expected layer index {index}, found {found_index}")));
    }
    let act = match f.get("act")? {
        "relu" => Activation::Relu,
        "none" => Activation::None,
        "clip" => Activation::Clip,
        other => {
            return Err(rec.err(format!(
                "unknown activation `{other}` (expected relu, none or clip)"
            )));
        }
    };
    Ok(if kind == "dense" {
        LayerSpec::Dense {
            inputs: rec.dim(f.get("in")?)?,
            outputs: rec.dim(f.get("out")?)?,
            act,
        }
    } else {
        let padding: usize = rec.uint(f.get("pad")?)?;
        if padding > MAX_DIM {
            return Err(rec.err("pad exceeds the limit of 1<<20"));
        }
        LayerSpec::Conv2d {
            in_channels: rec.dim(f.get("in_ch")?)?,
            out_channels: rec.dim(f.get("out_ch")?)?,
            kernel: rec.dim(f.get("kernel")?)?,
            stride: rec.dim(f.get("stride")?)?,
            padding,
            in_height: rec.dim(f.get("in_h")?)?,
            in_width: rec.dim(f.get("in_w")?)?,
            act,
        }
    })
}

fn join_dims(shape: &[usize]) -> String {
    let mut s = String::new();
    for (i, d) in shape.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{d}");
    }
    s
}

/// Known record kinds, for "unknown record" versus "record out of place" messages.
const RECORD_KINDS: &[&str] = &[
    "obfnet-bundle",
    "created-by",
    "dataset",
    "input",
    "normalise",
    "output",
    "weights",
    "server-model",
    "nets",
    "net",
    "layer",
    "end",
];

/// Walks the manifest line by line.
struct Reader<'a> {
    lines: core::str::Split<'a, char>,
    line: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Result<Self> {
        let Some(body) = text.strip_suffix('\n') else {
            let line = text.split('\n').count();
            return Err(Error::Manifest {
                line,
                reason: "the last line must end with \\n".into(),
            });
        };
        Ok(Reader {
            lines: body.split('\n'),
            line: 0,
        })
    }

    /// Reads the next line, which must be a record of kind `kind`.
    fn record(&mut self, kind: &'static str) -> Result<Record<'a>> {
        self.line += 1;
        let line = self.line;
        let err = |reason: String| Error::Manifest { line, reason };
        let text = self
            .lines
            .next()
            .ok_or_else(|| err(format!("unexpected end of manifest, expected a `{kind}` record")))?;
        if let Some(c) = text.chars().find(|&c| c != ' ' && !c.is_ascii_graphic()) {
            return Err(err(format!(
                "character {c:?} is not allowed (printable ASCII and single spaces only)"
            )));
        }
        let mut parts = text.split(' ');
        let found = parts.next().unwrap_or_default();
        let tokens: Vec<&'a str> = parts.collect();
        if found.is_empty() || tokens.iter().any(|t| t.is_empty()) {
            return Err(err(
                "empty line or empty token (tokens are separated by exactly one space)".into(),
            ));
        }
        if found != kind {
            return Err(err(if RECORD_KINDS.contains(&found) {
                format!("expected a `{kind}` record, found `{found}`")
            } else {
                format!("unknown record kind `{found}` (expected `{kind}`)")
            }));
        }
        Ok(Record { line, kind, tokens })
    }

    /// Checks that nothing follows the `end` record.
    fn finish(mut self) -> Result<()> {
        match self.lines.next() {
            None => Ok(()),
            Some(_) => Err(Error::Manifest {
                line: self.line + 1,
                reason: "unexpected content after the `end` record".into(),
            }),
        }
    }
}

/// One manifest line split into its kind and value tokens.
struct Record<'a> {
    line: usize,
    kind: &'static str,
    tokens: Vec<&'a str>,
}

/// The `key=value` tokens of a record, checked against the record's allowed keys.
struct Fields<'r, 'a> {
    rec: &'r Record<'a>,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'_, 'a> {
    fn get(&self, key: &str) -> Result<&'a str> {
        self.pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, v)| v)
            .ok_or_else(|| {
                self.rec
                    .err(format!("missing key `{key}` in `{}` record", self.rec.kind))
            })
    }
}

impl<'a> Record<'a> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Manifest {
            line: self.line,
            reason: reason.into(),
        }
    }

    /// The only token of a positional record such as `nets 2`.
    fn single_value(&self) -> Result<&'a str> {
        match self.tokens.as_slice() {
            [v] => Ok(v),
            _ => Err(self.err(format!("`{}` takes exactly one value", self.kind))),
        }
    }

    fn fields<'r>(&'r self, allowed: &[&str]) -> Result<Fields<'r, 'a>> {
        let mut pairs: Vec<(&'a str, &'a str)> = Vec::with_capacity(self.tokens.len());
        for tok in &self.tokens {
            let (k, v) = tok
                .split_once('=')
                .ok_or_else(|| self.err(format!("expected a key=value token, found `{tok}`")))?;
            if !allowed.contains(&k) {
                return Err(self.err(format!("unknown key `{k}` in `{}` record", self.kind)));
            }
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(self.err(format!("duplicate key `{k}`")));
            }
            if v.is_empty() {
                return Err(self.err(format!("empty value for key `{k}`")));
            }
            pairs.push((k, v));
        }
        Ok(Fields { rec: self, pairs })
    }

    /// A canonical unsigned decimal: digits only, no sign, no leading zeros.
    fn uint<T: TryFrom<u64>>(&self, v: &str) -> Result<T> {
        let canonical =
            !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
        v.parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .and_then(|x| T::try_from(x).ok())
            .ok_or_else(|| self.err(format!("`{v}` is not a valid unsigned integer here")))
    }

    /// A size: integer in `1..=MAX_DIM`.
    fn dim(&self, v: &str) -> Result<usize> {
        let d: usize = self.uint(v)?;
        if d == 0 || d > MAX_DIM {
            return Err(self.err(format!("size `{v}` must be between 1 and 1<<20")));
        }
        Ok(d)
    }

    fn shape(&self, v: &str) -> Result<Vec<usize>> {
        let mut dims = Vec::new();
        for part in v.split(',') {
            if dims.len() == MAX_RANK {
                return Err(self.err("shapes have at most 8 dimensions"));
            }
            dims.push(self.dim(part)?);
        }
        Ok(dims)
    }

    fn float(&self, v: &str) -> Result<f32> {
        match v.parse::<f32>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(self.err(format!("`{v}` is not a finite number"))),
        }
    }

    fn dtype(&self, v: &str) -> Result<DType> {
        match v {
            "f32" => Ok(DType::F32),
            "i8" => Ok(DType::I8),
            other => Err(self.err(format!("unknown dtype `{other}` (expected f32 or i8)"))),
        }
    }

    fn digest(&self, v: &str) -> Result<[u8; 32]> {
        parse_hex32(v).ok_or_else(|| self.err("sha256 must be 64 hexadecimal digits"))
    }

    fn token(&self, v: &'a str) -> Result<&'a str> {
        match token_problem(v) {
            Some(reason) => Err(self.err(format!("`{v}` {reason}"))),
            None => Ok(v),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloc::vec;

    fn example() -> Manifest {
        Manifest {
            format_version: 1,
            created_by: "obfnet-0.1.0".into(),
            dataset: "mnist".into(),
            input: TensorSpec {
                shape: vec![1, 28, 28],
                dtype: DType::F32,
            },
            normalisation: Normalisation {
                scale: 0.003921569,
                mean: 0.1307,
                std: 0.3081,
            },
            output: TensorSpec {
                shape: vec![1, 28, 28],
                dtype: DType::F32,
            },
            weights: DType::F32,
            server_model_sha256: [0x11; 32],
            nets: vec![
                NetSpec {
                    name: "obfnet2-0".into(),
                    arch: "obfnet2".into(),
                    seed: 1000,
                    layers: vec![
                        LayerSpec::Dense {
                            inputs: 784,
                            outputs: 1000,
                            act: Activation::Relu,
                        },
                        LayerSpec::Dense {
                            inputs: 1000,
                            outputs: 784,
                            act: Activation::Relu,
                        },
                    ],
                    sha256: [0x22; 32],
                },
                NetSpec {
                    name: "conv-1".into(),
                    arch: "conv".into(),
                    seed: 1001,
                    layers: vec![
                        LayerSpec::Conv2d {
                            in_channels: 1,
                            out_channels: 4,
                            kernel: 5,
                            stride: 2,
                            padding: 2,
                            in_height: 28,
                            in_width: 28,
                            act: Activation::Relu,
                        },
                        LayerSpec::Dense {
                            inputs: 784,
                            outputs: 784,
                            act: Activation::Relu,
                        },
                    ],
                    sha256: [0x33; 32],
                },
            ],
        }
    }

    const EXAMPLE_TEXT: &str = "obfnet-bundle 1
created-by obfnet-0.1.0
dataset mnist
input shape=1,28,28 dtype=f32
normalise scale=0.003921569 mean=0.1307 std=0.3081
output shape=1,28,28 dtype=f32
server-model sha256=1111111111111111111111111111111111111111111111111111111111111111
nets 2
net index=0 name=obfnet2-0 arch=obfnet2 seed=1000 layers=2 sha256=2222222222222222222222222222222222222222222222222222222222222222
layer net=0 index=0 kind=dense in=784 out=1000 act=relu
layer net=0 index=1 kind=dense in=1000 out=784 act=relu
net index=1 name=conv-1 arch=conv seed=1001 layers=2 sha256=3333333333333333333333333333333333333333333333333333333333333333
layer net=1 index=0 kind=conv2d in_ch=1 out_ch=4 kernel=5 stride=2 pad=2 in_h=28 in_w=28 act=relu
layer net=1 index=1 kind=dense in=784 out=784 act=relu
end
";

    #[test]
    fn text_matches_the_documented_example() {
        assert_eq!(example().to_text(), EXAMPLE_TEXT);
        assert_eq!(Manifest::parse(EXAMPLE_TEXT).unwrap(), example());
    }

    #[test]
    fn mnist_scale_prints_as_documented() {
        assert_eq!(Normalisation::MNIST.scale.to_string(), "0.003921569");
    }

    #[test]
    fn key_order_within_a_record_is_free() {
        let text = EXAMPLE_TEXT.replace(
            "kind=dense in=784 out=1000 act=relu",
            "act=relu out=1000 kind=dense in=784",
        );
        assert_eq!(Manifest::parse(&text).unwrap(), example());
    }

    fn line_error(text: &str) -> (usize, String) {
        match Manifest::parse(text) {
            Err(Error::Manifest { line, reason }) => (line, reason),
            other => panic!("expected a manifest line error, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_point_at_the_line() {
        let cases: &[(&str, &str, usize, &str)] = &[
            ("dataset mnist\n", "dataset  mnist\n", 3, "exactly one space"),
            ("dataset mnist\n", "dataset mnist \n", 3, "exactly one space"),
            ("dataset mnist\n", "dataset mnist\r\n", 3, "not allowed"),
            ("dataset mnist\n", "datasets mnist\n", 3, "unknown record kind"),
            ("dataset mnist\n", "dataset mnist extra\n", 3, "exactly one value"),
            (
                "dataset mnist\n",
                "",
                3,
                "expected a `dataset` record, found `input`",
            ),
            ("nets 2\n", "nets 3\n", 15, "expected a `net` record, found `end`"),
            ("nets 2\n", "nets 0\n", 8, "between 1 and 1024"),
            ("nets 2\n", "nets 02\n", 8, "not a valid unsigned integer"),
            ("nets 2\n", "nets +2\n", 8, "not a valid unsigned integer"),
            ("seed=1000", "seed=1000 seed=1000", 9, "duplicate key `seed`"),
            ("seed=1000", "seed=-1", 9, "not a valid unsigned integer"),
            (" seed=1000", "", 9, "missing key `seed`"),
            ("seed=1000", "seed=1000 colour=red", 9, "unknown key `colour`"),
            ("seed=1000", "seed", 9, "key=value"),
            ("seed=1000", "seed=", 9, "empty value"),
            ("net index=1", "net index=0", 12, "expected net index 1"),
            (
                "layer net=0 index=1",
                "layer net=0 index=0",
                11,
                "expected layer index 1",
            ),
            (
                "layer net=1 index=0",
                "layer net=0 index=0",
                13,
                "expected a layer of net 1",
            ),
            ("kind=conv2d", "kind=conv3d", 13, "unknown layer kind"),
            (
                "in=784 out=1000 act=relu",
                "in=784 out=1000 act=tanh",
                10,
                "unknown activation",
            ),
            ("in=784 out=1000", "in=784 out=1048577", 10, "between 1 and 1<<20"),
            ("in=784 out=1000", "in=784 out=0", 10, "between 1 and 1<<20"),
            (
                "in=784 out=1000",
                "in=784 out=1000.0",
                10,
                "not a valid unsigned integer",
            ),
            ("std=0.3081", "std=nan", 5, "not a finite number"),
            ("std=0.3081", "std=inf", 5, "not a finite number"),
            ("std=0.3081", "std=0.3o81", 5, "not a finite number"),
            (
                "input shape=1,28,28",
                "input shape=1,,28",
                4,
                "not a valid unsigned integer",
            ),
            (
                "input shape=1,28,28",
                "input shape=1,1,1,1,1,1,1,1,784",
                4,
                "at most 8",
            ),
            ("dtype=f32\nnormalise", "dtype=f16\nnormalise", 4, "unknown dtype"),
            ("sha256=1111", "sha256=x111", 7, "64 hexadecimal digits"),
            ("name=obfnet2-0", "name=obfnet2\u{e9}", 9, "not allowed"),
            ("end\n", "end now\n", 15, "takes no values"),
            ("end\n", "end\nextra\n", 16, "after the `end` record"),
            ("end\n", "end", 15, "must end with"),
            ("end\n", "end\n\n", 16, "after the `end` record"),
        ];
        for &(from, to, line, needle) in cases {
            let text = EXAMPLE_TEXT.replacen(from, to, 1);
            assert_ne!(text, EXAMPLE_TEXT, "case {from:?} did not apply");
            let (got_line, reason) = line_error(&text);
            assert!(
                got_line == line && reason.contains(needle),
                "case {from:?} -> {to:?}: got line {got_line}: {reason}"
            );
        }
    }

    #[test]
    fn early_end_of_text_is_reported() {
        let cut = EXAMPLE_TEXT.find("layer net=1 index=1").unwrap();
        let (line, reason) = line_error(&EXAMPLE_TEXT[..cut]);
        assert_eq!(line, 14);
        assert!(reason.contains("unexpected end of manifest"), "{reason}");
        let (line, _) = line_error("");
        assert_eq!(line, 1);
    }

    #[test]
    fn version_mismatch_is_typed() {
        for v in ["0", "3", "4294967295"] {
            let text = EXAMPLE_TEXT.replacen("obfnet-bundle 1", &format!("obfnet-bundle {v}"), 1);
            assert_eq!(
                Manifest::parse(&text),
                Err(Error::UnsupportedVersion {
                    found: v.parse().unwrap(),
                    oldest: 1,
                    newest: 2
                })
            );
        }
    }

    #[test]
    fn version_2_carries_the_weights_record() {
        let mut m = example();
        m.format_version = 2;
        m.weights = DType::I8;
        let text = m.to_text();
        assert!(text.contains("output shape=1,28,28 dtype=f32\nweights dtype=i8\nserver-model"));
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        assert_eq!(m.oldest_version(), 2);

        // Version 2 may also describe f32 weights; version 1 has no weights record at all.
        m.weights = DType::F32;
        assert_eq!(Manifest::parse(&m.to_text()).unwrap(), m);
        assert_eq!(m.oldest_version(), 1);
        let v2_without = EXAMPLE_TEXT.replacen("obfnet-bundle 1", "obfnet-bundle 2", 1);
        let (line, reason) = line_error(&v2_without);
        assert_eq!(line, 7);
        assert!(reason.contains("expected a `weights` record"), "{reason}");
        let v1_with = EXAMPLE_TEXT.replacen("server-model", "weights dtype=f32\nserver-model", 1);
        let (line, reason) = line_error(&v1_with);
        assert_eq!(line, 7);
        assert!(reason.contains("expected a `server-model` record"), "{reason}");

        // int8 weights cannot be written as version 1.
        let mut m = example();
        m.weights = DType::I8;
        assert!(matches!(m.validate(), Err(Error::InvalidField { .. })));

        // Nor can the clip activation; version 2 carries it.
        let mut m = example();
        if let LayerSpec::Dense { act, .. } = &mut m.nets[0].layers[1] {
            *act = Activation::Clip;
        }
        assert!(matches!(m.validate(), Err(Error::InvalidField { .. })));
        assert_eq!(m.oldest_version(), 2);
        m.format_version = 2;
        let text = m.to_text();
        assert!(text.contains("in=1000 out=784 act=clip"));
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        let v1 = EXAMPLE_TEXT.replacen("in=1000 out=784 act=relu", "in=1000 out=784 act=clip", 1);
        assert!(matches!(Manifest::parse(&v1), Err(Error::InvalidField { .. })));
    }

    #[test]
    fn semantic_errors_are_typed() {
        let text = EXAMPLE_TEXT.replacen("std=0.3081", "std=0", 1);
        assert!(matches!(
            Manifest::parse(&text),
            Err(Error::InvalidNormalisation { .. })
        ));

        let text = EXAMPLE_TEXT.replacen("in=1000 out=784", "in=999 out=784", 1);
        assert_eq!(
            Manifest::parse(&text),
            Err(Error::LayerChain {
                net: 0,
                layer: 1,
                expected: 1000,
                found: 999
            })
        );

        let text = EXAMPLE_TEXT.replacen("in=1000 out=784", "in=1000 out=783", 1);
        assert_eq!(
            Manifest::parse(&text),
            Err(Error::NetOutput {
                net: 0,
                expected: 784,
                found: 783
            })
        );

        // conv output is 4*14*14 = 784; with stride 1 it would be 4*28*28.
        let text = EXAMPLE_TEXT.replacen("stride=2", "stride=1", 1);
        assert_eq!(
            Manifest::parse(&text),
            Err(Error::LayerChain {
                net: 1,
                layer: 1,
                expected: 3136,
                found: 784
            })
        );

        let text = EXAMPLE_TEXT.replacen("in_ch=1 ", "in_ch=2 ", 1);
        assert_eq!(
            Manifest::parse(&text),
            Err(Error::LayerChain {
                net: 1,
                layer: 0,
                expected: 784,
                found: 1568
            })
        );

        let text = EXAMPLE_TEXT.replacen("kernel=5 stride=2 pad=2", "kernel=40 stride=2 pad=2", 1);
        assert!(matches!(
            Manifest::parse(&text),
            Err(Error::InvalidLayer { net: 1, layer: 0, .. })
        ));
    }

    #[test]
    fn absurd_sizes_are_rejected() {
        // 1<<20 x 1<<20 parameters in one dense layer.
        let mut m = example();
        m.input.shape = vec![1 << 20];
        m.output.shape = vec![1 << 20];
        m.nets.truncate(1);
        m.nets[0].layers = vec![LayerSpec::Dense {
            inputs: 1 << 20,
            outputs: 1 << 20,
            act: Activation::None,
        }];
        assert!(matches!(m.validate(), Err(Error::InvalidLayer { .. })));
        assert!(matches!(
            Manifest::parse(&m.to_text()),
            Err(Error::InvalidLayer { .. })
        ));

        // Many nets whose total exceeds the limit although each is fine.
        let mut m = example();
        m.input.shape = vec![4096];
        m.output.shape = vec![4096];
        let net = NetSpec {
            name: "big".into(),
            arch: "dense".into(),
            seed: 0,
            layers: vec![LayerSpec::Dense {
                inputs: 4096,
                outputs: 4096,
                act: Activation::None,
            }],
            sha256: [0; 32],
        };
        m.nets = vec![net; 17];
        assert!(matches!(
            m.validate(),
            Err(Error::TooLarge {
                what: "total parameter count",
                ..
            })
        ));

        let mut m = example();
        m.input.shape = vec![1 << 20, 1 << 20];
        assert!(matches!(m.validate(), Err(Error::InvalidField { .. })));
    }

    #[test]
    fn unwritable_tokens_are_rejected_on_validate() {
        let mut m = example();
        m.nets[1].name = "has space".into();
        assert_eq!(
            m.validate(),
            Err(Error::InvalidField {
                field: "net 1 name".into(),
                reason: "must be printable ASCII without spaces"
            })
        );
        let mut m = example();
        m.dataset = String::new();
        assert!(matches!(m.validate(), Err(Error::InvalidField { .. })));
        let mut m = example();
        m.created_by = "x".repeat(129);
        assert!(matches!(m.validate(), Err(Error::InvalidField { .. })));
        let mut m = example();
        m.format_version = 3;
        assert!(matches!(
            m.validate(),
            Err(Error::UnsupportedVersion {
                found: 3,
                oldest: 1,
                newest: 2
            })
        ));
    }

    #[test]
    fn sizes_never_panic() {
        let l = LayerSpec::Conv2d {
            in_channels: usize::MAX,
            out_channels: usize::MAX,
            kernel: usize::MAX,
            stride: 0,
            padding: usize::MAX,
            in_height: usize::MAX,
            in_width: 0,
            act: Activation::None,
        };
        let _ = (
            l.input_len(),
            l.output_len(),
            l.macs(),
            l.weight_shape(),
            l.param_count_u64(),
        );
        assert!(l.validate(0, 0).is_err());
        let l = LayerSpec::Dense {
            inputs: usize::MAX,
            outputs: usize::MAX,
            act: Activation::None,
        };
        assert_eq!(l.macs(), u64::MAX);
    }

    #[test]
    fn normalisation_round_trips() {
        let n = Normalisation::MNIST;
        for raw in [0u8, 1, 77, 128, 255] {
            assert!((n.invert(n.apply(raw)) - f32::from(raw)).abs() < 1e-3);
        }
        assert!(n.validate().is_ok());
        assert!(Normalisation { scale: 0.0, ..n }.validate().is_err());
        assert!(Normalisation { mean: f32::NAN, ..n }.validate().is_err());
        assert!(Normalisation { std: -1.0, ..n }.validate().is_err());
    }

    #[test]
    fn float_display_round_trips() {
        for x in [0.1307f32, 0.3081, 1.0 / 255.0, 1e-30, 3.4e38, -0.0, 123456.79] {
            assert_eq!(x.to_string().parse::<f32>().unwrap().to_bits(), x.to_bits());
        }
    }
}
