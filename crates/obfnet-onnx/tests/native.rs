//! Tests that need no Python: graphs written with `obfnet_onnx::writer`, compared with the same
//! net built from burn ops directly (forward and input gradient) and with finite differences;
//! typed errors for unsupported operators, bad files and bad sidecars.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData, activation};
use obfnet_onnx::writer::{Attr, Dim, GraphWriter};
use obfnet_onnx::{Error, OnnxModel, Preprocess};

fn vals(n: usize, seed: u32) -> Vec<f32> {
    // deterministic values in [-1, 1)
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 20_000) as f32 / 10_000.0 - 1.0
        })
        .collect()
}

/// Conv(1→2, 3×3, pad 1) → Tanh → MaxPool 2 → Flatten → Gemm(transB=1) → 3 logits, on 1×6×6.
fn small_net() -> (Vec<u8>, [Vec<f32>; 4]) {
    let (w1, b1, w2, b2) = (vals(18, 1), vals(2, 2), vals(3 * 18, 3), vals(3, 4));
    let mut g = GraphWriter::new(
        "x",
        vec![
            Dim::Symbolic("N".into()),
            Dim::Fixed(1),
            Dim::Fixed(6),
            Dim::Fixed(6),
        ],
        "y",
        vec![Dim::Symbolic("N".into()), Dim::Fixed(3)],
    );
    g.init_f32("w1", &[2, 1, 3, 3], w1.clone())
        .init_f32("b1", &[2], b1.clone())
        .init_f32("w2", &[3, 18], w2.clone())
        .init_f32("b2", &[3], b2.clone())
        .node(
            "Conv",
            "conv",
            &["x", "w1", "b1"],
            &["c"],
            vec![Attr::Ints("pads", vec![1, 1, 1, 1])],
        )
        .node("Tanh", "tanh", &["c"], &["t"], vec![])
        .node(
            "MaxPool",
            "pool",
            &["t"],
            &["p"],
            vec![
                Attr::Ints("kernel_shape", vec![2, 2]),
                Attr::Ints("strides", vec![2, 2]),
            ],
        )
        .node("Flatten", "flat", &["p"], &["f"], vec![Attr::Int("axis", 1)])
        .node(
            "Gemm",
            "fc",
            &["f", "w2", "b2"],
            &["y"],
            vec![Attr::Int("transB", 1)],
        );
    (g.finish(17), [w1, b1, w2, b2])
}

fn native(x: Tensor<4>, w: &[Vec<f32>; 4], d: &Device) -> Tensor<2> {
    let t = |v: &Vec<f32>, s: Vec<usize>| TensorData::new(v.clone(), s);
    let w1 = Tensor::<4>::from_data(t(&w[0], vec![2, 1, 3, 3]), d);
    let b1 = Tensor::<1>::from_data(t(&w[1], vec![2]), d);
    let w2 = Tensor::<2>::from_data(t(&w[2], vec![3, 18]), d);
    let b2 = Tensor::<2>::from_data(t(&w[3], vec![1, 3]), d);
    let c = conv2d(x, w1, Some(b1), ConvOptions::new([1, 1], [1, 1], [1, 1], 1)).tanh();
    let p = burn::tensor::module::max_pool2d(
        c,
        burn::tensor::ops::MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
    );
    let n = p.dims()[0];
    p.reshape([n, 18]).matmul(w2.transpose()) + b2
}

fn write_tmp(bytes: &[u8], name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write model");
    (dir, path)
}

