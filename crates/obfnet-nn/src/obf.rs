use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use obfnet_core::{Activation, LayerSpec, LayerWeights};
use serde::{Deserialize, Serialize};

use crate::data::NORMALISATION;
use crate::rng::SplitMix64;
use crate::{Error, Result};

/// The obfuscator architectures. All map a 28×28 image to a 28×28 image (784 → 784) and end in a
/// ReLU, as in the ObfNet papers (or, trained with `clip_output`, in a clip to the raw range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObfArch {
    /// ObfNet1: one dense layer 784 → 784 + ReLU (0.61 M multiply-adds per sample).
    ObfNet1,
    /// ObfNet2: dense 784 → 1000 + ReLU → dense 1000 → 784 + ReLU (1.57 M multiply-adds).
    ObfNet2,
    /// The small convolutional variant: conv 1 → 4 channels, 5×5, stride 2, pad 2 (28×28 →
    /// 4×14×14 = 784) + ReLU → dense 784 → 784 + ReLU (0.63 M multiply-adds). The strided
    /// convolution halves the resolution before the dense layer mixes every position.
    Conv,
    /// The privacy-oriented bottleneck net: dense 784 → h + ReLU → dense h → w (linear,
    /// the bottleneck) → dense w → 784 + ReLU, h = 1000 unless configured
    /// (`ObfTrainConfig::hidden`, [`DEFAULT_HIDDEN`]). Everything the device sends is an affine image of
    /// a w-number code (then ReLU), so at most w numbers' worth of the input leaves the device;
    /// trained with the adversarial option of `ObfTrainConfig::privacy`, the code is pushed to
    /// keep what the frozen model needs and little else. Multiply-adds: d·h + h·w + w·d
    /// (0.84 M for d = 784, h = 1000, w = 32; a 20×64 FSDD map needs h ≤ 700 to stay under 1 M). The width is `ObfTrainConfig::bottleneck` ([`DEFAULT_BOTTLENECK`]).
    Bottleneck,
}

/// Width of the [`ObfArch::Bottleneck`] code unless configured otherwise.
pub const DEFAULT_BOTTLENECK: usize = 32;

/// Width of the [`ObfArch::Bottleneck`] net's first (hidden) layer unless configured otherwise.
pub const DEFAULT_HIDDEN: usize = 1000;

const CONV_CHANNELS: usize = 4;
const CONV_KERNEL: usize = 5;
const CONV_STRIDE: usize = 2;
const CONV_PAD: usize = 2;

impl ObfArch {
    /// Every architecture, in a fixed order.
    pub const ALL: [ObfArch; 4] = [
        ObfArch::ObfNet1,
        ObfArch::ObfNet2,
        ObfArch::Conv,
        ObfArch::Bottleneck,
    ];

    /// The published architectures (the ObfNet papers' recipe); [`ObfArch::Bottleneck`] is ours.
    pub const PUBLISHED: [ObfArch; 3] = [ObfArch::ObfNet1, ObfArch::ObfNet2, ObfArch::Conv];

