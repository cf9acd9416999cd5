//! The training fast path for **dense** obfuscators (ObfNet1, ObfNet2, the bottleneck net)
//! against a frozen LeNet-5: closed-form forward and backward passes on `faer`'s matrix product,
//! a fused in-place Adam, and the frozen model as one block computing its forward pass, the loss
//! and the gradient with respect to its input only.
//!
//! It trains the same nets as [`crate::train_obfuscators`] (same initial weights, same data
//! order, same loss, same Adam and learning-rate schedule; the tests hold its gradients to burn
//! autodiff's and its Adam to burn's) in a fraction of the time. burn stays the engine for
//! everything else: the server model, the convolutional obfuscator, adversarial training.
//!
//! Parallelism: the K nets are split over the cores (one net at a time per core), the frozen
//! model's `K × B` batch is split over the cores; every buffer is allocated once.
#![allow(
    clippy::needless_range_loop,
    clippy::type_complexity,
    missing_debug_implementations,
    reason = "index-heavy numeric kernels; the trainer holds large scratch buffers not worth printing"
)]

mod dense;
mod gemm;
mod lenet;

use std::time::Instant;

pub use dense::{Act, Adam, AdamParams, DenseNet};
pub use lenet::{FrozenLeNet, LeNetWork, MICRO_BATCH};

use crate::config::{ObfReport, ObfTrainConfig, TrainEvent};
use crate::data::{Dataset, to_vec};
use crate::lenet::LeNet;
use crate::obf::{ObfArch, ObfStack, order_stream};
use crate::rng::SplitMix64;
use crate::{Error, Result};

/// Whether the fast path can train this configuration: dense architectures without
/// privacy-aware (adversarial) training.
pub fn supports(cfg: &ObfTrainConfig) -> bool {
    cfg.privacy.is_none()
        && matches!(
            cfg.arch,
            ObfArch::ObfNet1 | ObfArch::ObfNet2 | ObfArch::Bottleneck
        )
}

