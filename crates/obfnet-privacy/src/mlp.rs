//! Small multilayer perceptrons trained with burn: the attackers' decoders, the distinguishers,
//! and the server-side classifier a projection baseline needs.

use burn::nn::loss::{CrossEntropyLossConfig, MseLoss, Reduction};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use obfnet_nn::{SplitMix64, TrainEvent};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How an MLP is trained. Defaults: one hidden layer of 1000, 5 epochs, batch 128, Adam at 1e-3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlpConfig {
    /// Widths of the hidden layers (ReLU after each).
    pub hidden: Vec<usize>,
    /// Passes over the training pairs.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Adam learning rate (constant).
    pub learning_rate: f64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            hidden: vec![1000],
            epochs: 5,
            batch_size: 128,
            learning_rate: 1e-3,
        }
    }
}

impl MlpConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.epochs > 1000 {
            return Err(Error::config(
                "epochs",
                format!("{} is not in 1..=1000", self.epochs),
            ));
        }
        if self.batch_size == 0 || self.batch_size > 65_536 {
            return Err(Error::config(
                "batch_size",
                format!("{} is not in 1..=65536", self.batch_size),
            ));
        }
        if self.hidden.iter().any(|&h| h == 0 || h > 100_000) {
            return Err(Error::config(
                "hidden",
                format!("{:?}: widths must be in 1..=100000", self.hidden),
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::config("learning_rate", "must be finite and > 0"));
        }
        Ok(())
    }
}

/// A plain MLP: linear layers with ReLU between them, none after the last.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    /// A freshly initialised MLP `d_in → hidden… → d_out` on `device`.
    pub(crate) fn init(d_in: usize, hidden: &[usize], d_out: usize, device: &Device) -> Mlp {
        let mut widths = vec![d_in];
        widths.extend(hidden);
        widths.push(d_out);
        Mlp {
            layers: widths
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
        }
    }

    /// # Shapes
    /// `x`: `[B, in]` → `[B, out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len().saturating_sub(1);
        let mut h = x;
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(h);
            if i < last {
                h = relu(h);
            }
        }
        h
    }

    /// Runs the (inference-mode) model over `x` on the plain device in chunks of 1000.
    pub fn predict(&self, x: &Tensor<2>) -> Tensor<2> {
        let model = self.valid();
        let [n, d] = x.dims();
        let outs: Vec<Tensor<2>> = (0..n)
            .step_by(1000)
            .map(|s| model.forward(x.clone().inner().slice([s..(s + 1000).min(n), 0..d])))
            .collect();
        Tensor::cat(outs, 0)
    }
}

/// What an MLP learns to predict.
#[derive(Clone, Debug)]
pub enum Targets {
    /// Regression onto these rows (`[n, out]`), mean squared error.
    Regression(Tensor<2>),
    /// Classification into `classes` classes, cross-entropy.
    Classes {
        /// `[n]` labels.
        labels: Tensor<1, Int>,
        /// Number of classes.
        classes: usize,
    },
}

/// Trains an MLP from `x` (`[n, in]`, plain device) to `targets`, reporting progress.
///
/// Initialisation and data order are seeded by `seed`.
pub fn train_mlp(
    name: &str,
    cfg: &MlpConfig,
    x: &Tensor<2>,
    targets: &Targets,
    seed: u64,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<Mlp> {
    cfg.validate()?;
    let [n, d_in] = x.dims();
    let d_out = match targets {
        Targets::Regression(t) => {
            let [tn, td] = t.dims();
            if tn != n {
                return Err(Error::Mismatch {
                    what: "regression targets for inputs",
                    expected: n,
                    got: tn,
                });
            }
            td
        }
        Targets::Classes { labels, classes } => {
            let [tn] = labels.dims();
            if tn != n {
                return Err(Error::Mismatch {
                    what: "labels for inputs",
                    expected: n,
                    got: tn,
                });
            }
            if *classes < 2 {
                return Err(Error::config("classes", format!("{classes}: need at least 2")));
            }
            *classes
        }
    };
    if n == 0 {
        return Err(Error::Empty {
            what: "MLP training set",
        });
    }
    let device = obfnet_nn::default_device();
    device.seed(seed);
    let mut widths = vec![d_in];
    widths.extend(&cfg.hidden);
    widths.push(d_out);
    let mut model = Mlp {
        layers: widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(&device))
            .collect(),
    };
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let ce = CrossEntropyLossConfig::new().init(&device);
    let mse = MseLoss::new();
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    progress(TrainEvent::Phase {
        name: name.to_string(),
        total_steps: (steps_per_epoch * cfg.epochs) as u64,
    });
    let mut rng = SplitMix64::new(seed ^ 0x6d6c_705f_6f72_6465);
    let mut step = 0usize;
    for epoch in 0..cfg.epochs {
        let order = rng.permutation(n);
        let mut loss_sum = 0.0f64;
        for chunk in order.chunks(cfg.batch_size) {
            let idx = index_tensor(chunk, &x.device());
            let xb = x.clone().select(0, idx.clone()).autodiff();
            let out = model.forward(xb);
            let loss = match targets {
                Targets::Regression(t) => {
                    mse.forward(out, t.clone().select(0, idx).autodiff(), Reduction::Mean)
                }
                Targets::Classes { labels, .. } => ce.forward(out, labels.clone().select(0, idx).autodiff()),
            };
            let value = scalar(loss.clone())?;
            if !value.is_finite() {
                return Err(Error::Diverged {
                    what: "MLP training",
                    step,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(cfg.learning_rate, model, grads);
            loss_sum += f64::from(value);
            step += 1;
            progress(TrainEvent::Step {
                step: step as u64,
                loss: value,
            });
        }
        progress(TrainEvent::Epoch {
            epoch,
            mean_loss: (loss_sum / steps_per_epoch as f64) as f32,
        });
    }
    Ok(model.valid())
}

pub(crate) fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [indices.len()]), device)
}

