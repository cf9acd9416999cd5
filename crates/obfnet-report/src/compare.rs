//! `obfnet compare`: the cost of privacy, one table. ObfNet (f32, int8, u8 output), local DP
//! noise and random projection next to homomorphic encryption and two-party secret sharing on
//! the same task (MNIST), each measured here in the same run — except the privacy of the
//! obfuscation, noise and projection rows, which comes from the attacks of `obfnet report`
//! (its report.json, `--privacy-report`) and is "not measured" without it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use obfnet_core::runtime::{NetChoice, Runtime, Wire};
use obfnet_crypto::he::{HeConfig, HeEvent, HeReport, INPUT_CTS, run_he};
use obfnet_crypto::model::{CRYPTONET_FORMAT, CryptoNetFile, IntNet, SquareNetConfig, train_square_net};
use obfnet_crypto::mpc::{MpcConfig, MpcReport, run_mpc};
use obfnet_nn::SplitMix64;
use obfnet_privacy::Guarantee;
use serde::{Deserialize, Serialize};

use crate::html::escape as html_escape;
use crate::privacy::ReportFile;
use crate::say;
use crate::schema::{Versioned, version_one};
use crate::setup::DataSource;

/// `obfnet compare`: where the inputs are and how much to measure.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// The dataset (MNIST only).
    pub data: DataSource,
    /// The server model the obfuscation rows run against: a LeNet-5 directory or an ONNX file.
    pub model: PathBuf,
    /// ObfNet2 bundle with f32 weights.
    pub obfnet2: PathBuf,
    /// ObfNet2 bundle with int8 weights.
    pub obfnet2_int8: PathBuf,
    /// ObfNet1 bundle; its row is skipped without it.
    pub obfnet1: Option<PathBuf>,
    /// report.json of `obfnet report`: source of the attack-measured SSIMs, the DP ε and the
    /// accuracies of the noise and projection rows.
    pub privacy_report: Option<PathBuf>,
    /// Scheme of the privacy report shown as the local-DP row.
    pub dp_scheme: String,
    /// Scheme of the privacy report shown as the random-projection row.
    pub projection_scheme: String,
    /// The CryptoNets-style model; trained and saved to `<out>/cryptonet.json` when None and
    /// absent there.
    pub cryptonet: Option<PathBuf>,
    /// Test images run under HE (0: no HE rows).
    pub he_images: usize,
    /// Test images run under 2PC in batches of `mpc_batch` (0: no batched row).
    pub mpc_images: usize,
    /// Images per 2PC batch.
    pub mpc_batch: usize,
    /// Test images run one at a time under 2PC (0: no single-image row).
    pub mpc_single_images: usize,
    /// Test images for the accuracy of the raw and ObfNet rows.
    pub eval_images: usize,
    /// Worker threads of the HE server (None: all cores).
    pub threads: Option<usize>,
    /// Output directory (compare.md, compare.html, compare.json, cryptonet.json).
    pub out: PathBuf,
    /// The command line, for the pages.
    pub command: String,
}

/// One cell that says what kind of number it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Privacy {
    /// "empirical", "cryptographic", "formal", "none", "not measured".
    pub kind: String,
    /// The value or statement.
    pub text: String,
}

/// One scheme of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Scheme.
    pub name: String,
    /// Accuracy and how many test images it was measured on.
    pub accuracy: Option<f64>,
    /// What the accuracy was measured on.
    pub accuracy_note: String,
    /// Device work per inference.
    pub edge_ops: String,
    /// Measured device seconds per inference (median or amortised, see note).
    pub edge_seconds: Option<f64>,
    /// Bytes the device sends per inference.
    pub bytes_sent: Option<f64>,
    /// Bytes the device receives per inference.
    pub bytes_received: Option<f64>,
    /// Offline (preprocessing) bytes per inference, 2PC only.
    pub offline_bytes: Option<f64>,
    /// Round trips.
    pub round_trips: String,
    /// Server seconds per inference.
    pub server_seconds: Option<f64>,
    /// What protects the input, and of which kind the number is.
    pub privacy: Privacy,
    /// How it was measured.
    pub note: String,
    /// Scheme of the privacy report this row's privacy (and, for DP / projection, accuracy)
    /// comes from, and what the cell adds.
    #[serde(skip)]
    pub from_report: Option<(String, String, ReportUse)>,
}

/// What a row takes from the privacy report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportUse {
    /// Strongest attack's SSIM.
    Ssim,
    /// SSIM + accuracy (the server retrains; measured by `obfnet report`).
    SsimAndAccuracy,
    /// ε + SSIM + accuracy.
    DpAndAccuracy,
}

