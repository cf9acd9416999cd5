//! Privacy-aware obfuscator training: each obfuscator is trained against the frozen server model
//! **and** against an inverse network (a decoder) trained alongside it, in the spirit of
//! DeepObfuscator and privacy-adversarial networks.
//!
//! Every step alternates two updates on the same batch:
//!
//! 1. **Adversary**: net k's decoder `D_k` takes one Adam step on the mean squared error between
//!    `D_k(obf_k(x))` and `x` (the obfuscator's outputs are constants here).
//! 2. **Obfuscator**: net k takes one Adam step on
//!    `CE(model(obf_k(x)), y) + λ · mean_i max(0, floor_i − mse_i)`, where `mse_i` is the
//!    decoder's squared error on sample i (gradients flow through the decoder, whose weights are
//!    constants here) and `floor_i` is the squared error of the **class mean** of sample i's
//!    label — what an attacker reconstructs from the label alone, which the server learns anyway
//!    because it answers with the label. The term pushes the decoder's reconstruction to be no
//!    better than a label-only guess, and stops pushing once it is: an unbounded objective
//!    (maximise the decoder's error) rewards outputs that merely confuse the current decoder, and
//!    a fresh decoder undoes them.
//!
//! With an **attribute** term (β > 0, `PrivacyTraining::attribute`) each net also has a second
//! adversary, a classifier of a private attribute the frozen model does not need (FSDD: who is
//! speaking), trained on the nets' outputs; the obfuscator step adds
//! `β · (mean_i CE(uniform, softmax(A_k(obf_k(x_i)))) − ln A)`, which is 0 exactly when the
//! classifier can say nothing better than "any of the A values" and needs no fooling of the
//! current classifier (its labels are not flipped, only made indistinguishable).
//!
//! All in the normalised input space. The decoder used here is only the training adversary: the
//! privacy evaluation (`obfnet-privacy`) trains fresh attackers from scratch against the frozen
//! nets, never this one.

use burn::module::Param;
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use crate::config::adam;
use crate::data::Dataset;
use crate::obf::ObfStack;
use crate::rng::SplitMix64;
use crate::server_model::ServerModel;
use crate::step::{Ce, scalar};
use crate::{Error, Result};

/// Settings of adversarial (privacy-aware) obfuscator training; see the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrivacyTraining {
    /// λ: weight of the reconstruction term against the classification loss.
    pub weight: f32,
    /// Hidden width of each net's decoder (one hidden ReLU layer).
    pub decoder_hidden: usize,
    /// Adam learning rate of the decoders (constant).
    pub decoder_learning_rate: f64,
    /// Decoder-only steps before the obfuscators start seeing the privacy term, so that the
    /// first gradients come from a decoder that has learnt something.
    pub warmup_steps: usize,
    /// μ: weight of the diversity term, the mean cosine similarity between what net k and net
    /// k+1 (mod K) make of the same (centred) batch. Pushing it down makes the K nets map one
    /// input to different outputs, so that a decoder pooled over the nets has K different
    /// functions to undo. 0 (the default) turns it off; it needs K ≥ 2.
    pub diversity: f32,
    /// ν: weight of the class-collapse term, the within-class share of the variance of each
    /// net's outputs on the batch, `Σ_i ‖o_i − m_{y_i}‖² / Σ_i ‖o_i − m‖²` (`m_c`: the batch
    /// mean of class c's outputs, `m`: the batch mean). At 0 every output is a function of its
    /// label alone, and then no decoder — of any family, trained on any amount of data — can
    /// reconstruct more than the label-only floor: the term needs no adversary to be fooled.
    /// 0 (the default) turns it off.
    #[serde(default)]
    pub collapse: f32,
    /// σ of the noise the devices add to every output (pixel units; 0: none). Training adds
    /// Gaussian noise of this deviation to the nets' outputs before the frozen model, the
    /// adversary and the collapse term see them, so the nets learn to keep their classes apart
    /// beyond it; the bundle then records it (format 3) and devices draw it at run time
    /// (`obfnet_core::OutputNoise`, same deviation).
    #[serde(default)]
    pub output_noise: f32,
    /// β: weight of the attribute term (see the module docs; 0, the default, turns it off). It
    /// needs per-sample attribute labels
    /// ([`crate::train_obfuscators_with_attributes`]); the attribute classifiers have
    /// [`PrivacyTraining::decoder_hidden`] hidden units and its learning rate.
    #[serde(default)]
    pub attribute: f32,
}

