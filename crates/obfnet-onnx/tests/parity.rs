//! Parity with onnxruntime: every graph written by `scripts/onnx_fixtures.py` (one per
//! supported operator family, plus a small CNN) runs here and must match onnxruntime's output on
//! the same input within 1e-4 relative (absolute 1e-4 for values below 1).
//!
//! The fixtures live in `target/onnx-fixtures` (or `$OBFNET_ONNX_FIXTURES`), written by
//! `scripts/onnx-venv.sh`. Without them the test prints a skip line; with
//! `OBFNET_REQUIRE_ONNX=1` it fails instead.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use obfnet_onnx::{Error, OnnxModel};

fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("OBFNET_ONNX_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/onnx-fixtures"));
    if dir.join("cnn_all.onnx").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("OBFNET_REQUIRE_ONNX").as_deref() != Ok("1"),
        "OBFNET_REQUIRE_ONNX=1 but no ONNX fixtures in {} (run scripts/onnx-venv.sh)",
        dir.display()
    );
    eprintln!(
        "SKIP obfnet-onnx parity: no fixtures in {} (run scripts/onnx-venv.sh to build the onnxruntime venv and write them)",
        dir.display()
    );
    None
}

#[derive(serde::Deserialize)]
struct Fixture {
    opset: i64,
    input_shape: Vec<usize>,
    input: Vec<f32>,
    output_shape: Vec<usize>,
    output: Vec<f64>,
}

fn run_case(dir: &std::path::Path, name: &str, device: &Device) -> (Vec<f32>, Fixture) {
    let f: Fixture =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).expect("read json"))
            .expect("fixture json");
    let model = OnnxModel::load(&dir.join(format!("{name}.onnx")), device)
        .unwrap_or_else(|e| panic!("{name}: load failed: {e}"));
    assert_eq!(model.opset(), f.opset, "{name}: opset");
    let data = TensorData::new(f.input.clone(), f.input_shape.clone());
    let y = match f.input_shape.len() {
        2 => model.forward(Tensor::<2>::from_data(data, device)),
        3 => model.forward(Tensor::<3>::from_data(data, device)),
        4 => model.forward(Tensor::<4>::from_data(data, device)),
        r => panic!("{name}: rank {r} input"),
    }
    .unwrap_or_else(|e| panic!("{name}: forward failed: {e}"));
    let got: Vec<f32> = y.into_data().try_to_vec().expect("f32 output");
    (got, f)
}

#[test]
fn every_supported_op_matches_onnxruntime() {
    let Some(dir) = fixtures() else { return };
    let device = Device::flex();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let stem = p.file_stem()?.to_str()?.to_owned();
            (p.extension()? == "onnx" && !stem.starts_with("unsupported")).then_some(stem)
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 15,
        "only {} fixtures in {}",
        names.len(),
        dir.display()
    );
    for name in &names {
        let (got, f) = run_case(&dir, name, &device);
        assert_eq!(
            got.len(),
            f.output.len(),
            "{name}: {} values, onnxruntime gave {} (shape {:?})",
            got.len(),
            f.output.len(),
            f.output_shape
        );
        let mut worst = 0.0f64;
        for (i, (&g, &w)) in got.iter().zip(&f.output).enumerate() {
            let err = (f64::from(g) - w).abs() / w.abs().max(1.0);
            worst = worst.max(err);
            assert!(
                err <= 1e-4,
                "{name}[{i}]: obfnet {g} vs onnxruntime {w} (rel err {err:.2e})"
            );
        }
        println!(
            "parity {name:<24} {:>5} values  max rel err {worst:.1e}",
            got.len()
        );
    }
}

#[test]
fn unsupported_op_from_the_onnx_package_is_a_typed_error() {
    let Some(dir) = fixtures() else { return };
    let err =
        OnnxModel::load(&dir.join("unsupported_erf.onnx"), &Device::flex()).expect_err("Erf is unsupported");
    match &err {
        Error::UnsupportedOp { op, node, opset, .. } => {
            assert_eq!(op, "Erf");
            assert_eq!(node, "erf_1");
            assert_eq!(*opset, 17);
        }
        other => panic!("expected UnsupportedOp, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("Erf") && msg.contains("erf_1") && msg.contains("opset 17"),
        "{msg}"
    );
}

#[test]
fn symbolic_batch_accepts_any_batch_size() {
    let Some(dir) = fixtures() else { return };
    let device = Device::flex();
    let model = OnnxModel::load(&dir.join("cnn_all.onnx"), &device).expect("load");
    assert_eq!(model.input_shape(), &[None, Some(3), Some(16), Some(16)]);
    assert_eq!(model.sample_shape().expect("fixed sample"), vec![3, 16, 16]);
    for n in [1, 7] {
        let y = model
            .forward(Tensor::<4>::ones([n, 3, 16, 16], &device))
            .expect("forward");
        assert_eq!(y.dims(), [n, 10]);
    }
    let bad = model.forward(Tensor::<4>::ones([2, 1, 16, 16], &device));
    assert!(matches!(bad, Err(Error::Shape { .. })), "{bad:?}");
}
