//! What every job starts from: a dataset from the registry, the frozen server model trained on
//! it, and bundles checked against both.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use obfnet_core::Bundle;
use obfnet_data::fetch::Fetched;
use obfnet_data::{DatasetReader, ImageDataset};
use obfnet_nn::{ObfArch, ObfStack};
use serde::{Deserialize, Serialize};

/// A dataset: a registered one in a data directory (each lives in `<data_dir>/<name>`), or a
/// user dataset given as `folder:PATH` / `npz:PATH` (see [`obfnet_data::DatasetSource`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSource {
    /// The data directory.
    pub data_dir: PathBuf,
    /// A registered dataset name (`obfnet_data::dataset_names`), or `folder:PATH` / `npz:PATH`.
    pub dataset: String,
}

impl DataSource {
    /// The user dataset this names (`folder:PATH` / `npz:PATH`), if it is one.
    pub fn user(&self) -> Option<obfnet_data::DatasetSource> {
        obfnet_data::DatasetSource::parse(&self.dataset)
    }

    /// The registered reader.
    ///
    /// # Errors
    /// An unknown dataset name (listing the known ones).
    pub fn reader(&self) -> Result<&'static dyn DatasetReader> {
        ensure!(
            self.user().is_none(),
            "{} is a user dataset: it is read in place (nothing to fetch, no registered reader)",
            self.dataset
        );
        Ok(obfnet_data::dataset(&self.dataset)?)
    }

    /// `<data_dir>/<name>`.
    pub fn dir(&self) -> Result<PathBuf> {
        Ok(self.data_dir.join(self.reader()?.name()))
    }

    /// Loads the dataset. A user dataset comes as its `rows × cols` view
    /// ([`obfnet_data::UserDataset::to_image_dataset`]), named after its file or folder.
    ///
    /// # Errors
    /// An unknown name, or files that are missing or do not load.
    pub fn load(&self) -> Result<ImageDataset> {
        if let Some(src) = self.user() {
            let ds = src
                .load()
                .with_context(|| format!("loading the user dataset {}", self.dataset))?;
            return Ok(ds.to_image_dataset());
        }
        let r = self.reader()?;
        let dir = self.data_dir.join(r.name());
        r.load(&dir)
            .with_context(|| format!("loading {} from {}", r.name(), dir.display()))
    }

    /// Obtains the dataset (idempotent; see [`obfnet_data::fetch`]), telling `progress` about
    /// slow steps. A user dataset is read in place: nothing to fetch
    /// ([`Fetched::AlreadyPresent`]; [`DataSource::load`] reports a missing file).
    ///
    /// # Errors
    /// See [`obfnet_data::fetch::FetchError`].
    pub fn fetch(&self, from: Option<&Path>, progress: &mut dyn FnMut(&str)) -> Result<Fetched> {
        if self.user().is_some() {
            return Ok(Fetched::AlreadyPresent);
        }
        Ok(obfnet_data::fetch::fetch_dataset(
            &self.data_dir,
            &self.dataset,
            from,
            progress,
        )?)
    }
}

/// The train and test splits as engine datasets.
///
/// # Errors
/// Images that do not fit the engine.
pub fn to_datasets(ds: &ImageDataset) -> Result<(obfnet_nn::Dataset, obfnet_nn::Dataset)> {
    let device = obfnet_nn::default_device();
    Ok((
        obfnet_nn::Dataset::from_images(&ds.train, &device)?,
        obfnet_nn::Dataset::from_images(&ds.test, &device)?,
    ))
}

/// Fails unless the server model in `dir` was trained on `dataset`.
///
/// # Errors
/// A model trained on another dataset, with what to pass instead.
pub fn check_model_dataset(config: &obfnet_nn::ServerModelConfig, dir: &Path, dataset: &str) -> Result<()> {
    ensure!(
        config.dataset_name() == dataset,
        "the server model in {} was trained on `{}`, not `{dataset}`: pass --dataset {} or a model \
         trained with --dataset {dataset}",
        dir.display(),
        config.dataset_name(),
        config.dataset_name()
    );
    Ok(())
}

/// Fails unless `bundle` was made for `dataset`.
///
/// # Errors
/// A bundle made for another dataset.
pub fn check_bundle_dataset(bundle: &Bundle, path: &Path, dataset: &str) -> Result<()> {
    ensure!(
        bundle.manifest.dataset == dataset,
        "the bundle {} was trained on `{}`, not `{dataset}`: pass --dataset {}",
        path.display(),
        bundle.manifest.dataset,
        bundle.manifest.dataset
    );
    Ok(())
}

/// Loads the server model in `dir` and checks it was trained on `dataset`; returns it with the
/// sha256 of its weights (the id bundles record).
///
/// # Errors
/// Missing or invalid files, or a model for another dataset.
pub fn load_model_for(dir: &Path, dataset: &str) -> Result<(obfnet_nn::LeNet, [u8; 32])> {
    let (model, config, sha) = obfnet_nn::load_server_model(dir)
        .with_context(|| format!("loading the server model from {}", dir.display()))?;
    check_model_dataset(&config, dir, dataset)?;
    Ok((model, sha))
}

