use std::path::PathBuf;

/// Errors of the training engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A dataset could not be read.
    #[error(transparent)]
    Data(#[from] obfnet_data::Error),
    /// The bundle format rejected what we tried to build or load.
    #[error("bundle: {0}")]
    Bundle(#[from] obfnet_core::Error),
    /// A configuration value is out of range.
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    /// A split (or the labels a step needs) is empty.
    #[error("data does not fit the model: {what} holds no samples")]
    EmptySplit {
        /// Which data.
        what: &'static str,
    },
    /// Samples of one size meet a model (or a split) of another.
    #[error("data does not fit the model: {expected_by} takes {}×{} inputs, {found_in} has {}×{}", expected.0, expected.1, found.0, found.1)]
    InputShape {
        /// What sets the expected size (`"the server model"`, `"the training split"`).
        expected_by: &'static str,
        /// Its (rows, cols).
        expected: (usize, usize),
        /// What does not fit.
        found_in: &'static str,
        /// Its (rows, cols).
        found: (usize, usize),
    },
    /// A flat buffer does not hold whole samples.
    #[error(
        "data does not fit the model: expected {samples} samples × {per_sample} values, got {found} values"
    )]
    SampleCount {
        /// Samples (labels) given.
        samples: usize,
        /// Values per sample the model takes.
        per_sample: usize,
        /// Values given.
        found: usize,
    },
    /// A server model outside what LeNet-5 supports.
    #[error(
        "unsupported server model {arch} {rows}×{cols} with {classes} classes (LeNet-5 takes inputs from \
         12×12 to 1024×1024 and 2..=1000 classes)"
    )]
    UnsupportedModel {
        /// The architecture variant.
        arch: String,
        /// Input rows.
        rows: usize,
        /// Input columns.
        cols: usize,
        /// Classes.
        classes: usize,
    },
    /// A bundle whose input is not a single-channel image.
    #[error("bundle input shape {shape:?} is not [1, rows, cols]")]
    BundleInputShape {
        /// The shape in the manifest.
        shape: Vec<usize>,
    },
    /// A bundle net without f32 weights for a layer (an int8 bundle loaded into the engine).
    #[error("net {net} layer {layer} has no f32 weights")]
    MissingWeights {
        /// Net index.
        net: usize,
        /// Layer index.
        layer: usize,
    },
    /// Reading or writing a file failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A weights file could not be stored or loaded by burn's safetensors store.
    #[error("weights file {path}: {reason}")]
    Weights { path: PathBuf, reason: String },
    /// A saved `config.json` could not be parsed.
    #[error("config {path}: {source}")]
    ConfigFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The backend failed to read a tensor back to the host.
    #[error("tensor backend: reading {what} back failed: {reason}")]
    TensorRead {
        /// Which tensor.
        what: &'static str,
        /// The backend's message.
        reason: String,
    },
    /// A file written by a newer (or unknown) schema.
    #[error("{}: schema version {found}, this obfnet reads versions 1 to {supported}", path.display())]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// Sizes that do not fit, found by the fast path or the ONNX server model (not yet split into
    /// typed variants like [`Error::InputShape`]).
    #[error("data does not fit the model: {0}")]
    Shape(String),
    /// The tensor backend failed (fast path, ONNX server model).
    #[error("tensor backend: {0}")]
    Backend(String),
    /// The ONNX server model could not be loaded or run (unsupported operator with its node and
    /// opset, bad sidecar, shape mismatch inside the graph, …).
    #[error("ONNX server model: {0}")]
    Onnx(#[from] obfnet_onnx::Error),
    /// A job that needs the project's LeNet-5 was given an ONNX server model.
    #[error(
        "`obfnet {verb}` does not take an ONNX server model yet ({}): it needs the LeNet-5 \
         directory written by `obfnet train-model`. ONNX models work with train-obf, evaluate and \
         quickstart --model",
        path.display()
    )]
    OnnxNotSupported {
        /// The verb (job) that refused it, e.g. `"attack"`.
        verb: &'static str,
        /// The `.onnx` file given.
        path: PathBuf,
    },
    /// Training diverged (the loss became NaN or infinite).
    #[error("training diverged at step {step}: loss is {loss}")]
    Diverged { step: usize, loss: f32 },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
