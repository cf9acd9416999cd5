//! Attribute privacy: can the server tell **who** is speaking from what a device sent?
//!
//! Threat model as for reconstruction: the server knows every net and holds its own labelled
//! clips (training split, with each clip's speaker). It trains a speaker classifier on its clips
//! pushed through the known nets — pooled (each clip through a net picked at random, as devices
//! do) and one per net (train and test through that net) — and is scored on the test split's
//! observed outputs. The reference is the same classifier on raw inputs; chance is
//! `1 / speakers`.

use burn::prelude::*;
use obfnet_nn::{SplitMix64, TrainEvent};
use serde::{Deserialize, Serialize};

use crate::mlp::{MlpConfig, Targets, to_vec_int, train_mlp};
use crate::scheme::{Scheme, observe, observe_with};
use crate::strong::Standardiser;
use crate::{Error, Result};

/// Budget of the speaker classifiers. Defaults: MLP `m → 512 → 256 → speakers` on standardised
/// inputs, 40 epochs, batch 64, Adam 1e-3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpeakerConfig {
    /// The classifier and its training.
    pub mlp: MlpConfig,
    /// Seeds nets picked, initialisation, order.
    pub seed: u64,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            mlp: MlpConfig {
                hidden: vec![512, 256],
                epochs: 40,
                batch_size: 64,
                learning_rate: 1e-3,
            },
            seed: 8100,
        }
    }
}

/// Speaker-identification accuracies on the test split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeakerResult {
    /// Distinct speakers.
    pub speakers: usize,
    /// `1 / speakers`.
    pub chance: f64,
    /// Classifier trained and tested on raw inputs (the reference).
    pub raw_accuracy: f64,
    /// Classifier trained on clips through random nets, tested on the observed outputs.
    pub pooled_accuracy: f64,
    /// Per net: trained and tested through that net (K > 1; empty otherwise).
    pub per_net_accuracies: Vec<f64>,
    /// Budget in words.
    pub budget: String,
}

/// Speaker-identification attack on `scheme`. `train_x`/`test_x`: normalised inputs
/// `[n, input_dim]`; `*_speakers`: the speaker index of each row (`0..speakers`).
pub fn speaker_identification(
    scheme: &dyn Scheme,
    train_x: &Tensor<2>,
    train_speakers: &[usize],
    test_x: &Tensor<2>,
    test_speakers: &[usize],
    cfg: &SpeakerConfig,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<SpeakerResult> {
    cfg.mlp.validate()?;
    let (ntr, nte) = (train_x.dims()[0], test_x.dims()[0]);
    if train_speakers.len() != ntr {
        return Err(Error::Mismatch {
            what: "training speakers for clips",
            expected: ntr,
            got: train_speakers.len(),
        });
    }
    if test_speakers.len() != nte {
        return Err(Error::Mismatch {
            what: "test speakers for clips",
            expected: nte,
            got: test_speakers.len(),
        });
    }
    if ntr == 0 || nte == 0 {
        return Err(Error::Empty {
            what: "speaker split",
        });
    }
    let speakers = train_speakers
        .iter()
        .chain(test_speakers)
        .max()
        .map_or(0, |m| m + 1);
    if speakers < 2 {
        return Err(Error::config("speakers", "need at least 2 speakers"));
    }
    let mut rng = SplitMix64::new(cfg.seed);
    let dev = train_x.device();
    let ids = Tensor::<1, Int>::from_data(
        TensorData::new(
            train_speakers.iter().map(|&s| s as i64).collect::<Vec<_>>(),
            [ntr],
        ),
        &dev,
    );
    let mut fit_score = |name: &str, tr: &Tensor<2>, te: &Tensor<2>, rng: &mut SplitMix64| -> Result<f64> {
        let std = Standardiser::fit(tr);
        let mlp = train_mlp(
            name,
            &cfg.mlp,
            &std.apply(tr),
            &Targets::Classes {
                labels: ids.clone(),
                classes: speakers,
            },
            rng.next_u64(),
            progress,
        )?;
        let pred = to_vec_int(mlp.predict(&std.apply(te)).argmax(1).flatten::<1>(0, 1))?;
        let right = pred
            .iter()
            .zip(test_speakers)
            .filter(|(p, s)| **p as usize == **s)
            .count();
        Ok(right as f64 / nte as f64)
    };
    let raw_accuracy = fit_score("speaker-id on raw inputs", train_x, test_x, &mut rng)?;
    let (ytr, _) = observe(scheme, train_x, &mut rng)?;
    let (yte, _) = observe(scheme, test_x, &mut rng)?;
    let pooled_accuracy = fit_score(
        &format!("speaker-id pooled on {}", scheme.name()),
        &ytr,
        &yte,
        &mut rng,
    )?;
    let k = scheme.candidates();
    let mut per_net_accuracies = Vec::new();
    if k > 1 {
        for net in 0..k {
            let ytr = observe_with(scheme, train_x, &vec![net; ntr], &mut rng)?;
            let yte = observe_with(scheme, test_x, &vec![net; nte], &mut rng)?;
            per_net_accuracies.push(fit_score(
                &format!("speaker-id net {}/{k} on {}", net + 1, scheme.name()),
                &ytr,
                &yte,
                &mut rng,
            )?);
        }
    }
    Ok(SpeakerResult {
        speakers,
        chance: 1.0 / speakers as f64,
        raw_accuracy,
        pooled_accuracy,
        per_net_accuracies,
        budget: format!(
            "MLP {:?} on standardised inputs, {} epochs, batch {}, Adam {}, {ntr} training clips",
            cfg.mlp.hidden, cfg.mlp.epochs, cfg.mlp.batch_size, cfg.mlp.learning_rate
        ),
    })
}

/// Speaker indices (`0..speakers`, in sorted name order) for two lists of speaker names.
pub fn speaker_indices(train: &[&str], test: &[&str]) -> (Vec<usize>, Vec<usize>, Vec<String>) {
    let mut names: Vec<String> = train.iter().chain(test).map(|s| (*s).to_owned()).collect();
    names.sort();
    names.dedup();
    let idx = |s: &&str| names.iter().position(|n| n == s).unwrap_or(0);
    let a = train.iter().map(idx).collect();
    let b = test.iter().map(idx).collect();
    (a, b, names)
}