#[test]
fn forward_and_input_gradient_match_the_same_net_in_burn() {
    let device = Device::flex().autodiff();
    let (bytes, w) = small_net();
    let (_dir, path) = write_tmp(&bytes, "net.onnx");
    let model = OnnxModel::load(&path, &device).expect("load");
    let xs = TensorData::new(vals(2 * 36, 9), [2, 1, 6, 6]);

    let x1 = Tensor::<4>::from_data(xs.clone(), &device).require_grad();
    let y1 = model.forward(x1.clone()).expect("forward");
    let x2 = Tensor::<4>::from_data(xs.clone(), &device).require_grad();
    let y2 = native(x2.clone(), &w, &device);
    let (a, b): (Vec<f32>, Vec<f32>) = (
        y1.to_data().try_to_vec().expect("f32"),
        y2.to_data().try_to_vec().expect("f32"),
    );
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() <= 1e-5 * q.abs().max(1.0), "forward {p} vs {q}");
    }
    // a loss that uses every logit: cross entropy-ish via log_softmax
    let loss1 = activation::log_softmax(y1, 1).sum().neg();
    let loss2 = activation::log_softmax(y2, 1).sum().neg();
    let g1 = x1
        .grad(&loss1.backward())
        .expect("input grad through the ONNX graph");
    let g2 = x2.grad(&loss2.backward()).expect("input grad natively");
    let (g1, g2): (Vec<f32>, Vec<f32>) = (
        g1.to_data().try_to_vec().expect("f32"),
        g2.to_data().try_to_vec().expect("f32"),
    );
    assert!(g1.iter().any(|v| v.abs() > 1e-4), "gradient is all zero");
    for (p, q) in g1.iter().zip(&g2) {
        assert!((p - q).abs() <= 1e-5 * q.abs().max(1.0), "grad {p} vs {q}");
    }
}

#[test]
fn input_gradient_matches_finite_differences() {
    let device = Device::flex().autodiff();
    let (bytes, _) = small_net();
    let (_dir, path) = write_tmp(&bytes, "net.onnx");
    let model = OnnxModel::load(&path, &device).expect("load");
    let x0 = vals(36, 11);
    let loss_at = |x: &[f32]| -> f64 {
        let t = Tensor::<4>::from_data(TensorData::new(x.to_vec(), [1, 1, 6, 6]), &device);
        let y: Vec<f32> = model
            .forward(t)
            .expect("fwd")
            .into_data()
            .try_to_vec()
            .expect("f32");
        // smooth loss: sum of squares of the logits
        y.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
    };
    let x = Tensor::<4>::from_data(TensorData::new(x0.clone(), [1, 1, 6, 6]), &device).require_grad();
    let loss = model.forward(x.clone()).expect("fwd").powi_scalar(2).sum();
    let g: Vec<f32> = x
        .grad(&loss.backward())
        .expect("grad")
        .to_data()
        .try_to_vec()
        .expect("f32");
    let h = 1e-2f32;
    let mut checked = 0;
    for i in 0..36 {
        let (mut xp, mut xm) = (x0.clone(), x0.clone());
        xp[i] += h;
        xm[i] -= h;
        let fd = (loss_at(&xp) - loss_at(&xm)) / (2.0 * f64::from(h));
        // max-pool switches make some positions non-smooth; skip those (large second differences)
        let curv = (loss_at(&xp) + loss_at(&xm) - 2.0 * loss_at(&x0)).abs() / f64::from(h * h);
        if curv > 50.0 {
            continue;
        }
        checked += 1;
        let err = (fd - f64::from(g[i])).abs();
        assert!(
            err <= 2e-2 * fd.abs().max(1.0),
            "x[{i}]: autodiff {} vs finite difference {fd}",
            g[i]
        );
    }
    assert!(checked >= 20, "only {checked} smooth positions checked");
}

#[test]
fn weights_are_frozen() {
    let device = Device::flex().autodiff();
    let (bytes, _) = small_net();
    let (_dir, path) = write_tmp(&bytes, "net.onnx");
    let model = OnnxModel::load(&path, &device).expect("load");
    let x = Tensor::<4>::ones([1, 1, 6, 6], &device).require_grad();
    let loss = model.forward(x.clone()).expect("fwd").sum();
    let grads = loss.backward();
    assert!(x.grad(&grads).is_some());
    // the only leaf requiring a gradient is the input: nothing else can be updated by an optimiser
    assert!(
        !model
            .forward(Tensor::<4>::ones([1, 1, 6, 6], &device))
            .expect("fwd")
            .is_require_grad()
    );
}

