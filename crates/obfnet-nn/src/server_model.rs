//! The frozen server model behind the obfuscators: the project's own [`LeNet`] or any ONNX
//! classifier ([`OnnxServer`], run with `obfnet-onnx` on the same burn device).
//!
//! Everything in obfnet works on flattened samples in the project's normalised space
//! ([`crate::NORMALISATION`]): `[n, rows·cols]`. An ONNX model has its own input layout
//! (`[N, C, H, W]`, `[N, L]`, …) and its own preprocessing (its sidecar, see
//! [`obfnet_onnx::Preprocess`]); [`OnnxServer`] maps one onto the other with a per-channel affine
//! map (exact: both are affine in the raw `u8` value) and a reshape, so obfuscators, attacks and
//! evaluation see the same `[n, rows·cols]` interface for both kinds of model.
//!
//! `rows × cols` of an ONNX model: its per-sample shape `[C, H, W]` → `(C·H) × W`, `[H, W]` →
//! `H × W`, `[L]` → `1 × L` — the same mapping as `obfnet_data::UserDataset::to_image_dataset`.
//!
//! [`crate::train_obfuscators`], [`crate::server_accuracy`] and
//! [`crate::server_obfuscated_accuracies`] take either kind.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use obfnet_onnx::OnnxModel;
use obfnet_onnx::writer::{Attr, Dim, GraphWriter};

use crate::lenet::LeNet;
use crate::{Error, NORMALISATION, Result};

/// Whether `path` names an ONNX file (extension `.onnx`, any case) rather than a LeNet-5
/// directory: how every `--model` value is told apart.
pub fn is_onnx_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// A frozen classifier the obfuscators are trained against.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum ServerModel {
    /// The project's LeNet-5 (`obfnet train-model`).
    LeNet(LeNet),
    /// An ONNX graph loaded at run time.
    Onnx(OnnxServer),
}

/// An ONNX classifier seen through obfnet's `[n, rows·cols]` normalised interface.
#[derive(Debug, Clone)]
pub struct OnnxServer {
    /// On the autodiff device (training: gradients flow to the input).
    train_model: OnnxModel,
    /// On the plain device (evaluation).
    eval_model: OnnxModel,
    sample_shape: Vec<usize>,
    rows: usize,
    cols: usize,
    classes: usize,
    /// Per-value `(a, b)`: model input = normalised · a + b, for one sample (`rows·cols` values).
    affine: (Vec<f32>, Vec<f32>),
    /// The file it was read from.
    path: PathBuf,
    /// sha256 of the file's bytes (the id bundles record).
    sha256: [u8; 32],
}

fn onnx_err(e: obfnet_onnx::Error) -> Error {
    Error::Onnx(e)
}

