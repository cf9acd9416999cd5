//! Integration tests for the bundle format, written against the public API and the byte
//! layout documented in `FORMAT.md` (the helpers below re-implement that layout on purpose, so
//! the tests pin the format rather than the implementation).
#![allow(clippy::unwrap_used)]

use obfnet_core::{
    Activation, Bundle, DType, Error, FORMAT_VERSION, LayerSpec, LayerWeights, Manifest, NetSpec,
    Normalisation, Tensor, TensorData, TensorSpec, safetensors, sha256,
};

/// Fixtures and helpers shared by the test modules.
mod common {
    use super::*;

    pub const SERVER: [u8; 32] = [0x5e; 32];

    /// Deterministic, finite, non-trivial parameter values.
    pub fn values(n: usize, salt: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ salt) as f32 / u32::MAX as f32 - 0.5)
            .collect()
    }

    pub fn weights_for(manifest: &Manifest) -> Vec<Vec<LayerWeights>> {
        manifest
            .nets
            .iter()
            .enumerate()
            .map(|(i, net)| {
                net.layers
                    .iter()
                    .enumerate()
                    .map(|(j, l)| LayerWeights {
                        weight: values(l.weight_shape().iter().product(), (i * 10 + j) as u32),
                        bias: values(l.bias_shape().iter().product(), (i * 10 + j + 5) as u32),
                    })
                    .collect()
            })
            .collect()
    }

    /// A small two-net bundle: a dense 36 -> 20 -> 36 net and a conv net on a 1x6x6 input.
    pub fn small_manifest() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            created_by: "obfnet-0.1.0".into(),
            dataset: "toy".into(),
            input: TensorSpec {
                shape: vec![1, 6, 6],
                dtype: DType::F32,
            },
            normalisation: Normalisation::MNIST,
            output: TensorSpec {
                shape: vec![1, 6, 6],
                dtype: DType::F32,
            },
            weights: DType::F32,
            output_noise: None,
            server_model_sha256: SERVER,
            nets: vec![
                NetSpec {
                    name: "dense-0".into(),
                    arch: "obfnet2".into(),
                    seed: 1000,
                    layers: vec![
                        LayerSpec::Dense {
                            inputs: 36,
                            outputs: 20,
                            act: Activation::Relu,
                        },
                        LayerSpec::Dense {
                            inputs: 20,
                            outputs: 36,
                            act: Activation::None,
                        },
                    ],
                    sha256: [0; 32],
                },
                NetSpec {
                    name: "conv-1".into(),
                    arch: "conv".into(),
                    seed: 1001,
                    layers: vec![
                        LayerSpec::Conv2d {
                            in_channels: 1,
                            out_channels: 2,
                            kernel: 3,
                            stride: 2,
                            padding: 1,
                            in_height: 6,
                            in_width: 6,
                            act: Activation::Relu,
                        },
                        LayerSpec::Dense {
                            inputs: 18,
                            outputs: 36,
                            act: Activation::Relu,
                        },
                    ],
                    sha256: [0; 32],
                },
            ],
        }
    }

    pub fn small() -> Bundle {
        let m = small_manifest();
        let w = weights_for(&m);
        Bundle::new(m, w).unwrap()
    }

    /// The manifest of the format's documented MNIST example.
    pub fn mnist_manifest() -> Manifest {
        let mut m = small_manifest();
        m.dataset = "mnist".into();
        m.input.shape = vec![1, 28, 28];
        m.output.shape = vec![1, 28, 28];
        m.normalisation = Normalisation {
            scale: 0.003921569,
            mean: 0.1307,
            std: 0.3081,
        };
        m.nets[0].name = "obfnet2-0".into();
        m.nets[0].layers = vec![
            LayerSpec::Dense {
                inputs: 784,
                outputs: 1000,
                act: Activation::Relu,
            },
            LayerSpec::Dense {
                inputs: 1000,
                outputs: 784,
                act: Activation::Relu,
            },
        ];
        m.nets[1].layers = vec![
            LayerSpec::Conv2d {
                in_channels: 1,
                out_channels: 4,
                kernel: 5,
                stride: 2,
                padding: 2,
                in_height: 28,
                in_width: 28,
                act: Activation::Relu,
            },
            LayerSpec::Dense {
                inputs: 784,
                outputs: 784,
                act: Activation::Relu,
            },
        ];
        m
    }

    pub fn mnist() -> Bundle {
        let m = mnist_manifest();
        let w = weights_for(&m);
        Bundle::new(m, w).unwrap()
    }

    /// Builds a container from its two variable sections, per FORMAT.md.
    /// The container version is taken from the manifest's first line (1 if it has none).
    pub fn assemble(manifest: &[u8], weights: &[u8]) -> Vec<u8> {
        let version: u32 = std::str::from_utf8(manifest)
            .ok()
            .and_then(|t| t.lines().next())
            .and_then(|l| l.strip_prefix("obfnet-bundle "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let mut out = b"OBFNBNDL".to_vec();
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
        out.extend_from_slice(manifest);
        out.extend_from_slice(&(weights.len() as u64).to_le_bytes());
        out.extend_from_slice(weights);
        let digest = sha256(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Splits a container into (manifest bytes, safetensors bytes), per FORMAT.md.
    pub fn sections(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let m = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let w = u64::from_le_bytes(bytes[16 + m..24 + m].try_into().unwrap()) as usize;
        (bytes[16..16 + m].to_vec(), bytes[24 + m..24 + m + w].to_vec())
    }

    /// Recomputes the trailer after an edit, as an attacker (or a bug) could.
    pub fn reseal(bytes: &mut [u8]) {
        let n = bytes.len() - 32;
        let digest = sha256(&bytes[..n]);
        bytes[n..].copy_from_slice(&digest);
    }

    /// Re-assembles a bundle after editing its manifest text.
    pub fn with_manifest(bytes: &[u8], edit: impl FnOnce(String) -> String) -> Vec<u8> {
        let (m, w) = sections(bytes);
        let text = edit(String::from_utf8(m).unwrap());
        assemble(text.as_bytes(), &w)
    }

    /// Re-assembles a bundle after editing its tensors.
    pub fn with_tensors(bytes: &[u8], edit: impl FnOnce(&mut Vec<(String, Tensor)>)) -> Vec<u8> {
        let (m, w) = sections(bytes);
        let mut tensors = safetensors::decode(&w).unwrap();
        edit(&mut tensors);
        assemble(&m, &safetensors::encode(&tensors).unwrap())
    }

    /// xorshift64: a tiny deterministic RNG for the fuzz loops (no `rand` dependency).
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }
}

mod round_trip {
    use super::common::*;
    use super::*;

    #[test]
    fn bytes_are_identical_after_decode_and_encode() {
        let bundle = small();
        let bytes = bundle.to_bytes().unwrap();
        let loaded = Bundle::from_bytes(&bytes).unwrap();
        assert_eq!(loaded, bundle);
        assert_eq!(loaded.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn documented_mnist_example() {
        let bundle = mnist();
        let bytes = bundle.to_bytes().unwrap();
        let loaded = Bundle::from_bytes(&bytes).unwrap();
        assert_eq!(loaded, bundle);
        assert_eq!(loaded.to_bytes().unwrap(), bytes);

        let text = loaded.manifest.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 15);
        assert_eq!(lines[0], "obfnet-bundle 1");
        assert_eq!(lines[4], "normalise scale=0.003921569 mean=0.1307 std=0.3081");
        assert!(lines[8].starts_with("net index=0 name=obfnet2-0 arch=obfnet2 seed=1000 layers=2 sha256="));
        assert_eq!(
            lines[12],
            "layer net=1 index=0 kind=conv2d in_ch=1 out_ch=4 kernel=5 stride=2 pad=2 in_h=28 in_w=28 act=relu"
        );
        assert_eq!(lines[14], "end");

        let (w, b) = loaded.layer_weights(0, 0).unwrap();
        assert_eq!((w.len(), b.len()), (784 * 1000, 1000));
        let t = loaded.tensor("net1.layer0.weight").unwrap();
        assert_eq!(t.shape, vec![4, 1, 5, 5]);
        assert_eq!(loaded.manifest.nets[1].layers[0].output_len(), 784);
        assert!(loaded.layer_weights(2, 0).is_none());
        assert!(loaded.layer_weights(0, 2).is_none());
    }

    #[test]
    fn manifest_text_round_trips() {
        let bundle = mnist();
        let text = bundle.manifest.to_text();
        let parsed = Manifest::parse(&text).unwrap();
        assert_eq!(parsed, bundle.manifest);
        assert_eq!(parsed.to_text(), text);
    }

    #[test]
    fn weights_survive_bit_exactly() {
        let bundle = small();
        let loaded = Bundle::from_bytes(&bundle.to_bytes().unwrap()).unwrap();
        for name in bundle.tensor_names() {
            let a = bundle.tensor(name).unwrap().as_f32().unwrap();
            let b = loaded.tensor(name).unwrap().as_f32().unwrap();
            assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()), "{name}");
        }
        assert_eq!(loaded.tensor_names().count(), 8);
    }

    #[test]
    fn server_model_is_checked() {
        let bundle = small();
        assert_eq!(bundle.expect_server_model(&SERVER), Ok(()));
        assert_eq!(
            bundle.expect_server_model(&[0; 32]),
            Err(Error::ServerModelMismatch {
                expected: [0; 32],
                found: SERVER
            })
        );
    }
}

mod layout {
    use super::common::*;
    use super::*;

    #[test]
    fn container_matches_the_documented_layout() {
        let bundle = small();
        let bytes = bundle.to_bytes().unwrap();
        assert_eq!(&bytes[..8], b"OBFNBNDL");
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
        let (m, w) = sections(&bytes);
        assert_eq!(m, bundle.manifest.to_text().into_bytes());
        assert_eq!(bytes.len(), 16 + m.len() + 8 + w.len() + 32);
        assert_eq!(bytes[bytes.len() - 32..], sha256(&bytes[..bytes.len() - 32]));
        assert_eq!(assemble(&m, &w), bytes);
    }

    #[test]
    fn weights_section_is_plain_safetensors_with_documented_names() {
        let bundle = small();
        let (_, w) = sections(&bundle.to_bytes().unwrap());
        // Header length is a multiple of 8 and the JSON is padded with spaces.
        let n = u64::from_le_bytes(w[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        assert!(w[8..8 + n].starts_with(b"{\"net0.layer0.bias\":{\"dtype\":\"F32\",\"shape\":[20]"));
        let tensors = safetensors::decode(&w).unwrap();
        let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "net0.layer0.bias",
                "net0.layer0.weight",
                "net0.layer1.bias",
                "net0.layer1.weight",
                "net1.layer0.bias",
                "net1.layer0.weight",
                "net1.layer1.bias",
                "net1.layer1.weight"
            ]
        );
        let shape = |name: &str| tensors.iter().find(|(n, _)| n == name).unwrap().1.shape.clone();
        assert_eq!(shape("net0.layer0.weight"), vec![20, 36]);
        assert_eq!(shape("net1.layer0.weight"), vec![2, 1, 3, 3]);
        assert_eq!(shape("net1.layer1.weight"), vec![36, 18]);
    }

    #[test]
    fn net_digest_covers_layers_in_order() {
        let bundle = small();
        let mut raw = Vec::new();
        for j in 0..2 {
            let (w, b) = bundle.layer_weights(1, j).unwrap();
            for x in w.iter().chain(b) {
                raw.extend_from_slice(&x.to_le_bytes());
            }
        }
        assert_eq!(bundle.manifest.nets[1].sha256, sha256(&raw));
    }
}

mod rejections {
    use super::common::*;
    use super::*;

    fn bytes() -> Vec<u8> {
        small().to_bytes().unwrap()
    }

    #[test]
    fn bad_magic() {
        let mut b = bytes();
        b[0] = b'X';
        assert!(matches!(Bundle::from_bytes(&b), Err(Error::BadMagic { .. })));
        assert!(matches!(
            Bundle::from_bytes(b"PK\x03\x04"),
            Err(Error::BadMagic { .. })
        ));
    }

    #[test]
    fn unsupported_version_is_named() {
        for resealed in [false, true] {
            let mut b = bytes();
            b[8..12].copy_from_slice(&4u32.to_le_bytes());
            if resealed {
                reseal(&mut b);
            }
            let err = Bundle::from_bytes(&b).unwrap_err();
            assert_eq!(
                err,
                Error::UnsupportedVersion {
                    found: 4,
                    oldest: 1,
                    newest: 3
                }
            );
            assert!(err.to_string().contains("version 4"));
        }
        // A known container version whose manifest says otherwise.
        let mut b = bytes();
        b[8..12].copy_from_slice(&2u32.to_le_bytes());
        reseal(&mut b);
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::VersionMismatch {
                container: 2,
                manifest: 1
            })
        );
        // The manifest's own version line is checked too.
        let b = with_manifest(&bytes(), |t| t.replacen("obfnet-bundle 1", "obfnet-bundle 9", 1));
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::UnsupportedVersion {
                found: 9,
                oldest: 1,
                newest: 3
            })
        );
    }

    #[test]
    fn truncated_at_every_offset() {
        let b = bytes();
        for cut in 0..b.len() {
            match Bundle::from_bytes(&b[..cut]) {
                Err(Error::Truncated { needed, available }) => {
                    assert_eq!(available, cut);
                    assert!(needed > cut);
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn flipped_byte_anywhere_is_rejected() {
        let b = bytes();
        let m = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
        for i in 0..b.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut t = b.clone();
                t[i] ^= mask;
                let err = Bundle::from_bytes(&t).unwrap_err();
                let ok = match i {
                    0..8 => matches!(err, Error::BadMagic { .. }),
                    8..12 => matches!(err, Error::UnsupportedVersion { .. }),
                    _ if (12..16).contains(&i) || (16 + m..24 + m).contains(&i) => matches!(
                        err,
                        Error::TooLarge { .. } | Error::Truncated { .. } | Error::TrailingBytes { .. }
                    ),
                    _ => matches!(err, Error::IntegrityMismatch { .. }),
                };
                assert!(ok, "byte {i} ^ {mask:#x}: {err:?}");
            }
        }
    }

    #[test]
    fn trailing_bytes() {
        let mut b = bytes();
        let len = b.len();
        b.push(0);
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::TrailingBytes {
                expected: len,
                found: len + 1
            })
        );
    }

    #[test]
    fn oversized_manifest_length() {
        let mut b = bytes();
        b[12..16].copy_from_slice(&((1u32 << 20) + 1).to_le_bytes());
        assert!(matches!(
            Bundle::from_bytes(&b),
            Err(Error::TooLarge {
                what: "manifest length",
                found: 1_048_577,
                limit: 1_048_576
            })
        ));
    }

    #[test]
    fn tampered_shape_with_recomputed_trailer() {
        // Chaining still holds (36 -> 21 -> 36) but the tensors are 20 wide.
        let b = with_manifest(&bytes(), |t| {
            t.replacen("in=36 out=20", "in=36 out=21", 1)
                .replacen("in=20 out=36", "in=21 out=36", 1)
        });
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::ShapeMismatch {
                tensor: "net0.layer0.weight".into(),
                expected: vec![21, 36],
                found: vec![20, 36],
            })
        );
        // Same output size (3x3) with a 5x5 kernel and padding 2.
        let b = with_manifest(&bytes(), |t| {
            t.replacen("kernel=3 stride=2 pad=1", "kernel=5 stride=2 pad=2", 1)
        });
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::ShapeMismatch {
                tensor: "net1.layer0.weight".into(),
                expected: vec![2, 1, 5, 5],
                found: vec![2, 1, 3, 3],
            })
        );
    }

    #[test]
    fn weights_changed_with_recomputed_trailer() {
        let b = with_tensors(&bytes(), |ts| {
            let (_, t) = ts.iter_mut().find(|(n, _)| n == "net1.layer1.bias").unwrap();
            if let TensorData::F32(v) = &mut t.data {
                v[3] += 1.0;
            }
        });
        assert_eq!(Bundle::from_bytes(&b), Err(Error::DigestMismatch { net: 1 }));

        // A single flipped low bit in the data section, resealed.
        let mut b = bytes();
        let n = b.len();
        b[n - 33] ^= 1;
        reseal(&mut b);
        assert!(matches!(
            Bundle::from_bytes(&b),
            Err(Error::DigestMismatch { .. })
        ));
    }

    #[test]
    fn layer_chaining_mismatch() {
        let b = with_manifest(&bytes(), |t| t.replacen("in=20 out=36", "in=21 out=36", 1));
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::LayerChain {
                net: 0,
                layer: 1,
                expected: 20,
                found: 21
            })
        );
        let b = with_manifest(&bytes(), |t| t.replacen("in=18 out=36", "in=18 out=35", 1));
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::NetOutput {
                net: 1,
                expected: 36,
                found: 35
            })
        );

        let mut m = small_manifest();
        m.nets[1].layers[0] = LayerSpec::Conv2d {
            in_channels: 1,
            out_channels: 2,
            kernel: 3,
            stride: 1,
            padding: 1,
            in_height: 6,
            in_width: 6,
            act: Activation::Relu,
        };
        assert_eq!(
            Bundle::new(m, vec![]).unwrap_err(),
            Error::LayerChain {
                net: 1,
                layer: 1,
                expected: 72,
                found: 18
            }
        );
    }

    #[test]
    fn missing_tensor() {
        let b = with_tensors(&bytes(), |ts| ts.retain(|(n, _)| n != "net0.layer1.bias"));
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::MissingTensor {
                tensor: "net0.layer1.bias".into()
            })
        );
    }

    #[test]
    fn extra_tensor() {
        let b = with_tensors(&bytes(), |ts| {
            ts.push((
                "net2.layer0.weight".into(),
                Tensor {
                    shape: vec![1],
                    data: TensorData::F32(vec![0.0]),
                },
            ))
        });
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::UnexpectedTensor {
                tensor: "net2.layer0.weight".into()
            })
        );
    }

    #[test]
    fn wrong_dtype() {
        let b = with_tensors(&bytes(), |ts| {
            let (_, t) = ts.iter_mut().find(|(n, _)| n == "net0.layer0.bias").unwrap();
            t.data = TensorData::I8(vec![0; 20]);
        });
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::DTypeMismatch {
                tensor: "net0.layer0.bias".into(),
                expected: DType::F32,
                found: DType::I8
            })
        );
    }

    #[test]
    fn non_finite_weights() {
        // Even with a manifest digest that matches, NaN parameters are refused.
        let b = with_tensors(&bytes(), |ts| {
            let (_, t) = ts.iter_mut().find(|(n, _)| n == "net0.layer1.weight").unwrap();
            if let TensorData::F32(v) = &mut t.data {
                v[7] = f32::INFINITY;
            }
        });
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::NonFinite {
                tensor: "net0.layer1.weight".into(),
                index: 7
            })
        );
    }

    #[test]
    fn manifest_not_utf8() {
        let (m, w) = sections(&bytes());
        let mut m = m;
        m[20] = 0xff;
        assert!(matches!(
            Bundle::from_bytes(&assemble(&m, &w)),
            Err(Error::ManifestNotUtf8 { valid_up_to: 20 })
        ));
    }

    #[test]
    fn unknown_manifest_key_is_rejected() {
        let b = with_manifest(&bytes(), |t| {
            t.replacen("dtype=f32\n", "dtype=f32 layout=nchw\n", 1)
        });
        match Bundle::from_bytes(&b) {
            Err(Error::Manifest { line: 4, reason }) => assert!(reason.contains("unknown key `layout`")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn broken_weights_section() {
        let (m, mut w) = sections(&bytes());
        w.push(0);
        assert!(matches!(
            Bundle::from_bytes(&assemble(&m, &w)),
            Err(Error::UncoveredData { .. })
        ));
    }
}

mod fuzz {
    use super::common::*;
    use super::*;

    /// Mutates `seed` in one of several ways: truncation, bit flips, byte overwrites,
    /// insertions, deletions or pure noise.
    fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
        let mut b = seed.to_vec();
        match rng.below(6) {
            0 => b.truncate(rng.below(seed.len())),
            1 => {
                for _ in 0..=rng.below(3) {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
            }
            2 => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            3 => {
                let i = rng.below(b.len());
                b.insert(i, rng.next() as u8);
            }
            4 => {
                let i = rng.below(b.len());
                b.remove(i);
            }
            _ => b = (0..rng.below(96)).map(|_| rng.next() as u8).collect(),
        }
        b
    }

    /// No decoder may panic on any input. Mutations are also applied *with a recomputed
    /// trailer*, so that the manifest and safetensors decoders behind the integrity check are
    /// exercised too.
    #[test]
    fn decoders_never_panic() {
        let bytes = small().to_bytes().unwrap();
        let (manifest, weights) = sections(&bytes);
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut accepted = 0;
        for _ in 0..4_000 {
            // Whole container.
            let _ = Bundle::from_bytes(&mutate(&mut rng, &bytes));
            // Manifest text behind a valid trailer.
            let m = mutate(&mut rng, &manifest);
            if let Ok(text) = std::str::from_utf8(&m) {
                let _ = Manifest::parse(text);
            }
            accepted += usize::from(Bundle::from_bytes(&assemble(&m, &weights)).is_ok());
            // Weights behind a valid trailer.
            let w = mutate(&mut rng, &weights);
            let _ = safetensors::decode(&w);
            accepted += usize::from(Bundle::from_bytes(&assemble(&manifest, &w)).is_ok());
        }
        // A mutation may be harmless (e.g. a flipped bit in a name token), but not often.
        assert!(accepted < 400, "{accepted} mutated bundles were accepted");
    }

    /// Structured noise: manifest lines assembled from valid vocabulary in random order.
    #[test]
    fn manifest_parser_never_panics_on_token_soup() {
        let vocab = [
            "obfnet-bundle",
            "1",
            "net",
            "layer",
            "end",
            "nets",
            "index=0",
            "kind=dense",
            "kind=conv2d",
            "in=",
            "out=99999999999999999999",
            "shape=1,,2",
            "act=relu",
            "sha256=",
            "=",
            "==",
            "\u{e9}",
            "net=0",
            "pad=1048577",
            "stride=0",
            "kernel=0",
            "in_h=1",
            "in_w=1",
            "in_ch=1",
            "out_ch=1",
        ];
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..rng.below(40) {
                match rng.below(8) {
                    0 => text.push('\n'),
                    1 => text.push(' '),
                    _ => text.push_str(vocab[rng.below(vocab.len())]),
                }
            }
            let _ = Manifest::parse(&text);
        }
    }
}

mod errors {
    use super::common::*;
    use super::*;

    #[test]
    fn messages_are_specific() {
        let b = small().to_bytes().unwrap();
        let cut = b.len() - 1;
        let err = Bundle::from_bytes(&b[..cut]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "input is truncated: {} bytes are needed but only {cut} are present",
                b.len()
            )
        );
        let err = small().expect_server_model(&[0; 32]).unwrap_err().to_string();
        assert!(err.contains(&obfnet_core::hex(&SERVER)), "{err}");
        let e: Box<dyn std::error::Error> = Box::new(Error::DigestMismatch { net: 3 });
        assert_eq!(
            e.to_string(),
            "the weights of net 3 do not match the sha256 recorded in the manifest"
        );
    }
}

