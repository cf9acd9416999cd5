//! The pieces every training loop shares: one optimisation step of each kind, reading a loss
//! back, and the one epoch loop (timing, progress, divergence check) all jobs run through.

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::config::{CosineSchedule, TrainEvent};
use crate::lenet::LeNet;
use crate::obf::ObfStack;
use crate::server_model::ServerModel;
use crate::{Error, Result};

/// The classification loss.
pub(crate) type Ce = burn::nn::loss::CrossEntropyLoss;

/// Reads a one-element loss back to the host.
pub(crate) fn scalar(loss: &Tensor<1>) -> Result<f32> {
    loss.clone()
        .inner()
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::TensorRead {
            what: "the loss",
            reason: format!("{e:?}"),
        })?
        .first()
        .copied()
        .ok_or_else(|| Error::TensorRead {
            what: "the loss",
            reason: "empty tensor".into(),
        })
}

/// Median of `v` (seconds) in milliseconds; 0 when empty.
pub(crate) fn median_ms(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2] * 1e3
}

/// One Adam step of the server model on one batch; returns the updated model and the loss.
pub(crate) fn lenet_step(
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

/// One Adam step of all K obfuscators through the frozen model (a frozen copy, see
/// [`ServerModel::frozen`]).
///
/// # Shapes
/// `x`: `[K, B, d]` (net k's batch in row k), `y`: `[K·B]`.
///
/// Returns the updated stack, the mean loss per net, and whether a frozen parameter received a
/// gradient (it never should).
pub(crate) fn obf_step(
    stack: ObfStack,
    frozen: &ServerModel,
    optim: &mut burn::optim::ModuleOptimizer,
    ce: &Ce,
    x: Tensor<3>,
    y: Tensor<1, Int>,
    lr: f64,
) -> Result<(ObfStack, f32, bool)> {
    let [k, b, d] = x.dims();
    let obf = stack.forward(x.autodiff()).reshape([k * b, d]);
    let logits = frozen.forward(obf)?;
    // Sum of the K per-net mean losses: each net gets exactly its own gradient.
    let loss = ce.forward(logits, y.autodiff()).mul_scalar(k as f32);
    let value = scalar(&loss)? / k as f32;
    let mut g = loss.backward();
    let grad_found = frozen.has_any_gradient(&g);
    let grads = GradientsParams::from_module(&mut g, &stack);
    Ok((optim.step(lr, stack, grads), value, grad_found))
}

/// A training job as the epoch loop drives it.
pub(crate) trait EpochJob {
    /// Before the steps of `epoch` (draw the epoch's sample order).
    fn start_epoch(&mut self, epoch: usize);
    /// Step `s` of the epoch (`step` overall) at learning rate `lr`; returns the loss.
    fn step(&mut self, s: usize, step: usize, lr: f64) -> Result<f32>;
    /// After the `steps` steps of `epoch`.
    fn end_epoch(&mut self, _epoch: usize, _steps: usize) {}
}

/// What the epoch loop measured.
#[derive(Debug, Default)]
pub(crate) struct LoopStats {
    pub step_times: Vec<f64>,
    pub epoch_losses: Vec<f32>,
    pub first_epoch_seconds: f64,
    pub train_seconds: f64,
}

/// The one epoch loop: `epochs × steps_per_epoch` steps of `job` on the cosine schedule, each
/// timed, reported to `progress` and checked for divergence.
///
/// # Errors
/// The job's errors, or [`Error::Diverged`] when a loss is not finite.
pub(crate) fn epoch_loop(
    job: &mut impl EpochJob,
    epochs: usize,
    steps_per_epoch: usize,
    schedule: &mut CosineSchedule,
    what: &'static str,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<LoopStats> {
    let mut stats = LoopStats {
        step_times: Vec::with_capacity(epochs * steps_per_epoch),
        ..LoopStats::default()
    };
    let t0 = Instant::now();
    let mut step = 0;
    for epoch in 0..epochs {
        let te = Instant::now();
        job.start_epoch(epoch);
        let mut loss_sum = 0.0f64;
        for s in 0..steps_per_epoch {
            let ts = Instant::now();
            let lr = schedule.next_lr();
            let value = job.step(s, step, lr)?;
            if !value.is_finite() {
                return Err(Error::Diverged { step, loss: value });
            }
            stats.step_times.push(ts.elapsed().as_secs_f64());
            loss_sum += f64::from(value);
            step += 1;
            progress(TrainEvent::Step {
                step: step as u64,
                loss: value,
            });
        }
        let mean_loss = (loss_sum / steps_per_epoch as f64) as f32;
        stats.epoch_losses.push(mean_loss);
        job.end_epoch(epoch, steps_per_epoch);
        if epoch == 0 {
            stats.first_epoch_seconds = te.elapsed().as_secs_f64();
        }
        progress(TrainEvent::Epoch { epoch, mean_loss });
        tracing::info!(epoch, mean_loss, job = what, "epoch done");
    }
    stats.train_seconds = t0.elapsed().as_secs_f64();
    Ok(stats)
}
