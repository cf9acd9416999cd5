//! Bring your own model and data, driven as a user would: an ONNX classifier (written here with
//! `obfnet_onnx::writer`, with a per-channel preprocessing sidecar) and a NumPy `.npz` dataset
//! of 3 × 12 × 12 RGB samples (not 28×28, not one channel) go through `train-obf`, `evaluate`,
//! `report` and `attack`, and an unsupported operator is refused when the model is loaded.
//!
//! The classifier is a template matcher (`Flatten → Gemm`): class c lights a 6 × 6 square in
//! quadrant c of every channel, and logit c sums the pixels of that square, so the model is
//! right on every test sample without training and the obfuscators have a real model to keep
//! accurate.

use std::fs::File;
use std::path::Path;

use ndarray::{Array1, ArrayD, IxDyn};
use ndarray_npy::NpzWriter;
use obfnet_onnx::writer::{Attr, Dim, GraphWriter};

mod common;

use common::{TINY, json_of, obfnet};

const C: usize = 3;
/// 12 × 12: the smallest side the attacks' recognition classifier (a LeNet-5) takes.
const S: usize = 12;
/// Side of a class's square (one quadrant).
const Q: usize = S / 2;
const CLASSES: usize = 4;

/// Whether pixel (r, c) lies in class `class`'s square.
fn in_square(class: usize, r: usize, c: usize) -> bool {
    let (r0, c0) = (Q * (class / 2), Q * (class % 2));
    (r0..r0 + Q).contains(&r) && (c0..c0 + Q).contains(&c)
}

/// `n` samples `[n, 3, 12, 12]` (u8) with labels cycling through the classes.
fn samples(n: usize, seed: u32) -> (ArrayD<u8>, Array1<u8>) {
    let mut state = seed | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 60) as u8
    };
    let mut data = Vec::with_capacity(n * C * S * S);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % CLASSES;
        for ch in 0..C {
            for r in 0..S {
                for c in 0..S {
                    let bright = 240 - 40 * ch as u8;
                    data.push(if in_square(class, r, c) {
                        bright - noise()
                    } else {
                        noise()
                    });
                }
            }
        }
        labels.push(class as u8);
    }
    (
        ArrayD::from_shape_vec(IxDyn(&[n, C, S, S]), data).expect("shape"),
        Array1::from(labels),
    )
}

fn write_npz(path: &Path) {
    let (x_train, y_train) = samples(240, 7);
    let (x_test, y_test) = samples(100, 99);
    let mut w = NpzWriter::new_compressed(File::create(path).expect("create"));
    w.add_array("x_train", &x_train).expect("x_train");
    w.add_array("y_train", &y_train).expect("y_train");
    w.add_array("x_test", &x_test).expect("x_test");
    w.add_array("y_test", &y_test).expect("y_test");
    w.finish().expect("finish");
}

/// The template matcher as ONNX (opset 17, symbolic batch) with an ImageNet-style sidecar.
fn write_model(path: &Path) {
    let d = C * S * S;
    let mut w = vec![0.0f32; d * CLASSES];
    for ch in 0..C {
        for r in 0..S {
            for c in 0..S {
                for class in 0..CLASSES {
                    if in_square(class, r, c) {
                        w[((ch * S + r) * S + c) * CLASSES + class] = 0.1;
                    }
                }
            }
        }
    }
    let n = || Dim::Symbolic("N".into());
    let mut g = GraphWriter::new(
        "image",
        vec![n(), Dim::Fixed(C), Dim::Fixed(S), Dim::Fixed(S)],
        "logits",
        vec![n(), Dim::Fixed(CLASSES)],
    );
    g.init_f32("w", &[d, CLASSES], w)
        .init_f32("b", &[CLASSES], vec![0.0; CLASSES])
        .node(
            "Flatten",
            "flatten",
            &["image"],
            &["flat"],
            vec![Attr::Int("axis", 1)],
        )
        .node("Gemm", "template", &["flat", "w", "b"], &["logits"], vec![]);
    std::fs::write(path, g.finish(17)).expect("write model");
    obfnet_onnx::Preprocess {
        mean: vec![0.485, 0.456, 0.406],
        std: vec![0.229, 0.224, 0.225],
        ..obfnet_onnx::Preprocess::default()
    }
    .save_for(path)
    .expect("sidecar");
}

