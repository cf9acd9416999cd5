//! The whole evaluation of one scheme: utility, every applicable attack, the distinguishers,
//! and the pictures, with the budgets that produced them.

use std::time::Instant;

use burn::prelude::*;
use obfnet_nn::{Dataset, LeNet, ServerModel, ServerTrainConfig, SplitMix64, TrainEvent};
use serde::{Deserialize, Serialize};

use crate::attack::{
    Attack, FitContext, InverseConfig, InverseMode, InverseNet, Rmle, RmleConfig, ShadowAttack, ShadowConfig,
};
use crate::distinguish::{DistinguisherConfig, Distinguishers, distinguish};
use crate::latent::{LatentConfig, LatentSearch};
use crate::mechanism::Guarantee;
use crate::metrics::{ImageScores, Similarity, from_pixels, quantile, score_per_image, to_pixels};
use crate::mlp::{from_host, to_vec};
use crate::scheme::{Family, Scheme, Utility, observe};
use crate::strong::{DecoderConfig, NearestNeighbour, NeighbourConfig, StrongInverse, StrongMode};
use crate::{Error, Result};

/// Every budget of an evaluation. The default is the **strong** preset ([`AttackConfig::strong`]):
/// the standard suite plus the strong attackers of [`StrongConfig`]. [`AttackConfig::standard`]
/// is the earlier, weaker suite alone (a few minutes per scheme on two CPU cores); its numbers
/// underestimate leakage and are kept only for comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttackConfig {
    /// Test samples attacked and scored (the first ones of the test split). Default 500.
    pub eval_samples: usize,
    /// Of those, how many rMLE attacks (it is the costly one). Default 100.
    pub rmle_samples: usize,
    /// Samples shown in the picture grid. Default 8.
    pub grid_samples: usize,
    /// Seeds which net a device picks and the noise it draws. Default 1.
    pub seed: u64,
    /// The pooled inverse network (and the shadow attack's decoder).
    pub inverse: InverseConfig,
    /// Training images per decoder of the per-net inverse networks. Default 5000.
    pub per_net_train_samples: usize,
    /// rMLE.
    pub rmle: RmleConfig,
    /// Shadow model.
    pub shadow: ShadowConfig,
    /// Distinguishers.
    pub distinguisher: DistinguisherConfig,
    /// Epochs of the separately trained recognition classifier (LeNet-5). Default 2.
    pub recogniser_epochs: usize,
    /// Seed of the recognition classifier (differs from the server model's 0). Default 4242.
    pub recogniser_seed: u64,
    /// Which attacks run.
    pub attacks: AttackSelection,
    /// The strong attackers (standardised, all training data, early stopping). Absent in
    /// configurations written before it existed: then none run (the standard suite).
    #[serde(default = "StrongConfig::off")]
    pub strong: StrongConfig,
}

/// The strong attackers and their budgets (see the `strong` module docs of this crate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StrongConfig {
    /// Budget of every strong decoder.
    pub decoder: DecoderConfig,
    /// Nearest-neighbour retrieval.
    pub neighbour: NeighbourConfig,
    /// One decoder for all K nets.
    pub pooled: bool,
    /// One decoder per net (K > 1).
    pub per_net: bool,
    /// One decoder conditioned on the answered label and the predicted net.
    pub conditioned: bool,
    /// Nearest-neighbour retrieval in obfuscated space.
    pub nearest_neighbour: bool,
    /// Budget of the convolutional decoders (configurations written before they existed: the
    /// default conv budget, with both switched off).
    #[serde(default = "DecoderConfig::conv")]
    pub conv_decoder: DecoderConfig,
    /// One convolutional decoder for all K nets (absent in older configurations: off).
    #[serde(default)]
    pub conv_pooled: bool,
    /// One convolutional decoder per net, K > 1 (absent in older configurations: off).
    #[serde(default)]
    pub conv_per_net: bool,
    /// Budget of the generative-prior inversion.
    #[serde(default)]
    pub latent: LatentConfig,
    /// Generative-prior inversion: VAE prior + white-box latent search (absent in older
    /// configurations: off).
    #[serde(default)]
    pub latent_search: bool,
}

