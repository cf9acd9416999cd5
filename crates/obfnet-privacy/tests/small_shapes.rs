//! Samples that are not 2-D images of at least 11 × 11 (`1 × L` sensor vectors, small maps):
//! the similarity index and the recognition classifier used for them, on generated fixtures
//! whose right answers are known.

use burn::prelude::*;
use obfnet_nn::{Dataset, SplitMix64};
use obfnet_privacy::metrics::*;
use obfnet_privacy::*;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.next_f32()).collect()
}

/// A smooth 1-D signal in [0, 1].
fn wave(len: usize, phase: f32) -> Vec<f32> {
    (0..len)
        .map(|i| 0.5 + 0.4 * (i as f32 * 0.3 + phase).sin())
        .collect()
}

#[test]
fn the_variant_follows_the_shape() {
    assert_eq!(Similarity::for_shape(28, 28).expect("28×28"), Similarity::Ssim2d);
    assert_eq!(Similarity::for_shape(11, 11).expect("11×11"), Similarity::Ssim2d);
    assert_eq!(
        Similarity::for_shape(1, 128).expect("1×128"),
        Similarity::Ssim1dRows
    );
    assert_eq!(
        Similarity::for_shape(3, 64).expect("3×64"),
        Similarity::Ssim1dRows
    );
    assert_eq!(
        Similarity::for_shape(64, 2).expect("64×2"),
        Similarity::Ssim1dCols
    );
    assert_eq!(Similarity::for_shape(8, 8).expect("8×8"), Similarity::GlobalSsim);
    assert!(Similarity::for_shape(0, 5).is_err());
    assert!(
        Similarity::for_shape(1, 128)
            .expect("1×128")
            .name()
            .contains("1-D SSIM")
    );
}

#[test]
fn images_keep_the_2d_ssim_exactly() {
    let (a, b) = (random(28 * 28, 1), random(28 * 28, 2));
    let blend: Vec<f32> = a.iter().zip(&b).map(|(x, y)| 0.7 * x + 0.3 * y).collect();
    assert_eq!(
        ssim_any(&a, &blend, 28, 28).expect("any"),
        ssim(&a, &blend, 28, 28).expect("2-D")
    );
}

#[test]
fn one_d_ssim_equals_the_2d_ssim_of_rows_repeated() {
    // An image whose 11 rows all repeat the vector: the vertical Gaussian pass leaves every
    // column unchanged (weights sum to 1), so its 2-D SSIM is the 1-D SSIM of the vector.
    let len = 40;
    let a = wave(len, 0.0);
    let b: Vec<f32> = wave(len, 0.9)
        .iter()
        .zip(random(len, 3))
        .map(|(w, r)| 0.8 * w + 0.2 * r)
        .collect();
    let tile = |v: &[f32]| -> Vec<f32> { (0..11).flat_map(|_| v.iter().copied()).collect() };
    let want = ssim(&tile(&a), &tile(&b), 11, len).expect("2-D");
    let got = ssim_any(&a, &b, 1, len).expect("1-D");
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    assert!(got > 0.0 && got < 0.95, "a partial match: {got}");
    // the same vector as a column: the per-column variant gives the same number
    let col = ssim_any(&a, &b, len, 1).expect("column");
    assert!((col - got).abs() < 1e-12, "{col} vs {got}");
    // several rows: the mean of the rows' 1-D SSIMs
    let (a2, b2) = ([a.clone(), b.clone()].concat(), [b.clone(), a.clone()].concat());
    let two = ssim_any(&a2, &b2, 2, len).expect("2 rows");
    assert!((two - got).abs() < 1e-12, "symmetric rows: {two} vs {got}");
}

#[test]
fn one_d_ssim_identical_is_one_and_unrelated_is_low() {
    let a = wave(128, 0.2);
    assert!((ssim_any(&a, &a, 1, 128).expect("same") - 1.0).abs() < 1e-12);
    let noise = random(128, 7);
    let s = ssim_any(&a, &noise, 1, 128).expect("noise");
    assert!(s.abs() < 0.2, "unrelated: {s}");
    let inv: Vec<f32> = a.iter().map(|v| 1.0 - v).collect();
    assert!(ssim_any(&a, &inv, 1, 128).expect("inverted") < 0.0);
}

