//! `obfnet quickstart`: the main job, end to end, into one run directory — data, server model,
//! K obfuscators per architecture, bundles (f32 and int8), pictures and the run's versioned
//! `config.json` ([`RunConfig`]) and `report.json` ([`RunReport`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use obfnet_data::fetch::Fetched;
use obfnet_nn::{ObfArch, ObfReport, ObfTrainConfig, ServerReport, ServerTrainConfig};
use serde::{Deserialize, Serialize};

use crate::edge::QuickstartEdge;
use crate::schema::{Versioned, version_one, write_json};
use crate::setup::{DataSource, to_datasets, write_bundle};
use crate::{Progress, grid, say, timefmt};

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

/// The settings of a quickstart run.
#[derive(Debug, Clone)]
pub struct QuickstartJob {
    /// The dataset (fetched if missing).
    pub data: DataSource,
    /// Run directory (None: runs/quickstart-<UTC time>).
    pub out: Option<PathBuf>,
    /// The paper's setting: K ObfNet2 nets, 3 epochs each, constant learning rate.
    pub paper: bool,
    /// Architectures to train.
    pub archs: Vec<ObfArch>,
    /// Nets per architecture.
    pub k: usize,
    /// Server model epochs (None: 5; 30 for fsdd).
    pub lenet_epochs: Option<usize>,
    /// Epochs per obfuscator (None: 4; 8 for fsdd; 3 with `paper`).
    pub obf_epochs: Option<usize>,
    /// Seed of the whole run.
    pub seed: u64,
    /// Only the first N training samples.
    pub limit: Option<usize>,
    /// End each obfuscator in a clip to the raw range.
    pub clip_output: bool,
    /// Which implementation trains the obfuscators.
    pub engine: obfnet_nn::Engine,
    /// A server model to use instead of training a LeNet-5: an ONNX file or a `train-model`
    /// directory (None: train one).
    pub model: Option<PathBuf>,
}

/// The run's `config.json`: everything needed to train it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// Schema version ([`Versioned::VERSION`]; files without it are version 1).
    #[serde(default = "version_one")]
    pub schema_version: u32,
    /// The paper's setting.
    pub paper: bool,
    /// The given server model (`quickstart --model`), when the run did not train one; then
    /// `server` is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// The server model's training.
    pub server: ServerTrainConfig,
    /// One training per architecture.
    pub obfuscators: Vec<ObfTrainConfig>,
}

impl Versioned for RunConfig {
    const KIND: &'static str = "quickstart run config";
    const VERSION: u32 = 1;
}

/// The run's `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Schema version ([`Versioned::VERSION`]; files without it are version 1).
    #[serde(default = "version_one")]
    pub schema_version: u32,
    /// Version of obfnet.
    pub obfnet_version: String,
    /// Training engine.
    pub engine: String,
    /// Threads available.
    pub threads: usize,
    /// CPU model.
    pub cpu: String,
    /// The data.
    pub data: RunData,
    /// The settings.
    pub config: RunConfig,
    /// The server model.
    pub server_model: ServerModelInfo,
    /// One summary per architecture.
    pub obfuscators: Vec<ObfSummary>,
    /// Files per architecture.
    pub artifacts: Vec<Artifacts>,
    /// FSDD only: the listening page and its attack result (a copy of `listen/result.json`).
    pub listen: serde_json::Value,
    /// Wall times.
    pub timings_s: Timings,
}

impl Versioned for RunReport {
    const KIND: &'static str = "quickstart run report";
    const VERSION: u32 = 1;
}

/// The data of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunData {
    /// Dataset name.
    pub dataset: String,
    /// Training samples.
    pub train: usize,
    /// Test samples.
    pub test: usize,
    /// Whether this run fetched it.
    pub fetched_now: bool,
    /// Attribution the dataset's licence asks for.
    pub attribution: Option<String>,
}

/// The server model of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerModelInfo {
    /// Its directory (a trained LeNet-5), or the given model (`quickstart --model`: an ONNX
    /// file or a directory).
    pub dir: PathBuf,
    /// sha256 of its weights (of the file, for ONNX).
    pub sha256: String,
    /// Whether the run trained it (false: given with `--model`; then `report` holds only the
    /// test accuracy and evaluation time measured by this run, no training figures).
    #[serde(default = "trained_default")]
    pub trained_here: bool,
    /// What training measured.
    pub report: ServerReport,
}

