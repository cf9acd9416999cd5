//! `obfnet attack` and `obfnet report`: arguments → `obfnet_report::privacy` jobs → output.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use obfnet_nn::{ObfArch, ObfTrainConfig};
use obfnet_privacy::{AttackConfig, Preset};
use obfnet_report::privacy::{
    AttackJob, AttackTarget, Baseline, ReportJob, THREAT_MODEL, markdown_table, parse_baseline, run_attack,
    run_report, without_pictures,
};
use serde_json::json;

use crate::{DataArgs, emit, interactive, progress};

/// Budgets of the attacks (every flag maps to a field of `AttackConfig`).
#[derive(Debug, Args)]
pub(crate) struct BudgetArgs {
    /// Attack suite: `strong` (default: the standard suite plus decoders trained on the whole
    /// training split with early stopping — pooled, per net, conditioned on the answered label
    /// and the predicted net — and nearest-neighbour retrieval) or `standard` (the earlier,
    /// weaker suite, kept for comparison; too weak to support a privacy claim).
    #[arg(long, default_value = "strong", value_parser = ["strong", "standard"])]
    preset: String,
    /// Test samples attacked and scored (the first ones of the test split) [strong: 1000,
    /// standard: 500].
    #[arg(long)]
    eval_samples: Option<usize>,
    /// Of those, how many the (costly) rMLE attack reconstructs [preset's].
    #[arg(long)]
    rmle_samples: Option<usize>,
    /// Epoch cap of the strong decoders (each stops early on its validation split).
    #[arg(long)]
    strong_max_epochs: Option<usize>,
    /// Training pairs of each strong decoder [the whole training split].
    #[arg(long)]
    strong_train: Option<usize>,
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
    /// Attacks to skip (comma-separated: inverse, rmle, shadow, distinguishers, strong-pooled,
    /// strong-per-net, strong-conditioned, nearest-neighbour, conv-pooled, conv-per-net,
    /// latent-search).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Seed of which net a device picks and of the noise drawn.
    #[arg(long, default_value_t = AttackConfig::default().seed)]
    seed: u64,
}

impl BudgetArgs {
    fn config(&self) -> Result<AttackConfig> {
        let base = AttackConfig::preset(match self.preset.as_str() {
            "standard" => Preset::Standard,
            _ => Preset::Strong,
        });
        let mut c = AttackConfig {
            eval_samples: self.eval_samples.unwrap_or(base.eval_samples),
            rmle_samples: self.rmle_samples.unwrap_or(base.rmle_samples),
            seed: self.seed,
            per_net_train_samples: self.per_net_train,
            recogniser_epochs: self.recogniser_epochs,
            ..base
        };
        if let Some(e) = self.strong_max_epochs {
            c.strong.decoder.max_epochs = e;
            c.strong.conv_decoder.max_epochs = e;
            c.strong.latent.vae_epochs = e;
        }
        if self.strong_train.is_some() {
            c.strong.decoder.train_samples = self.strong_train;
            c.strong.conv_decoder.train_samples = self.strong_train;
            c.strong.latent.train_samples = self.strong_train;
        }
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
                "strong-pooled" => c.strong.pooled = false,
                "strong-per-net" => c.strong.per_net = false,
                "strong-conditioned" => c.strong.conditioned = false,
                "nearest-neighbour" => c.strong.nearest_neighbour = false,
                "conv-pooled" => c.strong.conv_pooled = false,
                "conv-per-net" => c.strong.conv_per_net = false,
                "latent-search" => c.strong.latent_search = false,
                other => bail!(
                    "--skip {other:?}: one of inverse, rmle, shadow, distinguishers, strong-pooled, \
                     strong-per-net, strong-conditioned, nearest-neighbour, conv-pooled, conv-per-net, \
                     latent-search"
                ),
            }
        }
        c.validate().context("attack budgets")?;
        Ok(c)
    }
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
    /// Gaussian noise (deviation SIGMA, pixel units) added to every output after the net, as a
    /// device would add it; the attackers observe the noisy outputs and know SIGMA.
    #[arg(long, value_name = "SIGMA", requires = "bundle")]
    output_noise: Option<f64>,
    /// Seed the noise (of a noise baseline, or of --output-noise) to reproduce a run. Without it
    /// the noise comes from the OS-seeded CSPRNG; with it a DP guarantee is void for this run,
    /// and the result says so.
    #[arg(long)]
    noise_seed: Option<u64>,
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
    /// Seed the noise baselines' noise (to reproduce a report). Without it the noise comes from
    /// the OS-seeded CSPRNG; with it their DP guarantee is void for this run, and the report
    /// says so.
    #[arg(long, conflicts_with = "no_baselines")]
    noise_seed: Option<u64>,
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

pub(crate) fn run_attack_cmd(a: &AttackArgs, json: bool) -> Result<()> {
    // Budgets first: a bad --skip or budget is reported before anything else.
    let config = a.budget.config()?;
    let target = match (&a.bundle, &a.baseline) {
        (Some(path), None) => AttackTarget::Bundle {
            path: path.clone(),
            nets: a.nets.clone(),
            output_noise: a.output_noise,
        },
        (None, Some(b)) => AttackTarget::Baseline(b.clone()),
        _ => bail!("give --bundle or --baseline"),
    };
    let job = AttackJob {
        data: a.data.source(),
        model: a.model.clone(),
        target,
        config,
        noise_seed: a.noise_seed,
        out: a.out.clone(),
    };
    let mut bar = progress::Bars::new(interactive() && !json);
    let o = run_attack(&job, &mut bar)?;
    bar.finish();
    if let Some(page) = &o.listen_page {
        eprintln!("[obfnet] listen to the clips: {}", page.display());
    }
    emit(
        json,
        &json!({"threat_model": THREAT_MODEL, "config": o.config, "recogniser_raw_accuracy": o.recogniser_raw_accuracy,
                "result": without_pictures(&o.result)}),
        || {
            println!("{THREAT_MODEL}");
            println!("{}", markdown_table(std::slice::from_ref(&o.result)));
        },
    );
    Ok(())
}

pub(crate) fn run_report_cmd(a: &ReportArgs, json: bool) -> Result<()> {
    let job = ReportJob {
        data: a.data.source(),
        model: a.model.clone(),
        bundles: a.bundle.clone(),
        archs: a.archs.clone(),
        frontier: a.frontier.clone(),
        k: a.k.clone(),
        baselines: if a.no_baselines {
            Vec::new()
        } else {
            a.baselines.clone()
        },
        noise_seed: a.noise_seed,
        obf_epochs: a.obf_epochs,
        obf_limit: a.obf_limit,
        obf_seed: a.obf_seed,
        config: a.budget.config()?,
        out: a.out.clone(),
        resume: a.resume,
    };
    let mut bar = progress::Bars::new(interactive() && !json);
    let o = run_report(&job, &mut bar)?;
    bar.finish();
    emit(
        json,
        &json!({"report": o.html, "json": o.json, "seconds": o.file.seconds, "schemes": o.file.results.len()}),
        || {
            println!("{}", o.markdown);
            println!("report written to {} ({:.0} s)", o.html.display(), o.file.seconds);
        },
    );
    Ok(())
}
