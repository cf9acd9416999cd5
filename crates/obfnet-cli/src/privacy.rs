//! `obfnet attack` and `obfnet report`: the privacy evaluation (crate `obfnet-privacy`) driven
//! from the command line, with a self-contained HTML report, PNG pictures and JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use obfnet_data::DatasetReader as _;
use obfnet_nn::{ObfArch, ObfStack, ObfTrainConfig};
use obfnet_privacy::{
    AttackConfig, EvalContext, Family, Guarantee, MlpConfig, Noise, NoiseScheme, ObfScheme, ProjectionKind,
    ProjectionScheme, Recogniser, Scheme, SchemeResult, evaluate_scheme,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{DataArgs, datasets, emit, interactive, load_dataset, progress, to_datasets};

/// The threat model, stated once for the report, the JSON and the README.
pub(crate) const THREAT_MODEL: &str = "Honest-but-curious server. It knows the frozen model, the \
architecture and weights of all K obfuscators (it trained them), and has data from the same \
distribution (its own training split). It does not know which of the K nets a device used for a \
given sample. Attackers train only on the training split; they are scored on test-split samples.";

/// Budgets of the attacks (every flag maps to a field of `AttackConfig`).
#[derive(Debug, Args, Clone)]
pub(crate) struct BudgetArgs {
    /// Test samples attacked and scored (the first ones of the test split).
    #[arg(long, default_value_t = AttackConfig::default().eval_samples)]
    eval_samples: usize,
    /// Of those, how many the (costly) rMLE attack reconstructs.
    #[arg(long, default_value_t = AttackConfig::default().rmle_samples)]
    rmle_samples: usize,
    /// Adam steps of rMLE.
    #[arg(long, default_value_t = AttackConfig::default().rmle.steps)]
    rmle_steps: usize,
    /// Weight of the total-variation prior in rMLE.
    #[arg(long, default_value_t = AttackConfig::default().rmle.tv_weight)]
    rmle_tv: f64,
    /// Training pairs of the pooled inverse network (and of the shadow attack's decoder).
    #[arg(long, default_value_t = AttackConfig::default().inverse.train_samples)]
    inverse_train: usize,
    /// Training pairs of each per-net inverse network.
    #[arg(long, default_value_t = AttackConfig::default().per_net_train_samples)]
    per_net_train: usize,
    /// Epochs of every inverse network.
    #[arg(long, default_value_t = AttackConfig::default().inverse.mlp.epochs)]
    inverse_epochs: usize,
    /// Hidden width of the inverse networks (MLP m → H → 784).
    #[arg(long, default_value_t = 1000)]
    inverse_hidden: usize,
    /// Epochs of the attacker's shadow obfuscator.
    #[arg(long, default_value_t = AttackConfig::default().shadow.epochs)]
    shadow_epochs: usize,
    /// Training images of the shadow obfuscator.
    #[arg(long, default_value_t = AttackConfig::default().shadow.train_samples)]
    shadow_train: usize,
    /// Training images of the distinguishers.
    #[arg(long, default_value_t = AttackConfig::default().distinguisher.train_samples)]
    distinguisher_train: usize,
    /// Epochs of the separately trained recognition classifier (LeNet-5, seed 4242).
    #[arg(long, default_value_t = AttackConfig::default().recogniser_epochs)]
    recogniser_epochs: usize,
    /// Attacks to skip (comma-separated: inverse, rmle, shadow, distinguishers).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Seed of which net a device picks and of the noise drawn.
    #[arg(long, default_value_t = AttackConfig::default().seed)]
    seed: u64,
}

impl BudgetArgs {
    fn config(&self) -> Result<AttackConfig> {
        let mut c = AttackConfig {
            eval_samples: self.eval_samples,
            rmle_samples: self.rmle_samples,
            seed: self.seed,
            per_net_train_samples: self.per_net_train,
            recogniser_epochs: self.recogniser_epochs,
            ..AttackConfig::default()
        };
        c.rmle.steps = self.rmle_steps;
        c.rmle.tv_weight = self.rmle_tv;
        c.inverse.train_samples = self.inverse_train;
        c.inverse.mlp.epochs = self.inverse_epochs;
        c.inverse.mlp.hidden = vec![self.inverse_hidden];
        c.shadow.epochs = self.shadow_epochs;
        c.shadow.train_samples = self.shadow_train;
        c.distinguisher.train_samples = self.distinguisher_train;
        c.grid_samples = c.grid_samples.min(c.eval_samples);
        for s in &self.skip {
            match s.as_str() {
                "inverse" => c.attacks.inverse = false,
                "rmle" => c.attacks.rmle = false,
                "shadow" => c.attacks.shadow = false,
                "distinguishers" => c.attacks.distinguishers = false,
                other => bail!("--skip {other:?}: one of inverse, rmle, shadow, distinguishers"),
            }
        }
        c.validate().context("attack budgets")?;
        Ok(c)
    }
}

/// A baseline on the command line: `laplace:EPS`, `gaussian:SIGMA`, `projection-orthogonal`,
/// `projection-gaussian:M`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Baseline {
    Laplace(f64),
    Gaussian(f64),
    Orthogonal,
    GaussianProjection(usize),
}