mod int8 {
    use super::common::*;
    use obfnet_core::runtime::{Runtime, Wire};
    use obfnet_core::*;

    #[test]
    fn quantised_bundle_round_trips_as_version_2() {
        let f32_bundle = small();
        let q = f32_bundle.quantize_int8().unwrap();
        assert_eq!((q.manifest.format_version, q.manifest.weights), (2, DType::I8));
        let bytes = q.to_bytes().unwrap();
        assert_eq!(&bytes[8..12], &2u32.to_le_bytes());
        let (m, _) = sections(&bytes);
        assert!(String::from_utf8(m).unwrap().contains("\nweights dtype=i8\n"));
        assert_eq!(Bundle::from_bytes(&bytes).unwrap(), q);
        // The f32 bundle it came from is still written as version 1.
        assert_eq!(&f32_bundle.to_bytes().unwrap()[8..12], &1u32.to_le_bytes());
        assert!(q.quantize_int8().is_err());
    }

    #[test]
    fn int8_weights_are_within_half_a_step() {
        let f = small();
        let q = f.quantize_int8().unwrap();
        for (i, net) in f.manifest.nets.iter().enumerate() {
            for j in 0..net.layers.len() {
                let Some(LayerParams::F32 { weight: w, bias: b }) = f.layer_params(i, j) else {
                    panic!("f32 params")
                };
                let Some(LayerParams::I8 {
                    weight: qw,
                    scale,
                    bias: qb,
                }) = q.layer_params(i, j)
                else {
                    panic!("int8 params")
                };
                assert_eq!(b, qb);
                let per_row = w.len() / scale.len();
                for (k, (&x, &v)) in w.iter().zip(qw).enumerate() {
                    let s = scale[k / per_row];
                    assert!(v != -128 && (f32::from(v) * s - x).abs() <= s / 2.0 + 1e-7);
                }
                // Each row's largest weight maps to +-127.
                for row in qw.chunks(per_row) {
                    assert_eq!(row.iter().map(|v| v.unsigned_abs()).max(), Some(127));
                }
            }
        }
    }

