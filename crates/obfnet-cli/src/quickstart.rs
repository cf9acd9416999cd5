//! `obfnet quickstart`: the main job, end to end, into one run directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use obfnet_nn::{ObfArch, ObfReport, ObfTrainConfig, ServerTrainConfig};
use serde::Serialize;
use serde_json::json;

use crate::{
    DataArgs, datasets, emit, grid, interactive, load_dataset, parse_arch, print_obf_report, progress,
    timefmt, to_datasets, write_bundle,
};

/// Epochs of the server model in the default quickstart.
const QUICK_LENET_EPOCHS: usize = 5;
/// Epochs per obfuscator in the default quickstart (measured: 2 epochs leave a 0.9 pt mean
/// drop behind ten ObfNet2 nets, 4 epochs about 0.5 pt).
const QUICK_OBF_EPOCHS: usize = 4;
/// Server model epochs for `--dataset fsdd` (2,700 clips; measured 96–97% test accuracy).
const FSDD_LENET_EPOCHS: usize = 30;
/// Epochs per obfuscator for `--dataset fsdd`.
const FSDD_OBF_EPOCHS: usize = 8;
/// Epochs per obfuscator with `--paper`: the published recipe trains each net 3 epochs with
/// plain Adam at a constant learning rate of 1e-3.
const PAPER_OBF_EPOCHS: usize = 3;

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
}

#[derive(Debug, Serialize)]
struct RunConfig {
    paper: bool,
    server: ServerTrainConfig,
    obfuscators: Vec<ObfTrainConfig>,
}

