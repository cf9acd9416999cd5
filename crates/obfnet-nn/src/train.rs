use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, index_tensor};
use crate::eval::{accuracy, obfuscated_accuracies};
use crate::lenet::{LeNet, LeNetConfig};
use crate::obf::{DEFAULT_BOTTLENECK, ObfArch, ObfStack, order_stream};
use crate::privacy_train::{self, Adversaries, PrivacyTraining};
use crate::rng::SplitMix64;
use crate::{Error, Result};

/// Progress of a training job, for the caller to draw (the library draws nothing).
#[derive(Clone, Debug, PartialEq)]
pub enum TrainEvent {
    /// A phase starts with this many steps.
    Phase { name: String, total_steps: u64 },
    /// One optimisation step finished with this loss.
    Step { step: u64, loss: f32 },
    /// An epoch finished with this mean training loss.
    Epoch { epoch: usize, mean_loss: f32 },
    /// Evaluation on the test split started.
    Evaluating,
}

/// How the server model is trained. Written to `config.json` next to the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerTrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Peak learning rate of Adam (β = 0.9, 0.999; ε = 1e-8, as PyTorch).
    pub learning_rate: f64,
    /// Cosine decay from `learning_rate` down to `learning_rate × final_lr_fraction` over the run.
    pub final_lr_fraction: f64,
    /// Seeds the initialisation and the data order.
    pub seed: u64,
    /// Use only the first `limit` training samples (tests and smoke runs).
    pub limit: Option<usize>,
}

impl Default for ServerTrainConfig {
    fn default() -> Self {
        ServerTrainConfig {
            epochs: 5,
            batch_size: 64,
            learning_rate: 1e-3,
            final_lr_fraction: 0.05,
            seed: 0,
            limit: None,
        }
    }
}

/// What training the server model measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// Accuracy on the whole test split.
    pub test_accuracy: f64,
    /// Mean training loss of each epoch.
    pub epoch_losses: Vec<f32>,
    /// Wall time of the optimisation steps (data included, evaluation excluded), seconds.
    pub train_seconds: f64,
    /// Wall time of the first epoch, seconds.
    pub first_epoch_seconds: f64,
    /// Median step time, milliseconds.
    pub step_ms_median: f64,
    /// Wall time of the test-set evaluation, seconds.
    pub eval_seconds: f64,
    /// Training samples used.
    pub train_samples: usize,
}

/// How the K obfuscators are trained against the frozen server model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObfTrainConfig {
    /// Architecture of every net.
    pub arch: ObfArch,
    /// Number of nets trained (with seeds `seed`, `seed + 1`, …).
    pub k: usize,
    /// Passes over the training split, per net.
    pub epochs: usize,
    /// Samples per step, per net (the frozen model sees `k × batch_size` per step).
    pub batch_size: usize,
    /// Peak learning rate of Adam (ε = 1e-8).
    pub learning_rate: f64,
    /// Cosine decay down to `learning_rate × final_lr_fraction`.
    pub final_lr_fraction: f64,
    /// Seed of net 0; net k uses `seed + k` for its initialisation and its data order.
    pub seed: u64,
    /// Use only the first `limit` training samples.
    pub limit: Option<usize>,
    /// End every net in a clip to the raw image range instead of ReLU, so the frozen model is
    /// trained against exactly what survives the `u8` wire encoding (off: the published recipe).
    pub clip_output: bool,
    /// Code width of [`ObfArch::Bottleneck`] (ignored by the other architectures).
    pub bottleneck: usize,
    /// Privacy-aware (adversarial) training; `None` (the default) trains for accuracy only, the
    /// published recipe. See [`PrivacyTraining`].
    pub privacy: Option<PrivacyTraining>,
}

impl Default for ObfTrainConfig {
    fn default() -> Self {
        ObfTrainConfig {
            arch: ObfArch::ObfNet2,
            k: 10,
            epochs: 2,
            batch_size: 64,
            learning_rate: 1e-3,
            final_lr_fraction: 0.05,
            seed: 1000,
            limit: None,
            clip_output: false,
            bottleneck: DEFAULT_BOTTLENECK,
            privacy: None,
        }
    }
}