    #[test]
    fn tampered_int8_tensors_are_rejected() {
        let bytes = small().quantize_int8().unwrap().to_bytes().unwrap();
        // A non-positive scale.
        let b = with_tensors(&bytes, |t| {
            let (_, scale) = t
                .iter_mut()
                .find(|(n, _)| n == "net0.layer1.weight_scale")
                .unwrap();
            scale.data = TensorData::F32(vec![0.0; scale.numel()]);
        });
        assert_eq!(
            Bundle::from_bytes(&b),
            Err(Error::InvalidScale {
                tensor: "net0.layer1.weight_scale".into(),
                index: 0
            })
        );
        // A changed scale is caught by the digest, which covers the scales.
        let b = with_tensors(&bytes, |t| {
            let (_, scale) = t
                .iter_mut()
                .find(|(n, _)| n == "net1.layer0.weight_scale")
                .unwrap();
            if let TensorData::F32(v) = &mut scale.data {
                v[0] *= 2.0;
            }
        });
        assert_eq!(Bundle::from_bytes(&b), Err(Error::DigestMismatch { net: 1 }));
        // A missing scale.
        let b = with_tensors(&bytes, |t| t.retain(|(n, _)| n != "net0.layer0.weight_scale"));
        assert!(matches!(Bundle::from_bytes(&b), Err(Error::MissingTensor { .. })));
        // int8 tensors under a version 1 manifest.
        let b = with_manifest(&bytes, |m| {
            m.replacen("obfnet-bundle 2", "obfnet-bundle 1", 1)
                .replacen("weights dtype=i8\n", "", 1)
        });
        assert!(matches!(
            Bundle::from_bytes(&b),
            Err(Error::DTypeMismatch { .. } | Error::UnexpectedTensor { .. })
        ));
    }