    /// The name used on the command line and in bundles.
    pub fn name(self) -> &'static str {
        match self {
            ObfArch::ObfNet1 => "obfnet1",
            ObfArch::ObfNet2 => "obfnet2",
            ObfArch::Conv => "conv",
            ObfArch::Bottleneck => "bottleneck",
        }
    }

    /// Parses [`ObfArch::name`].
    pub fn from_name(name: &str) -> Option<ObfArch> {
        ObfArch::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The layers of one net of this architecture whose last layer clips its outputs to the raw
    /// image range ([`Activation::Clip`]) instead of applying ReLU: trained this way, a net's
    /// outputs survive the `u8` wire encoding (see `ObfTrainConfig::clip_output`).
    pub fn layers_clipped(self, rows: usize, cols: usize) -> Vec<LayerSpec> {
        self.layers_for(rows, cols, DEFAULT_HIDDEN, DEFAULT_BOTTLENECK, true)
    }

    /// The layers of one net of this architecture for `rows × cols` single-channel images.
    pub fn layers(self, rows: usize, cols: usize) -> Vec<LayerSpec> {
        self.layers_for(rows, cols, DEFAULT_HIDDEN, DEFAULT_BOTTLENECK, false)
    }

    /// The layers of one net: `hidden` and `bottleneck` are the first layer's and the code's
    /// widths of [`ObfArch::Bottleneck`] (ignored by the others); with `clip` the last layer
    /// clips to the raw image range instead of ReLU.
    pub fn layers_for(
        self,
        rows: usize,
        cols: usize,
        hidden: usize,
        bottleneck: usize,
        clip: bool,
    ) -> Vec<LayerSpec> {
        let mut layers = self.relu_layers(rows, cols, hidden, bottleneck);
        if clip && let Some(LayerSpec::Dense { act, .. } | LayerSpec::Conv2d { act, .. }) = layers.last_mut()
        {
            *act = Activation::Clip;
        }
        layers
    }

    /// The hidden (first layer) width of a bottleneck net with these layers, if it is one.
    pub fn hidden_of(self, layers: &[LayerSpec]) -> Option<usize> {
        match (self, layers.first()) {
            (ObfArch::Bottleneck, Some(LayerSpec::Dense { outputs, .. })) => Some(*outputs),
            _ => None,
        }
    }

    /// The bottleneck width of a net of this architecture with these layers, if it is one.
    pub fn bottleneck_of(self, layers: &[LayerSpec]) -> Option<usize> {
        match (self, layers.get(1)) {
            (ObfArch::Bottleneck, Some(LayerSpec::Dense { outputs, .. })) => Some(*outputs),
            _ => None,
        }
    }

    fn relu_layers(self, rows: usize, cols: usize, hidden: usize, bottleneck: usize) -> Vec<LayerSpec> {
        let d = rows * cols;
        let dense = |inputs, outputs| LayerSpec::Dense {
            inputs,
            outputs,
            act: Activation::Relu,
        };
        match self {
            ObfArch::ObfNet1 => vec![dense(d, d)],
            ObfArch::ObfNet2 => vec![dense(d, 1000), dense(1000, d)],
            ObfArch::Conv => {
                let conv = LayerSpec::Conv2d {
                    in_channels: 1,
                    out_channels: CONV_CHANNELS,
                    kernel: CONV_KERNEL,
                    stride: CONV_STRIDE,
                    padding: CONV_PAD,
                    in_height: rows,
                    in_width: cols,
                    act: Activation::Relu,
                };
                let mid = conv.output_len();
                vec![conv, dense(mid, d)]
            }
            ObfArch::Bottleneck => vec![
                dense(d, hidden),
                LayerSpec::Dense {
                    inputs: hidden,
                    outputs: bottleneck,
                    act: Activation::None,
                },
                dense(bottleneck, d),
            ],
        }
    }
}

impl std::fmt::Display for ObfArch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A dense layer of one net: `x · W + b`.
#[derive(Module, Debug)]
struct Dense {
    /// `[in, out]`
    weight: Param<Tensor<2>>,
    /// `[out]`
    bias: Param<Tensor<1>>,
}

/// The convolution of one conv-variant net.
#[derive(Module, Debug)]
struct Conv {
    /// `[C, 1, kernel, kernel]`
    weight: Param<Tensor<4>>,
    /// `[C]`
    bias: Param<Tensor<1>>,
}

/// One obfuscation net.
#[derive(Module, Debug)]
struct Net {
    conv: Option<Conv>,
    dense: Vec<Dense>,
    /// `Some((lo, hi))` when the last layer clips to the raw range instead of ReLU
    /// ([`Activation::Clip`]).
    #[module(skip)]
    clip: Option<(f32, f32)>,
    /// Per dense layer: no activation (a linear layer such as the bottleneck).
    #[module(skip)]
    linear: Vec<bool>,
}

impl Net {
    /// Builds a net from per-layer parameters in the bundle's layout (dense weight `[out, in]`).
    fn from_layers(specs: &[LayerSpec], layers: Vec<LayerWeights>, device: &Device) -> Net {
        let clip = specs
            .last()
            .filter(|l| l.activation() == Activation::Clip)
            .map(|_| (NORMALISATION.apply(0), NORMALISATION.apply(255)));
        let mut conv = None;
        let mut dense = Vec::new();
        let mut linear = Vec::new();
        for (spec, LayerWeights { weight, bias }) in specs.iter().zip(layers) {
            match *spec {
                LayerSpec::Dense { inputs, outputs, act } => {
                    linear.push(act == Activation::None);
                    let w = Tensor::<2>::from_data(TensorData::new(weight, [outputs, inputs]), device)
                        .transpose();
                    let b = Tensor::<1>::from_data(TensorData::new(bias, [outputs]), device);
                    dense.push(Dense {
                        weight: Param::from_tensor(w),
                        bias: Param::from_tensor(b),
                    });
                }
                LayerSpec::Conv2d {
                    out_channels,
                    in_channels,
                    kernel,
                    ..
                } => {
                    let w = Tensor::<4>::from_data(
                        TensorData::new(weight, [out_channels, in_channels, kernel, kernel]),
                        device,
                    );
                    let b = Tensor::<1>::from_data(TensorData::new(bias, [out_channels]), device);
                    conv = Some(Conv {
                        weight: Param::from_tensor(w),
                        bias: Param::from_tensor(b),
                    });
                }
            }
        }
        Net {
            conv,
            dense,
            clip,
            linear,
        }
    }

