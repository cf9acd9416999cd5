//! Generative-prior inversion: GLASS (Li et al., NeurIPS 2023) scaled to MNIST.
//!
//! The server trains a small variational auto-encoder on its **own** training images (no
//! obfuscation involved: it is the server's prior over inputs). For an observed output `y` it
//! then searches the VAE's latent space, white-box through every known net `k`:
//!
//! `z*_k = argmin_z ‖s(obf_k(dec(z))) − s(y)‖² / m + λ‖z‖²`
//!
//! where `s` standardises each output feature with the mean and deviation of the training
//! images' outputs through the nets, with Adam from several starts (`z = 0`, the prior's mode,
//! and draws from `N(0, I)`), and keeps, per sample, the `(net, start)` whose data term is
//! smallest. The reconstruction is `dec(z*)`. All samples × nets × starts of a chunk are one
//! batch, so the search costs `steps` forward/backward passes per chunk.
//!
//! What it cannot do: reconstruct better than the VAE can represent. The budget string reports
//! the VAE's own reconstruction SSIM on held-out training images (its ceiling).

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::sigmoid;
use obfnet_nn::{SplitMix64, TrainEvent};
use serde::{Deserialize, Serialize};

use crate::attack::{Attack, FitContext, pick_rows};
use crate::mechanism::standard_normal;
use crate::mlp::{EarlyStop, Mlp, MlpConfig, index_tensor, scalar, to_vec};
use crate::scheme::{Scheme, observe};
use crate::strong::{Standardiser, bce_with_logits, lr_at, norm_to_pixels, pixels_to_norm, take_train};
use crate::{Error, Result};

/// Budget of the VAE and of the latent search. Defaults: MLP VAE `d → 512 → 2·16`,
/// `16 → 512 → d`, ≤ 10 epochs (warm-up + cosine LR ≤ 1e-3, early stopping on a 10% validation
/// split, patience 2); search: 3 starts × every net, 150 Adam steps at 0.05, prior weight 1e-3,
/// 6 000 rows (sample × net × start) per batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatentConfig {
    /// Latent dimension of the VAE.
    pub latent_dim: usize,
    /// Hidden widths of the encoder (the decoder mirrors them).
    pub hidden: Vec<usize>,
    /// Upper bound on VAE epochs.
    pub vae_epochs: usize,
    /// Epochs without a better validation loss before the VAE stops.
    pub vae_patience: usize,
    /// VAE samples per step.
    pub batch_size: usize,
    /// Peak learning rate of the VAE.
    pub learning_rate: f64,
    /// VAE training images; `None`: the whole training split.
    pub train_samples: Option<usize>,
    /// Adam steps of the latent search.
    pub steps: usize,
    /// Adam learning rate of the latent search (latent units).
    pub search_learning_rate: f64,
    /// Starts per (sample, net): one at `z = 0`, the rest drawn from `N(0, I)`.
    pub restarts: usize,
    /// Weight λ of the prior term `λ‖z‖²` against the mean squared standardised residual.
    pub prior_weight: f64,
    /// Rows (sample × net × start) optimised together.
    pub chunk_rows: usize,
    /// Seeds the VAE, its split and the random starts.
    pub seed: u64,
}

impl Default for LatentConfig {
    fn default() -> Self {
        LatentConfig {
            latent_dim: 16,
            hidden: vec![512],
            vae_epochs: 10,
            vae_patience: 2,
            batch_size: 128,
            learning_rate: 1e-3,
            train_samples: None,
            steps: 150,
            search_learning_rate: 0.05,
            restarts: 3,
            prior_weight: 1e-3,
            chunk_rows: 6000,
            seed: 7300,
        }
    }
}

impl LatentConfig {
    /// Checks the budget.
    pub fn validate(&self) -> Result<()> {
        if self.latent_dim == 0 || self.latent_dim > 4096 {
            return Err(Error::config(
                "latent_dim",
                format!("{} is not in 1..=4096", self.latent_dim),
            ));
        }
        MlpConfig {
            hidden: self.hidden.clone(),
            epochs: self.vae_epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
        }
        .validate()?;
        if self.vae_patience == 0 {
            return Err(Error::config("vae_patience", "must be ≥ 1"));
        }
        if self.batch_size < 2 {
            return Err(Error::config("batch_size", "must be ≥ 2"));
        }
        if self.train_samples.is_some_and(|n| n < 20) {
            return Err(Error::config("train_samples", "at least 20 (or absent for all)"));
        }
        if self.steps == 0 || self.restarts == 0 || self.chunk_rows == 0 {
            return Err(Error::config(
                "latent search",
                "steps, restarts and chunk_rows must be ≥ 1",
            ));
        }
        if !(self.search_learning_rate.is_finite() && self.search_learning_rate > 0.0) {
            return Err(Error::config("search_learning_rate", "must be finite and > 0"));
        }
        if !(self.prior_weight.is_finite() && self.prior_weight >= 0.0) {
            return Err(Error::config("prior_weight", "must be finite and ≥ 0"));
        }
        Ok(())
    }
}

