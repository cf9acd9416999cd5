//! `obfnet quickstart`: arguments → `obfnet_report::quickstart::run` → output.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use obfnet_nn::ObfArch;
use obfnet_report::quickstart::{QuickstartJob, run};
use obfnet_report::timefmt;

use crate::{DataArgs, emit, interactive, parse_arch, print_obf_report, progress};

#[derive(Debug, Args)]
pub(crate) struct QuickstartArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Run directory (default: runs/quickstart-<UTC time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The paper's setting: K = 10 ObfNet2 nets, 3 epochs each, constant learning rate 1e-3.
    #[arg(long)]
    paper: bool,
    /// Obfuscator architectures to train, comma-separated (obfnet1, obfnet2, conv).
    #[arg(long, value_delimiter = ',', value_parser = parse_arch, default_value = "obfnet2")]
    arch: Vec<ObfArch>,
    /// Nets per architecture.
    #[arg(short = 'k', long, default_value_t = 10)]
    k: usize,
    /// Server model epochs (default 5; 30 for fsdd).
    #[arg(long)]
    lenet_epochs: Option<usize>,
    /// Epochs per obfuscator (default 4; 8 for fsdd; 3 with --paper).
    #[arg(long)]
    obf_epochs: Option<usize>,
    /// Seed of the whole run (server model: seed; nets: 1000 + seed·100 + i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Use only the first N training samples (smoke runs; accuracy will be lower).
    #[arg(long)]
    limit: Option<usize>,
    /// End each obfuscator in a clip to the raw image range instead of ReLU (u8-wire friendly).
    #[arg(long, conflicts_with = "paper")]
    clip_output: bool,
    /// Obfuscator training engine: auto (the fast path where it applies, else burn), burn, fast.
    #[arg(long, default_value_t = obfnet_nn::Engine::Auto)]
    engine: obfnet_nn::Engine,
    /// Use this server model instead of training a LeNet-5: an ONNX file (`*.onnx`, with its
    /// optional `*.obfnet.json` sidecar) or a `train-model` directory.
    #[arg(long, conflicts_with = "lenet_epochs")]
    model: Option<PathBuf>,
}

pub(crate) fn cmd_quickstart(a: &QuickstartArgs, json: bool) -> Result<()> {
    let job = QuickstartJob {
        data: a.data.source(),
        out: a.out.clone(),
        paper: a.paper,
        archs: a.arch.clone(),
        k: a.k,
        lenet_epochs: a.lenet_epochs,
        obf_epochs: a.obf_epochs,
        seed: a.seed,
        limit: a.limit,
        clip_output: a.clip_output,
        engine: a.engine,
        model: a.model.clone(),
    };
    let mut bars = progress::Bars::new(interactive() && !json);
    let o = run(&job, &mut bars)?;
    bars.finish();
    // Through the JSON text, as report.json is written, so f32 fields print the same way.
    let value: serde_json::Value = serde_json::from_slice(&serde_json::to_vec(&o.report)?)?;
    emit(json, &value, || {
        println!("\nrun directory: {}", o.out.display());
        println!(
            "{} on raw test inputs: {:.2}%",
            if a.model.is_some() {
                "server model"
            } else {
                "LeNet-5"
            },
            o.server.test_accuracy * 100.0
        );
        for r in &o.obfuscators {
            print_obf_report(r);
        }
        println!(
            "total {} (estimated {})",
            timefmt::human(o.report.timings_s.total),
            timefmt::human(o.report.timings_s.estimate)
        );
    });
    Ok(())
}
