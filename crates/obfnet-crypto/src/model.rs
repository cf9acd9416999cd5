//! The CryptoNets-style network both cryptographic baselines evaluate, its training with the
//! project's burn engine, and its integer (fixed-point) form.
//!
//! Architecture (a smaller CryptoNets, see the crate docs for why):
//! conv 5 maps of 5×5, stride 2, no padding (28×28 → 5×12×12 = 720) → **square** → dense 720 → 10.
//! One multiplicative level: one square is the only ciphertext × ciphertext product.
//!
//! Fixed-point form: the input pixel `p ∈ 0..=255` becomes `q = round(p · L / 255) ∈ 0..=L`
//! (`L = input_max`, 15 by default: 4 bits); weights become integers with `weight_bits` bits
//! (sign included) by a per-layer scale. Every value after that is an exact integer: the scale of
//! the logits is `s_fc · (s_conv · L)²`, and only the argmax is used, so no rescaling (and no
//! truncation) is ever needed — the HE and 2PC runs must reproduce [`IntNet::forward`] bit for bit.

use std::time::Instant;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use obfnet_data::LabeledImages;
use obfnet_nn::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Image side the network takes.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
/// Convolution kernel side.
pub const KERNEL: usize = 5;
/// Convolution stride.
pub const STRIDE: usize = 2;
/// Output side of the convolution: (28 − 5) / 2 + 1.
pub const CONV_SIDE: usize = (SIDE - KERNEL) / STRIDE + 1;
/// Classes.
pub const CLASSES: usize = 10;

/// How the square-activation net is trained and quantised. Written next to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SquareNetConfig {
    /// Convolution maps (CryptoNets: 5).
    pub maps: usize,
    /// Passes over the training split.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Adam learning rate (cosine-decayed to 5 % over the run).
    pub learning_rate: f64,
    /// Seeds initialisation and data order.
    pub seed: u64,
    /// Train on at most this many images (all when `None`).
    pub limit: Option<usize>,
    /// Largest input level `L`: pixels are quantised to `0..=L` (15 = 4 bits).
    pub input_max: u8,
    /// Bits of every integer weight, sign included (2..=16). 6 keeps the worst case at ≈37 bits,
    /// under the 43-bit smallest ciphertext modulus BFV's plaintext modulus must stay below
    /// (8 bits: ≈43.5 bits, too many; accuracy 98.12 % vs 98.09 % with 6, measured).
    pub weight_bits: u32,
}

impl Default for SquareNetConfig {
    fn default() -> Self {
        SquareNetConfig {
            maps: 5,
            epochs: 5,
            batch_size: 64,
            learning_rate: 1e-2,
            seed: 7,
            limit: None,
            input_max: 15,
            weight_bits: 6,
        }
    }
}

impl SquareNetConfig {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| {
            Err(Error::Parameter {
                name,
                reason: reason.into(),
            })
        };
        if !(1..=64).contains(&self.maps) {
            return bad("maps", "must be in 1..=64");
        }
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", "must be finite and positive");
        }
        if self.input_max == 0 {
            return bad("input_max", "must be at least 1");
        }
        if !(2..=16).contains(&self.weight_bits) {
            return bad("weight_bits", "must be in 2..=16");
        }
        Ok(())
    }
}

/// The float network as trained by burn.
#[derive(Module, Debug)]
pub struct SquareNet {
    conv: Conv2d,
    fc: Linear,
}

impl SquareNet {
    fn new(maps: usize, device: &Device) -> SquareNet {
        SquareNet {
            conv: Conv2dConfig::new([1, maps], [KERNEL, KERNEL])
                .with_stride([STRIDE, STRIDE])
                .init(device),
            fc: LinearConfig::new(maps * CONV_SIDE * CONV_SIDE, CLASSES).init(device),
        }
    }

    /// Logits.
    ///
    /// # Shapes
    /// `x`: `[n, 784]` (pixels as `q / L` in `[0, 1]`) → `[n, 10]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [n, _] = x.dims();
        let h = self.conv.forward(x.reshape([n, 1, SIDE, SIDE]));
        let maps = h.dims()[1];
        let h = h.powi_scalar(2).reshape([n, maps * CONV_SIDE * CONV_SIDE]);
        self.fc.forward(h)
    }
}

