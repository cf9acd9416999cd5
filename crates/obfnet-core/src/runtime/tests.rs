//! Tests of the random sources, wire codec and portable kernels.

use super::kernels::{dot_f32, dot_i8};
use super::*;

#[test]
fn uniform_index_covers_all_and_is_in_range() {
    let mut rng = SeededRandom::new(1);
    let mut counts = [0usize; 3];
    for _ in 0..3000 {
        counts[uniform_index(&mut rng, 3).unwrap()] += 1;
    }
    // Each count is Binomial(3000, 1/3): mean 1000, sd 25.8; 6 sd either side.
    for c in counts {
        assert!((845..=1155).contains(&c), "{counts:?}");
    }
    assert!(matches!(uniform_index(&mut rng, 0), Err(Error::NoSuchNet { .. })));
    assert_eq!(uniform_index(&mut rng, 1).unwrap(), 0);
}

#[test]
fn seeded_random_is_reproducible() {
    let (mut a, mut b) = (SeededRandom::new(5), SeededRandom::new(5));
    let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
    a.fill_bytes(&mut x).unwrap();
    b.fill_bytes(&mut y).unwrap();
    assert_eq!(x, y);
    assert_ne!(x, [0u8; 13]);
}

#[test]
fn activations_quantise_to_full_range() {
    let x = [0.0, 1.0, 2.0, 0.5];
    let mut u = [0i16; 4];
    let (a, c) = quantize_activations(&x, &mut u);
    assert_eq!((u, c), ([0, 128, 255, 64], 0.0));
    assert!((a - 2.0 / 255.0).abs() < 1e-9);
    let x = [-1.0, 1.0];
    let (a, c) = quantize_activations(&x, &mut u[..2]);
    assert_eq!((&u[..2], c), (&[0i16, 255][..], -1.0));
    assert!((a * 255.0 + c - 1.0).abs() < 1e-6);
    let (_, c) = quantize_activations(&[0.0; 2], &mut u[..2]);
    assert_eq!((&u[..2], c), (&[0i16, 0][..], 0.0));
}

#[test]
fn dot_products_match_naive_sums() {
    let w: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
    let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
    let naive: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
    assert!((dot_f32(&w, &x) - naive).abs() < 1e-5);

    let w: Vec<i8> = (0..40_000).map(|i| ((i * 37) % 255 - 127) as i8).collect();
    let u: Vec<i16> = (0..40_000).map(|i| ((i * 11) % 256) as i16).collect();
    let naive: i64 = w.iter().zip(&u).map(|(&a, &b)| i64::from(a) * i64::from(b)).sum();
    assert_eq!(dot_i8(&w, &u), naive);
    // The worst case that would overflow a single i32 accumulator chain.
    let w = vec![-127i8; 200_000];
    let u = vec![255i16; 200_000];
    assert_eq!(dot_i8(&w, &u), -127 * 255 * 200_000);
}

#[test]
fn wire_u8_clamps_and_round_trips() {
    let n = Normalisation::MNIST;
    let mut out = Vec::new();
    Wire::U8.encode(&[n.apply(0), n.apply(200), 1e9, -1e9, f32::NAN], n, &mut out);
    assert_eq!(out, vec![0, 200, 255, 0, 0]);
    let mut v = [n.apply(17) + 1e-4];
    Wire::U8.round_trip(&mut v, n);
    assert_eq!(v[0], n.apply(17));
    let mut out = Vec::new();
    Wire::F32.encode(&[1.5], n, &mut out);
    assert_eq!(out, 1.5f32.to_le_bytes().to_vec());
}
