//! Tests of the random sources, wire codec and portable kernels.

use super::kernels::{self, dot_f32, dot_i8};
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

mod simd_kernels {
    use super::super::simd::{self, I8Scratch, Isa};
    use super::*;
    use crate::rng::SplitMix64;

    /// Odd and even sizes, tails of every length, rows longer than the AVX2 kernel's `i16`
    /// flush interval (128 groups = 512 inputs), and ObfNet2's shapes.
    const SHAPES: &[(usize, usize)] = &[
        (1, 1),
        (3, 5),
        (4, 8),
        (5, 7),
        (7, 9),
        (17, 15),
        (31, 33),
        (33, 64),
        (100, 72),
        (513, 130),
        (1030, 41),
        (784, 1000),
        (1000, 784),
    ];

    fn isas(int8: bool) -> Vec<Isa> {
        let v: Vec<Isa> = [Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|i| i.supported(int8))
            .collect();
        for isa in [Isa::Avx2, Isa::Avx512] {
            if !v.contains(&isa) {
                std::println!("skip: this CPU lacks the {isa:?} kernels (int8: {int8}); not tested here");
            }
        }
        v
    }

    fn check_i8(isa: Isa, w: &[i8], u: &[i16], inputs: usize, outputs: usize) {
        let p = simd::pack_i8(isa, w, inputs, outputs).unwrap();
        let mut s = I8Scratch::new(inputs.max(outputs));
        let dots = simd::dense_i8_dots(&p, u, &mut s).unwrap().to_vec();
        assert_eq!(dots.len(), outputs);
        for (o, &d) in dots.iter().enumerate() {
            let want = dot_i8(&w[o * inputs..(o + 1) * inputs], u);
            assert_eq!(i64::from(d), want, "{isa:?} {inputs}x{outputs} output {o}");
        }
    }

    #[test]
    fn int8_kernels_are_bit_exact() {
        let mut r = SplitMix64::new(42);
        for isa in isas(true) {
            for &(inputs, outputs) in SHAPES {
                let w: Vec<i8> = (0..inputs * outputs)
                    .map(|_| (r.below(255) as i16 - 127) as i8)
                    .collect();
                let u: Vec<i16> = (0..inputs).map(|_| r.below(256) as i16).collect();
                check_i8(isa, &w, &u, inputs, outputs);
                // Extremes: every pair at the saturation limit of a 16-bit multiply-add.
                for (wv, uv) in [(-127i8, 255i16), (127, 255), (127, 128), (-127, 127)] {
                    check_i8(
                        isa,
                        &vec![wv; inputs * outputs],
                        &vec![uv; inputs],
                        inputs,
                        outputs,
                    );
                }
            }
            // The longest row the kernels take, at the worst case for i32 accumulators.
            let n = simd::MAX_I8_INPUTS;
            check_i8(isa, &vec![-127; n * 3], &vec![255; n], n, 3);
            assert!(simd::pack_i8(isa, &vec![0; n + 1], n + 1, 1).is_none());
        }
    }

    #[test]
    fn f32_kernels_match_portable() {
        let mut r = SplitMix64::new(43);
        for isa in isas(false) {
            for &(inputs, outputs) in SHAPES {
                let w: Vec<f32> = (0..inputs * outputs).map(|_| r.uniform(1.0)).collect();
                let x: Vec<f32> = (0..inputs).map(|_| r.uniform(3.0)).collect();
                let b: Vec<f32> = (0..outputs).map(|_| r.uniform(1.0)).collect();
                let p = simd::pack_f32(isa, &w, inputs, outputs).unwrap();
                let (mut fast, mut reference) = (vec![0.0; outputs], vec![0.0; outputs]);
                assert!(simd::dense_f32(&p, &b, &x, &mut fast));
                kernels::dense_f32(&w, &b, inputs, &x, &mut reference);
                for o in 0..outputs {
                    // Relative to the sum of magnitudes (the scale of the rounding error of
                    // any summation order).
                    let row = &w[o * inputs..(o + 1) * inputs];
                    let mag = b[o].abs() + row.iter().zip(&x).map(|(a, c)| (a * c).abs()).sum::<f32>();
                    let err = (fast[o] - reference[o]).abs();
                    assert!(
                        err <= 1e-6 * mag,
                        "{isa:?} {inputs}x{outputs} output {o}: {err} vs {mag}"
                    );
                }
            }
        }
    }

