//! Distinguishing attacks: can the server tell obfuscated inputs from raw ones (is voluntary
//! use unobtrusive?), and which of the K nets produced an input?

use burn::prelude::*;
use obfnet_nn::{Dataset, SplitMix64, TrainEvent};
use serde::{Deserialize, Serialize};

use crate::attack::sample_train;
use crate::auc::roc_auc;
use crate::mlp::{MlpConfig, Targets, to_vec, to_vec_int, train_mlp};
use crate::scheme::{Scheme, observe_with};
use crate::{Error, Result};

/// Budget of the distinguishers. Defaults: 10 000 training images, MLP `d → 256 → classes`,
/// 3 epochs, batch 128, Adam 1e-3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DistinguisherConfig {
    /// Training images from the server's split.
    pub train_samples: usize,
    /// The classifier.
    pub mlp: MlpConfig,
    /// Seed.
    pub seed: u64,
}

impl Default for DistinguisherConfig {
    fn default() -> Self {
        DistinguisherConfig {
            train_samples: 10_000,
            mlp: MlpConfig {
                hidden: vec![256],
                epochs: 3,
                ..MlpConfig::default()
            },
            seed: 7000,
        }
    }
}

/// What the distinguishers measured (empirical).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distinguishers {
    /// ROC AUC of the raw-vs-obfuscated classifier on test samples (0.5 = indistinguishable);
    /// `None` when the outputs differ in size from raw inputs (distinguishable by size alone).
    pub raw_vs_observed_auc: Option<f64>,
    /// Why `raw_vs_observed_auc` is absent, if it is.
    pub raw_vs_observed_note: Option<String>,
    /// Accuracy of the which-of-K classifier on test samples (`None` for K = 1).
    pub which_of_k_accuracy: Option<f64>,
    /// Chance level 1/K.
    pub which_of_k_chance: Option<f64>,
    /// Test samples scored.
    pub test_samples: usize,
}

/// Trains and scores both distinguishers for `scheme`; `test_x` are the test images scored
/// (normalised, `[n, d]`).
pub fn distinguish(
    scheme: &dyn Scheme,
    train: &Dataset,
    test_x: &Tensor<2>,
    cfg: &DistinguisherConfig,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<Distinguishers> {
    let mut rng = SplitMix64::new(cfg.seed);
    let [nt, d] = test_x.dims();
    let k = scheme.candidates();
    let m = scheme.output_dim();
    let (mut auc, mut note) = (None, None);
    if m == d {
        // raw (label 0) vs observed (label 1), on disjoint halves of the sampled images
        let x = sample_train(train, cfg.train_samples, &mut rng);
        let [n, _] = x.dims();
        let half = n / 2;
        if half == 0 {
            return Err(Error::config("train_samples", "need at least 2"));
        }
        let raw = x.clone().slice([0..half, 0..d]);
        let to_obs = x.slice([half..n, 0..d]);
        let chosen: Vec<usize> = (0..n - half).map(|_| rng.below(k)).collect();
        let obs = observe_with(scheme, &to_obs, &chosen, &mut rng)?;
        let inputs = Tensor::cat(vec![raw, obs], 0);
        let labels: Vec<i64> = (0..n).map(|i| i64::from(i >= half)).collect();
        let y = Tensor::from_data(TensorData::new(labels, [n]), &inputs.device());
        let model = train_mlp(
            &format!("raw-vs-obfuscated distinguisher for {}", scheme.name()),
            &cfg.mlp,
            &inputs,
            &Targets::Classes {
                labels: y,
                classes: 2,
            },
            rng.next_u64(),
            progress,
        )?;
        let chosen: Vec<usize> = (0..nt).map(|_| rng.below(k)).collect();
        let tobs = observe_with(scheme, test_x, &chosen, &mut rng)?;
        let logits = to_vec(model.predict(&Tensor::cat(vec![test_x.clone().inner(), tobs], 0)))?;
        let scores: Vec<f64> = logits.chunks_exact(2).map(|l| f64::from(l[1] - l[0])).collect();
        let truth: Vec<bool> = (0..2 * nt).map(|i| i >= nt).collect();
        auc = Some(roc_auc(&scores, &truth)?);
    } else {
        note = Some(format!(
            "outputs have {m} values, raw inputs {d}: distinguishable by size alone"
        ));
    }
    let (mut which, mut chance) = (None, None);
    if k > 1 {
        let x = sample_train(train, cfg.train_samples, &mut rng);
        let [n, _] = x.dims();
        let chosen: Vec<usize> = (0..n).map(|_| rng.below(k)).collect();
        let obs = observe_with(scheme, &x, &chosen, &mut rng)?;
        let labels: Vec<i64> = chosen.iter().map(|&c| c as i64).collect();
        let y = Tensor::from_data(TensorData::new(labels, [n]), &obs.device());
        let model = train_mlp(
            &format!("which-of-{k} distinguisher for {}", scheme.name()),
            &cfg.mlp,
            &obs,
            &Targets::Classes {
                labels: y,
                classes: k,
            },
            rng.next_u64(),
            progress,
        )?;
        let tchosen: Vec<usize> = (0..nt).map(|_| rng.below(k)).collect();
        let tobs = observe_with(scheme, test_x, &tchosen, &mut rng)?;
        let pred = to_vec_int(model.predict(&tobs).argmax(1))?;
        let correct = pred
            .iter()
            .zip(&tchosen)
            .filter(|&(&p, &c)| p == c as i64)
            .count();
        which = Some(correct as f64 / nt as f64);
        chance = Some(1.0 / k as f64);
    }
    Ok(Distinguishers {
        raw_vs_observed_auc: auc,
        raw_vs_observed_note: note,
        which_of_k_accuracy: which,
        which_of_k_chance: chance,
        test_samples: nt,
    })
}
