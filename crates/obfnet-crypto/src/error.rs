/// Everything that can go wrong in the cryptographic baselines.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of its documented range.
    #[error("invalid parameter `{name}`: {reason}")]
    Parameter {
        /// The field of the config.
        name: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// The quantised network could overflow the plaintext space (HE) or the ring (2PC) for some
    /// valid input, so its result would be wrong; the worst case is given in bits.
    #[error(
        "the network's worst-case value needs {needed_bits:.1} bits but the {space} holds {available_bits:.1} signed bits"
    )]
    Overflow {
        /// Which space: "BFV plaintext modulus" or "ring Z_2^64".
        space: &'static str,
        /// log2 of the worst-case absolute value (+1 for the sign).
        needed_bits: f64,
        /// Signed bits available.
        available_bits: f64,
    },
    /// An input has the wrong size or a value outside its range.
    #[error("bad input: {0}")]
    Input(String),
    /// The HE backend was not compiled in (cargo feature `he` of `obfnet-crypto`).
    #[error("not compiled with homomorphic encryption (enable the cargo feature `he` of obfnet-crypto)")]
    NotCompiled,
    /// The HE library reported an error.
    #[error("homomorphic encryption: {0}")]
    He(String),
    /// A protocol message was malformed, too large, or out of order.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Socket or file I/O failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Reading the dataset failed.
    #[error("dataset: {0}")]
    Data(#[from] obfnet_data::Error),
    /// The training engine failed.
    #[error("training engine: {0}")]
    Nn(#[from] obfnet_nn::Error),
    /// Training diverged (the loss became NaN or infinite).
    #[error("training diverged at step {step} (loss {loss})")]
    Diverged {
        /// The step at which the loss stopped being finite.
        step: usize,
        /// The loss value.
        loss: f32,
    },
    /// A model file is malformed.
    #[error("model file: {0}")]
    Format(String),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