    /// # Shapes
    /// `x`: `[B, rows·cols]` → `[B, rows·cols]`.
    fn forward(&self, x: Tensor<2>, rows: usize, cols: usize) -> Tensor<2> {
        let [b, _] = x.dims();
        let mut h = x;
        if let Some(conv) = &self.conv {
            let img = h.reshape([b, 1, rows, cols]);
            let opts = ConvOptions::new([CONV_STRIDE; 2], [CONV_PAD; 2], [1, 1], 1);
            let y = relu(conv2d(img, conv.weight.val(), Some(conv.bias.val()), opts));
            // [B, C, oh, ow] -> [B, C·oh·ow], channel-major as in the bundle.
            h = y.flatten(1, 3);
        }
        let last = self.dense.len().saturating_sub(1);
        for (i, layer) in self.dense.iter().enumerate() {
            let z = h.matmul(layer.weight.val()) + layer.bias.val().unsqueeze_dim(0);
            h = match self.clip {
                Some((lo, hi)) if i == last => z.clamp(lo, hi),
                _ if self.linear.get(i).copied().unwrap_or(false) => z,
                _ => relu(z),
            };
        }
        h
    }

    fn weights(&self) -> Result<Vec<LayerWeights>> {
        let mut out = Vec::new();
        if let Some(conv) = &self.conv {
            let [c, i, kh, kw] = conv.weight.val().dims();
            out.push(LayerWeights {
                weight: crate::data::to_vec(conv.weight.val().reshape([c, i * kh * kw]))?,
                bias: crate::data::to_vec(conv.bias.val().unsqueeze_dim(0))?,
            });
        }
        for layer in &self.dense {
            out.push(LayerWeights {
                weight: crate::data::to_vec(layer.weight.val().transpose())?,
                bias: crate::data::to_vec(layer.bias.val().unsqueeze_dim(0))?,
            });
        }
        Ok(out)
    }
}

/// K obfuscators of one architecture, trained and evaluated together.
///
/// Each net has its own parameters (nothing couples the nets); the stack runs them side by side
/// in one step, so the frozen server model sees one batch of `K × B` samples. The nets are kept
/// as separate tensors rather than one `[K, …]` tensor because the per-net weight gradients and
/// optimiser updates then stay cache-sized (measured: flex's batched 3-D product for the weight
/// gradient is 4.5× slower than K plain products; see BENCHMARKS.md).
#[derive(Module, Debug)]
pub struct ObfStack {
    nets: Vec<Net>,
    #[module(skip)]
    arch: ObfArch,
    #[module(skip)]
    seeds: Vec<u64>,
    #[module(skip)]
    rows: usize,
    #[module(skip)]
    cols: usize,
    /// The layers of every net.
    #[module(skip)]
    specs: Vec<LayerSpec>,
}

impl ObfStack {
    /// K freshly initialised nets, net k from `seeds[k]` alone (PyTorch's default
    /// initialisation: every weight and bias uniform in ±1/√fan_in).
    pub fn new(arch: ObfArch, seeds: &[u64], rows: usize, cols: usize, device: &Device) -> Result<ObfStack> {
        ObfStack::new_with_clip(arch, seeds, rows, cols, false, device)
    }

    /// As [`ObfStack::new`]; with `clip_output` the last layer clips to the raw image range
    /// ([`ObfArch::layers_clipped`]) instead of applying ReLU. The initial weights are the same.
    pub fn new_with_clip(
        arch: ObfArch,
        seeds: &[u64],
        rows: usize,
        cols: usize,
        clip_output: bool,
        device: &Device,
    ) -> Result<ObfStack> {
        ObfStack::new_design(
            arch,
            DEFAULT_HIDDEN,
            DEFAULT_BOTTLENECK,
            seeds,
            rows,
            cols,
            clip_output,
            device,
        )
    }

