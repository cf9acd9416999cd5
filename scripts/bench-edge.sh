#!/usr/bin/env bash
# Edge benchmark: single-sample latency of the obfnet edge runtime (crates/obfnet-core,
# criterion bench `edge`) against PyTorch running the same nets on the same machine, in this
# invocation; plus peak memory, weight bytes and the size of a minimal release binary that
# obfuscates one sample.
#
# Usage: scripts/bench-edge.sh [--quick]
#   --quick: short criterion runs (smoke test; numbers are rough)
#   env CPU_VARIANTS (default "baseline x86-64-v3"): Rust builds to measure. `baseline` is the
#   portable default (x86-64: SSE2 only); `x86-64-v3` (AVX2+FMA) is what a device build for
#   this CPU would use (`RUSTFLAGS=-Ctarget-cpu=...`). Nothing in the repository sets it.
# Outputs: bench-out/edge-<date>.json and bench-out/edge-<date>.md (also printed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
log() { echo "[bench-edge] $*" >&2; }

CRITERION_ARGS=(--noplot)
for arg in "$@"; do
    case "$arg" in
        --quick) CRITERION_ARGS+=(--warm-up-time 1 --measurement-time 2) ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done
CPU_VARIANTS=${CPU_VARIANTS:-"baseline x86-64-v3"}

source "$ROOT/scripts/bench-venv.sh"
ensure_bench_venv "$ROOT" log

STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$ROOT/bench-out"
WORK="$OUT/.edge-$STAMP"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

# 1. Rust: criterion medians per CPU variant, minimal binary size and peak memory.
for variant in $CPU_VARIANTS; do
    if [[ $variant == baseline ]]; then
        flags=""; target="$ROOT/target"
    else
        flags="-Ctarget-cpu=$variant"; target="$ROOT/target/cpu-$variant"
    fi
    log "criterion (obfnet-core bench edge), build: $variant"
    RUSTFLAGS="$flags" CARGO_TARGET_DIR="$target" \
        cargo bench -q -p obfnet-core --bench edge -- "${CRITERION_ARGS[@]}" >&2
    mkdir -p "$WORK/$variant"
    for est in "$target"/criterion/*/*/new/estimates.json; do
        name=$(echo "$est" | sed -E 's|.*/criterion/([^/]+)/([^/]+)/new/estimates.json|\1__\2|')
        cp "$est" "$WORK/$variant/$name.json"
    done
    log "minimal device binary (profile edge-min), build: $variant"
    RUSTFLAGS="$flags" CARGO_TARGET_DIR="$target" \
        cargo build -q -p obfnet-core --profile edge-min --example obfuscate_one --example edge_fixture
    "$target/edge-min/examples/edge_fixture" "$WORK/fixture"
    stat -c %s "$target/edge-min/examples/obfuscate_one" > "$WORK/$variant/binary_bytes"
    for p in f32 int8; do
        OBFNET_REPORT_MEMORY=1 "$target/edge-min/examples/obfuscate_one" \
            "$WORK/fixture/obfnet2-$p.obfb" "$WORK/fixture/image.raw" \
            2> "$WORK/$variant/mem-$p.txt" > "$WORK/$variant/out-$p.raw"
    done