/// `compare.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareFile {
    /// Schema version ([`Versioned::VERSION`]; files without it are version 1).
    #[serde(default = "version_one")]
    pub schema_version: u32,
    /// The table.
    pub rows: Vec<Row>,
    /// Measured ratios against ObfNet2 (f32).
    pub ratios: Vec<(String, f64)>,
    /// The HE run.
    pub he: Option<HeReport>,
    /// The single-image 2PC run.
    pub mpc_single: Option<MpcReport>,
    /// The batched 2PC run.
    pub mpc_batched: Option<MpcReport>,
    /// The CryptoNets-style net of HE and 2PC.
    pub cryptonet: Option<CryptoNetFile>,
    /// Threads of the HE server.
    pub threads: usize,
    /// Wall time.
    pub seconds: f64,
    /// Notes under the table.
    pub notes: Vec<String>,
}

impl Versioned for CompareFile {
    const KIND: &'static str = "comparison";
    const VERSION: u32 = 1;
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Median seconds of `f` over `n` runs (after 3 warm-up runs).
fn time_median(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..3 {
        f()?;
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed().as_secs_f64());
    }
    Ok(median(v))
}

/// The privacy report's scheme named `name`: accuracy, strongest attack (name, SSIM) and
/// guarantee.
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    /// Server accuracy under the scheme.
    pub accuracy: f64,
    /// The strongest attack, by [`obfnet_privacy::SchemeResult::best_attack`] — the report's
    /// own rule, which skips the reference rows (observed as image, label-only).
    pub best: Option<(String, f64)>,
    /// The scheme's guarantee.
    pub guarantee: Guarantee,
}

/// Looks up `name` in the report.
pub fn reported(report: &ReportFile, name: &str) -> Option<Reported> {
    let r = report.scheme(name)?;
    Some(Reported {
        accuracy: r.utility.accuracy,
        best: r.best_attack().map(|b| (b.attack.clone(), b.scores.ssim)),
        guarantee: r.guarantee.clone(),
    })
}

/// Fills the privacy cells (and, for DP / projection rows, the accuracy) of `rows` from the
/// privacy report.
pub fn apply_report(rows: &mut [Row], report: &ReportFile) {
    for row in rows {
        let Some((scheme, suffix, usage)) = row.from_report.clone() else {
            continue;
        };
        let rep = reported(report, &scheme);
        row.privacy = match usage {
            ReportUse::DpAndAccuracy => formal_dp(&rep, &scheme),
            _ => empirical(&rep, &scheme, &suffix),
        };
        if usage != ReportUse::Ssim {
            row.accuracy = rep.as_ref().map(|r| r.accuracy);
        }
    }
}

fn empirical(rep: &Option<Reported>, scheme: &str, suffix: &str) -> Privacy {
    match rep.as_ref().and_then(|r| r.best.clone()) {
        Some((attack, ssim)) => Privacy {
            kind: "empirical".into(),
            text: format!("SSIM {ssim:.3} ({attack}, {scheme}){suffix}"),
        },
        None => Privacy {
            kind: "not measured".into(),
            text: format!("no attack result for {scheme} (pass --privacy-report)"),
        },
    }
}

fn formal_dp(rep: &Option<Reported>, scheme: &str) -> Privacy {
    let eps = rep.as_ref().and_then(|r| match r.guarantee {
        Guarantee::FormalDp { epsilon, .. } => Some(epsilon),
        _ => None,
    });
    let ssim = rep.as_ref().and_then(|r| r.best.clone());
    if let Some(Guarantee::VoidDp { epsilon, .. }) = rep.as_ref().map(|r| &r.guarantee) {
        let (kind, measured) = match ssim {
            Some((attack, s)) => (
                "void (seeded noise) + empirical",
                format!("; SSIM {s:.3} ({attack}, empirical)"),
            ),
            None => ("void (seeded noise)", String::new()),
        };
        return Privacy {
            kind: kind.into(),
            text: format!(
                "no formal guarantee for this run: its noise was seeded (ε = {epsilon:.0} per image only with OS randomness){measured}"
            ),
        };
    }
    match (eps, ssim) {
        (Some(e), Some((attack, s))) => Privacy {
            kind: "formal + empirical".into(),
            text: format!("ε = {e:.0} per image (formal); SSIM {s:.3} ({attack}, empirical)"),
        },
        (Some(e), None) => Privacy {
            kind: "formal".into(),
            text: format!("ε = {e:.0} per image"),
        },
        _ => Privacy {
            kind: "not measured".into(),
            text: format!("no result for {scheme} (pass --privacy-report)"),
        },
    }
}

