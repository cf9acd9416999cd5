use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use obfnet_core::{Activation, LayerSpec, LayerWeights};
use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;
use crate::{Error, Result};

/// The obfuscator architectures. All map a 28×28 image to a 28×28 image (784 → 784) and end in a
/// ReLU, as in the ObfNet papers.
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
}

const CONV_CHANNELS: usize = 4;
const CONV_KERNEL: usize = 5;
const CONV_STRIDE: usize = 2;
const CONV_PAD: usize = 2;

impl ObfArch {
    /// Every architecture, in a fixed order.
    pub const ALL: [ObfArch; 3] = [ObfArch::ObfNet1, ObfArch::ObfNet2, ObfArch::Conv];

    /// The name used on the command line and in bundles.
    pub fn name(self) -> &'static str {
        match self {
            ObfArch::ObfNet1 => "obfnet1",
            ObfArch::ObfNet2 => "obfnet2",
            ObfArch::Conv => "conv",
        }
    }

    /// Parses [`ObfArch::name`].
    pub fn from_name(name: &str) -> Option<ObfArch> {
        ObfArch::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The layers of one net of this architecture for `rows × cols` single-channel images.
    pub fn layers(self, rows: usize, cols: usize) -> Vec<LayerSpec> {
        let d = rows * cols;
        let dense = |inputs, outputs| LayerSpec::Dense { inputs, outputs, act: Activation::Relu };
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
        }
    }
}

impl std::fmt::Display for ObfArch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// K dense layers side by side: net k computes `x_k · W_k + b_k`.
#[derive(Module, Debug)]
struct StackedDense {
    /// `[K, in, out]`
    weight: Param<Tensor<3>>,
    /// `[K, 1, out]`
    bias: Param<Tensor<3>>,
}

/// K obfuscators of one architecture, stored and trained as one stacked module.
///
/// Net `k` owns slice `k` of every parameter; nothing couples the nets except that they are
/// computed in the same batched operations.
#[derive(Module, Debug)]
pub struct ObfStack {
    /// Conv variant only: `[K·C, 1, 5, 5]` (grouped convolution, K groups).
    conv_weight: Option<Param<Tensor<4>>>,
    /// Conv variant only: `[K·C]`.
    conv_bias: Option<Param<Tensor<1>>>,
    dense: Vec<StackedDense>,
    #[module(skip)]
    arch: ObfArch,
    #[module(skip)]
    seeds: Vec<u64>,
    #[module(skip)]
    rows: usize,
    #[module(skip)]
    cols: usize,
}

impl ObfStack {
    /// K freshly initialised nets, net k from `seeds[k]` alone (PyTorch's default
    /// initialisation: every weight and bias uniform in ±1/√fan_in).
    pub fn new(arch: ObfArch, seeds: &[u64], rows: usize, cols: usize, device: &Device) -> Result<ObfStack> {
        if seeds.is_empty() {
            return Err(Error::Config { field: "k", reason: "at least one obfuscator is needed".into() });
        }
        let specs = arch.layers(rows, cols);
        let k = seeds.len();
        // Per-net parameter vectors, layer by layer, generated from the net's own seed.
        let mut per_layer: Vec<(Vec<f32>, Vec<f32>)> = vec![(Vec::new(), Vec::new()); specs.len()];
        for &seed in seeds {
            let mut rng = SplitMix64::new(init_stream(seed));
            for (l, spec) in specs.iter().enumerate() {
                let (fan_in, wn, bn) = match *spec {
                    LayerSpec::Dense { inputs, outputs, .. } => (inputs, inputs * outputs, outputs),
                    LayerSpec::Conv2d { in_channels, out_channels, kernel, .. } => {
                        let fan = in_channels * kernel * kernel;
                        (fan, out_channels * fan, out_channels)
                    }
                };
                let bound = 1.0 / (fan_in as f32).sqrt();
                per_layer[l].0.extend((0..wn).map(|_| rng.uniform(bound)));
                per_layer[l].1.extend((0..bn).map(|_| rng.uniform(bound)));
            }
        }
        let mut conv_weight = None;
        let mut conv_bias = None;
        let mut dense = Vec::new();
        for (spec, (w, b)) in specs.iter().zip(per_layer) {
            match *spec {
                LayerSpec::Dense { inputs, outputs, .. } => {
                    // Generated as [out, in] per net (the bundle's layout); stored as [K, in, out].
                    let w = Tensor::<3>::from_data(TensorData::new(w, [k, outputs, inputs]), device).swap_dims(1, 2);
                    let b = Tensor::<3>::from_data(TensorData::new(b, [k, 1, outputs]), device);
                    dense.push(StackedDense { weight: Param::from_tensor(w), bias: Param::from_tensor(b) });
                }
                LayerSpec::Conv2d { out_channels, kernel, .. } => {
                    let w = Tensor::<4>::from_data(TensorData::new(w, [k * out_channels, 1, kernel, kernel]), device);
                    let b = Tensor::<1>::from_data(TensorData::new(b, [k * out_channels]), device);
                    conv_weight = Some(Param::from_tensor(w));
                    conv_bias = Some(Param::from_tensor(b));
                }
            }
        }
        Ok(ObfStack { conv_weight, conv_bias, dense, arch, seeds: seeds.to_vec(), rows, cols })
    }

