//! Single-sample latency of the edge runtime: ObfNet1, ObfNet2 and the conv variant, f32 and
//! int8, one thread, on a digit-like image (what a device does per sample); and `in-cache`, a
//! stack of small layers whose weights fit in the core's L2 cache (the kernels' compute rate).
//!
//! `scripts/bench-edge.sh` runs this and the PyTorch reference in the same run and prints the
//! ratios (BENCHMARKS.md). The `read-bandwidth` group measures how fast one core streams a
//! buffer of each net's weight size, the memory limit that a batch-1 forward pass runs into.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use obfnet_core::runtime::{Kernels, Runtime, RuntimeConfig};

#[path = "common.rs"]
mod common;

fn edge(c: &mut Criterion) {
    let img = common::image();
    let mut group = c.benchmark_group("edge");
    for arch in common::ARCHS.into_iter().chain([common::IN_CACHE]) {
        let f32_bundle = common::bundle(arch);
        let int8_bundle = match f32_bundle.quantize_int8() {
            Ok(b) => b,
            Err(e) => panic!("quantise: {e}"),
        };
        for (precision, bundle) in [("f32", &f32_bundle), ("int8", &int8_bundle)] {
            // Every net with the kernels this CPU selects; ObfNet2 also with the portable
            // (reference) kernels, to show what the SIMD module buys.
            let mut kinds = vec![("", Kernels::Auto)];
            if arch == "obfnet2" {
                kinds.push(("-portable", Kernels::Portable));
            }
            for (suffix, kernels) in kinds {
                let config = RuntimeConfig {
                    kernels,
                    ..RuntimeConfig::default()
                };
                let rt = match Runtime::from_bundle_with(bundle, &config) {
                    Ok(rt) => rt,
                    Err(e) => panic!("runtime: {e}"),
                };
                let mut scratch = rt.scratch();
                let mut out = vec![0.0f32; rt.output_len()];
                group.bench_function(format!("{arch}-{precision}{suffix}"), |b| {
                    b.iter(|| {
                        let r = rt.run_raw(0, black_box(&img[..rt.input_len()]), &mut out, &mut scratch);
                        black_box(out.first().copied().filter(|_| r.is_ok()))
                    })
                });
            }
        }
    }
    group.finish();

    // Streaming read of a buffer the size of each net's weights (f32 and int8), summed so that
    // nothing can be skipped: the batch-1 memory bound.
    let mut group = c.benchmark_group("read-bandwidth");
    for (name, bytes) in [("obfnet2-f32", 4 * 1_568_000usize), ("obfnet2-int8", 1_568_000)] {
        let buf: Vec<u64> = (0..bytes / 8).map(|i| i as u64).collect();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut acc = [0u64; 8];
                for chunk in black_box(&buf).chunks_exact(8) {
                    for (a, x) in acc.iter_mut().zip(chunk) {
                        *a = a.wrapping_add(*x);
                    }
                }
                black_box(acc)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, edge);
criterion_main!(benches);