impl ObfTrainConfig {
    /// The seed of each of the K nets.
    pub fn seeds(&self) -> Vec<u64> {
        (0..self.k as u64).map(|i| self.seed.wrapping_add(i)).collect()
    }
}

/// What training the K obfuscators measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObfReport {
    /// Architecture of the nets.
    pub arch: ObfArch,
    /// Seed of each net.
    pub seeds: Vec<u64>,
    /// Accuracy of `model(obf_k(x))` on the whole test split, per net.
    pub accuracies: Vec<f64>,
    /// Accuracy of the same frozen model on raw test inputs.
    pub raw_accuracy: f64,
    /// Mean training loss per epoch (mean over the K nets).
    pub epoch_losses: Vec<f32>,
    /// Wall time of the optimisation steps, seconds.
    pub train_seconds: f64,
    /// Wall time of the first epoch, seconds.
    pub first_epoch_seconds: f64,
    /// Median step time (one step trains all K nets), milliseconds.
    pub step_ms_median: f64,
    /// Wall time of the test-set evaluation of all K nets, seconds.
    pub eval_seconds: f64,
    /// Steps at which the frozen model's parameters were checked for gradients.
    pub frozen_checked_steps: usize,
    /// Whether any of those steps produced a gradient for a frozen parameter (must be false).
    pub frozen_gradient_found: bool,
    /// Training samples used per net per epoch.
    pub train_samples: usize,
    /// With privacy-aware training: per epoch, the training decoders' mean squared error and the
    /// class-mean floor's (normalised space), means over the K nets.
    #[serde(default)]
    pub privacy_epochs: Vec<PrivacyEpoch>,
}

/// One epoch of privacy-aware training, as logged (means over the steps and the K nets).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrivacyEpoch {
    /// Cross-entropy of the frozen model behind the nets.
    pub ce: f32,
    /// The training decoders' mean squared error on the batches (normalised space).
    pub decoder_mse: f32,
    /// The class-mean (label-only) reconstruction's error on the same batches.
    pub floor_mse: f32,
}

impl ObfReport {
    /// Mean accuracy behind the K nets.
    pub fn mean_accuracy(&self) -> f64 {
        self.accuracies.iter().sum::<f64>() / self.accuracies.len().max(1) as f64
    }

    /// Mean accuracy drop vs raw inputs, in percentage points.
    pub fn mean_drop_pt(&self) -> f64 {
        (self.raw_accuracy - self.mean_accuracy()) * 100.0
    }
}

fn check_common(epochs: usize, batch_size: usize, lr: f64, frac: f64) -> Result<()> {
    if epochs == 0 {
        return Err(Error::Config {
            field: "epochs",
            reason: "must be at least 1".into(),
        });
    }
    if batch_size == 0 || batch_size > 65_536 {
        return Err(Error::Config {
            field: "batch_size",
            reason: format!("{batch_size} is not in 1..=65536"),
        });
    }
    if !(lr.is_finite() && lr > 0.0) {
        return Err(Error::Config {
            field: "learning_rate",
            reason: format!("{lr} must be positive"),
        });
    }
    if !(0.0..=1.0).contains(&frac) {
        return Err(Error::Config {
            field: "final_lr_fraction",
            reason: format!("{frac} is not in [0, 1]"),
        });
    }
    Ok(())
}

fn cosine_lr(peak: f64, frac: f64, step: usize, total: usize) -> f64 {
    let t = step as f64 / total.max(1) as f64;
    let floor = peak * frac;
    floor + 0.5 * (peak - floor) * (1.0 + (std::f64::consts::PI * t).cos())
}

fn adam() -> AdamConfig {
    AdamConfig::new().with_epsilon(1e-8)
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2] * 1e3
}

