/// Errors of the privacy evaluation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The training engine failed (training a decoder, a shadow net, a classifier).
    #[error(transparent)]
    Nn(#[from] obfnet_nn::Error),
    /// A configuration value is out of range.
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    /// Inputs of mismatched or empty shape.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A value that must be finite is NaN or infinite.
    #[error("non-finite value in {0}")]
    NonFinite(&'static str),
    /// The tensor backend failed to execute or read back a tensor.
    #[error("tensor backend: {0}")]
    Backend(String),
    /// An optimisation diverged (loss NaN or infinite).
    #[error("{what} diverged at step {step}")]
    Diverged { what: &'static str, step: usize },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Config {
            field,
            reason: reason.into(),
        }
    }
}
