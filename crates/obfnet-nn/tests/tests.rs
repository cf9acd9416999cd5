//! Integration tests of the training engine on tiny generated data (and real MNIST when fetched).

use obfnet_data::LabeledImages;
use obfnet_nn::{
    Dataset, LeNet, ObfArch, ObfStack, ObfTrainConfig, ServerTrainConfig, SplitMix64, default_device,
    train_obfuscators, train_server_model,
};

/// `n` 28×28 images of 10 easy classes: class c is a bright 6×6 square at one of 10 places on a
/// noisy background.
fn synthetic(n: usize, seed: u64) -> LabeledImages {
    let mut rng = SplitMix64::new(seed);
    let mut pixels = Vec::with_capacity(n * 784);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = (i % 10) as u8;
        let (r0, c0) = (3 + 12 * usize::from(c / 5), 1 + 5 * usize::from(c % 5));
        for r in 0..28 {
            for col in 0..28 {
                let on = (r0..r0 + 6).contains(&r) && (c0..c0 + 6).contains(&col);
                let noise = (rng.next_f32() * 60.0) as u8;
                pixels.push(if on { 255 - noise } else { noise });
            }
        }
        labels.push(c);
    }
    LabeledImages {
        rows: 28,
        cols: 28,
        pixels,
        labels,
    }
}

fn datasets(n_train: usize, n_test: usize) -> (Dataset, Dataset) {
    let device = default_device();
    (
        Dataset::from_images(&synthetic(n_train, 1), &device).expect("train"),
        Dataset::from_images(&synthetic(n_test, 2), &device).expect("test"),
    )
}

fn tiny_server(train: &Dataset, test: &Dataset) -> LeNet {
    let cfg = ServerTrainConfig {
        epochs: 3,
        batch_size: 32,
        ..Default::default()
    };
    let (model, report) = train_server_model(&cfg, train, test, &mut |_| {}).expect("train LeNet");
    // Chance is 10%; the classes are easy, so a working trainer gets far above it.
    assert!(
        report.test_accuracy > 0.6,
        "LeNet accuracy {}",
        report.test_accuracy
    );
    assert!(
        report.epoch_losses.last() < report.epoch_losses.first(),
        "{:?}",
        report.epoch_losses
    );
    model
}

#[test]
fn end_to_end_tiny_run_keeps_the_server_model_frozen() {
    let (train, test) = datasets(400, 200);
    let model = tiny_server(&train, &test);
    let before = model.parameters_flat().expect("read weights");
    assert_eq!(before.len(), 61_706, "LeNet-5 has 61,706 parameters");
    for arch in ObfArch::ALL {
        let cfg = ObfTrainConfig {
            arch,
            k: 2,
            epochs: 3,
            batch_size: 32,
            ..Default::default()
        };
        let (stack, report) = train_obfuscators(
            &cfg,
            &obfnet_nn::ServerModel::LeNet(model.clone()),
            &train,
            &test,
            &mut |_| {},
        )
        .expect("train obf");
        assert_eq!(stack.k(), 2);
        assert_eq!(report.accuracies.len(), 2);
        for acc in &report.accuracies {
            assert!(
                *acc > 0.3,
                "{arch}: accuracy behind obfuscator {acc} (chance 0.1)"
            );
        }
        assert!(
            !report.frozen_gradient_found,
            "{arch}: a frozen parameter got a gradient"
        );
        assert_eq!(report.frozen_checked_steps, 3 * 400usize.div_ceil(32));
        let after = model.parameters_flat().expect("read weights");
        assert_eq!(before.len(), after.len());
        assert!(
            before.iter().zip(&after).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{arch}: server weights changed"
        );
    }
}

