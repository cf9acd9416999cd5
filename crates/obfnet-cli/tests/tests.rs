//! The `obfnet` binary, driven as a user would, on a tiny generated MNIST-format dataset.
//!
//! The dataset, a server model trained on it and an ObfNet2 bundle are built once per run of
//! this test binary ([`shared`]) and reused by every test that only needs them; tests that check
//! a verb's own output still run that verb. No test here needs real data.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;

use common::{json_of, obfnet};

/// Writes `n_train`/`n_test` images of 10 easy classes (a bright square whose place encodes the
/// class, on noise) as the four MNIST IDX files in `<dir>/mnist/`.
fn write_fixture(dir: &Path, n_train: usize, n_test: usize) {
    let mnist = dir.join("mnist");
    std::fs::create_dir_all(&mnist).expect("mkdir");
    let mut state = 0x1234_5678u32;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 50) as u8
    };
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let mut pixels = Vec::with_capacity(n * 784);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % 10;
            let (r0, c0) = (3 + 12 * (c / 5), 1 + 5 * (c % 5));
            for r in 0..28 {
                for col in 0..28 {
                    let on = (r0..r0 + 6).contains(&r) && (c0..c0 + 6).contains(&col);
                    pixels.push(if on { 250 - noise() } else { noise() });
                }
            }
            labels.push(c as u8);
        }
        std::fs::write(
            mnist.join(format!("{prefix}-images-idx3-ubyte")),
            obfnet_data::encode_idx_images(28, 28, &pixels),
        )
        .expect("write images");
        std::fs::write(
            mnist.join(format!("{prefix}-labels-idx1-ubyte")),
            obfnet_data::encode_idx_labels(&labels),
        )
        .expect("write labels");
    }
}

/// What most tests share (see [`shared`]).
struct Shared {
    /// `--data-dir` with the fixture of 300 training and 100 test images in `mnist/`.
    data: PathBuf,
    /// A server model trained 3 epochs by `train-model --json`.
    model: PathBuf,
    /// What that `train-model --json` printed.
    model_json: serde_json::Value,
    /// Two ObfNet2 nets, 1 epoch, against `model`.
    obfnet2: PathBuf,
    /// Their int8 copy (`quantize`).
    obfnet2_int8: PathBuf,
}

impl Shared {
    fn data_arg(&self) -> &str {
        self.data.to_str().expect("utf-8 path")
    }
}

/// The shared fixture, built on first use by the first test that needs it, in this test
/// binary's own directory under `CARGO_TARGET_TMPDIR` (rebuilt on every run).
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("obfnet-cli-shared");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("shared fixture dir");
        let data = dir.join("data");
        write_fixture(&data, 300, 100);
        let model = dir.join("server");
        let out = obfnet()
            .args(["train-model", "--json", "--epochs", "3", "--data-dir"])
            .arg(&data)
            .arg("--out")
            .arg(&model)
            .assert()
            .success();
        let model_json = json_of(&out.get_output().stdout);
        let obfnet2 = dir.join("nets.obfb");
        obfnet()
            .args([
                "train-obf",
                "--arch",
                "obfnet2",
                "-k",
                "2",
                "--epochs",
                "1",
                "--data-dir",
            ])
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .arg("--out")
            .arg(&obfnet2)
            .assert()
            .success();
        let obfnet2_int8 = dir.join("nets-int8.obfb");
        obfnet()
            .arg("quantize")
            .arg(&obfnet2)
            .arg("--out")
            .arg(&obfnet2_int8)
            .assert()
            .success();
        Shared {
            data,
            model,
            model_json,
            obfnet2,
            obfnet2_int8,
        }
    })
}

