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
    /// Two sizes that must agree do not.
    #[error("{what}: expected {expected}, got {got}")]
    Mismatch {
        /// What was compared.
        what: &'static str,
        /// The size required.
        expected: usize,
        /// The size given.
        got: usize,
    },
    /// An input that must not be empty is.
    #[error("{what} is empty")]
    Empty {
        /// What was empty.
        what: &'static str,
    },
    /// Values that are not a whole number of `rows × cols` samples (of at least the window, for
    /// the 2-D SSIM).
    #[error(
        "{values} values are not a whole number of {rows}×{cols} samples (the 2-D SSIM also needs each side ≥ 11)"
    )]
    ImageShape {
        /// Values given.
        values: usize,
        /// Image height.
        rows: usize,
        /// Image width.
        cols: usize,
    },
    /// A ROC AUC over one class only.
    #[error("AUC needs both classes ({positives} positives, {negatives} negatives)")]
    OneClass {
        /// Positive labels.
        positives: usize,
        /// Negative labels.
        negatives: usize,
    },
    /// A label outside the classes the training split has.
    #[error("label {label} has no training images ({classes} classes)")]
    UnknownLabel {
        /// The label.
        label: usize,
        /// Classes in the training split.
        classes: usize,
    },
    /// A value that must be finite is NaN or infinite.
    #[error("non-finite value in {0}")]
    NonFinite(&'static str),
    /// The tensor backend failed to read back a tensor.
    #[error("tensor backend: {op}: {detail}")]
    Backend {
        /// The operation.
        op: &'static str,
        /// The backend's message.
        detail: String,
    },
    /// Autodiff produced no gradient where one was required.
    #[error("no gradient for {what}")]
    MissingGradient {
        /// The tensor that should have one.
        what: &'static str,
    },
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
