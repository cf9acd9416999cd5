use std::path::PathBuf;

/// What exactly was wrong with a client's request (also the `reason` label of the failure metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidKind {
    /// The body is not valid JSON or does not follow the protocol's JSON schema.
    Json,
    /// A protobuf message could not be decoded or breaks the protocol's rules.
    Protobuf,
    /// The binary tensor extension's framing is wrong (header length, chunk sizes).
    Binary,
    /// Wrong number of inputs or an input with an unknown name.
    Input,
    /// A datatype other than the ones the model accepts.
    Datatype,
    /// A shape the model cannot take, or one whose element count does not match the data.
    Shape,
    /// NaN or infinite values, or integers outside the datatype's range.
    Value,
    /// An unknown output was requested, or one the operator turned off.
    Output,
    /// A request parameter with a wrong type or an unsupported value.
    Parameter,
}

impl InvalidKind {
    /// A short stable name (metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidKind::Json => "json",
            InvalidKind::Protobuf => "protobuf",
            InvalidKind::Binary => "binary",
            InvalidKind::Input => "input",
            InvalidKind::Datatype => "datatype",
            InvalidKind::Shape => "shape",
            InvalidKind::Value => "value",
            InvalidKind::Output => "output",
            InvalidKind::Parameter => "parameter",
        }
    }
}

/// Errors of the inference service.
///
/// Client faults ([`Error::Invalid`], [`Error::ModelNotFound`], [`Error::TooLarge`],
/// [`Error::Unauthorized`]) map to 4xx / the matching gRPC codes with their message; overload
/// and timeouts to 503; everything else to a generic 500 whose details only go to the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request breaks the protocol or does not fit the model.
    #[error("{detail}")]
    Invalid {
        /// Which class of mistake.
        kind: InvalidKind,
        /// What to fix (never contains payload values).
        detail: String,
    },
    /// No such model or version here.
    #[error("unknown model {name:?}{}", version.as_ref().map(|v| format!(" version {v:?}")).unwrap_or_default())]
    ModelNotFound {
        /// Requested model name.
        name: String,
        /// Requested version, if any.
        version: Option<String>,
    },
    /// The request body is larger than the configured limit.
    #[error("request body larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Missing or wrong API key.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// All inference permits are taken: try again later.
    #[error("server overloaded: {limit} requests already in flight")]
    Overloaded {
        /// The configured concurrency limit.
        limit: usize,
    },
    /// The request did not finish within the configured time.
    #[error("request timed out after {ms} ms")]
    Timeout {
        /// The configured timeout.
        ms: u64,
    },
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
    /// The model failed while running (internal; never shown to clients).
    #[error("backend: {0}")]
    Backend(String),
    /// Loading the model failed.
    #[error("model: {0}")]
    Model(#[from] obfnet_nn::Error),
    /// A configuration value is out of range.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Reading a file or binding a socket failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// TLS setup failed (certificate or key unreadable or invalid).
    #[error("tls: {0}")]
    Tls(String),
    /// The MQTT worker could not be set up.
    #[error("mqtt: {0}")]
    Mqtt(String),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(kind: InvalidKind, detail: impl Into<String>) -> Error {
        Error::Invalid {
            kind,
            detail: detail.into(),
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The HTTP status this error answers with.
    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Error::Invalid { .. } => S::BAD_REQUEST,
            Error::ModelNotFound { .. } => S::NOT_FOUND,
            Error::TooLarge { .. } => S::PAYLOAD_TOO_LARGE,
            Error::Unauthorized => S::UNAUTHORIZED,
            Error::Overloaded { .. } | Error::Timeout { .. } | Error::ShuttingDown => S::SERVICE_UNAVAILABLE,
            _ => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the fault lies with the client or load (4xx / 503) rather than the server.
    pub fn is_client_fault(&self) -> bool {
        !self.http_status().is_server_error() || self.http_status() == http::StatusCode::SERVICE_UNAVAILABLE
    }

    /// The message a client sees: the error itself for client faults, a generic line otherwise
    /// (the details go to the log only).
    pub fn public_message(&self) -> String {
        if self.is_client_fault() {
            self.to_string()
        } else {
            "internal server error".to_string()
        }
    }

    /// A short stable name for the failure metric's `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Invalid { kind, .. } => kind.as_str(),
            Error::ModelNotFound { .. } => "not_found",
            Error::TooLarge { .. } => "too_large",
            Error::Unauthorized => "unauthorized",
            Error::Overloaded { .. } => "overloaded",
            Error::Timeout { .. } => "timeout",
            Error::ShuttingDown => "shutting_down",
            _ => "internal",
        }
    }

    /// The gRPC status for this error.
    pub fn grpc_status(&self) -> tonic::Status {
        use tonic::Code;
        let code = match self {
            Error::Invalid { .. } => Code::InvalidArgument,
            Error::ModelNotFound { .. } => Code::NotFound,
            Error::TooLarge { .. } => Code::ResourceExhausted,
            Error::Unauthorized => Code::Unauthenticated,
            Error::Overloaded { .. } | Error::ShuttingDown => Code::Unavailable,
            Error::Timeout { .. } => Code::DeadlineExceeded,
            _ => Code::Internal,
        };
        tonic::Status::new(code, self.public_message())
    }
}
