//! Listenable output for the spoken-digit case study: WAV files re-synthesised from the
//! original, the obfuscated (as sent) and the reconstructed MFCC maps of a few test clips, next
//! to the original recording, and an HTML page with `<audio>` players.
//!
//! How a map becomes sound: `u8` codes (fractional for obfuscator and attack outputs) → MFCC
//! values through the training split's quantiser → [`obfnet_data::Mfcc::resynthesise`] (inverse
//! DCT, mel → linear power by NNLS, Griffin–Lim). What an obfuscator sends is read *as if* it
//! were an MFCC map: that is what a person eavesdropping on the wire would hear.

use std::fmt::Write as _;

use crate::html::escape as html_escape;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use obfnet_data::{FsddData, Mfcc, Wav};
use obfnet_nn::{Dataset, SplitMix64};
use obfnet_privacy::{Scheme, SchemeResult, metrics, observe};

/// Griffin–Lim rounds per clip.
pub const GRIFFIN_LIM_ITERS: usize = 64;

/// One row of the listening page.
#[derive(Debug, serde::Serialize)]
pub struct Clip {
    id: String,
    digit: u8,
    /// SSIM (code space / 255, as the attack tables) of the reconstruction.
    ssim_reconstructed: Option<f64>,
    /// SSIM of what was sent, read as a map.
    ssim_obfuscated: f64,
    files: Vec<String>,
}

fn write_wav(path: &Path, sample_rate: u32, audio: &[f32]) -> Result<()> {
    let bytes = Wav::from_f32(sample_rate, audio).to_bytes()?;
    obfnet_data::write_atomic(path, &bytes)?;
    Ok(())
}

/// Writes `out/wav/{id}-{recording,original,obfuscated,reconstructed}.wav` for the first
/// `n` test clips and `out/listen.html`; returns the page's path and the clips.
///
/// `result` must come from `evaluate_scheme(scheme, …)` on `test` with `seed` as its
/// `AttackConfig::seed`: the obfuscated clips are re-drawn with that seed, so each is exactly the
/// observation the attacks saw, and the reconstruction is the best attack's (highest SSIM).
pub fn write_listening(
    out: &Path,
    fsdd: &FsddData,
    test: &Dataset,
    scheme: &dyn Scheme,
    result: &SchemeResult,
    seed: u64,
    n: usize,
) -> Result<(PathBuf, Vec<Clip>)> {
    let (rows, cols) = (fsdd.config.n_mfcc, fsdd.config.frames);
    ensure!(
        (test.rows, test.cols) == (rows, cols),
        "the listening page needs FSDD MFCC maps of {rows}×{cols}"
    );
    let d = rows * cols;
    let best = result.best_attack();
    let recon: Option<&Vec<Vec<f32>>> = best.and_then(|b| {
        result
            .pictures
            .reconstructions
            .iter()
            .find(|(name, _)| *name == b.attack)
            .map(|(_, r)| r)
    });
    let n = n.min(result.pictures.originals.len()).min(fsdd.test_clips.len());
    let x = test.slice(0, n);
    let (obs, chosen) = observe(scheme, &x, &mut SplitMix64::new(seed))?;
    let obs = metrics::to_pixels(&obfnet_privacy::to_vec(obs)?);
    ensure!(
        obs.len() == n * d,
        "the scheme's output is not a {rows}×{cols} map"
    );
    let mfcc = Mfcc::new(fsdd.config.clone())?;
    let wav_dir = out.join("wav");
    std::fs::create_dir_all(&wav_dir).with_context(|| format!("creating {}", wav_dir.display()))?;
    let sr = fsdd.config.sample_rate;
    let synth = |pixels: &[f32], path: &Path| -> Result<()> {
        let codes: Vec<f32> = pixels.iter().map(|p| p * 255.0).collect();
        let audio = mfcc.resynthesise(&fsdd.quantiser.decode(&codes), GRIFFIN_LIM_ITERS, 1)?;
        write_wav(path, sr, &audio)
    };
    let mut clips = Vec::new();
    for i in 0..n {
        let clip = &fsdd.test_clips[i];
        let id = clip.id();
        let orig = &result.pictures.originals[i];
        let sent = &obs[i * d..(i + 1) * d];
        let mut files = vec![
            format!("wav/{id}-recording.wav"),
            format!("wav/{id}-original.wav"),
        ];
        std::fs::copy(&clip.path, out.join(&files[0]))
            .with_context(|| format!("copying {}", clip.path.display()))?;
        synth(orig, &out.join(&files[1]))?;
        files.push(format!("wav/{id}-obfuscated.wav"));
        synth(sent, &out.join(&files[2]))?;
        let mut ssim_reconstructed = None;
        if let Some(r) = recon.and_then(|r| r.get(i)) {
            files.push(format!("wav/{id}-reconstructed.wav"));
            synth(r, &out.join(&files[3]))?;
            ssim_reconstructed = Some(metrics::ssim(orig, r, rows, cols)?);
        }
        tracing::debug!(id, net = chosen[i], "listening clip written");
        clips.push(Clip {
            id,
            digit: clip.digit,
            ssim_reconstructed,
            ssim_obfuscated: metrics::ssim(orig, sent, rows, cols)?,
            files,
        });
    }
    let page = out.join("listen.html");
    obfnet_data::write_atomic(
        &page,
        html(result, best.map(|b| b.attack.as_str()), &clips).as_bytes(),
    )?;
    Ok((page, clips))
}