pub(crate) fn scalar(t: Tensor<1>) -> Result<f32> {
    to_vec1(t)?.first().copied().ok_or(Error::Empty {
        what: "scalar tensor",
    })
}

/// Reads a float tensor back to the host.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.inner()
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Backend {
            op: "read float tensor",
            detail: format!("{e:?}"),
        })
}

fn to_vec1(t: Tensor<1>) -> Result<Vec<f32>> {
    to_vec(t)
}

/// Reads an int tensor back to the host.
pub(crate) fn to_vec_int<const D: usize>(t: Tensor<D, Int>) -> Result<Vec<i64>> {
    t.into_data()
        .try_into_vec_as::<i64>()
        .map_err(|e| Error::Backend {
            op: "read int tensor",
            detail: format!("{e:?}"),
        })
}

/// A `[n, d]` tensor on the plain device from host values.
pub fn from_host(values: Vec<f32>, n: usize, d: usize) -> Result<Tensor<2>> {
    if values.len() != n * d {
        return Err(Error::Mismatch {
            what: "host values for an n×d tensor",
            expected: n * d,
            got: values.len(),
        });
    }
    let device = obfnet_nn::default_device().inner();
    Ok(Tensor::from_data(TensorData::new(values, [n, d]), &device))
}

/// Adam on a plain tensor that is not a module's parameter (an rMLE input, a latent code):
/// the attacks that optimise inputs share this one update rule (β = 0.9 / 0.999, ε = 1e-8).
pub(crate) struct TensorAdam<const D: usize> {
    m1: Tensor<D>,
    m2: Tensor<D>,
    t: i32,
}

impl<const D: usize> TensorAdam<D> {
    const B1: f64 = 0.9;
    const B2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    /// Zero moments shaped like `like`.
    pub(crate) fn new(like: &Tensor<D>) -> TensorAdam<D> {
        TensorAdam {
            m1: like.zeros_like(),
            m2: like.zeros_like(),
            t: 0,
        }
    }

    /// Takes the gradient `g` of the next step and returns the bias-corrected update; the caller
    /// subtracts `lr ·` it from the variable.
    pub(crate) fn update(&mut self, g: Tensor<D>) -> Tensor<D> {
        self.t += 1;
        let (b1, b2) = (Self::B1, Self::B2);
        self.m1 = self.m1.clone().mul_scalar(b1) + g.clone().mul_scalar(1.0 - b1);
        self.m2 = self.m2.clone().mul_scalar(b2) + g.powi_scalar(2).mul_scalar(1.0 - b2);
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        self.m1.clone().div_scalar(c1) / (self.m2.clone().div_scalar(c2).sqrt().add_scalar(Self::EPS))
    }
}

/// Early stopping on a validation loss, keeping the best epoch's model: the strong decoders and
/// the VAE prior train under this one rule.
pub(crate) struct EarlyStop<M> {
    best: Option<(M, usize, f32)>,
    since_best: usize,
    patience: usize,
}

impl<M> EarlyStop<M> {
    /// Stops after `patience` epochs without a new best.
    pub(crate) fn new(patience: usize) -> EarlyStop<M> {
        EarlyStop {
            best: None,
            since_best: 0,
            patience,
        }
    }

    /// Records `epoch`'s model and validation loss; true when training should stop.
    pub(crate) fn observe(&mut self, model: M, epoch: usize, val_loss: f32) -> bool {
        if self.best.as_ref().is_none_or(|b| val_loss < b.2) {
            self.best = Some((model, epoch, val_loss));
            self.since_best = 0;
            false
        } else {
            self.since_best += 1;
            self.since_best >= self.patience
        }
    }

    /// The best `(model, epoch, validation loss)`; an error naming `what` when no epoch ran.
    pub(crate) fn best(self, what: &'static str, step: usize) -> Result<(M, usize, f32)> {
        self.best.ok_or(Error::Diverged { what, step })
    }
}