#[test]
fn verbs_work_end_to_end_on_a_tiny_dataset() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sh = shared();
    let (data, data_arg) = (&sh.data, sh.data_arg());
    let model = &sh.model;
    let bundle = tmp.path().join("nets.obfb");

    // fetch finds the files and does nothing.
    let out = obfnet()
        .args(["fetch", "--json", "--data-dir", data_arg])
        .assert()
        .success();
    assert_eq!(json_of(&out.get_output().stdout)["status"], "already-present");

    // train-model (run once for the shared fixture): its JSON and its files.
    let report = &sh.model_json;
    let acc = report["report"]["test_accuracy"].as_f64().expect("accuracy");
    assert!(acc > 0.5, "LeNet on the easy fixture: {acc}");
    assert!(model.join("model.safetensors").is_file() && model.join("config.json").is_file());

    let out = obfnet()
        .args([
            "train-obf",
            "--json",
            "--arch",
            "conv",
            "-k",
            "2",
            "--epochs",
            "2",
            "--data-dir",
            data_arg,
        ])
        .arg("--model")
        .arg(model)
        .arg("--out")
        .arg(&bundle)
        .assert()
        .success();
    let obf = json_of(&out.get_output().stdout);
    assert_eq!(obf["report"]["accuracies"].as_array().map(Vec::len), Some(2));
    assert_eq!(obf["report"]["frozen_gradient_found"], false);

    let out = obfnet()
        .args(["inspect", "--json"])
        .arg(&bundle)
        .assert()
        .success();
    let manifest = json_of(&out.get_output().stdout);
    assert_eq!(manifest["nets"][1]["arch"], "conv");
    assert_eq!(manifest["nets"][1]["seed"], 1001);

    // evaluate reproduces train-obf's accuracies from the saved files.
    let out = obfnet()
        .args(["evaluate", "--json", "--data-dir", data_arg])
        .arg("--model")
        .arg(model)
        .arg("--bundle")
        .arg(&bundle)
        .assert()
        .success();
    let eval = json_of(&out.get_output().stdout);
    assert_eq!(eval["obfuscated_accuracies"], obf["report"]["accuracies"]);
    assert_eq!(eval["raw_accuracy"], report["report"]["test_accuracy"]);

    edge_verbs(tmp.path(), data, model, &bundle, &eval);
}

#[test]
fn export_onnx_gives_a_model_that_evaluates_like_the_directory() {
    let sh = shared();
    let tmp = tempfile::tempdir().expect("tmp");
    let onnx = tmp.path().join("lenet.onnx");
    let out = obfnet()
        .args(["export-onnx", "--json", "--model"])
        .arg(&sh.model)
        .arg("--out")
        .arg(&onnx)
        .assert()
        .success();
    let e = json_of(&out.get_output().stdout);
    let sha = obfnet_core::hex(&obfnet_core::sha256(&std::fs::read(&onnx).expect("onnx file")));
    assert_eq!(e["sha256"], sha.as_str());
    assert_eq!(e["source_sha256"], sh.model_json["sha256"]);
    assert_eq!(e["input"], serde_json::json!([28, 28]));
    assert!(tmp.path().join("lenet.obfnet.json").exists(), "no sidecar");

    let raw = |model: &Path| {
        let out = obfnet()
            .args(["evaluate", "--json", "--data-dir", sh.data_arg(), "--model"])
            .arg(model)
            .assert()
            .success();
        json_of(&out.get_output().stdout)["raw_accuracy"].clone()
    };
    let native = raw(&sh.model);
    assert_eq!(raw(&onnx), native, "the exported model scores differently");
    assert_eq!(native, sh.model_json["report"]["test_accuracy"]);

    // a bundle trained against the directory is refused with the ONNX file (another model id)
    let out = obfnet()
        .args(["evaluate", "--data-dir", sh.data_arg(), "--model"])
        .arg(&onnx)
        .arg("--bundle")
        .arg(&sh.obfnet2)
        .output()
        .expect("run evaluate");
    assert!(!out.status.success(), "a bundle for the directory was accepted");

    // not an .onnx name: a clear error, nothing written
    let bad = tmp.path().join("lenet.bin");
    let out = obfnet()
        .args(["export-onnx", "--model"])
        .arg(&sh.model)
        .arg("--out")
        .arg(&bad)
        .output()
        .expect("run export-onnx");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("does not end in .onnx"),
        "{err}"
    );
    assert!(!bad.exists());
}