/// Loads the server model `--model` names: an ONNX file (`*.onnx`, with its optional sidecar,
/// see [`obfnet_nn::OnnxServer::load`]) or the LeNet-5 directory of `obfnet train-model`
/// (checked against `dataset`). Returns it with its id (sha256 of the ONNX file or of the
/// LeNet's weights file), which bundles record.
///
/// An ONNX model records no dataset: whether it fits the data is checked by shape when the
/// data meets it.
///
/// # Errors
/// Missing or invalid files (for ONNX: unsupported operators with node and opset, a bad
/// sidecar), or a LeNet trained on another dataset.
pub fn load_server_for(path: &Path, dataset: &str) -> Result<(obfnet_nn::ServerModel, [u8; 32])> {
    if obfnet_nn::is_onnx_path(path) {
        let m = obfnet_nn::OnnxServer::load(path)
            .with_context(|| format!("loading the ONNX server model {}", path.display()))?;
        let sha = m.sha256();
        return Ok((obfnet_nn::ServerModel::Onnx(m), sha));
    }
    let (m, sha) = load_model_for(path, dataset)?;
    Ok((obfnet_nn::ServerModel::LeNet(m), sha))
}

/// Reads and validates a bundle; returns its bytes too.
///
/// # Errors
/// I/O, or a bundle the validating loader rejects.
pub fn read_bundle(path: &Path) -> Result<(Vec<u8>, Bundle)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bundle =
        Bundle::from_bytes(&bytes).with_context(|| format!("rejecting bundle {}", path.display()))?;
    Ok((bytes, bundle))
}

/// Reads a bundle and checks it was made for `dataset` and against the server model `sha`.
///
/// # Errors
/// As [`read_bundle`], or a bundle for another dataset or model.
pub fn read_bundle_for(path: &Path, sha: &[u8; 32], dataset: &str) -> Result<Bundle> {
    let (_, bundle) = read_bundle(path)?;
    check_bundle_dataset(&bundle, path, dataset)?;
    bundle
        .expect_server_model(sha)
        .with_context(|| format!("{} was trained against another server model", path.display()))?;
    Ok(bundle)
}

/// [`read_bundle_for`], loaded into the engine.
///
/// # Errors
/// As [`read_bundle_for`].
pub fn load_stack(path: &Path, sha: &[u8; 32], dataset: &str) -> Result<ObfStack> {
    Ok(load_stack_and_noise(path, sha, dataset)?.0)
}

/// [`load_stack`] plus the output noise the bundle's devices add (format 3), which the
/// privacy jobs must apply to what the attackers observe.
///
/// # Errors
/// As [`read_bundle_for`].
pub fn load_stack_and_noise(
    path: &Path,
    sha: &[u8; 32],
    dataset: &str,
) -> Result<(ObfStack, Option<obfnet_core::OutputNoise>)> {
    let bundle = read_bundle_for(path, sha, dataset)?;
    let stack = ObfStack::from_bundle(&bundle, &obfnet_nn::default_device())?;
    Ok((stack, bundle.manifest.output_noise))
}

/// The architecture of a bundle's nets.
///
/// # Errors
/// An unreadable bundle, one without nets, or an unknown architecture.
pub fn bundle_arch(path: &Path) -> Result<ObfArch> {
    let (_, bundle) = read_bundle(path)?;
    let name = bundle
        .manifest
        .nets
        .first()
        .map(|n| n.arch.clone())
        .context("bundle holds no nets")?;
    ObfArch::from_name(&name).with_context(|| format!("{}: unknown architecture {name:?}", path.display()))
}

/// Writes `stack` as a bundle for `dataset` and server model `sha` (atomically; the parent
/// directory is created).
///
/// # Errors
/// Serialisation or I/O.
pub fn write_bundle(stack: &ObfStack, dataset: &str, sha: [u8; 32], out: &Path) -> Result<()> {
    let bundle = obfnet_nn::bundle_from_stack(stack, dataset, sha)?;
    let bytes = bundle.to_bytes().context("serialising the bundle")?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    obfnet_data::write_atomic(out, &bytes)?;
    Ok(())
}

/// Everything a privacy job needs: the splits, the frozen server model and its id.
#[derive(Debug)]
pub struct Setup {
    /// Registered dataset name.
    pub dataset: String,
    /// Training split.
    pub train: obfnet_nn::Dataset,
    /// Test split.
    pub test: obfnet_nn::Dataset,
    /// The frozen server model (a LeNet-5 directory or an ONNX file).
    pub server: obfnet_nn::ServerModel,
    /// sha256 of its weights (LeNet) or of the ONNX file.
    pub sha: [u8; 32],
}

impl Setup {
    /// Loads the dataset and the server model in `model` (a LeNet-5 directory checked against
    /// the dataset, or an ONNX file checked by shape) for the job `verb`.
    ///
    /// # Errors
    /// See [`DataSource::load`] and [`load_server_for`]; data that does not fit the model.
    pub fn load(verb: &'static str, data: &DataSource, model: &Path) -> Result<Setup> {
        let ds = data.load()?;
        let (train, test) = to_datasets(&ds)?;
        let (server, sha) = load_server_for(model, &ds.name)?;
        let (rows, cols) = server.input_shape();
        ensure!(
            rows * cols == train.rows * train.cols,
            "{verb}: the server model {} takes {rows}×{cols} = {} values per sample, dataset {} has {}×{} = {}",
            model.display(),
            rows * cols,
            ds.name,
            train.rows,
            train.cols,
            train.rows * train.cols
        );
        Ok(Setup {
            dataset: ds.name.clone(),
            train,
            test,
            server,
            sha,
        })
    }
}