/// The integer network: what the plaintext reference, HE and 2PC all compute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntNet {
    /// Convolution maps.
    pub maps: usize,
    /// Largest input level `L`.
    pub input_max: u8,
    /// Bits of every weight, sign included.
    pub weight_bits: u32,
    /// Convolution weights, `[maps][5][5]` row-major.
    pub conv_w: Vec<i64>,
    /// Convolution biases, `[maps]` (scale `s_conv · L`).
    pub conv_b: Vec<i64>,
    /// Dense weights, `[10][maps·144]` row-major (output-major).
    pub fc_w: Vec<i64>,
    /// Dense biases, `[10]` (scale `s_fc · (s_conv · L)²`).
    pub fc_b: Vec<i64>,
}

impl IntNet {
    /// A random, untrained net with full-range weights (`weight_bits` bits) and biases: a fixture
    /// for protocol tests and benchmarks, where only the arithmetic matters.
    pub fn random(maps: usize, input_max: u8, weight_bits: u32, seed: u64) -> IntNet {
        let mut r = SplitMix64::new(seed);
        let lim = (1i64 << (weight_bits.clamp(2, 16) - 1)) - 1;
        let mut w = |n: usize, lim: i64| -> Vec<i64> {
            (0..n)
                .map(|_| r.below((2 * lim + 1) as usize) as i64 - lim)
                .collect()
        };
        let hidden = maps * CONV_SIDE * CONV_SIDE;
        IntNet {
            maps,
            input_max,
            weight_bits: weight_bits.clamp(2, 16),
            conv_w: w(maps * 25, lim),
            conv_b: w(maps, lim * 8),
            fc_w: w(CLASSES * hidden, lim),
            fc_b: w(CLASSES, lim * 1000),
        }
    }

    /// Width of the hidden layer (`maps · 12 · 12`).
    pub fn hidden(&self) -> usize {
        self.maps * CONV_SIDE * CONV_SIDE
    }

    /// Checks the shapes of the weight vectors.
    pub fn validate(&self) -> Result<()> {
        let h = self.hidden();
        let ok = self.maps > 0
            && self.input_max > 0
            && self.conv_w.len() == self.maps * KERNEL * KERNEL
            && self.conv_b.len() == self.maps
            && self.fc_w.len() == CLASSES * h
            && self.fc_b.len() == CLASSES;
        let lim = 1i64 << self.weight_bits.clamp(2, 16).saturating_sub(1);
        let in_range = self
            .conv_w
            .iter()
            .chain(&self.fc_w)
            .all(|w| (-lim..lim).contains(w));
        if ok && in_range {
            Ok(())
        } else {
            Err(Error::Format(
                "integer net: weight shapes or ranges do not match maps / weight_bits".into(),
            ))
        }
    }

    /// Quantises a pixel `0..=255` to `0..=L`.
    pub fn quantise_pixel(&self, p: u8) -> i64 {
        ((u32::from(p) * u32::from(self.input_max) + 127) / 255) as i64
    }

    /// Quantised image (checked length).
    pub fn quantise_image(&self, pixels: &[u8]) -> Result<Vec<i64>> {
        if pixels.len() != PIXELS {
            return Err(Error::Input(format!(
                "an image has {PIXELS} pixels, got {}",
                pixels.len()
            )));
        }
        Ok(pixels.iter().map(|&p| self.quantise_pixel(p)).collect())
    }

    /// Index of the input pixel under kernel tap `(ky, kx)` of output position `pos` (`oy·12+ox`).
    pub fn tap(pos: usize, ky: usize, kx: usize) -> usize {
        let (oy, ox) = (pos / CONV_SIDE, pos % CONV_SIDE);
        (oy * STRIDE + ky) * SIDE + ox * STRIDE + kx
    }

    /// The convolution on quantised input (exact integers), `[maps·144]`.
    pub fn conv(&self, q: &[i64]) -> Vec<i64> {
        let cs = CONV_SIDE * CONV_SIDE;
        let mut out = vec![0i64; self.hidden()];
        for m in 0..self.maps {
            for pos in 0..cs {
                let mut acc = self.conv_b[m];
                for ky in 0..KERNEL {
                    for kx in 0..KERNEL {
                        acc += self.conv_w[m * 25 + ky * KERNEL + kx] * q[Self::tap(pos, ky, kx)];
                    }
                }
                out[m * cs + pos] = acc;
            }
        }
        out
    }

