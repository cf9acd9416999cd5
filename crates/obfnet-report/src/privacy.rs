//! `obfnet attack` and `obfnet report` as library jobs: the privacy evaluation (crate
//! `obfnet-privacy`) over bundles (given, cached from an earlier run, or trained now) and
//! baselines, resumable, rendered as a self-contained HTML report (inline SVG plot, PNG
//! pictures), Markdown and the versioned `report.json` ([`ReportFile`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use obfnet_data::DatasetReader as _;
use obfnet_nn::{ObfArch, ObfStack, ObfTrainConfig};
use obfnet_privacy::{
    AttackConfig, AttackScore, EvalContext, Family, Guarantee, MlpConfig, Noise, NoiseScheme, ObfScheme,
    ProjectionKind, ProjectionScheme, Recogniser, Scheme, SchemeResult, SpeakerConfig, SpeakerResult,
    evaluate_scheme, speaker_identification, speaker_indices,
};
use serde::{Deserialize, Serialize};

use crate::goal::{GOAL_DROP_PT, GOAL_GAIN, GOAL_K, goal_verdict};
use crate::html::{escape as html_escape, png_img};
use crate::schema::{Versioned, version_one};
use crate::setup::{DataSource, Setup, bundle_arch, load_stack_and_noise, write_bundle};
use crate::{Progress, say};

/// The threat model, stated once for the report, the JSON and the README.
pub const THREAT_MODEL: &str = "Honest-but-curious server. It knows the frozen model, the \
architecture and weights of all K obfuscators (it trained them), and has data from the same \
distribution (its own training split). It does not know which of the K nets a device used for a \
given sample. Attackers train only on the training split; they are scored on test-split samples.";

/// A baseline scheme, written `laplace:EPS`, `gaussian:SIGMA`, `projection-orthogonal` or
/// `projection-gaussian:M` (see [`parse_baseline`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Baseline {
    /// Local DP Laplace noise with ε per image (L1 sensitivity 784).
    Laplace(f64),
    /// Gaussian noise of σ in pixel units (ε stated at δ = 1e-5).
    Gaussian(f64),
    /// A random orthogonal projection (the server retrains on projections).
    Orthogonal,
    /// A random Gaussian projection to M dimensions.
    GaussianProjection(usize),
}

impl FromStr for Baseline {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        parse_baseline(s)
    }
}