/// A small MLP variational auto-encoder on pixels in `[0, 1]`.
#[derive(Module, Debug)]
pub struct Vae {
    enc: Mlp,
    dec: Mlp,
    latent: usize,
}

impl Vae {
    fn init(d: usize, cfg: &LatentConfig, device: &Device) -> Vae {
        let mut rev = cfg.hidden.clone();
        rev.reverse();
        Vae {
            enc: Mlp::init(d, &cfg.hidden, 2 * cfg.latent_dim, device),
            dec: Mlp::init(cfg.latent_dim, &rev, d, device),
            latent: cfg.latent_dim,
        }
    }

    /// `(mean, log-variance)` of `q(z | x)`, each `[B, latent]`.
    fn encode(&self, pixels: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let b = pixels.dims()[0];
        let h = self.enc.forward(pixels);
        let mu = h.clone().slice([0..b, 0..self.latent]);
        let logvar = h.slice([0..b, self.latent..2 * self.latent]).clamp(-10.0, 10.0);
        (mu, logvar)
    }

    /// Negative ELBO per sample (BCE summed over pixels + KL), averaged over the batch; with
    /// `sample` false the latent is the encoder's mean (validation).
    fn loss(&self, pixels: Tensor<2>, sample: bool) -> Tensor<1> {
        let [b, d] = pixels.dims();
        let (mu, logvar) = self.encode(pixels.clone());
        let z = if sample {
            let eps = Tensor::random([b, self.latent], Distribution::Normal(0.0, 1.0), &mu.device());
            mu.clone() + (logvar.clone().mul_scalar(0.5).exp()) * eps
        } else {
            mu.clone()
        };
        let rec = bce_with_logits(self.dec.forward(z), pixels).mul_scalar(d as f64);
        let kl = (logvar.clone().add_scalar(1.0) - mu.powi_scalar(2) - logvar.exp())
            .sum()
            .mul_scalar(-0.5 / b as f64);
        rec + kl
    }
}

/// What training the VAE did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VaeReport {
    /// Epochs run.
    pub epochs_run: usize,
    /// Epoch (0-based) kept.
    pub best_epoch: usize,
    /// Its validation loss (negative ELBO per image, nats, encoder mean as the latent).
    pub best_val_loss: f32,
    /// Mean SSIM of the VAE's own reconstructions of (up to 1 000) validation images — the
    /// ceiling of the latent search (`None` when the images are too small for SSIM).
    pub ceiling_ssim: Option<f64>,
    /// Training images (excluding validation).
    pub train_images: usize,
}