    fn dense_bundle(widths: &[usize]) -> Bundle {
        let layers: Vec<LayerSpec> = widths
            .windows(2)
            .enumerate()
            .map(|(j, w)| LayerSpec::Dense {
                inputs: w[0],
                outputs: w[1],
                act: if j + 2 == widths.len() {
                    Activation::None
                } else {
                    Activation::Relu
                },
            })
            .collect();
        let mut r = SplitMix64::new(7);
        let weights = layers
            .iter()
            .map(|l| crate::LayerWeights {
                weight: (0..l.weight_shape().iter().product::<usize>())
                    .map(|_| r.uniform(0.2))
                    .collect(),
                bias: (0..l.bias_shape().iter().product::<usize>())
                    .map(|_| r.uniform(0.2))
                    .collect(),
            })
            .collect();
        let n = widths.len();
        let manifest = crate::Manifest {
            format_version: crate::FORMAT_VERSION,
            created_by: "test".into(),
            dataset: "toy".into(),
            input: crate::TensorSpec {
                shape: vec![widths[0]],
                dtype: DType::F32,
            },
            normalisation: Normalisation::MNIST,
            output: crate::TensorSpec {
                shape: vec![widths[n - 1]],
                dtype: DType::F32,
            },
            weights: DType::F32,
            output_noise: None,
            server_model_sha256: [0; 32],
            nets: vec![crate::NetSpec {
                name: "n".into(),
                arch: "dense".into(),
                seed: 1,
                layers,
                sha256: [0; 32],
            }],
        };
        Bundle::new(manifest, vec![weights]).unwrap()
    }

    #[test]
    fn runtime_answers_do_not_depend_on_the_kernels() {
        let f32_bundle = dense_bundle(&[37, 61, 29, 37]);
        for bundle in [f32_bundle.clone(), f32_bundle.quantize_int8().unwrap()] {
            let auto = Runtime::from_bundle(&bundle).unwrap();
            let portable = Runtime::from_bundle_with(
                &bundle,
                &RuntimeConfig {
                    kernels: Kernels::Portable,
                    ..RuntimeConfig::default()
                },
            )
            .unwrap();
            assert_eq!(portable.isa(), (Isa::Portable, Isa::Portable));
            let raw: Vec<u8> = (0..37u32).map(|i| (i * 53 % 256) as u8).collect();
            let (mut a, mut b) = (vec![0.0; 37], vec![0.0; 37]);
            auto.run_raw(0, &raw, &mut a, &mut auto.scratch()).unwrap();
            portable
                .run_raw(0, &raw, &mut b, &mut portable.scratch())
                .unwrap();
            if bundle.manifest.weights == DType::I8 {
                assert_eq!(a, b, "int8 must be bit-exact");
            } else {
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
                }
            }
            // A (smaller) scratch from another runtime grows to fit and gives the same answer.
            let small = Runtime::from_bundle(&dense_bundle(&[37, 2, 37])).unwrap();
            let mut c = vec![0.0; 37];
            auto.run_raw(0, &raw, &mut c, &mut small.scratch()).unwrap();
            assert_eq!(a, c);
        }
    }
}

mod memory_budget {
    use super::*;

    /// A few-KB bundle declaring a 1x1 convolution to 1024 channels on a 512x512 input
    /// (2^28 activations: 2 GiB of f32 scratch).
    fn hostile(weights: DType) -> Vec<u8> {
        let conv = |i, o| LayerSpec::Conv2d {
            in_channels: i,
            out_channels: o,
            kernel: 1,
            stride: 1,
            padding: 0,
            in_height: 512,
            in_width: 512,
            act: Activation::None,
        };
        let layers = vec![conv(1, 1024), conv(1024, 1)];
        let weights_v = layers
            .iter()
            .map(|l| crate::LayerWeights {
                weight: vec![0.01; l.weight_shape().iter().product()],
                bias: vec![0.0; l.bias_shape().iter().product()],
            })
            .collect();
        let shape = crate::TensorSpec {
            shape: vec![1, 512, 512],
            dtype: DType::F32,
        };
        let manifest = crate::Manifest {
            format_version: crate::FORMAT_VERSION,
            created_by: "hostile".into(),
            dataset: "toy".into(),
            input: shape.clone(),
            normalisation: Normalisation::MNIST,
            output: shape,
            weights: DType::F32,
            output_noise: None,
            server_model_sha256: [0; 32],
            nets: vec![crate::NetSpec {
                name: "big".into(),
                arch: "conv".into(),
                seed: 1,
                layers,
                sha256: [0; 32],
            }],
        };
        let mut b = Bundle::new(manifest, vec![weights_v]).unwrap();
        if weights == DType::I8 {
            b = b.quantize_int8().unwrap();
        }
        b.to_bytes().unwrap()
    }

