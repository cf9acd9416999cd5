//! Frozen ONNX server models for obfnet: a `.onnx` file is parsed **at run time** with
//! [`onnx-ir`](https://docs.rs/onnx-ir) (the parser of burn 0.22's ONNX importer, pinned to
//! the same version; pure Rust, no protoc) and executed node by node with burn tensor ops.
//!
//! The weights become plain (non-`require_grad`) tensors on the device the model is loaded on;
//! on burn's autodiff device gradients flow through the graph to its *input* (so obfuscators train
//! against the frozen model) and never to its weights.
//!
//! ```no_run
//! # fn main() -> obfnet_onnx::Result<()> {
//! use burn::tensor::{Device, Tensor};
//! let device = Device::flex().autodiff();
//! let model = obfnet_onnx::OnnxModel::load("model.onnx".as_ref(), &device)?;
//! let x = Tensor::<4>::zeros([2, 1, 28, 28], &device);
//! let logits = model.forward(x)?; // [2, classes]
//! # let _ = logits; Ok(()) }
//! ```
//!
//! Supported operators: see [`SUPPORTED_OPS`]. Anything else is an
//! [`Error::UnsupportedOp`] naming the operator, the node and the opset, at load time.

mod error;
mod exec;
mod opset;
mod sidecar;
mod value;
pub mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use onnx_ir::{ArgType, Node, OnnxGraphBuilder};

pub use error::{Error, Result};
pub use sidecar::{Preprocess, SIDECAR_VERSION};
pub use value::MAX_RANK;

use value::{FT, Value};

/// The ONNX operators obfnet-onnx executes (ONNX names). `Shape`, `Gather`, `Unsqueeze`,
/// `Squeeze`, `Concat`, `Constant` and `Cast` are meant for shape arithmetic (e.g. PyTorch's
/// `x.view(x.size(0), -1)`) but work on float tensors too.
pub const SUPPORTED_OPS: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "Softmax",
    "LogSoftmax",
    "Conv (1-D and 2-D)",
    "Gemm",
    "MatMul",
    "MaxPool (1-D and 2-D)",
    "AveragePool (1-D and 2-D)",
    "GlobalAveragePool",
    "BatchNormalization",
    "Flatten",
    "Reshape",
    "Transpose",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Constant",
    "Cast",
    "Dropout",
    "Identity",
];

/// A frozen ONNX classifier, ready to run on one device.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    path: PathBuf,
    nodes: Vec<Node>,
    consts: HashMap<String, Value>,
    input_name: String,
    input_shape: Vec<Option<usize>>,
    output_name: String,
    opset: i64,
    preprocess: Preprocess,
    device: Device,
}