fn train_vae(
    name: &str,
    cfg: &LatentConfig,
    pixels: &Tensor<2>,
    shape: (usize, usize),
    rng: &mut SplitMix64,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<(Vae, VaeReport)> {
    let [n, d] = pixels.dims();
    if n < 20 {
        return Err(Error::Empty {
            what: "VAE training set (needs ≥ 20 images)",
        });
    }
    let device = obfnet_nn::default_device();
    let plain = pixels.device();
    let order = rng.permutation(n);
    let n_val = (n / 10).clamp(1, 5000);
    let (val_idx, tr_idx) = order.split_at(n_val);
    let val = pixels.clone().select(0, index_tensor(val_idx, &plain));
    let ntr = tr_idx.len();
    device.seed(rng.next_u64());
    let mut model = Vae::init(d, cfg, &device);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let steps_per_epoch = ntr.div_ceil(cfg.batch_size);
    let total = steps_per_epoch * cfg.vae_epochs;
    progress(TrainEvent::Phase {
        name: name.to_string(),
        total_steps: total as u64,
    });
    let mut stop = EarlyStop::new(cfg.vae_patience);
    let (mut step, mut epochs_run) = (0usize, 0usize);
    for epoch in 0..cfg.vae_epochs {
        let ord: Vec<usize> = rng.permutation(ntr).into_iter().map(|i| tr_idx[i]).collect();
        let mut sum = 0.0f64;
        for chunk in ord.chunks(cfg.batch_size) {
            let xb = pixels.clone().select(0, index_tensor(chunk, &plain)).autodiff();
            let loss = model.loss(xb, true);
            let v = scalar(loss.clone())?;
            if !v.is_finite() {
                return Err(Error::Diverged {
                    what: "VAE training",
                    step,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(
                lr_at(cfg.learning_rate, step, steps_per_epoch, total),
                model,
                grads,
            );
            sum += f64::from(v);
            step += 1;
            progress(TrainEvent::Step {
                step: step as u64,
                loss: v,
            });
        }
        epochs_run = epoch + 1;
        progress(TrainEvent::Epoch {
            epoch,
            mean_loss: (sum / steps_per_epoch as f64) as f32,
        });
        let current = model.valid();
        let mut vs = 0.0f64;
        for s in (0..n_val).step_by(1000) {
            let e = (s + 1000).min(n_val);
            vs += f64::from(scalar(current.loss(val.clone().slice([s..e, 0..d]), false))?) * (e - s) as f64;
        }
        let vl = (vs / n_val as f64) as f32;
        tracing::info!(vae = name, epoch, val_loss = vl, "validation");
        if stop.observe(current, epoch, vl) {
            break;
        }
    }
    let (vae, best_epoch, best_val_loss) = stop.best("VAE training (no epoch)", step)?;
    // its own reconstructions of held-out images: the search's ceiling
    let nc = n_val.min(1000);
    let vc = val.slice([0..nc, 0..d]);
    let (mu, _) = vae.encode(vc.clone());
    let rec = sigmoid(vae.dec.forward(mu));
    let ceiling_ssim = crate::metrics::score_images(&to_vec(vc)?, &to_vec(rec)?, shape.0, shape.1)
        .ok()
        .map(|s| s.ssim);
    Ok((
        vae,
        VaeReport {
            epochs_run,
            best_epoch,
            best_val_loss,
            ceiling_ssim,
            train_images: ntr,
        },
    ))
}

/// Generative-prior inversion (see the module docs).
#[derive(Debug)]
pub struct LatentSearch {
    cfg: LatentConfig,
    fitted: Option<(Mlp, Standardiser)>,
    /// The VAE's training, once fitted.
    pub vae: Option<VaeReport>,
}

impl LatentSearch {
    /// An unfitted attack.
    pub fn new(cfg: LatentConfig) -> LatentSearch {
        LatentSearch {
            cfg,
            fitted: None,
            vae: None,
        }
    }

    /// The budget in words (after fit).
    pub fn budget(&self, k: usize) -> String {
        let c = &self.cfg;
        let vae = self.vae.as_ref().map_or("VAE not trained".into(), |r| {
            format!(
                "VAE MLP {:?} latent {} on {} server images (BCE + KL, stopped at epoch {}/{}, best {}, \
                 val −ELBO {:.1} nats; its own reconstructions' SSIM {})",
                c.hidden,
                c.latent_dim,
                r.train_images,
                r.epochs_run,
                c.vae_epochs,
                r.best_epoch + 1,
                r.best_val_loss,
                r.ceiling_ssim.map_or("n/a".into(), |s| format!("{s:.3}"))
            )
        });
        format!(
            "{vae}; latent search white-box through every one of the {k} nets × {} starts (z = 0 and \
             {} from N(0, I)), {} Adam steps at {}, loss: mean squared standardised residual + {}·‖z‖²; \
             per sample the (net, start) with the smallest residual",
            c.restarts,
            c.restarts - 1,
            c.steps,
            c.search_learning_rate,
            c.prior_weight
        )
    }

    /// Solves one chunk `y` (`[b, m]`, raw observed) → `[b, d]` normalised reconstructions.
    fn solve(
        &self,
        scheme: &dyn Scheme,
        dec: &Mlp,
        std: &Standardiser,
        y: &Tensor<2>,
        rng: &mut SplitMix64,
        step: &mut dyn FnMut(f32),
    ) -> Result<Tensor<2>> {
        let [b, m] = y.dims();
        let (k, r, zd) = (scheme.candidates(), self.cfg.restarts, self.cfg.latent_dim);
        let rows = k * r * b;
        let plain = y.device();
        // row (c·r + j)·b + i: net c, start j, sample i
        let mut init = vec![0f32; rows * zd];
        for blk in 0..k * r {
            if blk % r == 0 {
                continue; // start 0: the prior's mode
            }
            for v in &mut init[blk * b * zd..(blk + 1) * b * zd] {
                *v = standard_normal(rng) as f32;
            }
        }
        let mut z: Tensor<2> = Tensor::from_data(TensorData::new(init, [rows, zd]), &plain);
        let target = Tensor::cat(vec![std.apply(y); k * r], 0);
        let target_ad = target.clone().autodiff();
        let (mean_ad, inv_ad) = (std.mean.clone().autodiff(), std.inv_std.clone().autodiff());
        let mut adam = crate::mlp::TensorAdam::new(&z);
        let forward = |za: Tensor<2>| -> Result<Tensor<2>> {
            let x = pixels_to_norm(sigmoid(dec.forward(za)));
            let d = x.dims()[1];
            let outs = (0..k)
                .map(|c| scheme.map(c, x.clone().slice([c * r * b..(c + 1) * r * b, 0..d])))
                .collect::<Result<Vec<_>>>()?;
            Ok(Tensor::cat(outs, 0))
        };
        for t in 1..=self.cfg.steps {
            let za = z.clone().autodiff().require_grad();
            let pred = (forward(za.clone())? - mean_ad.clone()) * inv_ad.clone();
            let data = (pred - target_ad.clone())
                .powi_scalar(2)
                .sum()
                .div_scalar(m as f64);
            let prior = za.clone().powi_scalar(2).sum().mul_scalar(self.cfg.prior_weight);
            let loss = data + prior;
            let value = scalar(loss.clone())? / rows as f32;
            if !value.is_finite() {
                return Err(Error::Diverged {
                    what: "latent search",
                    step: t,
                });
            }
            let grads = loss.backward();
            let g = za.grad(&grads).ok_or(Error::MissingGradient {
                what: "the latent code",
            })?;
            z = z - adam.update(g).mul_scalar(self.cfg.search_learning_rate);
            step(value);
        }
        let dec_plain = dec.valid();
        let x = pixels_to_norm(sigmoid(dec_plain.forward(z)));
        let d = x.dims()[1];
        let outs = (0..k)
            .map(|c| scheme.map(c, x.clone().slice([c * r * b..(c + 1) * r * b, 0..d])))
            .collect::<Result<Vec<_>>>()?;
        let res = crate::attack::residuals(std.apply(&Tensor::cat(outs, 0)), target)?;
        let pick: Vec<usize> = (0..b)
            .map(|i| {
                (0..k * r)
                    .min_by(|&a, &c| res[a * b + i].total_cmp(&res[c * b + i]))
                    .unwrap_or(0)
            })
            .collect();
        let cands: Vec<Tensor<2>> = (0..k * r)
            .map(|blk| x.clone().slice([blk * b..(blk + 1) * b, 0..d]))
            .collect();
        pick_rows(&cands, &pick)
    }
}

impl Attack for LatentSearch {
    fn name(&self) -> String {
        "vae-latent-search".into()
    }

    fn fit(
        &mut self,
        scheme: &dyn Scheme,
        ctx: FitContext<'_>,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<()> {
        self.cfg.validate()?;
        let (rows, cols) = (ctx.train.rows, ctx.train.cols);
        if rows * cols != scheme.input_dim() {
            return Err(Error::Mismatch {
                what: "latent search: image values (rows × cols) for the scheme's input",
                expected: scheme.input_dim(),
                got: rows * cols,
            });
        }
        let mut rng = SplitMix64::new(self.cfg.seed);
        let x = take_train(ctx.train, self.cfg.train_samples, &mut rng);
        let pixels = norm_to_pixels(&x);
        let (vae, report) = train_vae(
            &format!("vae-latent-search: VAE prior for {}", scheme.name()),
            &self.cfg,
            &pixels,
            (rows, cols),
            &mut rng,
            progress,
        )?;
        // the outputs' standardisation: the training images through nets picked at random
        let xs = take_train(ctx.train, Some(20_000), &mut rng);
        let (y, _) = observe(scheme, &xs, &mut rng)?;
        let std = Standardiser::fit(&y);
        let device = obfnet_nn::default_device();
        self.fitted = Some((vae.dec.train().fork(&device).freeze(), std));
        self.vae = Some(report);
        Ok(())
    }

    fn reconstruct(
        &self,
        scheme: &dyn Scheme,
        observed: &Tensor<2>,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<Tensor<2>> {
        let (dec, std) = self
            .fitted
            .as_ref()
            .ok_or_else(|| Error::config("attack", "reconstruct called before fit"))?;
        let [n, m] = observed.dims();
        if m != scheme.output_dim() {
            return Err(Error::Mismatch {
                what: "latent search: observed values for the scheme's output",
                expected: scheme.output_dim(),
                got: m,
            });
        }
        let per = (self.cfg.chunk_rows / (scheme.candidates() * self.cfg.restarts)).max(1);
        let chunks = n.div_ceil(per);
        progress(TrainEvent::Phase {
            name: format!(
                "vae-latent-search on {} ({n} samples × {} nets × {} starts)",
                scheme.name(),
                scheme.candidates(),
                self.cfg.restarts
            ),
            total_steps: (chunks * self.cfg.steps) as u64,
        });
        let obs = observed.clone().inner();
        let mut rng = SplitMix64::new(self.cfg.seed ^ 0x6c61_7465_6e74);
        let mut out = Vec::with_capacity(chunks);
        let mut count = 0u64;
        for c in 0..chunks {
            let (lo, hi) = (c * per, ((c + 1) * per).min(n));
            let y = obs.clone().slice([lo..hi, 0..m]);
            out.push(self.solve(scheme, dec, std, &y, &mut rng, &mut |loss| {
                count += 1;
                progress(TrainEvent::Step { step: count, loss });
            })?);
        }
        Ok(Tensor::cat(out, 0))
    }
}