impl Default for PrivacyTraining {
    fn default() -> Self {
        PrivacyTraining {
            weight: 1.0,
            decoder_hidden: 512,
            decoder_learning_rate: 1e-3,
            warmup_steps: 100,
            diversity: 0.0,
            collapse: 0.0,
            output_noise: 0.0,
            attribute: 0.0,
        }
    }
}

impl PrivacyTraining {
    pub(crate) fn validate(&self) -> Result<()> {
        if !(self.weight.is_finite() && self.weight >= 0.0 && self.weight <= 1e6) {
            return Err(Error::Config {
                field: "privacy.weight",
                reason: format!("{} is not in [0, 1e6]", self.weight),
            });
        }
        if !(self.diversity.is_finite() && (0.0..=1e6).contains(&self.diversity)) {
            return Err(Error::Config {
                field: "privacy.diversity",
                reason: format!("{} is not in [0, 1e6]", self.diversity),
            });
        }
        if !(self.collapse.is_finite() && (0.0..=1e6).contains(&self.collapse)) {
            return Err(Error::Config {
                field: "privacy.collapse",
                reason: format!("{} is not in [0, 1e6]", self.collapse),
            });
        }
        if !(self.attribute.is_finite() && (0.0..=1e6).contains(&self.attribute)) {
            return Err(Error::Config {
                field: "privacy.attribute",
                reason: format!("{} is not in [0, 1e6]", self.attribute),
            });
        }
        if !(self.output_noise.is_finite() && (0.0..=16.0).contains(&self.output_noise)) {
            return Err(Error::Config {
                field: "privacy.output_noise",
                reason: format!("{} is not in [0, 16]", self.output_noise),
            });
        }
        if !(1..=100_000).contains(&self.decoder_hidden) {
            return Err(Error::Config {
                field: "privacy.decoder_hidden",
                reason: format!("{} is not in 1..=100000", self.decoder_hidden),
            });
        }
        if !(self.decoder_learning_rate.is_finite() && self.decoder_learning_rate > 0.0) {
            return Err(Error::Config {
                field: "privacy.decoder_learning_rate",
                reason: "must be finite and > 0".into(),
            });
        }
        Ok(())
    }
}

/// burn's dense layer `x · W + b` (`W`: `[in, out]`), initialised from `rng` (uniform in
/// ±1/√in, weights then bias) so that training is reproducible from the net's seed.
fn dense(inputs: usize, outputs: usize, rng: &mut SplitMix64, device: &Device) -> Linear {
    let bound = 1.0 / (inputs as f32).sqrt();
    let w: Vec<f32> = (0..inputs * outputs).map(|_| rng.uniform(bound)).collect();
    let b: Vec<f32> = (0..outputs).map(|_| rng.uniform(bound)).collect();
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [inputs, outputs]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [outputs]),
            device,
        ))),
    }
}

/// One two-layer MLP `d → hidden → out` (ReLU between, linear output): a training decoder
/// (`out = d`) or an attribute classifier (`out` = the number of attribute values, logits).
#[derive(Module, Debug)]
struct TwoLayer {
    hidden: Linear,
    out: Linear,
}

/// K two-layer MLPs, MLP k attacking net k: the training adversaries (decoders) and the
/// attribute adversaries (classifiers).
#[derive(Module, Debug)]
pub(crate) struct PerNet {
    nets: Vec<TwoLayer>,
}

/// Salt of the decoders' initialisation streams.
const DECODER_SALT: u64 = 0x6f62_666e_6574_0003;
/// Salt of the attribute classifiers' initialisation streams.
const ATTRIBUTE_SALT: u64 = 0x6f62_666e_6574_0005;

