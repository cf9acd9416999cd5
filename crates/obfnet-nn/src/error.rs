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
    /// Data does not fit the model (wrong image size, empty split, ...).
    #[error("data does not fit the model: {0}")]
    Shape(String),
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
    /// The backend failed to execute or read back a tensor.
    #[error("tensor backend: {0}")]
    Backend(String),
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
