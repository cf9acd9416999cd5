//! The training jobs: the server model, and K obfuscators against it (frozen), optionally with
//! privacy-aware training ([`crate::privacy_train`]). Both run through the one epoch loop of
//! [`crate::step`]; their settings and reports live in [`crate::config`].

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{
    CosineSchedule, Engine, ObfReport, ObfTrainConfig, ServerReport, ServerTrainConfig, TrainEvent, adam,
    check_common,
};
use crate::data::{Dataset, index_tensor};
use crate::eval::{accuracy, server_accuracy, server_obfuscated_accuracies};
use crate::lenet::{LeNet, LeNetConfig};
use crate::obf::{ObfStack, order_stream};
use crate::privacy_train::{Adversary, PrivacyEpoch};
use crate::rng::SplitMix64;
use crate::server_model::ServerModel;
use crate::step::{Ce, EpochJob, epoch_loop, lenet_step, median_ms, obf_step};
use crate::{Error, Result};

/// The module a job trains, out of its slot only while burn's optimiser step consumes it.
fn lost(what: &'static str) -> Error {
    Error::Config {
        field: what,
        reason: "the model was lost by an earlier failed step".into(),
    }
}

/// The server model's training state.
struct ServerJob<'a> {
    model: Option<LeNet>,
    optim: burn::optim::ModuleOptimizer,
    ce: Ce,
    train: &'a Dataset,
    rng: SplitMix64,
    n: usize,
    batch_size: usize,
    order: Vec<usize>,
}

impl EpochJob for ServerJob<'_> {
    fn start_epoch(&mut self, _epoch: usize) {
        self.order = self.rng.permutation(self.n);
    }

    fn step(&mut self, s: usize, _step: usize, lr: f64) -> Result<f32> {
        let lo = s * self.batch_size;
        let hi = (lo + self.batch_size).min(self.n);
        let (x, y) = self.train.batch(&self.order[lo..hi]);
        let model = self.model.take().ok_or_else(|| lost("server model"))?;
        let (model, value) = lenet_step(model, &mut self.optim, &self.ce, x, y, lr)?;
        self.model = Some(model);
        Ok(value)
    }
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
        return Err(Error::InputShape {
            expected_by: "the training split",
            expected: (train.rows, train.cols),
            found_in: "the test split",
            found: (test.rows, test.cols),
        });
    }
    let arch = LeNetConfig::for_input(train.rows, train.cols);
    arch.validate()?;
    let device = crate::default_device();
    device.seed(cfg.seed);
    let n = cfg.limit.unwrap_or(usize::MAX).min(train.len());
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let total = steps_per_epoch * cfg.epochs;
    let mut schedule = CosineSchedule::new(cfg.learning_rate, cfg.final_lr_fraction, total)?;
    let mut job = ServerJob {
        model: Some(LeNet::new(&arch, &device)),
        optim: adam().init(),
        ce: CrossEntropyLossConfig::new().init(&device),
        train,
        rng: SplitMix64::new(cfg.seed),
        n,
        batch_size: cfg.batch_size,
        order: Vec::new(),
    };
    progress(TrainEvent::Phase {
        name: "server model (LeNet-5)".into(),
        total_steps: total as u64,
    });
    let stats = epoch_loop(
        &mut job,
        cfg.epochs,
        steps_per_epoch,
        &mut schedule,
        "server model",
        progress,
    )?;
    let model = job.model.ok_or_else(|| lost("server model"))?;
    progress(TrainEvent::Evaluating);
    let te = Instant::now();
    let test_accuracy = accuracy(&model, test)?;
    let report = ServerReport {
        test_accuracy,
        epoch_losses: stats.epoch_losses,
        train_seconds: stats.train_seconds,
        first_epoch_seconds: stats.first_epoch_seconds,
        step_ms_median: median_ms(stats.step_times),
        eval_seconds: te.elapsed().as_secs_f64(),
        train_samples: n,
    };
    Ok((model.valid(), report))
}