#[test]
fn stacked_training_equals_training_each_net_alone() {
    let (train, test) = datasets(200, 50);
    let model = tiny_server(&train, &test);
    let base = ObfTrainConfig {
        arch: ObfArch::ObfNet1,
        epochs: 1,
        batch_size: 32,
        ..Default::default()
    };
    let together = ObfTrainConfig {
        k: 3,
        seed: 40,
        ..base.clone()
    };
    let (stack3, _) = train_obfuscators(
        &together,
        &obfnet_nn::ServerModel::LeNet(model.clone()),
        &train,
        &test,
        &mut |_| {},
    )
    .expect("k=3");
    let alone = ObfTrainConfig {
        k: 1,
        seed: 41,
        ..base
    };
    let (stack1, _) = train_obfuscators(
        &alone,
        &obfnet_nn::ServerModel::LeNet(model.clone()),
        &train,
        &test,
        &mut |_| {},
    )
    .expect("k=1");
    let a = stack3.net_weights(1).expect("net 1 of 3");
    let b = stack1.net_weights(0).expect("net 0 of 1");
    let mut max_diff = 0.0f32;
    for (la, lb) in a.iter().zip(&b) {
        for (x, y) in la
            .weight
            .iter()
            .zip(&lb.weight)
            .chain(la.bias.iter().zip(&lb.bias))
        {
            max_diff = max_diff.max((x - y).abs());
        }
    }
    // Same seed → same init and data order; Adam is element-wise, so only float rounding of the
    // batched products may differ.
    assert!(
        max_diff < 1e-4,
        "net trained in a stack differs from the same net alone by {max_diff}"
    );
    // And a different seed gives a different net.
    let c = stack3.net_weights(0).expect("net 0 of 3");
    assert!(
        c[0].weight
            .iter()
            .zip(&b[0].weight)
            .any(|(x, y)| (x - y).abs() > 1e-3)
    );
}

#[test]
fn bundle_roundtrip_preserves_every_net_and_rejects_tampering() {
    let device = default_device();
    let (_, test) = datasets(10, 20);
    for arch in ObfArch::ALL {
        let stack = ObfStack::new(arch, &[7, 8, 9], 28, 28, &device).expect("stack");
        let sha = obfnet_core::sha256(b"server model");
        let bundle = obfnet_nn::bundle_from_stack(&stack, "synthetic", sha).expect("bundle");
        let bytes = bundle.to_bytes().expect("bytes");
        let loaded = obfnet_core::Bundle::from_bytes(&bytes).expect("valid bundle");
        loaded.expect_server_model(&sha).expect("same server model");
        assert!(
            loaded
                .expect_server_model(&obfnet_core::sha256(b"another"))
                .is_err()
        );
        let restored = ObfStack::from_bundle(&loaded, &device).expect("restore");
        let a = obfnet_nn::obfuscate_samples(&stack, &test, 20).expect("a");
        let b = obfnet_nn::obfuscate_samples(&restored, &test, 20).expect("b");
        assert_eq!(a, b, "{arch}: outputs changed through the bundle");
        assert_eq!(loaded.manifest.nets.len(), 3);
        assert_eq!(loaded.manifest.nets[2].seed, 9);
        // Flip one weight byte in the middle: the loader must refuse.
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x10;
        assert!(
            obfnet_core::Bundle::from_bytes(&bad).is_err(),
            "{arch}: tampered bundle accepted"
        );
        assert!(obfnet_core::Bundle::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}

#[test]
fn server_model_save_load_is_exact() {
    let (train, test) = datasets(64, 20);
    let cfg = ServerTrainConfig {
        epochs: 1,
        batch_size: 32,
        ..Default::default()
    };
    let (model, report) = train_server_model(&cfg, &train, &test, &mut |_| {}).expect("train");
    let dir = tempfile::tempdir().expect("tempdir");
    let sha = obfnet_nn::save_server_model(&model, &cfg, &report, dir.path()).expect("save");
    let (loaded, config, sha2) = obfnet_nn::load_server_model(dir.path()).expect("load");
    assert_eq!(sha, sha2);
    assert_eq!(config.training, cfg);
    let (a, b) = (
        model.parameters_flat().expect("weights"),
        loaded.parameters_flat().expect("weights"),
    );
    assert!(!a.is_empty());
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert_eq!(
        obfnet_nn::accuracy(&model, &test).expect("acc"),
        obfnet_nn::accuracy(&loaded, &test).expect("acc")
    );
    // A truncated weights file is an error, not a panic.
    let w = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&w).expect("read");
    std::fs::write(&w, &bytes[..bytes.len() / 2]).expect("write");
    assert!(obfnet_nn::load_server_model(dir.path()).is_err());
}

#[test]
fn bad_configs_are_errors() {
    let (train, test) = datasets(32, 10);
    let bad = ServerTrainConfig {
        epochs: 0,
        ..Default::default()
    };
    assert!(train_server_model(&bad, &train, &test, &mut |_| {}).is_err());
    let bad = ServerTrainConfig {
        learning_rate: f64::NAN,
        ..Default::default()
    };
    assert!(train_server_model(&bad, &train, &test, &mut |_| {}).is_err());
    let device = default_device();
    let model = LeNet::new(&Default::default(), &device);
    let bad = ObfTrainConfig {
        k: 0,
        ..Default::default()
    };
    assert!(
        train_obfuscators(
            &bad,
            &obfnet_nn::ServerModel::LeNet(model.clone()),
            &train,
            &test,
            &mut |_| {}
        )
        .is_err()
    );
}

/// Real MNIST: one LeNet epoch on the 60k training images must clear 97% on the real test set.
#[test]
fn real_mnist_short_training() {
    let dir = std::env::var_os("OBFNET_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data"))
        .join("mnist");
    let ds = match obfnet_data::ImageDataset::load_mnist_dir("mnist", &dir) {
        Ok(ds) => ds,
        Err(e) if std::env::var("OBFNET_REQUIRE_DATA").as_deref() != Ok("1") => {
            eprintln!("skipping: MNIST not available ({e}); run `obfnet fetch`");
            return;
        }
        Err(e) => panic!("OBFNET_REQUIRE_DATA=1 but MNIST is missing: {e}"),
    };
    let device = default_device();
    let train = Dataset::from_images(&ds.train, &device).expect("train");
    let test = Dataset::from_images(&ds.test, &device).expect("test");
    let cfg = ServerTrainConfig {
        epochs: 1,
        ..Default::default()
    };
    let (_, report) = train_server_model(&cfg, &train, &test, &mut |_| {}).expect("train");
    assert!(
        report.test_accuracy > 0.97,
        "LeNet after 1 epoch: {}",
        report.test_accuracy
    );
}

