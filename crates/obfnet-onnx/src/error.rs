use std::path::PathBuf;

/// Everything that can go wrong loading or running an ONNX server model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model (or its sidecar) could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// onnx-ir rejected the file (not ONNX, broken graph, type inference failed, …).
    #[error("cannot parse ONNX model {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// onnx-ir's message.
        message: String,
    },
    /// The graph uses an operator (or an operator setting) obfnet cannot execute.
    #[error(
        "unsupported ONNX operator {op} (node {node:?}, opset {opset}){}: obfnet-onnx supports {}",
        if detail.is_empty() { String::new() } else { format!(": {detail}") },
        crate::SUPPORTED_OPS.join(", ")
    )]
    UnsupportedOp {
        /// Operator type (e.g. `Resize`, or `domain::Op` for custom domains).
        op: String,
        /// Node name in the graph.
        node: String,
        /// The opset the model imports for the operator's domain (0 if unknown).
        opset: i64,
        /// What exactly is unsupported (an attribute value, a dynamic input, …); may be empty.
        detail: String,
    },
    /// The graph's inputs/outputs are not a single float tensor in, a single tensor out.
    #[error("unsupported model interface: {0}")]
    Interface(String),
    /// A tensor does not have the shape a node or the model's input expects.
    #[error("shape error in node {node:?}: {message}")]
    Shape {
        /// Node name (or `input`).
        node: String,
        /// What is wrong.
        message: String,
    },
    /// The sidecar JSON is invalid.
    #[error("invalid sidecar {path}: {message}")]
    Sidecar {
        /// The sidecar file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