impl PerNet {
    /// One MLP per seed, initialised from `seed ^ salt`.
    fn new(seeds: &[u64], salt: u64, d: usize, hidden: usize, out: usize, device: &Device) -> PerNet {
        let nets = seeds
            .iter()
            .map(|&s| {
                let mut rng = SplitMix64::new(s ^ salt);
                TwoLayer {
                    hidden: dense(d, hidden, &mut rng, device),
                    out: dense(hidden, out, &mut rng, device),
                }
            })
            .collect();
        PerNet { nets }
    }

    /// # Shapes
    /// `o`: `[K, B, d]` → `[K, B, out]` (MLP k on row k).
    fn forward(&self, o: Tensor<3>) -> Tensor<3> {
        let [_, b, d] = o.dims();
        let outs = self
            .nets
            .iter()
            .enumerate()
            .map(|(k, net)| {
                let h = relu(net.hidden.forward(o.clone().narrow(0, k, 1).reshape([b, d])));
                net.out.forward(h)
            })
            .collect();
        Tensor::stack(outs, 0)
    }
}

/// The K training decoders `d → hidden → d`, decoder k attacking net k.
pub(crate) type Adversaries = PerNet;

/// The attribute term: mean over samples (and nets) of the cross-entropy between the uniform
/// distribution over the A values and the classifier's prediction, minus its minimum ln A.
///
/// # Shapes
/// `logits`: `[K, B, A]` → scalar.
pub(crate) fn attribute_term(logits: Tensor<3>) -> Tensor<1> {
    let a = logits.dims()[2];
    let logp = burn::tensor::activation::log_softmax(logits, 2);
    logp.mean_dim(2).mean().neg().sub_scalar((a as f32).ln())
}

/// The attribute half of the adversary: classifiers, their optimiser, every training sample's
/// attribute, and the epoch's sums (classifier cross-entropy and accuracy).
struct AttributeState {
    nets: Option<PerNet>,
    optim: burn::optim::ModuleOptimizer,
    labels: Vec<i64>,
    values: usize,
    sums: [f64; 2],
}

/// Per-class mean of the (normalised) inputs of `train`, `[classes, d]`, on the plain device:
/// the best squared-error reconstruction from the label alone.
///
/// # Errors
/// [`Error::EmptySplit`] when `train` holds no labels.
pub fn class_means(train: &Dataset) -> Result<Tensor<2>> {
    let classes = train
        .labels
        .iter()
        .copied()
        .max()
        .map_or(0, |m| usize::from(m) + 1);
    if classes == 0 {
        return Err(Error::EmptySplit {
            what: "the training split's labels",
        });
    }
    let device = train.x.device();
    let mut counts = vec![0f32; classes];
    for &l in &train.labels {
        counts[usize::from(l)] += 1.0;
    }
    let onehot = train.y.clone().one_hot(classes).float(); // [n, C]
    let sums = onehot.transpose().matmul(train.x.clone()); // [C, d]
    let inv: Vec<f32> = counts
        .iter()
        .map(|&c| if c > 0.0 { 1.0 / c } else { 0.0 })
        .collect();
    let inv = Tensor::<1>::from_data(TensorData::new(inv, [classes]), &device);
    Ok(sums * inv.unsqueeze_dim(1))
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
    /// With the attribute term: the training attribute classifiers' accuracy on the batches,
    /// before each step (chance = 1 / the number of attribute values).
    #[serde(default)]
    pub attribute_accuracy: Option<f32>,
    /// With the attribute term: the number of attribute values (its chance is 1 / this).
    #[serde(default)]
    pub attribute_values: Option<usize>,
}

/// What one adversarial step measured (means over the K nets).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StepLosses {
    /// Cross-entropy of the frozen model on the obfuscated batch.
    pub ce: f32,
    /// The decoders' mean squared error (normalised space).
    pub decoder_mse: f32,
    /// The class-mean floor's mean squared error on the same batch.
    pub floor_mse: f32,
}