/// Real FSDD (20×64 MFCC maps from the raw WAVs): LeNet-5 sized for the maps, 15 epochs on the
/// 2,700 training clips, must clear 90% on the official 300-clip test split (measured: 8 epochs
/// give 89.7%, the quickstart's 30 give 97.0%).
#[test]
fn real_fsdd_short_training() {
    use obfnet_data::DatasetReader as _;
    let dir = std::env::var_os("OBFNET_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data"))
        .join("fsdd");
    let ds = match obfnet_data::FSDD.load(&dir) {
        Ok(ds) => ds,
        Err(e) if std::env::var("OBFNET_REQUIRE_DATA").as_deref() != Ok("1") => {
            eprintln!("skipping: FSDD not available ({e}); run `obfnet fetch --dataset fsdd`");
            return;
        }
        Err(e) => panic!("OBFNET_REQUIRE_DATA=1 but FSDD is missing: {e}"),
    };
    let device = default_device();
    let train = Dataset::from_images(&ds.train, &device).expect("train");
    let test = Dataset::from_images(&ds.test, &device).expect("test");
    let cfg = ServerTrainConfig {
        epochs: 15,
        ..Default::default()
    };
    let (model, report) = train_server_model(&cfg, &train, &test, &mut |_| {}).expect("train");
    assert_eq!(model.input_shape(), (20, 64));
    assert!(
        report.test_accuracy > 0.90,
        "LeNet on FSDD after 15 epochs: {}",
        report.test_accuracy
    );
}