impl OnnxModel {
    /// Loads `path` and its sidecar (`model.obfnet.json`, see [`Preprocess`]; the default
    /// when absent) onto `device`, checking that every node is supported.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Parse`], [`Error::Sidecar`], [`Error::UnsupportedOp`],
    /// [`Error::Interface`].
    pub fn load(path: &Path, device: &Device) -> Result<OnnxModel> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let preprocess = Preprocess::load_for(path)?;
        Self::from_bytes(&bytes, path, preprocess, device)
    }

    /// Parses a model held in memory (`path` names it in messages).
    ///
    /// # Errors
    /// As [`OnnxModel::load`].
    pub fn from_bytes(
        bytes: &[u8],
        path: &Path,
        preprocess: Preprocess,
        device: &Device,
    ) -> Result<OnnxModel> {
        let opsets = opset::opset_imports(bytes);
        let opset = opsets
            .iter()
            .find(|(d, _)| d.is_empty() || d == "ai.onnx")
            .map_or(0, |(_, v)| *v);
        let graph = OnnxGraphBuilder::new()
            .parse_bytes(bytes)
            .map_err(|e| Error::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;

        let dynamic_inputs: Vec<_> = graph.inputs.iter().filter(|a| a.value().is_none()).collect();
        let [input] = dynamic_inputs.as_slice() else {
            return Err(Error::Interface(format!(
                "the graph must have exactly one (non-initializer) input, it has {}",
                dynamic_inputs.len()
            )));
        };
        let input_shape = match &input.ty {
            ArgType::Tensor(t) if t.dtype.is_float() => {
                t.static_shape.clone().unwrap_or_else(|| vec![None; t.rank])
            }
            other => {
                return Err(Error::Interface(format!(
                    "the input {:?} must be a float tensor, it is {other}",
                    input.name
                )));
            }
        };
        if input_shape.is_empty() || input_shape.len() > MAX_RANK {
            return Err(Error::Interface(format!(
                "the input must be a tensor of rank 1..={MAX_RANK} with the batch first, its rank is {}",
                input_shape.len()
            )));
        }
        let [output] = graph.outputs.as_slice() else {
            return Err(Error::Interface(format!(
                "the graph must have exactly one output, it has {}",
                graph.outputs.len()
            )));
        };

        let mut consts = HashMap::new();
        for node in &graph.nodes {
            exec::check_supported(node, opset).map_err(|e| with_original_name(e, bytes, &graph.nodes))?;
            // onnx-ir embeds initializers in the consuming node's argument and clears its name
            // (a "static" argument): those are keyed by node name and input index.
            for (i, arg) in node.inputs().iter().enumerate() {
                if arg.name.is_empty()
                    && arg.is_static()
                    && let Some(data) = arg.value()
                {
                    consts.insert(exec::static_key(node, i), exec::const_value(data, device));
                }
            }
            for arg in node.inputs().iter().chain(node.outputs()) {
                if consts.contains_key(&arg.name) || arg.name.is_empty() {
                    continue;
                }
                if let Some(data) = arg.value() {
                    consts.insert(arg.name.clone(), exec::const_value(data, device));
                }
            }
        }
        if let Some(c) = input_shape
            .get(1)
            .copied()
            .flatten()
            .filter(|_| input_shape.len() >= 3)
        {
            preprocess.check_channels(c).map_err(|message| Error::Sidecar {
                path: Preprocess::sidecar_path(path),
                message,
            })?;
        }
        Ok(OnnxModel {
            path: path.to_owned(),
            input_name: input.name.clone(),
            output_name: output.name.clone(),
            nodes: graph.nodes,
            consts,
            input_shape,
            opset,
            preprocess,
            device: device.clone(),
        })
    }

    /// The file the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The default-domain opset the model imports (0 if the file declares none).
    pub fn opset(&self) -> i64 {
        self.opset
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The graph input's shape, batch dimension first; `None` marks a symbolic dimension.
    pub fn input_shape(&self) -> &[Option<usize>] {
        &self.input_shape
    }

    /// The per-sample input shape (all dimensions but the first, e.g. `[3, 32, 32]` or `[128]`).
    ///
    /// # Errors
    /// [`Error::Interface`] if a non-batch dimension is symbolic.
    pub fn sample_shape(&self) -> Result<Vec<usize>> {
        self.input_shape[1..]
            .iter()
            .map(|d| {
                d.ok_or_else(|| {
                    Error::Interface(format!(
                        "input {:?} has a symbolic non-batch dimension ({:?}); obfnet needs fixed \
                         sample shapes",
                        self.input_name, self.input_shape
                    ))
                })
            })
            .collect()
    }

    /// The preprocessing from the sidecar (or the default).
    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// Replaces the preprocessing.
    ///
    /// # Errors
    /// [`Error::Sidecar`] if `mean`/`std` do not fit the model's channel count.
    pub fn set_preprocess(&mut self, preprocess: Preprocess) -> Result<()> {
        if self.input_shape.len() >= 3
            && let Some(c) = self.input_shape[1]
        {
            preprocess.check_channels(c).map_err(|message| Error::Sidecar {
                path: Preprocess::sidecar_path(&self.path),
                message,
            })?;
        }
        self.preprocess = preprocess;
        Ok(())
    }

    /// Per-channel `(a, b)` such that the model input is `raw_u8 · a[c] + b[c]` (channel = axis 1
    /// for inputs of rank ≥ 3, a single channel otherwise).
    pub fn input_affine(&self) -> (Vec<f32>, Vec<f32>) {
        let channels = if self.input_shape.len() >= 3 {
            self.input_shape[1].unwrap_or(1)
        } else {
            1
        };
        self.preprocess.affine(channels)
    }

    /// Preprocessed model input for u8 samples of `n` samples in the graph's layout (row-major,
    /// `n · prod(sample_shape)` values).
    ///
    /// # Errors
    /// [`Error::Shape`] if the length does not fit, [`Error::Interface`] for symbolic sample dims.
    pub fn input_from_u8(&self, samples: &[u8], n: usize) -> Result<FloatInput> {
        let sample = self.sample_shape()?;
        let per: usize = sample.iter().product();
        if samples.len() != n * per {
            return Err(Error::Shape {
                node: "input".into(),
                message: format!(
                    "{} values for {n} samples of shape {sample:?} ({} expected)",
                    samples.len(),
                    n * per
                ),
            });
        }
        let (a, b) = self.input_affine();
        let channels = a.len();
        let inner = if channels > 1 { per / channels } else { per };
        let data: Vec<f32> = samples
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = if channels > 1 { (i / inner) % channels } else { 0 };
                f32::from(v) * a[c] + b[c]
            })
            .collect();
        let mut dims = vec![n];
        dims.extend(sample);
        Ok(FloatInput(FT::from_data(
            burn::tensor::TensorData::new(data, dims),
            &self.device,
        )))
    }

    /// Runs the graph on an input already in the model's own input space (after preprocessing)
    /// and returns the output as `[batch, rest]` (the logits of a classifier).
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not fit the graph's input, or a node's shapes do not fit.
    pub fn forward<const N: usize>(&self, x: Tensor<N>) -> Result<Tensor<2>> {
        if N > MAX_RANK {
            return Err(Error::Shape {
                node: "input".into(),
                message: format!("rank {N} is above {MAX_RANK}"),
            });
        }
        self.forward_input(FloatInput(FT::from_tensor(x)))
    }

    /// [`OnnxModel::forward`] on a [`FloatInput`].
    ///
    /// # Errors
    /// As [`OnnxModel::forward`].
    pub fn forward_input(&self, x: FloatInput) -> Result<Tensor<2>> {
        let x = x.0;
        let dims = x.dims();
        let fits = dims.len() == self.input_shape.len()
            && dims
                .iter()
                .zip(&self.input_shape)
                .all(|(d, s)| s.is_none_or(|s| s == *d));
        if !fits {
            return Err(Error::Shape {
                node: "input".into(),
                message: format!(
                    "the model takes {:?} ({}), got {dims:?}",
                    self.input_shape, self.input_name
                ),
            });
        }
        let mut env: HashMap<String, Value> = HashMap::new();
        env.insert(self.input_name.clone(), Value::F(x));
        for node in &self.nodes {
            let out = exec::run_node(node, &env, &self.consts, self.opset, &self.device)?;
            if let (Some(v), Some(arg)) = (out, node.outputs().first()) {
                env.insert(arg.name.clone(), v);
            }
        }
        let out = match env
            .remove(&self.output_name)
            .or_else(|| self.consts.get(&self.output_name).cloned())
        {
            Some(Value::F(t)) => t,
            Some(Value::I(i)) => i.to_float(&self.device),
            None => {
                return Err(Error::Interface(format!(
                    "the graph output {:?} was never computed",
                    self.output_name
                )));
            }
        };
        let od = out.dims();
        let batch = od.first().copied().unwrap_or(1);
        let rest: usize = od.iter().skip(1).product();
        Ok(out.t.reshape([batch, rest]))
    }
}