    /// A plain reference forward pass written from FORMAT.md, independent of the runtime.
    fn reference(bundle: &Bundle, net: usize, raw: &[u8]) -> Vec<f32> {
        let m = &bundle.manifest;
        let mut x: Vec<f32> = raw.iter().map(|&r| m.normalisation.apply(r)).collect();
        for (j, layer) in m.nets[net].layers.iter().enumerate() {
            let Some(LayerParams::F32 { weight, bias }) = bundle.layer_params(net, j) else {
                panic!("f32")
            };
            let mut y = vec![0.0f32; layer.output_len()];
            match *layer {
                LayerSpec::Dense { inputs, .. } => {
                    for (o, yo) in y.iter_mut().enumerate() {
                        *yo = bias[o] + (0..inputs).map(|i| weight[o * inputs + i] * x[i]).sum::<f32>();
                    }
                }
                LayerSpec::Conv2d {
                    in_channels,
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    in_height,
                    in_width,
                    ..
                } => {
                    let shape = layer.output_shape();
                    let (oh, ow) = (shape[1], shape[2]);
                    for oc in 0..out_channels {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let mut acc = bias[oc];
                                for ic in 0..in_channels {
                                    for ky in 0..kernel {
                                        for kx in 0..kernel {
                                            let iy = (oy * stride + ky) as isize - padding as isize;
                                            let ix = (ox * stride + kx) as isize - padding as isize;
                                            if iy < 0
                                                || ix < 0
                                                || iy >= in_height as isize
                                                || ix >= in_width as isize
                                            {
                                                continue;
                                            }
                                            let xi = (ic * in_height + iy as usize) * in_width + ix as usize;
                                            let wi = ((oc * in_channels + ic) * kernel + ky) * kernel + kx;
                                            acc += weight[wi] * x[xi];
                                        }
                                    }
                                }
                                y[(oc * oh + oy) * ow + ox] = acc;
                            }
                        }
                    }
                }
            }
            let n = m.normalisation;
            match layer.activation() {
                Activation::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
                Activation::Clip => y.iter_mut().for_each(|v| *v = v.clamp(n.apply(0), n.apply(255))),
                _ => {}
            }
            x = y;
        }
        x
    }

    /// `mnist()` with the clip activation on the last layer of every net (format version 2).
    fn clipped() -> Bundle {
        let mut m = mnist_manifest();
        for net in &mut m.nets {
            if let Some(LayerSpec::Dense { act, .. }) = net.layers.last_mut() {
                *act = Activation::Clip;
            }
        }
        let w = weights_for(&m);
        Bundle::new(m, w).unwrap()
    }

    #[test]
    fn clip_bundles_are_version_2_and_clip() {
        let b = clipped();
        assert_eq!(b.manifest.format_version, 2);
        let bytes = b.to_bytes().unwrap();
        assert_eq!(&bytes[8..12], &2u32.to_le_bytes());
        let rt = Runtime::from_bytes(&bytes).unwrap();
        let n = b.manifest.normalisation;
        let mut s = rt.scratch();
        let mut out = vec![0.0; 784];
        let mut hit_top = false;
        for seed in 0..20u64 {
            let mut rng = Rng(seed + 1);
            let raw: Vec<u8> = (0..784).map(|_| rng.next() as u8).collect();
            rt.run_raw(0, &raw, &mut out, &mut s).unwrap();
            assert!(out.iter().all(|&v| (n.apply(0)..=n.apply(255)).contains(&v)));
            hit_top |= out.contains(&n.apply(255));
        }
        assert!(hit_top, "the fixture's outputs never reach the clip");
    }

    #[test]
    fn runtime_matches_a_reference_forward_pass() {
        // The tolerance is relative to the unclipped outputs' size (clipping hides how large the
        // pre-activations, and so the rounding differences, are); clipped() has mnist()'s weights.
        for (bundle, unclipped) in [(small(), small()), (mnist(), mnist()), (clipped(), mnist())] {
            let rt = Runtime::from_bundle(&bundle).unwrap();
            let mut rng = Rng(5);
            let raw: Vec<u8> = (0..rt.input_len()).map(|_| rng.next() as u8).collect();
            let mut scratch = rt.scratch();
            let mut out = vec![0.0; rt.output_len()];
            for net in 0..rt.k() {
                rt.run_raw(net, &raw, &mut out, &mut scratch).unwrap();
                let want = reference(&bundle, net, &raw);
                let scale = reference(&unclipped, net, &raw);
                let worst = out
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                let peak = scale.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(worst <= 1e-5 * peak.max(1.0), "net {net}: {worst} (peak {peak})");
                // The f32 entry point on normalised input gives the same bits.
                let x: Vec<f32> = raw
                    .iter()
                    .map(|&r| bundle.manifest.normalisation.apply(r))
                    .collect();
                let mut out2 = vec![0.0; rt.output_len()];
                rt.run_f32(net, &x, &mut out2, &mut scratch).unwrap();
                assert_eq!(out, out2);
            }
        }
    }

    #[test]
    fn int8_runtime_tracks_f32() {
        let f = mnist();
        let (rf, rq) = (
            Runtime::from_bundle(&f).unwrap(),
            Runtime::from_bundle(&f.quantize_int8().unwrap()).unwrap(),
        );
        assert_eq!(rq.weights(), DType::I8);
        assert!(rq.nets()[0].param_bytes * 3 < rf.nets()[0].param_bytes);
        let mut rng = Rng(11);
        let raw: Vec<u8> = (0..784).map(|_| rng.next() as u8).collect();
        let x: Vec<f32> = raw.iter().map(|&r| f.manifest.normalisation.apply(r)).collect();
        let mut s = rf.scratch();
        let (mut a, mut b, mut c) = (vec![0.0; 784], vec![0.0; 784], vec![0.0; 784]);
        for net in 0..2 {
            rf.run_raw(net, &raw, &mut a, &mut s).unwrap();
            rq.run_raw(net, &raw, &mut b, &mut s).unwrap();
            rq.run_f32(net, &x, &mut c, &mut s).unwrap();
            for other in [&b, &c] {
                let err: f32 = a.iter().zip(other).map(|(p, q)| (p - q) * (p - q)).sum();
                let sig: f32 = a.iter().map(|p| p * p).sum();
                let sqnr = 10.0 * (sig / err.max(1e-30)).log10();
                assert!(sqnr > 30.0, "net {net}: SQNR {sqnr:.1} dB");
            }
        }
        // Both wire encodings: u8 has the raw image's size.
        let mut w = Vec::new();
        Wire::U8.encode(&a, rf.normalisation(), &mut w);
        assert_eq!(w.len(), raw.len());
        w.clear();
        Wire::F32.encode(&a, rf.normalisation(), &mut w);
        assert_eq!(w.len(), 4 * raw.len());
    }
}

