//! The project's LeNet-5 exported to ONNX (`lenet_to_onnx` + its sidecar) and loaded back as an
//! ONNX [`ServerModel`] gives the same logits, the same accuracy and the same obfuscator training
//! as the native LeNet path.
//!
//! Data: the first 3,000 / 1,000 real MNIST images when fetched (`OBFNET_DATA_DIR`, required with
//! `OBFNET_REQUIRE_DATA=1`), else a generated 10-class image set (the comparison is an
//! equivalence check, it does not depend on the data being MNIST).

use obfnet_data::LabeledImages;
use obfnet_nn::{
    Dataset, ObfArch, ObfTrainConfig, ServerModel, ServerTrainConfig, accuracy, default_device,
    lenet_onnx_sidecar, lenet_to_onnx, server_accuracy, server_obfuscated_accuracies, train_obfuscators,
    train_server_model,
};

fn data() -> (LabeledImages, LabeledImages, &'static str) {
    let dir = std::env::var_os("OBFNET_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data"))
        .join("mnist");
    match obfnet_data::ImageDataset::load_mnist_dir("mnist", &dir) {
        Ok(ds) => return (ds.train.take(3000), ds.test.take(1000), "MNIST"),
        Err(e) if std::env::var("OBFNET_REQUIRE_DATA").as_deref() == Ok("1") => {
            panic!("OBFNET_REQUIRE_DATA=1 but MNIST is missing: {e}")
        }
        Err(e) => eprintln!("note: MNIST not available ({e}); comparing on generated images"),
    }
    let mk = |n: usize, seed: u64| {
        let mut rng = obfnet_nn::SplitMix64::new(seed);
        LabeledImages {
            rows: 28,
            cols: 28,
            pixels: (0..n * 784)
                .map(|i| {
                    let (img, px) = (i / 784, i % 784);
                    if (px / 28) / 3 == img % 10 {
                        220
                    } else {
                        rng.below(60) as u8
                    }
                })
                .collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    };
    (mk(600, 1), mk(200, 2), "generated")
}

#[test]
fn lenet_as_onnx_matches_the_native_path() {
    let (train_images, test_images, which) = data();
    let device = default_device();
    let train = Dataset::from_images(&train_images, &device).expect("train");
    let test = Dataset::from_images(&test_images, &device).expect("test");
    let (lenet, _) = train_server_model(
        &ServerTrainConfig {
            epochs: 1,
            ..Default::default()
        },
        &train,
        &test,
        &mut |_| {},
    )
    .expect("train LeNet");

    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("lenet.onnx");
    std::fs::write(&path, lenet_to_onnx(&lenet).expect("export")).expect("write");
    lenet_onnx_sidecar().save_for(&path).expect("sidecar");
    let onnx = ServerModel::load_onnx(&path).expect("load ONNX LeNet");
    let native = ServerModel::LeNet(lenet.clone());
    assert_eq!(onnx.input_shape(), (28, 28));
    assert_eq!(onnx.classes(), 10);

    // logits
    let x = test.slice(0, 64).inner();
    let a: Vec<f32> = native
        .forward_eval(x.clone())
        .expect("native")
        .into_data()
        .try_to_vec()
        .expect("f32");
    let b: Vec<f32> = onnx
        .forward_eval(x)
        .expect("onnx")
        .into_data()
        .try_to_vec()
        .expect("f32");
    let worst = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs() / p.abs().max(1.0))
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "logits differ by {worst:e} (relative)");

    // accuracy
    let acc_native = accuracy(&lenet, &test).expect("acc");
    let acc_onnx = server_accuracy(&onnx, &test).expect("acc");
    assert_eq!(acc_native, acc_onnx, "accuracy on {which}");

    // obfuscator training: same recipe, same seeds → same losses and accuracies
    let cfg = ObfTrainConfig {
        arch: ObfArch::ObfNet2,
        k: 2,
        epochs: 1,
        limit: Some(1024),
        ..Default::default()
    };
    let (stack_n, rep_n) = train_obfuscators(&cfg, &native, &train, &test, &mut |_| {}).expect("native");
    let (stack_o, rep_o) = train_obfuscators(&cfg, &onnx, &train, &test, &mut |_| {}).expect("onnx");
    println!(
        "{which}: raw acc {acc_native:.4} / {acc_onnx:.4}; obf accs native {:?} onnx {:?}; losses {:?} / {:?}; step ms {:.1} / {:.1}",
        rep_n.accuracies,
        rep_o.accuracies,
        rep_n.epoch_losses,
        rep_o.epoch_losses,
        rep_n.step_ms_median,
        rep_o.step_ms_median
    );
    assert_eq!(rep_n.raw_accuracy, rep_o.raw_accuracy);
    for (l, m) in rep_n.epoch_losses.iter().zip(&rep_o.epoch_losses) {
        assert!((l - m).abs() <= 1e-3 * l.abs().max(1.0), "epoch loss {l} vs {m}");
    }
    for (p, q) in rep_n.accuracies.iter().zip(&rep_o.accuracies) {
        assert!((p - q).abs() <= 0.005, "obfuscated accuracy {p} vs {q}");
    }
    assert!(!rep_o.frozen_gradient_found);
    // each trained stack scored by the other model agrees too
    let cross = server_obfuscated_accuracies(&onnx, &stack_n, &test).expect("cross");
    assert_eq!(cross, rep_n.accuracies);
    let _ = stack_o;
}