#[test]
fn onnx_model_and_npz_dataset_through_train_obf_and_evaluate() {
    let dir = tempfile::tempdir().expect("tmp");
    let npz = dir.path().join("rgb12.npz");
    let model = dir.path().join("template.onnx");
    let bundle = dir.path().join("obf.obfb");
    write_npz(&npz);
    write_model(&model);
    let dataset = format!("npz:{}", npz.display());

    let out = obfnet()
        .args(["train-obf", "--json", "--dataset", &dataset, "--model"])
        .arg(&model)
        .args(["-k", "2", "--epochs", "4", "--batch-size", "16", "--out"])
        .arg(&bundle)
        .output()
        .expect("run train-obf");
    assert!(
        out.status.success(),
        "train-obf failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let obf = json_of(&out.stdout);
    let report = &obf["report"];
    println!("train-obf report: {report}");
    assert_eq!(
        report["raw_accuracy"], 1.0,
        "the template matcher is exact on this data"
    );
    assert_eq!(report["frozen_gradient_found"], false);
    let accs: Vec<f64> = report["accuracies"]
        .as_array()
        .expect("accuracies")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_eq!(accs.len(), 2);
    // Chance is 25%; a net that learned nothing (random init through a frozen model) stays near it.
    for a in &accs {
        assert!(*a >= 0.9, "accuracy behind a net {a} (chance 0.25)");
    }
    let losses = report["epoch_losses"].as_array().expect("losses");
    assert!(
        losses.last().and_then(|v| v.as_f64()) < losses.first().and_then(|v| v.as_f64()),
        "the loss did not fall: {losses:?}"
    );

    // evaluate: the same numbers from the bundle file, engine and edge runtime
    let out = obfnet()
        .args(["evaluate", "--json", "--dataset", &dataset, "--model"])
        .arg(&model)
        .arg("--bundle")
        .arg(&bundle)
        .output()
        .expect("run evaluate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let eval = json_of(&out.stdout);
    assert_eq!(eval["raw_accuracy"], report["raw_accuracy"]);
    assert_eq!(eval["obfuscated_accuracies"], report["accuracies"]);

    let out = obfnet()
        .args([
            "evaluate",
            "--json",
            "--runtime",
            "edge",
            "--dataset",
            &dataset,
            "--model",
        ])
        .arg(&model)
        .arg("--bundle")
        .arg(&bundle)
        .output()
        .expect("run evaluate --runtime edge");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let edge = json_of(&out.stdout);
    for (e, g) in edge["obfuscated_accuracies"]
        .as_array()
        .expect("edge accuracies")
        .iter()
        .zip(&accs)
    {
        let e = e.as_f64().expect("number");
        assert!((e - g).abs() <= 0.02, "edge runtime {e} vs engine {g}");
    }
    println!("evaluate --runtime edge: {edge}");
}

#[test]
fn onnx_model_through_report_and_attack() {
    let dir = tempfile::tempdir().expect("tmp");
    let npz = dir.path().join("rgb12.npz");
    let model = dir.path().join("template.onnx");
    let out_dir = dir.path().join("report");
    write_npz(&npz);
    write_model(&model);
    let dataset = format!("npz:{}", npz.display());

    let out = obfnet()
        .args(["report", "--json", "--dataset", &dataset, "--model"])
        .arg(&model)
        .args(["--archs", "obfnet2", "-k", "1,2", "--obf-epochs", "4"])
        .args(["--baselines", "gaussian:0.25"])
        .args(TINY)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("run report");
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = json_of(&out.stdout);
    println!("report --json: {summary}");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).expect("report.json"))
            .expect("json");
    // the bundle and the report name the ONNX file by its sha256
    let sha = obfnet_core::hex(&obfnet_core::sha256(&std::fs::read(&model).expect("model")));
    assert_eq!(file["server_model_sha256"], sha.as_str());
    assert_eq!(file["server_raw_accuracy"], 1.0, "the template matcher is exact");
    let schemes = file["results"].as_array().expect("results");
    // obfnet2 at K = 1 and K = 2, one baseline
    assert_eq!(schemes.len(), 3, "{schemes:?}");
    for s in schemes {
        let acc = s["utility"]["accuracy"].as_f64().expect("utility");
        assert!((0.0..=1.0).contains(&acc), "{s}");
        assert!(
            !s["attacks"].as_array().expect("attacks").is_empty(),
            "no attack scored {}",
            s["name"]
        );
    }
    // the nets were trained against the ONNX model and keep it accurate (chance: 25%)
    let obf = schemes
        .iter()
        .find(|s| s["name"].as_str().is_some_and(|n| n.contains("obfnet2")))
        .expect("an obfnet2 scheme");
    assert!(obf["utility"]["accuracy"].as_f64() >= Some(0.9), "{obf}");

    // attack: the cached bundle, against the same ONNX model
    let bundle = out_dir.join("obfnets-obfnet2.obfb");
    let out = obfnet()
        .args(["attack", "--json", "--dataset", &dataset, "--model"])
        .arg(&model)
        .arg("--bundle")
        .arg(&bundle)
        .args(TINY)
        .output()
        .expect("run attack");
    assert!(
        out.status.success(),
        "attack failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attack = json_of(&out.stdout);
    assert!(
        !attack["result"]["attacks"]
            .as_array()
            .expect("attacks")
            .is_empty()
    );

    // a bundle trained against another model is refused
    let other = dir.path().join("other.onnx");
    obfnet_onnx::Preprocess::load_for(&model)
        .expect("sidecar")
        .save_for(&other)
        .expect("sidecar");
    std::fs::write(&other, {
        // a doc_string (ModelProto field 6) appended: the same graph, another file
        let mut b = std::fs::read(&model).expect("model");
        b.extend_from_slice(&[0x32, 0x01, b'x']);
        b
    })
    .expect("write");
    let out = obfnet()
        .args(["attack", "--dataset", &dataset, "--model"])
        .arg(&other)
        .arg("--bundle")
        .arg(&bundle)
        .args(TINY)
        .output()
        .expect("run attack");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bundle for another model was accepted");
    assert!(err.contains("another server model"), "{err}");
}

#[test]
fn quickstart_with_a_given_onnx_model_trains_no_lenet() {
    let dir = tempfile::tempdir().expect("tmp");
    let npz = dir.path().join("rgb12.npz");
    let model = dir.path().join("template.onnx");
    let run = dir.path().join("run");
    write_npz(&npz);
    write_model(&model);
    let out = obfnet()
        .args([
            "quickstart",
            "--json",
            "--dataset",
            &format!("npz:{}", npz.display()),
            "--model",
        ])
        .arg(&model)
        .args(["-k", "2", "--obf-epochs", "4", "--out"])
        .arg(&run)
        .output()
        .expect("run quickstart");
    assert!(
        out.status.success(),
        "quickstart failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out.stdout);
    let sha = obfnet_core::hex(&obfnet_core::sha256(&std::fs::read(&model).expect("model")));
    assert_eq!(report["server_model"]["sha256"], sha.as_str());
    assert_eq!(report["server_model"]["trained_here"], false);
    assert_eq!(report["server_model"]["report"]["test_accuracy"], 1.0);
    assert_eq!(report["config"]["model"], model.to_str().expect("utf-8"));
    assert!(!run.join("server").exists(), "a LeNet-5 was trained");
    assert!(run.join("obfnets-obfnet2.obfb").exists());
    let mean = report["obfuscators"][0]["mean_accuracy"].as_f64().expect("mean");
    assert!(mean >= 0.9, "mean accuracy behind the nets {mean} (chance 0.25)");
}

#[test]
fn an_unsupported_operator_is_refused_when_the_model_is_loaded() {
    let dir = tempfile::tempdir().expect("tmp");
    let npz = dir.path().join("rgb12.npz");
    write_npz(&npz);
    let model = dir.path().join("erf.onnx");
    let n = || Dim::Symbolic("N".into());
    let mut g = GraphWriter::new(
        "image",
        vec![n(), Dim::Fixed(C), Dim::Fixed(S), Dim::Fixed(S)],
        "y",
        vec![n(), Dim::Fixed(C * S * S)],
    );
    g.node(
        "Flatten",
        "flatten",
        &["image"],
        &["flat"],
        vec![Attr::Int("axis", 1)],
    )
    .node("Erf", "gelu_erf", &["flat"], &["y"], vec![]);
    std::fs::write(&model, g.finish(17)).expect("write");
    let out = obfnet()
        .args([
            "train-obf",
            "--dataset",
            &format!("npz:{}", npz.display()),
            "--model",
        ])
        .arg(&model)
        .arg("--out")
        .arg(dir.path().join("b.obfb"))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("unsupported ONNX operator Erf"), "{err}");
    assert!(err.contains("opset 17"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!dir.path().join("b.obfb").exists(), "a bundle was written");
}