impl OnnxServer {
    /// Loads `path` (and its sidecar `model.obfnet.json`, see [`obfnet_onnx::Preprocess`]) onto
    /// [`crate::default_device`], checks it takes fixed-size samples and yields `[n, classes]`.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::Onnx`] for every model problem
    /// (unsupported operator with node and opset, bad sidecar, symbolic sample dimension, …),
    /// [`Error::Shape`] for a graph that does not yield ≥ 2 logits per sample.
    pub fn load(path: &Path) -> Result<OnnxServer> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            op: "read",
            path: path.to_owned(),
            source,
        })?;
        let pre = obfnet_onnx::Preprocess::load_for(path).map_err(onnx_err)?;
        let device = crate::default_device();
        let train_model = OnnxModel::from_bytes(&bytes, path, pre.clone(), &device).map_err(onnx_err)?;
        let eval_model =
            OnnxModel::from_bytes(&bytes, path, pre, &device.clone().inner()).map_err(onnx_err)?;
        let sample_shape = eval_model.sample_shape().map_err(onnx_err)?;
        let (rows, cols) = match sample_shape.as_slice() {
            [] => (1, 1),
            [l] => (1, *l),
            [rest @ .., last] => (rest.iter().product(), *last),
        };
        let d = rows * cols;
        // u8 value v: normalised x = (v·s − m)/σ  ⇔  v = (x·σ + m)/s; model input = v·a_c + b_c
        let (a, b) = eval_model.input_affine();
        let channels = a.len();
        let inner = if channels > 1 { d / channels } else { d };
        let (s, m, sd) = (NORMALISATION.scale, NORMALISATION.mean, NORMALISATION.std);
        let (mut aa, mut bb) = (Vec::with_capacity(d), Vec::with_capacity(d));
        for i in 0..d {
            let c = if channels > 1 { (i / inner) % channels } else { 0 };
            aa.push(sd / s * a[c]);
            bb.push(m / s * a[c] + b[c]);
        }
        let mut server = OnnxServer {
            train_model,
            eval_model,
            sample_shape,
            rows,
            cols,
            classes: 0,
            affine: (aa, bb),
            path: path.to_owned(),
            sha256: obfnet_core::sha256(&bytes),
        };
        let probe = Tensor::<2>::zeros([1, d], &device.inner());
        let out = server.forward_on(&server.eval_model, probe)?;
        server.classes = out.dims()[1];
        if server.classes < 2 {
            return Err(Error::Shape(format!(
                "ONNX server model {} yields {} value(s) per sample; a classifier needs ≥ 2 logits",
                path.display(),
                server.classes
            )));
        }
        Ok(server)
    }

    /// The model's per-sample input shape (e.g. `[3, 32, 32]`).
    pub fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    /// The file the model was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// sha256 of the ONNX file (the server-model id a bundle trained against it records).
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// The underlying ONNX model (plain device).
    pub fn model(&self) -> &OnnxModel {
        &self.eval_model
    }

    fn forward_on(&self, model: &OnnxModel, x: Tensor<2>) -> Result<Tensor<2>> {
        let [n, d] = x.dims();
        if d != self.affine.0.len() {
            return Err(Error::Shape(format!(
                "the ONNX server model takes {} values per sample ({:?}), got {d}",
                self.affine.0.len(),
                self.sample_shape
            )));
        }
        let dev = x.device();
        let a = Tensor::<2>::from_data(TensorData::new(self.affine.0.clone(), [1, d]), &dev);
        let b = Tensor::<2>::from_data(TensorData::new(self.affine.1.clone(), [1, d]), &dev);
        let x = x * a + b;
        let mut dims = vec![n];
        dims.extend(&self.sample_shape);
        let out = match dims.len() {
            2 => model.forward(x),
            3 => model.forward(x.reshape([dims[0], dims[1], dims[2]])),
            4 => model.forward(x.reshape([dims[0], dims[1], dims[2], dims[3]])),
            5 => model.forward(x.reshape([dims[0], dims[1], dims[2], dims[3], dims[4]])),
            r => {
                return Err(Error::Shape(format!(
                    "ONNX input rank {r} is not supported (2..=5)"
                )));
            }
        };
        out.map_err(onnx_err)
    }
}

impl ServerModel {
    /// Loads an ONNX server model (see [`OnnxServer::load`]).
    ///
    /// # Errors
    /// As [`OnnxServer::load`].
    pub fn load_onnx(path: &Path) -> Result<ServerModel> {
        OnnxServer::load(path).map(ServerModel::Onnx)
    }

    /// The LeNet-5, for jobs that only run the project's own model; `verb` names the job in the
    /// error.
    ///
    /// # Errors
    /// [`Error::OnnxNotSupported`] for an ONNX model.
    pub fn lenet_for(&self, verb: &'static str) -> Result<&LeNet> {
        match self {
            ServerModel::LeNet(m) => Ok(m),
            ServerModel::Onnx(m) => Err(Error::OnnxNotSupported {
                verb,
                path: m.path.clone(),
            }),
        }
    }

    /// `(rows, cols)` of the flattened samples the model takes.
    pub fn input_shape(&self) -> (usize, usize) {
        match self {
            ServerModel::LeNet(m) => m.input_shape(),
            ServerModel::Onnx(m) => (m.rows, m.cols),
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        match self {
            ServerModel::LeNet(m) => m.config().classes,
            ServerModel::Onnx(m) => m.classes,
        }
    }

    /// Class logits for `x` `[n, rows·cols]` (normalised) on the **autodiff** device; the weights
    /// are frozen, gradients reach `x`. For a LeNet, pass a frozen copy (see
    /// [`ServerModel::frozen`]).
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not fit the model.
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        match self {
            ServerModel::LeNet(m) => Ok(m.forward(x)),
            ServerModel::Onnx(m) => m.forward_on(&m.train_model, x),
        }
    }