/// Device cost of one obfuscation: median seconds of `obfuscate` + wire encoding, single thread.
fn edge_time(rt: &Runtime, images: &obfnet_data::LabeledImages, wire: Wire) -> Result<f64> {
    let mut scratch = rt.scratch();
    let mut out = vec![0.0f32; rt.output_len()];
    let mut buf = Vec::with_capacity(rt.output_len() * 4);
    let mut rng = obfnet_core::runtime::SeededRandom::new(1);
    let mut i = 0usize;
    time_median(300, || {
        buf.clear();
        rt.obfuscate(
            images.image(i % images.len()),
            NetChoice::Random(&mut rng),
            &mut out,
            &mut scratch,
        )?;
        wire.encode(&out, rt.normalisation(), &mut buf);
        i += 1;
        Ok(())
    })
}

fn load_or_train_cryptonet(a: &CompareConfig, ds: &obfnet_data::ImageDataset) -> Result<CryptoNetFile> {
    let path = a
        .cryptonet
        .clone()
        .unwrap_or_else(|| a.out.join("cryptonet.json"));
    if path.exists() {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let f = CryptoNetFile::from_json(&bytes).with_context(|| format!("loading {}", path.display()))?;
        say(format!("CryptoNets-style model from {}", path.display()));
        return Ok(f);
    }
    if a.cryptonet.is_some() {
        bail!("{} does not exist", path.display());
    }
    let cfg = SquareNetConfig::default();
    say(format!(
        "training the CryptoNets-style square net ({} epochs, burn) → {}",
        cfg.epochs,
        path.display()
    ));
    let mut last = 0u64;
    let (net, report) = train_square_net(&cfg, &ds.train, &ds.test, &mut |s, total| {
        if s * 10 / total.max(1) != last {
            last = s * 10 / total.max(1);
            say(format!("  step {s}/{total}"));
        }
    })?;
    let f = CryptoNetFile {
        format: CRYPTONET_FORMAT.into(),
        config: cfg,
        report,
        net,
    };
    obfnet_data::write_atomic(&path, &serde_json::to_vec_pretty(&f)?)?;
    Ok(f)
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "–".to_string(), f)
}

fn fmt_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

const HEADER: [&str; 10] = [
    "scheme",
    "accuracy",
    "edge ops / inference",
    "edge time / inference",
    "sent / inference",
    "received / inference",
    "offline / inference",
    "round trips",
    "server time / inference",
    "privacy [kind]",
];

fn cells(r: &Row) -> [String; 10] {
    [
        r.name.clone(),
        fmt_opt(r.accuracy, |a| format!("{:.2}% ({})", a * 100.0, r.accuracy_note)),
        r.edge_ops.clone(),
        fmt_opt(r.edge_seconds, fmt_secs),
        fmt_opt(r.bytes_sent, fmt_bytes),
        fmt_opt(r.bytes_received, fmt_bytes),
        fmt_opt(r.offline_bytes, fmt_bytes),
        r.round_trips.clone(),
        fmt_opt(r.server_seconds, fmt_secs),
        format!("[{}] {}", r.privacy.kind, r.privacy.text),
    ]
}

/// A ratio with two significant digits below 10, none above.
fn fmt_ratio(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}×")
    } else {
        format!("{v:.2}×")
    }
}

/// The Markdown page.
pub fn markdown(f: &CompareFile, command: &str) -> String {
    let mut s = String::new();
    s.push_str("# obfnet compare: the cost of privacy on MNIST\n\n");
    s.push_str(&format!(
        "Command: `{command}` ({:.0} s, {} thread(s)).\n\n",
        f.seconds, f.threads
    ));
    s.push_str(&format!(
        "| {} |\n|{}\n",
        HEADER.join(" | "),
        "---|".repeat(HEADER.len())
    ));
    for r in &f.rows {
        s.push_str(&format!("| {} |\n", cells(r).join(" | ").replace('\n', " ")));
    }
    s.push_str("\nMeasured ratios (same run):\n\n");
    for (name, v) in &f.ratios {
        s.push_str(&format!("- {name}: **{}**\n", fmt_ratio(*v)));
    }
    s.push_str("\nNotes:\n\n");
    for r in &f.rows {
        if !r.note.is_empty() {
            s.push_str(&format!("- **{}**: {}\n", r.name, r.note));
        }
    }
    for n in &f.notes {
        s.push_str(&format!("- {n}\n"));
    }
    s
}

