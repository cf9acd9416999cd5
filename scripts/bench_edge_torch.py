"""PyTorch reference for the edge benchmark (scripts/bench-edge.sh).

Runs the same obfuscator nets as crates/obfnet-core/benches/edge.rs (ObfNet1 784->784,
ObfNet2 784->1000->784, ReLU after every layer) on one sample at a time, as a device would:
f32 eager, and int8 with PyTorch's own dynamic quantisation (quantize_dynamic on the Linear
layers: per-tensor int8 weights, activations quantised on the fly). Reports the median
latency over many single-sample calls, for the requested thread counts, plus the process's
peak resident memory after loading the nets. Prints one JSON object.
"""

import argparse
import json
import resource
import statistics
import time

import torch
from torch import nn


def nets():
    torch.manual_seed(0)
    obfnet1 = nn.Sequential(nn.Linear(784, 784), nn.ReLU())
    obfnet2 = nn.Sequential(nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 784), nn.ReLU())
    return {"obfnet1": obfnet1.eval(), "obfnet2": obfnet2.eval()}


def median_us(fn, x, repeats, inner):
    for _ in range(inner * 3):  # warm-up
        fn(x)
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn(x)
        samples.append((time.perf_counter() - t) / inner * 1e6)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--inner", type=int, default=200)
    args = ap.parse_args()
    x = torch.rand(1, 784)
    results = []
    models = nets()
    with torch.inference_mode():
        for name, f32 in models.items():
            int8 = torch.ao.quantization.quantize_dynamic(f32, {nn.Linear}, dtype=torch.qint8)
            for threads in args.threads:
                torch.set_num_threads(threads)
                for precision, model in (("f32", f32), ("int8", int8)):
                    us = median_us(model, x, args.repeats, args.inner)
                    results.append(
                        {"arch": name, "precision": precision, "threads": threads, "median_us": us}
                    )
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "quantized_engine": torch.backends.quantized.engine,
                "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
