//! Integration tests of obfnet-serve: every endpoint over REST and gRPC, every bad-input class,
//! batching, auth, TLS, metrics, and the MQTT worker against a real mosquitto broker.

mod common;

mod batching;
mod fuzz_props;
mod grpc;
mod hostile;
mod limits;
mod mqtt;
mod onnx;
mod rest;
mod security;