fn parse_baseline(s: &str) -> std::result::Result<Baseline, String> {
    let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
    let num = |what: &str| -> std::result::Result<f64, String> {
        arg.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| format!("{s:?}: {what} must be a positive number"))
    };
    match kind {
        "laplace" => Ok(Baseline::Laplace(num("ε")?)),
        "gaussian" => Ok(Baseline::Gaussian(num("σ")?)),
        "projection-orthogonal" => Ok(Baseline::Orthogonal),
        "projection-gaussian" => arg
            .parse::<usize>()
            .ok()
            .filter(|&m| (1..=784).contains(&m))
            .map(Baseline::GaussianProjection)
            .ok_or_else(|| format!("{s:?}: M must be in 1..=784")),
        _ => Err(format!(
            "unknown baseline {s:?}; laplace:EPS, gaussian:SIGMA, projection-orthogonal or projection-gaussian:M"
        )),
    }
}

/// δ at which the Gaussian baselines' ε is stated.
const GAUSSIAN_DELTA: f64 = 1e-5;

/// The baseline `b` on inputs of `d` values (784 for 28×28 images).
fn baseline_scheme(b: &Baseline, seed: u64, d: usize) -> Result<Box<dyn Scheme>> {
    let server_mlp = MlpConfig {
        hidden: vec![256],
        epochs: 3,
        ..MlpConfig::default()
    };
    Ok(match *b {
        Baseline::Laplace(eps) => Box::new(NoiseScheme::laplace_for_epsilon(eps, d)?),
        Baseline::Gaussian(sigma) => {
            Box::new(NoiseScheme::new(Noise::Gaussian { sigma }, d, GAUSSIAN_DELTA)?)
        }
        Baseline::Orthogonal => Box::new(ProjectionScheme::new(
            ProjectionKind::Orthogonal,
            d,
            d,
            seed,
            server_mlp,
        )?),
        Baseline::GaussianProjection(m) => Box::new(ProjectionScheme::new(
            ProjectionKind::Gaussian,
            d,
            m,
            seed,
            server_mlp,
        )?),
    })
}

#[derive(Debug, Args)]
pub(crate) struct AttackArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Directory of the server model.
    #[arg(long, default_value = "runs/server")]
    model: PathBuf,
    /// Bundle of obfuscators to attack.
    #[arg(long, conflicts_with = "baseline")]
    bundle: Option<PathBuf>,
    /// Which nets of the bundle the devices pick from (default: all).
    #[arg(long, value_delimiter = ',')]
    nets: Vec<usize>,
    /// Attack a baseline instead: laplace:EPS, gaussian:SIGMA, projection-orthogonal, projection-gaussian:M.
    #[arg(long, value_parser = parse_baseline)]
    baseline: Option<Baseline>,
    #[command(flatten)]
    budget: BudgetArgs,
    /// Also write result.json and a picture grid into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Directory of the server model.
    #[arg(long, default_value = "runs/server")]
    model: PathBuf,
    /// Existing bundles to use (the architecture is read from each); missing architectures are
    /// trained (see --obf-epochs, --obf-limit) and cached in the output directory.
    #[arg(long)]
    bundle: Vec<PathBuf>,
    /// Obfuscator architectures to evaluate.
    #[arg(long, value_delimiter = ',', default_value = "obfnet1,obfnet2,conv", value_parser = crate::parse_arch)]
    archs: Vec<ObfArch>,
    /// Extra bundles for the privacy–utility frontier (e.g. privacy-trained nets from
    /// `train-obf --adversary-weight`), each evaluated with all its nets (at most the largest
    /// -k) under its file name, and marked as privacy-trained in the table and the plot.
    #[arg(long)]
    frontier: Vec<PathBuf>,
    /// Values of K (the first K nets of each bundle).
    #[arg(short = 'k', long = "k", value_delimiter = ',', default_value = "1,10")]
    k: Vec<usize>,
    /// Baselines (comma-separated): laplace:EPS, gaussian:SIGMA, projection-orthogonal,
    /// projection-gaussian:M. EPS is per image (L1 sensitivity 784), SIGMA in pixel units.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = parse_baseline,
        default_value = "laplace:2352,laplace:7840,gaussian:0.5,gaussian:0.25,projection-orthogonal,projection-gaussian:196"
    )]
    baselines: Vec<Baseline>,
    /// Evaluate no baselines.
    #[arg(long)]
    no_baselines: bool,
    /// Epochs per net when a missing architecture must be trained.
    #[arg(long, default_value_t = 1)]
    obf_epochs: usize,
    /// Training images per net when a missing architecture must be trained (default: all).
    #[arg(long)]
    obf_limit: Option<usize>,
    /// Seed of net 0 when training (net i uses seed + i).
    #[arg(long, default_value_t = ObfTrainConfig::default().seed)]
    obf_seed: u64,
    #[command(flatten)]
    budget: BudgetArgs,
    /// Output directory (report.html, report.json, report.md, PNGs).
    #[arg(long, default_value = "runs/privacy")]
    out: PathBuf,
    /// Reuse results already in <out>/report.json that were made with the same budgets.
    #[arg(long)]
    resume: bool,
}

