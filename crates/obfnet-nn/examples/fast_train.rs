//! The K-obfuscator job on the training fast path (`obfnet_nn::fast`), timed, optionally next to
//! the burn path in the same process — used by `scripts/bench-train.sh`, and the K = 2 "same
//! accuracy as burn" check on real MNIST (too slow for CI):
//!
//! ```text
//! cargo run --release -p obfnet-nn --example fast_train -- --data-dir data [--k 10] [--epochs 1]
//!     [--repeat 3] [--burn] [--burn-repeat 3] [--limit N] [--cosine]
//! ```
//!
//! It trains the frozen LeNet-5 for one epoch on burn (seed 0, constant learning rate, as
//! `obfnet bench-train`), then runs the K job (K ObfNet2 nets × epochs, plus every net's
//! test-set accuracy) `--repeat` times on the fast path and, with `--burn`, `--burn-repeat` times on
//! the burn path. It also prints the multiply-adds of the job (for the fraction of peak).
//! The learning rate is constant (as the PyTorch reference) unless `--cosine` (the real job's
//! schedule). Progress goes to stderr; one JSON object to stdout.

use std::time::Instant;

use obfnet_nn::{
    Dataset, ObfArch, ObfTrainConfig, ServerTrainConfig, default_device, fast, train_obfuscators,
};

struct Args {
    data_dir: String,
    k: usize,
    epochs: usize,
    repeat: usize,
    burn: bool,
    burn_repeat: usize,
    limit: Option<usize>,
    cosine: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        data_dir: "data".into(),
        k: 10,
        epochs: 1,
        repeat: 1,
        burn: false,
        burn_repeat: 1,
        limit: None,
        cosine: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--data-dir" => a.data_dir = value()?,
            "--k" => a.k = num(value()?)?,
            "--epochs" => a.epochs = num(value()?)?,
            "--repeat" => a.repeat = num(value()?)?.max(1),
            "--limit" => a.limit = Some(num(value()?)?),
            "--burn" => a.burn = true,
            "--burn-repeat" => a.burn_repeat = num(value()?)?.max(1),
            "--cosine" => a.cosine = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = parse()?;
    let dir = std::path::Path::new(&a.data_dir);
    let dir = if dir.join("mnist").is_dir() {
        dir.join("mnist")
    } else {
        dir.to_path_buf()
    };
    let ds = obfnet_data::ImageDataset::load_mnist_dir("mnist", &dir)?;
    let device = default_device();
    let train = Dataset::from_images(&ds.train, &device)?;
    let test = Dataset::from_images(&ds.test, &device)?;
    let frac = if a.cosine {
        ObfTrainConfig::default().final_lr_fraction
    } else {
        1.0
    };

    eprintln!("[fast_train] LeNet-5: 1 epoch on burn");
    let scfg = ServerTrainConfig {
        epochs: 1,
        limit: a.limit,
        final_lr_fraction: 1.0,
        ..Default::default()
    };
    let (lenet, srep) = obfnet_nn::train_server_model(&scfg, &train, &test, &mut |_| {})?;
    eprintln!("[fast_train] LeNet-5 test accuracy {:.4}", srep.test_accuracy);

    let kcfg = ObfTrainConfig {
        arch: ObfArch::ObfNet2,
        k: a.k,
        epochs: a.epochs,
        limit: a.limit,
        final_lr_fraction: frac,
        ..Default::default()
    };
    let mut fast_runs = Vec::new();
    let mut fast_steps = Vec::new();
    let mut fast_acc = Vec::new();
    let mut fast_losses = Vec::new();
    for r in 0..a.repeat {
        let t = Instant::now();
        let (_, rep) = fast::train_obfuscators_fast(&kcfg, &lenet, &train, &test, &mut |_| {})?;
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "[fast_train] fast path, run {}/{}: K job {s:.2} s (train {:.2} s, eval {:.2} s), step median \
             {:.2} ms, mean accuracy {:.4}",
            r + 1,
            a.repeat,
            rep.train_seconds,
            rep.eval_seconds,
            rep.step_ms_median,
            rep.mean_accuracy()
        );
        fast_runs.push(s);
        fast_steps.push(rep.step_ms_median);
        fast_acc = rep.accuracies.clone();
        fast_losses = rep.epoch_losses.clone();
    }
    // Multiply-adds of the job. Training, per sample: each dense layer's forward and weight
    // gradient, the input gradient of every layer but the first; the frozen LeNet's forward and
    // input gradient (each about its forward's count). Evaluation: forward passes only.
    let (obf_fwd, obf_train) = {
        let layers = [(784u64, 1000u64), (1000, 784)];
        let fwd: u64 = layers.iter().map(|(i, o)| i * o).sum();
        (fwd, 2 * fwd + layers[1..].iter().map(|(i, o)| i * o).sum::<u64>())
    };
    let lenet_fwd: u64 = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10;
    let n_train = a.limit.unwrap_or(usize::MAX).min(train.len()) as u64;
    let n_test = test.len() as u64;
    let (k, e) = (a.k as u64, a.epochs as u64);
    let train_macs = n_train * k * e * (obf_train + 2 * lenet_fwd);
    let eval_macs = n_test * (k * (obf_fwd + lenet_fwd) + lenet_fwd);
    let mut out = serde_json::json!({
        "job_macs": train_macs + eval_macs,
        "train_macs_per_step_full_batch": k * 64 * (obf_train + 2 * lenet_fwd),
        "lenet_epoch_s": srep.first_epoch_seconds,
        "lenet_step_ms_median": srep.step_ms_median,
        "engine": "obfnet fast path (faer GEMM, fused Adam, frozen LeNet block)",
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "k": a.k,
        "epochs": a.epochs,
        "cosine_lr": a.cosine,
        "n_train": a.limit.unwrap_or(usize::MAX).min(train.len()),
        "lenet_test_acc": srep.test_accuracy,
        "fast_k_job_s_runs": fast_runs,
        "fast_k_job_s": median(fast_runs.clone()),
        "fast_step_ms_median": median(fast_steps),
        "fast_obf_test_acc": fast_acc,
        "fast_epoch_losses": fast_losses,
    });
    if a.burn {
        let (mut runs, mut steps) = (Vec::new(), Vec::new());
        for r in 0..a.burn_repeat {
            eprintln!(
                "[fast_train] burn path: the same K job, run {}/{}",
                r + 1,
                a.burn_repeat
            );
            let t = Instant::now();
            let burn_cfg = ObfTrainConfig {
                engine: obfnet_nn::Engine::Burn,
                ..kcfg.clone()
            };
            let (_, rep) = train_obfuscators(
                &burn_cfg,
                &obfnet_nn::ServerModel::LeNet(lenet.clone()),
                &train,
                &test,
                &mut |_| {},
            )?;
            let s = t.elapsed().as_secs_f64();
            eprintln!(
                "[fast_train] burn path: K job {s:.2} s, step median {:.2} ms, mean accuracy {:.4}",
                rep.step_ms_median,
                rep.mean_accuracy()
            );
            runs.push(s);
            steps.push(rep.step_ms_median);
            out["burn_obf_test_acc"] = rep.accuracies.clone().into();
            out["burn_epoch_losses"] = rep.epoch_losses.clone().into();
        }
        out["burn_k_job_s_runs"] = runs.clone().into();
        out["burn_k_job_s"] = median(runs).into();
        out["burn_step_ms_median"] = median(steps).into();
    }
    println!("{out}");
    Ok(())
}
