#!/usr/bin/env bash
# Reproduce the training benchmark: obfnet (burn, Rust) vs a PyTorch reference
# doing exactly the same work (scripts/bench_train_torch.py), on this machine,
# in this invocation, Rust first then PyTorch.
#
# Usage: scripts/bench-train.sh [--quick]
#   env: K (default 10), EPOCHS (default 1), THREADS (default nproc)
#   --quick: K=2 and only the first 2000 training samples (smoke test)
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
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

K=${K:-10}
EPOCHS=${EPOCHS:-1}
THREADS=${THREADS:-$(nproc)}
LIMIT_ARGS=()
if [[ $QUICK == 1 ]]; then
    K=2
    LIMIT_ARGS=(--limit 2000)
fi

log() { echo "[bench-train] $*" >&2; }

# 1. build + data -------------------------------------------------------------
log "building obfnet-cli (release)"
cargo build --release -p obfnet-cli
OBFNET="$ROOT/target/release/obfnet"
log "making sure MNIST is present"
"$OBFNET" fetch

# 2. venv with pinned torch/numpy --------------------------------------------
source "$ROOT/scripts/bench-venv.sh"
ensure_bench_venv "$ROOT" log

# 3./4. run both sides -------------------------------------------------------
STAMP=$(date +%Y%m%d-%H%M%S)
OUTDIR="$ROOT/bench-out"
mkdir -p "$OUTDIR"
BURN_JSON="$OUTDIR/.train-$STAMP-burn.tmp"
TORCH_JSON="$OUTDIR/.train-$STAMP-torch.tmp"
trap 'rm -f "$BURN_JSON" "$TORCH_JSON"' EXIT
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
NPROC=$(nproc)

log "burn:    obfnet bench-train --k $K --epochs $EPOCHS (threads: $THREADS)"
# The burn side picks its thread count itself; RAYON_NUM_THREADS caps rayon pools.
RAYON_NUM_THREADS="$THREADS" \
    "$OBFNET" bench-train --json --k "$K" --epochs "$EPOCHS" --data-dir data \
    ${LIMIT_ARGS[@]+"${LIMIT_ARGS[@]}"} > "$BURN_JSON"

log "pytorch: scripts/bench_train_torch.py --k $K --epochs $EPOCHS --threads $THREADS"
"$PY" "$ROOT/scripts/bench_train_torch.py" --k "$K" --epochs "$EPOCHS" --threads "$THREADS" \
    --data-dir data/mnist ${LIMIT_ARGS[@]+"${LIMIT_ARGS[@]}"} > "$TORCH_JSON"

# 5. table ---------------------------------------------------------------------
"$PY" - "$BURN_JSON" "$TORCH_JSON" "$OUTDIR/train-$STAMP" "$CPU_MODEL" "$NPROC" "$QUICK" <<'EOF'
import json, sys, datetime

burn_p, torch_p, base, cpu, nproc, quick = sys.argv[1:7]

def load(p):
    # the JSON object is the last non-empty line on stdout
    lines = [l for l in open(p).read().splitlines() if l.strip()]
    return json.loads(lines[-1])

burn, pt = load(burn_p), load(torch_p)

def fnum(v, unit):
    return "n/a" if v is None else f"{v:.3f} {unit}"

rows = [
    ("LeNet-5 epoch", "lenet_epoch_s", "s"),
    ("LeNet-5 step (median)", "lenet_step_ms_median", "ms"),
    ("ObfNet2 epoch", "obf_epoch_s", "s"),
    ("ObfNet2 step (median)", "obf_step_ms_median", "ms"),
    (f"K job (K={pt.get('k')}, epochs={pt.get('epochs')}, incl. eval)", "k_job_s", "s"),
]
out = []
out.append(f"# Training benchmark: burn (obfnet) vs PyTorch — {datetime.datetime.now().isoformat(timespec='seconds')}")
out.append("")
out.append(f"Both sides ran on the same machine in the same invocation of scripts/bench-train.sh "
           f"(burn first, then PyTorch): {cpu}, nproc={nproc}, CPU only, float32.")
out.append(f"burn engine: {burn.get('engine')}, threads={burn.get('threads')}; "
           f"PyTorch {pt.get('torch_version')}, threads={pt.get('threads')}."
           + (" QUICK smoke run (K=2, first 2000 training samples): timings not representative." if quick == "1" else ""))
out.append("")
out.append("| metric | burn | pytorch | ratio burn/pytorch |")
out.append("|---|---:|---:|---:|")
for name, key, unit in rows:
    b, p = burn.get(key), pt.get(key)
    ratio = f"{b / p:.2f}x" if isinstance(b, (int, float)) and isinstance(p, (int, float)) and p else "n/a"
    out.append(f"| {name} | {fnum(b, unit)} | {fnum(p, unit)} | {ratio} |")
out.append("")
out.append("| accuracy (10k test set) | burn | pytorch |")
out.append("|---|---:|---:|")
def facc(v):
    return "n/a" if v is None else f"{100 * v:.2f}%"
out.append(f"| LeNet-5 (1 epoch) | {facc(burn.get('lenet_test_acc'))} | {facc(pt.get('lenet_test_acc'))} |")
ba, pa = burn.get("obf_test_acc") or [], pt.get("obf_test_acc") or []
for i in range(max(len(ba), len(pa))):
    b = facc(ba[i]) if i < len(ba) else "n/a"
    p = facc(pa[i]) if i < len(pa) else "n/a"
    out.append(f"| LeNet(ObfNet2 #{i + 1}(x)) | {b} | {p} |")
if ba and pa:
    out.append(f"| ObfNet2 mean over K | {facc(sum(ba) / len(ba))} | {facc(sum(pa) / len(pa))} |")
table = "\n".join(out) + "\n"

record = {
    "date": datetime.datetime.now().isoformat(timespec="seconds"),
    "machine": {"cpu_model": cpu, "nproc": int(nproc)},
    "note": "both sides ran on the same machine in the same invocation (burn first, then pytorch)",
    "quick": quick == "1",
    "burn": burn,
    "pytorch": pt,
}
with open(base + ".json", "w") as f:
    json.dump(record, f, indent=2)
    f.write("\n")
with open(base + ".md", "w") as f:
    f.write(table)
print(table)
print(f"written: {base}.json, {base}.md")
EOF
