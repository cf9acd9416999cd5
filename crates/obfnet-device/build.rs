//! Compiles the OIP v2 gRPC definition that `obfnet-serve` serves (its `proto/` file, one copy
//! for server and device) with `protox` (no `protoc` needed) into a tonic client.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = "../obfnet-serve/proto";
    let proto = "../obfnet-serve/proto/grpc_predict_v2.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], [dir])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