    /// As [`ObfStack::new_with_clip`], with the hidden and bottleneck widths of
    /// [`ObfArch::Bottleneck`].
    #[allow(clippy::too_many_arguments)]
    pub fn new_design(
        arch: ObfArch,
        hidden: usize,
        bottleneck: usize,
        seeds: &[u64],
        rows: usize,
        cols: usize,
        clip_output: bool,
        device: &Device,
    ) -> Result<ObfStack> {
        if arch == ObfArch::Bottleneck && !(1..=4096).contains(&bottleneck) {
            return Err(Error::Config {
                field: "bottleneck",
                reason: format!("{bottleneck} is not in 1..=4096"),
            });
        }
        if arch == ObfArch::Bottleneck && !(1..=16384).contains(&hidden) {
            return Err(Error::Config {
                field: "hidden",
                reason: format!("{hidden} is not in 1..=16384"),
            });
        }
        if seeds.is_empty() {
            return Err(Error::Config {
                field: "k",
                reason: "at least one obfuscator is needed".into(),
            });
        }
        let specs = arch.layers_for(rows, cols, hidden, bottleneck, clip_output);
        let nets = seeds
            .iter()
            .map(|&seed| {
                let mut rng = SplitMix64::new(init_stream(seed));
                let layers = specs
                    .iter()
                    .map(|spec| {
                        let fan_in = match *spec {
                            LayerSpec::Dense { inputs, .. } => inputs,
                            LayerSpec::Conv2d {
                                in_channels, kernel, ..
                            } => in_channels * kernel * kernel,
                        };
                        let bound = 1.0 / (fan_in as f32).sqrt();
                        let wn: usize = spec.weight_shape().iter().product();
                        let bn: usize = spec.bias_shape().iter().product();
                        let weight = (0..wn).map(|_| rng.uniform(bound)).collect();
                        let bias = (0..bn).map(|_| rng.uniform(bound)).collect();
                        LayerWeights { weight, bias }
                    })
                    .collect();
                Net::from_layers(&specs, layers, device)
            })
            .collect();
        Ok(ObfStack {
            nets,
            arch,
            seeds: seeds.to_vec(),
            rows,
            cols,
            specs,
        })
    }

    /// The architecture of every net in the stack.
    pub fn arch(&self) -> ObfArch {
        self.arch
    }

    /// Whether the nets' last layer clips to the raw image range instead of applying ReLU.
    pub fn clips_output(&self) -> bool {
        self.nets.first().is_some_and(|n| n.clip.is_some())
    }

    /// The layer specs of every net (as written to a bundle).
    pub fn layer_specs(&self) -> Vec<LayerSpec> {
        self.specs.clone()
    }

    /// Multiply-adds per sample of one net.
    pub fn macs(&self) -> u64 {
        self.specs.iter().map(LayerSpec::macs).sum()
    }

    /// Number of nets (K).
    pub fn k(&self) -> usize {
        self.seeds.len()
    }

    /// The seed of each net.
    pub fn seeds(&self) -> &[u64] {
        &self.seeds
    }

    /// Image height and width the nets take.
    pub fn image_size(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Runs net k on sample batch k.
    ///
    /// # Shapes
    /// `x`: `[K, B, rows·cols]` → `[K, B, rows·cols]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, b, d] = x.dims();
        let outs = self
            .nets
            .iter()
            .enumerate()
            .map(|(k, net)| net.forward(x.clone().narrow(0, k, 1).reshape([b, d]), self.rows, self.cols))
            .collect();
        Tensor::stack(outs, 0)
    }

    /// Runs net `net` alone on a batch (used by the privacy attacks, which re-run one candidate
    /// net on a reconstruction).
    ///
    /// # Shapes
    /// `x`: `[B, rows·cols]` → `[B, rows·cols]`.
    pub fn forward_net(&self, net: usize, x: Tensor<2>) -> Result<Tensor<2>> {
        let n = self.nets.get(net).ok_or_else(|| Error::Config {
            field: "net",
            reason: format!("net {net} of {}", self.seeds.len()),
        })?;
        Ok(n.forward(x, self.rows, self.cols))
    }