pub(crate) fn scalar(loss: &Tensor<1>) -> Result<f32> {
    loss.clone()
        .inner()
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Backend(format!("{e:?}")))?
        .first()
        .copied()
        .ok_or_else(|| Error::Backend("empty loss".into()))
}

/// Trains the server model (LeNet-5 sized for the samples' `rows × cols`) on `train` and
/// measures it on `test`.
pub fn train_server_model(
    cfg: &ServerTrainConfig,
    train: &Dataset,
    test: &Dataset,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<(LeNet, ServerReport)> {
    check_common(
        cfg.epochs,
        cfg.batch_size,
        cfg.learning_rate,
        cfg.final_lr_fraction,
    )?;
    if (train.rows, train.cols) != (test.rows, test.cols) {
        return Err(Error::Shape(format!(
            "train samples are {}×{} but test samples {}×{}",
            train.rows, train.cols, test.rows, test.cols
        )));
    }
    let arch = LeNetConfig::for_input(train.rows, train.cols);
    arch.validate()?;
    let device = crate::default_device();
    device.seed(cfg.seed);
    let mut model = LeNet::new(&arch, &device);
    let mut optim = adam().init();
    let ce = CrossEntropyLossConfig::new().init(&device);

    let n = cfg.limit.unwrap_or(usize::MAX).min(train.len());
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let total = steps_per_epoch * cfg.epochs;
    progress(TrainEvent::Phase {
        name: "server model (LeNet-5)".into(),
        total_steps: total as u64,
    });
    let mut rng = SplitMix64::new(cfg.seed);
    let mut step_times = Vec::with_capacity(total);
    let mut epoch_losses = Vec::new();
    let mut first_epoch_seconds = 0.0;
    let t0 = Instant::now();
    let mut step = 0;
    for epoch in 0..cfg.epochs {
        let te = Instant::now();
        let order = rng.permutation(n);
        let mut loss_sum = 0.0f64;
        for chunk in order.chunks(cfg.batch_size) {
            let ts = Instant::now();
            let (x, y) = train.batch(chunk);
            let lr = cosine_lr(cfg.learning_rate, cfg.final_lr_fraction, step, total);
            let value;
            (model, value) = lenet_step(model, &mut optim, &ce, x, y, lr)?;
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
        tracing::info!(epoch, mean_loss, "server model epoch done");
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    progress(TrainEvent::Evaluating);
    let te = Instant::now();
    let test_accuracy = accuracy(&model, test)?;
    let report = ServerReport {
        test_accuracy,
        epoch_losses,
        train_seconds,
        first_epoch_seconds,
        step_ms_median: median_ms(step_times),
        eval_seconds: te.elapsed().as_secs_f64(),
        train_samples: n,
    };
    Ok((model.valid(), report))
}

/// Trains K obfuscators against the **frozen** `server` model, all K in one job, and measures
/// each net's accuracy on `test`.
///
/// Only the obfuscators' parameters are optimised: the server model is frozen (its parameters
/// require no gradient, so burn computes none for them; gradients still flow *through* it to
/// the obfuscators). Every step checks that no gradient exists for a frozen parameter and the
/// report says so.
pub fn train_obfuscators(
    cfg: &ObfTrainConfig,
    server: &LeNet,
    train: &Dataset,
    test: &Dataset,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<(ObfStack, ObfReport)> {
    check_common(
        cfg.epochs,
        cfg.batch_size,
        cfg.learning_rate,
        cfg.final_lr_fraction,
    )?;
    if cfg.k == 0 || cfg.k > 256 {
        return Err(Error::Config {
            field: "k",
            reason: format!("{} is not in 1..=256", cfg.k),
        });
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
    let device = crate::default_device();
    let frozen = server.clone().fork(&device).freeze();
    let seeds = cfg.seeds();
    let k = cfg.k;
    let mut stack = ObfStack::new_design(
        cfg.arch,
        cfg.bottleneck,
        &seeds,
        train.rows,
        train.cols,
        cfg.clip_output,
        &device,
    )?;
    let mut optim = adam().init();
    let mut adversary = match &cfg.privacy {
        Some(p) => {
            p.validate()?;
            Some((
                Adversaries::new(&seeds, train.dim(), p.decoder_hidden, &device),
                adam().init(),
                privacy_train::class_means(train)?,
                p.clone(),
            ))
        }
        None => None,
    };
    let mut privacy_epochs = Vec::new();
    let ce = CrossEntropyLossConfig::new().init(&device);

    let n = cfg.limit.unwrap_or(usize::MAX).min(train.len());
    let d = train.dim();
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let total = steps_per_epoch * cfg.epochs;
    progress(TrainEvent::Phase {
        name: format!("{k} × {} against the frozen model", cfg.arch),
        total_steps: total as u64,
    });
    let mut rngs: Vec<SplitMix64> = seeds.iter().map(|&s| SplitMix64::new(order_stream(s))).collect();
    let mut step_times = Vec::with_capacity(total);
    let mut epoch_losses = Vec::new();
    let mut first_epoch_seconds = 0.0;
    let mut frozen_checked_steps = 0;
    let mut frozen_gradient_found = false;
    let t0 = Instant::now();
    let mut step = 0;
    let mut idx = Vec::with_capacity(k * cfg.batch_size);
    for epoch in 0..cfg.epochs {
        let te = Instant::now();
        let orders: Vec<Vec<usize>> = rngs.iter_mut().map(|r| r.permutation(n)).collect();
        let mut loss_sum = 0.0f64;
        let mut epoch_priv = (0.0f64, 0.0f64, 0.0f64);
        for s in 0..steps_per_epoch {
            let ts = Instant::now();
            let lo = s * cfg.batch_size;
            let hi = (lo + cfg.batch_size).min(n);
            let b = hi - lo;
            idx.clear();
            for order in &orders {
                idx.extend_from_slice(&order[lo..hi]);
            }
            let sel = index_tensor(&idx, &train.x.device());
            let x = train.x.clone().select(0, sel.clone()).reshape([k, b, d]);
            let y = train.y.clone().select(0, sel);
            let lr = cosine_lr(cfg.learning_rate, cfg.final_lr_fraction, step, total);
            let (value, grad_found);
            match adversary.take() {
                None => {
                    (stack, value, grad_found) = obf_step(stack, &frozen, &mut optim, &ce, x, y, lr)?;
                }
                Some((adv0, mut adv_optim, means, p)) => {
                    let active = step >= p.warmup_steps;
                    let (adv, losses);
                    (stack, adv, losses, grad_found) = adversarial_step(
                        AdvStep {
                            stack,
                            adv: adv0,
                            frozen: &frozen,
                            optim: &mut optim,
                            adv_optim: &mut adv_optim,
                            ce: &ce,
                            means: &means,
                            weight: if active { p.weight } else { 0.0 },
                            diversity: if k > 1 { p.diversity } else { 0.0 },
                            lr,
                            adv_lr: p.decoder_learning_rate,
                        },
                        x,
                        y,
                    )?;
                    value = losses.ce;
                    epoch_priv.0 += f64::from(losses.ce);
                    epoch_priv.1 += f64::from(losses.decoder_mse);
                    epoch_priv.2 += f64::from(losses.floor_mse);
                    adversary = Some((adv, adv_optim, means, p));
                }
            }
            if !value.is_finite() {
                return Err(Error::Diverged { step, loss: value });
            }
            frozen_gradient_found |= grad_found;
            frozen_checked_steps += 1;
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
        if adversary.is_some() {
            let n = steps_per_epoch.max(1) as f64;
            let e = PrivacyEpoch {
                ce: (epoch_priv.0 / n) as f32,
                decoder_mse: (epoch_priv.1 / n) as f32,
                floor_mse: (epoch_priv.2 / n) as f32,
            };
            tracing::info!(
                epoch,
                ce = e.ce,
                decoder_mse = e.decoder_mse,
                floor_mse = e.floor_mse,
                "privacy"
            );
            privacy_epochs.push(e);
        }
        if epoch == 0 {
            first_epoch_seconds = te.elapsed().as_secs_f64();
        }
        progress(TrainEvent::Epoch { epoch, mean_loss });
        tracing::info!(epoch, mean_loss, "obfuscator epoch done");
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    progress(TrainEvent::Evaluating);
    let te = Instant::now();
    let stack = stack.valid();
    let raw_accuracy = accuracy(server, test)?;
    let accuracies = obfuscated_accuracies(server, &stack, test)?;
    let report = ObfReport {
        arch: cfg.arch,
        seeds,
        accuracies,
        raw_accuracy,
        epoch_losses,
        train_seconds,
        first_epoch_seconds,
        step_ms_median: median_ms(step_times),
        eval_seconds: te.elapsed().as_secs_f64(),
        frozen_checked_steps,
        frozen_gradient_found,
        train_samples: n,
        privacy_epochs,
    };
    Ok((stack, report))
}

type Ce = burn::nn::loss::CrossEntropyLoss;

/// One Adam step of the server model on one batch; returns the updated model and the loss.
fn lenet_step(
    model: LeNet,
    optim: &mut burn::optim::ModuleOptimizer,
    ce: &Ce,
    x: Tensor<2>,
    y: Tensor<1, Int>,
    lr: f64,
) -> Result<(LeNet, f32)> {
    let logits = model.forward(x.autodiff());
    let loss = ce.forward(logits, y.autodiff());
    let value = scalar(&loss)?;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    Ok((optim.step(lr, model, grads), value))
}

/// One Adam step of all K obfuscators through the frozen model.
///
/// # Shapes
/// `x`: `[K, B, d]` (net k's batch in row k), `y`: `[K·B]`.
///
/// Returns the updated stack, the mean loss per net, and whether a frozen parameter received a
/// gradient (it never should).
fn obf_step(
    stack: ObfStack,
    frozen: &LeNet,
    optim: &mut burn::optim::ModuleOptimizer,
    ce: &Ce,
    x: Tensor<3>,
    y: Tensor<1, Int>,
    lr: f64,
) -> Result<(ObfStack, f32, bool)> {
    let [k, b, d] = x.dims();
    let obf = stack.forward(x.autodiff()).reshape([k * b, d]);
    let logits = frozen.forward(obf);
    // Sum of the K per-net mean losses: each net gets exactly its own gradient.
    let loss = ce.forward(logits, y.autodiff()).mul_scalar(k as f32);
    let value = scalar(&loss)? / k as f32;
    let mut g = loss.backward();
    let grad_found = frozen.has_any_gradient(&g);
    let grads = GradientsParams::from_module(&mut g, &stack);
    Ok((optim.step(lr, stack, grads), value, grad_found))
}

/// Everything one adversarial step needs besides the batch.
struct AdvStep<'a> {
    stack: ObfStack,
    adv: Adversaries,
    frozen: &'a LeNet,
    optim: &'a mut burn::optim::ModuleOptimizer,
    adv_optim: &'a mut burn::optim::ModuleOptimizer,
    ce: &'a Ce,
    means: &'a Tensor<2>,
    weight: f32,
    diversity: f32,
    lr: f64,
    adv_lr: f64,
}

/// One step of privacy-aware training (see `privacy_train`): a decoder step on the current
/// obfuscations, then an obfuscator step on `CE + λ · privacy term`.
///
/// # Shapes
/// `x`: `[K, B, d]`, `y`: `[K·B]`.
fn adversarial_step(
    s: AdvStep<'_>,
    x: Tensor<3>,
    y: Tensor<1, Int>,
) -> Result<(ObfStack, Adversaries, privacy_train::StepLosses, bool)> {
    let [k, b, d] = x.dims();
    let obf = s.stack.forward(x.clone().autodiff());
    let (adv, decoder_mse) =
        privacy_train::decoder_step(s.adv, s.adv_optim, obf.clone().inner(), x.clone(), s.adv_lr)?;
    let logits = s.frozen.forward(obf.clone().reshape([k * b, d]));
    let ce_loss = s.ce.forward(logits, y.clone().autodiff());
    let ce_value = scalar(&ce_loss)?;
    let mut loss = ce_loss;
    if s.diversity > 0.0 {
        // net k+1 (mod K) on net k's batch: roll the batches down by one along K
        let rolled = Tensor::cat(
            vec![x.clone().narrow(0, k - 1, 1), x.clone().narrow(0, 0, k - 1)],
            0,
        );
        let other = s.stack.forward(rolled.autodiff());
        // row j of `other` is net j on batch j-1; roll back up so row k is net k+1 on batch k
        let other = Tensor::cat(vec![other.clone().narrow(0, 1, k - 1), other.narrow(0, 0, 1)], 0);
        loss = loss + privacy_train::diversity_term(obf.clone(), other).mul_scalar(s.diversity);
    }
    let (term, _, floor_mse) = privacy_train::privacy_term(&adv, obf, x, s.means, y)?;
    let loss = (loss + term.mul_scalar(s.weight)).mul_scalar(k as f32);
    let mut g = loss.backward();
    let grad_found = s.frozen.has_any_gradient(&g);
    let grads = GradientsParams::from_module(&mut g, &s.stack);
    let stack = s.optim.step(s.lr, s.stack, grads);
    Ok((
        stack,
        adv,
        privacy_train::StepLosses {
            ce: ce_value,
            decoder_mse,
            floor_mse,
        },
        grad_found,
    ))
}

/// Measured seconds per optimisation step, used to say up front how long a job will take.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// One LeNet step at the given batch size.
    pub server_step_s: f64,
    /// One step of K obfuscators through the frozen model.
    pub obf_step_s: f64,
}

/// Times a few real steps of each kind (after warm-up steps) on the first samples of `train`
/// and returns their medians. Takes one to two seconds.
pub fn calibrate(arch: ObfArch, k: usize, batch_size: usize, train: &Dataset) -> Result<Calibration> {
    check_common(1, batch_size, 1e-3, 0.0)?;
    let device = crate::default_device();
    let ce = CrossEntropyLossConfig::new().init(&device);
    let b = batch_size.min(train.len());
    let idx: Vec<usize> = (0..b).collect();
    let (x, y) = train.batch(&idx);
    let lenet = LeNetConfig::for_input(train.rows, train.cols);
    lenet.validate()?;
    let mut model = LeNet::new(&lenet, &device);
    let mut optim = adam().init();
    let mut times = Vec::new();
    for i in 0..8 {
        let t = Instant::now();
        (model, _) = lenet_step(model, &mut optim, &ce, x.clone(), y.clone(), 1e-3)?;
        if i > 2 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let server_step_s = median_ms(times) / 1e3;
    let frozen = model.freeze();
    let seeds: Vec<u64> = (0..k as u64).collect();
    let mut stack = ObfStack::new(arch, &seeds, train.rows, train.cols, &device)?;
    let mut optim = adam().init();
    let kidx: Vec<usize> = (0..k).flat_map(|_| 0..b).collect();
    let (kx, ky) = train.batch(&kidx);
    let kx = kx.reshape([k, b, train.dim()]);
    let mut times = Vec::new();
    for i in 0..7 {
        let t = Instant::now();
        (stack, _, _) = obf_step(stack, &frozen, &mut optim, &ce, kx.clone(), ky.clone(), 1e-3)?;
        if i > 1 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(Calibration {
        server_step_s,
        obf_step_s: median_ms(times) / 1e3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_starts_at_peak_and_ends_at_floor() {
        assert!((cosine_lr(1e-3, 0.1, 0, 100) - 1e-3).abs() < 1e-12);
        assert!((cosine_lr(1e-3, 0.1, 100, 100) - 1e-4).abs() < 1e-12);
        assert!(cosine_lr(1e-3, 0.1, 50, 100) < 1e-3);
    }
}
