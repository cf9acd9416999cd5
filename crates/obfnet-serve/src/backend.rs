//! The seam between the protocol front ends and the model.

use std::path::Path;

use obfnet_core::Normalisation;
use obfnet_nn::LeNet;
use obfnet_nn::burn::prelude::*;

use crate::{Error, Result};

/// What the protocol layer needs to know about a model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// Number of classes (length of the probabilities output).
    pub classes: usize,
    /// How UINT8 inputs (raw pixels, or an edge device's u8-encoded obfuscated output) are
    /// mapped into the model's input space: `(x · scale − mean) / std`.
    pub normalisation: Normalisation,
    /// The `platform` string of the model metadata.
    pub platform: String,
    /// sha256 of the weights file, hex (the id obfuscator bundles refer to), if any.
    pub sha256: Option<String>,
}

impl ModelSpec {
    /// Values per image.
    pub fn input_dim(&self) -> usize {
        self.rows * self.cols
    }
}

/// A model the server can run. Implementations run on the batcher's own thread, so they need
/// `Send` but not `Sync`, and may block.
pub trait InferenceBackend: Send + 'static {
    /// Shapes and input normalisation.
    fn spec(&self) -> ModelSpec;

    /// Class logits for a batch.
    ///
    /// # Shapes
    /// `x`: `n × input_dim` values, row-major, already in the model's (normalised) input space,
    /// all finite → `n × classes` logits.
    fn logits(&mut self, x: &[f32], n: usize) -> Result<Vec<f32>>;
}

/// The LeNet-5 server model of `obfnet train-model`, run by burn's `flex` CPU backend (no
/// autodiff: the loaded model is already the inference-only module).
#[derive(Debug)]
pub struct LeNetBackend {
    model: LeNet,
    device: Device,
    spec: ModelSpec,
}

impl LeNetBackend {
    /// Loads `model.safetensors` + `config.json` from `dir` (as written by `obfnet train-model`).
    pub fn load(dir: &Path) -> Result<LeNetBackend> {
        let (model, config, sha) = obfnet_nn::load_server_model(dir)?;
        let [scale, mean, std] = config.normalisation;
        let normalisation = Normalisation { scale, mean, std };
        normalisation.validate().map_err(|e| Error::Config {
            field: "config.json normalisation",
            reason: e.to_string(),
        })?;
        Ok(LeNetBackend {
            model,
            device: obfnet_nn::default_device().inner(),
            spec: ModelSpec {
                rows: config.model.input[0],
                cols: config.model.input[1],
                classes: config.model.classes,
                normalisation,
                platform: "obfnet_burn_flex".into(),
                sha256: Some(obfnet_core::hex(&sha)),
            },
        })
    }
}

impl LeNetBackend {
    /// The loaded model (to copy its weights elsewhere, e.g. into
    /// [`crate::Batch1EdgeBackend`]'s edge program).
    pub fn model(&self) -> &LeNet {
        &self.model
    }
}

impl InferenceBackend for LeNetBackend {
    fn spec(&self) -> ModelSpec {
        self.spec.clone()
    }

    fn logits(&mut self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        run_batch(&self.spec, &self.device, x, n, |t| Ok(self.model.forward(t)))
    }
}

/// Runs `forward` on the `n × input_dim` batch `x` (checked) and reads the logits back: the
/// burn-backed backends share this.
pub(crate) fn run_batch(
    spec: &ModelSpec,
    device: &Device,
    x: &[f32],
    n: usize,
    forward: impl FnOnce(Tensor<2>) -> Result<Tensor<2>>,
) -> Result<Vec<f32>> {
    let dim = spec.input_dim();
    if x.len() != n * dim {
        return Err(Error::Backend(format!(
            "batch of {} values is not {n} × {dim}",
            x.len()
        )));
    }
    let t = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [n, dim]), device);
    forward(t)?
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Backend(format!("{e:?}")))
}

/// A model that computes nothing: every image gets all-zero logits (so uniform probabilities
/// and label 0). It measures the service's own ceiling in the load benchmark.
#[derive(Clone, Debug)]
pub struct NoopBackend {
    spec: ModelSpec,
}

impl Default for NoopBackend {
    fn default() -> Self {
        NoopBackend {
            spec: ModelSpec {
                rows: 28,
                cols: 28,
                classes: 10,
                normalisation: Normalisation::MNIST,
                platform: "obfnet_noop".into(),
                sha256: None,
            },
        }
    }
}

impl InferenceBackend for NoopBackend {
    fn spec(&self) -> ModelSpec {
        self.spec.clone()
    }

    fn logits(&mut self, _x: &[f32], n: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; n * self.spec.classes])
    }
}