mod output_noise {
    use super::common::*;
    use super::*;
    use obfnet_core::OutputNoise;
    use obfnet_core::runtime::{NetChoice, RandomSource, Runtime, SeededRandom};

    fn noisy(sigma: f32) -> Bundle {
        small().with_output_noise(Some(OutputNoise { sigma })).unwrap()
    }

    #[test]
    fn noise_needs_format_3_and_round_trips_through_bytes() {
        let b = noisy(0.05);
        assert_eq!(b.manifest.format_version, 3);
        let text = b.manifest.to_text();
        assert!(
            text.contains("\noutput-noise kind=irwin-hall12 sigma=0.05\n"),
            "{text}"
        );
        let back = Bundle::from_bytes(&b.to_bytes().unwrap()).unwrap();
        assert_eq!(back.manifest.output_noise, Some(OutputNoise { sigma: 0.05 }));
        // int8 keeps it; removing it goes back to the oldest version that fits
        assert_eq!(
            b.quantize_int8().unwrap().manifest.output_noise,
            Some(OutputNoise { sigma: 0.05 })
        );
        let plain = b.with_output_noise(None).unwrap();
        assert_eq!(plain.manifest.format_version, 1);
        assert_eq!(plain.manifest.output_noise, None);
        // a version-2 manifest cannot carry the record, a bad sigma is refused at parse and build
        let bad = text.replacen("obfnet-bundle 3", "obfnet-bundle 2", 1);
        assert!(Manifest::parse(&bad).is_err());
        let bad = text.replacen("sigma=0.05", "sigma=-1", 1);
        assert!(Manifest::parse(&bad).is_err());
        assert!(
            small()
                .with_output_noise(Some(OutputNoise { sigma: f32::NAN }))
                .is_err()
        );
        let mut m = small_manifest();
        m.format_version = 3;
        let t = m.to_text();
        assert!(t.contains("\noutput-noise kind=none\n"), "{t}");
        assert_eq!(Manifest::parse(&t).unwrap().output_noise, None);
    }

