//! Reconstruction attacks: from what a device sent back to the image.
//!
//! # Threat model
//! Honest-but-curious server. It knows the frozen model, the architecture and weights of all K
//! obfuscators (it trained them), and has data from the same distribution (its own training
//! split). It does not know which of the K nets a device used for a given sample. Attacks fit
//! on the training split only and are scored on test-split samples.

use burn::prelude::*;
use obfnet_nn::{Dataset, NORMALISATION, ObfArch, ObfTrainConfig, ServerModel, SplitMix64, TrainEvent};
use serde::{Deserialize, Serialize};

use crate::mlp::{Mlp, MlpConfig, Targets, index_tensor, to_vec, train_mlp};
use crate::scheme::{ObfScheme, Scheme, observe, observe_with};
use crate::{Error, Result};

/// What an attack may use while fitting.
#[derive(Debug, Clone, Copy)]
pub struct FitContext<'a> {
    /// The server's frozen model (the project's LeNet-5 or an ONNX graph).
    pub server: &'a ServerModel,
    /// The server's own data (training split).
    pub train: &'a Dataset,
    /// Only for reporting accuracies of shadow nets; attacks never fit on it.
    pub test: &'a Dataset,
}

/// A reconstruction attack: fits on the server's own data, then maps observed outputs back to
/// images (normalised input space).
pub trait Attack {
    /// A short name, e.g. `inverse-pooled`.
    fn name(&self) -> String;
    /// Learns what the attack needs (decoders, shadow nets); a white-box attack may do nothing.
    fn fit(
        &mut self,
        scheme: &dyn Scheme,
        ctx: FitContext<'_>,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<()>;
    /// Reconstructions of `observed`.
    ///
    /// # Shapes
    /// `observed`: `[N, output_dim]` → `[N, input_dim]` (normalised).
    fn reconstruct(
        &self,
        scheme: &dyn Scheme,
        observed: &Tensor<2>,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<Tensor<2>>;
}

/// Budget of the black-box inverse network. Defaults: 10 000 training pairs, MLP
/// `m → 1000 → d`, 5 epochs, batch 128, Adam 1e-3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InverseConfig {
    /// Training images taken from the server's split (per decoder).
    pub train_samples: usize,
    /// The decoder and its training.
    pub mlp: MlpConfig,
    /// Seeds the choice of images, nets, noise, initialisation.
    pub seed: u64,
}

impl Default for InverseConfig {
    fn default() -> Self {
        InverseConfig {
            train_samples: 10_000,
            mlp: MlpConfig::default(),
            seed: 5000,
        }
    }
}

/// Whether the inverse network is one decoder for all K nets or one per net.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InverseMode {
    /// One decoder trained on pairs through nets picked at random (as devices do).
    Pooled,
    /// One decoder per net; a sample's reconstruction is the one whose re-obfuscation through
    /// its own net is closest to what was observed (the server knows every net's weights).
    PerNet,
}

/// Black-box inverse network (He, Zhang & Lee 2019): a decoder trained on pairs
/// `(obf_k(x), x)` the server builds from its own data.
#[derive(Debug)]
pub struct InverseNet {
    cfg: InverseConfig,
    mode: InverseMode,
    decoders: Vec<Mlp>,
    label: String,
}

impl InverseNet {
    /// An unfitted attack.
    pub fn new(cfg: InverseConfig, mode: InverseMode) -> InverseNet {
        let label = match mode {
            InverseMode::Pooled => "inverse-pooled",
            InverseMode::PerNet => "inverse-per-net",
        };
        InverseNet {
            cfg,
            mode,
            decoders: Vec::new(),
            label: label.into(),
        }
    }

    /// Renames the attack (the shadow attack reuses this type).
    pub fn with_label(mut self, label: &str) -> Self {
        self.label = label.into();
        self
    }
}

/// `n` training images picked at random (seeded) from the server's split.
pub(crate) fn sample_train(train: &Dataset, n: usize, rng: &mut SplitMix64) -> Tensor<2> {
    let mut idx = rng.permutation(train.len());
    idx.truncate(n.min(train.len()));
    train.x.clone().select(0, index_tensor(&idx, &train.x.device()))
}