/// What `report` writes to report.json.
#[derive(Debug, Serialize, Deserialize)]
struct ReportFile {
    threat_model: String,
    config: AttackConfig,
    server_model_sha256: String,
    server_raw_accuracy: f64,
    recogniser: RecogniserInfo,
    bundles: Vec<BundleInfo>,
    results: Vec<SchemeResult>,
    seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecogniserInfo {
    model: String,
    epochs: usize,
    seed: u64,
    raw_test_accuracy: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BundleInfo {
    arch: String,
    path: PathBuf,
    nets: usize,
    trained_here: bool,
    training: Option<String>,
}

struct Setup {
    dataset: String,
    train: obfnet_nn::Dataset,
    test: obfnet_nn::Dataset,
    server: obfnet_nn::LeNet,
    sha: [u8; 32],
}

fn setup(data: &DataArgs, model: &Path) -> Result<Setup> {
    let ds = load_dataset(data)?;
    let (train, test) = to_datasets(&ds)?;
    let (server, sha) = datasets::load_model_for(model, &ds.name)?;
    Ok(Setup {
        dataset: ds.name.clone(),
        train,
        test,
        server,
        sha,
    })
}

fn load_stack(path: &Path, sha: &[u8; 32], dataset: &str) -> Result<ObfStack> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bundle = obfnet_core::Bundle::from_bytes(&bytes)
        .with_context(|| format!("rejecting bundle {}", path.display()))?;
    datasets::check_bundle_dataset(&bundle, path, dataset)?;
    bundle
        .expect_server_model(sha)
        .with_context(|| format!("{} was trained against another server model", path.display()))?;
    Ok(ObfStack::from_bundle(&bundle, &obfnet_nn::default_device())?)
}

pub(crate) fn run_attack(a: &AttackArgs, json: bool) -> Result<()> {
    let cfg = a.budget.config()?;
    let s = setup(&a.data, &a.model)?;
    let scheme: Box<dyn Scheme> = match (&a.bundle, &a.baseline) {
        (Some(path), None) => {
            let stack = load_stack(path, &s.sha, &s.dataset)?;
            let stack = if a.nets.is_empty() {
                stack
            } else {
                stack.subset(&a.nets)?
            };
            Box::new(ObfScheme::new(&stack))
        }
        (None, Some(b)) => baseline_scheme(b, cfg.seed, s.test.dim())?,
        _ => bail!("give --bundle or --baseline"),
    };
    let mut bar = progress::Bars::new(interactive() && !json);
    let recogniser = Recogniser::train(&cfg, &s.train, &s.test, &mut |e| bar.on(e))?;
    let ctx = EvalContext {
        server: &s.server,
        train: &s.train,
        test: &s.test,
        recogniser: &recogniser,
    };
    let result = evaluate_scheme(scheme.as_ref(), ctx, &cfg, &mut |e| bar.on(e))?;
    bar.finish();
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        write_grid(out, &result)?;
        let text = serde_json::to_vec_pretty(
            &json!({"threat_model": THREAT_MODEL, "config": cfg, "result": result}),
        )?;
        obfnet_nn::write_atomic(&out.join("result.json"), &text)?;
        if s.dataset == obfnet_data::FSDD.name() {
            let fsdd = obfnet_data::FSDD.load_full(&a.data.data_dir.join("fsdd"))?;
            let (page, _) = crate::listen::write_listening(
                out,
                &fsdd,
                &s.test,
                scheme.as_ref(),
                &result,
                cfg.seed,
                cfg.grid_samples,
            )?;
            eprintln!("[obfnet] listen to the clips: {}", page.display());
        }
    }
    let mut summary = result.clone();
    summary.pictures.originals.clear();
    summary.pictures.observed.clear();
    summary.pictures.reconstructions.clear();
    emit(
        json,
        &json!({"threat_model": THREAT_MODEL, "config": cfg, "recogniser_raw_accuracy": recogniser.raw_accuracy, "result": summary}),
        || {
            println!("{THREAT_MODEL}");
            println!("{}", markdown_table(std::slice::from_ref(&result)));
        },
    );
    Ok(())
}

fn file_bundles_extra(out: &mut Vec<BundleInfo>, path: &Path, stack: &ObfStack) {
    out.push(BundleInfo {
        arch: stack.arch().name().into(),
        path: path.to_path_buf(),
        nets: stack.k(),
        trained_here: false,
        training: Some(format!(
            "frontier bundle, {} multiply-adds per sample",
            stack.macs()
        )),
    });
}

