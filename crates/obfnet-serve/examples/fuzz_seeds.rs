//! Writes the fuzz targets' seed inputs to `DIR/<target>/seed-<n>` (the corpus scripts/fuzz.sh
//! starts from).
//!
//! `cargo run --release -p obfnet-serve --example fuzz_seeds -- fuzz/corpus`

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: fuzz_seeds DIR")?);
    for t in obfnet_serve::fuzzing::TARGETS {
        let d = dir.join(t.name);
        std::fs::create_dir_all(&d)?;
        for (i, seed) in (t.seeds)().iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i}")), seed)?;
        }
    }
    println!("seeds written under {}", dir.display());
    Ok(())
}
