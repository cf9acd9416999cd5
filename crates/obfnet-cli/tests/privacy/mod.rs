//! `obfnet attack` and `obfnet report` on the tiny generated dataset, with tiny budgets. The
//! report is run once ([`shared_report`]) and checked here; `compare --privacy-report` reads it
//! too (tests/compare).

use std::path::PathBuf;
use std::sync::OnceLock;

use super::common::TINY;
use super::{json_of, obfnet, shared};

/// The privacy report run once on the shared fixture: `conv` (trained and cached by the
/// report), a privacy-trained bottleneck bundle on the frontier, two baselines.
pub(crate) struct SharedReport {
    /// Its output directory.
    pub out_dir: PathBuf,
    /// What `report --json` printed.
    pub summary: serde_json::Value,
    /// The frontier bundle.
    bneck: PathBuf,
}

fn report_cmd(out_dir: &std::path::Path, bneck: &std::path::Path) -> assert_cmd::Command {
    let sh = shared();
    let mut c = obfnet();
    c.args([
        "report",
        "--json",
        "--archs",
        "conv",
        "-k",
        "1,2",
        "--obf-limit",
        "300",
    ])
    .args([
        "--baselines",
        "laplace:7840,projection-gaussian:196",
        "--data-dir",
        sh.data_arg(),
    ])
    .args(TINY)
    .arg("--model")
    .arg(&sh.model)
    .arg("--frontier")
    .arg(bneck)
    .arg("--out")
    .arg(out_dir);
    c
}

pub(crate) fn shared_report() -> &'static SharedReport {
    static REPORT: OnceLock<SharedReport> = OnceLock::new();
    REPORT.get_or_init(|| {
        let sh = shared();
        let dir = sh.data.parent().expect("shared dir").join("privacy-report");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        // a privacy-trained bundle for the frontier
        let bneck = dir.join("obfnets-bneck8.obfb");
        obfnet()
            .args([
                "train-obf",
                "--arch",
                "bottleneck",
                "--bottleneck",
                "8",
                "-k",
                "2",
                "--epochs",
                "1",
            ])
            .args([
                "--limit",
                "300",
                "--adversary-weight",
                "1",
                "--adversary-warmup",
                "2",
            ])
            .args(["--data-dir", sh.data_arg()])
            .arg("--model")
            .arg(&sh.model)
            .arg("--out")
            .arg(&bneck)
            .assert()
            .success();
        let out_dir = dir.join("privacy");
        let out = report_cmd(&out_dir, &bneck).assert().success();
        SharedReport {
            out_dir,
            summary: json_of(&out.get_output().stdout),
            bneck,
        }
    })
}