    /// Class logits on the plain (non-autodiff) device, for evaluation.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not fit the model.
    pub fn forward_eval(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        match self {
            ServerModel::LeNet(m) => Ok(m.valid().forward(x)),
            ServerModel::Onnx(m) => m.forward_on(&m.eval_model, x),
        }
    }

    /// A copy whose parameters require no gradient, on the autodiff device.
    pub fn frozen(&self) -> ServerModel {
        match self {
            ServerModel::LeNet(m) => ServerModel::LeNet(m.clone().fork(&crate::default_device()).freeze()),
            // ONNX weights are created as plain constants: nothing tracks a gradient for them.
            ServerModel::Onnx(m) => ServerModel::Onnx(m.clone()),
        }
    }

    /// Whether any weight holds a gradient in `grads` (never, for a frozen model). For ONNX
    /// the weights are untracked constants, so this is `false` by construction.
    pub fn has_any_gradient(&self, grads: &burn::tensor::Gradients) -> bool {
        match self {
            ServerModel::LeNet(m) => m.has_any_gradient(grads),
            ServerModel::Onnx(_) => false,
        }
    }
}

/// The ONNX file (opset 13) of a LeNet-5, with a symbolic batch: `Conv → Relu → MaxPool → Conv
/// → Relu → MaxPool → Flatten → Gemm → Relu → Gemm → Relu → Gemm`, input `[N, 1, rows, cols]`.
/// Pair it with [`lenet_onnx_sidecar`] (the project's normalisation) next to the file.
///
/// # Errors
/// [`Error::Backend`] if the weights cannot be read.
pub fn lenet_to_onnx(model: &LeNet) -> Result<Vec<u8>> {
    let cfg = model.config();
    let [rows, cols] = cfg.input;
    let classes = cfg.classes;
    let flat = {
        let side = |n: usize| (n / 2).saturating_sub(4) / 2;
        16 * side(rows).max(1) * side(cols).max(1)
    };
    let shapes: [&[usize]; 10] = [
        &[6, 1, 5, 5],
        &[16, 6, 5, 5],
        &[flat, 120],
        &[120, 84],
        &[84, classes],
        &[6],
        &[16],
        &[120],
        &[84],
        &[classes],
    ];
    let names = ["w1", "w2", "w3", "w4", "w5", "b1", "b2", "b3", "b4", "b5"];
    let params = model.parameters_flat()?;
    let need: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
    if params.len() != need {
        return Err(Error::Shape(format!(
            "LeNet has {} parameters, the ONNX layout expects {need}",
            params.len()
        )));
    }
    let n = || Dim::Symbolic("N".into());
    let mut g = GraphWriter::new(
        "x",
        vec![n(), Dim::Fixed(1), Dim::Fixed(rows), Dim::Fixed(cols)],
        "logits",
        vec![n(), Dim::Fixed(classes)],
    );
    let mut off = 0;
    for (name, shape) in names.iter().zip(shapes) {
        let len: usize = shape.iter().product();
        g.init_f32(name, shape, params[off..off + len].to_vec());
        off += len;
    }
    let pool = || {
        vec![
            Attr::Ints("kernel_shape", vec![2, 2]),
            Attr::Ints("strides", vec![2, 2]),
        ]
    };
    g.node(
        "Conv",
        "conv1",
        &["x", "w1", "b1"],
        &["c1"],
        vec![Attr::Ints("pads", vec![2, 2, 2, 2])],
    )
    .node("Relu", "relu1", &["c1"], &["r1"], vec![])
    .node("MaxPool", "pool1", &["r1"], &["p1"], pool())
    .node("Conv", "conv2", &["p1", "w2", "b2"], &["c2"], vec![])
    .node("Relu", "relu2", &["c2"], &["r2"], vec![])
    .node("MaxPool", "pool2", &["r2"], &["p2"], pool())
    .node("Flatten", "flatten", &["p2"], &["f"], vec![Attr::Int("axis", 1)])
    .node("Gemm", "fc1", &["f", "w3", "b3"], &["h1"], vec![])
    .node("Relu", "relu3", &["h1"], &["a1"], vec![])
    .node("Gemm", "fc2", &["a1", "w4", "b4"], &["h2"], vec![])
    .node("Relu", "relu4", &["h2"], &["a2"], vec![])
    .node("Gemm", "fc3", &["a2", "w5", "b5"], &["logits"], vec![]);
    Ok(g.finish(13))
}

