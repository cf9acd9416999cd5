//! Fuzz targets over every decoder that takes untrusted bytes, shared by the `cargo fuzz`
//! targets in `fuzz/` (libFuzzer, nightly) and by the bounded property tests in CI
//! (`tests/fuzz_props.rs`, a seeded mutator over valid seeds — [`run`]).
//!
//! Each target decodes arbitrary bytes and checks the invariants a successful decode must
//! hold (round trips, element counts, finiteness). A target panics only on a bug: a decoder
//! panic, or a violated invariant.
//!
//! Not a public API (hidden from the docs); it lives here so that both harnesses run the same
//! bodies.

use obfnet_core::{
    Activation, Bundle, DType, LayerSpec, LayerWeights, Manifest, NetSpec, Normalisation, TensorSpec,
};

use crate::InferenceBackend;
use crate::backend::{ModelSpec, NoopBackend};

/// A fuzz target: a name (also the `fuzz/fuzz_targets/<name>.rs` file and corpus folder), its
/// body, and the valid inputs mutation starts from.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Name.
    pub name: &'static str,
    /// Runs one input.
    pub body: fn(&[u8]),
    /// Valid seed inputs.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "bundle",
        body: bundle,
        seeds: bundle_seeds,
    },
    Target {
        name: "safetensors",
        body: safetensors,
        seeds: safetensors_seeds,
    },
    Target {
        name: "manifest",
        body: manifest,
        seeds: manifest_seeds,
    },
    Target {
        name: "idx",
        body: idx,
        seeds: idx_seeds,
    },
    Target {
        name: "wav",
        body: wav,
        seeds: wav_seeds,
    },
    Target {
        name: "oip_json",
        body: oip_rest,
        seeds: oip_json_seeds,
    },
    Target {
        name: "oip_binary",
        body: oip_rest,
        seeds: oip_binary_seeds,
    },
    Target {
        name: "grpc_request",
        body: grpc_request,
        seeds: grpc_seeds,
    },
    Target {
        name: "mqtt_payload",
        body: mqtt_payload,
        seeds: mqtt_seeds,
    },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn spec() -> ModelSpec {
    NoopBackend::default().spec()
}

/// Most images a fuzzed request may carry (small, so that a decode is cheap).
const MAX_ROWS: usize = 4;

fn tiny_bundle() -> Bundle {
    let manifest = Manifest {
        format_version: obfnet_core::FORMAT_VERSION,
        created_by: "obfnet-fuzz".into(),
        dataset: "toy".into(),
        input: TensorSpec {
            shape: vec![1, 4, 4],
            dtype: DType::F32,
        },
        normalisation: Normalisation::MNIST,
        output: TensorSpec {
            shape: vec![1, 4, 4],
            dtype: DType::F32,
        },
        weights: DType::F32,
        output_noise: None,
        server_model_sha256: obfnet_core::sha256(b"fuzz server model"),
        nets: vec![NetSpec {
            name: "tiny-0".into(),
            arch: "obfnet2".into(),
            seed: 1,
            layers: vec![
                LayerSpec::Dense {
                    inputs: 16,
                    outputs: 8,
                    act: Activation::Relu,
                },
                LayerSpec::Dense {
                    inputs: 8,
                    outputs: 16,
                    act: Activation::None,
                },
            ],
            sha256: [0; 32],
        }],
    };
    let weights = vec![vec![
        LayerWeights {
            weight: (0..128).map(|i| i as f32 * 0.01 - 0.6).collect(),
            bias: vec![0.1; 8],
        },
        LayerWeights {
            weight: (0..128).map(|i| 0.3 - i as f32 * 0.005).collect(),
            bias: vec![-0.2; 16],
        },
    ]];
    #[allow(clippy::expect_used)]
    Bundle::new(manifest, weights).expect("the fuzz seed bundle is valid")
}

/// Bundle loader: a bundle that loads re-serialises to bytes that load to the same bundle.
pub fn bundle(data: &[u8]) {
    bundle_as_given(data);
    // The sha256 trailer rejects almost every mutant at once; with the trailer recomputed the
    // mutants also reach the manifest parser, the section checks and the runtime.
    if let Some(body) = data.len().checked_sub(32).and_then(|n| data.get(..n)) {
        let mut fixed = body.to_vec();
        fixed.extend_from_slice(&obfnet_core::sha256(body));
        bundle_as_given(&fixed);
    }
}