fn trained_default() -> bool {
    true
}

/// One architecture's K nets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObfSummary {
    /// Architecture.
    pub arch: ObfArch,
    /// Nets.
    pub k: usize,
    /// Their seeds.
    pub seeds: Vec<u64>,
    /// Server accuracy on raw inputs.
    pub raw_accuracy: f64,
    /// Accuracy behind each net.
    pub accuracies: Vec<f64>,
    /// Their mean.
    pub mean_accuracy: f64,
    /// Mean drop in points.
    pub mean_drop_pt: f64,
    /// The full training report.
    pub report: ObfReport,
}

/// One architecture's files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifacts {
    /// Architecture.
    pub arch: ObfArch,
    /// The f32 bundle.
    pub bundle: PathBuf,
    /// The picture grid.
    pub grid: PathBuf,
    /// Largest output difference after reloading the bundle.
    pub reload_max_abs_diff: f32,
    /// The int8 bundle and the edge runtime's accuracies.
    pub edge: QuickstartEdge,
}

/// Wall times of a run, seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timings {
    /// Fetching and loading data.
    pub data: f64,
    /// The estimate said up front.
    pub estimate: f64,
    /// The whole run.
    pub total: f64,
}

/// What [`run`] produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run directory.
    pub out: PathBuf,
    /// Its report (also in `report.json`).
    pub report: RunReport,
    /// The server model's training report.
    pub server: ServerReport,
    /// One training report per architecture.
    pub obfuscators: Vec<ObfReport>,
}