impl Default for StrongConfig {
    fn default() -> Self {
        StrongConfig {
            decoder: DecoderConfig::default(),
            neighbour: NeighbourConfig::default(),
            pooled: true,
            per_net: true,
            conditioned: true,
            nearest_neighbour: true,
            conv_decoder: DecoderConfig::conv(),
            conv_pooled: true,
            conv_per_net: true,
            latent: LatentConfig::default(),
            latent_search: true,
        }
    }
}

impl StrongConfig {
    /// No strong attacker (the standard suite).
    pub fn off() -> StrongConfig {
        StrongConfig {
            pooled: false,
            per_net: false,
            conditioned: false,
            nearest_neighbour: false,
            conv_pooled: false,
            conv_per_net: false,
            latent_search: false,
            ..StrongConfig::default()
        }
    }

    /// Whether any strong attacker runs.
    pub fn any(&self) -> bool {
        self.pooled
            || self.per_net
            || self.conditioned
            || self.nearest_neighbour
            || self.conv_pooled
            || self.conv_per_net
            || self.latent_search
    }
}

impl Default for AttackConfig {
    fn default() -> Self {
        AttackConfig::strong()
    }
}

/// The named budget presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// The earlier suite: MLP decoders on 10 000 / 5 000 pairs × 5 epochs, rMLE, shadow.
    Standard,
    /// The standard suite plus the strong attackers, scored on 1 000 test samples.
    Strong,
}

impl AttackConfig {
    /// The budgets of `preset`.
    pub fn preset(preset: Preset) -> AttackConfig {
        match preset {
            Preset::Standard => AttackConfig::standard(),
            Preset::Strong => AttackConfig::strong(),
        }
    }

    /// The strong preset (the default): the standard suite plus every strong attacker, each
    /// decoder trained on the whole training split with early stopping; 1 000 test samples.
    pub fn strong() -> AttackConfig {
        AttackConfig {
            eval_samples: 1000,
            strong: StrongConfig::default(),
            ..AttackConfig::standard()
        }
    }

    /// The earlier, weaker suite alone (kept for comparison; it underestimates leakage).
    pub fn standard() -> AttackConfig {
        AttackConfig {
            eval_samples: 500,
            rmle_samples: 100,
            grid_samples: 8,
            seed: 1,
            inverse: InverseConfig::default(),
            per_net_train_samples: 5000,
            rmle: RmleConfig::default(),
            shadow: ShadowConfig::default(),
            distinguisher: DistinguisherConfig::default(),
            recogniser_epochs: 2,
            recogniser_seed: 4242,
            attacks: AttackSelection::default(),
            strong: StrongConfig::off(),
        }
    }
}

/// Which attacks run (all by default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttackSelection {
    /// Black-box inverse networks (pooled, and per net when K > 1).
    pub inverse: bool,
    /// White-box rMLE.
    pub rmle: bool,
    /// Query-free shadow model (obfuscation nets only).
    pub shadow: bool,
    /// Raw-vs-obfuscated and which-of-K distinguishers.
    pub distinguishers: bool,
}

impl Default for AttackSelection {
    fn default() -> Self {
        AttackSelection {
            inverse: true,
            rmle: true,
            shadow: true,
            distinguishers: true,
        }
    }
}

impl AttackConfig {
    /// Checks the budgets.
    pub fn validate(&self) -> Result<()> {
        if self.eval_samples == 0 || self.eval_samples > 10_000 {
            return Err(Error::config(
                "eval_samples",
                format!("{} is not in 1..=10000", self.eval_samples),
            ));
        }
        if self.rmle_samples > self.eval_samples {
            return Err(Error::config("rmle_samples", "cannot exceed eval_samples"));
        }
        if self.grid_samples > self.eval_samples.min(32) {
            return Err(Error::config(
                "grid_samples",
                "at most 32 and at most eval_samples",
            ));
        }
        if self.inverse.train_samples == 0 || self.per_net_train_samples == 0 {
            return Err(Error::config("train_samples", "must be > 0"));
        }
        if self.recogniser_epochs == 0 {
            return Err(Error::config("recogniser_epochs", "must be ≥ 1"));
        }
        self.inverse.mlp.validate()?;
        self.distinguisher.mlp.validate()?;
        if self.strong.pooled || self.strong.per_net || self.strong.conditioned {
            self.strong.decoder.validate()?;
        }
        if self.strong.conv_pooled || self.strong.conv_per_net {
            if self.strong.conv_decoder.arch != crate::strong::DecoderArch::Conv {
                return Err(Error::config(
                    "strong.conv_decoder.arch",
                    "must be `conv` (the MLP decoders are strong.decoder)",
                ));
            }
            self.strong.conv_decoder.validate()?;
        }
        if self.strong.latent_search {
            self.strong.latent.validate()?;
        }
        Ok(())
    }
}