fn bundle_arch(path: &Path) -> Result<ObfArch> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bundle = obfnet_core::Bundle::from_bytes(&bytes)
        .with_context(|| format!("rejecting bundle {}", path.display()))?;
    let name = bundle
        .manifest
        .nets
        .first()
        .map(|n| n.arch.clone())
        .context("bundle holds no nets")?;
    ObfArch::from_name(&name).with_context(|| format!("{}: unknown architecture {name:?}", path.display()))
}

pub(crate) fn run_report(a: &ReportArgs, json: bool) -> Result<()> {
    let t0 = Instant::now();
    let cfg = a.budget.config()?;
    ensure!(
        !a.k.is_empty() && a.k.iter().all(|&k| (1..=256).contains(&k)),
        "-k values must be in 1..=256"
    );
    let kmax = a.k.iter().copied().max().unwrap_or(1);
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let s = setup(&a.data, &a.model)?;
    let mut bar = progress::Bars::new(interactive() && !json);

    // Bundles: given, cached from an earlier run, or trained now.
    let mut given = Vec::new();
    for p in &a.bundle {
        given.push((bundle_arch(p)?, p.clone()));
    }
    let mut stacks = Vec::new();
    let mut bundles = Vec::new();
    let mut bundles_extra = Vec::new();
    for &arch in &a.archs {
        let cached = a.out.join(format!("obfnets-{arch}.obfb"));
        let found = given
            .iter()
            .find(|(g, _)| *g == arch)
            .map(|(_, p)| p.clone())
            .or_else(|| cached.exists().then(|| cached.clone()));
        let (stack, info) = match found {
            Some(path) => {
                let stack = load_stack(&path, &s.sha, &s.dataset)?;
                let training = (path == cached).then(|| "trained by an earlier `obfnet report`".to_string());
                (
                    stack.clone(),
                    BundleInfo {
                        arch: arch.name().into(),
                        path,
                        nets: stack.k(),
                        trained_here: false,
                        training,
                    },
                )
            }
            None => {
                let tcfg = ObfTrainConfig {
                    arch,
                    k: kmax,
                    epochs: a.obf_epochs,
                    limit: a.obf_limit,
                    seed: a.obf_seed,
                    ..ObfTrainConfig::default()
                };
                eprintln!(
                    "[obfnet] no {arch} bundle given: training {kmax} nets ({} epoch(s), {} images each)",
                    tcfg.epochs,
                    tcfg.limit.map_or("all".into(), |l| l.to_string())
                );
                let (stack, rep) =
                    obfnet_nn::train_obfuscators(&tcfg, &s.server, &s.train, &s.test, &mut |e| bar.on(e))?;
                crate::write_bundle(&stack, &s.dataset, s.sha, &cached)?;
                let training = format!(
                    "{} epoch(s), {} images per net, mean accuracy behind the nets {:.2}%",
                    tcfg.epochs,
                    rep.train_samples,
                    rep.mean_accuracy() * 100.0
                );
                (
                    stack.clone(),
                    BundleInfo {
                        arch: arch.name().into(),
                        path: cached,
                        nets: stack.k(),
                        trained_here: true,
                        training: Some(training),
                    },
                )
            }
        };
        ensure!(
            stack.k() >= kmax,
            "the {arch} bundle {} holds {} nets, -k asks for {kmax}",
            info.path.display(),
            stack.k()
        );
        stacks.push(stack);
        bundles.push(info);
    }

    let mut schemes: Vec<Box<dyn Scheme>> = Vec::new();
    for stack in &stacks {
        for &k in &a.k {
            let nets: Vec<usize> = (0..k).collect();
            schemes.push(Box::new(ObfScheme::new(&stack.subset(&nets)?)));
        }
    }
    let mut frontier_names = Vec::new();
    for path in &a.frontier {
        let stack = load_stack(path, &s.sha, &s.dataset)?;
        let k = stack.k().min(kmax);
        let nets: Vec<usize> = (0..k).collect();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().trim_start_matches("obfnets-").to_string())
            .unwrap_or_else(|| "frontier".into());
        let name = format!("{stem}-k{k}");
        ensure!(
            !frontier_names.contains(&name),
            "two --frontier bundles would both be reported as {name}"
        );
        file_bundles_extra(&mut bundles_extra, path, &stack);
        frontier_names.push(name.clone());
        schemes.push(Box::new(ObfScheme::new(&stack.subset(&nets)?).with_name(name)));
    }
    if !a.no_baselines {
        for b in &a.baselines {
            schemes.push(baseline_scheme(b, cfg.seed, s.test.dim())?);
        }
    }

    let report_path = a.out.join("report.json");
    let mut previous: Vec<SchemeResult> = Vec::new();
    if a.resume && report_path.exists() {
        let text =
            std::fs::read(&report_path).with_context(|| format!("reading {}", report_path.display()))?;
        let old: ReportFile =
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", report_path.display()))?;
        if old.config == cfg {
            previous = old.results;
        } else {
            eprintln!(
                "[obfnet] --resume: budgets differ from {}; starting over",
                report_path.display()
            );
        }
    }

    let recogniser = Recogniser::train(&cfg, &s.train, &s.test, &mut |e| bar.on(e))?;
    let raw = obfnet_nn::accuracy(&s.server, &s.test)?;
    let ctx = EvalContext {
        server: &s.server,
        train: &s.train,
        test: &s.test,
        recogniser: &recogniser,
    };
    let mut file = ReportFile {
        threat_model: THREAT_MODEL.into(),
        config: cfg.clone(),
        server_model_sha256: obfnet_core::hex(&s.sha),
        server_raw_accuracy: raw,
        recogniser: RecogniserInfo {
            model: "LeNet-5 trained separately (own seed) on the training split".into(),
            epochs: recogniser.epochs,
            seed: recogniser.seed,
            raw_test_accuracy: recogniser.raw_accuracy,
        },
        bundles: bundles.into_iter().chain(bundles_extra).collect(),
        results: Vec::new(),
        seconds: 0.0,
    };
    for (i, scheme) in schemes.iter().enumerate() {
        let name = scheme.name();
        let result = match previous.iter().find(|r| r.name == name) {
            Some(r) => {
                eprintln!("[obfnet] {name}: reusing the result in {}", report_path.display());
                r.clone()
            }
            None => {
                eprintln!("[obfnet] scheme {}/{}: {name}", i + 1, schemes.len());
                evaluate_scheme(scheme.as_ref(), ctx, &cfg, &mut |e| bar.on(e))
                    .with_context(|| format!("evaluating {name}"))?
            }
        };
        let mut result = result;
        result.privacy_trained = frontier_names.contains(&name);
        file.results.push(result);
        file.seconds = t0.elapsed().as_secs_f64();
        // written after every scheme, so an interrupted run loses nothing finished
        obfnet_nn::write_atomic(&report_path, &serde_json::to_vec(&file)?)?;
    }
    bar.finish();
    let html = write_outputs(&a.out, &file)?;
    let table = format!("{}{}", markdown_table(&file.results), frontier_table(&file));
    emit(
        json,
        &json!({"report": html, "json": report_path, "seconds": file.seconds, "schemes": file.results.len()}),
        || {
            println!("{table}");
            println!("report written to {} ({:.0} s)", html.display(), file.seconds);
        },
    );
    Ok(())
}