/// Runs a quickstart (see the module docs).
///
/// # Errors
/// Data, training, bundle or I/O failures, with context.
pub fn run(a: &QuickstartJob, progress: &mut dyn Progress) -> Result<RunOutcome> {
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
        a.archs.clone()
    };
    let config = RunConfig {
        schema_version: RunConfig::VERSION,
        paper: a.paper,
        model: a.model.clone(),
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
                engine: a.engine,
                ..Default::default()
            })
            .collect(),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    write_json(&out.join("config.json"), &config)?;

    // 1. Data.
    let t = Instant::now();
    let fetched = a.data.fetch(None, &mut |m| say(m))?;
    let ds = a.data.load()?;
    let (train, test) = to_datasets(&ds)?;
    let data_seconds = t.elapsed().as_secs_f64();

    // 2. Say up front how long it will take, from a few measured steps.
    let n = a.limit.unwrap_or(usize::MAX).min(train.len());
    let steps = |epochs: usize, batch: usize| (n.div_ceil(batch) * epochs) as f64;
    let mut estimate = 0.0;
    for (i, c) in config.obfuscators.iter().enumerate() {
        let cal = obfnet_nn::calibrate(c, &train)?;
        if i == 0 && a.model.is_none() {
            estimate += cal.server_step_s * steps(config.server.epochs, config.server.batch_size);
        }
        // Evaluation of K nets costs about as much as 1/3 epoch of training per net.
        estimate += cal.obf_step_s * (steps(c.epochs, c.batch_size) + steps(1, c.batch_size) / 3.0);
    }
    say(format!(
        "quickstart into {}: {}, then {} × {{{}}} for {} epochs each; estimated {} on this machine",
        out.display(),
        a.model.as_ref().map_or_else(
            || format!("LeNet-5 {} epochs", config.server.epochs),
            |m| format!("server model {}", m.display())
        ),
        a.k,
        archs.iter().map(|a| a.name()).collect::<Vec<_>>().join(", "),
        obf_epochs,
        timefmt::human(estimate)
    ));

    // 3. Server model: trained here, or given.
    let (server, server_dir, sha, srep) = match &a.model {
        None => {
            let (model, srep) =
                obfnet_nn::train_server_model(&config.server, &train, &test, &mut |e| progress.event(e))?;
            progress.finish();
            let server_dir = out.join("server");
            let sha = obfnet_nn::save_server_model_for(&model, &ds.name, &config.server, &srep, &server_dir)?;
            say(format!(
                "LeNet-5 test accuracy {:.2}% ({} s)",
                srep.test_accuracy * 100.0,
                srep.train_seconds.round()
            ));
            let (model, _, _) = obfnet_nn::load_server_model(&server_dir)?;
            (obfnet_nn::ServerModel::LeNet(model), server_dir, sha, srep)
        }
        Some(path) => {
            let (server, sha) = crate::setup::load_server_for(path, &ds.name)?;
            let t = Instant::now();
            let acc = obfnet_nn::server_accuracy(&server, &test)?;
            let srep = ServerReport {
                test_accuracy: acc,
                epoch_losses: Vec::new(),
                train_seconds: 0.0,
                first_epoch_seconds: 0.0,
                step_ms_median: 0.0,
                eval_seconds: t.elapsed().as_secs_f64(),
                train_samples: 0,
            };
            say(format!(
                "server model {} (given, not trained): test accuracy {:.2}%",
                path.display(),
                acc * 100.0
            ));
            (server, path.clone(), sha, srep)
        }
    };

    // 4. K obfuscators per architecture, bundle, picture.
    let mut reports: Vec<ObfReport> = Vec::new();
    let mut bundles = Vec::new();
    let mut listen = serde_json::Value::Null;
    for c in &config.obfuscators {
        let (stack, rep) =
            obfnet_nn::train_obfuscators(c, &server, &train, &test, &mut |e| progress.event(e))?;
        progress.finish();
        let bundle_path = out.join(format!("obfnets-{}.obfb", c.arch));
        write_bundle(&stack, &ds.name, sha, &bundle_path)?;
        let max_diff = check_bundle_roundtrip(&bundle_path, &stack, &test, sha)?;
        let grid_path = out.join(format!("grid-{}.png", c.arch));
        write_figure(&grid_path, &stack, &test, &ds.test, 10)?;
        let edge = crate::edge::quickstart_edge(&server, &bundle_path, &ds.test)?;
        say(format!(
            "{} × {}: mean accuracy {:.2}% (drop {:.2} pt); bundle {} (reload max |diff| {max_diff:.1e})",
            c.k,
            c.arch,
            rep.mean_accuracy() * 100.0,
            rep.mean_drop_pt(),
            bundle_path.display()
        ));
        bundles.push(Artifacts {
            arch: c.arch,
            bundle: bundle_path.clone(),
            grid: grid_path,
            reload_max_abs_diff: max_diff,
            edge,
        });
        // Spoken digits: attack the first architecture's nets and write listenable WAVs.
        if ds.name == "fsdd" && listen.is_null() {
            listen = crate::listen::quickstart_listen(
                &out,
                &a.data.data_dir,
                &server,
                &stack,
                &train,
                &test,
                progress,
            )?;
        }
        reports.push(rep);
    }

    let total_seconds = t_total.elapsed().as_secs_f64();
    let report = RunReport {
        schema_version: RunReport::VERSION,
        obfnet_version: env!("CARGO_PKG_VERSION").into(),
        engine: "burn 0.22.1, flex CPU backend".into(),
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu: cpu_model(),
        data: RunData {
            dataset: ds.name.clone(),
            train: train.len(),
            test: test.len(),
            fetched_now: matches!(fetched, Fetched::Fetched { .. }),
            attribution: match a.data.user() {
                Some(_) => None,
                None => a.data.reader()?.attribution().map(String::from),
            },
        },
        config,
        server_model: ServerModelInfo {
            dir: server_dir,
            sha256: obfnet_core::hex(&sha),
            trained_here: a.model.is_none(),
            report: srep.clone(),
        },
        obfuscators: reports
            .iter()
            .map(|r| ObfSummary {
                arch: r.arch,
                k: r.accuracies.len(),
                seeds: r.seeds.clone(),
                raw_accuracy: r.raw_accuracy,
                accuracies: r.accuracies.clone(),
                mean_accuracy: r.mean_accuracy(),
                mean_drop_pt: r.mean_drop_pt(),
                report: r.clone(),
            })
            .collect(),
        artifacts: bundles,
        listen,
        timings_s: Timings {
            data: data_seconds,
            estimate,
            total: total_seconds,
        },
    };
    write_json(&out.join("report.json"), &report)?;
    Ok(RunOutcome {
        out,
        report,
        server: srep,
        obfuscators: reports,
    })
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