    #[test]
    fn hostile_bundle_is_refused_before_allocating() {
        for dtype in [DType::F32, DType::I8] {
            let bytes = hostile(dtype);
            assert!(bytes.len() < 32 * 1024, "{} bytes", bytes.len());
            let err = Runtime::from_bytes(&bytes).unwrap_err();
            let Error::MemoryBudget {
                needed,
                weights,
                scratch,
                budget,
            } = err
            else {
                panic!("{err}")
            };
            assert_eq!(budget, DEFAULT_MEMORY_BUDGET as u64);
            assert_eq!(needed, weights + scratch);
            let acts = 1024u64 * 512 * 512;
            // f32: two f32 activation buffers; int8 adds codes (i16) and the conv's two i64
            // accumulators.
            let per_act = if dtype == DType::F32 { 8 } else { 8 + 2 + 16 };
            // f32 convolutions on the SIMD kernels add one position's taps (at most 1024) and
            // outputs (at most 1024), in f32.
            let im2col = if dtype == DType::F32 && Isa::detect().0 != Isa::Portable {
                4 * (1024 + 1024)
            } else {
                0
            };
            assert_eq!(scratch, acts * per_act + im2col, "{dtype:?}");
            assert!(err_message_names_the_budget(
                &Runtime::from_bytes(&bytes).unwrap_err()
            ));
        }
    }

    fn err_message_names_the_budget(e: &Error) -> bool {
        let m = std::format!("{e}");
        m.contains("memory budget") && m.contains(&std::format!("{DEFAULT_MEMORY_BUDGET}"))
    }

    #[test]
    fn budget_is_exact_and_scratch_follows_the_weight_type() {
        let bundle = simd_kernels_bundle();
        let rt = Runtime::from_bundle(&bundle).unwrap();
        let need = rt.memory_bytes() as usize;
        let cfg = |b| RuntimeConfig::new(b);
        assert!(Runtime::from_bundle_with(&bundle, &cfg(need)).is_ok());
        assert!(matches!(
            Runtime::from_bundle_with(&bundle, &cfg(need - 1)),
            Err(Error::MemoryBudget { .. })
        ));
        // No int8 buffers for an f32 bundle.
        let s = rt.scratch();
        assert!(s.codes.is_empty() && s.dot.is_empty() && s.sum_q.is_empty());
        let q = Runtime::from_bundle(&bundle.quantize_int8().unwrap())
            .unwrap()
            .scratch();
        assert!(
            !q.codes.is_empty() && q.dot.is_empty(),
            "dense int8 nets need no i64 buffers"
        );
    }

    fn simd_kernels_bundle() -> Bundle {
        let l = LayerSpec::Dense {
            inputs: 16,
            outputs: 16,
            act: Activation::None,
        };
        let manifest = crate::Manifest {
            format_version: crate::FORMAT_VERSION,
            created_by: "t".into(),
            dataset: "toy".into(),
            input: crate::TensorSpec {
                shape: vec![16],
                dtype: DType::F32,
            },
            normalisation: Normalisation::MNIST,
            output: crate::TensorSpec {
                shape: vec![16],
                dtype: DType::F32,
            },
            weights: DType::F32,
            output_noise: None,
            server_model_sha256: [0; 32],
            nets: vec![crate::NetSpec {
                name: "n".into(),
                arch: "dense".into(),
                seed: 1,
                layers: vec![l],
                sha256: [0; 32],
            }],
        };
        let w = crate::LayerWeights {
            weight: vec![0.1; 256],
            bias: vec![0.0; 16],
        };
        Bundle::new(manifest, vec![vec![w]]).unwrap()
    }
}

/// Programs built in memory: max pooling, multi-channel convolutions on the SIMD path, and
/// the same checks and budget as bundles.
mod program {
    use super::*;
    use crate::rng::SplitMix64;