/// quantize, obfuscate and `evaluate --runtime edge` on the bundle of the end-to-end test.
fn edge_verbs(tmp: &Path, data: &Path, model: &Path, bundle: &Path, engine_eval: &serde_json::Value) {
    let int8 = tmp.join("nets-int8.obfb");
    let out = obfnet()
        .args(["quantize", "--json"])
        .arg(bundle)
        .arg("--out")
        .arg(&int8)
        .assert()
        .success();
    let q = json_of(&out.get_output().stdout);
    assert_eq!(q["format_version"], 2);
    assert!(q["out_bytes"].as_u64().unwrap_or(0) * 3 < q["in_bytes"].as_u64().unwrap_or(0));

    // The edge runtime reproduces the engine on the f32 bundle, and scores both wire encodings.
    let evaluate = |b: &Path| {
        let out = obfnet()
            .args(["evaluate", "--json", "--runtime", "edge", "--data-dir"])
            .arg(data)
            .arg("--model")
            .arg(model)
            .arg("--bundle")
            .arg(b)
            .assert()
            .success();
        json_of(&out.get_output().stdout)
    };
    let edge = evaluate(bundle);
    assert_eq!(edge["runtime"], "edge");
    for (i, d) in edge["edge"]["max_abs_diff_vs_engine"]
        .as_array()
        .expect("diffs")
        .iter()
        .enumerate()
    {
        assert!(
            d.as_f64().unwrap_or(1.0) <= 1e-5,
            "net {i}: edge differs from engine by {d}"
        );
    }
    let accs = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect()
    };
    let engine = accs(&engine_eval["obfuscated_accuracies"]);
    for (e, g) in accs(&edge["obfuscated_accuracies"]).iter().zip(&engine) {
        assert!((e - g).abs() <= 0.011, "edge {e} vs engine {g}");
    }
    assert_eq!(accs(&edge["edge"]["accuracy_u8_wire"]).len(), 2);
    let outside = accs(&edge["edge"]["outside_raw_range"]);
    assert!(
        outside.len() == 2 && outside.iter().all(|f| (0.0..=1.0).contains(f)),
        "{outside:?}"
    );
    let q8 = evaluate(&int8);
    assert_eq!(q8["edge"]["weights"], "i8");
    assert!(q8["edge"]["max_abs_diff_vs_engine"].is_null());
    for (a, b) in accs(&q8["obfuscated_accuracies"]).iter().zip(&engine) {
        assert!((a - b).abs() <= 0.05, "int8 {a} vs f32 {b}");
    }

    // add-noise: format 3; evaluate scores what devices send (noisy), the nets unchanged
    let add_noise = |sigma: &str, out: &Path| {
        let o = obfnet()
            .args(["add-noise", "--json"])
            .arg(bundle)
            .args(["--sigma", sigma, "--out"])
            .arg(out)
            .assert()
            .success();
        json_of(&o.get_output().stdout)
    };
    let (faint, loud) = (tmp.join("faint.obfb"), tmp.join("loud.obfb"));
    assert_eq!(add_noise("0.001", &faint)["format_version"], 3);
    add_noise("16", &loud);
    let faint = evaluate(&faint);
    assert_eq!(faint["runtime"], "edge");
    for (e, g) in accs(&faint["obfuscated_accuracies"]).iter().zip(&engine) {
        assert!((e - g).abs() <= 0.011, "σ = 0.001: {e} vs engine {g}");
    }
    let loud = evaluate(&loud);
    let outside = accs(&loud["edge"]["outside_raw_range"]);
    assert!(
        outside.iter().all(|&f| f > 0.9),
        "σ = 16 pixel units moves nearly every value out of range: {outside:?}"
    );
    let bad = obfnet()
        .arg("add-noise")
        .arg(bundle)
        .args(["--sigma=-1", "--out"])
        .arg(tmp.join("bad.obfb"))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&bad.get_output().stderr).to_string();
    assert!(err.contains("sigma"), "{err}");

    // obfuscate: IDX in, IDX out (u8 wire: same format as the input), fixed net.
    let images = data.join("mnist/t10k-images-idx3-ubyte");
    let obf_idx = tmp.join("obf.idx");
    let preview = tmp.join("preview.png");
    let out = obfnet()
        .args(["obfuscate", "--json", "--net", "1", "--bundle"])
        .arg(bundle)
        .arg(&images)
        .arg("--out")
        .arg(&obf_idx)
        .arg("--png")
        .arg(&preview)
        .assert()
        .success();
    let o = json_of(&out.get_output().stdout);
    assert_eq!(
        (o["samples"].as_u64(), o["per_net"][1].as_u64()),
        (Some(100), Some(100))
    );
    let (n, rows, cols, pixels) =
        obfnet_data::parse_idx_images(&std::fs::read(&obf_idx).expect("read")).expect("IDX output");
    assert_eq!((n, rows, cols, pixels.len()), (100, 28, 28, 100 * 784));
    assert!(preview.is_file());

    // The same first image as a PNG gives the same bytes.
    let (_, _, _, raw) = obfnet_data::parse_idx_images(&std::fs::read(&images).expect("read")).expect("IDX");
    let png_path = tmp.join("digit.png");
    {
        let file = std::fs::File::create(&png_path).expect("create png");
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 28, 28);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("png header");
        w.write_image_data(&raw[..784]).expect("png data");
    }
    let one = tmp.join("one.raw");
    obfnet()
        .args(["obfuscate", "--net", "1", "--bundle"])
        .arg(bundle)
        .arg(&png_path)
        .arg("--out")
        .arg(&one)
        .assert()
        .success();
    assert_eq!(std::fs::read(&one).expect("read"), pixels[..784].to_vec());

    // Seeded random choice is reproducible; f32 wire is 4 bytes per value.
    let run_seeded = |out: &Path| {
        obfnet()
            .args([
                "obfuscate",
                "--json",
                "--seed",
                "7",
                "--wire",
                "f32",
                "--limit",
                "20",
                "--bundle",
            ])
            .arg(bundle)
            .arg(&images)
            .arg("--out")
            .arg(out)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    };
    let (a, b) = (tmp.join("a.raw"), tmp.join("b.raw"));
    let ja = json_of(&run_seeded(&a));
    run_seeded(&b);
    assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    assert_eq!(std::fs::metadata(&a).expect("a").len(), 20 * 784 * 4);
    assert_eq!(ja["choice"], "seeded (not for devices)");

    // Bad input: errors, not panics.
    std::fs::write(tmp.join("short.raw"), [0u8; 100]).expect("write");
    for (args, needle) in [
        (vec!["--net", "5"], "holds 2 nets"),
        (vec![], "not a whole number"),
    ] {
        let out = obfnet()
            .arg("obfuscate")
            .args(&args)
            .arg("--bundle")
            .arg(bundle)
            .arg(tmp.join("short.raw"))
            .arg("--out")
            .arg(tmp.join("x.raw"))
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(err.contains(needle) && !err.contains("panicked"), "{err}");
    }
}