    /// A random source that replays one generator twice: the first copy chooses the net and
    /// draws the noise inside `obfuscate`; the test replays the same words by hand.
    fn expected_noise(seed: u64, len: usize, sigma: f32, std: f32) -> Vec<f32> {
        let mut rng = SeededRandom::new(seed);
        // the net choice consumed words first: replay it exactly as obfuscate does
        let k = 2;
        let _ = obfnet_core::runtime::uniform_index(&mut rng, k).unwrap();
        let mut bytes = vec![0u8; len * 48];
        RandomSource::fill_bytes(&mut rng, &mut bytes).unwrap();
        bytes
            .chunks_exact(48)
            .map(|c| {
                let mut w = [0u32; 12];
                for (x, b) in w.iter_mut().zip(c.chunks_exact(4)) {
                    *x = u32::from_le_bytes(b.try_into().unwrap());
                }
                sigma / std * OutputNoise::standard(&w)
            })
            .collect()
    }

    #[test]
    fn obfuscate_adds_the_bundles_noise_with_a_random_choice_only() {
        for bundle in [noisy(0.2), noisy(0.2).quantize_int8().unwrap()] {
            let rt = Runtime::from_bundle(&bundle).unwrap();
            assert_eq!(rt.output_noise(), Some(OutputNoise { sigma: 0.2 }));
            let raw: Vec<u8> = (0..rt.input_len()).map(|i| (i * 7) as u8).collect();
            let mut scratch = rt.scratch();
            let (mut clean, mut sent) = (vec![0.0; rt.output_len()], vec![0.0; rt.output_len()]);
            let mut rng = SeededRandom::new(42);
            let net = rt
                .obfuscate(&raw, NetChoice::Random(&mut rng), &mut sent, &mut scratch)
                .unwrap();
            rt.run_raw(net, &raw, &mut clean, &mut scratch).unwrap();
            let want = expected_noise(42, rt.output_len(), 0.2, Normalisation::MNIST.std);
            for ((s, c), n) in sent.iter().zip(&clean).zip(&want) {
                assert!((s - (c + n)).abs() <= 1e-6 * (1.0 + c.abs()), "{s} vs {c} + {n}");
            }
            assert!(want.iter().any(|n| n.abs() > 0.01), "the noise is not zero");
            // a fixed choice is the deterministic net
            rt.obfuscate(&raw, NetChoice::Fixed(net), &mut sent, &mut scratch)
                .unwrap();
            assert_eq!(sent, clean);
            // the noise law over many draws: deviation σ / std in the model's units
            let mut out = vec![0.0; 36];
            let mut diffs = Vec::new();
            for _ in 0..2000 {
                out.copy_from_slice(&clean);
                rt.add_output_noise(&mut out, &mut rng).unwrap();
                diffs.extend(out.iter().zip(&clean).map(|(a, b)| f64::from(a - b)));
            }
            let n = diffs.len() as f64;
            let sd = (diffs.iter().map(|d| d * d).sum::<f64>() / n).sqrt();
            let target = f64::from(0.2 / Normalisation::MNIST.std);
            assert!((sd / target - 1.0).abs() < 0.03, "sd {sd} vs {target}");
            assert!(rt.add_output_noise(&mut out[..3], &mut rng).is_err());
        }
    }
}
