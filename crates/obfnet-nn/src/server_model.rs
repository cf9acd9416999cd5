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
//! [`train_obfuscators_against`], [`server_accuracy`] and [`server_obfuscated_accuracies`] are
//! the entry points for either kind; for a LeNet they call the existing engine unchanged.

use std::path::Path;
use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use obfnet_onnx::OnnxModel;
use obfnet_onnx::writer::{Attr, Dim, GraphWriter};

use crate::config::{ObfReport, ObfTrainConfig, TrainEvent};
use crate::data::{Dataset, index_tensor};
use crate::eval::{accuracy, obfuscated_accuracies};
use crate::lenet::LeNet;
use crate::obf::{ObfStack, order_stream};
use crate::rng::SplitMix64;
use crate::step::scalar;
use crate::train::train_obfuscators;
use crate::{Error, NORMALISATION, Result};

const EVAL_CHUNK: usize = 500;

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
}

fn onnx_err(e: obfnet_onnx::Error) -> Error {
    Error::Shape(format!("ONNX server model: {e}"))
}

impl OnnxServer {
    /// Loads `path` (and its sidecar `model.obfnet.json`, see [`obfnet_onnx::Preprocess`]) onto
    /// [`crate::default_device`], checks it takes fixed-size samples and yields `[n, classes]`.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::Shape`] for every model problem
    /// (the message is `obfnet_onnx`'s: unsupported operator with node and opset, bad sidecar,
    /// symbolic sample dimension, …).
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

fn check_data(server: &ServerModel, data: &Dataset) -> Result<()> {
    if server.input_shape() != (data.rows, data.cols) {
        return Err(Error::Shape(format!(
            "the server model takes {:?} inputs, the data has {}×{}",
            server.input_shape(),
            data.rows,
            data.cols
        )));
    }
    Ok(())
}

fn count_correct(logits: Tensor<2>, labels: &[u8]) -> Result<usize> {
    let pred = logits
        .argmax(1)
        .into_data()
        .try_into_vec_as::<i64>()
        .map_err(|e| Error::Backend(format!("{e:?}")))?;
    Ok(pred
        .iter()
        .zip(labels)
        .filter(|&(&p, &l)| p == i64::from(l))
        .count())
}

/// Accuracy of `server` on the raw samples of `data` ([`accuracy`] for a LeNet).
///
/// # Errors
/// [`Error::Shape`] if the data does not fit the model.
pub fn server_accuracy(server: &ServerModel, data: &Dataset) -> Result<f64> {
    if let ServerModel::LeNet(m) = server {
        return accuracy(m, data);
    }
    check_data(server, data)?;
    let mut correct = 0usize;
    for start in (0..data.len()).step_by(EVAL_CHUNK) {
        let x = data.slice(start, EVAL_CHUNK).inner();
        let b = x.dims()[0];
        correct += count_correct(server.forward_eval(x)?, &data.labels[start..start + b])?;
    }
    Ok(correct as f64 / data.len() as f64)
}

/// Accuracy of `server(obf_k(x))` for each net of `stack` ([`obfuscated_accuracies`] for a LeNet).
///
/// # Errors
/// [`Error::Shape`] if the data does not fit the model or the obfuscators.
pub fn server_obfuscated_accuracies(
    server: &ServerModel,
    stack: &ObfStack,
    data: &Dataset,
) -> Result<Vec<f64>> {
    if let ServerModel::LeNet(m) = server {
        return obfuscated_accuracies(m, stack, data);
    }
    check_data(server, data)?;
    if stack.image_size() != (data.rows, data.cols) {
        return Err(Error::Shape(format!(
            "the obfuscators take {:?} samples, the data has {}×{}",
            stack.image_size(),
            data.rows,
            data.cols
        )));
    }
    let stack = stack.valid();
    let k = stack.k();
    let mut correct = vec![0usize; k];
    for start in (0..data.len()).step_by(EVAL_CHUNK) {
        let x = data.slice(start, EVAL_CHUNK).inner();
        let [b, d] = x.dims();
        let logits = server.forward_eval(stack.forward_all(x).reshape([k * b, d]))?;
        let pred = logits
            .argmax(1)
            .into_data()
            .try_into_vec_as::<i64>()
            .map_err(|e| Error::Backend(format!("{e:?}")))?;
        for (net, preds) in pred.chunks(b).enumerate() {
            correct[net] += preds
                .iter()
                .zip(&data.labels[start..start + b])
                .filter(|&(&p, &l)| p == i64::from(l))
                .count();
        }
    }
    Ok(correct
        .into_iter()
        .map(|c| c as f64 / data.len() as f64)
        .collect())
}

/// Trains K obfuscators against a frozen [`ServerModel`].
///
/// For [`ServerModel::LeNet`] this is exactly [`train_obfuscators`]. For an ONNX model it runs
/// the same recipe (same seeds, data order, Adam ε = 1e-8, cosine schedule, loss `K ·` mean CE,
/// one `K × batch` pass through the frozen model per step) with the ONNX graph as the frozen
/// model; privacy-aware training (`cfg.privacy`) is not wired for ONNX yet and is refused.
///
/// # Errors
/// As [`train_obfuscators`]; [`Error::Config`] for `privacy` with an ONNX model.
pub fn train_obfuscators_against(
    cfg: &ObfTrainConfig,
    server: &ServerModel,
    train: &Dataset,
    test: &Dataset,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<(ObfStack, ObfReport)> {
    let onnx = match server {
        ServerModel::LeNet(m) => return train_obfuscators(cfg, m, train, test, progress),
        ServerModel::Onnx(_) => server,
    };
    if cfg.privacy.is_some() {
        return Err(Error::Config {
            field: "privacy",
            reason: "privacy-aware training against an ONNX server model is not supported yet".into(),
        });
    }
    if cfg.k == 0 || cfg.k > 256 || cfg.epochs == 0 || cfg.batch_size == 0 {
        return Err(Error::Config {
            field: "k/epochs/batch_size",
            reason: format!(
                "k = {} (1..=256), epochs = {}, batch_size = {} must be positive",
                cfg.k, cfg.epochs, cfg.batch_size
            ),
        });
    }
    if !(cfg.learning_rate.is_finite() && cfg.learning_rate > 0.0) {
        return Err(Error::Config {
            field: "learning_rate",
            reason: format!("{} is not a positive number", cfg.learning_rate),
        });
    }
    for split in [train, test] {
        check_data(onnx, split)?;
    }
    let device = crate::default_device();
    let seeds = cfg.seeds();
    let k = cfg.k;
    let mut stack = ObfStack::new_design(
        cfg.arch,
        cfg.bottleneck,
        &seeds,
        train.rows,
        train.cols,
        cfg.clip_output,
        &device,
    )?;
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let ce = CrossEntropyLossConfig::new().init(&device);
    let n = cfg.limit.unwrap_or(usize::MAX).min(train.len());
    let d = train.dim();
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let total = steps_per_epoch * cfg.epochs;
    progress(TrainEvent::Phase {
        name: format!("{k} × {} against the frozen ONNX model", cfg.arch),
        total_steps: total as u64,
    });
    let mut rngs: Vec<SplitMix64> = seeds.iter().map(|&s| SplitMix64::new(order_stream(s))).collect();
    let (mut step_times, mut epoch_losses) = (Vec::with_capacity(total), Vec::new());
    let mut first_epoch_seconds = 0.0;
    let t0 = Instant::now();
    let mut step = 0;
    let mut idx = Vec::with_capacity(k * cfg.batch_size);
    for epoch in 0..cfg.epochs {
        let te = Instant::now();
        let orders: Vec<Vec<usize>> = rngs.iter_mut().map(|r| r.permutation(n)).collect();
        let mut loss_sum = 0.0f64;
        for s in 0..steps_per_epoch {
            let ts = Instant::now();
            let (lo, hi) = (s * cfg.batch_size, ((s + 1) * cfg.batch_size).min(n));
            let b = hi - lo;
            idx.clear();
            for order in &orders {
                idx.extend_from_slice(&order[lo..hi]);
            }
            let sel = index_tensor(&idx, &train.x.device());
            let x = train.x.clone().select(0, sel.clone()).reshape([k, b, d]);
            let y = train.y.clone().select(0, sel);
            let t = step as f64 / total.max(1) as f64;
            let floor = cfg.learning_rate * cfg.final_lr_fraction;
            let lr = floor + 0.5 * (cfg.learning_rate - floor) * (1.0 + (std::f64::consts::PI * t).cos());
            let obf = stack.forward(x.autodiff()).reshape([k * b, d]);
            let logits = onnx.forward(obf)?;
            let loss = ce.forward(logits, y.autodiff()).mul_scalar(k as f32);
            let value = scalar(&loss)? / k as f32;
            if !value.is_finite() {
                return Err(Error::Diverged { step, loss: value });
            }
            let mut g = loss.backward();
            let grads = GradientsParams::from_module(&mut g, &stack);
            stack = optim.step(lr, stack, grads);
            step_times.push(ts.elapsed().as_secs_f64());
            loss_sum += f64::from(value);
            step += 1;
            progress(TrainEvent::Step {
                step: step as u64,
                loss: value,
            });
        }
        let mean_loss = (loss_sum / steps_per_epoch as f64) as f32;
        epoch_losses.push(mean_loss);
        if epoch == 0 {
            first_epoch_seconds = te.elapsed().as_secs_f64();
        }
        progress(TrainEvent::Epoch { epoch, mean_loss });
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    progress(TrainEvent::Evaluating);
    let te = Instant::now();
    let stack = stack.valid();
    let raw_accuracy = server_accuracy(onnx, test)?;
    let accuracies = server_obfuscated_accuracies(onnx, &stack, test)?;
    step_times.sort_by(f64::total_cmp);
    let step_ms_median = step_times.get(step_times.len() / 2).map_or(0.0, |s| s * 1e3);
    let report = ObfReport {
        arch: cfg.arch,
        seeds,
        accuracies,
        raw_accuracy,
        epoch_losses,
        train_seconds,
        first_epoch_seconds,
        step_ms_median,
        eval_seconds: te.elapsed().as_secs_f64(),
        frozen_checked_steps: step,
        frozen_gradient_found: false,
        train_samples: n,
        privacy_epochs: Vec::new(),
    };
    Ok((stack, report))
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