/// A float model input of any rank ≤ [`MAX_RANK`] (from [`OnnxModel::input_from_u8`]).
#[derive(Debug, Clone)]
pub struct FloatInput(FT);

impl FloatInput {
    /// The input's shape.
    pub fn dims(&self) -> Vec<usize> {
        self.0.dims()
    }
}

/// onnx-ir renames every node to its type and a per-type counter (`"erf1"`: the first Erf),
/// and its outputs after that name (`"erf1_out1"`), so the file's node name is not kept. The
/// counter is the node's rank among the nodes of its type in graph order, so the file's name is
/// found again as the n-th node with that `op_type` in the file — when the file holds exactly
/// as many nodes of that type as onnx-ir's graph (otherwise, e.g. after a rewrite, onnx-ir's
/// name is kept rather than a guess).
fn with_original_name(e: Error, bytes: &[u8], nodes: &[Node]) -> Error {
    let Error::UnsupportedOp {
        op,
        node: ir_name,
        opset,
        detail,
    } = e
    else {
        return e;
    };
    let name = original_node_name(bytes, &ir_name, nodes).unwrap_or(ir_name);
    Error::UnsupportedOp {
        op,
        node: name,
        opset,
        detail,
    }
}

/// Splits onnx-ir's `"erf1"` into `("erf", 1)`.
fn split_counter(name: &str) -> Option<(&str, usize)> {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, n) = name.split_at(name.len() - digits);
    Some((prefix, n.parse().ok()?)).filter(|(p, _)| !p.is_empty())
}

fn original_node_name(bytes: &[u8], ir_name: &str, nodes: &[Node]) -> Option<String> {
    use onnx_ir::Message;
    let (prefix, n) = split_counter(ir_name)?;
    let ir_count = nodes
        .iter()
        .filter(|node| split_counter(node.name()).is_some_and(|(p, _)| p == prefix))
        .count();
    let model = onnx_ir::ModelProto::parse_from_bytes(bytes).ok()?;
    let same_type: Vec<_> = model
        .graph
        .node
        .iter()
        .filter(|node| {
            let standard = node.domain.is_empty() || node.domain == "ai.onnx";
            if prefix == "custom" {
                // onnx-ir's Custom: another domain, or an op_type it does not know
                !standard || node.op_type.parse::<onnx_ir::NodeType>().is_err()
            } else {
                standard && node.op_type.to_ascii_lowercase() == prefix
            }
        })
        .collect();
    if same_type.len() != ir_count {
        return None;
    }
    let name = &same_type.get(n.checked_sub(1)?)?.name;
    (!name.is_empty()).then(|| name.clone())
}