fn macs_cell(macs: Option<u64>) -> String {
    macs.map_or("–".into(), |m| format!("{:.2} M", m as f64 / 1e6))
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn guarantee_cell(g: &Guarantee) -> String {
    match g {
        Guarantee::FormalDp { epsilon, delta, .. } if *delta == 0.0 => format!("formal: ε = {epsilon:.0}"),
        Guarantee::FormalDp { epsilon, delta, .. } => format!("formal: ε = {epsilon:.0}, δ = {delta:.0e}"),
        Guarantee::Cryptographic { .. } => "cryptographic".into(),
        _ => "none (empirical only)".into(),
    }
}

/// The results table in Markdown (also used for the README).
fn markdown_table(results: &[SchemeResult]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| scheme | K | device MACs | formal guarantee | accuracy | attack (empirical) | SSIM | PSNR dB | recognisability | raw-vs-obf AUC (empirical) | which-of-K acc (chance; empirical) |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let (auc, which) = match &r.distinguishers {
            Some(d) => (
                d.raw_vs_observed_auc
                    .map_or("n/a (size differs)".into(), |v| format!("{v:.3}")),
                match (d.which_of_k_accuracy, d.which_of_k_chance) {
                    (Some(a), Some(c)) => format!("{} ({})", pct(a), pct(c)),
                    _ => "–".into(),
                },
            ),
            None => ("not run".into(), "not run".into()),
        };
        for (i, a) in r.attacks.iter().enumerate() {
            let first = i == 0;
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {:.3} | {:.1} | {} | {} | {} |",
                if first { r.name.as_str() } else { "" },
                if first { r.k.to_string() } else { String::new() },
                if first {
                    macs_cell(r.device_macs)
                } else {
                    String::new()
                },
                if first {
                    guarantee_cell(&r.guarantee)
                } else {
                    String::new()
                },
                if first {
                    pct(r.utility.accuracy)
                } else {
                    String::new()
                },
                if a.scores.n < r.attacks[0].scores.n {
                    format!("{} (n={})", a.attack, a.scores.n)
                } else {
                    a.attack.clone()
                },
                a.scores.ssim,
                a.scores.psnr_db,
                pct(a.recognisability),
                if first { auc.as_str() } else { "" },
                if first { which.as_str() } else { "" },
            );
        }
    }
    t
}

