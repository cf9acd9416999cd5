//! Serving an ONNX model: the fixture LeNet-5 exported with `obfnet_nn::lenet_to_onnx` (and its
//! sidecar) is served by [`OnnxBackend`]; its REST answers equal the native model's outputs on
//! the same images, and its metadata names the `.onnx` file's sha256.

use obfnet_serve::{InferenceBackend, OnnxBackend};
use serde_json::json;

use crate::common::*;

/// The fixture LeNet-5 (see [`model_dir`]) as `lenet.onnx` + sidecar in a temp dir.
fn onnx_model() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (lenet, _, _) = obfnet_nn::load_server_model(&model_dir()).expect("fixture model");
    let path = dir.path().join("lenet.onnx");
    std::fs::write(&path, obfnet_nn::lenet_to_onnx(&lenet).expect("export")).expect("write");
    obfnet_nn::lenet_onnx_sidecar().save_for(&path).expect("sidecar");
    (dir, path)
}

#[tokio::test]
async fn an_onnx_model_answers_as_the_native_model_does() -> TestResult {
    let (_dir, path) = onnx_model();
    let backend = OnnxBackend::load(&path)?;
    let spec = backend.spec();
    assert_eq!((spec.rows, spec.cols, spec.classes), (28, 28, 10));
    let s = TestServer::start(cfg(), Box::new(backend)).await;

    let m = get(&s.url("/v2/models/lenet5")).await;
    assert_eq!(m.status, 200);
    let m = m.json();
    assert_eq!(m["platform"], "obfnet_onnx_burn_flex");
    assert_eq!(
        m["inputs"],
        json!([{"name": "input", "datatype": "FP32", "shape": [-1, 784]}])
    );
    let sha = obfnet_core::hex(&obfnet_core::sha256(&std::fs::read(&path)?));
    assert_eq!(m["parameters"], json!({ "sha256": sha }));

    let flat_u8: Vec<u8> = (0..4).flat_map(image_u8).collect();
    let x = normalise(&flat_u8);
    let want = direct_probabilities(&x, 4);
    for (datatype, data) in [("UINT8", json!(flat_u8)), ("FP32", json!(x))] {
        let req =
            json!({"inputs": [{"name": "input", "shape": [4, 784], "datatype": datatype, "data": data}]});
        let r = post_json(&s.url("/v2/models/lenet5/infer"), &req).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let probs: Vec<f32> = serde_json::from_value(r.json()["outputs"][1]["data"].clone())?;
        assert!(
            close(&probs, &want, 1e-5),
            "{datatype}: ONNX {probs:?} vs native {want:?}"
        );
    }
    // a sample of the wrong size is a client error, not a crash
    let req =
        json!({"inputs": [{"name": "input", "shape": [1, 10], "datatype": "UINT8", "data": vec![0u8; 10]}]});
    let r = post_json(&s.url("/v2/models/lenet5/infer"), &req).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    s.stop().await?;
    Ok(())
}

#[test]
fn an_unreadable_onnx_file_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.onnx");
    std::fs::write(&path, b"not a protobuf").expect("write");
    let err = OnnxBackend::load(&path).expect_err("a broken file loads");
    assert!(matches!(err, obfnet_serve::Error::Model(_)), "{err:?}");
    let missing = OnnxBackend::load(&dir.path().join("missing.onnx")).expect_err("a missing file loads");
    assert!(missing.to_string().contains("missing.onnx"), "{missing}");
}