pub(crate) fn run(a: &QuickstartArgs, json: bool) -> Result<()> {
    let t_total = Instant::now();
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/quickstart-{}", timefmt::utc_stamp())));
    // FSDD has 2,700 training clips (MNIST 60,000): more epochs for a similar number of steps.
    let small = a.data.dataset == "fsdd";
    let lenet_epochs = a.lenet_epochs.unwrap_or(if small {
        FSDD_LENET_EPOCHS
    } else {
        QUICK_LENET_EPOCHS
    });
    let obf_epochs = a.obf_epochs.unwrap_or(if a.paper {
        PAPER_OBF_EPOCHS
    } else if small {
        FSDD_OBF_EPOCHS
    } else {
        QUICK_OBF_EPOCHS
    });
    let archs = if a.paper {
        vec![ObfArch::ObfNet2]
    } else {
        a.arch.clone()
    };
    let config = RunConfig {
        paper: a.paper,
        server: ServerTrainConfig {
            epochs: lenet_epochs,
            seed: a.seed,
            limit: a.limit,
            ..Default::default()
        },
        obfuscators: archs
            .iter()
            .map(|&arch| ObfTrainConfig {
                arch,
                k: a.k,
                epochs: obf_epochs,
                seed: 1000 + a.seed * 100,
                limit: a.limit,
                final_lr_fraction: if a.paper {
                    1.0
                } else {
                    ObfTrainConfig::default().final_lr_fraction
                },
                clip_output: a.clip_output,
                ..Default::default()
            })
            .collect(),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    write_json(&out.join("config.json"), &config)?;

    // 1. Data.
    let t = Instant::now();
    let fetched = datasets::fetch_dataset(&a.data, None)?;
    let ds = load_dataset(&a.data)?;
    let (train, test) = to_datasets(&ds)?;
    let data_seconds = t.elapsed().as_secs_f64();

    // 2. Say up front how long it will take, from a few measured steps.
    let n = a.limit.unwrap_or(usize::MAX).min(train.len());
    let steps = |epochs: usize, batch: usize| (n.div_ceil(batch) * epochs) as f64;
    let mut estimate = 0.0;
    for (i, c) in config.obfuscators.iter().enumerate() {
        let cal = obfnet_nn::calibrate(c.arch, c.k, c.batch_size, &train)?;
        if i == 0 {
            estimate += cal.server_step_s * steps(config.server.epochs, config.server.batch_size);
        }
        // Evaluation of K nets costs about as much as 1/3 epoch of training per net.
        estimate += cal.obf_step_s * (steps(c.epochs, c.batch_size) + steps(1, c.batch_size) / 3.0);
    }
    eprintln!(
        "[obfnet] quickstart into {}: LeNet-5 {} epochs, then {} × {{{}}} for {} epochs each; \
         estimated {} on this machine",
        out.display(),
        config.server.epochs,
        a.k,
        archs.iter().map(|a| a.name()).collect::<Vec<_>>().join(", "),
        obf_epochs,
        timefmt::human(estimate)
    );

    // 3. Server model.
    let mut bars = progress::Bars::new(interactive() && !json);
    let (model, srep) = obfnet_nn::train_server_model(&config.server, &train, &test, &mut |e| bars.on(e))?;
    bars.finish();
    let server_dir = out.join("server");
    let sha = obfnet_nn::save_server_model_for(&model, &ds.name, &config.server, &srep, &server_dir)?;
    eprintln!(
        "[obfnet] LeNet-5 test accuracy {:.2}% ({} s)",
        srep.test_accuracy * 100.0,
        srep.train_seconds.round()
    );
    let (model, _, _) = obfnet_nn::load_server_model(&server_dir)?;

    // 4. K obfuscators per architecture, bundle, picture.
    let mut reports: Vec<ObfReport> = Vec::new();
    let mut bundles = Vec::new();
    let mut listen = serde_json::Value::Null;
    for c in &config.obfuscators {
        let (stack, rep) = obfnet_nn::train_obfuscators(c, &model, &train, &test, &mut |e| bars.on(e))?;
        bars.finish();
        let bundle_path = out.join(format!("obfnets-{}.obfb", c.arch));
        write_bundle(&stack, &ds.name, sha, &bundle_path)?;
        let max_diff = check_bundle_roundtrip(&bundle_path, &stack, &test, sha)?;
        let grid_path = out.join(format!("grid-{}.png", c.arch));
        write_figure(&grid_path, &stack, &test, &ds.test, 10)?;
        let edge = crate::edge::quickstart_edge(&model, &bundle_path, &ds.test)?;
        eprintln!(
            "[obfnet] {} × {}: mean accuracy {:.2}% (drop {:.2} pt); bundle {} (reload max |diff| {max_diff:.1e})",
            c.k,
            c.arch,
            rep.mean_accuracy() * 100.0,
            rep.mean_drop_pt(),
            bundle_path.display()
        );
        bundles.push(json!({"arch": c.arch, "bundle": bundle_path, "grid": grid_path, "reload_max_abs_diff": max_diff, "edge": edge}));
        // Spoken digits: attack the first architecture's nets and write listenable WAVs.
        if ds.name == "fsdd" && listen.is_null() {
            listen = crate::listen::quickstart_listen(
                &out,
                &a.data.data_dir,
                &model,
                &stack,
                &train,
                &test,
                &mut bars,
            )?;
        }
        reports.push(rep);
    }

    let total_seconds = t_total.elapsed().as_secs_f64();
    let report = json!({
        "obfnet_version": env!("CARGO_PKG_VERSION"),
        "engine": "burn 0.22.1, flex CPU backend",
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu": cpu_model(),
        "data": {"dataset": ds.name, "train": train.len(), "test": test.len(), "fetched_now": matches!(fetched, datasets::Fetched::Fetched { .. }),
                 "attribution": datasets::reader(&a.data)?.attribution()},
        "config": config,
        "server_model": {"dir": server_dir, "sha256": obfnet_core::hex(&sha), "report": srep},
        "obfuscators": reports.iter().map(|r| json!({
            "arch": r.arch, "k": r.accuracies.len(), "seeds": r.seeds,
            "raw_accuracy": r.raw_accuracy, "accuracies": r.accuracies,
            "mean_accuracy": r.mean_accuracy(), "mean_drop_pt": r.mean_drop_pt(),
            "report": r,
        })).collect::<Vec<_>>(),
        "artifacts": bundles,
        "listen": listen,
        "timings_s": {"data": data_seconds, "estimate": estimate, "total": total_seconds},
    });
    write_json(&out.join("report.json"), &report)?;
    emit(json, &report, || {
        println!("\nrun directory: {}", out.display());
        println!("LeNet-5 on raw test inputs: {:.2}%", srep.test_accuracy * 100.0);
        for r in &reports {
            print_obf_report(r);
        }
        println!(
            "total {} (estimated {})",
            timefmt::human(total_seconds),
            timefmt::human(estimate)
        );
    });
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    obfnet_nn::write_atomic(path, &bytes)?;
    Ok(())
}

/// Reloads the bundle from disk through the validating loader and compares its nets' outputs
/// with the trained stack's on 100 test samples. Returns the largest absolute difference.
fn check_bundle_roundtrip(
    path: &Path,
    stack: &obfnet_nn::ObfStack,
    test: &obfnet_nn::Dataset,
    sha: [u8; 32],
) -> Result<f32> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bundle =
        obfnet_core::Bundle::from_bytes(&bytes).context("the bundle just written does not validate")?;
    bundle.expect_server_model(&sha)?;
    let reloaded = obfnet_nn::ObfStack::from_bundle(&bundle, &obfnet_nn::default_device())?;
    let a = obfnet_nn::obfuscate_samples(stack, test, 100)?;
    let b = obfnet_nn::obfuscate_samples(&reloaded, test, 100)?;
    let diff = a
        .iter()
        .flatten()
        .flatten()
        .zip(b.iter().flatten().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    anyhow::ensure!(diff <= 1e-5, "bundle reload changed the outputs by {diff}");
    Ok(diff)
}

/// The paper's Figure 3: a row of original test digits over one row per obfuscator.
/// Obfuscated images are stretched to the full grey range per image (min → black, max → white)
/// so their structure is visible; originals are shown as they are.
fn write_figure(
    path: &Path,
    stack: &obfnet_nn::ObfStack,
    test: &obfnet_nn::Dataset,
    raw: &obfnet_data::LabeledImages,
    n: usize,
) -> Result<()> {
    let n = n.min(test.len());
    let mut rows = vec![
        (0..n)
            .map(|i| raw.image(i).iter().map(|&p| f32::from(p)).collect())
            .collect::<Vec<Vec<f32>>>(),
    ];
    for net in obfnet_nn::obfuscate_samples(stack, test, n)? {
        rows.push(net.into_iter().map(stretch).collect());
    }
    grid::write_grid_png(path, &rows, test.rows, test.cols, 3, 2)
}

fn stretch(img: Vec<f32>) -> Vec<f32> {
    let lo = img.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = img.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    img.into_iter().map(|v| (v - lo) / span * 255.0).collect()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