/// Per-sample mean squared error over the last axis: `[K, B, d]` → `[K·B]`.
fn per_sample_mse(a: Tensor<3>, b: Tensor<3>) -> Tensor<1> {
    let [k, n, _] = a.dims();
    (a - b).powi_scalar(2).mean_dim(2).reshape([k * n])
}

/// The adversary half of a step: one Adam step of every decoder on `(obf, x)`.
///
/// # Shapes
/// `obf`, `x`: `[K, B, d]` (plain device).
pub(crate) fn decoder_step(
    adv: Adversaries,
    optim: &mut burn::optim::ModuleOptimizer,
    obf: Tensor<3>,
    x: Tensor<3>,
    lr: f64,
) -> Result<(Adversaries, f32)> {
    let k = obf.dims()[0];
    let rec = adv.forward(obf.autodiff());
    let loss = (rec - x.autodiff()).powi_scalar(2).mean().mul_scalar(k as f32);
    let value = scalar(&loss)? / k as f32;
    let mut g = loss.backward();
    let grads = GradientsParams::from_module(&mut g, &adv);
    Ok((optim.step(lr, adv, grads), value))
}

/// The privacy term of the obfuscator half, `mean_i max(0, floor_i − mse_i)`, and the mean
/// decoder and floor errors (for the log).
///
/// # Shapes
/// `obf`: `[K, B, d]` (autodiff, carries the obfuscators' graph); `x`: `[K, B, d]`; `means`:
/// `[C, d]`; `y`: `[K·B]` (plain device).
pub(crate) fn privacy_term(
    adv: &Adversaries,
    obf: Tensor<3>,
    x: Tensor<3>,
    means: &Tensor<2>,
    y: Tensor<1, Int>,
) -> Result<(Tensor<1>, f32, f32)> {
    let [k, b, d] = x.dims();
    let fixed = adv.clone().no_grad();
    let rec = fixed.forward(obf);
    let mse = per_sample_mse(rec, x.clone().autodiff());
    let guess = means.clone().select(0, y).reshape([k, b, d]);
    let floor = per_sample_mse(guess, x);
    let floor_mean = scalar(&floor.clone().mean())?;
    let mse_mean = scalar(&mse.clone().inner().mean())?;
    let term = (floor.autodiff() - mse).clamp_min(0.0).mean();
    Ok((term, mse_mean, floor_mean))
}

/// The diversity term: mean over k of the cosine similarity between net k's and net k+1's
/// (mod K) outputs on net k's batch, each output centred per sample.
///
/// # Shapes
/// `obf`: `[K, B, d]` (net k on batch k), `other`: `[K, B, d]` (net k+1 on batch k); autodiff.
pub(crate) fn diversity_term(obf: Tensor<3>, other: Tensor<3>) -> Tensor<1> {
    let centre = |t: Tensor<3>| {
        let m = t.clone().mean_dim(2);
        t - m
    };
    let (a, b) = (centre(obf), centre(other));
    let dot = (a.clone() * b.clone()).sum_dim(2);
    let na = a.powi_scalar(2).sum_dim(2).sqrt();
    let nb = b.powi_scalar(2).sum_dim(2).sqrt();
    let cos = dot / (na * nb).clamp_min(1e-6);
    cos.mean()
}