/// The separately trained classifier that judges whether reconstructions are recognisable.
///
/// For images a LeNet-5 takes (each side 12..=1024) it is a LeNet-5 trained with its own seed
/// and epochs on the training split — not the server's frozen model — so a reconstruction is
/// not rewarded for fitting that model's quirks. For other shapes (`1 × L` vectors, samples
/// smaller than 12 × 12) it is an MLP classifier ([`RECOGNISER_MLP_HIDDEN`] hidden units),
/// same seed and epochs; [`Recogniser::description`] says which.
#[derive(Debug)]
pub struct Recogniser {
    model: RecogniserModel,
    /// Its accuracy on the raw test split (the ceiling for recognisability).
    pub raw_accuracy: f64,
    /// Epochs it was trained.
    pub epochs: usize,
    /// Its seed.
    pub seed: u64,
}

/// Hidden widths of the MLP recogniser used for samples a LeNet-5 cannot take.
pub const RECOGNISER_MLP_HIDDEN: [usize; 2] = [256, 128];

#[derive(Debug)]
enum RecogniserModel {
    LeNet(Box<LeNet>),
    Mlp(crate::mlp::Mlp),
}

impl Recogniser {
    /// Trains the recogniser on `train`: a LeNet-5 when the sample shape allows one, else an
    /// MLP classifier.
    ///
    /// # Errors
    /// Splits of different shapes, fewer than two classes, a bad budget, training failures.
    pub fn train(
        cfg: &AttackConfig,
        train: &Dataset,
        test: &Dataset,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<Recogniser> {
        let lenet_fits = obfnet_nn::LeNetConfig::for_input(train.rows, train.cols)
            .validate()
            .is_ok();
        let (model, raw_accuracy) = if lenet_fits {
            let scfg = ServerTrainConfig {
                epochs: cfg.recogniser_epochs,
                seed: cfg.recogniser_seed,
                ..ServerTrainConfig::default()
            };
            let (model, report) = obfnet_nn::train_server_model(&scfg, train, test, progress)?;
            (RecogniserModel::LeNet(Box::new(model)), report.test_accuracy)
        } else {
            if (train.rows, train.cols) != (test.rows, test.cols) {
                return Err(Error::Mismatch {
                    what: "values per test sample for the training samples' size",
                    expected: train.rows * train.cols,
                    got: test.rows * test.cols,
                });
            }
            let classes = train
                .labels
                .iter()
                .map(|&l| usize::from(l) + 1)
                .max()
                .unwrap_or(0);
            let mcfg = crate::mlp::MlpConfig {
                hidden: RECOGNISER_MLP_HIDDEN.to_vec(),
                epochs: cfg.recogniser_epochs,
                ..crate::mlp::MlpConfig::default()
            };
            let mlp = crate::mlp::train_mlp(
                &format!("recogniser (MLP on {}×{} samples)", train.rows, train.cols),
                &mcfg,
                &train.x,
                &crate::mlp::Targets::Classes {
                    labels: train.y.clone(),
                    classes: classes.max(2),
                },
                cfg.recogniser_seed,
                progress,
            )?;
            let acc = mlp_accuracy(&mlp, &test.x, &test.labels)?;
            (RecogniserModel::Mlp(mlp), acc)
        };
        Ok(Recogniser {
            model,
            raw_accuracy,
            epochs: cfg.recogniser_epochs,
            seed: cfg.recogniser_seed,
        })
    }

    /// What it is, for reports.
    pub fn description(&self) -> String {
        match self.model {
            RecogniserModel::LeNet(_) => "LeNet-5 trained separately (own seed) on the training split".into(),
            RecogniserModel::Mlp(_) => format!(
                "MLP classifier (hidden {:?}, ReLU) trained separately (own seed) on the training split — \
                 the samples are too small or not 2-D enough for a LeNet-5",
                RECOGNISER_MLP_HIDDEN
            ),
        }
    }

    /// Accuracy on pixel-space samples (`[n·rows·cols]`) with these labels.
    ///
    /// # Errors
    /// Values that are not `labels.len()` samples of `rows × cols`.
    pub fn accuracy(&self, pixels: &[f32], labels: &[u8], rows: usize, cols: usize) -> Result<f64> {
        let n = labels.len();
        let x = from_host(from_pixels(pixels), n, rows * cols)?;
        match &self.model {
            RecogniserModel::LeNet(model) => {
                let ds = Dataset {
                    y: Tensor::from_data(
                        TensorData::new(labels.iter().map(|&l| i64::from(l)).collect::<Vec<_>>(), [n]),
                        &x.device(),
                    ),
                    x,
                    labels: labels.to_vec(),
                    rows,
                    cols,
                };
                Ok(obfnet_nn::accuracy(model.as_ref(), &ds)?)
            }
            RecogniserModel::Mlp(mlp) => mlp_accuracy(mlp, &x, labels),
        }
    }
}

/// Share of rows of `x` the MLP classifies as `labels`.
fn mlp_accuracy(mlp: &crate::mlp::Mlp, x: &Tensor<2>, labels: &[u8]) -> Result<f64> {
    let [n, _] = x.dims();
    if n != labels.len() || n == 0 {
        return Err(Error::Mismatch {
            what: "labels for the samples",
            expected: n,
            got: labels.len(),
        });
    }
    let pred = crate::mlp::to_vec_int(mlp.predict(x).argmax(1))?;
    let correct = pred
        .iter()
        .zip(labels)
        .filter(|&(&p, &l)| p == i64::from(l))
        .count();
    Ok(correct as f64 / n as f64)
}

/// Everything an evaluation shares across schemes.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext<'a> {
    /// The server's frozen model (the project's LeNet-5 or an ONNX graph).
    pub server: &'a ServerModel,
    /// Training split (the server's own data; attackers fit here).
    pub train: &'a Dataset,
    /// Test split (attacked samples come from here).
    pub test: &'a Dataset,
    /// The separately trained recognition classifier.
    pub recogniser: &'a Recogniser,
}