    /// The dense layer on the squared hidden values, `[10]`.
    pub fn dense(&self, h: &[i64]) -> [i64; CLASSES] {
        let mut out = [0i64; CLASSES];
        let width = self.hidden();
        for (o, v) in out.iter_mut().enumerate() {
            let row = &self.fc_w[o * width..(o + 1) * width];
            *v = self.fc_b[o] + row.iter().zip(h).map(|(w, x)| w * x).sum::<i64>();
        }
        out
    }

    /// Exact integer logits of one image (the reference the cryptographic runs must equal).
    /// Overflow cannot happen when [`IntNet::worst_case_bits`] ≤ 63 (checked by callers).
    pub fn forward(&self, pixels: &[u8]) -> Result<[i64; CLASSES]> {
        let q = self.quantise_image(pixels)?;
        let h: Vec<i64> = self.conv(&q).into_iter().map(|c| c * c).collect();
        Ok(self.dense(&h))
    }

    /// log2 of the largest absolute value any intermediate can take for any input in `0..=L`,
    /// plus one bit for the sign: the plaintext space (HE) or ring (2PC) must hold this many
    /// signed bits.
    pub fn worst_case_bits(&self) -> f64 {
        let l = i128::from(self.input_max);
        let cs = CONV_SIDE * CONV_SIDE;
        let conv_max: Vec<i128> = (0..self.maps)
            .map(|m| {
                let s: i128 = self.conv_w[m * 25..(m + 1) * 25]
                    .iter()
                    .map(|w| i128::from(w.abs()))
                    .sum();
                s * l + i128::from(self.conv_b[m].abs())
            })
            .collect();
        let mut worst: i128 = conv_max.iter().map(|c| c * c).max().unwrap_or(0);
        let width = self.hidden();
        for o in 0..CLASSES {
            let mut s = i128::from(self.fc_b[o].abs());
            for j in 0..width {
                let c = conv_max[j / cs];
                s += i128::from(self.fc_w[o * width + j].abs()) * c * c;
            }
            worst = worst.max(s);
        }
        (worst.max(1) as f64).log2() + 1.0
    }

    /// Multiply-accumulates of one inference (conv + square + dense), for the cost table.
    pub fn macs(&self) -> u64 {
        let h = self.hidden() as u64;
        h * 25 + h + h * CLASSES as u64
    }

    /// Accuracy of [`IntNet::forward`] on `images` (first `limit` if given).
    pub fn accuracy(&self, images: &LabeledImages, limit: Option<usize>) -> Result<f64> {
        let n = limit.unwrap_or(usize::MAX).min(images.len());
        if n == 0 {
            return Err(Error::Input("no images to evaluate".into()));
        }
        let mut right = 0usize;
        for i in 0..n {
            let logits = self.forward(image(images, i))?;
            if argmax(&logits) == usize::from(images.labels[i]) {
                right += 1;
            }
        }
        Ok(right as f64 / n as f64)
    }
}

/// The pixels of image `i`.
pub fn image(images: &LabeledImages, i: usize) -> &[u8] {
    &images.pixels[i * PIXELS..(i + 1) * PIXELS]
}

/// Index of the largest logit (the first one on ties).
pub fn argmax(logits: &[i64]) -> usize {
    let mut best = 0;
    for (i, v) in logits.iter().enumerate() {
        if *v > logits[best] {
            best = i;
        }
    }
    best
}

/// What training measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SquareNetReport {
    /// Test accuracy of the float net on quantised inputs.
    pub float_accuracy: f64,
    /// Test accuracy of the integer net (the one HE and 2PC compute).
    pub int_accuracy: f64,
    /// Worst-case signed bits of the integer net.
    pub worst_case_bits: f64,
    /// Seconds of training.
    pub train_seconds: f64,
    /// Mean training loss per epoch.
    pub epoch_losses: Vec<f32>,
}