/// The K obfuscators' training state.
struct ObfJob<'a> {
    stack: Option<ObfStack>,
    frozen: &'a ServerModel,
    optim: burn::optim::ModuleOptimizer,
    ce: Ce,
    train: &'a Dataset,
    rngs: Vec<SplitMix64>,
    orders: Vec<Vec<usize>>,
    idx: Vec<usize>,
    n: usize,
    batch_size: usize,
    adversary: Option<Adversary>,
    privacy_epochs: Vec<PrivacyEpoch>,
    frozen_checked_steps: usize,
    frozen_gradient_found: bool,
}

impl EpochJob for ObfJob<'_> {
    fn start_epoch(&mut self, _epoch: usize) {
        self.orders = self.rngs.iter_mut().map(|r| r.permutation(self.n)).collect();
    }

    fn step(&mut self, s: usize, step: usize, lr: f64) -> Result<f32> {
        let (k, d) = (self.orders.len(), self.train.dim());
        let lo = s * self.batch_size;
        let hi = (lo + self.batch_size).min(self.n);
        let b = hi - lo;
        self.idx.clear();
        for order in &self.orders {
            self.idx.extend_from_slice(&order[lo..hi]);
        }
        let sel = index_tensor(&self.idx, &self.train.x.device());
        let x = self.train.x.clone().select(0, sel.clone()).reshape([k, b, d]);
        let y = self.train.y.clone().select(0, sel);
        let stack = self.stack.take().ok_or_else(|| lost("obfuscators"))?;
        let (stack, value, grad_found) = match &mut self.adversary {
            None => obf_step(stack, self.frozen, &mut self.optim, &self.ce, x, y, lr)?,
            Some(adv) => adv.step(
                stack,
                self.frozen,
                &mut self.optim,
                &self.ce,
                x,
                y,
                &self.idx,
                lr,
                step,
            )?,
        };
        self.stack = Some(stack);
        self.frozen_gradient_found |= grad_found;
        self.frozen_checked_steps += 1;
        Ok(value)
    }

    fn end_epoch(&mut self, epoch: usize, steps: usize) {
        if let Some(adv) = &mut self.adversary {
            self.privacy_epochs.push(adv.finish_epoch(epoch, steps));
        }
    }
}