/// Parses a baseline (the syntax of [`Baseline`]); the error says what is accepted.
///
/// # Errors
/// An unknown kind or a parameter out of range.
pub fn parse_baseline(s: &str) -> std::result::Result<Baseline, String> {
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
///
/// # Errors
/// Parameters the mechanism refuses.
/// `noise_seed` seeds the Laplace / Gaussian noise (to reproduce a run; the scheme then reports
/// its DP guarantee as void); `None` draws it from the OS-seeded CSPRNG.
pub fn baseline_scheme(
    b: &Baseline,
    seed: u64,
    noise_seed: Option<u64>,
    d: usize,
) -> Result<Box<dyn Scheme>> {
    let server_mlp = MlpConfig {
        hidden: vec![256],
        epochs: 3,
        ..MlpConfig::default()
    };
    let seeded = |n: NoiseScheme| match noise_seed {
        Some(s) => n.with_noise_seed(s),
        None => n,
    };
    Ok(match *b {
        Baseline::Laplace(eps) => Box::new(seeded(NoiseScheme::laplace_for_epsilon(eps, d)?)),
        Baseline::Gaussian(sigma) => Box::new(seeded(NoiseScheme::new(
            Noise::Gaussian { sigma },
            d,
            GAUSSIAN_DELTA,
        )?)),
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

/// A bundle's σ as the decimal it was written with (`0.3`, not `0.30000001192092896`).
fn sigma_of(n: obfnet_core::OutputNoise) -> f64 {
    n.sigma.to_string().parse().unwrap_or(f64::from(n.sigma))
}

/// `scheme`, with the device's output noise of deviation `sigma` (pixel units; the law of bundle
/// format 3, [`obfnet_core::OutputNoise`]) when given.
fn with_device_noise(scheme: ObfScheme, sigma: Option<f64>, seed: Option<u64>) -> Result<Box<dyn Scheme>> {
    Ok(match sigma {
        Some(sigma) => Box::new(
            scheme
                .with_output_noise(Noise::IrwinHall12 { sigma }, seed)
                .context("output noise")?,
        ),
        None => Box::new(scheme),
    })
}

/// What is attacked by [`run_attack`].
#[derive(Debug, Clone, PartialEq)]
pub enum AttackTarget {
    /// A bundle, with the nets devices pick from (empty: all).
    Bundle {
        /// The bundle file.
        path: PathBuf,
        /// Which of its nets.
        nets: Vec<usize>,
        /// Gaussian noise (deviation in pixel units) the device adds after the net
        /// ([`ObfScheme::with_output_noise`]); seeded by [`AttackJob::noise_seed`] when given.
        output_noise: Option<f64>,
    },
    /// A baseline mechanism.
    Baseline(Baseline),
}

/// `obfnet attack`: one scheme, all attacks.
#[derive(Debug, Clone)]
pub struct AttackJob {
    /// The dataset.
    pub data: DataSource,
    /// Directory of the server model.
    pub model: PathBuf,
    /// What to attack.
    pub target: AttackTarget,
    /// Budgets.
    pub config: AttackConfig,
    /// Seed of a noise baseline's noise (None: OS randomness). A seeded run's DP guarantee is
    /// reported void.
    pub noise_seed: Option<u64>,
    /// Also write result.json, a picture grid (and for FSDD a listening page) here.
    pub out: Option<PathBuf>,
}

/// What [`run_attack`] measured.
#[derive(Debug, Clone)]
pub struct AttackOutcome {
    /// The budgets used.
    pub config: AttackConfig,
    /// Accuracy of the recognition classifier on raw test images.
    pub recogniser_raw_accuracy: f64,
    /// The result, pictures included.
    pub result: SchemeResult,
    /// The FSDD listening page, when one was written.
    pub listen_page: Option<PathBuf>,
}

/// `result.json` of `obfnet attack --out`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttackFile {
    /// Schema version ([`Versioned::VERSION`]).
    #[serde(default = "version_one")]
    pub schema_version: u32,
    /// [`THREAT_MODEL`].
    pub threat_model: String,
    /// Budgets.
    pub config: AttackConfig,
    /// The result.
    pub result: SchemeResult,
}

impl Versioned for AttackFile {
    const KIND: &'static str = "attack result";
    const VERSION: u32 = 1;
}

/// `obfnet report`: every architecture × K, frontier bundles and baselines, all attacks.
#[derive(Debug, Clone)]
pub struct ReportJob {
    /// The dataset.
    pub data: DataSource,
    /// Directory of the server model.
    pub model: PathBuf,
    /// Existing bundles (the architecture is read from each).
    pub bundles: Vec<PathBuf>,
    /// Architectures evaluated; missing ones are trained and cached in `out`.
    pub archs: Vec<ObfArch>,
    /// Extra (privacy-trained) bundles, each under its file name.
    pub frontier: Vec<PathBuf>,
    /// Values of K (the first K nets of each bundle).
    pub k: Vec<usize>,
    /// Baselines (empty: none).
    pub baselines: Vec<Baseline>,
    /// Seed of the noise baselines' noise (None: OS randomness). A seeded run's DP guarantee is
    /// reported void.
    pub noise_seed: Option<u64>,
    /// Epochs per net when an architecture must be trained.
    pub obf_epochs: usize,
    /// Training images per net when training (None: all).
    pub obf_limit: Option<usize>,
    /// Seed of net 0 when training.
    pub obf_seed: u64,
    /// Budgets.
    pub config: AttackConfig,
    /// Output directory.
    pub out: PathBuf,
    /// Reuse results in `<out>/report.json` made with the same budgets.
    pub resume: bool,
}

/// What [`run_report`] wrote.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    /// report.html.
    pub html: PathBuf,
    /// report.json.
    pub json: PathBuf,
    /// The report.
    pub file: ReportFile,
    /// The Markdown tables (also in report.md).
    pub markdown: String,
}

/// `report.json` of `obfnet report`; read back by `--resume` and by `obfnet compare`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportFile {
    /// Schema version ([`Versioned::VERSION`]; files without it are version 1).
    #[serde(default = "version_one")]
    pub schema_version: u32,
    /// [`THREAT_MODEL`].
    pub threat_model: String,
    /// Budgets.
    pub config: AttackConfig,
    /// Id of the server model.
    pub server_model_sha256: String,
    /// Its accuracy on raw test inputs.
    pub server_raw_accuracy: f64,
    /// The recognition classifier.
    pub recogniser: RecogniserInfo,
    /// Bundles evaluated.
    pub bundles: Vec<BundleInfo>,
    /// One result per scheme.
    pub results: Vec<SchemeResult>,
    /// Wall time so far.
    pub seconds: f64,
}

impl Versioned for ReportFile {
    const KIND: &'static str = "privacy report";
    const VERSION: u32 = 1;
}

impl ReportFile {
    /// The scheme named `name`.
    pub fn scheme(&self, name: &str) -> Option<&SchemeResult> {
        self.results.iter().find(|r| r.name == name)
    }
}

/// The separately trained recognition classifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecogniserInfo {
    /// What it is.
    pub model: String,
    /// Training epochs.
    pub epochs: usize,
    /// Seed.
    pub seed: u64,
    /// Accuracy on raw test images.
    pub raw_test_accuracy: f64,
}