    /// Direct-definition reference convolution (zero padding), channel-major.
    #[allow(clippy::too_many_arguments)]
    fn naive_conv(
        x: &[f32],
        w: &[f32],
        b: &[f32],
        (ic, oc, k, s, p): (usize, usize, usize, usize, usize),
        (h, wd): (usize, usize),
    ) -> Vec<f32> {
        let oh = (h + 2 * p - k) / s + 1;
        let ow = (wd + 2 * p - k) / s + 1;
        let mut y = vec![0.0f32; oc * oh * ow];
        for o in 0..oc {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b[o];
                    for c in 0..ic {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (iy, ix) = (
                                    (oy * s + ky) as isize - p as isize,
                                    (ox * s + kx) as isize - p as isize,
                                );
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    acc += w[((o * ic + c) * k + ky) * k + kx]
                                        * x[(c * h + iy as usize) * wd + ix as usize];
                                }
                            }
                        }
                    }
                    y[(o * oh + oy) * ow + ox] = acc;
                }
            }
        }
        y
    }

    fn configs() -> [RuntimeConfig; 2] {
        [
            RuntimeConfig::default(),
            RuntimeConfig {
                kernels: Kernels::Portable,
                ..RuntimeConfig::default()
            },
        ]
    }

    #[test]
    fn multichannel_convolutions_match_the_definition_on_every_kernel() {
        let mut r = SplitMix64::new(11);
        // (in_ch, out_ch, kernel, stride, pad), (h, w): LeNet's two convolutions, and odd ones.
        let cases = [
            ((1, 6, 5, 1, 2), (28, 28)),
            ((6, 16, 5, 1, 0), (14, 14)),
            ((3, 20, 3, 2, 1), (9, 7)),
            ((5, 1, 1, 1, 0), (4, 6)),
            ((2, 17, 4, 3, 3), (5, 5)),
        ];
        for ((ic, oc, k, s, p), (h, wd)) in cases {
            let spec = LayerSpec::Conv2d {
                in_channels: ic,
                out_channels: oc,
                kernel: k,
                stride: s,
                padding: p,
                in_height: h,
                in_width: wd,
                act: Activation::None,
            };
            let w: Vec<f32> = (0..oc * ic * k * k).map(|_| r.uniform(1.0)).collect();
            let b: Vec<f32> = (0..oc).map(|_| r.uniform(1.0)).collect();
            let x: Vec<f32> = (0..ic * h * wd).map(|_| r.uniform(2.0)).collect();
            let want = naive_conv(&x, &w, &b, (ic, oc, k, s, p), (h, wd));
            let layers = [ProgramLayer::Weighted {
                spec,
                weight: &w,
                bias: &b,
            }];
            for cfg in configs() {
                let rt = Runtime::from_program(x.len(), &layers, Normalisation::MNIST, &cfg).unwrap();
                assert_eq!(rt.output_len(), want.len());
                let mut got = vec![0.0; want.len()];
                rt.run_f32(0, &x, &mut got, &mut rt.scratch()).unwrap();
                let mag = 1.0 + 2.0 * (ic * k * k) as f32;
                for (g, e) in got.iter().zip(&want) {
                    assert!(
                        (g - e).abs() <= 1e-6 * mag,
                        "{:?} {ic}->{oc} k{k}: {g} vs {e}",
                        rt.isa()
                    );
                }
            }
        }
    }

    #[test]
    fn max_pooling_takes_each_window_maximum_and_floors_odd_sides() {
        let mut r = SplitMix64::new(5);
        for (ch, size, h, w) in [
            (6, 2, 28, 28),
            (16, 2, 10, 10),
            (3, 2, 7, 9),
            (2, 3, 8, 3),
            (1, 1, 2, 2),
        ] {
            let x: Vec<f32> = (0..ch * h * w).map(|_| r.uniform(5.0)).collect();
            let (oh, ow) = (h / size, w / size);
            let mut want = vec![f32::NEG_INFINITY; ch * oh * ow];
            for c in 0..ch {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for ky in 0..size {
                            for kx in 0..size {
                                let v = x[(c * h + oy * size + ky) * w + ox * size + kx];
                                let d = &mut want[(c * oh + oy) * ow + ox];
                                *d = d.max(v);
                            }
                        }
                    }
                }
            }
            let layers = [ProgramLayer::MaxPool2d {
                channels: ch,
                size,
                in_height: h,
                in_width: w,
            }];
            let rt = Runtime::from_program(x.len(), &layers, Normalisation::MNIST, &RuntimeConfig::default())
                .unwrap();
            let mut got = vec![0.0; want.len()];
            rt.run_f32(0, &x, &mut got, &mut rt.scratch()).unwrap();
            assert_eq!(got, want, "{ch}x{h}x{w} / {size}");
        }
    }

    #[test]
    fn bad_programs_are_refused_with_typed_errors() {
        let n = Normalisation::MNIST;
        let cfg = RuntimeConfig::default();
        let pool = |channels, size, in_height, in_width| ProgramLayer::MaxPool2d {
            channels,
            size,
            in_height,
            in_width,
        };
        let err =
            |layers: &[ProgramLayer<'_>], input| Runtime::from_program(input, layers, n, &cfg).unwrap_err();
        assert!(matches!(err(&[], 4), Error::InvalidField { .. }));
        assert!(matches!(
            err(&[pool(1, 3, 2, 2)], 4),
            Error::InvalidLayer { layer: 0, .. }
        ));
        assert!(matches!(err(&[pool(1, 0, 2, 2)], 4), Error::InvalidLayer { .. }));
        assert!(matches!(err(&[pool(1, 2, 2, 2)], 5), Error::LayerChain { .. }));
        assert!(matches!(
            err(&[pool(usize::MAX, 2, usize::MAX, usize::MAX)], 4),
            Error::InvalidLayer { .. }
        ));
        let spec = LayerSpec::Dense {
            inputs: 1,
            outputs: 4,
            act: Activation::Relu,
        };
        let short = [ProgramLayer::Weighted {
            spec,
            weight: &[1.0; 3],
            bias: &[0.0; 4],
        }];
        assert!(matches!(err(&short, 1), Error::InvalidLayer { .. }));
    }

    #[test]
    fn hostile_program_is_refused_before_allocating() {
        // A 1x1 convolution to 1024 channels on a 512x512 input, then pooling: 2^28
        // activations, 2 GiB of f32 scratch, from a few KB of weights.
        let spec = LayerSpec::Conv2d {
            in_channels: 1,
            out_channels: 1024,
            kernel: 1,
            stride: 1,
            padding: 0,
            in_height: 512,
            in_width: 512,
            act: Activation::Relu,
        };
        let (w, b) = (vec![0.01f32; 1024], vec![0.0f32; 1024]);
        let layers = [
            ProgramLayer::Weighted {
                spec,
                weight: &w,
                bias: &b,
            },
            ProgramLayer::MaxPool2d {
                channels: 1024,
                size: 2,
                in_height: 512,
                in_width: 512,
            },
        ];
        for cfg in configs() {
            let e = Runtime::from_program(512 * 512, &layers, Normalisation::MNIST, &cfg).unwrap_err();
            let Error::MemoryBudget { needed, scratch, .. } = e else {
                panic!("{e}")
            };
            assert!(scratch >= 8 * 1024 * 512 * 512, "{scratch}");
            assert!(needed > DEFAULT_MEMORY_BUDGET as u64);
        }
        // The same program on a 32x32 input fits, and the budget is exact.
        let spec = LayerSpec::Conv2d {
            in_channels: 1,
            out_channels: 1024,
            kernel: 1,
            stride: 1,
            padding: 0,
            in_height: 32,
            in_width: 32,
            act: Activation::Relu,
        };
        let small = [
            ProgramLayer::Weighted {
                spec,
                weight: &w,
                bias: &b,
            },
            ProgramLayer::MaxPool2d {
                channels: 1024,
                size: 2,
                in_height: 32,
                in_width: 32,
            },
        ];
        let rt =
            Runtime::from_program(1024, &small, Normalisation::MNIST, &RuntimeConfig::default()).unwrap();
        let need = rt.memory_bytes() as usize;
        assert!(Runtime::from_program(1024, &small, Normalisation::MNIST, &RuntimeConfig::new(need)).is_ok());
        assert!(matches!(
            Runtime::from_program(1024, &small, Normalisation::MNIST, &RuntimeConfig::new(need - 1)),
            Err(Error::MemoryBudget { .. })
        ));
    }
}