/// The class-collapse term: per net, the within-class share of the variance of its outputs on
/// its batch, averaged over the K nets. Classes absent from a batch contribute nothing.
///
/// # Shapes
/// `obf`: `[K, B, d]` (autodiff), `y`: `[K·B]` (plain device; row k's labels are `y[k·B..]`).
pub(crate) fn collapse_term(obf: Tensor<3>, y: Tensor<1, Int>, classes: usize) -> Tensor<1> {
    let [k, b, _] = obf.dims();
    let onehot = y
        .one_hot::<2>(classes)
        .float()
        .reshape([k, b, classes])
        .autodiff(); // [K, B, C]
    let counts = onehot.clone().sum_dim(1).clamp_min(1.0); // [K, 1, C]
    let sums = onehot.clone().swap_dims(1, 2).matmul(obf.clone()); // [K, C, d]
    let means = sums / counts.swap_dims(1, 2); // [K, C, d]
    let own = onehot.matmul(means); // [K, B, d]: each sample's class mean
    let within = (obf.clone() - own).powi_scalar(2).sum_dim(2).sum_dim(1); // [K, 1, 1]
    let centre = obf.clone().mean_dim(1);
    let total = (obf - centre).powi_scalar(2).sum_dim(2).sum_dim(1);
    (within / total.clamp_min(1e-6)).mean()
}

/// The training adversary of privacy-aware training and its state across steps: the K
/// decoders and their optimiser, the class means (label-only floor), the settings, and the
/// running sums of the epoch's losses.
pub(crate) struct Adversary {
    /// The decoders; `None` only inside [`Adversary::step`] (burn's optimiser step takes the
    /// module by value) or after a failed step.
    decoders: Option<Adversaries>,
    optim: burn::optim::ModuleOptimizer,
    means: Tensor<2>,
    settings: PrivacyTraining,
    /// Sums over the epoch's steps: CE, decoder MSE, floor MSE.
    sums: [f64; 3],
    /// The attribute adversaries (with β > 0).
    attribute: Option<AttributeState>,
}

impl Adversary {
    /// Validates `settings` and builds K decoders (seeded from `seeds`) for `train`'s inputs,
    /// and K attribute classifiers when the attribute term is on (`attributes`: one value per
    /// training sample).
    pub(crate) fn new(
        settings: &PrivacyTraining,
        seeds: &[u64],
        train: &Dataset,
        attributes: Option<&[u8]>,
        device: &Device,
    ) -> Result<Adversary> {
        settings.validate()?;
        let attribute = if settings.attribute > 0.0 {
            let labels = attributes.ok_or_else(|| Error::Config {
                field: "privacy.attribute",
                reason: "the attribute term needs one attribute label per training sample \
                         (e.g. FSDD's speakers)"
                    .into(),
            })?;
            if labels.len() != train.len() {
                return Err(Error::Config {
                    field: "privacy.attribute",
                    reason: format!(
                        "{} attribute labels for {} training samples",
                        labels.len(),
                        train.len()
                    ),
                });
            }
            let values = labels.iter().copied().max().map_or(0, |m| usize::from(m) + 1);
            if values < 2 {
                return Err(Error::Config {
                    field: "privacy.attribute",
                    reason: "the attribute labels take fewer than 2 values".into(),
                });
            }
            Some(AttributeState {
                nets: Some(PerNet::new(
                    seeds,
                    ATTRIBUTE_SALT,
                    train.dim(),
                    settings.decoder_hidden,
                    values,
                    device,
                )),
                optim: adam().init(),
                labels: labels.iter().map(|&l| i64::from(l)).collect(),
                values,
                sums: [0.0; 2],
            })
        } else {
            None
        };
        Ok(Adversary {
            attribute,
            decoders: Some(PerNet::new(
                seeds,
                DECODER_SALT,
                train.dim(),
                settings.decoder_hidden,
                train.dim(),
                device,
            )),
            optim: adam().init(),
            means: class_means(train)?,
            settings: settings.clone(),
            sums: [0.0; 3],
        })
    }