/// A bundle the report evaluated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleInfo {
    /// Architecture.
    pub arch: String,
    /// File.
    pub path: PathBuf,
    /// Nets it holds.
    pub nets: usize,
    /// Trained by this run.
    pub trained_here: bool,
    /// How it was trained, when known.
    pub training: Option<String>,
}

/// Attacks one scheme with every attack of `job.config`; with `job.out`, writes result.json
/// ([`AttackFile`]), a picture grid and, for FSDD, a listening page.
///
/// # Errors
/// Invalid budgets, data, model or bundle, or a failing attack.
pub fn run_attack(job: &AttackJob, progress: &mut dyn Progress) -> Result<AttackOutcome> {
    let cfg = job.config.clone();
    cfg.validate().context("attack budgets")?;
    let s = Setup::load("attack", &job.data, &job.model)?;
    let scheme: Box<dyn Scheme> = match &job.target {
        AttackTarget::Bundle {
            path,
            nets,
            output_noise,
        } => {
            let (stack, bundle_noise) = load_stack_and_noise(path, &s.sha, &s.dataset)?;
            let stack = if nets.is_empty() {
                stack
            } else {
                stack.subset(nets)?
            };
            // the asked noise replaces the bundle's own (format 3)
            let sigma = output_noise.or(bundle_noise.map(sigma_of));
            with_device_noise(ObfScheme::new(&stack), sigma, job.noise_seed)?
        }
        AttackTarget::Baseline(b) => baseline_scheme(b, cfg.seed, job.noise_seed, s.test.dim())?,
    };
    let recogniser = Recogniser::train(&cfg, &s.train, &s.test, &mut |e| progress.event(e))?;
    let ctx = EvalContext {
        server: &s.server,
        train: &s.train,
        test: &s.test,
        recogniser: &recogniser,
    };
    let result = evaluate_scheme(scheme.as_ref(), ctx, &cfg, &mut |e| progress.event(e))?;
    progress.finish();
    let mut listen_page = None;
    if let Some(out) = &job.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        write_grid(out, &result)?;
        let file = AttackFile {
            schema_version: AttackFile::VERSION,
            threat_model: THREAT_MODEL.into(),
            config: cfg.clone(),
            result: result.clone(),
        };
        crate::schema::write_json(&out.join("result.json"), &file)?;
        if s.dataset == obfnet_data::FSDD.name() {
            let fsdd = obfnet_data::FSDD.load_full(&job.data.data_dir.join("fsdd"))?;
            let (page, _) = crate::listen::write_listening(
                out,
                &fsdd,
                &s.test,
                scheme.as_ref(),
                &result,
                cfg.seed,
                cfg.grid_samples,
            )?;
            listen_page = Some(page);
        }
    }
    Ok(AttackOutcome {
        config: cfg,
        recogniser_raw_accuracy: recogniser.raw_accuracy,
        result,
        listen_page,
    })
}