#[test]
fn quickstart_writes_a_complete_run_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    write_fixture(&data, 200, 50);
    let run = tmp.path().join("run");
    let out = obfnet()
        .args([
            "quickstart",
            "--json",
            "-k",
            "2",
            "--lenet-epochs",
            "2",
            "--obf-epochs",
            "1",
        ])
        .args(["--arch", "obfnet1,obfnet2"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let report = json_of(&out.get_output().stdout);
    assert_eq!(report["obfuscators"].as_array().map(Vec::len), Some(2));
    for f in [
        "config.json",
        "report.json",
        "server/model.safetensors",
        "server/config.json",
        "obfnets-obfnet1.obfb",
        "obfnets-obfnet2.obfb",
        "obfnets-obfnet1-int8.obfb",
        "obfnets-obfnet2-int8.obfb",
        "grid-obfnet1.png",
        "grid-obfnet2.png",
    ] {
        assert!(run.join(f).is_file(), "{f} missing from the run directory");
    }
    let no_tmp = std::fs::read_dir(&run)
        .expect("read run dir")
        .filter_map(Result::ok)
        .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp"));
    assert!(no_tmp, "temporary files left behind");
    // both run files carry their schema version
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).expect("read")).expect("json");
    assert_eq!(config["schema_version"], 1);
    assert_eq!(report["schema_version"], 1);
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).expect("read")).expect("json");
    assert_eq!(on_disk["obfuscators"], report["obfuscators"]);
    let edge = &report["artifacts"][1]["edge"]["mean_accuracy"];
    for key in [
        "f32_weights_f32_wire",
        "int8_weights_f32_wire",
        "f32_weights_u8_wire",
        "int8_weights_u8_wire",
    ] {
        assert!(
            edge[key].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)),
            "{key}: {edge}"
        );
    }
    // The edge runtime with f32 weights and wire reproduces the engine's mean accuracy.
    let engine_mean = report["obfuscators"][1]["mean_accuracy"].as_f64().unwrap_or(-1.0);
    let edge_mean = edge["f32_weights_f32_wire"].as_f64().unwrap_or(-2.0);
    assert!(
        (engine_mean - edge_mean).abs() <= 0.02,
        "{engine_mean} vs {edge_mean}"
    );
}

#[test]
fn bad_inputs_are_clear_errors_not_panics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A bundle that is not one.
    let junk = tmp.path().join("junk.obfb");
    std::fs::write(&junk, b"definitely not a bundle").expect("write");
    let out = obfnet().arg("inspect").arg(&junk).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A truncated IDX file.
    let data = tmp.path().join("data");
    write_fixture(&data, 20, 10);
    let images = data.join("mnist/t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&images).expect("read");
    std::fs::write(&images, &bytes[..bytes.len() - 100]).expect("truncate");
    let out = obfnet()
        .args(["train-model", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("m"))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("t10k-images-idx3-ubyte") && !err.contains("panicked"),
        "{err}"
    );

    // A model directory that does not exist.
    let out = obfnet()
        .args(["evaluate", "--data-dir"])
        .arg(tmp.path().join("nowhere"))
        .args(["--model", "/nonexistent/model"])
        .assert()
        .failure();
    assert!(!String::from_utf8_lossy(&out.get_output().stderr).contains("panicked"));

    // An unknown architecture is refused by the argument parser.
    obfnet()
        .args(["train-obf", "--arch", "resnet"])
        .assert()
        .failure()
        .code(2);
}

mod compare;
mod datasets;
mod privacy;