fn bundle_as_given(data: &[u8]) {
    // Compared as bytes (NaN weights would make a value comparison fail).
    if let Ok(b) = Bundle::from_bytes(data) {
        let once = b.to_bytes();
        let twice = once
            .as_ref()
            .ok()
            .and_then(|bytes| Bundle::from_bytes(bytes).ok())
            .map(|c| c.to_bytes());
        assert!(
            matches!((&once, &twice), (Ok(a), Some(Ok(b))) if a == b),
            "a loaded bundle does not round-trip"
        );
        run_every_net(&b);
    }
}

/// Memory budget of the fuzzed runtime: what a small device might grant (a hostile bundle that
/// declares more must be refused with a typed error, not allocated).
const FUZZ_RUNTIME_BUDGET: usize = 16 << 20;

/// Prepares the edge runtime from a bundle that parsed and, when it is accepted within the
/// budget, runs every net once on a blank sample: every outcome must be a value or a typed error.
fn run_every_net(b: &Bundle) {
    let cfg = obfnet_core::runtime::RuntimeConfig::new(FUZZ_RUNTIME_BUDGET);
    let Ok(rt) = obfnet_core::runtime::Runtime::from_bundle_with(b, &cfg) else {
        return;
    };
    let raw = vec![0u8; rt.input_len()];
    let mut out = vec![0.0f32; rt.output_len()];
    let mut scratch = rt.scratch();
    for net in 0..rt.k() {
        let _ = rt.run_raw(net, &raw, &mut out, &mut scratch);
    }
}

fn bundle_seeds() -> Vec<Vec<u8>> {
    let b = tiny_bundle();
    let mut seeds = Vec::new();
    if let Ok(bytes) = b.to_bytes() {
        seeds.push(bytes);
    }
    if let Ok(q) = b.quantize_int8().and_then(|q| q.to_bytes()) {
        seeds.push(q);
    }
    seeds
}

/// safetensors: decoded tensors re-encode and decode to the same tensors.
pub fn safetensors(data: &[u8]) {
    use obfnet_core::safetensors::{decode, encode};
    if let Ok(t) = decode(data) {
        let once = encode(&t);
        let twice = once
            .as_ref()
            .ok()
            .and_then(|b| decode(b).ok())
            .map(|u| encode(&u));
        assert!(
            matches!((&once, &twice), (Ok(a), Some(Ok(b))) if a == b),
            "decoded safetensors do not round-trip"
        );
    }
}

fn safetensors_seeds() -> Vec<Vec<u8>> {
    let b = tiny_bundle();
    let tensors: Vec<_> = b
        .tensor_names()
        .filter_map(|n| b.tensor(n).map(|t| (n.to_string(), t.clone())))
        .collect();
    obfnet_core::safetensors::encode(&tensors).into_iter().collect()
}

/// Manifest text: a parsed manifest prints to text that parses to the same manifest.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = Manifest::parse(&text) {
        let text = m.to_text();
        let again = Manifest::parse(&text).map(|n| n.to_text());
        assert!(
            matches!(&again, Ok(t) if *t == text),
            "a parsed manifest does not round-trip"
        );
    }
}

fn manifest_seeds() -> Vec<Vec<u8>> {
    vec![tiny_bundle().manifest.to_text().into_bytes()]
}

/// IDX images and labels: what parses has the element count its header claims.
pub fn idx(data: &[u8]) {
    if let Ok((n, rows, cols, pixels)) = obfnet_data::parse_idx_images(data) {
        assert_eq!(
            n.checked_mul(rows).and_then(|x| x.checked_mul(cols)),
            Some(pixels.len())
        );
        let again = obfnet_data::parse_idx_images(&obfnet_data::encode_idx_images(rows, cols, &pixels));
        assert!(
            matches!(&again, Ok((m, r, c, p)) if (*m, *r, *c) == (n, rows, cols) && *p == pixels),
            "IDX images do not round-trip"
        );
    }
    let _ = obfnet_data::parse_idx_labels(data);
}

fn idx_seeds() -> Vec<Vec<u8>> {
    let pixels: Vec<u8> = (0..2 * 28 * 28).map(|i| (i * 7 % 256) as u8).collect();
    vec![
        obfnet_data::encode_idx_images(28, 28, &pixels),
        obfnet_data::encode_idx_labels(&[3, 1, 4, 1, 5]),
    ]
}