/// Median seconds of one fast-path step of `cfg.k` nets (after two warm-up steps) on the first
/// samples of `train`, against `server`: what [`crate::calibrate`] reports when `cfg` trains on
/// the fast path.
///
/// # Errors
/// As [`train_obfuscators_fast`] for configurations the fast path does not take.
pub fn time_step(cfg: &ObfTrainConfig, server: &LeNet, train: &Dataset) -> Result<f64> {
    let device = crate::default_device().inner();
    let template = ObfStack::new_design(
        cfg.arch,
        cfg.hidden,
        cfg.bottleneck,
        &cfg.seeds(),
        train.rows,
        train.cols,
        cfg.clip_output,
        &device,
    )?;
    let b = cfg.batch_size.min(train.len()).max(1);
    let mut trainer = FastTrainer::new(&template, server, b)?;
    let idx: Vec<usize> = (0..b).collect();
    let x = to_vec(train.slice(0, b))?;
    let labels = &train.labels[..b];
    let batches: Vec<&[usize]> = (0..cfg.k).map(|_| idx.as_slice()).collect();
    let mut times = Vec::new();
    for i in 0..7 {
        let t = Instant::now();
        trainer.step(&x, labels, &batches, Some(1e-3));
        if i > 1 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Worker threads: the machine's cores.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The learning rate at `step` of `total`: cosine decay from `peak` to `peak · frac`, as the
/// burn path's schedule.
pub fn cosine_lr(peak: f64, frac: f64, step: usize, total: usize) -> f64 {
    let t = step as f64 / total.max(1) as f64;
    let floor = peak * frac;
    floor + 0.5 * (peak - floor) * (1.0 + (std::f64::consts::PI * t).cos())
}

/// One net and its batch buffer.
struct NetSlot {
    net: DenseNet,
    x: Vec<f32>,
}

/// Runs `f` on every item, the items split into one contiguous group per thread.
fn par_each<T: Send>(items: &mut [T], threads: usize, f: impl Fn(&mut T) + Sync) {
    if threads <= 1 || items.len() <= 1 {
        items.iter_mut().for_each(&f);
        return;
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        for group in items.chunks_mut(per) {
            let f = &f;
            s.spawn(move || group.iter_mut().for_each(f));
        }
    });
}

/// The K dense nets and the frozen model, ready for steps of `K × batch` samples.
pub struct FastTrainer {
    nets: Vec<NetSlot>,
    lenet: FrozenLeNet,
    works: Vec<LeNetWork>,
    /// The K nets' outputs `[K·B, d]` and their gradients.
    obf: Vec<f32>,
    dobf: Vec<f32>,
    labels: Vec<u8>,
    threads: usize,
    dim: usize,
}

impl FastTrainer {
    /// Builds the trainer from the nets of `init` (their current weights) and the frozen
    /// `server`, for batches of up to `batch` samples per net.
    ///
    /// # Errors
    /// [`Error::Config`] for a non-dense architecture, [`Error::Shape`] when the sizes disagree.
    pub fn new(init: &ObfStack, server: &LeNet, batch: usize) -> Result<FastTrainer> {
        let specs = init.layer_specs();
        let lenet = FrozenLeNet::from_lenet(server)?;
        let (rows, cols) = init.image_size();
        let dim = rows * cols;
        if server.input_shape() != (rows, cols) {
            return Err(Error::Shape(format!(
                "the server model takes {:?} inputs, the nets {rows}×{cols}",
                server.input_shape()
            )));
        }
        let mut nets = Vec::with_capacity(init.k());
        for k in 0..init.k() {
            let net = DenseNet::from_layers(&specs, &init.net_weights(k)?, AdamParams::default())?;
            if net.inputs() != dim || net.outputs() != dim {
                return Err(Error::Shape(format!(
                    "net {k} maps {} → {}",
                    net.inputs(),
                    net.outputs()
                )));
            }
            nets.push(NetSlot {
                net,
                x: vec![0.0; batch * dim],
            });
        }
        let threads = threads();
        let n = init.k() * batch;
        Ok(FastTrainer {
            works: (0..threads).map(|_| lenet.work()).collect(),
            lenet,
            obf: vec![0.0; n * dim],
            dobf: vec![0.0; n * dim],
            labels: vec![0; n],
            nets,
            threads,
            dim,
        })
    }

    /// The frozen model's block.
    pub fn lenet(&self) -> &FrozenLeNet {
        &self.lenet
    }

    /// Net `k`.
    pub fn net(&self, k: usize) -> Option<&DenseNet> {
        self.nets.get(k).map(|s| &s.net)
    }

    /// One training step: net k on the samples `batches[k]` of `(x, labels)`; every net gets
    /// the gradient of its own mean cross-entropy and one Adam step at `lr`. Returns the mean
    /// loss over the nets. With `lr = None` only the gradients are computed (for tests).
    ///
    /// # Panics
    /// If `batches` does not hold one equally long batch per net, or an index is out of range.
    pub fn step(&mut self, x: &[f32], labels: &[u8], batches: &[&[usize]], lr: Option<f64>) -> f32 {
        let k = self.nets.len();
        assert_eq!(batches.len(), k);
        let b = batches[0].len();
        let d = self.dim;
        let threads = self.threads;
        for (slot, idx) in self.nets.iter_mut().zip(batches) {
            assert_eq!(idx.len(), b);
            for (row, &i) in slot.x.chunks_exact_mut(d).zip(idx.iter()) {
                row.copy_from_slice(&x[i * d..(i + 1) * d]);
            }
        }
        for (dst, &i) in self.labels.iter_mut().zip(batches.iter().flat_map(|s| s.iter())) {
            *dst = labels[i];
        }
        // 1. every net's forward pass, into its rows of `obf`
        {
            let mut jobs: Vec<(&mut NetSlot, &mut [f32])> =
                self.nets.iter_mut().zip(self.obf.chunks_mut(b * d)).collect();
            par_each(&mut jobs, threads, |(slot, out)| {
                let y = slot.net.forward(&slot.x, b);
                out[..b * d].copy_from_slice(y);
            });
        }
        // 2. the frozen model on all K·B outputs: loss and input gradient, split over the cores.
        // Each net's loss is its batch mean: scale 1/B.
        let n = k * b;
        let per = n.div_ceil(threads);
        let scale = 1.0 / b as f32;
        let lenet = &self.lenet;
        let mut parts: Vec<(&mut LeNetWork, &[f32], &[u8], &mut [f32], f64)> = self
            .works
            .iter_mut()
            .zip(self.obf[..n * d].chunks(per * d))
            .zip(self.labels[..n].chunks(per))
            .zip(self.dobf[..n * d].chunks_mut(per * d))
            .map(|(((w, xo), yo), dxo)| (w, xo, yo, dxo, 0.0))
            .collect();
        par_each(&mut parts, threads, |(w, xo, yo, dxo, loss)| {
            *loss = lenet.loss_and_input_grad(w, xo, yo, dxo, scale).0;
        });
        let loss = parts.iter().map(|p| p.4).sum::<f64>() / n as f64;
        // 3. every net's backward pass and Adam step
        let mut jobs: Vec<(&mut NetSlot, &[f32])> =
            self.nets.iter_mut().zip(self.dobf.chunks(b * d)).collect();
        par_each(&mut jobs, threads, |(slot, dy)| {
            slot.net.backward(&slot.x, dy, b);
            if let Some(lr) = lr {
                slot.net.adam_step(lr);
            }
        });
        loss as f32
    }

    /// Accuracy of the frozen model behind each net on `(x, labels)`, and on the raw inputs.
    pub fn accuracies(&mut self, x: &[f32], labels: &[u8]) -> (Vec<f64>, f64) {
        let d = self.dim;
        let n = labels.len();
        let lenet = &self.lenet;
        let chunk = 256;
        let count = |preds: &[usize], ys: &[u8]| {
            preds
                .iter()
                .zip(ys)
                .filter(|(p, y)| **p == usize::from(**y))
                .count()
        };
        // raw accuracy, split over the cores
        let per = n.div_ceil(self.threads);
        let mut parts: Vec<(&mut LeNetWork, &[f32], &[u8], usize)> = self
            .works
            .iter_mut()
            .zip(x.chunks(per * d))
            .zip(labels.chunks(per))
            .map(|((w, xo), yo)| (w, xo, yo, 0))
            .collect();
        par_each(&mut parts, self.threads, |(w, xo, yo, correct)| {
            let mut preds = vec![0; yo.len()];
            lenet.predict(w, xo, &mut preds);
            *correct = count(&preds, yo);
        });
        let raw = parts.iter().map(|p| p.3).sum::<usize>() as f64 / n as f64;
        // behind each net: one net per core, each with its own scratch
        let mut jobs: Vec<(&mut NetSlot, LeNetWork, usize)> =
            self.nets.iter_mut().map(|s| (s, lenet.work(), 0)).collect();
        par_each(&mut jobs, self.threads, |(slot, w, correct)| {
            let mut preds = vec![0; chunk];
            for (xc, yc) in x.chunks(chunk * d).zip(labels.chunks(chunk)) {
                let m = yc.len();
                let y = slot.net.forward(xc, m);
                lenet.predict(w, y, &mut preds[..m]);
                *correct += count(&preds[..m], yc);
            }
        });
        (jobs.iter().map(|j| j.2 as f64 / n as f64).collect(), raw)
    }

    /// The nets as an [`ObfStack`] like `template` (same architecture, seeds and layers) holding
    /// the trained weights, on the plain (non-autodiff) device.
    ///
    /// # Errors
    /// Those of building a bundle from the weights.
    pub fn to_stack(&self, template: &ObfStack) -> Result<ObfStack> {
        let base = crate::export::bundle_from_stack(template, "fast-path", [0; 32])?;
        let weights = self.nets.iter().map(|s| s.net.layer_weights()).collect();
        let bundle = obfnet_core::Bundle::new(base.manifest, weights)?;
        ObfStack::from_bundle(&bundle, &crate::default_device().inner())
    }
}

/// [`crate::train_obfuscators`] on the fast path, for the configurations [`supports`] accepts:
/// the same nets (initial weights from the same seeds, the same data order per net, the same
/// loss, Adam and cosine learning-rate schedule), returned as an [`ObfStack`] the bundle export
/// takes, with an [`ObfReport`] of the same meaning (the frozen model is frozen by construction:
/// no weight gradient of it is ever computed, `frozen_gradient_found` is `false`).
///
/// # Errors
/// [`Error::Config`] for an unsupported or invalid configuration, [`Error::Shape`] when the data
/// and the server model disagree, [`Error::Diverged`] on a non-finite loss.
pub fn train_obfuscators_fast(
    cfg: &ObfTrainConfig,
    server: &LeNet,
    train: &Dataset,
    test: &Dataset,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<(ObfStack, ObfReport)> {
    if !supports(cfg) {
        return Err(Error::Config {
            field: "arch",
            reason: format!(
                "the fast path trains dense obfuscators without privacy training; {} {} is not one",
                cfg.arch,
                if cfg.privacy.is_some() {
                    "with privacy training"
                } else {
                    ""
                }
            ),
        });
    }
    let bad = |field: &'static str, reason: String| Err(Error::Config { field, reason });
    if cfg.epochs == 0 {
        return bad("epochs", "must be at least 1".into());
    }
    if cfg.batch_size == 0 || cfg.batch_size > 65_536 {
        return bad("batch_size", format!("{} is not in 1..=65536", cfg.batch_size));
    }
    if !(cfg.learning_rate.is_finite() && cfg.learning_rate > 0.0) {
        return bad(
            "learning_rate",
            format!("{} is not a positive number", cfg.learning_rate),
        );
    }
    if !(0.0..=1.0).contains(&cfg.final_lr_fraction) {
        return bad(
            "final_lr_fraction",
            format!("{} is not in 0..=1", cfg.final_lr_fraction),
        );
    }
    if cfg.k == 0 || cfg.k > 256 {
        return bad("k", format!("{} is not in 1..=256", cfg.k));
    }
    for split in [train, test] {
        if server.input_shape() != (split.rows, split.cols) {
            return Err(Error::Shape(format!(
                "the server model takes {:?} inputs, the data has {}×{}",
                server.input_shape(),
                split.rows,
                split.cols
            )));
        }
    }
    let seeds = cfg.seeds();
    let device = crate::default_device().inner();
    let template = ObfStack::new_design(
        cfg.arch,
        cfg.hidden,
        cfg.bottleneck,
        &seeds,
        train.rows,
        train.cols,
        cfg.clip_output,
        &device,
    )?;
    let n = cfg.limit.unwrap_or(usize::MAX).min(train.len());
    let b = cfg.batch_size.min(n);
    let mut trainer = FastTrainer::new(&template, server, b)?;
    let train_x = to_vec(train.x.clone())?;
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let total = steps_per_epoch * cfg.epochs;
    progress(TrainEvent::Phase {
        name: format!("{} × {} against the frozen model (fast path)", cfg.k, cfg.arch),
        total_steps: total as u64,
    });
    let mut rngs: Vec<SplitMix64> = seeds.iter().map(|&s| SplitMix64::new(order_stream(s))).collect();
    let mut step_times = Vec::with_capacity(total);
    let mut epoch_losses = Vec::new();
    let mut first_epoch_seconds = 0.0;
    let t0 = Instant::now();
    let mut step = 0;
    for epoch in 0..cfg.epochs {
        let te = Instant::now();
        let orders: Vec<Vec<usize>> = rngs.iter_mut().map(|r| r.permutation(n)).collect();
        let mut loss_sum = 0.0f64;
        for s in 0..steps_per_epoch {
            let ts = Instant::now();
            let lo = s * cfg.batch_size;
            let hi = (lo + cfg.batch_size).min(n);
            let batches: Vec<&[usize]> = orders.iter().map(|o| &o[lo..hi]).collect();
            let lr = cosine_lr(cfg.learning_rate, cfg.final_lr_fraction, step, total);
            let value = trainer.step(&train_x, &train.labels, &batches, Some(lr));
            if !value.is_finite() {
                return Err(Error::Diverged { step, loss: value });
            }
            step_times.push(ts.elapsed().as_secs_f64());
            loss_sum += f64::from(value);
            step += 1;
            progress(TrainEvent::Step {
                step: step as u64,
                loss: value,
            });
        }
        let mean_loss = (loss_sum / steps_per_epoch as f64) as f32;
        epoch_losses.push(mean_loss);
        if epoch == 0 {
            first_epoch_seconds = te.elapsed().as_secs_f64();
        }
        progress(TrainEvent::Epoch { epoch, mean_loss });
        tracing::info!(epoch, mean_loss, "obfuscator epoch done (fast path)");
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    progress(TrainEvent::Evaluating);
    let te = Instant::now();
    let test_x = to_vec(test.x.clone())?;
    let (accuracies, raw_accuracy) = trainer.accuracies(&test_x, &test.labels);
    let stack = trainer.to_stack(&template)?;
    step_times.sort_by(f64::total_cmp);
    let step_ms_median = step_times.get(step_times.len() / 2).map_or(0.0, |s| s * 1e3);
    let report = ObfReport {
        arch: cfg.arch,
        seeds,
        accuracies,
        raw_accuracy,
        epoch_losses,
        train_seconds,
        first_epoch_seconds,
        step_ms_median,
        eval_seconds: te.elapsed().as_secs_f64(),
        frozen_checked_steps: step,
        frozen_gradient_found: false,
        train_samples: n,
        privacy_epochs: Vec::new(),
        engine: crate::config::Engine::Fast,
    };
    Ok((stack, report))
}
