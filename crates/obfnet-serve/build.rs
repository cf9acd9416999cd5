//! Compiles `proto/grpc_predict_v2.proto` with `protox` (a protobuf compiler written in Rust), so
//! building needs no `protoc` on the machine, then generates the tonic service and prost messages.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/grpc_predict_v2.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Malformed messages answer INVALID_ARGUMENT (the gRPC analogue of 400), not INTERNAL.
        .codec_path("crate::grpc::StrictCodec")
        .compile_fds(fds)?;
    Ok(())
}
