//! Writes the benchmark fixtures to a directory: one-net bundles of each measured architecture
//! (`<arch>-f32.obfb`, `<arch>-int8.obfb`, seeded random weights) and a digit-like raw image
//! (`image.raw`). Used by `scripts/bench-edge.sh` to run the minimal device binary.
//!
//! ```text
//! cargo run --release -p obfnet-core --example edge_fixture -- bench-out/edge-fixture
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

#[path = "../benches/common.rs"]
mod common;

fn run() -> Result<(), String> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: edge_fixture <dir>")?);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for arch in common::ARCHS {
        let f32_bundle = common::bundle(arch);
        let int8 = f32_bundle.quantize_int8().map_err(|e| e.to_string())?;
        for (name, b) in [("f32", &f32_bundle), ("int8", &int8)] {
            let path = dir.join(format!("{arch}-{name}.obfb"));
            let bytes = b.to_bytes().map_err(|e| e.to_string())?;
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let img = dir.join("image.raw");
    std::fs::write(&img, common::image()).map_err(|e| format!("{}: {e}", img.display()))?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
