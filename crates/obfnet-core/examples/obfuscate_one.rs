//! The smallest useful device program: load a bundle, obfuscate one raw image with a net chosen
//! by the OS's cryptographic generator, write the u8 wire bytes to stdout.
//!
//! ```text
//! cargo run --release -p obfnet-core --example obfuscate_one -- bundle.obfb image.raw > out.raw
//! ```
//!
//! `scripts/bench-edge.sh` builds it with the size-optimised `edge-min` profile and reports the
//! binary size and the process's peak resident memory (printed to stderr from /proc when
//! `OBFNET_REPORT_MEMORY=1`).

use std::io::Write;
use std::process::ExitCode;

use obfnet_core::runtime::{NetChoice, OsRandom, Runtime, Wire};

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(bundle), Some(image)) = (args.next(), args.next()) else {
        return Err("usage: obfuscate_one <bundle.obfb> <image.raw>".into());
    };
    let bytes = std::fs::read(&bundle).map_err(|e| format!("{bundle}: {e}"))?;
    let rt = Runtime::from_bytes(&bytes).map_err(|e| format!("{bundle}: {e}"))?;
    drop(bytes);
    let raw = std::fs::read(&image).map_err(|e| format!("{image}: {e}"))?;
    let mut scratch = rt.scratch();
    let mut out = vec![0.0f32; rt.output_len()];
    rt.obfuscate(&raw, NetChoice::Random(&mut OsRandom), &mut out, &mut scratch)
        .map_err(|e| e.to_string())?;
    let mut wire = Vec::new();
    Wire::U8.encode(&out, rt.normalisation(), &mut wire);
    std::io::stdout().write_all(&wire).map_err(|e| e.to_string())?;
    if std::env::var_os("OBFNET_REPORT_MEMORY").is_some() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        for line in status
            .lines()
            .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        {
            eprintln!("{line}");
        }
    }
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