fn html(result: &SchemeResult, attack: Option<&str>, clips: &[Clip]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>obfnet: listen to {name}</title><style>\
body{{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}}table{{border-collapse:collapse}}\
td,th{{border:1px solid #ccc;padding:4px 8px}}audio{{width:190px}}</style></head><body>\
<h1>What leaks, by ear: {name} on FSDD</h1>\
<p>Each row is one test clip. <b>recording</b>: the original WAV. <b>original MFCC</b>: audio re-synthesised \
from its 20×64 MFCC map (inverse DCT → mel → linear magnitude → Griffin–Lim, {iters} rounds; 20 cepstral \
coefficients keep the spectral envelope, not the pitch, so every re-synthesis sounds whispered/robotic — compare \
the three re-syntheses with each other). <b>obfuscated</b>: what the device sent, read as an MFCC map. \
<b>reconstructed</b>: the server's best attack on it ({attack}), the attack with the highest SSIM over all \
attacked clips. SSIM is over the u8-coded map (data range 255 codes = 8 standard deviations per coefficient). \
Every file is peak-normalised. Everything here is <b>empirical</b>: what these attacks achieved.</p>\
<table><tr><th>clip</th><th>digit</th><th>recording</th><th>original MFCC</th><th>obfuscated (SSIM)</th>\
<th>reconstructed (SSIM)</th></tr>",
        name = html_escape(&result.name),
        iters = GRIFFIN_LIM_ITERS,
        attack = html_escape(attack.unwrap_or("none run")),
    );
    let audio = |f: Option<&String>| {
        f.map_or("–".to_string(), |f| {
            format!("<audio controls preload=\"none\" src=\"{f}\"></audio>")
        })
    };
    for c in clips {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({:.3})</td><td>{} ({})</td></tr>",
            html_escape(&c.id),
            c.digit,
            audio(c.files.first()),
            audio(c.files.get(1)),
            audio(c.files.get(2)),
            c.ssim_obfuscated,
            audio(c.files.get(3)),
            c.ssim_reconstructed.map_or("–".into(), |s| format!("{s:.3}"))
        );
    }
    let _ = write!(
        h,
        "</table><p>Recordings: {}.</p></body></html>",
        html_escape(obfnet_data::FSDD_ATTRIBUTION)
    );
    h
}

/// The attack budget of `quickstart --dataset fsdd`: the inverse-network attacks (pooled and
/// per net) on all 300 test clips; rMLE, the shadow attack and the distinguishers are left to
/// `obfnet attack` (they take longer and are not needed to hear what leaks). FSDD has 2,700
/// training clips, so the decoders train 20 epochs (about as many steps as the MNIST default of
/// 10,000 pairs × 5 epochs) and the recogniser 30 (2 epochs leave it at 40% on raw clips).
pub fn quickstart_attack_config() -> obfnet_privacy::AttackConfig {
    let mut inverse = obfnet_privacy::InverseConfig::default();
    inverse.mlp.epochs = 20;
    obfnet_privacy::AttackConfig {
        eval_samples: 300,
        rmle_samples: 0,
        recogniser_epochs: 30,
        inverse,
        attacks: obfnet_privacy::AttackSelection {
            inverse: true,
            rmle: false,
            shadow: false,
            distinguishers: false,
        },
        // The listening page keeps the quick standard decoders; `obfnet report` runs the strong
        // suite on FSDD bundles.
        strong: obfnet_privacy::StrongConfig::off(),
        ..obfnet_privacy::AttackConfig::default()
    }
}

/// The FSDD part of `obfnet quickstart`: attacks the bundle's nets (see
/// [`quickstart_attack_config`]) and writes `out/listen/` (WAVs, listen.html, result.json).
pub fn quickstart_listen(
    out: &Path,
    data_dir: &Path,
    server: &obfnet_nn::ServerModel,
    stack: &obfnet_nn::ObfStack,
    train: &Dataset,
    test: &Dataset,
    progress: &mut dyn crate::Progress,
) -> Result<serde_json::Value> {
    let cfg = quickstart_attack_config();
    let recogniser = obfnet_privacy::Recogniser::train(&cfg, train, test, &mut |e| progress.event(e))?;
    let ctx = obfnet_privacy::EvalContext {
        server,
        train,
        test,
        recogniser: &recogniser,
    };
    let scheme = obfnet_privacy::ObfScheme::new(stack);
    let result = obfnet_privacy::evaluate_scheme(&scheme, ctx, &cfg, &mut |e| progress.event(e))?;
    progress.finish();
    let dir = out.join("listen");
    let fsdd = obfnet_data::FSDD.load_full(&data_dir.join("fsdd"))?;
    let (page, clips) = write_listening(&dir, &fsdd, test, &scheme, &result, cfg.seed, cfg.grid_samples)?;
    let mut summary = result.clone();
    summary.pictures.originals.clear();
    summary.pictures.observed.clear();
    summary.pictures.reconstructions.clear();
    let value = serde_json::json!({
        "page": page, "config": cfg, "result": summary, "clips": clips,
        "recogniser_raw_accuracy": recogniser.raw_accuracy,
        "attribution": obfnet_data::FSDD_ATTRIBUTION,
    });
    obfnet_data::write_atomic(&dir.join("result.json"), &serde_json::to_vec_pretty(&value)?)?;
    if let Some(b) = result.best_attack() {
        crate::say(format!(
            "best attack on FSDD ({}): SSIM {:.3}, recognisability {:.1}%; listen: {}",
            b.attack,
            b.scores.ssim,
            b.recognisability * 100.0,
            page.display()
        ));
    }
    Ok(value)
}
