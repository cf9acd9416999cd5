//! Training configurations and reports (written to `config.json` / returned to callers), the
//! checks they share, the optimiser and the learning-rate schedule.

use burn::optim::AdamConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use serde::{Deserialize, Serialize};

use crate::obf::{DEFAULT_BOTTLENECK, DEFAULT_HIDDEN, ObfArch};
use crate::privacy_train::{PrivacyEpoch, PrivacyTraining};
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
    /// Width of [`ObfArch::Bottleneck`]'s first (hidden) layer (ignored by the other
    /// architectures); it sets most of the net's device cost.
    pub hidden: usize,
    /// Privacy-aware (adversarial) training; `None` (the default) trains for accuracy only, the
    /// published recipe. See [`PrivacyTraining`].
    pub privacy: Option<PrivacyTraining>,
    /// Which implementation trains the nets (see [`Engine`]).
    pub engine: Engine,
}

/// Which implementation trains the obfuscators. Both train the same nets from the same seeds,
/// data order, loss and schedule (tests in `obfnet-nn/tests/fast.rs` hold the fast path's
/// gradients, Adam and short runs to burn's); they differ in speed and in what they can train.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The fast path where it applies ([`crate::fast::supports`] and the project's LeNet-5 as
    /// the server model), burn otherwise.
    #[default]
    Auto,
    /// burn autodiff: every architecture, privacy training, ONNX server models.
    Burn,
    /// The fast path ([`crate::fast`]); an error for what it does not train.
    Fast,
}

impl Engine {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::Burn => "burn",
            Engine::Fast => "fast",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Engine::Auto),
            "burn" => Ok(Engine::Burn),
            "fast" => Ok(Engine::Fast),
            other => Err(format!("unknown engine {other:?} (auto, burn, fast)")),
        }
    }
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
            hidden: DEFAULT_HIDDEN,
            privacy: None,
            engine: Engine::Auto,
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
    /// The implementation that trained the nets: `burn` or `fast` (reports written before
    /// the fast path existed read as `burn`).
    #[serde(default = "burn_engine")]
    pub engine: Engine,
}

fn burn_engine() -> Engine {
    Engine::Burn
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

pub(crate) fn check_common(epochs: usize, batch_size: usize, lr: f64, frac: f64) -> Result<()> {
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

/// Adam as every job here uses it.
pub(crate) fn adam() -> AdamConfig {
    AdamConfig::new().with_epsilon(1e-8)
}

/// burn's cosine annealing from `peak` down to `peak · frac` over `total` steps; its first
/// `step()` is `peak` and its step `total + 1` is the floor:
/// `lr(t) = floor + ½ (peak − floor)(1 + cos(π t / total))`.
pub(crate) struct CosineSchedule(ModuleLrScheduler);

impl CosineSchedule {
    pub(crate) fn new(peak: f64, frac: f64, total: usize) -> Result<CosineSchedule> {
        CosineAnnealingLrSchedulerConfig::new(peak, total.max(1))
            .with_min_lr(peak * frac)
            .init()
            .map(CosineSchedule)
            .map_err(|reason| Error::Config {
                field: "learning_rate",
                reason,
            })
    }

    /// The learning rate of the next step.
    pub(crate) fn next_lr(&mut self) -> f64 {
        self.0.step().base()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_starts_at_peak_and_ends_at_floor() {
        let lrs: Vec<f64> = {
            let mut s = CosineSchedule::new(1e-3, 0.1, 100).expect("schedule");
            (0..=100).map(|_| s.next_lr()).collect()
        };
        assert!((lrs[0] - 1e-3).abs() < 1e-12);
        assert!((lrs[100] - 1e-4).abs() < 1e-12);
        assert!(lrs[50] < 1e-3);
        // the formula the hand-rolled schedule used, step for step
        for (t, lr) in lrs.iter().enumerate() {
            let want = 1e-4 + 0.5 * (1e-3 - 1e-4) * (1.0 + (std::f64::consts::PI * (t as f64 / 100.0)).cos());
            assert!((lr - want).abs() < 1e-15, "step {t}: {lr} vs {want}");
        }
    }
}