    /// A stack of the nets `nets` of this one (in that order), e.g. net 0 alone for K = 1.
    pub fn subset(&self, nets: &[usize]) -> Result<ObfStack> {
        if nets.is_empty() {
            return Err(Error::Config {
                field: "nets",
                reason: "at least one net is needed".into(),
            });
        }
        let mut out = Vec::with_capacity(nets.len());
        let mut seeds = Vec::with_capacity(nets.len());
        for &i in nets {
            let net = self.nets.get(i).ok_or_else(|| Error::Config {
                field: "nets",
                reason: format!("net {i} of {}", self.seeds.len()),
            })?;
            out.push(net.clone());
            seeds.push(self.seeds[i]);
        }
        Ok(ObfStack {
            nets: out,
            arch: self.arch,
            seeds,
            rows: self.rows,
            cols: self.cols,
            specs: self.specs.clone(),
        })
    }

    /// Runs every net on the same samples.
    ///
    /// # Shapes
    /// `x`: `[B, rows·cols]` → `[K, B, rows·cols]`.
    pub fn forward_all(&self, x: Tensor<2>) -> Tensor<3> {
        let outs = self
            .nets
            .iter()
            .map(|net| net.forward(x.clone(), self.rows, self.cols))
            .collect();
        Tensor::stack(outs, 0)
    }

    /// Net k's parameters in the bundle's layout (dense weight `[out, in]`, conv weight
    /// `[out_ch, in_ch, kh, kw]`), layer by layer.
    pub fn net_weights(&self, net: usize) -> Result<Vec<LayerWeights>> {
        self.nets
            .get(net)
            .ok_or_else(|| Error::Config {
                field: "net",
                reason: format!("net {net} of {}", self.k()),
            })?
            .weights()
    }
}

fn init_stream(seed: u64) -> u64 {
    seed ^ 0x6f62_666e_6574_0001
}

/// The data-order stream of a net with this seed (independent of its init stream).
pub(crate) fn order_stream(seed: u64) -> u64 {
    seed ^ 0x6f62_666e_6574_0002
}

impl ObfStack {
    /// Rebuilds a stack from the nets of a validated bundle (all nets must share one
    /// architecture known to this engine). Used to evaluate a shipped bundle and to check that
    /// export loses nothing.
    pub fn from_bundle(bundle: &obfnet_core::Bundle, device: &Device) -> Result<ObfStack> {
        let m = &bundle.manifest;
        let first = m.nets.first().ok_or(Error::Config {
            field: "bundle",
            reason: "holds no nets".into(),
        })?;
        let arch = ObfArch::from_name(&first.arch).ok_or_else(|| Error::Config {
            field: "arch",
            reason: format!("unknown architecture {:?}", first.arch),
        })?;
        let (rows, cols) = match m.input.shape.as_slice() {
            [1, r, c] => (*r, *c),
            other => {
                return Err(Error::BundleInputShape {
                    shape: other.to_vec(),
                });
            }
        };
        let width = arch.bottleneck_of(&first.layers).unwrap_or(DEFAULT_BOTTLENECK);
        let hidden = arch.hidden_of(&first.layers).unwrap_or(DEFAULT_HIDDEN);
        let clipped = first.layers == arch.layers_for(rows, cols, hidden, width, true);
        let specs = arch.layers_for(rows, cols, hidden, width, clipped);
        if specs.last().is_some_and(|l| l.activation() == Activation::Clip)
            && m.normalisation != NORMALISATION
        {
            return Err(Error::Config {
                field: "bundle",
                reason: "clip layers need the engine's normalisation".into(),
            });
        }
        let mut nets = Vec::with_capacity(m.nets.len());
        for (i, spec) in m.nets.iter().enumerate() {
            if spec.arch != first.arch || spec.layers != specs {
                return Err(Error::Config {
                    field: "bundle",
                    reason: format!("net {i} differs in architecture from net 0"),
                });
            }
            let layers = (0..specs.len())
                .map(|l| {
                    let (w, b) = bundle
                        .layer_weights(i, l)
                        .ok_or(Error::MissingWeights { net: i, layer: l })?;
                    Ok(LayerWeights {
                        weight: w.to_vec(),
                        bias: b.to_vec(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            nets.push(Net::from_layers(&specs, layers, device));
        }
        let seeds = m.nets.iter().map(|n| n.seed).collect();
        Ok(ObfStack {
            nets,
            arch,
            seeds,
            rows,
            cols,
            specs,
        })
    }
}
