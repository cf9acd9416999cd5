//! Runs one net's forward pass `N` times on the benchmark image, for instruction counting under
//! `valgrind --tool=callgrind` (`scripts/bench-edge.sh`): the count of a run with `N`
//! iterations minus the count with 0 iterations, divided by `N`, is the instructions of one
//! forward pass, stable where wall times wander.
//!
//! ```text
//! cargo run --release -p obfnet-core --example edge_count -- obfnet2 int8 auto 20
//! ```
//!
//! Arguments: architecture (`obfnet1`, `obfnet2`, `conv`, `in-cache`), `f32` or `int8`,
//! kernels (`auto` or `portable`), iterations. Prints the kernels used.

use std::process::ExitCode;

use obfnet_core::runtime::{Kernels, Runtime, RuntimeConfig};

#[path = "../benches/common.rs"]
#[allow(dead_code)] // shared fixtures; this example uses some of them
mod common;

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch, precision, kernels, n] = args.as_slice() else {
        return Err("usage: edge_count <arch> <f32|int8> <auto|portable> <iterations>".into());
    };
    let n: usize = n.parse().map_err(|e| format!("iterations: {e}"))?;
    let mut bundle = common::bundle(arch);
    if precision == "int8" {
        bundle = bundle.quantize_int8().map_err(|e| e.to_string())?;
    }
    let config = RuntimeConfig {
        kernels: if kernels == "portable" {
            Kernels::Portable
        } else {
            Kernels::Auto
        },
        ..RuntimeConfig::default()
    };
    let rt = Runtime::from_bundle_with(&bundle, &config).map_err(|e| e.to_string())?;
    let img = common::image();
    let mut scratch = rt.scratch();
    let mut out = vec![0.0f32; rt.output_len()];
    for _ in 0..n {
        rt.run_raw(
            0,
            std::hint::black_box(&img[..rt.input_len()]),
            &mut out,
            &mut scratch,
        )
        .map_err(|e| e.to_string())?;
        std::hint::black_box(&out);
    }
    println!("{arch} {precision} kernels {:?}", rt.isa());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edge_count: {e}");
            ExitCode::FAILURE
        }
    }
}
