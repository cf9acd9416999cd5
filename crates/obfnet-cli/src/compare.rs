//! `obfnet compare`: arguments → `obfnet_report::compare::run_compare` → output.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use obfnet_report::compare::{CompareConfig, run_compare, terminal};

use crate::DataArgs;

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Directory of the server model (LeNet-5) the obfuscation rows run against.
    #[arg(long, default_value = "runs/qs-default/server")]
    model: PathBuf,
    /// ObfNet2 bundle with f32 weights.
    #[arg(long, default_value = "runs/qs-default/obfnets-obfnet2.obfb")]
    obfnet2: PathBuf,
    /// ObfNet2 bundle with int8 weights (`obfnet quantize`).
    #[arg(long, default_value = "runs/qs-default/obfnets-obfnet2-int8.obfb")]
    obfnet2_int8: PathBuf,
    /// ObfNet1 bundle (e.g. the one `obfnet report` trained); its row is skipped without it.
    #[arg(long)]
    obfnet1: Option<PathBuf>,
    /// report.json of `obfnet report`: source of the attack-measured SSIMs, the DP ε and the
    /// accuracies of the noise and projection rows.
    #[arg(long)]
    privacy_report: Option<PathBuf>,
    /// Scheme of the privacy report shown as the local-DP row.
    #[arg(long, default_value = "laplace-eps7840")]
    dp_scheme: String,
    /// Scheme of the privacy report shown as the random-projection row.
    #[arg(long, default_value = "projection-orthogonal-784")]
    projection_scheme: String,
    /// The CryptoNets-style model (JSON). Trained (5 epochs, ≈30 s) and saved to
    /// <out>/cryptonet.json when absent.
    #[arg(long)]
    cryptonet: Option<PathBuf>,
    /// Test images run under HE (one batch of up to 8192 images costs ≈1 min on 2 cores).
    #[arg(long, default_value_t = 10_000)]
    he_images: usize,
    /// Test images run under 2PC in batches of --mpc-batch.
    #[arg(long, default_value_t = 10_000)]
    mpc_images: usize,
    /// Images per 2PC batch (the batched row).
    #[arg(long, default_value_t = 1000)]
    mpc_batch: usize,
    /// Test images run one at a time under 2PC (the single-image row).
    #[arg(long, default_value_t = 200)]
    mpc_single_images: usize,
    /// Test images for the accuracy of the raw and ObfNet rows.
    #[arg(long, default_value_t = 10_000)]
    eval_images: usize,
    /// Worker threads of the HE server (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Output directory (compare.md, compare.html, compare.json, cryptonet.json).
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
}

pub(crate) fn cmd_compare(a: &CompareArgs, json: bool) -> Result<()> {
    let cfg = CompareConfig {
        data: a.data.source(),
        model: a.model.clone(),
        obfnet2: a.obfnet2.clone(),
        obfnet2_int8: a.obfnet2_int8.clone(),
        obfnet1: a.obfnet1.clone(),
        privacy_report: a.privacy_report.clone(),
        dp_scheme: a.dp_scheme.clone(),
        projection_scheme: a.projection_scheme.clone(),
        cryptonet: a.cryptonet.clone(),
        he_images: a.he_images,
        mpc_images: a.mpc_images,
        mpc_batch: a.mpc_batch,
        mpc_single_images: a.mpc_single_images,
        eval_images: a.eval_images,
        threads: a.threads,
        out: a.out.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let file = run_compare(&cfg)?;
    if json {
        println!("{}", serde_json::to_string(&file)?);
    } else {
        print!("{}", terminal(&file));
        println!(
            "\nwrote {}/compare.md, compare.html, compare.json ({:.0} s)",
            a.out.display(),
            file.seconds
        );
    }
    Ok(())
}