#[test]
fn unsupported_ops_are_typed_errors_naming_op_node_and_opset() {
    let mk = |domain: &str, op: &str| {
        let mut g = GraphWriter::new(
            "x",
            vec![Dim::Fixed(2), Dim::Fixed(3)],
            "y",
            vec![Dim::Fixed(2), Dim::Fixed(3)],
        );
        g.node("Relu", "r", &["x"], &["h"], vec![]);
        g.node_in_domain(domain, op, "the_node", &["h"], &["y"], vec![]);
        g.finish(13)
    };
    let device = Device::flex();
    let (_d1, p1) = write_tmp(&mk("", "Erf"), "erf.onnx");
    match OnnxModel::load(&p1, &device) {
        Err(Error::UnsupportedOp { op, node, opset, .. }) => {
            assert_eq!((op.as_str(), node.as_str(), opset), ("Erf", "the_node", 13));
        }
        other => panic!("expected UnsupportedOp, got {other:?}"),
    }
    let (_d2, p2) = write_tmp(&mk("com.example", "Fancy"), "custom.onnx");
    match OnnxModel::load(&p2, &device) {
        Err(e @ Error::UnsupportedOp { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("com.example::Fancy") && msg.contains("the_node") && msg.contains("opset 1"),
                "{msg}"
            );
        }
        other => panic!("expected UnsupportedOp, got {other:?}"),
    }
    // a setting that is not supported either: AveragePool with dilations
    let mut g = GraphWriter::new(
        "x",
        vec![Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(8), Dim::Fixed(8)],
        "y",
        vec![],
    );
    g.node(
        "AveragePool",
        "ap",
        &["x"],
        &["y"],
        vec![
            Attr::Ints("kernel_shape", vec![2, 2]),
            Attr::Ints("dilations", vec![2, 2]),
        ],
    );
    let (_d3, p3) = write_tmp(&g.finish(19), "ap.onnx");
    let r = OnnxModel::load(&p3, &device);
    assert!(
        matches!(r, Err(Error::UnsupportedOp { ref op, .. } | Error::Parse { message: ref op, .. }) if op.contains("AveragePool") || op.contains("dilation")),
        "{r:?}"
    );
}

#[test]
fn bad_files_are_typed_errors() {
    let device = Device::flex();
    let missing = OnnxModel::load(std::path::Path::new("/nonexistent/model.onnx"), &device);
    assert!(matches!(missing, Err(Error::Io { .. })), "{missing:?}");
    let (_d, p) = write_tmp(b"this is not an onnx file at all", "junk.onnx");
    let junk = OnnxModel::load(&p, &device);
    assert!(matches!(junk, Err(Error::Parse { .. })), "{junk:?}");
}

#[test]
fn sidecar_default_roundtrip_and_validation() {
    let device = Device::flex();
    let (bytes, _) = small_net();
    let (dir, path) = write_tmp(&bytes, "net.onnx");
    let model = OnnxModel::load(&path, &device).expect("load");
    assert_eq!(model.preprocess(), &Preprocess::default());
    // default: v / 255
    let x = model.input_from_u8(&[255u8; 36], 1).expect("input");
    assert_eq!(x.dims(), vec![1, 1, 6, 6]);

    let p = Preprocess {
        mean: vec![0.5],
        std: vec![0.25],
        ..Preprocess::default()
    };
    p.save_for(&path).expect("save");
    assert_eq!(
        Preprocess::sidecar_path(&path),
        dir.path().join("net.obfnet.json")
    );
    let model = OnnxModel::load(&path, &device).expect("load with sidecar");
    assert_eq!(model.preprocess(), &p);
    let (a, b) = model.input_affine();
    assert!((255.0 * a[0] + b[0] - 2.0).abs() < 1e-6 && (b[0] + 2.0).abs() < 1e-6);

    for (json, what) in [
        (r#"{"version": 2}"#, "version"),
        (r#"{"version": 1, "std": [0.0]}"#, "std"),
        (r#"{"version": 1, "mean": [0.1, 0.2, 0.3]}"#, "channels"),
        (r#"{"version": 1, "sclae": 1.0}"#, "unknown field"),
        ("not json", "expected"),
    ] {
        std::fs::write(Preprocess::sidecar_path(&path), json).expect("write sidecar");
        match OnnxModel::load(&path, &device) {
            Err(e @ Error::Sidecar { .. }) => assert!(e.to_string().contains(what), "{what}: {e}"),
            other => panic!("{json}: expected a sidecar error, got {other:?}"),
        }
    }
}