/// `result` without its pictures (for summaries on stdout).
pub fn without_pictures(result: &SchemeResult) -> SchemeResult {
    let mut summary = result.clone();
    summary.pictures.originals.clear();
    summary.pictures.observed.clear();
    summary.pictures.reconstructions.clear();
    summary
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

/// Runs the privacy report into `job.out` (report.json after every scheme, then report.md,
/// report.html, accuracy-vs-ssim.svg and one PNG grid per scheme).
///
/// # Errors
/// Invalid settings, data, model or bundles, a failing attack, or I/O.
pub fn run_report(job: &ReportJob, progress: &mut dyn Progress) -> Result<ReportOutcome> {
    let a = job;
    let t0 = Instant::now();
    let cfg = a.config.clone();
    cfg.validate().context("attack budgets")?;
    ensure!(
        !a.k.is_empty() && a.k.iter().all(|&k| (1..=256).contains(&k)),
        "-k values must be in 1..=256"
    );
    let kmax = a.k.iter().copied().max().unwrap_or(1);
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let s = Setup::load("report", &a.data, &a.model)?;

    // Bundles: given, cached from an earlier run, or trained now.
    let mut given = Vec::new();
    for p in &a.bundles {
        given.push((bundle_arch(p)?, p.clone()));
    }
    let mut stacks = Vec::new();
    let mut noises: Vec<Option<f64>> = Vec::new();
    let mut bundles = Vec::new();
    let mut bundles_extra = Vec::new();
    for &arch in &a.archs {
        let cached = a.out.join(format!("obfnets-{arch}.obfb"));
        let found = given
            .iter()
            .find(|(g, _)| *g == arch)
            .map(|(_, p)| p.clone())
            .or_else(|| cached.exists().then(|| cached.clone()));
        let (stack, noise, info) = match found {
            Some(path) => {
                let (stack, noise) = load_stack_and_noise(&path, &s.sha, &s.dataset)?;
                let training = (path == cached).then(|| "trained by an earlier `obfnet report`".to_string());
                (
                    stack.clone(),
                    noise.map(sigma_of),
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
                say(format!(
                    "no {arch} bundle given: training {kmax} nets ({} epoch(s), {} images each)",
                    tcfg.epochs,
                    tcfg.limit.map_or("all".into(), |l| l.to_string())
                ));
                let (stack, rep) =
                    obfnet_nn::train_obfuscators(&tcfg, &s.server, &s.train, &s.test, &mut |e| {
                        progress.event(e)
                    })?;
                write_bundle(&stack, &s.dataset, s.sha, &cached)?;
                let training = format!(
                    "{} epoch(s), {} images per net, mean accuracy behind the nets {:.2}%",
                    tcfg.epochs,
                    rep.train_samples,
                    rep.mean_accuracy() * 100.0
                );
                (
                    stack.clone(),
                    None,
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
        noises.push(noise);
        bundles.push(info);
    }

    let mut schemes: Vec<Box<dyn Scheme>> = Vec::new();
    for (stack, noise) in stacks.iter().zip(&noises) {
        for &k in &a.k {
            let nets: Vec<usize> = (0..k).collect();
            schemes.push(with_device_noise(
                ObfScheme::new(&stack.subset(&nets)?),
                *noise,
                a.noise_seed,
            )?);
        }
    }
    let mut frontier_names = Vec::new();
    for path in &a.frontier {
        let (stack, noise) = load_stack_and_noise(path, &s.sha, &s.dataset)?;
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
        schemes.push(with_device_noise(
            ObfScheme::new(&stack.subset(&nets)?).with_name(name),
            noise.map(sigma_of),
            a.noise_seed,
        )?);
    }
    for b in &a.baselines {
        schemes.push(baseline_scheme(b, cfg.seed, a.noise_seed, s.test.dim())?);
    }

    let report_path = a.out.join("report.json");
    let mut previous: Vec<SchemeResult> = Vec::new();
    if a.resume && report_path.exists() {
        let old: ReportFile = crate::schema::read_versioned(&report_path)?;
        if old.config == cfg {
            previous = old.results;
        } else {
            say(format!(
                "--resume: budgets differ from {}; starting over",
                report_path.display()
            ));
        }
    }

    // Attribute privacy on spoken digits: who is speaking (FSDD names every clip's speaker).
    let speakers = if s.dataset == "fsdd" {
        let (tr, te) = obfnet_data::fsdd::split_speakers(&a.data.dir()?)?;
        ensure!(
            tr.len() == s.train.labels.len() && te.len() == s.test.labels.len(),
            "FSDD speakers: {} + {} clips listed, the dataset holds {} + {}",
            tr.len(),
            te.len(),
            s.train.labels.len(),
            s.test.labels.len()
        );
        let tr: Vec<&str> = tr.iter().map(String::as_str).collect();
        let te: Vec<&str> = te.iter().map(String::as_str).collect();
        let (tr, te, _) = speaker_indices(&tr, &te);
        Some((tr, te))
    } else {
        None
    };
    let recogniser = Recogniser::train(&cfg, &s.train, &s.test, &mut |e| progress.event(e))?;
    let raw = obfnet_nn::server_accuracy(&s.server, &s.test)?;
    let ctx = EvalContext {
        server: &s.server,
        train: &s.train,
        test: &s.test,
        recogniser: &recogniser,
    };
    let mut file = ReportFile {
        schema_version: ReportFile::VERSION,
        threat_model: THREAT_MODEL.into(),
        config: cfg.clone(),
        server_model_sha256: obfnet_core::hex(&s.sha),
        server_raw_accuracy: raw,
        recogniser: RecogniserInfo {
            model: recogniser.description(),
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
        // A result is reused only under the same guarantee (a seeded noise run is void DP).
        let guarantee = scheme.guarantee();
        let result = match previous
            .iter()
            .find(|r| r.name == name && r.guarantee == guarantee)
        {
            Some(r) => {
                say(format!("{name}: reusing the result in {}", report_path.display()));
                r.clone()
            }
            None => {
                say(format!("scheme {}/{}: {name}", i + 1, schemes.len()));
                evaluate_scheme(scheme.as_ref(), ctx, &cfg, &mut |e| progress.event(e))
                    .with_context(|| format!("evaluating {name}"))?
            }
        };
        let mut result = result;
        result.privacy_trained = frontier_names.contains(&name);
        if let (Some((tr, te)), None) = (&speakers, &result.speaker) {
            say(format!("{name}: speaker identification"));
            result.speaker = Some(
                speaker_identification(
                    scheme.as_ref(),
                    &s.train.x,
                    tr,
                    &s.test.x,
                    te,
                    &SpeakerConfig::default(),
                    &mut |e| progress.event(e),
                )
                .with_context(|| format!("speaker identification on {name}"))?,
            );
        }
        file.results.push(result);
        file.seconds = t0.elapsed().as_secs_f64();
        // written after every scheme, so an interrupted run loses nothing finished
        obfnet_data::write_atomic(&report_path, &serde_json::to_vec(&file)?)?;
    }
    progress.finish();
    let html = write_outputs(&a.out, &file)?;
    let markdown = format!("{}{}", markdown_table(&file.results), frontier_table(&file));
    Ok(ReportOutcome {
        html,
        json: report_path,
        file,
        markdown,
    })
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
        Guarantee::VoidDp { epsilon, .. } => {
            format!("VOID for this run (seeded noise; ε = {epsilon:.0} with OS randomness)")
        }
        Guarantee::Cryptographic { .. } => "cryptographic".into(),
        _ => "none (empirical only)".into(),
    }
}

/// The results table in Markdown (also used for the README): one row per attack, references
/// included.
pub fn markdown_table(results: &[SchemeResult]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| scheme | K | device MACs | formal guarantee | accuracy | attack (empirical) | SSIM mean / median / p90 | PSNR dB mean / median | gain over floor mean / median / p90 | recognisability | raw-vs-obf AUC (empirical) | which-of-K acc (chance; empirical) |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut budgets: Vec<(String, String)> = Vec::new();
    for r in results {
        let (auc, which) = distinguisher_cells(r);
        for (i, a) in r.attacks.iter().enumerate() {
            let first = i == 0;
            let cell = |s: String| if first { s } else { String::new() };
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(r.name.clone()),
                cell(r.k.to_string()),
                cell(macs_cell(r.device_macs)),
                cell(guarantee_cell(&r.guarantee)),
                cell(pct(r.utility.accuracy)),
                if a.scores.n < r.attacks[0].scores.n {
                    format!("{} (n={})", a.attack, a.scores.n)
                } else {
                    a.attack.clone()
                },
                ssim_cell(a),
                psnr_cell(a),
                gain_cell(a),
                pct(a.recognisability),
                cell(auc.clone()),
                cell(which.clone()),
            );
            if let Some(note) = &a.note {
                budgets.push((
                    format!("{} / {} ({:.0} s)", r.name, a.attack, a.seconds),
                    note.clone(),
                ));
            }
        }
    }
    if !budgets.is_empty() {
        let _ = writeln!(t, "\nBudgets and notes (every learned attacker):\n");
        for (what, note) in budgets {
            let _ = writeln!(t, "- {what}: {note}");
        }
    }
    for note in similarity_notes(results) {
        let _ = writeln!(t, "\n{note}");
    }
    t.push_str(&speaker_table(results));
    t
}

/// For samples too small or 1-D for the 2-D SSIM: which similarity the SSIM columns hold (one
/// sentence per variant used; none when every result used the 2-D SSIM).
fn similarity_notes(results: &[SchemeResult]) -> Vec<String> {
    let mut variants: Vec<obfnet_privacy::metrics::Similarity> = Vec::new();
    for v in results.iter().filter_map(|r| r.similarity) {
        if v != obfnet_privacy::metrics::Similarity::Ssim2d && !variants.contains(&v) {
            variants.push(v);
        }
    }
    variants
        .into_iter()
        .map(|v| {
            format!(
                "The SSIM columns hold the {} (the samples are smaller than the 2-D SSIM's 11×11 window); not comparable with image SSIM.",
                v.name()
            )
        })
        .collect()
}

/// SSIM mean / median / p90 over the attacked images (median and p90 absent from results
/// written before they existed).
fn ssim_cell(a: &AttackScore) -> String {
    if a.scores.ssim_median == 0.0 && a.scores.ssim_p90 == 0.0 {
        format!("{:.3}", a.scores.ssim)
    } else {
        format!(
            "{:.3} / {:.3} / {:.3}",
            a.scores.ssim, a.scores.ssim_median, a.scores.ssim_p90
        )
    }
}

fn psnr_cell(a: &AttackScore) -> String {
    if a.scores.psnr_median_db == 0.0 {
        format!("{:.1}", a.scores.psnr_db)
    } else {
        format!("{:.1} / {:.1}", a.scores.psnr_db, a.scores.psnr_median_db)
    }
}

fn gain_cell(a: &AttackScore) -> String {
    a.gain_over_floor.map_or("–".into(), |g| {
        format!("{:+.3} / {:+.3} / {:+.3}", g.mean, g.median, g.p90)
    })
}

fn distinguisher_cells(r: &SchemeResult) -> (String, String) {
    match &r.distinguishers {
        Some(d) => (
            d.raw_vs_observed_auc.map_or_else(
                || {
                    d.raw_vs_observed_note
                        .clone()
                        .unwrap_or_else(|| "n/a (size differs)".into())
                },
                |v| format!("{v:.3}"),
            ),
            match (d.which_of_k_accuracy, d.which_of_k_chance) {
                (Some(a), Some(c)) => format!("{} ({})", pct(a), pct(c)),
                _ => "–".into(),
            },
        ),
        None => ("not run".into(), "not run".into()),
    }
}

/// Attribute privacy (FSDD): speaker identification per scheme; empty when no result has it.
pub fn speaker_table(results: &[SchemeResult]) -> String {
    let rows: Vec<(&SchemeResult, &SpeakerResult)> = results
        .iter()
        .filter_map(|r| r.speaker.as_ref().map(|s| (r, s)))
        .collect();
    let Some((_, first)) = rows.first() else {
        return String::new();
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nSpeaker identification (attribute privacy, empirical): a classifier trained on the server's own \
         clips through the known nets, scored on the test clips' observed outputs; {} speakers, chance {}. \
         Budget: {}.\n",
        first.speakers,
        pct(first.chance),
        first.budget
    );
    let _ = writeln!(
        t,
        "| scheme | K | raw inputs (reference) | pooled (random net per clip) | per net (min / mean / max) | pooled over chance (pt) |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|");
    for (r, s) in rows {
        let per_net = if s.per_net_accuracies.is_empty() {
            "–".to_string()
        } else {
            let v = &s.per_net_accuracies;
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{} / {} / {}", pct(lo), pct(mean), pct(hi))
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {per_net} | {:+.1} |",
            r.name,
            r.k,
            pct(s.raw_accuracy),
            pct(s.pooled_accuracy),
            (s.pooled_accuracy - s.chance) * 100.0
        );
    }
    t
}

/// The obfuscators next to the goal (accuracy drop ≤ 1 pt, best-attack SSIM ≤ 0.3, K = 10):
/// every ObfNet scheme, privacy-trained or not. Empty when the report holds none.
pub fn frontier_table(f: &ReportFile) -> String {
    let rows: Vec<&SchemeResult> = f.results.iter().filter(|r| r.family == Family::ObfNet).collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nGoal: best-attack SSIM at most {GOAL_GAIN} above the label-only floor, at ≤ {GOAL_DROP_PT} pt mean \
         accuracy drop, with K = {GOAL_K} (raw accuracy {}). Best attack = the strongest (highest mean SSIM) of \
         the fresh attackers above (empirical, at the budgets listed); the label-only floor is what the \
         server's answer alone reveals.\n",
        pct(f.server_raw_accuracy)
    );
    let _ = writeln!(
        t,
        "| scheme | privacy-trained | K | device MACs | accuracy | drop (pt) | best attack | SSIM | label-only floor | gain over floor | goal |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let drop = (f.server_raw_accuracy - r.utility.accuracy) * 100.0;
        let (name, ssim) = r.best_attack().map_or(("–".to_string(), f64::NAN), |b| {
            (b.attack.clone(), b.scores.ssim)
        });
        let floor = r.label_only().map_or(f64::NAN, |l| l.scores.ssim);
        let goal = goal_verdict(r.k, drop, ssim, floor);
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {drop:.2} | {name} | {ssim:.3} | {floor:.3} | {:+.3} | {goal} |",
            r.name,
            if r.privacy_trained { "yes" } else { "no" },
            r.k,
            macs_cell(r.device_macs),
            pct(r.utility.accuracy),
            ssim - floor,
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

/// The legend entry of a scheme's point (one per colour and fill).
fn series_name(r: &SchemeResult) -> String {
    if r.privacy_trained {
        return "privacy-trained".into();
    }
    let base = match (r.family, r.arch.as_deref()) {
        (Family::ObfNet, Some(a)) => a.to_string(),
        (Family::ObfNet, None) => "ObfNet".into(),
        (Family::Laplace, _) => "Laplace noise".into(),
        (Family::Gaussian, _) => "Gaussian noise".into(),
        _ => "projection / other".into(),
    };
    if r.family == Family::ObfNet && r.k == 1 {
        format!("{base}, K = 1")
    } else {
        base
    }
}

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
                series: series_name(r),
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
    let scatter = out.join("accuracy-vs-ssim.svg");
    let mut vlines = vec![crate::plot::VLine {
        x: 0.3,
        rgb: [200, 0, 0],
        label: "SSIM 0.3".into(),
    }];
    if let Some(l) = f.results.iter().find_map(SchemeResult::label_only) {
        vlines.push(crate::plot::VLine {
            x: l.scores.ssim,
            rgb: [0, 0, 0],
            label: "label-only floor".into(),
        });
    }
    let svg = crate::plot::scatter_svg(&points, y_min, &vlines)?;
    obfnet_data::write_atomic(&scatter, svg.as_bytes())?;
    let frontier = frontier_table(f);
    let table = format!("{}{frontier}", markdown_table(&f.results));
    obfnet_data::write_atomic(&out.join("report.md"), table.as_bytes())?;

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
        "<p>Server model: sha256 {}, raw test accuracy {}. Recognisability = accuracy of a separately trained \
classifier ({}, {} epoch(s), seed {}; {} on raw test images) on the reconstructions. Wall time {:.0} s.</p>",
        f.server_model_sha256,
        pct(f.server_raw_accuracy),
        html_escape(&f.recogniser.model),
        f.recogniser.epochs,
        f.recogniser.seed,
        pct(f.recogniser.raw_test_accuracy),
        f.seconds
    );
    for note in similarity_notes(&f.results) {
        let _ = write!(h, "<p>{}</p>", html_escape(&note));
    }
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
    h.push_str("</ul><h2>Results</h2><table><tr><th>scheme</th><th>K</th><th>device MACs</th><th>guarantee</th><th>accuracy</th><th>attack (empirical)</th><th>SSIM mean / median / p90</th><th>PSNR dB mean / median</th><th>gain over label-only floor mean / median / p90</th><th>MSE</th><th>recognisability</th><th>n</th><th>raw-vs-obf AUC (empirical)</th><th>which-of-K acc (chance)</th></tr>");
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
                        Guarantee::VoidDp { basis, reason, .. } => format!("{reason}; {basis}"),
                        _ => "no formal guarantee".into(),
                    }),
                    html_escape(&r.guarantee.label()),
                    html_escape(&r.utility.note),
                    pct(r.utility.accuracy)
                );
            }
            let _ = write!(
                h,
                "<td title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{}</td><td>{}</td>",
                html_escape(a.note.as_deref().unwrap_or("")),
                html_escape(&a.attack),
                ssim_cell(a),
                psnr_cell(a),
                gain_cell(a),
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
hollow = ObfNet K = 1. Dashed lines: red, SSIM 0.3 (≈ unrecognisable); black, the label-only floor. \
Also written as <a href=\"accuracy-vs-ssim.svg\">accuracy-vs-ssim.svg</a>.</p>{svg}"
    );
    let speakers = speaker_table(&f.results);
    if !speakers.is_empty() {
        h.push_str("<h2>Speaker identification (attribute privacy)</h2><pre>");
        h.push_str(&html_escape(&speakers));
        h.push_str("</pre>");
    }
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
            png_img(
                &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
                &r.name
            )
        );
    }
    let _ = write!(
        h,
        "<h2>Budgets</h2><pre>{}</pre></body></html>",
        html_escape(&serde_json::to_string_pretty(&f.config)?)
    );
    let path = out.join("report.html");
    obfnet_data::write_atomic(&path, h.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_seeded_noise_baseline_is_reported_void() {
        let fresh = baseline_scheme(&Baseline::Laplace(784.0), 1, None, 784).expect("scheme");
        assert!(matches!(fresh.guarantee(), Guarantee::FormalDp { .. }));
        assert!(guarantee_cell(&fresh.guarantee()).starts_with("formal: ε = 784"));
        let seeded = baseline_scheme(&Baseline::Gaussian(0.5), 1, Some(7), 784).expect("scheme");
        let g = seeded.guarantee();
        assert!(matches!(g, Guarantee::VoidDp { .. }), "{g:?}");
        let cell = guarantee_cell(&g);
        assert!(cell.starts_with("VOID for this run (seeded noise"), "{cell}");
        // A projection has no noise to seed: its guarantee does not change.
        let p = baseline_scheme(&Baseline::Orthogonal, 1, Some(7), 784).expect("scheme");
        assert_eq!(p.guarantee(), Guarantee::Empirical);
    }
}
