//! `obfnet quantize`, `obfnet add-noise` and `obfnet obfuscate`: arguments → `obfnet_report::edge` → output.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use obfnet_core::runtime::Wire;
use obfnet_report::edge::{InputFormat, ObfuscateJob, obfuscate, quantize};
use serde_json::json;

use crate::emit;

#[derive(Debug, Args)]
pub(crate) struct QuantizeArgs {
    /// The f32 bundle (from `train-obf` or `quickstart`).
    bundle: PathBuf,
    /// Where to write the int8 bundle (format version 2).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct AddNoiseArgs {
    /// The bundle (f32 or int8).
    bundle: PathBuf,
    /// Deviation of the noise each device adds to every output value, in pixel units (the raw
    /// range mapped to [0, 1]); a sum of 12 uniforms (≈ Gaussian, bounded at ±6σ).
    #[arg(long, value_name = "SIGMA", required_unless_present = "none")]
    sigma: Option<f32>,
    /// Remove the bundle's output noise instead.
    #[arg(long, conflicts_with = "sigma")]
    none: bool,
    /// Where to write the new bundle (format version 3 with noise).
    #[arg(long)]
    out: PathBuf,
}

/// Output encoding of obfuscated samples (see `obfnet_core::runtime::Wire`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum WireArg {
    /// 4-byte little-endian floats in the model's input space.
    F32,
    /// One byte per value in the raw image range: same size and dtype as a raw image.
    U8,
}

impl From<WireArg> for Wire {
    fn from(w: WireArg) -> Wire {
        match w {
            WireArg::F32 => Wire::F32,
            WireArg::U8 => Wire::U8,
        }
    }
}

/// How input files are read.
/// How input files are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum InputFormatArg {
    /// By file name: `.png`, `.idx`/`*-ubyte`/`.gz` (IDX), anything else raw.
    Auto,
    /// A grayscale (or colour, converted to luma) 8-bit PNG of the bundle's image size.
    Png,
    /// An IDX images file (u8, plain or gzip), e.g. MNIST's `t10k-images-idx3-ubyte`.
    Idx,
    /// Raw bytes: N images of rows×cols pixels each, concatenated.
    Raw,
}

impl From<InputFormatArg> for InputFormat {
    fn from(f: InputFormatArg) -> InputFormat {
        match f {
            InputFormatArg::Auto => InputFormat::Auto,
            InputFormatArg::Png => InputFormat::Png,
            InputFormatArg::Idx => InputFormat::Idx,
            InputFormatArg::Raw => InputFormat::Raw,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ObfuscateArgs {
    /// The bundle of obfuscator nets (f32 or int8).
    #[arg(long)]
    bundle: PathBuf,
    /// Input image file(s).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// How to read the inputs.
    #[arg(long, value_enum, default_value_t = InputFormatArg::Auto)]
    format: InputFormatArg,
    /// Use only the first N images (over all inputs).
    #[arg(long)]
    limit: Option<usize>,
    /// Output file: `.idx` writes an IDX file (u8 images for `--wire u8`, IDX float for f32),
    /// anything else the raw wire bytes, sample after sample.
    #[arg(long)]
    out: PathBuf,
    /// Wire encoding of the obfuscated samples.
    #[arg(long, value_enum, default_value_t = WireArg::U8)]
    wire: WireArg,
    /// Always use this net (default: a uniformly random net per sample).
    #[arg(long)]
    net: Option<usize>,
    /// Seed a deterministic generator for the per-sample choice (tests only: the server must
    /// not be able to predict the choice; the default is the OS's cryptographic generator).
    #[arg(long, conflicts_with = "net")]
    seed: Option<u64>,
    /// Also write a PNG to look at: originals (top) over what is sent (bottom), up to 16.
    #[arg(long)]
    png: Option<PathBuf>,
}

pub(crate) fn cmd_quantize(a: &QuantizeArgs, json: bool) -> Result<()> {
    let q = quantize(&a.bundle, &a.out)?;
    let value = json!({
        "in": a.bundle.display().to_string(), "in_bytes": q.in_bytes,
        "out": a.out.display().to_string(), "out_bytes": q.out_bytes,
        "format_version": q.format_version, "nets": q.nets,
    });
    emit(json, &value, || {
        println!(
            "wrote {} ({} nets, int8 per-channel, format {}): {:.1} MB -> {:.1} MB",
            a.out.display(),
            q.nets,
            q.format_version,
            q.in_bytes as f64 / 1e6,
            q.out_bytes as f64 / 1e6
        )
    });
    Ok(())
}

pub(crate) fn cmd_add_noise(a: &AddNoiseArgs, json: bool) -> Result<()> {
    let sigma = if a.none { None } else { a.sigma };
    let q = obfnet_report::edge::add_noise(&a.bundle, sigma, &a.out)?;
    let value = json!({
        "in": a.bundle.display().to_string(), "out": a.out.display().to_string(),
        "out_bytes": q.out_bytes, "format_version": q.format_version, "nets": q.nets,
        "output_noise_sigma": sigma,
    });
    emit(json, &value, || match sigma {
        Some(s) => println!(
            "wrote {} ({} nets, format {}): devices add output noise σ = {s} (pixel units)",
            a.out.display(),
            q.nets,
            q.format_version
        ),
        None => println!(
            "wrote {} ({} nets, format {}): no output noise",
            a.out.display(),
            q.nets,
            q.format_version
        ),
    });
    Ok(())
}

pub(crate) fn cmd_obfuscate(a: &ObfuscateArgs, json: bool) -> Result<()> {
    let job = ObfuscateJob {
        bundle: a.bundle.clone(),
        inputs: a.inputs.clone(),
        format: a.format.into(),
        limit: a.limit,
        out: a.out.clone(),
        wire: a.wire.into(),
        net: a.net,
        seed: a.seed,
        png: a.png.clone(),
    };
    let o = obfuscate(&job)?;
    let value = json!({
        "samples": o.samples, "out": a.out.display().to_string(), "out_bytes": o.out_bytes,
        "wire": o.wire, "weights": o.weights, "per_net": o.per_net, "seconds": o.seconds, "choice": o.choice,
    });
    emit(json, &value, || {
        println!(
            "obfuscated {} image(s) with {} {} net(s) in {:.1} ms ({:.3} ms each); wrote {} ({} bytes, wire {})",
            o.samples,
            o.k,
            o.weights,
            o.seconds * 1e3,
            o.seconds * 1e3 / o.samples as f64,
            a.out.display(),
            o.out_bytes,
            o.wire
        );
        println!("samples per net: {:?}", o.per_net);
        if let Some(p) = &a.png {
            println!("preview: {}", p.display());
        }
    });
    Ok(())
}