#[test]
fn global_ssim_has_its_closed_form() {
    // [0, 1] vs [1, 0]: means 0.5, variances 0.25, covariance −0.25 → (C2 − 0.5)/(C2 + 0.5)
    let c2 = SSIM_K2 * SSIM_K2;
    let got = ssim_any(&[0.0, 1.0], &[1.0, 0.0], 1, 2).expect("1×2");
    assert!((got - (c2 - 0.5) / (c2 + 0.5)).abs() < 1e-12, "{got}");
    let a = random(64, 11);
    assert!((ssim_any(&a, &a, 8, 8).expect("8×8") - 1.0).abs() < 1e-12);
    assert!(ssim_any(&a, &random(64, 12), 8, 8).expect("8×8").abs() < 0.3);
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let a = vec![0.5f32; 30];
    assert!(ssim_any(&a, &a, 1, 29).is_err(), "30 values are not 1×29");
    assert!(ssim_any(&a, &a[..29], 1, 30).is_err(), "lengths differ");
    assert!(ssim_any(&[], &[], 0, 0).is_err());
    assert!(score_images(&a, &a, 0, 30).is_err());
    assert!(score_images(&a, &a, 1, 30).is_ok());
}

/// `n` vectors of `1 × len` in three classes: a bump at one of three places, plus noise.
fn bumps(n: usize, len: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
    let mut rng = SplitMix64::new(seed);
    let mut px = Vec::with_capacity(n * len);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let l = rng.below(3);
        let centre = (2 * l + 1) * len / 6;
        for i in 0..len {
            let d = i.abs_diff(centre) as f32;
            let bump = if d < 4.0 { 0.7 * (1.0 - d / 4.0) } else { 0.0 };
            px.push((0.15 + bump + 0.15 * rng.next_f32()).min(1.0));
        }
        labels.push(l as u8);
    }
    (px, labels)
}

fn dataset(px: &[f32], labels: &[u8], rows: usize, cols: usize) -> Dataset {
    let n = labels.len();
    let x = from_host(from_pixels(px), n, rows * cols).expect("tensor");
    let y = Tensor::from_data(
        TensorData::new(labels.iter().map(|&l| i64::from(l)).collect::<Vec<_>>(), [n]),
        &x.device(),
    );
    Dataset {
        x,
        y,
        labels: labels.to_vec(),
        rows,
        cols,
    }
}

#[test]
fn the_recogniser_of_vectors_is_an_mlp_that_learns_them() {
    let (ptr, ltr) = bumps(600, 36, 21);
    let (pte, lte) = bumps(200, 36, 22);
    let (train, test) = (dataset(&ptr, &ltr, 1, 36), dataset(&pte, &lte, 1, 36));
    let cfg = AttackConfig {
        recogniser_epochs: 5,
        ..AttackConfig::standard()
    };
    let r = Recogniser::train(&cfg, &train, &test, &mut |_| {}).expect("train");
    assert!(r.description().starts_with("MLP"), "{}", r.description());
    assert!(r.raw_accuracy > 0.95, "separable fixture: {}", r.raw_accuracy);
    let acc = r.accuracy(&pte, &lte, 1, 36).expect("accuracy");
    assert!(
        (acc - r.raw_accuracy).abs() < 1e-12,
        "{acc} vs {}",
        r.raw_accuracy
    );
    // wrong labels (shifted by one class) are recognised as wrong
    let wrong: Vec<u8> = lte.iter().map(|&l| (l + 1) % 3).collect();
    assert!(r.accuracy(&pte, &wrong, 1, 36).expect("accuracy") < 0.1);
    // a flat vector carries no class: at most the share of its one predicted class
    let flat = vec![0.2f32; 36 * 200];
    assert!(r.accuracy(&flat, &lte, 1, 36).expect("accuracy") < 0.5);
    assert!(
        r.accuracy(&pte[..35], &lte[..1], 1, 36).is_err(),
        "bad size is an error"
    );
}

#[test]
fn small_2d_samples_get_the_mlp_recogniser_and_the_global_ssim() {
    // 6 × 6 maps: the bump fixture laid out row-major
    let (ptr, ltr) = bumps(300, 36, 31);
    let (pte, lte) = bumps(100, 36, 32);
    let (train, test) = (dataset(&ptr, &ltr, 6, 6), dataset(&pte, &lte, 6, 6));
    let cfg = AttackConfig {
        recogniser_epochs: 8,
        ..AttackConfig::standard()
    };
    let r = Recogniser::train(&cfg, &train, &test, &mut |_| {}).expect("train");
    assert!(r.description().starts_with("MLP"));
    assert!(r.raw_accuracy > 0.9, "{}", r.raw_accuracy);
    let s = score_images(&pte, &pte, 6, 6).expect("scores");
    assert!((s.ssim - 1.0).abs() < 1e-12 && s.n == 100);
}
