#!/usr/bin/env bash
# Reproduce the training benchmark: the K-obfuscator job (K ObfNet2 nets x EPOCHS epochs
# against a frozen LeNet-5, plus every net's test-set accuracy) on obfnet's training fast path,
# on obfnet's burn path, and in a PyTorch reference doing exactly the same work
# (scripts/bench_train_torch.py), on this machine, in this invocation.
#
# Usage: scripts/bench-train.sh [--quick]
#   env: K (default 10), EPOCHS (default 1), THREADS (default nproc),
#        RUNS (default 3): K-job runs of the burn path and of PyTorch; FAST_RUNS (default 3):
#        of the fast path; medians are reported (with RUNS=1 the step-time medians are the
#        robust figure)
#   --quick: K=2, one run each and only the first 2000 training samples (smoke test)
#
# PyTorch is NOT a dependency of the project: it is installed into a git-ignored
# venv (.venv-bench) from scripts/requirements-bench.txt (the PyPI torch wheel
# is the CUDA build, ~3.7 GB; only the CPU is used).
# Outputs: bench-out/train-<date>.json and bench-out/train-<date>.md
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

K=${K:-10}
EPOCHS=${EPOCHS:-1}
THREADS=${THREADS:-$(nproc)}
RUNS=${RUNS:-3}
FAST_RUNS=${FAST_RUNS:-3}
LIMIT_ARGS=()
if [[ $QUICK == 1 ]]; then
    K=2
    RUNS=1
    FAST_RUNS=1
    LIMIT_ARGS=(--limit 2000)
fi

log() { echo "[bench-train] $*" >&2; }

# 1. build + data -------------------------------------------------------------
log "building the fast-path driver (obfnet-nn example fast_train, release)"
# --workspace: the same feature set as the test build, so burn is not compiled a second time
cargo build --release --workspace --example fast_train
FAST="$ROOT/target/release/examples/fast_train"
DATA=${OBFNET_DATA_DIR:-$ROOT/data}
if [[ ! -e "$DATA/mnist/train-images-idx3-ubyte" && ! -e "$DATA/mnist/train-images-idx3-ubyte.gz" ]]; then
    log "MNIST missing in $DATA/mnist: fetching it with obfnet fetch"
    cargo build --release --workspace --bin obfnet
    "$ROOT/target/release/obfnet" fetch --data-dir "$DATA"
fi

# 2. venv with pinned torch/numpy --------------------------------------------
source "$ROOT/scripts/bench-venv.sh"
ensure_bench_venv "$ROOT" log

