//! Bring your own model and data, driven as a user would: an ONNX classifier (written here with
//! `obfnet_onnx::writer`, with a per-channel preprocessing sidecar) and a NumPy `.npz` dataset
//! of 3 × 8 × 8 RGB samples (not 28×28, not one channel) go through `train-obf` and `evaluate`;
//! the verbs that still need the LeNet-5 refuse the `.onnx` file with an error naming the verb,
//! and an unsupported operator is refused when the model is loaded.
//!
//! The classifier is a template matcher (`Flatten → Gemm`): class c lights a 4 × 4 square in
//! quadrant c of every channel, and logit c sums the pixels of that square, so the model is
//! right on every test sample without training and the obfuscators have a real model to keep
//! accurate.

use std::fs::File;
use std::path::Path;

use assert_cmd::Command;
use ndarray::{Array1, ArrayD, IxDyn};
use ndarray_npy::NpzWriter;
use obfnet_onnx::writer::{Attr, Dim, GraphWriter};

const C: usize = 3;
const S: usize = 8;
const CLASSES: usize = 4;

fn obfnet() -> Command {
    let mut cmd = Command::cargo_bin("obfnet").expect("binary");
    cmd.env_remove("OBFNET_DATA_DIR");
    cmd
}

fn json_of(out: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(out);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Whether pixel (r, c) lies in class `class`'s square.
fn in_square(class: usize, r: usize, c: usize) -> bool {
    let (r0, c0) = (4 * (class / 2), 4 * (class % 2));
    (r0..r0 + 4).contains(&r) && (c0..c0 + 4).contains(&c)
}

/// `n` samples `[n, 3, 8, 8]` (u8) with labels cycling through the classes.
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
    let npz = dir.path().join("rgb8.npz");
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
fn lenet_only_verbs_refuse_an_onnx_model_naming_the_verb() {
    let dir = tempfile::tempdir().expect("tmp");
    let model = dir.path().join("template.onnx");
    write_model(&model);
    for verb in ["attack", "report", "serve"] {
        let mut cmd = obfnet();
        cmd.arg(verb).arg("--model").arg(&model);
        if verb != "serve" {
            cmd.args(["--dataset", "npz:/nonexistent.npz"]);
        }
        if verb == "attack" {
            cmd.args(["--baseline", "projection-orthogonal"]);
        }
        if verb == "report" {
            cmd.arg("--out").arg(dir.path().join("report"));
        }
        let out = cmd.output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{verb} accepted an ONNX model");
        assert!(
            err.contains(&format!("`obfnet {verb}` does not take an ONNX server model")),
            "{verb}: {err}"
        );
        assert!(!err.contains("panicked"), "{verb}: {err}");
    }
}

#[test]
fn an_unsupported_operator_is_refused_when_the_model_is_loaded() {
    let dir = tempfile::tempdir().expect("tmp");
    let npz = dir.path().join("rgb8.npz");
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
