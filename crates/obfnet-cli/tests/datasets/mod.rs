//! `--dataset`: FSDD end to end on a tiny synthetic copy (WAV → MFCC → models → attack →
//! listenable WAVs), and models or bundles used with the wrong dataset.

use std::path::Path;

use super::{json_of, obfnet, write_fixture};

/// A tiny FSDD copy: digit d is a tone at 250 + 180·d Hz with a short decay, two speakers
/// (slightly different pitch), takes 0..8 (takes 0–4 are the test split).
fn write_fsdd(dir: &Path) {
    let rec = dir.join("fsdd/recordings");
    std::fs::create_dir_all(&rec).expect("mkdir");
    for d in 0..10u8 {
        for (s, speaker) in ["ann", "bo"].iter().enumerate() {
            for t in 0..8u32 {
                let f = 250.0 + 180.0 * f32::from(d) + 15.0 * s as f32 + 3.0 * t as f32;
                let n = 2500 + 150 * t as usize;
                let x: Vec<f32> = (0..n)
                    .map(|i| {
                        let env = (-(i as f32) / n as f32 * 2.0).exp();
                        0.4 * env * (std::f32::consts::TAU * f * i as f32 / 8000.0).sin()
                    })
                    .collect();
                let bytes = obfnet_data::Wav::from_f32(8000, &x).to_bytes().expect("wav");
                std::fs::write(rec.join(format!("{d}_{speaker}_{t}.wav")), bytes).expect("write");
            }
        }
    }
}

#[test]
fn fsdd_quickstart_writes_listenable_wavs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    write_fsdd(&data);
    let run = tmp.path().join("run");
    let out = obfnet()
        .args([
            "quickstart",
            "--json",
            "--dataset",
            "fsdd",
            "-k",
            "2",
            "--lenet-epochs",
            "3",
        ])
        .args(["--obf-epochs", "2"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let report = json_of(&out.get_output().stdout);
    assert_eq!(report["data"]["dataset"], "fsdd");
    assert_eq!(report["data"]["train"], 60);
    assert_eq!(report["data"]["test"], 100);
    assert!(
        report["data"]["attribution"]
            .as_str()
            .is_some_and(|a| a.contains("CC BY-SA 4.0"))
    );
    // the bundle records the dataset and the 20×64 map shape
    let bundle =
        obfnet_core::Bundle::from_bytes(&std::fs::read(run.join("obfnets-obfnet2.obfb")).expect("read"))
            .expect("bundle");
    assert_eq!(bundle.manifest.dataset, "fsdd");
    assert_eq!(bundle.manifest.input.shape, [1, 20, 64]);
    let page = std::fs::read_to_string(run.join("listen/listen.html")).expect("listen.html");
    assert!(page.contains("<audio"), "{page}");
    let clips = report["listen"]["clips"].as_array().expect("clips");
    assert!(!clips.is_empty());
    for c in clips {
        let files = c["files"].as_array().expect("files");
        assert_eq!(
            files.len(),
            4,
            "recording, original, obfuscated, reconstructed: {c}"
        );
        for f in files {
            let path = run.join("listen").join(f.as_str().expect("name"));
            let wav = obfnet_data::read_wav(&path).expect("a valid WAV");
            assert_eq!(wav.sample_rate, 8000);
            assert!(
                wav.samples.iter().any(|&s| s != 0),
                "{} is silent",
                path.display()
            );
        }
    }
}

#[test]
fn a_model_or_bundle_for_another_dataset_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    write_fixture(&data, 100, 20);
    // the same files serve as a "fashion-mnist" copy
    let fm = data.join("fashion-mnist");
    std::fs::create_dir_all(&fm).expect("mkdir");
    for e in std::fs::read_dir(data.join("mnist")).expect("ls") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, fm.join(p.file_name().expect("name"))).expect("copy");
    }
    let model = tmp.path().join("server");
    obfnet()
        .args([
            "train-model",
            "--dataset",
            "fashion-mnist",
            "--epochs",
            "1",
            "--data-dir",
        ])
        .arg(&data)
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("config.json")).expect("read")).expect("json");
    assert_eq!(cfg["dataset"], "fashion-mnist");
    for verb in ["evaluate", "train-obf"] {
        let out = obfnet()
            .args([verb, "--dataset", "mnist", "--data-dir"])
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .args(if verb == "evaluate" {
                vec![]
            } else {
                vec!["-k", "1", "--limit", "10", "--out"]
            })
            .args((verb != "evaluate").then(|| tmp.path().join("x.obfb")))
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(
            err.contains("trained on `fashion-mnist`, not `mnist`"),
            "{verb}: {err}"
        );
    }
    // a bundle for fashion-mnist evaluated as fashion-mnist works, as mnist is refused
    let bundle = tmp.path().join("fm.obfb");
    obfnet()
        .args([
            "train-obf",
            "--dataset",
            "fashion-mnist",
            "-k",
            "1",
            "--epochs",
            "1",
            "--limit",
            "50",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&bundle)
        .assert()
        .success();
    obfnet()
        .args(["evaluate", "--dataset", "fashion-mnist", "--data-dir"])
        .arg(&data)
        .arg("--model")
        .arg(&model)
        .arg("--bundle")
        .arg(&bundle)
        .assert()
        .success();
    // unknown dataset names are refused by the argument parser
    let out = obfnet()
        .args(["fetch", "--dataset", "asl"])
        .assert()
        .failure()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("mnist, fashion-mnist, fsdd"), "{err}");
}