/// The HTML page.
pub fn html(f: &CompareFile, command: &str) -> String {
    let mut h = String::from(
        "<!doctype html><meta charset=utf-8><title>obfnet compare</title><style>body{font-family:sans-serif;margin:2em}\
         table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top}\
         th{background:#eee}.k{font-size:11px;color:#555;display:block}</style>\
         <h1>The cost of privacy on MNIST</h1>",
    );
    h.push_str(&format!(
        "<p><code>{}</code> — {:.0} s, {} thread(s). Every privacy cell names its kind: empirical (attack-measured SSIM), \
         cryptographic (assumption), formal (ε).</p><table><tr>",
        html_escape(command),
        f.seconds,
        f.threads
    ));
    for c in HEADER {
        h.push_str(&format!("<th>{}</th>", html_escape(c)));
    }
    h.push_str("</tr>");
    for r in &f.rows {
        h.push_str("<tr>");
        let c = cells(r);
        for (i, cell) in c.iter().enumerate() {
            if i == 9 {
                h.push_str(&format!(
                    "<td><span class=k>{}</span>{}</td>",
                    html_escape(&r.privacy.kind),
                    html_escape(&r.privacy.text)
                ));
            } else {
                h.push_str(&format!("<td>{}</td>", html_escape(cell)));
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table><h2>Measured ratios</h2><ul>");
    for (n, v) in &f.ratios {
        h.push_str(&format!("<li>{}: <b>{}</b></li>", html_escape(n), fmt_ratio(*v)));
    }
    h.push_str("</ul><h2>Notes</h2><ul>");
    for r in &f.rows {
        if !r.note.is_empty() {
            h.push_str(&format!(
                "<li><b>{}</b>: {}</li>",
                html_escape(&r.name),
                html_escape(&r.note)
            ));
        }
    }
    for n in &f.notes {
        h.push_str(&format!("<li>{}</li>", html_escape(n)));
    }
    h.push_str("</ul>");
    h
}

/// The table for a terminal (aligned columns), then the ratios.
pub fn terminal(f: &CompareFile) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let rows: Vec<[String; 10]> = f.rows.iter().map(cells).collect();
    let mut w = HEADER.map(|h| h.chars().count());
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(9) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |c: &[String]| {
        let mut s = String::new();
        for (i, cell) in c.iter().enumerate() {
            if i < 9 {
                s.push_str(&format!("{cell:<width$}  ", width = w[i]));
            } else {
                s.push_str(cell);
            }
        }
        s
    };
    let _ = writeln!(out, "{}", line(&HEADER.map(String::from)));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r));
    }
    let _ = writeln!(out);
    for (n, v) in &f.ratios {
        let _ = writeln!(out, "{n}: {}", fmt_ratio(*v));
    }
    out
}