/// LeNet-5 and the obfuscators on non-square inputs (20×64, the FSDD map shape): train, save
/// with the dataset recorded, reload exactly.
#[test]
fn non_square_inputs_train_save_and_reload() {
    let device = default_device();
    let mk = |n: usize| {
        let mut rng = obfnet_nn::SplitMix64::new(n as u64);
        LabeledImages {
            rows: 20,
            cols: 64,
            pixels: (0..n * 1280)
                .map(|i| {
                    if (i % 1280) / 128 == (i / 1280) % 10 {
                        230
                    } else {
                        (rng.below(40)) as u8
                    }
                })
                .collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    };
    let train = Dataset::from_images(&mk(200), &device).expect("train");
    let test = Dataset::from_images(&mk(50), &device).expect("test");
    let cfg = ServerTrainConfig {
        epochs: 3,
        ..Default::default()
    };
    let (model, report) = train_server_model(&cfg, &train, &test, &mut |_| {}).expect("train");
    assert!(report.test_accuracy > 0.5, "{}", report.test_accuracy);
    let dir = tempfile::tempdir().expect("tempdir");
    obfnet_nn::save_server_model_for(&model, "fsdd", &cfg, &report, dir.path()).expect("save");
    let (back, config, _) = obfnet_nn::load_server_model(dir.path()).expect("load");
    assert_eq!(config.dataset_name(), "fsdd");
    assert_eq!(config.model.input, [20, 64]);
    assert_eq!(
        back.parameters_flat().expect("p"),
        model.parameters_flat().expect("p")
    );
    let ocfg = ObfTrainConfig {
        k: 2,
        epochs: 1,
        ..Default::default()
    };
    let (stack, rep) = train_obfuscators(
        &ocfg,
        &obfnet_nn::ServerModel::LeNet(back.clone()),
        &train,
        &test,
        &mut |_| {},
    )
    .expect("obf");
    assert_eq!(stack.image_size(), (20, 64));
    assert_eq!(rep.accuracies.len(), 2);
    // a 28×28 model refuses the 20×64 maps
    let mnist_model = LeNet::new(&Default::default(), &device);
    assert!(
        train_obfuscators(
            &ocfg,
            &obfnet_nn::ServerModel::LeNet(mnist_model.clone()),
            &train,
            &test,
            &mut |_| {}
        )
        .is_err()
    );
    assert!(obfnet_nn::accuracy(&mnist_model, &test).is_err());
}

#[test]
fn images_of_the_wrong_size_are_errors_not_panics() {
    let device = default_device();
    let small = LabeledImages {
        rows: 10,
        cols: 10,
        pixels: vec![0; 300],
        labels: vec![1, 2, 3],
    };
    let small = Dataset::from_images(&small, &device).expect("dataset");
    let (train, test) = datasets(32, 10);
    let model = LeNet::new(&Default::default(), &device);
    assert!(obfnet_nn::accuracy(&model, &small).is_err());
    let stack = ObfStack::new(ObfArch::ObfNet1, &[1], 10, 10, &device).expect("stack");
    assert!(obfnet_nn::obfuscated_accuracies(&model, &stack, &test).is_err());
    assert!(obfnet_nn::obfuscate_samples(&stack, &test, 3).is_err());
    let cfg = ObfTrainConfig {
        k: 1,
        epochs: 1,
        ..Default::default()
    };
    assert!(
        train_obfuscators(
            &cfg,
            &obfnet_nn::ServerModel::LeNet(model.clone()),
            &small,
            &test,
            &mut |_| {}
        )
        .is_err()
    );
    assert!(train_server_model(&ServerTrainConfig::default(), &small, &train, &mut |_| {}).is_err());
}

/// The edge runtime of `obfnet-core` against the engine's forward pass.
mod edge_parity {
    use super::*;
    use obfnet_core::runtime::{NetChoice, Runtime, SeededRandom, Wire};
    use obfnet_data::LabeledImages;

    /// Real MNIST test images when fetched (required with OBFNET_REQUIRE_DATA=1), else synthetic.
    fn images(n: usize) -> (LabeledImages, &'static str) {
        let dir = std::env::var_os("OBFNET_DATA_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data"))
            .join("mnist");
        match obfnet_data::ImageDataset::load_mnist_dir("mnist", &dir) {
            Ok(ds) => (ds.test.take(n), "real MNIST"),
            Err(e) if std::env::var("OBFNET_REQUIRE_DATA").as_deref() == Ok("1") => {
                panic!("OBFNET_REQUIRE_DATA=1 but MNIST is missing: {e}")
            }
            Err(_) => (synthetic(n, 9), "synthetic"),
        }
    }

    /// Engine outputs and an f32 edge runtime for a K=2 stack of `arch`, after one short
    /// epoch of training on synthetic data so that the weights are not just their init.
    fn trained(arch: ObfArch) -> (ObfStack, Runtime) {
        trained_with(arch, false)
    }

    fn trained_with(arch: ObfArch, clip_output: bool) -> (ObfStack, Runtime) {
        let (train, test) = datasets(200, 50);
        let server = LeNet::new(&obfnet_nn::LeNetConfig::default(), &default_device());
        let cfg = ObfTrainConfig {
            arch,
            k: 2,
            epochs: 1,
            batch_size: 32,
            clip_output,
            ..Default::default()
        };
        let (stack, _) = train_obfuscators(
            &cfg,
            &obfnet_nn::ServerModel::LeNet(server.clone()),
            &train,
            &test,
            &mut |_| {},
        )
        .expect("train");
        let bundle = obfnet_nn::bundle_from_stack(&stack, "mnist", [7; 32]).expect("bundle");
        let bytes = bundle.to_bytes().expect("encode");
        (stack, Runtime::from_bytes(&bytes).expect("runtime"))
    }

    #[test]
    fn f32_edge_matches_engine_within_1e5_for_every_arch() {
        let (imgs, source) = images(200);
        let data = Dataset::from_images(&imgs, &default_device()).expect("data");
        for arch in ObfArch::ALL {
            let (stack, rt) = trained(arch);
            let engine = obfnet_nn::obfuscate_samples(&stack, &data, imgs.len()).expect("engine");
            let mut scratch = rt.scratch();
            let mut out = vec![0.0f32; rt.output_len()];
            let (mut worst, mut peak) = (0.0f32, 0.0f32);
            for (net, per_net) in engine.iter().enumerate() {
                for (i, want) in per_net.iter().enumerate() {
                    rt.run_raw(net, imgs.image(i), &mut out, &mut scratch)
                        .expect("run");
                    for (a, b) in out.iter().zip(want) {
                        worst = worst.max((a - b).abs());
                        peak = peak.max(b.abs());
                    }
                }
            }
            eprintln!("{arch} on {source}: max |edge - engine| = {worst:.2e} (outputs up to {peak:.2})");
            assert!(peak > 0.1, "{arch}: degenerate outputs");
            assert!(worst <= 1e-5, "{arch}: edge differs from engine by {worst}");
        }
    }

    #[test]
    fn clipped_nets_round_trip_and_match_the_engine() {
        let (imgs, _) = images(100);
        let data = Dataset::from_images(&imgs, &default_device()).expect("data");
        let (stack, rt) = trained_with(ObfArch::ObfNet2, true);
        assert!(stack.clips_output());
        let bundle = obfnet_nn::bundle_from_stack(&stack, "mnist", [7; 32]).expect("bundle");
        assert_eq!(bundle.manifest.format_version, 2);
        let reloaded = ObfStack::from_bundle(&bundle, &default_device()).expect("reload");
        assert!(reloaded.clips_output());
        let engine = obfnet_nn::obfuscate_samples(&reloaded, &data, imgs.len()).expect("engine");
        let n = obfnet_nn::NORMALISATION;
        let (lo, hi) = (n.apply(0), n.apply(255));
        let mut scratch = rt.scratch();
        let mut out = vec![0.0f32; 784];
        let mut worst = 0.0f32;
        for (net, per_net) in engine.iter().enumerate() {
            for (i, want) in per_net.iter().enumerate() {
                assert!(want.iter().all(|v| (lo..=hi).contains(v)));
                rt.run_raw(net, imgs.image(i), &mut out, &mut scratch)
                    .expect("run");
                for (a, b) in out.iter().zip(want) {
                    worst = worst.max((a - b).abs());
                }
            }
        }
        assert!(worst <= 1e-5, "clipped: edge differs from engine by {worst}");
        // Through the u8 wire the outputs move by at most half a raw step.
        let mut wire = out.clone();
        obfnet_core::runtime::Wire::U8.round_trip(&mut wire, n);
        let step = n.apply(1) - n.apply(0);
        assert!(
            out.iter()
                .zip(&wire)
                .all(|(a, b)| (a - b).abs() <= step / 2.0 + 1e-6)
        );
    }

    #[test]
    fn int8_edge_stays_close_to_f32() {
        let (imgs, _) = images(100);
        for arch in ObfArch::ALL {
            let (stack, f32_rt) = trained(arch);
            let bundle = obfnet_nn::bundle_from_stack(&stack, "mnist", [7; 32]).expect("bundle");
            let int8 = bundle.quantize_int8().expect("quantise");
            let bytes = int8.to_bytes().expect("encode");
            assert!(bytes.len() * 3 < bundle.to_bytes().expect("encode").len());
            let rt = Runtime::from_bytes(&bytes).expect("runtime");
            let mut scratch = rt.scratch();
            let (mut a, mut b) = (vec![0.0f32; 784], vec![0.0f32; 784]);
            let (mut err2, mut sig2) = (0.0f64, 0.0f64);
            for i in 0..imgs.len() {
                for net in 0..2 {
                    f32_rt
                        .run_raw(net, imgs.image(i), &mut a, &mut scratch)
                        .expect("f32");
                    rt.run_raw(net, imgs.image(i), &mut b, &mut scratch)
                        .expect("int8");
                    for (x, y) in a.iter().zip(&b) {
                        err2 += f64::from(x - y).powi(2);
                        sig2 += f64::from(*x).powi(2);
                    }
                }
            }
            // Signal-to-quantisation-noise ratio; 8-bit weights and activations give ~30-40 dB.
            let sqnr_db = 10.0 * (sig2 / err2.max(1e-30)).log10();
            eprintln!("{arch}: int8 SQNR {sqnr_db:.1} dB");
            assert!(sqnr_db > 25.0, "{arch}: int8 output SQNR only {sqnr_db:.1} dB");
        }
    }

    #[test]
    fn random_choice_uses_every_net_and_fixed_choice_is_exact() {
        let (_, rt) = trained(ObfArch::ObfNet1);
        let img = vec![128u8; 784];
        let mut scratch = rt.scratch();
        let mut out = vec![0.0f32; 784];
        let mut rng = SeededRandom::new(3);
        let mut seen = [0usize; 2];
        for _ in 0..200 {
            let net = rt
                .obfuscate(&img, NetChoice::Random(&mut rng), &mut out, &mut scratch)
                .expect("run");
            seen[net] += 1;
        }
        // Binomial(200, 1/2): both nets are used (probability of failure 2^-199).
        assert!(seen.iter().all(|&c| c > 0), "{seen:?}");
        let mut fixed = vec![0.0f32; 784];
        rt.obfuscate(&img, NetChoice::Fixed(1), &mut fixed, &mut scratch)
            .expect("fixed");
        rt.run_raw(1, &img, &mut out, &mut scratch).expect("run");
        assert_eq!(fixed, out);
        assert!(
            rt.obfuscate(&img, NetChoice::Fixed(2), &mut out, &mut scratch)
                .is_err()
        );
        assert!(rt.run_raw(0, &img[..10], &mut out, &mut scratch).is_err());
        let mut os = obfnet_core::runtime::OsRandom;
        assert!(
            rt.obfuscate(&img, NetChoice::Random(&mut os), &mut out, &mut scratch)
                .is_ok()
        );
        let mut wire = Vec::new();
        Wire::U8.encode(&out, rt.normalisation(), &mut wire);
        assert_eq!(wire.len(), img.len());
    }
}