/// One attack's measured result on one scheme. Every number here is **empirical**.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackScore {
    /// Attack name.
    pub attack: String,
    /// Image similarity of reconstructions to originals (pixel space, range 1).
    pub scores: ImageScores,
    /// Accuracy of the separately trained recogniser on the reconstructions.
    pub recognisability: f64,
    /// Wall time of fit + reconstruction, seconds.
    pub seconds: f64,
    /// Always `"empirical"`: measured by this attack, not a bound.
    pub evidence: String,
    /// Anything to know when reading it (for learned attackers: the budget).
    pub note: Option<String>,
    /// SSIM gain over the label-only floor on the same images — the honest leakage figure
    /// (absent for the references, and in results written before it existed).
    #[serde(default)]
    pub gain_over_floor: Option<Gain>,
}

/// Per-image SSIM minus the label-only floor's SSIM of the same image.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gain {
    /// Mean attack SSIM − mean floor SSIM.
    pub mean: f64,
    /// Median over images of the per-image gain.
    pub median: f64,
    /// 90th percentile over images of the per-image gain.
    pub p90: f64,
}

/// Pixel-space pictures for the grid: originals, what was sent, each attack's reconstruction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pictures {
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// Original test images.
    pub originals: Vec<Vec<f32>>,
    /// What devices sent, scaled per image to [0, 1] for display.
    pub observed: Vec<Vec<f32>>,
    /// (attack, reconstructions).
    pub reconstructions: Vec<(String, Vec<Vec<f32>>)>,
}