/// The model file: config, report and integer weights (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CryptoNetFile {
    /// Format tag.
    pub format: String,
    /// How it was trained.
    pub config: SquareNetConfig,
    /// What was measured.
    pub report: SquareNetReport,
    /// The weights.
    pub net: IntNet,
}

/// Format tag of [`CryptoNetFile`].
pub const CRYPTONET_FORMAT: &str = "obfnet-cryptonet-v1";

impl CryptoNetFile {
    /// Parses and validates a model file.
    pub fn from_json(bytes: &[u8]) -> Result<CryptoNetFile> {
        let f: CryptoNetFile = serde_json::from_slice(bytes).map_err(|e| Error::Format(e.to_string()))?;
        if f.format != CRYPTONET_FORMAT {
            return Err(Error::Format(format!(
                "format `{}`, expected `{CRYPTONET_FORMAT}`",
                f.format
            )));
        }
        f.net.validate()?;
        Ok(f)
    }
}

fn inputs_tensor(net_input_max: u8, images: &LabeledImages, idx: &[usize], device: &Device) -> Tensor<2> {
    let l = f32::from(net_input_max);
    let mut v = Vec::with_capacity(idx.len() * PIXELS);
    for &i in idx {
        for &p in image(images, i) {
            let q = (u32::from(p) * u32::from(net_input_max) + 127) / 255;
            v.push(q as f32 / l);
        }
    }
    Tensor::from_data(TensorData::new(v, [idx.len(), PIXELS]), device)
}

fn check_images(images: &LabeledImages) -> Result<()> {
    if images.rows != SIDE || images.cols != SIDE || images.is_empty() {
        return Err(Error::Input(format!(
            "the square net takes non-empty 28×28 images, got {} of {}×{}",
            images.len(),
            images.rows,
            images.cols
        )));
    }
    Ok(())
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Format(format!("tensor read-back: {e:?}")))
}

/// Trains the float square net on `train` with burn, quantises it, and measures both on `test`.
/// `progress(step, total)` is called after every step.
pub fn train_square_net(
    cfg: &SquareNetConfig,
    train: &LabeledImages,
    test: &LabeledImages,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(IntNet, SquareNetReport)> {
    cfg.validate()?;
    check_images(train)?;
    check_images(test)?;
    let device = obfnet_nn::default_device();
    device.seed(cfg.seed);
    let mut model = SquareNet::new(cfg.maps, &device);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let ce = CrossEntropyLossConfig::new().init(&device);
    let n = cfg.limit.unwrap_or(usize::MAX).min(train.len());
    let steps = n.div_ceil(cfg.batch_size) * cfg.epochs;
    let mut rng = SplitMix64::new(cfg.seed);
    let t0 = Instant::now();
    let mut step = 0usize;
    let mut epoch_losses = Vec::new();
    let plain = device.clone().inner();
    for _ in 0..cfg.epochs {
        let order = rng.permutation(n);
        let mut sum = 0.0f64;
        let mut count = 0usize;
        for chunk in order.chunks(cfg.batch_size) {
            let x = inputs_tensor(cfg.input_max, train, chunk, &plain).autodiff();
            let labels: Vec<i64> = chunk.iter().map(|&i| i64::from(train.labels[i])).collect();
            let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [chunk.len()]), &plain).autodiff();
            let t = step as f64 / steps.max(1) as f64;
            let lr = cfg.learning_rate * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()));
            let loss = ce.forward(model.forward(x), y);
            let value = to_vec(loss.clone().inner())?.first().copied().unwrap_or(f32::NAN);
            if !value.is_finite() {
                return Err(Error::Diverged { step, loss: value });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            sum += f64::from(value);
            count += 1;
            step += 1;
            progress(step as u64, steps as u64);
        }
        epoch_losses.push((sum / count.max(1) as f64) as f32);
        tracing::info!(loss = ?epoch_losses.last(), "square net epoch done");
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    let model = model.valid();

    // Float accuracy on the test split (quantised inputs).
    let mut right = 0usize;
    let idx: Vec<usize> = (0..test.len()).collect();
    for chunk in idx.chunks(1000) {
        let logits = to_vec(model.forward(inputs_tensor(cfg.input_max, test, chunk, &plain)))?;
        for (r, &i) in chunk.iter().enumerate() {
            let row = &logits[r * CLASSES..(r + 1) * CLASSES];
            let mut best = 0;
            for c in 1..CLASSES {
                if row[c] > row[best] {
                    best = c;
                }
            }
            if best == usize::from(test.labels[i]) {
                right += 1;
            }
        }
    }
    let float_accuracy = right as f64 / test.len() as f64;

    let net = quantise(cfg, &model)?;
    let int_accuracy = net.accuracy(test, None)?;
    let report = SquareNetReport {
        float_accuracy,
        int_accuracy,
        worst_case_bits: net.worst_case_bits(),
        train_seconds,
        epoch_losses,
    };
    Ok((net, report))
}