impl Attack for InverseNet {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn fit(
        &mut self,
        scheme: &dyn Scheme,
        ctx: FitContext<'_>,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<()> {
        if self.cfg.train_samples == 0 {
            return Err(Error::config("train_samples", "must be > 0"));
        }
        let mut rng = SplitMix64::new(self.cfg.seed);
        let k = scheme.candidates();
        self.decoders.clear();
        match self.mode {
            InverseMode::Pooled => {
                let x = sample_train(ctx.train, self.cfg.train_samples, &mut rng);
                let (y, _) = observe(scheme, &x, &mut rng)?;
                let name = format!("{}: decoder for {}", self.label, scheme.name());
                self.decoders.push(train_mlp(
                    &name,
                    &self.cfg.mlp,
                    &y,
                    &Targets::Regression(x),
                    rng.next_u64(),
                    progress,
                )?);
            }
            InverseMode::PerNet => {
                for net in 0..k {
                    let x = sample_train(ctx.train, self.cfg.train_samples, &mut rng);
                    let chosen = vec![net; x.dims()[0]];
                    let y = observe_with(scheme, &x, &chosen, &mut rng)?;
                    let name = format!("{}: decoder {}/{k} for {}", self.label, net + 1, scheme.name());
                    self.decoders.push(train_mlp(
                        &name,
                        &self.cfg.mlp,
                        &y,
                        &Targets::Regression(x),
                        rng.next_u64(),
                        progress,
                    )?);
                }
            }
        }
        Ok(())
    }

    fn reconstruct(
        &self,
        scheme: &dyn Scheme,
        observed: &Tensor<2>,
        _progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<Tensor<2>> {
        match self.decoders.as_slice() {
            [] => Err(Error::config("attack", "reconstruct called before fit")),
            [one] => Ok(one.predict(observed)),
            many => {
                let [n, _] = observed.dims();
                let obs = observed.clone().inner();
                let mut best: Vec<(f32, usize)> = vec![(f32::INFINITY, 0); n];
                let mut recons = Vec::with_capacity(many.len());
                for (k, dec) in many.iter().enumerate() {
                    let xr = dec.predict(&obs);
                    let res = residuals(scheme.map(k, xr.clone())?, obs.clone())?;
                    for (b, r) in best.iter_mut().zip(res) {
                        if r < b.0 {
                            *b = (r, k);
                        }
                    }
                    recons.push(xr);
                }
                pick_rows(&recons, &best.iter().map(|b| b.1).collect::<Vec<_>>())
            }
        }
    }
}

/// Mean squared difference per row.
pub(crate) fn residuals(a: Tensor<2>, b: Tensor<2>) -> Result<Vec<f32>> {
    to_vec((a - b).powi_scalar(2).mean_dim(1))
}

/// Row i of the output is row i of `candidates[pick[i]]`.
pub(crate) fn pick_rows(candidates: &[Tensor<2>], pick: &[usize]) -> Result<Tensor<2>> {
    let n = pick.len();
    let k = candidates.len();
    let all = Tensor::cat(candidates.to_vec(), 0); // [k·n, d]
    let idx: Vec<usize> = pick
        .iter()
        .enumerate()
        .map(|(i, &c)| c.min(k - 1) * n + i)
        .collect();
    let device = all.device();
    Ok(all.select(0, index_tensor(&idx, &device)))
}

/// Budget of the white-box regularised input optimisation (rMLE). Defaults: 300 Adam steps at
/// 0.05 (normalised units), TV weight 0.01, chunks of 1000 (sample, candidate) rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RmleConfig {
    /// Adam steps on the input.
    pub steps: usize,
    /// Adam learning rate (normalised input units).
    pub learning_rate: f64,
    /// Weight λ of the anisotropic total variation `Σ|x(i,j+1)−x(i,j)| + |x(i+1,j)−x(i,j)|`
    /// (per image, normalised units) against the squared-error data term (summed over outputs).
    pub tv_weight: f64,
    /// Rows (sample × candidate) optimised together.
    pub chunk_rows: usize,
}

impl Default for RmleConfig {
    fn default() -> Self {
        RmleConfig {
            steps: 300,
            learning_rate: 0.05,
            tv_weight: 0.01,
            chunk_rows: 1000,
        }
    }
}

/// White-box regularised maximum-likelihood estimation (He et al. 2019's rMLE): for every
/// candidate k find `x` minimising `‖map_k(x) − observed‖² + λ·TV(x)` with `x` kept in the valid
/// pixel range, and keep the candidate whose data term is smallest.
#[derive(Debug)]
pub struct Rmle {
    cfg: RmleConfig,
    rows: usize,
    cols: usize,
}

