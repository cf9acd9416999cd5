//! `obfnet-edge-footprint`, a footprint probe: runs `N` obfuscations (net 0, one digit-like sample) of one of the published
//! obfuscator shapes (obfnet-core's benchmark fixtures: obfnet1, obfnet2, conv; seeded random
//! weights, cost does not depend on the values) with f32 or int8 weights, and prints the
//! net's multiply-adds. Run under `valgrind --tool=callgrind` with N = 1 and N = 101: the
//! difference of the two instruction counts / 100 is the cost of one obfuscation
//! (docs/notes/device.md has the commands). `--write-bundle PATH` writes the bundle instead, for
//! the device example.
//!
//! ```text
//! obfnet-edge-footprint ARCH f32|int8 N [--write-bundle PATH]
//! ```

use std::hint::black_box;
use std::process::ExitCode;

use obfnet_core::runtime::Runtime;

#[path = "../../../obfnet-core/benches/common.rs"]
#[allow(dead_code)]
mod common;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(arch), Some(weights), Some(n)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: obfnet-edge-footprint ARCH f32|int8 N [--write-bundle PATH]");
        return ExitCode::from(2);
    };
    if !common::ARCHS.contains(&arch.as_str()) {
        eprintln!("ARCH is one of {:?}", common::ARCHS);
        return ExitCode::from(2);
    }
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("N must be a number");
        return ExitCode::from(2);
    };
    let mut bundle = common::bundle(arch);
    if weights == "int8" {
        bundle = match bundle.quantize_int8() {
            Ok(b) => b,
            Err(e) => {
                eprintln!("quantise: {e}");
                return ExitCode::from(1);
            }
        };
    }
    if let (Some(flag), Some(path)) = (args.get(3), args.get(4))
        && flag == "--write-bundle"
    {
        return match bundle.to_bytes().map(|b| std::fs::write(path, b)) {
            Ok(Ok(())) => ExitCode::SUCCESS,
            _ => ExitCode::from(1),
        };
    }
    let rt = match Runtime::from_bundle(&bundle) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let img = common::image();
    let mut scratch = rt.scratch();
    let mut out = vec![0.0f32; rt.output_len()];
    for _ in 0..n {
        if let Err(e) = rt.run_raw(0, black_box(&img[..rt.input_len()]), &mut out, &mut scratch) {
            eprintln!("run: {e}");
            return ExitCode::from(1);
        }
        black_box(&out);
    }
    println!(
        "{arch} {weights}: {} multiply-adds, {} parameter bytes, {n} runs",
        rt.nets()[0].macs,
        rt.nets()[0].param_bytes
    );
    ExitCode::SUCCESS
}