fn scale_for(ws: &[f32], bits: u32) -> f64 {
    let max = ws.iter().fold(0f32, |m, w| m.max(w.abs())).max(1e-12);
    f64::from((1u32 << (bits - 1)) - 1) / f64::from(max)
}

fn quantise(cfg: &SquareNetConfig, model: &SquareNet) -> Result<IntNet> {
    let maps = cfg.maps;
    let hidden = maps * CONV_SIDE * CONV_SIDE;
    let conv_w = to_vec(model.conv.weight.val())?; // [maps, 1, 5, 5]
    let conv_b = match &model.conv.bias {
        Some(b) => to_vec(b.val())?,
        None => vec![0.0; maps],
    };
    let fc_w_io = to_vec(model.fc.weight.val())?; // [hidden, 10]
    let fc_b = match &model.fc.bias {
        Some(b) => to_vec(b.val())?,
        None => vec![0.0; CLASSES],
    };
    let s_conv = scale_for(&conv_w, cfg.weight_bits);
    let s_fc = scale_for(&fc_w_io, cfg.weight_bits);
    let l = f64::from(cfg.input_max);
    let s1 = s_conv * l; // scale of the conv output (input q = x · L)
    let round = |v: f64| v.round() as i64;
    let mut fc_w = vec![0i64; CLASSES * hidden];
    for j in 0..hidden {
        for o in 0..CLASSES {
            fc_w[o * hidden + j] = round(f64::from(fc_w_io[j * CLASSES + o]) * s_fc);
        }
    }
    let net = IntNet {
        maps,
        input_max: cfg.input_max,
        weight_bits: cfg.weight_bits,
        conv_w: conv_w.iter().map(|&w| round(f64::from(w) * s_conv)).collect(),
        conv_b: conv_b.iter().map(|&b| round(f64::from(b) * s1)).collect(),
        fc_w,
        fc_b: fc_b
            .iter()
            .map(|&b| round(f64::from(b) * s_fc * s1 * s1))
            .collect(),
    };
    net.validate()?;
    Ok(net)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn random_net(maps: usize, seed: u64) -> IntNet {
        IntNet::random(maps, 15, 8, seed)
    }

    #[test]
    fn taps_cover_the_image_and_stay_inside() {
        let mut seen = vec![false; PIXELS];
        for pos in 0..CONV_SIDE * CONV_SIDE {
            for ky in 0..KERNEL {
                for kx in 0..KERNEL {
                    seen[IntNet::tap(pos, ky, kx)] = true;
                }
            }
        }
        // Stride 2 over 28 with a 5 kernel reaches column 27 (11·2 + 4 = 26)? It reaches 26:
        // the last row and column are never read.
        let unread = seen.iter().filter(|s| !**s).count();
        assert_eq!(unread, 28 + 27);
    }

    #[test]
    fn worst_case_bound_holds_for_extreme_inputs() {
        let net = random_net(2, 3);
        let bits = net.worst_case_bits();
        for img in [vec![0u8; PIXELS], vec![255u8; PIXELS]] {
            let l = net.forward(&img).expect("forward");
            for v in l {
                assert!(((v.unsigned_abs() as f64).log2() + 1.0) <= bits);
            }
        }
    }

    #[test]
    fn config_validation_rejects_bad_values() {
        let bad = SquareNetConfig {
            weight_bits: 1,
            ..SquareNetConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::Parameter {
                name: "weight_bits",
                ..
            })
        ));
        let bad = SquareNetConfig {
            input_max: 0,
            ..SquareNetConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::Parameter {
                name: "input_max",
                ..
            })
        ));
    }
}