impl Rmle {
    /// An rMLE attack on `rows × cols` images.
    pub fn new(cfg: RmleConfig, rows: usize, cols: usize) -> Rmle {
        Rmle { cfg, rows, cols }
    }
}

impl Attack for Rmle {
    fn name(&self) -> String {
        "rmle".into()
    }

    fn fit(
        &mut self,
        _scheme: &dyn Scheme,
        _ctx: FitContext<'_>,
        _p: &mut dyn FnMut(TrainEvent),
    ) -> Result<()> {
        if self.cfg.steps == 0 || self.cfg.chunk_rows == 0 {
            return Err(Error::config("rmle", "steps and chunk_rows must be > 0"));
        }
        if !(self.cfg.learning_rate > 0.0 && self.cfg.tv_weight >= 0.0) {
            return Err(Error::config(
                "rmle",
                "learning_rate must be > 0 and tv_weight ≥ 0",
            ));
        }
        Ok(())
    }

    fn reconstruct(
        &self,
        scheme: &dyn Scheme,
        observed: &Tensor<2>,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<Tensor<2>> {
        let [n, m] = observed.dims();
        let d = self.rows * self.cols;
        if scheme.input_dim() != d {
            return Err(Error::Mismatch {
                what: "rMLE: scheme input values for the image size",
                expected: d,
                got: scheme.input_dim(),
            });
        }
        if scheme.output_dim() != m {
            return Err(Error::Mismatch {
                what: "rMLE: observed values for the scheme's output",
                expected: scheme.output_dim(),
                got: m,
            });
        }
        let k = scheme.candidates();
        // rows are (candidate, sample) pairs; chunk over samples so a chunk holds all K candidates
        let per_chunk = (self.cfg.chunk_rows / k).max(1);
        let chunks = n.div_ceil(per_chunk);
        progress(TrainEvent::Phase {
            name: format!("rmle on {} ({n} samples × {k} candidates)", scheme.name()),
            total_steps: (chunks * self.cfg.steps) as u64,
        });
        let obs = observed.clone().inner();
        let mut out = Vec::with_capacity(chunks);
        let mut step_count = 0u64;
        for c in 0..chunks {
            let lo = c * per_chunk;
            let hi = (lo + per_chunk).min(n);
            let y = obs.clone().slice([lo..hi, 0..m]);
            let (x, _) = self.solve(scheme, &y, &mut |loss| {
                step_count += 1;
                progress(TrainEvent::Step {
                    step: step_count,
                    loss,
                });
            })?;
            out.push(x);
        }
        Ok(Tensor::cat(out, 0))
    }
}

impl Rmle {
    /// Solves one chunk: `y` `[b, m]` → best reconstruction `[b, d]` and each sample's chosen
    /// candidate.
    fn solve(
        &self,
        scheme: &dyn Scheme,
        y: &Tensor<2>,
        step: &mut dyn FnMut(f32),
    ) -> Result<(Tensor<2>, Vec<usize>)> {
        let [b, _] = y.dims();
        let (r, cl) = (self.rows, self.cols);
        let d = r * cl;
        let k = scheme.candidates();
        let device = y.device();
        let lo = -NORMALISATION.mean / NORMALISATION.std;
        let hi = (1.0 - NORMALISATION.mean) / NORMALISATION.std;
        // start from a black image (the most common pixel value)
        let mut x: Tensor<2> = Tensor::full([k * b, d], lo, &device);
        let mut adam = crate::mlp::TensorAdam::new(&x);
        let target = Tensor::cat(vec![y.clone(); k], 0).autodiff();
        let lr = self.cfg.learning_rate;
        for t in 1..=self.cfg.steps {
            let xa = x.clone().autodiff().require_grad();
            let outs = (0..k)
                .map(|c| scheme.map(c, xa.clone().slice([c * b..(c + 1) * b, 0..d])))
                .collect::<Result<Vec<_>>>()?;
            let pred = Tensor::cat(outs, 0);
            let data = (pred - target.clone()).powi_scalar(2).sum();
            let img = xa.clone().reshape([k * b, r, cl]);
            let dx =
                img.clone().slice([0..k * b, 0..r, 1..cl]) - img.clone().slice([0..k * b, 0..r, 0..cl - 1]);
            let dy = img.clone().slice([0..k * b, 1..r, 0..cl]) - img.slice([0..k * b, 0..r - 1, 0..cl]);
            let tv = dx.abs().sum() + dy.abs().sum();
            let loss = data + tv.mul_scalar(self.cfg.tv_weight);
            let value = crate::mlp::scalar(loss.clone())? / (k * b) as f32;
            if !value.is_finite() {
                return Err(Error::Diverged {
                    what: "rMLE",
                    step: t,
                });
            }
            let grads = loss.backward();
            let g = xa.grad(&grads).ok_or(Error::MissingGradient {
                what: "the rMLE input",
            })?;
            x = (x - adam.update(g).mul_scalar(lr)).clamp(lo, hi);
            step(value);
        }
        // keep, per sample, the candidate with the smallest data term
        let outs = (0..k)
            .map(|c| scheme.map(c, x.clone().slice([c * b..(c + 1) * b, 0..d])))
            .collect::<Result<Vec<_>>>()?;
        let res = residuals(Tensor::cat(outs, 0), Tensor::cat(vec![y.clone(); k], 0))?;
        let pick: Vec<usize> = (0..b)
            .map(|i| {
                (0..k)
                    .min_by(|&a, &c| res[a * b + i].total_cmp(&res[c * b + i]))
                    .unwrap_or(0)
            })
            .collect();
        let cands: Vec<Tensor<2>> = (0..k)
            .map(|c| x.clone().slice([c * b..(c + 1) * b, 0..d]))
            .collect();
        Ok((pick_rows(&cands, &pick)?, pick))
    }
}

/// Budget of the query-free shadow-model attack. Defaults: one shadow net trained 1 epoch on
/// 20 000 training images (seed 90 000), then an inverse network with [`InverseConfig`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShadowConfig {
    /// Epochs of the shadow obfuscator.
    pub epochs: usize,
    /// Training images of the shadow obfuscator.
    pub train_samples: usize,
    /// Seed of the shadow net (the attacker's own; never one of the device's).
    pub seed: u64,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            epochs: 1,
            train_samples: 20_000,
            seed: 90_000,
        }
    }
}