#[test]
fn report_and_attack_write_complete_labelled_results() {
    let sh = shared();
    let (model, data_arg) = (&sh.model, sh.data_arg());
    let r = shared_report();
    let out_dir = &r.out_dir;
    let summary = &r.summary;
    assert_eq!(summary["schemes"], 5);

    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("report.html");
    assert!(html.contains("Threat model") && html.contains("Honest-but-curious"));
    assert!(html.contains("data:image/png;base64,"), "images inline");
    assert!(
        !html.contains("src=\"http") && !html.contains("src=\"grid"),
        "no external assets"
    );
    assert!(html.contains("empirical") && html.contains("formal"));
    for file in [
        "accuracy-vs-ssim.svg",
        "grid-conv-k2.png",
        "grid-laplace-eps7840.png",
    ] {
        assert!(out_dir.join(file).is_file(), "{file}");
    }
    // the plot is SVG with real text, inline in the page and next to it
    let svg = std::fs::read_to_string(out_dir.join("accuracy-vs-ssim.svg")).expect("svg");
    assert!(svg.starts_with("<svg") && svg.contains("server accuracy") && svg.contains("label-only floor"));
    assert!(html.contains("<svg") && html.contains("SSIM of the strongest attack"));
    assert!(
        out_dir.join("obfnets-conv.obfb").is_file(),
        "missing arch trained and cached"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).expect("report.json"))
            .expect("json");
    assert_eq!(report["schema_version"], 1);
    let results = report["results"].as_array().expect("results");
    let names: Vec<&str> = results.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "conv-k1",
            "conv-k2",
            "bneck8-k2",
            "laplace-eps7840",
            "projection-gaussian-784to196"
        ]
    );
    // the frontier bundle is marked, with its device cost (784·1000 + 1000·8 + 8·784 MACs)
    assert_eq!(results[2]["privacy_trained"], true);
    assert_eq!(results[1]["privacy_trained"], false);
    assert_eq!(results[2]["device_macs"], 784 * 1000 + 1000 * 8 + 8 * 784);
    assert!(results[3]["device_macs"].is_null());
    let md = std::fs::read_to_string(out_dir.join("report.md")).expect("report.md");
    assert!(
        md.contains("Goal: best-attack SSIM at most 0.01 above the label-only floor"),
        "{md}"
    );
    assert!(md.contains("| bneck8-k2 | yes | 2 |"), "{md}");
    for r in results {
        for a in r["attacks"].as_array().expect("attacks") {
            let ssim = a["scores"]["ssim"].as_f64().expect("ssim");
            assert!((-1.0..=1.0).contains(&ssim), "{a}");
            assert_eq!(a["evidence"], "empirical");
        }
    }
    let attacks = |i: usize| -> Vec<String> {
        results[i]["attacks"]
            .as_array()
            .expect("attacks")
            .iter()
            .filter_map(|a| a["attack"].as_str().map(String::from))
            .collect()
    };
    assert_eq!(
        attacks(0),
        [
            "observed-as-image",
            "label-only (class mean)",
            "inverse-pooled",
            "rmle",
            "shadow"
        ]
    );
    assert_eq!(
        attacks(1),
        [
            "observed-as-image",
            "label-only (class mean)",
            "inverse-pooled",
            "inverse-per-net",
            "rmle",
            "shadow"
        ]
    );
    assert_eq!(results[1]["distinguishers"]["which_of_k_chance"], 0.5);
    assert_eq!(results[3]["guarantee"]["kind"], "formal_dp");
    assert!((results[3]["guarantee"]["epsilon"].as_f64().expect("eps") - 7840.0).abs() < 1e-6);
    assert!(
        results[4]["distinguishers"]["raw_vs_observed_auc"].is_null(),
        "size differs"
    );
    assert_eq!(results[4]["guarantee"]["kind"], "empirical");

    // --resume reuses every finished scheme
    let out = report_cmd(out_dir, &r.bneck).arg("--resume").assert().success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert_eq!(stderr.matches("reusing the result").count(), 5, "{stderr}");

    // attack on one baseline, JSON on stdout
    let out = obfnet()
        .args([
            "attack",
            "--json",
            "--baseline",
            "gaussian:0.5",
            "--skip",
            "rmle,distinguishers",
        ])
        .args(["--data-dir", data_arg])
        .args(TINY)
        .arg("--model")
        .arg(model)
        .assert()
        .success();
    let v = json_of(&out.get_output().stdout);
    assert_eq!(v["result"]["name"], "gaussian-sigma0.5");
    assert_eq!(v["result"]["guarantee"]["delta"], 1e-5);
    assert!(v["result"]["distinguishers"].is_null());
}

#[test]
fn attack_rejects_bad_arguments_clearly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = obfnet()
        .args(["attack", "--baseline", "laplace:-3"])
        .assert()
        .failure();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("positive number"));
    let out = obfnet()
        .args(["attack", "--skip", "everything"])
        .arg("--data-dir")
        .arg(tmp.path())
        .assert()
        .failure();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("--skip"));
    let out = obfnet()
        .args(["report", "--eval-samples", "0"])
        .arg("--data-dir")
        .arg(tmp.path())
        .assert()
        .failure();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("eval_samples"));
}