/// Trains K obfuscators against the **frozen** `server` model (the project's LeNet-5 or an ONNX
/// graph, see [`ServerModel`]), all K in one job, and measures each net's accuracy on `test`.
/// Plain and privacy-aware training (`cfg.privacy`) work with either kind.
///
/// Only the obfuscators' parameters are optimised: the server model is frozen (its parameters
/// require no gradient, so burn computes none for them; an ONNX graph's weights are untracked
/// constants; gradients still flow *through* it to the obfuscators). Every step checks that no
/// gradient exists for a frozen parameter and the report says so.
pub fn train_obfuscators(
    cfg: &ObfTrainConfig,
    server: &ServerModel,
    train: &Dataset,
    test: &Dataset,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<(ObfStack, ObfReport)> {
    train_obfuscators_with_attributes(cfg, server, train, None, test, progress)
}

/// As [`train_obfuscators`], with one private-attribute value per training sample (e.g. FSDD's
/// speaker) for the attribute term of privacy-aware training
/// ([`crate::PrivacyTraining::attribute`]; an error when that term is on and they are missing).
pub fn train_obfuscators_with_attributes(
    cfg: &ObfTrainConfig,
    server: &ServerModel,
    train: &Dataset,
    attributes: Option<&[u8]>,
    test: &Dataset,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<(ObfStack, ObfReport)> {
    match (cfg.engine, server) {
        (Engine::Burn, _) => {}
        (Engine::Auto, ServerModel::LeNet(lenet)) if crate::fast::supports(cfg) => {
            return crate::fast::train_obfuscators_fast(cfg, lenet, train, test, progress);
        }
        (Engine::Auto, _) => {}
        (Engine::Fast, ServerModel::LeNet(lenet)) => {
            return crate::fast::train_obfuscators_fast(cfg, lenet, train, test, progress);
        }
        (Engine::Fast, ServerModel::Onnx(_)) => {
            return Err(Error::Config {
                field: "engine",
                reason: "the fast path trains against the project's LeNet-5 only; \
                         use engine burn (or auto) with an ONNX server model"
                    .into(),
            });
        }
    }
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
            return Err(Error::InputShape {
                expected_by: "the server model",
                expected: server.input_shape(),
                found_in: "the data",
                found: (split.rows, split.cols),
            });
        }
    }
    let device = crate::default_device();
    let frozen = server.frozen();
    let seeds = cfg.seeds();
    let k = cfg.k;
    let stack = ObfStack::new_design(
        cfg.arch,
        cfg.hidden,
        cfg.bottleneck,
        &seeds,
        train.rows,
        train.cols,
        cfg.clip_output,
        &device,
    )?;
    let adversary = match &cfg.privacy {
        Some(p) => Some(Adversary::new(p, &seeds, train, attributes, &device)?),
        None => None,
    };
    let n = cfg.limit.unwrap_or(usize::MAX).min(train.len());
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let total = steps_per_epoch * cfg.epochs;
    let mut schedule = CosineSchedule::new(cfg.learning_rate, cfg.final_lr_fraction, total)?;
    let mut job = ObfJob {
        stack: Some(stack),
        frozen: &frozen,
        optim: adam().init(),
        ce: CrossEntropyLossConfig::new().init(&device),
        train,
        rngs: seeds.iter().map(|&s| SplitMix64::new(order_stream(s))).collect(),
        orders: Vec::new(),
        idx: Vec::with_capacity(k * cfg.batch_size),
        n,
        batch_size: cfg.batch_size,
        adversary,
        privacy_epochs: Vec::new(),
        frozen_checked_steps: 0,
        frozen_gradient_found: false,
    };
    progress(TrainEvent::Phase {
        name: format!("{k} × {} against the frozen model", cfg.arch),
        total_steps: total as u64,
    });
    let stats = epoch_loop(
        &mut job,
        cfg.epochs,
        steps_per_epoch,
        &mut schedule,
        "obfuscators",
        progress,
    )?;
    progress(TrainEvent::Evaluating);
    let te = Instant::now();
    let stack = job.stack.ok_or_else(|| lost("obfuscators"))?.valid();
    let raw_accuracy = server_accuracy(server, test)?;
    let accuracies = server_obfuscated_accuracies(server, &stack, test)?;
    let report = ObfReport {
        arch: cfg.arch,
        seeds,
        accuracies,
        raw_accuracy,
        epoch_losses: stats.epoch_losses,
        train_seconds: stats.train_seconds,
        first_epoch_seconds: stats.first_epoch_seconds,
        step_ms_median: median_ms(stats.step_times),
        eval_seconds: te.elapsed().as_secs_f64(),
        frozen_checked_steps: job.frozen_checked_steps,
        frozen_gradient_found: job.frozen_gradient_found,
        train_samples: n,
        privacy_epochs: job.privacy_epochs,
        engine: Engine::Burn,
    };
    Ok((stack, report))
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
/// and returns their medians. Takes one to two seconds. The obfuscator steps are timed on the
/// engine `cfg` trains with (the fast path when [`crate::fast::supports`] it and `cfg.engine`
/// is not [`Engine::Burn`]; burn otherwise), for `cfg.arch`, `cfg.k` and `cfg.batch_size`.
pub fn calibrate(cfg: &ObfTrainConfig, train: &Dataset) -> Result<Calibration> {
    let (arch, k, batch_size) = (cfg.arch, cfg.k, cfg.batch_size);
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
    if cfg.engine != Engine::Burn && crate::fast::supports(cfg) {
        return Ok(Calibration {
            server_step_s,
            obf_step_s: crate::fast::time_step(cfg, &model.freeze(), train)?,
        });
    }
    let frozen = ServerModel::LeNet(model.freeze());
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
