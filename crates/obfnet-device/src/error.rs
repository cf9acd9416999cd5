//! Typed errors of the device client, in three classes with distinct exit codes.

use std::path::PathBuf;

/// What kind of failure an [`Error`] is; each class has its own process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The device's own input is wrong: a sample, the bundle, an option. Exit code 2.
    BadInput,
    /// The server or broker could not be reached, or did not answer in time after every
    /// retry. Exit code 3.
    Unreachable,
    /// The server answered but refused: bad API key, unknown model, a bundle made for another
    /// server model, an invalid request, or an answer the device cannot read. Exit code 4.
    Rejected,
    /// A fault of the device itself (e.g. no randomness available). Exit code 1.
    Internal,
}

impl ErrorClass {
    /// The process exit code of this class (`0` is success).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Internal => 1,
            ErrorClass::BadInput => 2,
            ErrorClass::Unreachable => 3,
            ErrorClass::Rejected => 4,
        }
    }
}

/// An error of the device client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A sample file could not be read or does not fit the bundle.
    #[error("sample {path}: {reason}")]
    Sample {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A dataset-format error from `obfnet-data` (IDX, WAV).
    #[error(transparent)]
    Data(#[from] obfnet_data::Error),
    /// The bundle could not be read or failed validation.
    #[error("bundle {path}: {source}")]
    Bundle {
        /// The bundle file.
        path: PathBuf,
        /// Why it was refused.
        source: obfnet_core::Error,
    },
    /// An option or setting is invalid.
    #[error("invalid setting {field}: {reason}")]
    Config {
        /// The option.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The bundle was trained against another server model than the server runs.
    #[error(
        "the bundle was made for server model {bundle}, but the server's model is {server} \
         (refusing to send: the server would answer garbage)"
    )]
    ModelMismatch {
        /// sha256 recorded in the bundle.
        bundle: String,
        /// sha256 of the server's model (published by it or pinned by the user).
        server: String,
    },
    /// The server publishes the bundles it issued for its model, and the device's bundle file
    /// is not one of them (an outdated, foreign or altered bundle).
    #[error(
        "the bundle's sha256 is {bundle}, not one the server issued for its model ({published}); \
         fetch a current bundle from the server's owner"
    )]
    BundleNotIssued {
        /// sha256 of the device's bundle file.
        bundle: String,
        /// The sha256 the server publishes, comma-separated.
        published: String,
    },
    /// The server or broker could not be reached (after every retry).
    #[error("{endpoint} unreachable: {reason}")]
    Unreachable {
        /// Where.
        endpoint: String,
        /// What happened.
        reason: String,
    },
    /// The server refused the request.
    #[error("{endpoint} refused the request ({status}): {message}")]
    Rejected {
        /// Where.
        endpoint: String,
        /// The HTTP status, gRPC code or MQTT `status` property.
        status: String,
        /// The server's message.
        message: String,
    },
    /// The server's answer could not be read.
    #[error("{endpoint} sent an unreadable answer: {reason}")]
    BadReply {
        /// Where.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The random generator or the runtime failed.
    #[error("device fault: {0}")]
    Internal(String),
}

impl Error {
    /// The class (and so the exit code) of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Sample { .. } | Error::Data(_) | Error::Bundle { .. } | Error::Config { .. } => {
                ErrorClass::BadInput
            }
            Error::Unreachable { .. } => ErrorClass::Unreachable,
            Error::ModelMismatch { .. }
            | Error::BundleNotIssued { .. }
            | Error::Rejected { .. }
            | Error::BadReply { .. } => ErrorClass::Rejected,
            Error::Internal(_) => ErrorClass::Internal,
        }
    }

    /// Shorthand for [`ErrorClass::exit_code`] of [`Error::class`].
    pub fn exit_code(&self) -> u8 {
        self.class().exit_code()
    }

    pub(crate) fn sample(path: &std::path::Path, reason: impl Into<String>) -> Error {
        Error::Sample {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

impl From<obfnet_dsp::ConfigError> for Error {
    fn from(e: obfnet_dsp::ConfigError) -> Error {
        Error::Config {
            field: e.field,
            reason: e.reason,
        }
    }
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