# 3./4. run the three engines ----------------------------------------------------
STAMP=$(date +%Y%m%d-%H%M%S)
OUTDIR="$ROOT/bench-out"
mkdir -p "$OUTDIR"
RUST_JSON="$OUTDIR/.train-$STAMP-rust.tmp"
TORCH_JSON="$OUTDIR/.train-$STAMP-torch.tmp"
trap 'rm -f "$RUST_JSON" "$TORCH_JSON"' EXIT
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
CPU_MHZ=$(sed -n 's/^cpu MHz[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
CPU_FLAGS=$(sed -n 's/^flags[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
NPROC=$(nproc)

log "obfnet: fast path x $FAST_RUNS, then burn path x $RUNS (K=$K, epochs=$EPOCHS, threads: $THREADS)"
RAYON_NUM_THREADS="$THREADS" "$FAST" --data-dir "$DATA" --k "$K" --epochs "$EPOCHS" \
    --repeat "$FAST_RUNS" --burn --burn-repeat "$RUNS" ${LIMIT_ARGS[@]+"${LIMIT_ARGS[@]}"} > "$RUST_JSON"

log "pytorch: scripts/bench_train_torch.py --k $K --epochs $EPOCHS --threads $THREADS --repeat $RUNS"
"$PY" "$ROOT/scripts/bench_train_torch.py" --k "$K" --epochs "$EPOCHS" --threads "$THREADS" \
    --repeat "$RUNS" --data-dir "$DATA/mnist" ${LIMIT_ARGS[@]+"${LIMIT_ARGS[@]}"} > "$TORCH_JSON"

# 5. table ---------------------------------------------------------------------
"$PY" - "$RUST_JSON" "$TORCH_JSON" "$OUTDIR/train-$STAMP" "$CPU_MODEL" "$NPROC" "$QUICK" "$CPU_MHZ" "$CPU_FLAGS" <<'PYEOF'
import json, sys, datetime, statistics

rust_p, torch_p, base, cpu, nproc, quick, mhz, flags = sys.argv[1:9]
nproc, mhz, flags = int(nproc), float(mhz), flags.split()

def load(p):
    # the JSON object is the last non-empty line on stdout
    lines = [l for l in open(p).read().splitlines() if l.strip()]
    return json.loads(lines[-1])

rs, pt = load(rust_p), load(torch_p)
k = rs["k"]

# Peak f32 multiply-adds per second of the machine: cores x (FMA pipes x f32 lanes) x clock.
# Zen 3/4 have two 256-bit FMA pipes per core (16 f32 multiply-adds per cycle; Zen 4 runs
# AVX-512 on the same pipes, double-pumped, so AVX-512 does not raise this); the clock is
# /proc/cpuinfo's "cpu MHz" (the guest's nominal clock; boost would lower the fraction).
macs_per_cycle = 16
peak = nproc * macs_per_cycle * mhz * 1e6
job_macs = rs["job_macs"]

def frac(seconds):
    return job_macs / seconds / peak

fast, burn, torch = rs["fast_k_job_s"], rs.get("burn_k_job_s"), pt["k_job_s"]
out = []
out.append(f"# Training benchmark: the K-obfuscator job — {datetime.datetime.now().isoformat(timespec='seconds')}")
out.append("")
out.append(f"Same machine, same invocation of scripts/bench-train.sh (fast path, then burn path, then "
           f"PyTorch): {cpu}, nproc={nproc}, {mhz:.0f} MHz, "
           f"AVX-512 {'present' if 'avx512f' in flags else 'absent'} in /proc/cpuinfo flags, CPU only, float32. "
           f"K={k}, epochs={rs['epochs']}, {rs['n_train']} training samples per net per epoch, "
           f"K-job runs: fast {len(rs['fast_k_job_s_runs'])}, burn {len(rs.get('burn_k_job_s_runs', []))}, "
           f"PyTorch {len(pt.get('k_job_s_runs', [0]))}; medians. PyTorch {pt.get('torch_version')}, "
           f"threads={pt.get('threads')}; obfnet threads={rs.get('threads')}."
           + (" QUICK smoke run: timings not representative." if quick == "1" else ""))
out.append("")
out.append(f"Peak: {nproc} cores x {macs_per_cycle} f32 multiply-adds/cycle (2 FMA pipes x 8 lanes) x "
           f"{mhz:.0f} MHz = {peak / 1e9:.1f} G multiply-adds/s; the job is {job_macs / 1e9:.1f} G "
           f"multiply-adds (training: ObfNet2 forward + weight gradients + layer-2 input gradient, "
           f"LeNet forward + input gradient; evaluation: forward passes).")
out.append("")
out.append("| engine | K job (median) | runs | step, all K nets (median) | vs PyTorch | fraction of peak | mean accuracy |")
out.append("|---|---:|---|---:|---:|---:|---:|")
def acc(v):
    return "n/a" if not v else f"{100 * sum(v) / len(v):.2f}%"
def runs(v):
    return ", ".join(f"{x:.1f}" for x in v)
rows = [
    ("obfnet fast path", fast, rs["fast_k_job_s_runs"], rs["fast_step_ms_median"], rs.get("fast_obf_test_acc")),
    ("obfnet burn path", burn, rs.get("burn_k_job_s_runs", []), rs.get("burn_step_ms_median"), rs.get("burn_obf_test_acc")),
    ("PyTorch (nets one after another)", torch, pt.get("k_job_s_runs", [torch]),
     pt["k_step_ms_median"] * k if pt.get("k_step_ms_median") else None, pt.get("obf_test_acc")),
]
for name, s, r, step, a in rows:
    if s is None:
        continue
    step_s = "n/a" if step is None else f"{step:.1f} ms"
    out.append(f"| {name} | {s:.1f} s | {runs(r)} | {step_s} | **{s / torch:.2f}×** | {100 * frac(s):.1f}% | {acc(a)} |")
out.append("")
out.append(f"PyTorch's step column is K x its median per-net step (it trains the nets one after another). "
           f"Goal: fast path <= 0.5x PyTorch — {'met' if fast / torch <= 0.5 else 'NOT met'} "
           f"({fast / torch:.2f}x); fast path vs burn path: {fast / burn:.2f}x." if burn else "")
table = "\n".join(out) + "\n"

record = {
    "date": datetime.datetime.now().isoformat(timespec="seconds"),
    "machine": {"cpu_model": cpu, "nproc": nproc, "mhz": mhz, "avx512f": "avx512f" in flags},
    "peak_macs_per_s": peak,
    "quick": quick == "1",
    "rust": rs,
    "pytorch": pt,
}
with open(base + ".json", "w") as f:
    json.dump(record, f, indent=2)
    f.write("\n")
with open(base + ".md", "w") as f:
    f.write(table)
print(table)
print(f"written: {base}.json, {base}.md")
PYEOF