mod privacy_training {
    use super::*;
    use obfnet_nn::{PrivacyTraining, class_means};

    #[test]
    fn class_means_are_the_per_label_averages() {
        let (train, _) = datasets(60, 10);
        let means = class_means(&train).expect("means");
        assert_eq!(means.dims(), [10, 784]);
        let means: Vec<f32> = means.into_data().try_into_vec_as::<f32>().expect("host");
        let x: Vec<f32> = train
            .x
            .clone()
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("host");
        for c in 0..10u8 {
            let rows: Vec<usize> = (0..train.len()).filter(|&i| train.labels[i] == c).collect();
            for j in [0usize, 100, 400, 783] {
                let want = rows.iter().map(|&i| x[i * 784 + j]).sum::<f32>() / rows.len() as f32;
                let got = means[usize::from(c) * 784 + j];
                assert!((got - want).abs() < 1e-4, "class {c} pixel {j}: {got} vs {want}");
            }
        }
    }

    /// Like `synthetic`, plus style the label does not determine: the square's brightness and a
    /// horizontal stripe at a random row, on a faint background — so a decoder can do better
    /// than the class mean.
    fn styled(n: usize, seed: u64) -> Dataset {
        styled_with_stripes(n, seed).0
    }

    /// `styled`, and per sample whether its stripe lies in the lower half (a private attribute
    /// the label does not determine).
    fn styled_with_stripes(n: usize, seed: u64) -> (Dataset, Vec<u8>) {
        let mut rng = SplitMix64::new(seed);
        let mut pixels = Vec::with_capacity(n * 784);
        let mut labels = Vec::with_capacity(n);
        let mut lower = Vec::with_capacity(n);
        for i in 0..n {
            let c = (i % 10) as u8;
            let (r0, c0) = (3 + 12 * usize::from(c / 5), 1 + 5 * usize::from(c % 5));
            let bright = 100.0 + rng.next_f32() * 155.0;
            let stripe = (rng.next_f32() * 28.0) as usize;
            lower.push(u8::from(stripe >= 14));
            for r in 0..28 {
                for col in 0..28 {
                    let on = (r0..r0 + 6).contains(&r) && (c0..c0 + 6).contains(&col);
                    let v = if on {
                        bright
                    } else if r == stripe.min(27) {
                        180.0
                    } else {
                        rng.next_f32() * 10.0
                    };
                    pixels.push(v as u8);
                }
            }
            labels.push(c);
        }
        let images = LabeledImages {
            rows: 28,
            cols: 28,
            pixels,
            labels,
        };
        (
            Dataset::from_images(&images, &default_device()).expect("styled"),
            lower,
        )
    }

