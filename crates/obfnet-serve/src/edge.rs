//! Batch-1 requests on the edge runtime's kernels.
//!
//! A single image through burn's `flex` backend costs a LeNet-5 forward pass of 0.2–0.3 ms,
//! mostly fixed per-call overhead (tensor allocation, dispatch, a generic max-pool loop) rather
//! than arithmetic (≈ 0.42 M multiply-adds). The no_std edge runtime of `obfnet-core` runs the
//! same layers on one sample with no allocation per call and its SIMD kernels (convolutions as
//! one packed dense product per output position, max pooling, dense layers). So
//! [`Batch1EdgeBackend`] sends every batch of one row — a sequential client, or an idle server
//! — through an [`EdgeLeNet`] built in memory from the loaded burn model's weights, and every
//! larger batch (concurrent load, merged by the batcher) to burn as before. The two compute the
//! same function up to the summation order of `f32` (held within 1e-4 relative by the tests).

use obfnet_core::runtime::{ProgramLayer, Runtime, RuntimeConfig, Scratch};
use obfnet_core::{Activation, LayerSpec, Normalisation};
use obfnet_nn::LeNet;

use crate::backend::{InferenceBackend, LeNetBackend, ModelSpec};
use crate::{Error, Result};

const C1: usize = 6;
const C2: usize = 16;
const KS: usize = 5;
const H1: usize = 120;
const H2: usize = 84;

/// A LeNet-5 (the architecture of `obfnet_nn::LeNet`) as a program of the edge runtime:
/// conv 6@5×5 pad 2 → ReLU → max-pool 2 → conv 16@5×5 → ReLU → max-pool 2 → fc 120 → ReLU →
/// fc 84 → ReLU → fc classes, `f32`, one image at a time.
#[derive(Clone, Debug)]
pub struct EdgeLeNet {
    runtime: Runtime,
    scratch: Scratch,
    classes: usize,
}

fn edge_error(e: obfnet_core::Error) -> Error {
    Error::Backend(format!("edge runtime: {e}"))
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major (burn's `Linear` keeps `[in, out]`;
/// the runtime's dense layers take `[out, in]`).
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for (r, row) in w.chunks_exact(cols.max(1)).enumerate().take(rows) {
        for (c, &v) in row.iter().enumerate() {
            if let Some(dst) = t.get_mut(c * rows + r) {
                *dst = v;
            }
        }
    }
    t
}

impl EdgeLeNet {
    /// Copies `model`'s weights into an edge-runtime program (normalised `f32` input, as the
    /// batcher hands it; `normalisation` is only recorded).
    ///
    /// # Errors
    /// [`Error::Model`] if burn cannot read a parameter back or the parameters do not fit a
    /// LeNet-5 of the model's input size, [`Error::Backend`] if the runtime refuses the program.
    pub fn from_lenet(model: &LeNet, normalisation: Normalisation) -> Result<EdgeLeNet> {
        let w = model.weights()?;
        let (rows, cols, classes, flat) = (w.rows, w.cols, w.classes, w.flat);
        // Sizes after the first stage, as in `LeNet::forward` (pooling floors odd sides).
        let (h1, w1) = (rows / 2, cols / 2);
        let (h2c, w2c) = (h1.saturating_sub(KS - 1), w1.saturating_sub(KS - 1));
        let ((c1w, c1b), (c2w, c2b), (f1w, f1b)) = (w.conv1, w.conv2, w.fc1);
        let ((f2w, f2b), (f3w, f3b)) = (w.fc2, w.fc3);
        let (f1w, f2w, f3w) = (
            transpose(&f1w, flat, H1),
            transpose(&f2w, H1, H2),
            transpose(&f3w, H2, classes),
        );
        let conv = |in_channels, out_channels, padding, in_height, in_width| LayerSpec::Conv2d {
            in_channels,
            out_channels,
            kernel: KS,
            stride: 1,
            padding,
            in_height,
            in_width,
            act: Activation::Relu,
        };
        let dense = |inputs, outputs, act| LayerSpec::Dense { inputs, outputs, act };
        let pool = |channels, in_height, in_width| ProgramLayer::MaxPool2d {
            channels,
            size: 2,
            in_height,
            in_width,
        };
        let layers = [
            ProgramLayer::Weighted {
                spec: conv(1, C1, 2, rows, cols),
                weight: &c1w,
                bias: &c1b,
            },
            pool(C1, rows, cols),
            ProgramLayer::Weighted {
                spec: conv(C1, C2, 0, h1, w1),
                weight: &c2w,
                bias: &c2b,
            },
            pool(C2, h2c, w2c),
            ProgramLayer::Weighted {
                spec: dense(flat, H1, Activation::Relu),
                weight: &f1w,
                bias: &f1b,
            },
            ProgramLayer::Weighted {
                spec: dense(H1, H2, Activation::Relu),
                weight: &f2w,
                bias: &f2b,
            },
            ProgramLayer::Weighted {
                spec: dense(H2, classes, Activation::None),
                weight: &f3w,
                bias: &f3b,
            },
        ];
        let runtime = Runtime::from_program(rows * cols, &layers, normalisation, &RuntimeConfig::default())
            .map_err(edge_error)?;
        if runtime.output_len() != classes {
            return Err(Error::Backend(format!(
                "the edge program gives {} outputs, the model has {classes} classes",
                runtime.output_len()
            )));
        }
        Ok(EdgeLeNet {
            scratch: runtime.scratch(),
            runtime,
            classes,
        })
    }

    /// Values per image.
    pub fn input_len(&self) -> usize {
        self.runtime.input_len()
    }

    /// Class logits of one normalised image (`input_len` values) into `out` (`classes` values).
    ///
    /// # Errors
    /// [`Error::Backend`] for wrong buffer lengths.
    pub fn logits_into(&mut self, x: &[f32], out: &mut [f32]) -> Result<()> {
        self.runtime
            .run_f32(0, x, out, &mut self.scratch)
            .map_err(edge_error)
    }

    /// Class logits of one normalised image.
    ///
    /// # Errors
    /// As [`EdgeLeNet::logits_into`].
    pub fn logits(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.classes];
        self.logits_into(x, &mut out)?;
        Ok(out)
    }
}