    /// One step of privacy-aware training (see the module docs): a decoder step on the current
    /// obfuscations, then an obfuscator step on `CE + λ · privacy term` (+ μ · diversity),
    /// λ = 0 during the warm-up steps. Returns the updated stack, the cross-entropy, and whether
    /// a frozen parameter received a gradient.
    ///
    /// # Shapes
    /// `x`: `[K, B, d]`, `y`: `[K·B]`; `idx`: the `K·B` training-sample indices of the batch
    /// (row k's are `idx[k·B..]`), for the attribute labels.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &mut self,
        stack: ObfStack,
        frozen: &ServerModel,
        optim: &mut burn::optim::ModuleOptimizer,
        ce: &Ce,
        x: Tensor<3>,
        y: Tensor<1, Int>,
        idx: &[usize],
        lr: f64,
        step: usize,
    ) -> Result<(ObfStack, f32, bool)> {
        let [k, b, d] = x.dims();
        let weight = if step >= self.settings.warmup_steps {
            self.settings.weight
        } else {
            0.0
        };
        let diversity = if k > 1 { self.settings.diversity } else { 0.0 };
        let decoders = self.decoders.take().ok_or(Error::Config {
            field: "privacy",
            reason: "the training adversary was lost by an earlier failed step".into(),
        })?;
        let obf = stack.forward(x.clone().autodiff());
        let obf = if self.settings.output_noise > 0.0 {
            // the device's noise, in the model's input units; a constant for autodiff
            let sd = f64::from(self.settings.output_noise / crate::NORMALISATION.std);
            let noise = obf
                .clone()
                .inner()
                .random_like(burn::tensor::Distribution::Normal(0.0, sd));
            obf + noise.autodiff()
        } else {
            obf
        };
        let (decoders, decoder_mse) = decoder_step(
            decoders,
            &mut self.optim,
            obf.clone().inner(),
            x.clone(),
            self.settings.decoder_learning_rate,
        )?;
        let logits = frozen.forward(obf.clone().reshape([k * b, d]))?;
        let ce_loss = ce.forward(logits, y.clone().autodiff());
        let ce_value = scalar(&ce_loss)?;
        let mut loss = ce_loss;
        if diversity > 0.0 {
            // net k+1 (mod K) on net k's batch: roll the batches down by one along K
            let rolled = Tensor::cat(
                vec![x.clone().narrow(0, k - 1, 1), x.clone().narrow(0, 0, k - 1)],
                0,
            );
            let other = stack.forward(rolled.autodiff());
            // row j of `other` is net j on batch j-1; roll back up so row k is net k+1 on batch k
            let other = Tensor::cat(vec![other.clone().narrow(0, 1, k - 1), other.narrow(0, 0, 1)], 0);
            loss = loss + diversity_term(obf.clone(), other).mul_scalar(diversity);
        }
        if let Some(attr) = &mut self.attribute {
            let nets = attr.nets.take().ok_or(Error::Config {
                field: "privacy.attribute",
                reason: "the attribute adversary was lost by an earlier failed step".into(),
            })?;
            let labels: Vec<i64> = idx.iter().map(|&i| attr.labels[i]).collect();
            let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [k * b]), &x.device());
            // classifier step on the (detached) outputs, as the decoders above
            let logits = nets.forward(obf.clone().inner().autodiff());
            let values = attr.values;
            let pred = crate::eval::argmax_labels(logits.clone().inner().reshape([k * b, values]))?;
            let hits = idx
                .iter()
                .zip(&pred)
                .filter(|&(&i, &p)| attr.labels[i] == p)
                .count();
            let acc = hits as f64 / (k * b) as f64;
            let attr_ce = ce.forward(logits.reshape([k * b, values]), labels.autodiff());
            let attr_value = scalar(&attr_ce)?;
            let mut g = attr_ce.mul_scalar(k as f32).backward();
            let grads = GradientsParams::from_module(&mut g, &nets);
            let nets = attr.optim.step(self.settings.decoder_learning_rate, nets, grads);
            attr.sums[0] += f64::from(attr_value);
            attr.sums[1] += acc;
            if step >= self.settings.warmup_steps {
                let fixed = nets.clone().no_grad();
                loss = loss + attribute_term(fixed.forward(obf.clone())).mul_scalar(self.settings.attribute);
            }
            attr.nets = Some(nets);
        }
        let collapse = self.settings.collapse;
        if collapse > 0.0 && step >= self.settings.warmup_steps {
            let classes = self.means.dims()[0];
            loss = loss + collapse_term(obf.clone(), y.clone(), classes).mul_scalar(collapse);
        }
        let (term, _, floor_mse) = privacy_term(&decoders, obf, x, &self.means, y)?;
        self.decoders = Some(decoders);
        let loss = (loss + term.mul_scalar(weight)).mul_scalar(k as f32);
        let mut g = loss.backward();
        let grad_found = frozen.has_any_gradient(&g);
        let grads = GradientsParams::from_module(&mut g, &stack);
        let stack = optim.step(lr, stack, grads);
        let losses = StepLosses {
            ce: ce_value,
            decoder_mse,
            floor_mse,
        };
        self.sums[0] += f64::from(losses.ce);
        self.sums[1] += f64::from(losses.decoder_mse);
        self.sums[2] += f64::from(losses.floor_mse);
        Ok((stack, ce_value, grad_found))
    }

    /// The epoch's means over its `steps` steps; starts the next epoch's sums.
    pub(crate) fn finish_epoch(&mut self, epoch: usize, steps: usize) -> PrivacyEpoch {
        let n = steps.max(1) as f64;
        let [ce, dec, floor] = std::mem::take(&mut self.sums);
        let (attribute_accuracy, attribute_values) = match &mut self.attribute {
            Some(a) => {
                let [_, acc] = std::mem::take(&mut a.sums);
                (Some((acc / n) as f32), Some(a.values))
            }
            None => (None, None),
        };
        let e = PrivacyEpoch {
            ce: (ce / n) as f32,
            decoder_mse: (dec / n) as f32,
            floor_mse: (floor / n) as f32,
            attribute_accuracy,
            attribute_values,
        };
        tracing::info!(
            epoch,
            ce = e.ce,
            decoder_mse = e.decoder_mse,
            floor_mse = e.floor_mse,
            "privacy"
        );
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(rows: [[f32; 3]; 4], labels: [i64; 4]) -> f32 {
        let device = crate::default_device();
        // K = 2: net 1's outputs are net 0's doubled (the ratio does not depend on scale).
        let mut v: Vec<f32> = rows.iter().flatten().copied().collect();
        v.extend(rows.iter().flatten().map(|x| 2.0 * x));
        let obf = Tensor::<3>::from_data(TensorData::new(v, [2, 4, 3]), &device);
        let y: Vec<i64> = labels.iter().chain(labels.iter()).copied().collect();
        let y = Tensor::<1, Int>::from_data(TensorData::new(y, [8]), &device);
        scalar(&collapse_term(obf, y, 3)).expect("scalar")
    }

    #[test]
    fn attribute_term_is_zero_for_uniform_predictions_and_grows_with_confidence() {
        let device = crate::default_device();
        let logits = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [1, 2, 3]), &device);
        let uniform = scalar(&attribute_term(logits(vec![0.5; 6]))).expect("scalar");
        assert!(uniform.abs() < 1e-6, "uniform: {uniform}");
        let sure = scalar(&attribute_term(logits(vec![9.0, 0.0, 0.0, 0.0, 0.0, 9.0]))).expect("scalar");
        let unsure = scalar(&attribute_term(logits(vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0]))).expect("scalar");
        assert!(sure > unsure && unsure > 0.0, "{sure} vs {unsure}");
    }

    #[test]
    fn collapse_term_is_zero_for_label_only_outputs_and_one_for_label_free_ones() {
        let a = [1.0, 2.0, 3.0];
        let b = [4.0, -5.0, 6.0];
        // outputs determined by the label: no within-class variance
        let t = term([a, a, b, b], [0, 0, 1, 1]);
        assert!(t.abs() < 1e-6, "label-only outputs: {t}");
        // both classes have the same mean: all the variance is within classes
        let t = term([a, b, a, b], [0, 0, 1, 1]);
        assert!((t - 1.0).abs() < 1e-5, "label-free outputs: {t}");
        // in between: one class collapsed, the other not
        let t = term([a, a, a, b], [0, 0, 1, 1]);
        assert!(t > 0.05 && t < 0.95, "mixed: {t}");
    }
}