    /// The architecture of every net in the stack.
    pub fn arch(&self) -> ObfArch {
        self.arch
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
        let [k, b, d] = x.dims();
        let mut h = x;
        if let (Some(w), Some(bias)) = (&self.conv_weight, &self.conv_bias) {
            // [K, B, d] -> [B, K, rows, cols]: the K nets become the K groups of one convolution.
            let img = h.swap_dims(0, 1).reshape([b, k, self.rows, self.cols]);
            let opts = ConvOptions::new([CONV_STRIDE; 2], [CONV_PAD; 2], [1, 1], k);
            let y = relu(conv2d(img, w.val(), Some(bias.val()), opts));
            let [_, _, oh, ow] = y.dims();
            // [B, K·C, oh, ow] -> [K, B, C·oh·ow] (channel-major per net, as in the bundle).
            h = y.reshape([b, k, CONV_CHANNELS * oh * ow]).swap_dims(0, 1);
        }
        for layer in &self.dense {
            h = relu(h.matmul(layer.weight.val()) + layer.bias.val());
        }
        debug_assert_eq!(h.dims()[2], d);
        h
    }

    /// Runs every net on the same samples.
    ///
    /// # Shapes
    /// `x`: `[B, rows·cols]` → `[K, B, rows·cols]`.
    pub fn forward_all(&self, x: Tensor<2>) -> Tensor<3> {
        let [b, d] = x.dims();
        self.forward(x.unsqueeze_dim::<3>(0).expand([self.k(), b, d]))
    }

    /// Net k's parameters in the bundle's layout (dense weight `[out, in]`, conv weight
    /// `[out_ch, in_ch, kh, kw]`), layer by layer.
    pub fn net_weights(&self, net: usize) -> Result<Vec<LayerWeights>> {
        if net >= self.k() {
            return Err(Error::Config { field: "net", reason: format!("net {net} of {}", self.k()) });
        }
        let mut out = Vec::new();
        if let (Some(w), Some(b)) = (&self.conv_weight, &self.conv_bias) {
            let c = CONV_CHANNELS;
            let w = w.val().slice([net * c..(net + 1) * c]).reshape([c, CONV_KERNEL * CONV_KERNEL]);
            let b = b.val().slice([net * c..(net + 1) * c]).reshape([1, c]);
            out.push(LayerWeights { weight: crate::data::to_vec(w)?, bias: crate::data::to_vec(b)? });
        }
        for layer in &self.dense {
            let [_, inp, outp] = layer.weight.dims();
            let w = layer.weight.val().slice([net..net + 1]).reshape([inp, outp]).transpose();
            let b = layer.bias.val().slice([net..net + 1]).reshape([1, outp]);
            out.push(LayerWeights { weight: crate::data::to_vec(w)?, bias: crate::data::to_vec(b)? });
        }
        Ok(out)
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
        let first = m.nets.first().ok_or(Error::Config { field: "bundle", reason: "holds no nets".into() })?;
        let arch = ObfArch::from_name(&first.arch)
            .ok_or_else(|| Error::Config { field: "arch", reason: format!("unknown architecture {:?}", first.arch) })?;
        let (rows, cols) = match m.input.shape.as_slice() {
            [1, r, c] => (*r, *c),
            other => return Err(Error::Shape(format!("bundle input shape {other:?} is not [1, rows, cols]"))),
        };
        let specs = arch.layers(rows, cols);
        let seeds: Vec<u64> = m.nets.iter().map(|n| n.seed).collect();
        let mut stack = ObfStack::new(arch, &seeds, rows, cols, device)?;
        let k = seeds.len();
        for (net, spec) in m.nets.iter().enumerate() {
            if spec.arch != first.arch || spec.layers != specs {
                return Err(Error::Config { field: "bundle", reason: format!("net {net} differs in architecture from net 0") });
            }
        }
        let layer_data = |layer: usize| -> Result<(Vec<f32>, Vec<f32>)> {
            let mut w = Vec::new();
            let mut b = Vec::new();
            for net in 0..k {
                let (lw, lb) = bundle
                    .layer_weights(net, layer)
                    .ok_or_else(|| Error::Shape(format!("net {net} layer {layer} has no f32 weights")))?;
                w.extend_from_slice(lw);
                b.extend_from_slice(lb);
            }
            Ok((w, b))
        };
        let mut dense_i = 0;
        for (l, spec) in specs.iter().enumerate() {
            let (w, b) = layer_data(l)?;
            match *spec {
                LayerSpec::Dense { inputs, outputs, .. } => {
                    let wt = Tensor::<3>::from_data(TensorData::new(w, [k, outputs, inputs]), device).swap_dims(1, 2);
                    let bt = Tensor::<3>::from_data(TensorData::new(b, [k, 1, outputs]), device);
                    stack.dense[dense_i] = StackedDense { weight: Param::from_tensor(wt), bias: Param::from_tensor(bt) };
                    dense_i += 1;
                }
                LayerSpec::Conv2d { out_channels, kernel, .. } => {
                    let wt = Tensor::<4>::from_data(TensorData::new(w, [k * out_channels, 1, kernel, kernel]), device);
                    let bt = Tensor::<1>::from_data(TensorData::new(b, [k * out_channels]), device);
                    stack.conv_weight = Some(Param::from_tensor(wt));
                    stack.conv_bias = Some(Param::from_tensor(bt));
                }
            }
        }
        Ok(stack)
    }
}
