//! Runs the strong attack suite (and, for comparison, the standard suite's inverse networks) on
//! one bundle and prints a table; the full result goes to `--out` as JSON (a `SchemeResult`).
//! A measurement tool until `obfnet report` exposes the strong preset's knobs.
//!
//! ```text
//! cargo run --release --workspace --example strong_attack -- \
//!   --model runs/x/server --bundle runs/x/obfnets.obfb --data-dir data/mnist \
//!   [--eval 1000] [--train-samples N] [--max-epochs 30] [--patience 3] [--standard] \
//!   [--only pooled,per_net,conditioned,nn,conv_pooled,conv_per_net,latent] \
//!   [--conv-max-epochs N] [--conv-train-samples N] [--vae-epochs N] [--latent-steps N] \
//!   [--latent-restarts N] [--output-noise SIGMA] [--out result.json]
//! ```
//!
//! `--output-noise SIGMA`: Gaussian noise of deviation SIGMA (pixel units) added to every
//! output after the net, as a device would add it (`ObfScheme::with_output_noise`).

use std::path::PathBuf;
use std::time::Instant;

use obfnet_privacy::{AttackConfig, EvalContext, ObfScheme, Recogniser, evaluate_scheme};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut model, mut bundle, mut data) = (None, None, None);
    let mut out: Option<PathBuf> = None;
    let mut output_noise: Option<f64> = None;
    let mut cfg = AttackConfig::strong();
    cfg.attacks.rmle = false;
    cfg.attacks.shadow = false;
    cfg.attacks.distinguishers = false;
    cfg.attacks.inverse = false;
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--model" => model = Some(PathBuf::from(val()?)),
            "--bundle" => bundle = Some(PathBuf::from(val()?)),
            "--data-dir" => data = Some(PathBuf::from(val()?)),
            "--out" => out = Some(PathBuf::from(val()?)),
            "--eval" => cfg.eval_samples = val()?.parse()?,
            "--train-samples" => cfg.strong.decoder.train_samples = Some(val()?.parse()?),
            "--max-epochs" => cfg.strong.decoder.max_epochs = val()?.parse()?,
            "--patience" => cfg.strong.decoder.patience = val()?.parse()?,
            "--recogniser-epochs" => cfg.recogniser_epochs = val()?.parse()?,
            "--standard" => cfg.attacks.inverse = true,
            "--conv-max-epochs" => cfg.strong.conv_decoder.max_epochs = val()?.parse()?,
            "--conv-train-samples" => cfg.strong.conv_decoder.train_samples = Some(val()?.parse()?),
            "--vae-epochs" => cfg.strong.latent.vae_epochs = val()?.parse()?,
            "--latent-steps" => cfg.strong.latent.steps = val()?.parse()?,
            "--latent-restarts" => cfg.strong.latent.restarts = val()?.parse()?,
            "--output-noise" => output_noise = Some(val()?.parse()?),
            "--only" => {
                let v = val()?;
                let on = |n: &str| v.split(',').any(|x| x == n);
                cfg.strong.pooled = on("pooled");
                cfg.strong.per_net = on("per_net");
                cfg.strong.conditioned = on("conditioned");
                cfg.strong.nearest_neighbour = on("nn");
                cfg.strong.conv_pooled = on("conv_pooled");
                cfg.strong.conv_per_net = on("conv_per_net");
                cfg.strong.latent_search = on("latent");
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let (model, bundle, data) = (
        model.ok_or("--model is required")?,
        bundle.ok_or("--bundle is required")?,
        data.ok_or("--data-dir is required")?,
    );
    cfg.grid_samples = cfg.grid_samples.min(cfg.eval_samples);
    let t0 = Instant::now();
    let ds = obfnet_data::ImageDataset::load_mnist_dir("mnist", &data)?;
    let device = obfnet_nn::default_device();
    let train = obfnet_nn::Dataset::from_images(&ds.train, &device)?;
    let test = obfnet_nn::Dataset::from_images(&ds.test, &device)?;
    let (server, _, _) = obfnet_nn::load_server_model(&model)?;
    let bytes = std::fs::read(&bundle)?;
    let stack = obfnet_nn::ObfStack::from_bundle(&obfnet_core::Bundle::from_bytes(&bytes)?, &device)?;
    let mut last = Instant::now();
    let mut progress = |e: obfnet_nn::TrainEvent| match e {
        obfnet_nn::TrainEvent::Phase { name, total_steps } => {
            eprintln!(
                "[{:>6.0}s] {name} ({total_steps} steps)",
                t0.elapsed().as_secs_f64()
            );
        }
        obfnet_nn::TrainEvent::Epoch { epoch, mean_loss } => {
            eprintln!(
                "[{:>6.0}s]   epoch {epoch}: train loss {mean_loss:.4} ({:.0}s)",
                t0.elapsed().as_secs_f64(),
                last.elapsed().as_secs_f64()
            );
            last = Instant::now();
        }
        _ => {}
    };
    let recogniser = Recogniser::train(&cfg, &train, &test, &mut progress)?;
    let ctx = EvalContext {
        server: &obfnet_nn::ServerModel::LeNet(server),
        train: &train,
        test: &test,
        recogniser: &recogniser,
    };
    let mut scheme = ObfScheme::new(&stack);
    if let Some(sigma) = output_noise {
        scheme = scheme.with_output_noise(obfnet_privacy::Noise::Gaussian { sigma }, None)?;
    }
    let r = evaluate_scheme(&scheme, ctx, &cfg, &mut progress)?;
    println!(
        "{} (K = {}), utility {:.2}%, {} test images, recogniser {:.2}% on raw",
        r.name,
        r.k,
        r.utility.accuracy * 100.0,
        cfg.eval_samples,
        recogniser.raw_accuracy * 100.0
    );
    println!(
        "| attack | SSIM mean | median | p90 | PSNR dB mean | median | gain over floor mean / median / p90 | recognisable | s | budget |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for a in &r.attacks {
        let s = &a.scores;
        let gain = a.gain_over_floor.map_or("—".into(), |g| {
            format!("{:+.3} / {:+.3} / {:+.3}", g.mean, g.median, g.p90)
        });
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} | {gain} | {:.1}% | {:.0} | {} |",
            a.attack,
            s.ssim,
            s.ssim_median,
            s.ssim_p90,
            s.psnr_db,
            s.psnr_median_db,
            a.recognisability * 100.0,
            a.seconds,
            a.note.clone().unwrap_or_default()
        );
    }
    if let Some(p) = out {
        std::fs::write(&p, serde_json::to_vec_pretty(&r)?)?;
    }
    Ok(())
}
