//! Serving an ONNX classifier (`obfnet serve --model model.onnx`).
//!
//! The graph is run by [`obfnet_nn::OnnxServer`] (burn ops on the plain CPU device), which
//! takes samples flattened to `rows × cols` in obfnet's normalised input space
//! ([`obfnet_nn::NORMALISATION`]) and applies the model's own preprocessing (its sidecar JSON)
//! itself. So the service's input contract is the same as for a LeNet-5: `UINT8` bytes are
//! normalised with [`obfnet_nn::NORMALISATION`] (exactly what an edge device's u8 wire uses),
//! `FP32` values are already in that space, and the shape is `[n, rows·cols]` with
//! `rows × cols` from the graph's input (`[C, H, W]` → `(C·H) × W`, `[L]` → `1 × L`).

use std::path::Path;

use obfnet_nn::burn::prelude::*;
use obfnet_nn::{OnnxServer, ServerModel};

use crate::backend::{InferenceBackend, ModelSpec};
use crate::{Error, Result};

/// An ONNX server model behind the service.
#[derive(Debug)]
pub struct OnnxBackend {
    model: ServerModel,
    device: Device,
    spec: ModelSpec,
}

impl OnnxBackend {
    /// Loads `path` (and its sidecar `*.obfnet.json`, if any).
    ///
    /// # Errors
    /// [`Error::Model`] with the problem (unreadable file, unsupported operator with node and
    /// opset, bad sidecar, symbolic sample dimension, not a classifier).
    pub fn load(path: &Path) -> Result<OnnxBackend> {
        OnnxBackend::new(ServerModel::Onnx(OnnxServer::load(path)?))
    }

    /// Wraps an already loaded ONNX server model.
    ///
    /// # Errors
    /// [`Error::Backend`] if `model` is not an ONNX model.
    pub fn new(model: ServerModel) -> Result<OnnxBackend> {
        let ServerModel::Onnx(onnx) = &model else {
            return Err(Error::Backend("OnnxBackend needs an ONNX server model".into()));
        };
        let (rows, cols) = model.input_shape();
        let spec = ModelSpec {
            rows,
            cols,
            classes: model.classes(),
            normalisation: obfnet_nn::NORMALISATION,
            platform: "obfnet_onnx_burn_flex".into(),
            sha256: Some(obfnet_core::hex(&onnx.sha256())),
        };
        Ok(OnnxBackend {
            model,
            device: obfnet_nn::default_device().inner(),
            spec,
        })
    }
}

impl InferenceBackend for OnnxBackend {
    fn spec(&self) -> ModelSpec {
        self.spec.clone()
    }

    fn logits(&mut self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let model = &self.model;
        crate::backend::run_batch(&self.spec, &self.device, x, n, |t| Ok(model.forward_eval(t)?))
    }
}