/// The evaluation of one scheme.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SchemeResult {
    /// Scheme name.
    pub name: String,
    /// Family.
    pub family: Family,
    /// Obfuscator architecture (ObfNet schemes).
    pub arch: Option<String>,
    /// Number of candidates K.
    pub k: usize,
    /// What the scheme guarantees by construction.
    pub guarantee: Guarantee,
    /// Server-side accuracy (utility).
    pub utility: Utility,
    /// Reconstruction attacks.
    pub attacks: Vec<AttackScore>,
    /// Distinguishers.
    pub distinguishers: Option<Distinguishers>,
    /// Frozen model's accuracy behind the attacker's shadow net, if that attack ran.
    pub shadow_accuracy: Option<f64>,
    /// Pictures for the grid.
    pub pictures: Pictures,
    /// Wall time of the whole evaluation, seconds.
    pub seconds: f64,
    /// Multiply-adds per sample on the device (obfuscation nets; `None` for the others).
    #[serde(default)]
    pub device_macs: Option<u64>,
    /// Trained with a privacy objective (set by the caller that knows; the frontier's marker).
    #[serde(default)]
    pub privacy_trained: bool,
    /// Attribute privacy: speaker identification (FSDD; set by the caller that knows the
    /// speakers, [`crate::speaker_identification`]).
    #[serde(default)]
    pub speaker: Option<crate::SpeakerResult>,
    /// Which similarity index the SSIM columns hold ([`Similarity::for_shape`] of the sample
    /// shape; absent in results written before it existed, which were all 2-D SSIM).
    #[serde(default)]
    pub similarity: Option<Similarity>,
    /// Noise the device adds after an obfuscation net ([`crate::ObfScheme::with_output_noise`];
    /// `None` for the other families, whose noise is their mechanism).
    #[serde(default)]
    pub output_noise: Option<crate::Noise>,
}

impl SchemeResult {
    /// The attack with the highest mean SSIM (the strongest measured), excluding the
    /// observed-as-image reference.
    pub fn best_attack(&self) -> Option<&AttackScore> {
        self.attacks
            .iter()
            .filter(|a| !is_reference(&a.attack))
            .max_by(|a, b| a.scores.ssim.total_cmp(&b.scores.ssim))
    }

    /// The label-only reference, if it was scored.
    pub fn label_only(&self) -> Option<&AttackScore> {
        self.attacks.iter().find(|a| a.attack == LABEL_ONLY)
    }
}

/// Name of the reference "attack" that takes the observed output as the image (no inversion).
pub const OBSERVED_AS_IMAGE: &str = "observed-as-image";

/// Name of the label-only reference: each sample's reconstruction is the mean of the server's own
/// training images of its true label. Any scheme that lets the server answer with the right
/// label reveals this much; no scheme with useful accuracy can push every attack below it.
pub const LABEL_ONLY: &str = "label-only (class mean)";

/// Whether `attack` names a reference row rather than an attack on the scheme.
pub fn is_reference(attack: &str) -> bool {
    attack == OBSERVED_AS_IMAGE || attack == LABEL_ONLY
}

fn rows_of(flat: &[f32], d: usize, n: usize) -> Vec<Vec<f32>> {
    flat.chunks_exact(d).take(n).map(<[f32]>::to_vec).collect()
}

/// Per-image min–max scaling to [0, 1], padded with mid-gray to `d` values.
fn display(observed: &[f32], m: usize, d: usize, n: usize) -> Vec<Vec<f32>> {
    observed
        .chunks_exact(m)
        .take(n)
        .map(|o| {
            let (lo, hi) = o.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
            let span = if hi > lo { hi - lo } else { 1.0 };
            let mut v: Vec<f32> = o.iter().take(d).map(|&x| (x - lo) / span).collect();
            v.resize(d, 0.5);
            v
        })
        .collect()
}