/// WAV: what parses re-encodes and parses to the same audio.
pub fn wav(data: &[u8]) {
    if let Ok(w) = obfnet_data::parse_wav(data) {
        let again = w.to_bytes().map(|b| obfnet_data::parse_wav(&b));
        assert!(
            matches!(&again, Ok(Ok(v)) if *v == w),
            "a parsed WAV does not round-trip"
        );
    }
}

fn wav_seeds() -> Vec<Vec<u8>> {
    let w = obfnet_data::Wav {
        sample_rate: 8000,
        samples: (0..400).map(|i| ((i * 97) % 2000) as i16 - 1000).collect(),
    };
    w.to_bytes().into_iter().collect()
}

fn check_model_input(x: &[f32]) {
    let d = spec().input_dim();
    assert!(
        !x.is_empty() && x.len().is_multiple_of(d) && x.len() <= MAX_ROWS * d,
        "{} values",
        x.len()
    );
    assert!(
        x.iter().all(|v| v.is_finite()),
        "a non-finite value reached the model"
    );
}

/// Splits fuzz input into an optional `Inference-Header-Content-Length` and a body: a first
/// byte `b` with the low bit set means the next two bytes (LE) give the length.
fn split_header_len(data: &[u8]) -> (Option<usize>, &[u8]) {
    match data {
        [b, lo, hi, rest @ ..] if b & 1 == 1 => (Some(usize::from(u16::from_le_bytes([*lo, *hi]))), rest),
        [_, rest @ ..] => (None, rest),
        [] => (None, data),
    }
}

/// The OIP REST body decoder (JSON, and the binary extension when a header length is given).
pub fn oip_rest(data: &[u8]) {
    let (header_len, body) = split_header_len(data);
    if let Ok(x) = crate::rest::decode_to_model_input(&spec(), MAX_ROWS, body, header_len) {
        check_model_input(&x);
    }
}

fn oip_json_seeds() -> Vec<Vec<u8>> {
    let img: Vec<u8> = (0..784u32).map(|i| (i * 13 % 256) as u8).collect();
    let f: Vec<f32> = img.iter().map(|&b| f32::from(b) / 255.0 - 0.5).collect();
    let bodies = [
        serde_json::json!({"id": "a", "inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "data": img}]}),
        serde_json::json!({"inputs": [{"name": "input", "shape": [28, 28], "datatype": "FP32", "data": f.chunks(28).collect::<Vec<_>>()}],
            "outputs": [{"name": "label", "parameters": {"binary_data": true}}], "parameters": {"binary_data_output": false}}),
    ];
    bodies
        .iter()
        .filter_map(|b| serde_json::to_vec(b).ok())
        .map(|b| [&[0u8][..], &b].concat())
        .collect()
}

fn binary_body(datatype: &str, raw: &[u8]) -> Vec<u8> {
    let header = serde_json::json!({"inputs": [{"name": "input", "shape": [1, 784], "datatype": datatype,
        "parameters": {"binary_data_size": raw.len()}}], "outputs": [{"name": "probabilities", "parameters": {"binary_data": true}}]});
    let h = serde_json::to_vec(&header).unwrap_or_default();
    let len = u16::try_from(h.len()).unwrap_or(u16::MAX).to_le_bytes();
    [&[1u8, len[0], len[1]][..], &h, raw].concat()
}

fn oip_binary_seeds() -> Vec<Vec<u8>> {
    let img: Vec<u8> = (0..784u32).map(|i| (i * 13 % 256) as u8).collect();
    let f: Vec<u8> = img
        .iter()
        .flat_map(|&b| (f32::from(b) / 255.0).to_le_bytes())
        .collect();
    vec![binary_body("UINT8", &img), binary_body("FP32", &f)]
}

/// gRPC `ModelInferRequest` bytes → model input.
pub fn grpc_request(data: &[u8]) {
    if let Ok(x) = crate::grpc::grpc_decode_to_model_input(&spec(), MAX_ROWS, data) {
        check_model_input(&x);
    }
}

fn grpc_seeds() -> Vec<Vec<u8>> {
    use crate::pb::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
    use crate::pb::{InferTensorContents, ModelInferRequest};
    use prost::Message;
    let img: Vec<u8> = (0..784u32).map(|i| (i * 13 % 256) as u8).collect();
    let input = |datatype: &str, contents: Option<InferTensorContents>| InferInputTensor {
        name: "input".into(),
        datatype: datatype.into(),
        shape: vec![1, 784],
        parameters: Default::default(),
        contents,
    };
    let raw = ModelInferRequest {
        model_name: "lenet5".into(),
        inputs: vec![input("UINT8", None)],
        raw_input_contents: vec![img.clone()],
        outputs: vec![InferRequestedOutputTensor {
            name: "label".into(),
            parameters: Default::default(),
        }],
        ..Default::default()
    };
    let typed = ModelInferRequest {
        model_name: "lenet5".into(),
        inputs: vec![input(
            "FP32",
            Some(InferTensorContents {
                fp32_contents: img.iter().map(|&b| f32::from(b) / 255.0).collect(),
                ..Default::default()
            }),
        )],
        ..Default::default()
    };
    vec![raw.encode_to_vec(), typed.encode_to_vec()]
}

/// An MQTT request: the `inference-header-content-length` user property (text up to the first
/// `0xff` byte, when there is one) and the payload, through the worker's decoding.
pub fn mqtt_payload(data: &[u8]) {
    let (prop, payload) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (
            Some(String::from_utf8_lossy(&data[..i]).into_owned()),
            &data[i + 1..],
        ),
        None => (None, data),
    };
    if let Ok(x) = crate::mqtt::decode_to_model_input(&spec(), MAX_ROWS, 64 * 1024, prop.as_deref(), payload)
    {
        check_model_input(&x);
    }
}

fn mqtt_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = oip_json_seeds().into_iter().map(|s| s[1..].to_vec()).collect();
    for s in oip_binary_seeds() {
        let h = u16::from_le_bytes([s[1], s[2]]);
        seeds.push([h.to_string().as_bytes(), &[0xff], &s[3..]].concat());
    }
    seeds
}