/// What [`export_server_onnx`] wrote (printed by `obfnet export-onnx --json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OnnxExport {
    /// Schema version ([`OnnxExport::VERSION`]).
    pub schema_version: u32,
    /// The `.onnx` file.
    pub model: PathBuf,
    /// Its preprocessing sidecar (`*.obfnet.json`).
    pub sidecar: PathBuf,
    /// sha256 of the `.onnx` file, hex: the server-model id bundles trained against it record.
    pub sha256: String,
    /// The LeNet-5 directory it was exported from.
    pub source: PathBuf,
    /// sha256 of that directory's weights, hex (the id of its native bundles).
    pub source_sha256: String,
    /// The dataset the LeNet-5 was trained on.
    pub dataset: String,
    /// Input `[rows, cols]` (the ONNX input is `[N, 1, rows, cols]`).
    pub input: [usize; 2],
    /// Classes (the ONNX output is `[N, classes]`).
    pub classes: usize,
}

impl OnnxExport {
    /// Current schema version.
    pub const VERSION: u32 = 1;
}

/// Writes the LeNet-5 of `dir` (as saved by `obfnet train-model`) as the ONNX file `out`
/// ([`lenet_to_onnx`], opset 13, symbolic batch) with its sidecar next to it (the normalisation
/// the model was trained with). The `.onnx` file is written atomically; the export is checked
/// by loading it back ([`OnnxServer::load`]).
///
/// # Errors
/// [`Error::Config`] if `out` does not end in `.onnx`; everything [`crate::load_server_model`]
/// refuses; I/O errors; [`Error::Onnx`] if the written file does not load back.
pub fn export_server_onnx(dir: &Path, out: &Path) -> Result<OnnxExport> {
    if !is_onnx_path(out) {
        return Err(Error::Config {
            field: "export-onnx --out",
            reason: format!("{} does not end in .onnx", out.display()),
        });
    }
    let (model, config, source_sha) = crate::load_server_model(dir)?;
    let bytes = lenet_to_onnx(&model)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            op: "create",
            path: parent.to_owned(),
            source,
        })?;
    }
    let [scale, mean, std] = config.normalisation;
    let sidecar = obfnet_onnx::Preprocess {
        scale,
        mean: vec![mean],
        std: vec![std],
        ..obfnet_onnx::Preprocess::default()
    };
    sidecar.save_for(out)?;
    obfnet_data::write_atomic(out, &bytes)?;
    let loaded = OnnxServer::load(out)?;
    Ok(OnnxExport {
        schema_version: OnnxExport::VERSION,
        model: out.to_owned(),
        sidecar: obfnet_onnx::Preprocess::sidecar_path(out),
        sha256: obfnet_core::hex(&loaded.sha256()),
        source: dir.to_owned(),
        source_sha256: obfnet_core::hex(&source_sha),
        dataset: config.dataset_name().to_owned(),
        input: config.model.input,
        classes: config.model.classes,
    })
}

/// The sidecar matching the project's normalisation ([`NORMALISATION`]), for a LeNet exported
/// with [`lenet_to_onnx`].
pub fn lenet_onnx_sidecar() -> obfnet_onnx::Preprocess {
    obfnet_onnx::Preprocess {
        scale: NORMALISATION.scale,
        mean: vec![NORMALISATION.mean],
        std: vec![NORMALISATION.std],
        ..obfnet_onnx::Preprocess::default()
    }
}