    fn adversarial(
        arch: ObfArch,
        weight: f32,
        train: &Dataset,
        test: &Dataset,
        model: &LeNet,
    ) -> obfnet_nn::ObfReport {
        let cfg = ObfTrainConfig {
            arch,
            k: 2,
            epochs: 4,
            batch_size: 32,
            bottleneck: 8,
            privacy: Some(PrivacyTraining {
                weight,
                warmup_steps: 10,
                ..Default::default()
            }),
            ..Default::default()
        };
        let (stack, report) = train_obfuscators(
            &cfg,
            &obfnet_nn::ServerModel::LeNet(model.clone()),
            train,
            test,
            &mut |_| {},
        )
        .expect("train");
        assert_eq!(stack.k(), 2);
        report
    }

    #[test]
    fn the_attribute_term_hides_an_attribute_the_label_does_not_determine() {
        let ((train, stripes), test) = (styled_with_stripes(600, 21), styled(200, 22));
        let model = obfnet_nn::ServerModel::LeNet(tiny_server(&train, &test));
        let run = |beta: f32| {
            let cfg = ObfTrainConfig {
                arch: ObfArch::ObfNet2,
                k: 1,
                epochs: 4,
                batch_size: 32,
                privacy: Some(PrivacyTraining {
                    weight: 0.0,
                    attribute: beta,
                    warmup_steps: 10,
                    ..Default::default()
                }),
                ..Default::default()
            };
            let (_, r) = obfnet_nn::train_obfuscators_with_attributes(
                &cfg,
                &model,
                &train,
                Some(&stripes),
                &test,
                &mut |_| {},
            )
            .expect("train");
            let last = *r.privacy_epochs.last().expect("epochs");
            assert_eq!(last.attribute_values, Some(2));
            (
                last.attribute_accuracy.expect("attribute accuracy"),
                r.accuracies[0],
            )
        };
        let (weak, weak_acc) = run(1e-3);
        let (strong, strong_acc) = run(20.0);
        eprintln!(
            "β = 0.001: attribute {weak:.3} (task {weak_acc:.3}); β = 20: {strong:.3} ({strong_acc:.3})"
        );
        // The stripe is plainly visible to a classifier of the outputs unless the term hides it.
        assert!(weak > 0.65, "weak term: {weak}");
        assert!(strong < weak - 0.15, "β = 20: {strong} vs β = 0.001: {weak}");
        // The term needs the labels, one per training sample.
        let cfg = ObfTrainConfig {
            k: 1,
            epochs: 1,
            privacy: Some(PrivacyTraining {
                attribute: 1.0,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(train_obfuscators(&cfg, &model, &train, &test, &mut |_| {}).is_err());
        let short = &stripes[..10];
        assert!(
            obfnet_nn::train_obfuscators_with_attributes(
                &cfg,
                &model,
                &train,
                Some(short),
                &test,
                &mut |_| {}
            )
            .is_err()
        );
    }

    #[test]
    fn adversarial_training_keeps_the_model_frozen_and_raises_the_adversarys_error() {
        let (train, test) = (styled(600, 11), styled(200, 12));
        let model = tiny_server(&train, &test);
        let before = model.parameters_flat().expect("weights");
        let plain = adversarial(ObfArch::ObfNet2, 0.0, &train, &test, &model);
        let private = adversarial(ObfArch::ObfNet2, 50.0, &train, &test, &model);
        assert_eq!(
            model.parameters_flat().expect("weights"),
            before,
            "server weights changed"
        );
        for r in [&plain, &private] {
            assert!(!r.frozen_gradient_found);
            assert_eq!(r.privacy_epochs.len(), 4);
            assert!(
                r.privacy_epochs
                    .iter()
                    .all(|e| e.decoder_mse.is_finite() && e.floor_mse > 0.0)
            );
        }
        let last = |r: &obfnet_nn::ObfReport| *r.privacy_epochs.last().expect("epochs");
        let (p, q) = (last(&plain), last(&private));
        eprintln!(
            "λ=0: {p:?} acc {:?}; λ=50: {q:?} acc {:?}",
            plain.accuracies, private.accuracies
        );
        // Without the privacy term the training decoder reconstructs better than the class
        // mean; with it, the obfuscators push the decoder's error up towards that floor.
        assert!(p.decoder_mse < p.floor_mse, "{p:?}");
        assert!(
            q.decoder_mse / q.floor_mse > p.decoder_mse / p.floor_mse + 0.05,
            "{p:?} vs {q:?}"
        );
    }

    #[test]
    fn bottleneck_nets_have_the_configured_code_width_and_cost() {
        let device = default_device();
        let stack = ObfStack::new_design(ObfArch::Bottleneck, 1000, 16, &[1, 2], 28, 28, true, &device)
            .expect("stack");
        let specs = stack.layer_specs();
        assert_eq!(ObfArch::Bottleneck.bottleneck_of(&specs), Some(16));
        assert_eq!(ObfArch::Bottleneck.hidden_of(&specs), Some(1000));
        assert_eq!(stack.macs(), 784 * 1000 + 1000 * 16 + 16 * 784);
        assert_eq!(specs[1].activation(), obfnet_core::Activation::None);
        assert_eq!(specs[2].activation(), obfnet_core::Activation::Clip);
        assert!(ObfStack::new_design(ObfArch::Bottleneck, 1000, 0, &[1], 28, 28, false, &device).is_err());
        assert!(ObfStack::new_design(ObfArch::Bottleneck, 0, 16, &[1], 28, 28, false, &device).is_err());
        // A narrower first layer (what keeps a 20×64 FSDD map under 1 M multiply-adds) survives
        // the bundle round trip with its widths and its clip.
        let narrow = ObfStack::new_design(ObfArch::Bottleneck, 600, 24, &[3], 20, 64, true, &device)
            .expect("narrow stack");
        assert_eq!(narrow.macs(), 1280 * 600 + 600 * 24 + 24 * 1280);
        assert!(narrow.macs() < 1_000_000);
        let bundle = obfnet_nn::bundle_from_stack(&narrow, "fsdd", [7; 32]).expect("bundle");
        let bytes = bundle.to_bytes().expect("bytes");
        let loaded = obfnet_core::Bundle::from_bytes(&bytes).expect("valid bundle");
        let back = ObfStack::from_bundle(&loaded, &device).expect("decode");
        assert_eq!(back.layer_specs(), narrow.layer_specs());
        assert_eq!(ObfArch::Bottleneck.hidden_of(&back.layer_specs()), Some(600));
        assert!(back.clips_output());
        let (train, test) = datasets(20, 20);
        let model = LeNet::new(&obfnet_nn::LeNetConfig::default(), &device);
        for bad in [
            PrivacyTraining {
                weight: f32::NAN,
                ..Default::default()
            },
            PrivacyTraining {
                output_noise: -0.1,
                ..Default::default()
            },
            PrivacyTraining {
                output_noise: 17.0,
                ..Default::default()
            },
        ] {
            let cfg = ObfTrainConfig {
                k: 1,
                epochs: 1,
                privacy: Some(bad.clone()),
                ..Default::default()
            };
            assert!(
                train_obfuscators(
                    &cfg,
                    &obfnet_nn::ServerModel::LeNet(model.clone()),
                    &train,
                    &test,
                    &mut |_| {}
                )
                .is_err(),
                "{bad:?}"
            );
        }
    }
}
