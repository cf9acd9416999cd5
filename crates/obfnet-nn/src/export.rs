use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use obfnet_core::{Bundle, DType, Manifest, NetSpec, TensorSpec};
use serde::{Deserialize, Serialize};

use crate::config::{ServerReport, ServerTrainConfig};
use crate::data::NORMALISATION;
use crate::lenet::{LeNet, LeNetConfig};
use crate::obf::ObfStack;
use crate::{Error, Result};
use obfnet_data::write_atomic;

/// Where a saved server model lives: `model.safetensors` and `config.json` in one directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerModelFiles {
    /// The weights.
    pub weights: PathBuf,
    /// Architecture, normalisation, training config and measured accuracy.
    pub config: PathBuf,
}

impl ServerModelFiles {
    /// The files inside `dir`.
    pub fn in_dir(dir: &Path) -> ServerModelFiles {
        ServerModelFiles {
            weights: dir.join("model.safetensors"),
            config: dir.join("config.json"),
        }
    }
}

/// Schema version of the server model's `config.json` written by this build.
pub const SERVER_CONFIG_VERSION: u32 = 1;

fn version_one() -> u32 {
    1
}

/// The `config.json` written next to the server model's weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerModelConfig {
    /// Schema version ([`SERVER_CONFIG_VERSION`]); configs written before it was recorded are
    /// version 1. Loading refuses versions this build does not know.
    #[serde(default = "version_one")]
    pub schema_version: u32,
    /// Architecture.
    pub model: LeNetConfig,
    /// Input normalisation `(raw · scale − mean) / std`.
    pub normalisation: [f32; 3],
    /// How it was trained.
    pub training: ServerTrainConfig,
    /// What training measured.
    pub report: ServerReport,
    /// The dataset the model was trained on (`obfnet_data::dataset` name). Absent in configs
    /// written before datasets were recorded, which were all MNIST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

impl ServerModelConfig {
    /// The dataset the model was trained for (`"mnist"` for configs that predate the field).
    pub fn dataset_name(&self) -> &str {
        self.dataset.as_deref().unwrap_or("mnist")
    }
}

/// Saves the server model as safetensors plus `config.json` in `dir` (both written atomically:
/// a temporary file renamed into place). Returns the sha256 of the weights file, which bundles
/// use as the model's id. The config records no dataset (read back as MNIST); use
/// [`save_server_model_for`] to record it.
pub fn save_server_model(
    model: &LeNet,
    training: &ServerTrainConfig,
    report: &ServerReport,
    dir: &Path,
) -> Result<[u8; 32]> {
    save_inner(model, None, training, report, dir)
}

/// As [`save_server_model`], recording in `config.json` that the model was trained on
/// `dataset`, so that loading it for another dataset can be refused.
pub fn save_server_model_for(
    model: &LeNet,
    dataset: &str,
    training: &ServerTrainConfig,
    report: &ServerReport,
    dir: &Path,
) -> Result<[u8; 32]> {
    save_inner(model, Some(dataset), training, report, dir)
}

fn save_inner(
    model: &LeNet,
    dataset: Option<&str>,
    training: &ServerTrainConfig,
    report: &ServerReport,
    dir: &Path,
) -> Result<[u8; 32]> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let files = ServerModelFiles::in_dir(dir);
    // serialised in memory, then written atomically like every other artifact
    let mut store = SafetensorsStore::from_bytes(None);
    let weights_err = |e: &dyn std::fmt::Display| Error::Weights {
        path: files.weights.clone(),
        reason: format!("{e}"),
    };
    model.save_into(&mut store).map_err(|e| weights_err(&e))?;
    let bytes = store.get_bytes().map_err(|e| weights_err(&e))?;
    write_atomic(&files.weights, &bytes)?;
    let config = ServerModelConfig {
        schema_version: SERVER_CONFIG_VERSION,
        model: model.config(),
        normalisation: [NORMALISATION.scale, NORMALISATION.mean, NORMALISATION.std],
        training: training.clone(),
        report: report.clone(),
        dataset: dataset.map(str::to_owned),
    };
    let json = serde_json::to_vec_pretty(&config).map_err(|e| Error::ConfigFile {
        path: files.config.clone(),
        source: e,
    })?;
    write_atomic(&files.config, &json)?;
    server_model_sha256(dir)
}

/// Loads a server model saved by [`save_server_model`] onto the training device; returns it
/// with its config and the sha256 of its weights file.
pub fn load_server_model(dir: &Path) -> Result<(LeNet, ServerModelConfig, [u8; 32])> {
    let files = ServerModelFiles::in_dir(dir);
    let text = std::fs::read(&files.config).map_err(|e| Error::io("read", &files.config, e))?;
    let config: ServerModelConfig = serde_json::from_slice(&text).map_err(|e| Error::ConfigFile {
        path: files.config.clone(),
        source: e,
    })?;
    if !(1..=SERVER_CONFIG_VERSION).contains(&config.schema_version) {
        return Err(Error::UnknownVersion {
            path: files.config.clone(),
            found: config.schema_version,
            supported: SERVER_CONFIG_VERSION,
        });
    }
    config.model.validate()?;
    let bytes = std::fs::read(&files.weights).map_err(|e| Error::io("read", &files.weights, e))?;
    let device = crate::default_device();
    let mut model = LeNet::new(&config.model, &device);
    let mut store = SafetensorsStore::from_bytes(Some(bytes.clone()));
    let applied = model.load_from(&mut store).map_err(|e| Error::Weights {
        path: files.weights.clone(),
        reason: format!("{e}"),
    })?;
    if !applied.missing.is_empty() || !applied.errors.is_empty() {
        return Err(Error::Weights {
            path: files.weights.clone(),
            reason: format!(
                "missing tensors {:?}, errors {:?}",
                applied.missing, applied.errors
            ),
        });
    }
    Ok((model.valid(), config, obfnet_core::sha256(&bytes)))
}

/// The sha256 of a saved server model's weights file: the id bundles refer to.
pub fn server_model_sha256(dir: &Path) -> Result<[u8; 32]> {
    let path = ServerModelFiles::in_dir(dir).weights;
    let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    Ok(obfnet_core::sha256(&bytes))
}

/// Packs the K trained nets of `stack` into a bundle bound to the server model `server_sha256`.
pub fn bundle_from_stack(stack: &ObfStack, dataset: &str, server_sha256: [u8; 32]) -> Result<Bundle> {
    let (rows, cols) = stack.image_size();
    let arch = stack.arch();
    let nets = stack
        .seeds()
        .iter()
        .enumerate()
        .map(|(i, &seed)| NetSpec {
            name: format!("{arch}-{i}"),
            arch: arch.name().to_string(),
            seed,
            layers: stack.layer_specs(),
            sha256: [0; 32],
        })
        .collect();
    let shape = vec![1, rows, cols];
    let manifest = Manifest {
        format_version: obfnet_core::FORMAT_VERSION,
        created_by: format!("obfnet-{}", env!("CARGO_PKG_VERSION")),
        dataset: dataset.to_string(),
        input: TensorSpec {
            shape: shape.clone(),
            dtype: DType::F32,
        },
        normalisation: NORMALISATION,
        output: TensorSpec {
            shape,
            dtype: DType::F32,
        },
        weights: DType::F32,
        output_noise: None,
        server_model_sha256: server_sha256,
        nets,
    };
    let weights = (0..stack.k())
        .map(|k| stack.net_weights(k))
        .collect::<Result<Vec<_>>>()?;
    Ok(Bundle::new(manifest, weights)?)
}