/// The mutator's generator: the workspace's one SplitMix64.
pub use obfnet_core::rng::SplitMix64 as Rng;

const INTERESTING: &[&[u8]] = &[
    b"0",
    b"-1",
    b"255",
    b"256",
    b"1e999",
    b"NaN",
    b"null",
    b"[]",
    b"{}",
    b"[[[[",
    b"\"",
    b"4294967295",
    b"18446744073709551616",
    b"-9223372036854775808",
    &[0],
    &[0xff; 4],
    &[0x7f, 0xff, 0xff, 0xff],
    &[0, 0, 0, 0x80],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
];

/// One random mutation (or a few stacked) of `input`, as libFuzzer's default mutators do:
/// bit flips, byte sets, interesting values, inserts, deletes, duplicated ranges, truncation,
/// and splices with another seed.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next_u64() as u8;
            }
            2 => {
                let x = INTERESTING[rng.below(INTERESTING.len())];
                let i = rng.below(len + 1);
                if rng.below(2) == 0 || i + x.len() > len {
                    v.splice(i..i, x.iter().copied());
                } else {
                    v[i..i + x.len()].copy_from_slice(x);
                }
            }
            3 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                v.splice(i..i, bytes);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                v.drain(i..i + n);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            6 if len > 0 => v.truncate(rng.below(len)),
            7 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            _ => {
                // Increment / decrement a digit or byte (walks numbers across limits).
                if len > 0 {
                    let i = rng.below(len);
                    v[i] = if rng.below(2) == 0 {
                        v[i].wrapping_add(1)
                    } else {
                        v[i].wrapping_sub(1)
                    };
                }
            }
        }
    }
    v
}

/// Runs `target` on its seeds, then on `cases` mutants (seeded by `seed`, so a failure
/// reproduces), stopping early at `deadline`. Returns the mutants run. A panic inside the
/// target (a crash) propagates with the failing input's hex.
pub fn run(target: &Target, cases: usize, seed: u64, deadline: Option<std::time::Instant>) -> usize {
    let seeds = (target.seeds)();
    assert!(!seeds.is_empty(), "target {} has no seeds", target.name);
    let mut rng = Rng::new(seed);
    let mut pool: Vec<Vec<u8>> = seeds.clone();
    for s in &seeds {
        (target.body)(s);
    }
    for case in 0..cases {
        if deadline.is_some_and(|d| case % 64 == 0 && std::time::Instant::now() >= d) {
            return case;
        }
        let base = &pool[rng.below(pool.len())];
        let other = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, other);
        let outcome = std::panic::catch_unwind(|| (target.body)(&input));
        if let Err(e) = outcome {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "fuzz target {} crashed on case {case} (seed {seed}): {msg}\ninput (hex): {}",
                target.name,
                hex(&input)
            );
        }
        // Keep some mutants as new bases so mutations stack (a poor man's corpus).
        if pool.len() < 256 && rng.below(8) == 0 {
            pool.push(input);
        }
    }
    cases
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
