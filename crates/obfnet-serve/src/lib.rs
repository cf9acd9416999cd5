//! obfnet's inference service: the server side of ObfNet.
//!
//! Where it fits: `obfnet-nn` trains the server model (LeNet-5) and the obfuscators in front of
//! it; devices run an obfuscator (or none) and send the result here. This crate serves the
//! model over the **Open Inference Protocol v2** as KServe and Triton define it — REST (JSON
//! and the binary tensor extension) and gRPC (`inference.GRPCInferenceService`) on **one
//! port** — and over **MQTT v5** for devices ([`mqtt`]). Raw and obfuscated inputs use the same
//! endpoint; nothing tells them apart (obfuscation is voluntary and unobtrusive).
//!
//! # The input contract
//! One input named `input`, shapes `[784]`, `[28,28]`, `[n,784]`, `[n,28,28]` or
//! `[n,1,28,28]`, datatype:
//! - `UINT8`: values `0..=255` — a raw image, or an edge device's u8-encoded obfuscated output
//!   (which uses the same byte scale). The server applies the model's normalisation
//!   (`(x/255 − 0.1307)/0.3081` for MNIST, read from the model's `config.json`).
//! - `FP32`: values already in the model's normalised input space, as an f32 obfuscator emits
//!   them (or a raw image normalised by the client). They must be finite.
//!
//! The model metadata lists the input as `FP32 [-1, 784]` (the protocol allows one datatype);
//! `UINT8` is accepted as well.
//!
//! Outputs: `label` (`INT64 [n]`) and `probabilities` (`FP32 [n, 10]`, softmax), the latter
//! only when [`ServeConfig::scores`] is on.
//!
//! # Build
//! The gRPC messages and service come from `proto/grpc_predict_v2.proto` (obfnet's own copy of
//! the protocol's definition), compiled at build time by `protox`, a protobuf compiler written
//! in Rust: no `protoc` on the machine, and no generated code checked in that could drift from
//! the proto file.
//!
//! # Example
//! ```no_run
//! use obfnet_serve::{AppState, LeNetBackend, ServeConfig};
//! # async fn run() -> obfnet_serve::Result<()> {
//! let backend = LeNetBackend::load("runs/qs-default/server".as_ref())?;
//! let state = AppState::new(ServeConfig::default(), Box::new(backend))?;
//! let listener = obfnet_serve::bind("127.0.0.1:8000").await?;
//! let app = obfnet_serve::router(state);
//! obfnet_serve::serve(listener, app, None, std::time::Duration::from_secs(10), obfnet_serve::shutdown_signal()).await
//! # }
//! ```

mod backend;
mod config;
mod edge;
mod engine;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod grpc;
pub mod metrics;
pub mod mqtt;
pub mod oip;
mod onnx_backend;
mod rest;
mod server;
mod state;

/// Generated protobuf messages and the tonic client and server of
/// `inference.GRPCInferenceService` (from `proto/grpc_predict_v2.proto`).
#[allow(missing_docs, clippy::all, missing_debug_implementations, rust_2018_idioms)]
pub mod pb {
    tonic::include_proto!("inference");
}

pub use backend::{InferenceBackend, LeNetBackend, ModelSpec, NoopBackend};
pub use config::{BatchConfig, DEFAULT_REPLY_PREFIX, MqttConfig, ServeConfig, TlsConfig};
pub use edge::{Batch1EdgeBackend, EdgeLeNet};
pub use engine::EngineStats;
pub use error::{Error, InvalidKind, Result};
#[doc(hidden)]
pub use grpc::grpc_decode_to_model_input;
pub use mqtt::MqttWorker;
pub use onnx_backend::OnnxBackend;
pub use rest::HEADER_LENGTH;
#[doc(hidden)]
pub use rest::decode_to_model_input;
pub use server::{REQUEST_ID, bind, local_addr, router, serve, shutdown_signal, tls_config};
pub use state::AppState;
