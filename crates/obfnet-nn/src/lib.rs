//! The obfnet training engine, built on [burn](https://burn.dev) 0.22 with its pure-Rust `flex`
//! CPU backend.
//!
//! Where it fits: `obfnet-data` reads the datasets, this crate trains the server's model and the
//! K obfuscation networks in front of it (the server model stays **frozen**: no weight gradient is
//! computed or kept for it), evaluates them, and exports the obfuscators into the versioned
//! bundle format of `obfnet-core`, which the edge runtime reads without this crate.
//!
//! The K obfuscators are trained **together** as one stacked module ([`ObfStack`]): each net
//! keeps its own parameter tensors (a batched `[K, in, out]` layout was measured 1.5× slower on
//! flex, see BENCHMARKS.md), a step runs every net on its own batch, and the K outputs go through
//! the frozen model as one `K × batch` pass. Because Adam is element-wise and each net's loss term
//! only depends on its own weights, this is mathematically the same as training the K nets one
//! after another with their own seeds (initialisation and data order).
//!
//! ```no_run
//! use obfnet_nn::{Dataset, ObfArch, ObfTrainConfig, ServerTrainConfig, train_server_model, train_obfuscators};
//! # fn main() -> obfnet_nn::Result<()> {
//! let data = obfnet_data::ImageDataset::load_mnist_dir("mnist", "data/mnist".as_ref())?;
//! let device = obfnet_nn::default_device();
//! let train = Dataset::from_images(&data.train, &device)?;
//! let test = Dataset::from_images(&data.test, &device)?;
//! let (lenet, _) = train_server_model(&ServerTrainConfig::default(), &train, &test, &mut |_| {})?;
//! let cfg = ObfTrainConfig { arch: ObfArch::ObfNet2, k: 2, ..ObfTrainConfig::default() };
//! let server = obfnet_nn::ServerModel::LeNet(lenet);
//! let (stack, report) = train_obfuscators(&cfg, &server, &train, &test, &mut |_| {})?;
//! println!("mean accuracy behind the obfuscators: {:.4}", report.mean_accuracy());
//! # let _ = stack; Ok(()) }
//! ```

mod config;
mod data;
mod error;
mod eval;
mod export;
pub mod fast;
mod lenet;
mod obf;
mod privacy_train;
mod rng;
mod server_model;
mod step;
mod train;

pub use burn;
pub use config::{Engine, ObfReport, ObfTrainConfig, ServerReport, ServerTrainConfig, TrainEvent};
pub use data::{Dataset, NORMALISATION};
pub use error::{Error, Result};
pub use eval::{
    accuracy, accuracy_on_inputs, obfuscate_samples, obfuscated_accuracies, server_accuracy,
    server_accuracy_on_inputs, server_obfuscated_accuracies,
};
pub use export::{
    SERVER_CONFIG_VERSION, ServerModelConfig, ServerModelFiles, bundle_from_stack, load_server_model,
    save_server_model, save_server_model_for, server_model_sha256,
};
pub use lenet::{LeNet, LeNetConfig, LeNetWeights};
pub use obf::{DEFAULT_BOTTLENECK, DEFAULT_HIDDEN, ObfArch, ObfStack};
/// The workspace's one atomic write (defined in `obfnet-data`, the lowest std crate).
pub use obfnet_data::write_atomic;
pub use privacy_train::{PrivacyEpoch, PrivacyTraining, class_means};
pub use rng::SplitMix64;
pub use server_model::{
    OnnxExport, OnnxServer, ServerModel, export_server_onnx, is_onnx_path, lenet_onnx_sidecar, lenet_to_onnx,
};
pub use train::{
    Calibration, calibrate, train_obfuscators, train_obfuscators_with_attributes, train_server_model,
};

/// The device training runs on: burn's pure-Rust `flex` CPU backend with autodiff.
///
/// GPU backends are not compiled in by default (see the README); everything here runs on this.
pub fn default_device() -> burn::tensor::Device {
    burn::tensor::Device::flex().autodiff()
}