/// Measures every row, fills the privacy cells from the report, and writes compare.md,
/// compare.html and compare.json into `a.out`.
///
/// # Errors
/// Invalid settings, data, model, bundles or report; HE or 2PC results that differ from the
/// plaintext net; I/O.
pub fn run_compare(a: &CompareConfig) -> Result<CompareFile> {
    let t0 = Instant::now();
    let command = a.command.clone();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |t| t.get()));
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    if a.data.dataset != "mnist" {
        bail!(
            "obfnet compare runs on MNIST (its HE and 2PC network is sized for 28×28 digits); got --dataset {}",
            a.data.dataset
        );
    }
    if let Some(p) = &a.privacy_report {
        // refuse an unreadable or unknown-version report before the long measurements; it is
        // read again at the end, as late as possible, in case it is still being written
        crate::schema::read_versioned::<ReportFile>(p)?;
    }
    let ds = a.data.load()?;
    let n_eval = a.eval_images.clamp(1, ds.test.len());
    let mut test = ds.test.clone();
    test.pixels.truncate(n_eval * 784);
    test.labels.truncate(n_eval);
    let acc_note = format!("{n_eval} test images");

    let pending = Privacy {
        kind: "not measured".into(),
        text: "pass --privacy-report".into(),
    };

    // --- raw and the server's cost ---------------------------------------------------------
    say("raw: server model accuracy and time per inference");
    // a LeNet-5 directory (checked against MNIST) or an ONNX file taking 28×28 samples
    let (server, _) = crate::setup::load_server_for(&a.model, &ds.name)?;
    let device = obfnet_nn::default_device();
    let data = obfnet_nn::Dataset::from_images(&test, &device)?;
    let raw_acc = obfnet_nn::server_accuracy(&server, &data)?;
    let server_kind = if obfnet_nn::is_onnx_path(&a.model) {
        "the ONNX model"
    } else {
        "LeNet-5"
    };
    let mut i = 0usize;
    let server_s = time_median(100, || {
        let x = data.slice(i % data.len(), 1).inner();
        let _ = server.forward_eval(x)?.into_data();
        i += 1;
        Ok(())
    })?;
    let logits_bytes = 10.0 * 4.0;
    let mut rows = vec![Row {
        name: "raw".into(),
        accuracy: Some(raw_acc),
        accuracy_note: acc_note.clone(),
        edge_ops: "0".into(),
        edge_seconds: None,
        bytes_sent: Some(784.0),
        bytes_received: Some(logits_bytes),
        offline_bytes: None,
        round_trips: "1".into(),
        server_seconds: Some(server_s),
        privacy: Privacy {
            kind: "none".into(),
            text: "the server sees the image".into(),
        },
        note: format!("u8 image sent; {server_kind} on the server (burn, batch 1, median of 100)."),
        from_report: None,
    }];

    // --- ObfNet rows -----------------------------------------------------------------------
    let obf = |label: &str, path: &Path, wire: Wire, scheme: &str, suffix: &str| -> Result<Row> {
        say(format!("{label}: {}", path.display()));
        let (_, bundle) = crate::setup::read_bundle(path)?;
        let rt = Runtime::from_bundle(&bundle)?;
        let eval = crate::edge::evaluate_edge(&server, &bundle, &test, false)?;
        let accs = if wire == Wire::U8 {
            &eval.accuracy_u8_wire
        } else {
            &eval.accuracy_f32_wire
        };
        let acc = accs.iter().sum::<f64>() / accs.len().max(1) as f64;
        let t = edge_time(&rt, &test, wire)?;
        Ok(Row {
            name: label.into(),
            accuracy: Some(acc),
            accuracy_note: format!("mean of K = {}, {acc_note}", rt.k()),
            edge_ops: format!("{} MACs", rt.nets().first().map_or(0, |n| n.macs)),
            edge_seconds: Some(t),
            bytes_sent: Some((rt.output_len() * wire.bytes_per_value()) as f64),
            bytes_received: Some(logits_bytes),
            offline_bytes: None,
            round_trips: "1".into(),
            server_seconds: Some(server_s),
            privacy: pending.clone(),
            from_report: Some((scheme.to_string(), suffix.to_string(), ReportUse::Ssim)),
            note: format!(
                "{} weights, {} wire; edge = obfnet_core::runtime, one thread, median of 300 (net drawn at random per sample).",
                eval.weights,
                if wire == Wire::U8 { "u8" } else { "f32" }
            ),
        })
    };
    if let Some(p) = &a.obfnet1 {
        rows.push(obf("ObfNet1 (f32)", p, Wire::F32, "obfnet1-k10", "")?);
    }
    rows.push(obf("ObfNet2 (f32)", &a.obfnet2, Wire::F32, "obfnet2-k10", "")?);
    rows.push(obf(
        "ObfNet2 (int8)",
        &a.obfnet2_int8,
        Wire::F32,
        "obfnet2-k10",
        "; attacked: the f32 nets",
    )?);
    rows.push(obf(
        "ObfNet2 (u8 output)",
        &a.obfnet2,
        Wire::U8,
        "obfnet2-k10",
        "; attacked: the f32 output",
    )?);
    let obfnet2_row = rows
        .iter()
        .find(|r| r.name == "ObfNet2 (f32)")
        .cloned()
        .context("ObfNet2 row missing")?;

    // --- local DP noise and random projection --------------------------------------------------
    say("local DP noise and random projection: device cost");
    let mut rng = SplitMix64::new(3);
    let mut noisy = vec![0.0f32; 784];
    let img = test.image(0).to_vec();
    let b = 784.0 / 7840.0;
    let dp_t = time_median(300, || {
        for (o, &p) in noisy.iter_mut().zip(&img) {
            // Laplace by inverse CDF: the device's whole job.
            let u = rng.next_f32() - 0.5;
            *o = f32::from(p) / 255.0 - b * u.signum() * (1.0 - 2.0 * u.abs()).max(f32::MIN_POSITIVE).ln();
        }
        std::hint::black_box(&noisy);
        Ok(())
    })?;
    rows.push(Row {
        name: format!("local DP noise ({})", a.dp_scheme),
        accuracy: None,
        accuracy_note: "from the privacy report".into(),
        edge_ops: "784 noise samples".into(),
        edge_seconds: Some(dp_t),
        bytes_sent: Some(784.0 * 4.0),
        bytes_received: Some(logits_bytes),
        offline_bytes: None,
        round_trips: "1".into(),
        server_seconds: Some(server_s),
        privacy: pending.clone(),
        note: "edge time: Laplace noise on 784 pixels (inverse CDF), one thread, median of 300.".into(),
        from_report: Some((a.dp_scheme.clone(), String::new(), ReportUse::DpAndAccuracy)),
    });
    let proj: Vec<f32> = (0..784 * 784).map(|_| rng.uniform(0.05)).collect();
    let x: Vec<f32> = img.iter().map(|&p| f32::from(p) / 255.0).collect();
    let mut y = vec![0.0f32; 784];
    let proj_t = time_median(300, || {
        for (r, o) in y.iter_mut().enumerate() {
            *o = proj[r * 784..(r + 1) * 784]
                .iter()
                .zip(&x)
                .map(|(a, b)| a * b)
                .sum();
        }
        std::hint::black_box(&y);
        Ok(())
    })?;
    rows.push(Row {
        name: format!("random projection ({})", a.projection_scheme),
        accuracy: None,
        accuracy_note: "from the privacy report; server retrained on projections".into(),
        edge_ops: format!("{} MACs", 784 * 784),
        edge_seconds: Some(proj_t),
        bytes_sent: Some(784.0 * 4.0),
        bytes_received: Some(logits_bytes),
        offline_bytes: None,
        round_trips: "1".into(),
        server_seconds: None,
        privacy: pending.clone(),
        from_report: Some((
            a.projection_scheme.clone(),
            String::new(),
            ReportUse::SsimAndAccuracy,
        )),
        note: "edge time: a dense 784×784 f32 product, one thread, median of 300; the server runs its \
               retrained MLP (not timed here)."
            .into(),
    });

    // --- the CryptoNets-style net ------------------------------------------------------------
    let cn = load_or_train_cryptonet(a, &ds)?;
    let net: &IntNet = &cn.net;
    let plain_acc = net.accuracy(&ds.test, None)?;
    say(format!(
        "square net: {:.2}% (integer, 10 000 test images), worst case {:.1} signed bits",
        plain_acc * 100.0,
        net.worst_case_bits()
    ));

    // --- HE ---------------------------------------------------------------------------------
    let mut he_report = None;
    if a.he_images > 0 {
        let cfg = HeConfig {
            threads,
            ..HeConfig::default()
        };
        say(format!(
            "HE (BFV, n = {}, log q = {}): {} images in batches of {}",
            cfg.degree,
            cfg.log_q(),
            a.he_images.min(ds.test.len()),
            cfg.degree
        ));
        let r = run_he(&cfg, net, &ds.test, a.he_images, &mut |e| match e {
            HeEvent::Batch { batch, of, images } => {
                say(format!("  HE batch {}/{of}: {images} images", batch + 1))
            }
            HeEvent::Phase { name, seconds } => say(format!("    {name}: {seconds:.1} s")),
        })?;
        if r.mismatches > 0 {
            bail!(
                "HE: {} images decrypted to logits that differ from the plaintext net",
                r.mismatches
            );
        }
        let per_batch_up = r.bytes_up as f64 / r.batches as f64;
        let per_batch_down = r.bytes_down as f64 / r.batches as f64;
        let slots = r.degree as f64;
        let edge = r.encrypt_seconds + r.decrypt_seconds;
        let privacy = Privacy {
            kind: "cryptographic".into(),
            text: format!(
                "RLWE, ≈{}-bit (n = {}, log q = {}; HE standard)",
                r.security_bits, r.degree, r.log_q
            ),
        };
        rows.push(Row {
            name: format!("HE batched ({} images per ciphertext)", r.degree),
            accuracy: Some(r.accuracy()),
            accuracy_note: format!("{} test images, decrypted", r.images),
            edge_ops: format!("{INPUT_CTS} encryptions + 10 decryptions per batch"),
            edge_seconds: Some(edge / slots),
            bytes_sent: Some(per_batch_up / slots),
            bytes_received: Some(per_batch_down / slots),
            offline_bytes: None,
            round_trips: "1 per batch".into(),
            server_seconds: Some(r.server_seconds / slots),
            privacy: privacy.clone(),
            from_report: None,
            note: format!(
                "amortised over a full batch of {} images (per-batch median: encrypt {:.1} s, server {:.1} s with {} thread(s), \
                 decrypt {:.2} s; {} up, {} down per batch); plaintext modulus t = {}.",
                r.degree,
                r.encrypt_seconds,
                r.server_seconds,
                r.threads,
                r.decrypt_seconds,
                fmt_bytes(per_batch_up),
                fmt_bytes(per_batch_down),
                r.plaintext_modulus
            ),
        });
        rows.push(Row {
            name: "HE single image".into(),
            accuracy: Some(r.accuracy()),
            accuracy_note: "as batched (same circuit)".into(),
            edge_ops: format!("{INPUT_CTS} encryptions + 10 decryptions"),
            edge_seconds: Some(edge),
            bytes_sent: Some(per_batch_up),
            bytes_received: Some(per_batch_down),
            offline_bytes: None,
            round_trips: "1".into(),
            server_seconds: Some(r.server_seconds),
            privacy,
            from_report: None,
            note: "one image costs a whole batch (the work is per ciphertext, not per slot): the measured \
                   per-batch medians; no one-image packing (LoLa-style) is implemented."
                .into(),
        });
        he_report = Some(r);
    }

    // --- 2PC --------------------------------------------------------------------------------
    let mpc_rows = |batch: usize, images: usize| -> Result<Option<(Row, MpcReport)>> {
        if images == 0 {
            return Ok(None);
        }
        let cfg = MpcConfig {
            batch,
            ..MpcConfig::default()
        };
        say(format!(
            "2PC over loopback TCP: {images} images, {batch} per batch"
        ));
        let r = run_mpc(&cfg, net, &ds.test, images)?;
        if r.mismatches > 0 {
            bail!(
                "2PC: {} images reconstructed to logits that differ from the plaintext net",
                r.mismatches
            );
        }
        let n = r.images as f64;
        let single = batch == 1;
        Ok(Some((
            Row {
                name: if single {
                    "2PC single image".into()
                } else {
                    format!("2PC batched ({batch} per batch)")
                },
                accuracy: Some(r.accuracy()),
                accuracy_note: format!("{} test images, reconstructed", r.images),
                edge_ops: "local share arithmetic ≈3× the net's MACs (ring)".into(),
                edge_seconds: Some(r.client_compute_seconds / n),
                bytes_sent: Some(r.client_sent as f64 / n),
                bytes_received: Some(r.server_sent as f64 / n),
                offline_bytes: Some(r.offline_client_bytes as f64 / n),
                round_trips: format!("{} per batch", r.round_trips_per_batch),
                server_seconds: Some(r.server_compute_seconds / n),
                privacy: Privacy {
                    kind: "cryptographic".into(),
                    text: "information-theoretic vs one semi-honest party; honest, non-colluding dealer"
                        .into(),
                },
                from_report: None,
                note: format!(
                    "online wall {} per image over loopback (latency not modelled); offline = dealer → client \
                     (the server gets as much); dealer {} per image.",
                    fmt_secs(r.online_wall_seconds / n),
                    fmt_secs(r.dealer_seconds / n)
                ),
            },
            r,
        )))
    };
    let single = mpc_rows(1, a.mpc_single_images)?;
    let batched = mpc_rows(a.mpc_batch, a.mpc_images)?;
    let mut mpc_single = None;
    let mut mpc_batched = None;
    if let Some((row, r)) = single {
        rows.push(row);
        mpc_single = Some(r);
    }
    if let Some((row, r)) = batched {
        rows.push(row);
        mpc_batched = Some(r);
    }

    // --- privacy cells from `obfnet report` (read last, so a report still being written is read
    // as late as possible) ------------------------------------------------------------------
    if let Some(p) = &a.privacy_report {
        let report: ReportFile = crate::schema::read_versioned(p)?;
        apply_report(&mut rows, &report);
    }

    // --- ratios -----------------------------------------------------------------------------
    let mut ratios = Vec::new();
    let base_t = obfnet2_row.edge_seconds.unwrap_or(f64::NAN);
    let base_b = obfnet2_row.bytes_sent.unwrap_or(f64::NAN) + obfnet2_row.bytes_received.unwrap_or(0.0);
    for r in rows
        .iter()
        .filter(|r| r.name.starts_with("HE") || r.name.starts_with("2PC"))
    {
        if let Some(t) = r.edge_seconds {
            ratios.push((format!("{} / ObfNet2 (f32): edge time", r.name), t / base_t));
        }
        let bytes =
            r.bytes_sent.unwrap_or(0.0) + r.bytes_received.unwrap_or(0.0) + r.offline_bytes.unwrap_or(0.0);
        ratios.push((
            format!(
                "{} / ObfNet2 (f32): bytes on the wire (both ways, offline included)",
                r.name
            ),
            bytes / base_b,
        ));
    }

    let notes = vec![
        "Bytes: tensor payloads only for raw / ObfNet / DP / projection (request tensor; response = 10 f32 logits), \
         the protocol's own serialised messages (headers included) for HE and 2PC."
            .to_string(),
        format!(
            "HE and 2PC run the CryptoNets-style net (conv 5×5 stride 2 → square → dense, {} MACs; {:.2}% as a plaintext \
             integer net), not LeNet-5: their accuracy is that net's, and every decrypted / reconstructed result equals \
             the plaintext integer net exactly (checked per image).",
            net.macs(),
            plain_acc * 100.0
        ),
        "Privacy kinds: empirical = SSIM of the strongest reconstruction attack of `obfnet report` (1 = perfect \
         reconstruction); cryptographic = security rests on an assumption (RLWE) or on masking; formal = local DP ε. \
         Parameters and threat models: docs/SECURITY-BASELINES.md."
            .to_string(),
        "All times on this machine in this run; the server shares the machine with the client (HE/2PC) and HE uses \
         --threads workers."
            .to_string(),
    ];

    let file = CompareFile {
        schema_version: CompareFile::VERSION,
        rows,
        ratios,
        he: he_report,
        mpc_single,
        mpc_batched,
        cryptonet: Some(cn),
        threads,
        seconds: t0.elapsed().as_secs_f64(),
        notes,
    };
    let md = markdown(&file, &command);
    obfnet_data::write_atomic(&a.out.join("compare.md"), md.as_bytes())?;
    obfnet_data::write_atomic(&a.out.join("compare.html"), html(&file, &command).as_bytes())?;
    obfnet_data::write_atomic(&a.out.join("compare.json"), &serde_json::to_vec_pretty(&file)?)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use obfnet_privacy::metrics::ImageScores;
    use obfnet_privacy::{AttackScore, Family, OBSERVED_AS_IMAGE, Pictures, SchemeResult, Utility};

    /// `obfnet_privacy`'s label-only reference row.
    const LABEL_ONLY: &str = "label-only (class mean)";

    fn attack(name: &str, ssim: f64) -> AttackScore {
        AttackScore {
            attack: name.into(),
            scores: ImageScores {
                mse: 0.1,
                psnr_db: 10.0,
                ssim,
                n: 10,
                ssim_median: ssim,
                ssim_p90: ssim,
                psnr_median_db: 10.0,
                psnr_p90_db: 10.0,
            },
            recognisability: 0.5,
            seconds: 0.0,
            evidence: "empirical".into(),
            note: None,
            gain_over_floor: None,
        }
    }

    fn report(attacks: Vec<AttackScore>) -> ReportFile {
        let scheme = SchemeResult {
            name: "obfnet2-k10".into(),
            family: Family::ObfNet,
            arch: Some("obfnet2".into()),
            k: 10,
            guarantee: Guarantee::Empirical,
            utility: Utility {
                accuracy: 0.98,
                note: String::new(),
            },
            attacks,
            distinguishers: None,
            shadow_accuracy: None,
            pictures: Pictures {
                rows: 28,
                cols: 28,
                originals: vec![],
                observed: vec![],
                reconstructions: vec![],
            },
            seconds: 0.0,
            device_macs: None,
            privacy_trained: false,
            speaker: None,
            similarity: None,
            output_noise: None,
        };
        let json = serde_json::json!({
            "threat_model": "t", "config": obfnet_privacy::AttackConfig::default(),
            "server_model_sha256": "00", "server_raw_accuracy": 0.99,
            "recogniser": {"model": "m", "epochs": 1, "seed": 1, "raw_test_accuracy": 0.9},
            "bundles": [], "results": [scheme], "seconds": 1.0,
        });
        serde_json::from_value(json).expect("a version-1 report without schema_version")
    }

    #[test]
    fn the_best_attack_skips_both_reference_rows() {
        // the label-only reference and the observed output score higher than any attack
        let r = report(vec![
            attack(OBSERVED_AS_IMAGE, 0.9),
            attack(LABEL_ONLY, 0.5),
            attack("inverse-pooled", 0.2),
            attack("rmle", 0.1),
        ]);
        assert_eq!(r.schema_version, 1);
        let got = reported(&r, "obfnet2-k10").expect("scheme");
        assert_eq!(got.best, Some(("inverse-pooled".to_string(), 0.2)));
        assert_eq!(got.accuracy, 0.98);
        let p = empirical(&Some(got), "obfnet2-k10", "");
        assert_eq!(p.kind, "empirical");
        assert!(p.text.starts_with("SSIM 0.200 (inverse-pooled"), "{}", p.text);
        // only references: no attack measured
        let r = report(vec![attack(OBSERVED_AS_IMAGE, 0.9), attack(LABEL_ONLY, 0.5)]);
        let got = reported(&r, "obfnet2-k10");
        assert_eq!(empirical(&got, "obfnet2-k10", "").kind, "not measured");
        assert!(reported(&r, "other").is_none());
    }

    #[test]
    fn a_void_dp_row_never_reads_as_formal() {
        let rep = Reported {
            accuracy: 0.9,
            best: Some(("rmle".into(), 0.3)),
            guarantee: Guarantee::VoidDp {
                epsilon: 784.0,
                delta: 0.0,
                basis: "b".into(),
                reason: "seeded".into(),
            },
        };
        let p = formal_dp(&Some(rep), "laplace-784");
        assert_eq!(p.kind, "void (seeded noise) + empirical");
        assert!(
            p.text.starts_with("no formal guarantee for this run"),
            "{}",
            p.text
        );
        assert!(!p.kind.contains("formal"), "{}", p.kind);
    }
}