/// Accuracy drop at or below which (points) and best-attack SSIM at or below which a
/// configuration with at least `GOAL_K` nets meets the privacy goal.
const GOAL_DROP_PT: f64 = 1.0;
const GOAL_SSIM: f64 = 0.3;
const GOAL_K: usize = 10;

/// Whether K nets with this accuracy drop (points) and best-attack SSIM meet the goal, and if
/// not, why.
fn goal_verdict(k: usize, drop: f64, ssim: f64) -> String {
    if k < GOAL_K {
        return format!("n/a (K = {k} < {GOAL_K})");
    }
    let mut why = Vec::new();
    if drop.is_nan() || drop > GOAL_DROP_PT {
        why.push(format!("drop {drop:.2} pt > {GOAL_DROP_PT}"));
    }
    if ssim.is_nan() || ssim > GOAL_SSIM {
        why.push(format!("SSIM {ssim:.3} > {GOAL_SSIM}"));
    }
    if why.is_empty() {
        "met".into()
    } else {
        format!("not met: {}", why.join(", "))
    }
}

/// The obfuscators next to the goal (accuracy drop ≤ 1 pt, best-attack SSIM ≤ 0.3, K = 10):
/// every ObfNet scheme, privacy-trained or not. Empty when the report holds none.
fn frontier_table(f: &ReportFile) -> String {
    let rows: Vec<&SchemeResult> = f.results.iter().filter(|r| r.family == Family::ObfNet).collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nGoal: best-attack SSIM ≤ {GOAL_SSIM} at ≤ {GOAL_DROP_PT} pt mean accuracy drop with K = {GOAL_K} \
         (raw accuracy {}). Best attack = the strongest of the fresh attackers above (empirical); \
         the label-only floor is what the server's answer alone reveals.\n",
        pct(f.server_raw_accuracy)
    );
    let _ = writeln!(
        t,
        "| scheme | privacy-trained | K | device MACs | accuracy | drop (pt) | best attack | SSIM | label-only floor | goal |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let drop = (f.server_raw_accuracy - r.utility.accuracy) * 100.0;
        let (name, ssim) = r.best_attack().map_or(("–".to_string(), f64::NAN), |b| {
            (b.attack.clone(), b.scores.ssim)
        });
        let floor = r
            .label_only()
            .map_or("–".into(), |l| format!("{:.3}", l.scores.ssim));
        let goal = goal_verdict(r.k, drop, ssim);
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {drop:.2} | {name} | {ssim:.3} | {floor} | {goal} |",
            r.name,
            if r.privacy_trained { "yes" } else { "no" },
            r.k,
            macs_cell(r.device_macs),
            pct(r.utility.accuracy),
        );
    }
    t
}

fn grid_name(r: &SchemeResult) -> String {
    format!("grid-{}.png", r.name)
}

fn write_grid(out: &Path, r: &SchemeResult) -> Result<PathBuf> {
    let p = &r.pictures;
    let cols = p.originals.len();
    // rows with fewer samples (rMLE may attack fewer than are shown) are padded with mid-gray
    let scale = |rows: &[Vec<f32>]| -> Vec<Vec<f32>> {
        let mut out: Vec<Vec<f32>> = rows
            .iter()
            .take(cols)
            .map(|img| img.iter().map(|v| v * 255.0).collect())
            .collect();
        out.resize(cols, vec![128.0; p.rows * p.cols]);
        out
    };
    let mut grid = vec![scale(&p.originals), scale(&p.observed)];
    for (_, rec) in &p.reconstructions {
        grid.push(scale(rec));
    }
    let path = out.join(grid_name(r));
    crate::grid::write_grid_png(&path, &grid, p.rows, p.cols, 2, 2)?;
    Ok(path)
}

/// Colour of privacy-trained (frontier) obfuscators in the table and plot.
const FRONTIER_RGB: [u8; 3] = [23, 190, 207];