/// Evaluates `scheme`: its utility, every applicable attack on the first `eval_samples` test
/// images, and the distinguishers.
pub fn evaluate_scheme(
    scheme: &dyn Scheme,
    ctx: EvalContext<'_>,
    cfg: &AttackConfig,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<SchemeResult> {
    cfg.validate()?;
    let t0 = Instant::now();
    let (rows, cols) = (ctx.test.rows, ctx.test.cols);
    let d = rows * cols;
    if scheme.input_dim() != d {
        return Err(Error::Mismatch {
            what: "scheme input values for the images' size",
            expected: d,
            got: scheme.input_dim(),
        });
    }
    let similarity = Similarity::for_shape(rows, cols)?;
    let n = cfg.eval_samples.min(ctx.test.len());
    let labels = &ctx.test.labels[..n];
    let x = ctx.test.slice(0, n);
    let orig = to_pixels(&to_vec(x.clone())?);
    let mut rng = SplitMix64::new(cfg.seed);
    let (observed, _chosen) = observe(scheme, &x, &mut rng)?;
    let m = scheme.output_dim();
    let obs_host = to_vec(observed.clone())?;
    let g = cfg.grid_samples.min(n);
    let mut pictures = Pictures {
        rows,
        cols,
        originals: rows_of(&orig, d, g),
        observed: display(&obs_host, m, d, g),
        reconstructions: Vec::new(),
    };
    progress(TrainEvent::Phase {
        name: format!("{}: utility", scheme.name()),
        total_steps: 0,
    });
    let utility = scheme.utility(ctx.server, ctx.train, ctx.test, cfg.seed ^ 0x7574_696c)?;
    let fit = FitContext {
        server: ctx.server,
        train: ctx.train,
        test: ctx.test,
    };
    let mut scores = Vec::new();
    let mut floor: Vec<f64> = Vec::new();
    let mut score = |name: String,
                     recon_norm: Vec<f32>,
                     count: usize,
                     secs: f64,
                     note: Option<String>,
                     pictures: &mut Pictures|
     -> Result<()> {
        let recon = to_pixels(&recon_norm);
        let per = score_per_image(&orig[..count * d], &recon, rows, cols)?;
        let s = per.summary();
        let gain_over_floor = if is_reference(&name) {
            if name == LABEL_ONLY {
                floor = per.ssim.clone();
            }
            None
        } else if floor.len() >= count {
            let g: Vec<f64> = per.ssim.iter().zip(&floor).map(|(a, f)| a - f).collect();
            Some(Gain {
                mean: g.iter().sum::<f64>() / g.len().max(1) as f64,
                median: quantile(&g, 0.5),
                p90: quantile(&g, 0.9),
            })
        } else {
            None
        };
        let recog = ctx.recogniser.accuracy(&recon, &labels[..count], rows, cols)?;
        pictures
            .reconstructions
            .push((name.clone(), rows_of(&recon, d, g)));
        tracing::info!(scheme = %scheme.name(), attack = %name, ssim = s.ssim, psnr = s.psnr_db, "attack scored");
        scores.push(AttackScore {
            attack: name,
            scores: s,
            recognisability: recog,
            seconds: secs,
            evidence: "empirical".into(),
            note,
            gain_over_floor,
        });
        Ok(())
    };
    if m == d {
        score(
            OBSERVED_AS_IMAGE.into(),
            obs_host.clone(),
            n,
            0.0,
            Some("reference: what was sent, read as an image (no attack)".into()),
            &mut pictures,
        )?;
    }
    {
        let t = Instant::now();
        let means = obfnet_nn::class_means(ctx.train)?;
        let classes = means.dims()[0];
        let means = to_vec(means)?;
        let mut r = Vec::with_capacity(n * d);
        for &l in labels {
            let l = usize::from(l);
            if l >= classes {
                return Err(Error::UnknownLabel { label: l, classes });
            }
            r.extend_from_slice(&means[l * d..(l + 1) * d]);
        }
        score(
            LABEL_ONLY.into(),
            r,
            n,
            t.elapsed().as_secs_f64(),
            Some(
                "reference: the mean training image of the sample's label — what the label alone reveals"
                    .into(),
            ),
            &mut pictures,
        )?;
    }
    let mut shadow_accuracy = None;
    if cfg.attacks.inverse {
        let mut attacks: Vec<(InverseNet, Option<String>)> = vec![(
            InverseNet::new(cfg.inverse.clone(), InverseMode::Pooled),
            Some(format!("{} training pairs", cfg.inverse.train_samples)),
        )];
        if scheme.candidates() > 1 {
            let per = InverseConfig {
                train_samples: cfg.per_net_train_samples,
                ..cfg.inverse.clone()
            };
            attacks.push((
                InverseNet::new(per, InverseMode::PerNet),
                Some(format!(
                    "{} decoders × {} pairs; per sample the decoder whose output re-obfuscates closest",
                    scheme.candidates(),
                    cfg.per_net_train_samples
                )),
            ));
        }
        for (mut a, note) in attacks {
            let t = Instant::now();
            a.fit(scheme, fit, progress)?;
            let r = to_vec(a.reconstruct(scheme, &observed, progress)?)?;
            score(a.name(), r, n, t.elapsed().as_secs_f64(), note, &mut pictures)?;
        }
    }
    if cfg.strong.any() {
        let sc = &cfg.strong;
        let k = scheme.candidates();
        let modes = [
            (sc.pooled, &sc.decoder, StrongMode::Pooled),
            (sc.per_net && k > 1, &sc.decoder, StrongMode::PerNet),
            (sc.conditioned, &sc.decoder, StrongMode::Conditioned),
            (sc.conv_pooled, &sc.conv_decoder, StrongMode::Pooled),
            (sc.conv_per_net && k > 1, &sc.conv_decoder, StrongMode::PerNet),
        ];
        for (on, dcfg, mode) in modes {
            if !on {
                continue;
            }
            let t = Instant::now();
            let mut a = StrongInverse::new(dcfg.clone(), mode);
            a.fit(scheme, fit, progress)?;
            let r = to_vec(a.reconstruct(scheme, &observed, progress)?)?;
            let note = Some(a.budget());
            score(a.name(), r, n, t.elapsed().as_secs_f64(), note, &mut pictures)?;
        }
        if sc.nearest_neighbour {
            let t = Instant::now();
            let mut a = NearestNeighbour::new(sc.neighbour.clone());
            a.fit(scheme, fit, progress)?;
            let r = to_vec(a.reconstruct(scheme, &observed, progress)?)?;
            let note = Some(format!(
                "raw training image whose obfuscation is nearest (standardised L2) among {} rows \
                 (training images × nets)",
                a.reference_rows
            ));
            score(a.name(), r, n, t.elapsed().as_secs_f64(), note, &mut pictures)?;
        }
        if sc.latent_search {
            let t = Instant::now();
            let mut a = LatentSearch::new(sc.latent.clone());
            a.fit(scheme, fit, progress)?;
            let r = to_vec(a.reconstruct(scheme, &observed, progress)?)?;
            let note = Some(a.budget(k));
            score(a.name(), r, n, t.elapsed().as_secs_f64(), note, &mut pictures)?;
        }
    }
    if cfg.attacks.rmle && cfg.rmle_samples > 0 {
        let t = Instant::now();
        let mut a = Rmle::new(cfg.rmle.clone(), rows, cols);
        a.fit(scheme, fit, progress)?;
        let nr = cfg.rmle_samples;
        let r = to_vec(a.reconstruct(scheme, &observed.clone().slice([0..nr, 0..m]), progress)?)?;
        score(
            a.name(),
            r,
            nr,
            t.elapsed().as_secs_f64(),
            Some(format!("first {nr} of the {n} samples; {} steps", cfg.rmle.steps)),
            &mut pictures,
        )?;
    }
    if cfg.attacks.shadow && scheme.arch().is_some() {
        let t = Instant::now();
        let mut a = ShadowAttack::new(cfg.shadow.clone(), cfg.inverse.clone());
        a.fit(scheme, fit, progress)?;
        let r = to_vec(a.reconstruct(scheme, &observed, progress)?)?;
        shadow_accuracy = a.shadow_accuracy;
        score(
            a.name(),
            r,
            n,
            t.elapsed().as_secs_f64(),
            Some(format!(
                "attacker's own net ({} epoch(s), {} images), frozen model behind it: {}",
                cfg.shadow.epochs,
                cfg.shadow.train_samples,
                a.shadow_accuracy
                    .map_or("?".into(), |v| format!("{:.2}%", v * 100.0))
            )),
            &mut pictures,
        )?;
    }
    let distinguishers = if cfg.attacks.distinguishers {
        Some(distinguish(scheme, ctx.train, &x, &cfg.distinguisher, progress)?)
    } else {
        None
    };
    Ok(SchemeResult {
        name: scheme.name(),
        family: scheme.family(),
        arch: scheme.arch().map(|a| a.name().to_string()),
        k: scheme.candidates(),
        guarantee: scheme.guarantee(),
        utility,
        attacks: scores,
        distinguishers,
        shadow_accuracy,
        pictures,
        seconds: t0.elapsed().as_secs_f64(),
        device_macs: scheme.device_macs(),
        privacy_trained: false,
        speaker: None,
        similarity: Some(similarity),
        output_noise: match scheme.family() {
            Family::ObfNet => scheme.noise(),
            _ => None,
        },
    })
}