done
ls -l "$WORK"/fixture/*.obfb | awk '{print $5, $9}' > "$WORK/bundle_sizes"

# 2. PyTorch, same nets, one sample per call, one and all threads.
log "PyTorch reference (scripts/bench_edge_torch.py)"
"$PY" -W ignore "$ROOT/scripts/bench_edge_torch.py" --threads 1 "$(nproc)" > "$WORK/torch.json"

# 3. Table.
"$PY" - "$WORK" "$OUT/edge-$STAMP" "$CPU_VARIANTS" <<'PYEOF'
import glob, json, os, re, sys
work, out, variants = sys.argv[1], sys.argv[2], sys.argv[3].split()
torch = json.load(open(f"{work}/torch.json"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
MACS = {"obfnet1": 784 * 784, "obfnet2": 2 * 784 * 1000, "conv": 4 * 14 * 14 * 25 + 784 * 784,
        "in-cache": 3 * 192 * 192}
WEIGHTS = {"obfnet1": 784 * 784, "obfnet2": 2 * 784 * 1000, "conv": 100 + 784 * 784, "in-cache": 3 * 192 * 192}
def median_us(variant, group, name):
    p = f"{work}/{variant}/{group}__{name}.json"
    return json.load(open(p))["median"]["point_estimate"] / 1e3 if os.path.exists(p) else None
def torch_us(arch, prec, threads):
    for r in torch["results"]:
        if (r["arch"], r["precision"], r["threads"]) == (arch, prec, threads):
            return r["median_us"]
    return None
rows, record = [], {"cpu": cpu, "nproc": os.cpu_count(), "torch": torch["torch"], "variants": {}}
lines = [f"Edge benchmark, {cpu}, {os.cpu_count()} cores; PyTorch {torch['torch']} "
         f"(int8: quantize_dynamic, engine {torch['quantized_engine']}); medians of criterion / repeated calls.", ""]
lines.append("| build | net | precision | MACs | obfnet µs | GMAC/s | memory bound µs | PyTorch 1 thread µs | ratio | PyTorch all threads µs | ratio |")
lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
def memory_bound_us(v, arch, prec):
    """weight bytes / the read bandwidth measured on a buffer of ObfNet2's weight size"""
    read = median_us(v, "read-bandwidth", f"obfnet2-{prec}")
    if not read:
        return None
    per_weight = 4 if prec == "f32" else 1
    gbps = 1568000 * per_weight / read / 1e3
    return WEIGHTS[arch] * per_weight / gbps / 1e3
for v in variants:
    rec = record["variants"].setdefault(v, {})
    for arch in ("obfnet1", "obfnet2", "conv", "in-cache"):
        for prec in ("f32", "int8"):
            us = median_us(v, "edge", f"{arch}-{prec}")
            t1, tn = torch_us(arch, prec, 1), torch_us(arch, prec, os.cpu_count())
            bound = memory_bound_us(v, arch, prec) if arch != "in-cache" else None
            rec[f"{arch}-{prec}"] = {"median_us": us, "memory_bound_us": bound, "torch_1t_us": t1, "torch_nt_us": tn}
            if us is None:
                continue
            f = lambda t: (f"{t:.1f}", f"{us / t:.2f}x") if t else ("n/a", "n/a")
            a, b = f(t1); c, d = f(tn)
            l = f"{bound:.1f} ({bound / us:.0%})" if bound else "n/a"
            lines.append(f"| {v} | {arch} | {prec} | {MACS[arch]/1e6:.3f} M | {us:.1f} | {MACS[arch]/us/1e3:.2f} | {l} | {a} | {b} | {c} | {d} |")
lines += ["", "memory bound = weight bytes / the read bandwidth one core reaches on a buffer of that size "
          "(below); in brackets, how much of the measured time it explains. `in-cache` is a stack of "
          "three 192→192 layers whose weights fit in L2: the kernels' own compute rate."]
lines += ["", "Read bandwidth of one core over a buffer of ObfNet2's weight size (criterion `read-bandwidth`):", ""]
for v in variants:
    for name, nbytes in (("obfnet2-f32", 4 * 1568000), ("obfnet2-int8", 1568000)):
        us = median_us(v, "read-bandwidth", name)
        if us:
            record["variants"][v][f"read-{name}"] = {"median_us": us, "gb_per_s": nbytes / us / 1e3}
            lines.append(f"- {v}, {nbytes/1e6:.2f} MB: {us:.1f} µs = {nbytes/us/1e3:.1f} GB/s")
lines += ["", "Memory and size (minimal binary `obfuscate_one`, profile edge-min; ObfNet2, one net):", ""]
sizes = dict(reversed(l.split()) for l in open(f"{work}/bundle_sizes"))
for v in variants:
    size = int(open(f"{work}/{v}/binary_bytes").read())
    mems = {}
    for p in ("f32", "int8"):
        m = re.search(r"VmHWM:\s+(\d+) kB", open(f"{work}/{v}/mem-{p}.txt").read())
        mems[p] = int(m.group(1)) if m else None
    record["variants"][v].update({"binary_bytes": size, "peak_rss_kib": mems})
    lines.append(f"- {v}: binary {size/1024:.0f} KiB; peak RSS {mems['f32']} KiB (f32 bundle), {mems['int8']} KiB (int8 bundle)")
for p in ("f32", "int8"):
    path = next(k for k in sizes if k.endswith(f"obfnet2-{p}.obfb"))
    lines.append(f"- ObfNet2 bundle, one net, {p}: {int(sizes[path])/1e6:.2f} MB")
lines.append(f"- PyTorch process peak RSS after loading and running both nets: {torch['peak_rss_kib']} KiB")
record["torch_peak_rss_kib"] = torch["peak_rss_kib"]
text = "\n".join(lines) + "\n"
open(out + ".md", "w").write(text)
json.dump(record, open(out + ".json", "w"), indent=1)
print(text)
PYEOF
log "wrote $OUT/edge-$STAMP.md and .json"