fn family_colour(r: &SchemeResult) -> [u8; 3] {
    if r.privacy_trained {
        return FRONTIER_RGB;
    }
    match (r.family, r.arch.as_deref()) {
        (Family::ObfNet, Some("obfnet1")) => [214, 39, 40],
        (Family::ObfNet, Some("obfnet2")) => [255, 127, 14],
        (Family::ObfNet, _) => [148, 103, 189],
        (Family::Laplace, _) => [31, 119, 180],
        (Family::Gaussian, _) => [44, 160, 44],
        _ => [127, 127, 127],
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn img_tag(path: &Path, alt: &str) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(format!(
        "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
        html_escape(alt),
        base64(&bytes)
    ))
}

/// Writes the PNGs, report.md and the self-contained report.html; returns the HTML's path.
fn write_outputs(out: &Path, f: &ReportFile) -> Result<PathBuf> {
    let mut grids = Vec::new();
    for r in &f.results {
        grids.push((r, write_grid(out, r)?));
    }
    let points: Vec<crate::plot::Point> = f
        .results
        .iter()
        .filter_map(|r| {
            r.best_attack().map(|b| crate::plot::Point {
                x: b.scores.ssim,
                y: r.utility.accuracy,
                rgb: family_colour(r),
                filled: r.k > 1 || r.family != Family::ObfNet,
            })
        })
        .collect();
    let y_min = points
        .iter()
        .map(|p| p.y)
        .fold(1.0f64, f64::min)
        .min(0.9)
        .mul_add(10.0, -0.5)
        .floor()
        .max(0.0)
        / 10.0;
    let scatter = out.join("accuracy-vs-ssim.png");
    let mut vlines = vec![crate::plot::VLine {
        x: 0.3,
        rgb: [200, 0, 0],
        label: "SSIM 0.3".into(),
    }];
    if let Some(l) = f.results.iter().find_map(SchemeResult::label_only) {
        vlines.push(crate::plot::VLine {
            x: l.scores.ssim,
            rgb: [0, 0, 0],
            label: "LABEL ONLY".into(),
        });
    }
    crate::plot::write_scatter_png(&scatter, &points, y_min, &vlines)?;
    let frontier = frontier_table(f);
    let table = format!("{}{frontier}", markdown_table(&f.results));
    std::fs::write(out.join("report.md"), &table)
        .with_context(|| format!("writing {}/report.md", out.display()))?;

    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>obfnet privacy report</title><style>\
body{{font-family:sans-serif;max-width:1200px;margin:2em auto;line-height:1.4}}\
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}\
td:first-child,th{{text-align:left}}img{{image-rendering:pixelated;max-width:100%}}.k{{display:inline-block;width:12px;height:12px}}\
</style></head><body><h1>obfnet privacy report</h1>"
    );
    let _ = write!(
        h,
        "<h2>Threat model</h2><p>{}</p><p><b>How to read the numbers.</b> Every attack score (SSIM, PSNR, \
recognisability, AUC, which-of-K accuracy) is <b>empirical</b>: what these attacks achieved at the budgets below, \
not a bound — a stronger attack may do better. A guarantee is <b>formal</b> only where the table says so \
(local DP noise with the stated ε, δ per image; with ε in the thousands such a bound says little). \
Accuracy is the server's test accuracy under each scheme (utility). SSIM ≈ 1 means the image is recovered; \
below ≈ 0.3 digits are generally unrecognisable (He, Zhang &amp; Lee 2019).</p>",
        html_escape(THREAT_MODEL)
    );
    let _ = write!(
        h,
        "<p>Server model: LeNet-5 (sha256 {}), raw test accuracy {}. Recognisability = accuracy of a separately trained \
classifier ({}, {} epoch(s), seed {}; {} on raw test images) on the reconstructions. Wall time {:.0} s.</p>",
        f.server_model_sha256,
        pct(f.server_raw_accuracy),
        html_escape(&f.recogniser.model),
        f.recogniser.epochs,
        f.recogniser.seed,
        pct(f.recogniser.raw_test_accuracy),
        f.seconds
    );
    h.push_str("<h2>Obfuscator bundles</h2><ul>");
    for b in &f.bundles {
        let _ = write!(
            h,
            "<li>{}: {} nets from {}{}</li>",
            b.arch,
            b.nets,
            html_escape(&b.path.display().to_string()),
            b.training
                .as_ref()
                .map_or(String::new(), |t| format!(" ({})", html_escape(t)))
        );
    }
    h.push_str("</ul><h2>Results</h2><table><tr><th>scheme</th><th>K</th><th>device MACs</th><th>guarantee</th><th>accuracy</th><th>attack (empirical)</th><th>SSIM</th><th>PSNR dB</th><th>MSE</th><th>recognisability</th><th>n</th><th>raw-vs-obf AUC (empirical)</th><th>which-of-K acc (chance)</th></tr>");
    for r in &f.results {
        let (auc, which) = match &r.distinguishers {
            Some(d) => (
                d.raw_vs_observed_auc.map_or_else(
                    || d.raw_vs_observed_note.clone().unwrap_or_default(),
                    |v| format!("{v:.3}"),
                ),
                match (d.which_of_k_accuracy, d.which_of_k_chance) {
                    (Some(a), Some(c)) => format!("{} ({})", pct(a), pct(c)),
                    _ => "–".into(),
                },
            ),
            None => ("not run".into(), "not run".into()),
        };
        let span = r.attacks.len().max(1);
        for (i, a) in r.attacks.iter().enumerate() {
            h.push_str("<tr>");
            if i == 0 {
                let c = family_colour(r);
                let _ = write!(
                    h,
                    "<td rowspan={span}><span class=k style=\"background:rgb({},{},{})\"></span> {}</td><td rowspan={span}>{}</td><td rowspan={span}>{}</td><td rowspan={span} title=\"{}\">{}</td><td rowspan={span} title=\"{}\">{}</td>",
                    c[0],
                    c[1],
                    c[2],
                    html_escape(&r.name),
                    r.k,
                    macs_cell(r.device_macs),
                    html_escape(&match &r.guarantee {
                        Guarantee::FormalDp { basis, .. } => basis.clone(),
                        _ => "no formal guarantee".into(),
                    }),
                    html_escape(&r.guarantee.label()),
                    html_escape(&r.utility.note),
                    pct(r.utility.accuracy)
                );
            }
            let _ = write!(
                h,
                "<td title=\"{}\">{}</td><td>{:.3}</td><td>{:.1}</td><td>{:.4}</td><td>{}</td><td>{}</td>",
                html_escape(a.note.as_deref().unwrap_or("")),
                html_escape(&a.attack),
                a.scores.ssim,
                a.scores.psnr_db,
                a.scores.mse,
                pct(a.recognisability),
                a.scores.n
            );
            if i == 0 {
                let _ = write!(
                    h,
                    "<td rowspan={span}>{}</td><td rowspan={span}>{}</td>",
                    html_escape(&auc),
                    which
                );
            }
            h.push_str("</tr>");
        }
    }
    h.push_str("</table><p>observed-as-image and label-only are references, not attacks on the scheme: what the device sent, read as an image; \
and the mean training image of the sample's true label — what the server's answer alone reveals. No scheme that lets the server answer \
correctly can push every attack below the label-only row; it is the floor of the frontier.</p>");
    let _ = write!(
        h,
        "<h2>Privacy–utility frontier</h2><p>x: SSIM of the strongest reconstruction attack (empirical), y: server accuracy. \
Colours: <span class=k style=\"background:rgb(214,39,40)\"></span> ObfNet1, <span class=k style=\"background:rgb(255,127,14)\"></span> ObfNet2, \
<span class=k style=\"background:rgb(148,103,189)\"></span> conv, <span class=k style=\"background:rgb(31,119,180)\"></span> Laplace, \
<span class=k style=\"background:rgb(44,160,44)\"></span> Gaussian, <span class=k style=\"background:rgb(127,127,127)\"></span> projection, \
<span class=k style=\"background:rgb(23,190,207)\"></span> privacy-trained (frontier bundles); \
hollow = ObfNet K = 1. Dashed lines: red, SSIM 0.3 (≈ unrecognisable); black, the label-only floor.</p>{}",
        img_tag(&scatter, "accuracy vs SSIM")?
    );
    if !frontier.is_empty() {
        h.push_str("<h2>Privacy-trained obfuscators against the goal</h2><pre>");
        h.push_str(&html_escape(&frontier));
        h.push_str("</pre>");
    }
    h.push_str("<h2>Pictures</h2><p>Rows: original; what was sent (scaled per image for display); then each attack's reconstruction in the order of the table.</p>");
    for (r, path) in &grids {
        let names: Vec<&str> = r
            .pictures
            .reconstructions
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        let _ = write!(
            h,
            "<h3>{}</h3><p>rows: original, sent, {}</p>{}",
            html_escape(&r.name),
            html_escape(&names.join(", ")),
            img_tag(path, &r.name)?
        );
    }
    let _ = write!(
        h,
        "<h2>Budgets</h2><pre>{}</pre></body></html>",
        html_escape(&serde_json::to_string_pretty(&f.config)?)
    );
    let path = out.join("report.html");
    obfnet_nn::write_atomic(&path, h.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goal_needs_ten_nets_small_drop_and_low_ssim() {
        assert_eq!(goal_verdict(10, 0.9, 0.29), "met");
        assert_eq!(goal_verdict(10, 1.0, 0.3), "met");
        assert!(goal_verdict(2, 0.1, 0.1).starts_with("n/a"));
        assert_eq!(goal_verdict(10, 1.2, 0.2), "not met: drop 1.20 pt > 1");
        assert_eq!(goal_verdict(10, 0.5, 0.31), "not met: SSIM 0.310 > 0.3");
        assert!(goal_verdict(10, 0.5, f64::NAN).starts_with("not met"));
    }

    #[test]
    fn base64_known_answers() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn baselines_parse_and_reject() {
        assert_eq!(parse_baseline("laplace:784"), Ok(Baseline::Laplace(784.0)));
        assert_eq!(parse_baseline("gaussian:0.5"), Ok(Baseline::Gaussian(0.5)));
        assert_eq!(parse_baseline("projection-orthogonal"), Ok(Baseline::Orthogonal));
        assert_eq!(
            parse_baseline("projection-gaussian:196"),
            Ok(Baseline::GaussianProjection(196))
        );
        for bad in [
            "laplace",
            "laplace:-1",
            "gaussian:nan",
            "projection-gaussian:0",
            "projection-gaussian:900",
            "rot13",
        ] {
            assert!(parse_baseline(bad).is_err(), "{bad}");
        }
    }
}