/// The LeNet-5 server model with batches of one row on the edge runtime ([`EdgeLeNet`]) and
/// larger batches on burn ([`LeNetBackend`]). The model metadata is burn's (same model, same
/// answers up to `f32` summation order).
#[derive(Debug)]
pub struct Batch1EdgeBackend {
    burn: LeNetBackend,
    edge: EdgeLeNet,
}

impl Batch1EdgeBackend {
    /// Builds the edge program from `burn`'s loaded weights.
    ///
    /// # Errors
    /// As [`EdgeLeNet::from_lenet`].
    pub fn new(burn: LeNetBackend) -> Result<Batch1EdgeBackend> {
        let edge = EdgeLeNet::from_lenet(burn.model(), burn.spec().normalisation)?;
        Ok(Batch1EdgeBackend { burn, edge })
    }
}

impl InferenceBackend for Batch1EdgeBackend {
    fn spec(&self) -> ModelSpec {
        self.burn.spec()
    }

    fn logits(&mut self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        if n == 1 {
            self.edge.logits(x)
        } else {
            self.burn.logits(x, n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obfnet_nn::LeNetConfig;
    use obfnet_nn::burn::prelude::*;

    fn argmax(v: &[f32]) -> usize {
        v.iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |(bi, bv), (i, &x)| if x > bv { (i, x) } else { (bi, bv) },
            )
            .0
    }

    fn burn_logits(model: &LeNet, x: &[f32], n: usize) -> Vec<f32> {
        let device = obfnet_nn::default_device();
        let t = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [n, x.len() / n]), &device);
        model
            .forward(t)
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("logits")
    }

    /// Deterministic inputs: digit-like blobs (a bright stroke on a dark field, normalised like
    /// MNIST) and uniform noise over the normalised range.
    fn inputs(rows: usize, cols: usize, count: usize) -> Vec<Vec<f32>> {
        let mut rng = obfnet_nn::SplitMix64::new(99);
        let n = Normalisation::MNIST;
        (0..count)
            .map(|i| {
                (0..rows * cols)
                    .map(|p| {
                        let raw = if i % 2 == 0 {
                            let (r, c) = ((p / cols) as f32, (p % cols) as f32);
                            let (cr, cc) = (rows as f32 / 2.0 + i as f32 % 5.0 - 2.0, cols as f32 / 2.0);
                            let d = ((r - cr).powi(2) / 16.0 + (c - cc).powi(2) / 4.0).sqrt();
                            if (d - 2.0).abs() < 0.8 { 255 } else { 0 }
                        } else {
                            ((rng.uniform(1.0) + 1.0) * 127.5) as u8
                        };
                        n.apply(raw)
                    })
                    .collect()
            })
            .collect()
    }

    /// The edge program and burn agree on the same weights: logits within 1e-4 of the largest
    /// logit's magnitude, and the same label, for MNIST-sized and MFCC-sized models.
    #[test]
    fn edge_batch1_matches_burn() {
        for (seed, (rows, cols, classes)) in [(3u64, (28, 28, 10)), (4, (20, 64, 10)), (5, (13, 17, 4))] {
            let device = obfnet_nn::default_device();
            device.seed(seed);
            let cfg = LeNetConfig {
                input: [rows, cols],
                classes,
                ..LeNetConfig::default()
            };
            let model = LeNet::new(&cfg, &device);
            let mut edge = EdgeLeNet::from_lenet(&model, Normalisation::MNIST).expect("edge program");
            let xs = inputs(rows, cols, 12);
            let flat: Vec<f32> = xs.concat();
            let burn_all = burn_logits(&model, &flat, xs.len());
            for (i, x) in xs.iter().enumerate() {
                let e = edge.logits(x).expect("edge logits");
                let b1 = burn_logits(&model, x, 1);
                let bb = &burn_all[i * classes..(i + 1) * classes];
                for b in [&b1[..], bb] {
                    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
                    for (u, v) in e.iter().zip(b) {
                        assert!(
                            (u - v).abs() <= 1e-4 * scale,
                            "{rows}×{cols} image {i}: {e:?} vs {b:?}"
                        );
                    }
                    assert_eq!(argmax(&e), argmax(b), "{rows}×{cols} image {i}");
                }
            }
        }
    }

    #[test]
    fn wrong_input_length_is_an_error_not_a_panic() {
        let device = obfnet_nn::default_device();
        let model = LeNet::new(&LeNetConfig::default(), &device);
        let mut edge = EdgeLeNet::from_lenet(&model, Normalisation::MNIST).expect("edge program");
        assert_eq!(edge.input_len(), 784);
        assert!(matches!(edge.logits(&[0.0; 783]), Err(Error::Backend(_))));
    }
}