/// Query-free shadow model (He et al. 2019): an attacker **without** the obfuscators' weights
/// trains its own obfuscator of the same (public) architecture against the frozen model, trains
/// an inverse network on that shadow, and applies it to the real observed outputs.
#[derive(Debug)]
pub struct ShadowAttack {
    cfg: ShadowConfig,
    inverse: InverseNet,
    arch: Option<ObfArch>,
    /// Accuracy of the frozen model behind the shadow net (test split), once fitted.
    pub shadow_accuracy: Option<f64>,
    shadow: Option<ObfScheme>,
}

impl ShadowAttack {
    /// An unfitted attack.
    pub fn new(cfg: ShadowConfig, inverse: InverseConfig) -> ShadowAttack {
        ShadowAttack {
            cfg,
            inverse: InverseNet::new(inverse, InverseMode::Pooled).with_label("shadow"),
            arch: None,
            shadow_accuracy: None,
            shadow: None,
        }
    }
}

impl Attack for ShadowAttack {
    fn name(&self) -> String {
        "shadow".into()
    }

    fn fit(
        &mut self,
        scheme: &dyn Scheme,
        ctx: FitContext<'_>,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<()> {
        let arch = scheme
            .arch()
            .ok_or_else(|| Error::config("scheme", "the shadow attack needs an obfuscator architecture"))?;
        let cfg = ObfTrainConfig {
            arch,
            k: 1,
            epochs: self.cfg.epochs,
            seed: self.cfg.seed,
            limit: Some(self.cfg.train_samples),
            clip_output: scheme.clips_output(),
            bottleneck: scheme.bottleneck().unwrap_or(obfnet_nn::DEFAULT_BOTTLENECK),
            hidden: scheme.hidden().unwrap_or(obfnet_nn::DEFAULT_HIDDEN),
            ..ObfTrainConfig::default()
        };
        let (stack, report) = obfnet_nn::train_obfuscators(&cfg, ctx.server, ctx.train, ctx.test, progress)?;
        self.shadow_accuracy = report.accuracies.first().copied();
        self.arch = Some(arch);
        let shadow = ObfScheme::new(&stack);
        self.inverse.fit(&shadow, ctx, progress)?;
        self.shadow = Some(shadow);
        Ok(())
    }

    fn reconstruct(
        &self,
        _scheme: &dyn Scheme,
        observed: &Tensor<2>,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<Tensor<2>> {
        let shadow = self
            .shadow
            .as_ref()
            .ok_or_else(|| Error::config("attack", "reconstruct called before fit"))?;
        self.inverse.reconstruct(shadow, observed, progress)
    }
}
