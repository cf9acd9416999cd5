//! Fixtures shared by the edge benchmark and the minimal example: bundles of the published
//! obfuscator shapes with seeded random weights (timing does not depend on the values).

use obfnet_core::{
    Activation, Bundle, DType, LayerSpec, LayerWeights, Manifest, NetSpec, Normalisation, TensorSpec,
};

/// The architectures measured: ObfNet1 (784→784), ObfNet2 (784→1000→784), conv (5×5 s2 1→4, 784→784).
pub const ARCHS: [&str; 3] = ["obfnet1", "obfnet2", "conv"];

/// A stack of three dense 192→192 layers (111 k multiply-adds, 442 KB of f32 weights): small enough
/// that its weights stay in this machine's per-core L2 cache, so it measures the kernels' compute
/// rate without the memory limit.
pub const IN_CACHE: &str = "in-cache";

pub fn layers(arch: &str) -> Vec<LayerSpec> {
    let dense = |inputs, outputs| LayerSpec::Dense {
        inputs,
        outputs,
        act: Activation::Relu,
    };
    match arch {
        IN_CACHE => vec![dense(192, 192); 3],
        "obfnet1" => vec![dense(784, 784)],
        "obfnet2" => vec![dense(784, 1000), dense(1000, 784)],
        _ => vec![
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
            dense(784, 784),
        ],
    }
}

/// A one-net bundle of `arch` with weights uniform in ±1/sqrt(fan-in) (seeded).
pub fn bundle(arch: &str) -> Bundle {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move |bound: f32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * bound
    };
    let specs = layers(arch);
    let side: Vec<usize> = if arch == IN_CACHE {
        vec![192]
    } else {
        vec![1, 28, 28]
    };
    let weights = specs
        .iter()
        .map(|l| {
            let numel: usize = l.weight_shape().iter().product();
            let fan_in = numel / l.weight_shape()[0];
            let bound = 1.0 / (fan_in as f32).sqrt();
            LayerWeights {
                weight: (0..l.weight_shape().iter().product::<usize>())
                    .map(|_| uniform(bound))
                    .collect(),
                bias: (0..l.bias_shape()[0]).map(|_| uniform(bound)).collect(),
            }
        })
        .collect();
    let manifest = Manifest {
        format_version: 1,
        created_by: "obfnet-bench".into(),
        dataset: "mnist".into(),
        input: TensorSpec {
            shape: side.clone(),
            dtype: DType::F32,
        },
        normalisation: Normalisation::MNIST,
        output: TensorSpec {
            shape: side,
            dtype: DType::F32,
        },
        weights: DType::F32,
        output_noise: None,
        server_model_sha256: [0; 32],
        nets: vec![NetSpec {
            name: arch.into(),
            arch: arch.into(),
            seed: 0,
            layers: specs,
            sha256: [0; 32],
        }],
    };
    match Bundle::new(manifest, vec![weights]) {
        Ok(b) => b,
        Err(e) => panic!("benchmark fixture: {e}"),
    }
}

/// A digit-like 28×28 image: a bright ring on a dark background.
pub fn image() -> Vec<u8> {
    (0..784)
        .map(|i| {
            let (r, c) = ((i / 28) as f32 - 13.5, (i % 28) as f32 - 13.5);
            let d = (r * r + c * c).sqrt();
            if (6.0..9.0).contains(&d) { 250 } else { 3 }
        })
        .collect()
}
