#!/usr/bin/env bash
# "Bring your own model", end to end, as a user runs it, with the measured numbers.
#
# Two cases, each a model trained and exported by PyTorch (torch.onnx.export) and a user .npz
# dataset (`--dataset npz:PATH`, not a built-in loader):
#   fmnist  scripts/onnx-torch-model.sh's CNN (Conv + BatchNorm + ReLU + MaxPool, dropout) on
#           Fashion-MNIST, the data written as a .npz of uint8 [N, 1, 28, 28];
#   fsdd1d  scripts/byo_fsdd_1d.py's 1-D CNN (Conv1d + BatchNorm1d, dropout) on sensor-like
#           vectors: one uint8 [128] vector of quantised log band energies per FSDD clip.
# Per case: onnxruntime's accuracy of the exported file → `obfnet evaluate --model x.onnx`
# (raw) → `obfnet train-obf` → `obfnet evaluate --bundle` (behind the nets) → `obfnet serve`
# in the background, `obfnet device` sends test samples raw and obfuscated over OIP v2 REST
# (answers checked against onnxruntime's labels), plus one curl to the REST metadata
# endpoint → `obfnet report` with capped budgets (below). Every step's wall time goes to
# OUT/CASE/times.tsv and its output to OUT/CASE/STEP.log; a summary is printed at the end.
#
# Usage: scripts/byo-model.sh [fmnist|fsdd1d|all]   (default all). Run it without an outer
# `nice`: the long steps are already `nice -n 10` inside (an outer nice puts them at 19).
# Measured runs and their numbers: NOTES-byo.md (README "Bring your own model").
# Env: OBFNET_DATA_DIR (fashion-mnist + fsdd), OUT (default runs/byo), EPOCHS (torch, fmnist 1), TORCH_THREADS (1),
#      OBF_EPOCHS (train-obf, 2), K (2), LIMIT (train-obf --limit for fmnist, 20000),
#      REPORT_ARGS (replaces the report caps below).
# Needs the release CLI: `cargo build --release --workspace --bin obfnet`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export OBFNET_DATA_DIR="${OBFNET_DATA_DIR:-$ROOT/data}"
export TORCH_THREADS="${TORCH_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
OUT="${OUT:-runs/byo}"
K="${K:-2}"
OBF_EPOCHS="${OBF_EPOCHS:-2}"
LIMIT="${LIMIT:-20000}"
BIN="${BIN:-target/release/obfnet}"
CASES="${1:-all}"
ORT=.venv-onnx/bin/python
log() { echo "[byo] $*" >&2; }
[[ -x "$BIN" ]] || { log "missing $BIN: cargo build --release --workspace --bin obfnet"; exit 1; }

# The report's budget caps (the strong preset, capped to fit a loaded 2-core machine).
REPORT_CAPS=(--preset strong --eval-samples 300 --rmle-samples 30 --rmle-steps 100
  --strong-max-epochs 3 --strong-train 10000 --inverse-train 5000 --per-net-train 2500
  --inverse-epochs 3 --shadow-train 5000 --distinguisher-train 5000 --recogniser-epochs 5
  --skip latent-search)
if [[ -n "${REPORT_ARGS:-}" ]]; then read -r -a REPORT_CAPS <<< "$REPORT_ARGS"; fi

# timed DIR STEP CMD...: runs CMD, output to DIR/STEP.log, wall time appended to DIR/times.tsv.
timed() {
  local dir=$1 step=$2; shift 2
  log "$step: $*"
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  "$@" > "$dir/$step.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  awk -v s="$step" -v a="$t0" -v b="$t1" -v c="$*" 'BEGIN { printf "%s\t%.1f\t%s\n", s, b - a, c }' >> "$dir/times.tsv"
  if (( rc != 0 )); then log "$step failed (exit $rc); tail of $dir/$step.log:"; tail -20 "$dir/$step.log" >&2; return $rc; fi
}

# onnxruntime's accuracy of the exported file on the .npz test split, with the sidecar's
# preprocessing; writes DIR/ort.json (accuracy, and its labels of the 20 samples the device sends).
ort_score() {
  "$ORT" - "$@" <<'PYEOF'
import json, sys
import numpy as np, onnxruntime as ort
model, npz, out = sys.argv[1:4]
side = json.load(open(model[:-len(".onnx")] + ".obfnet.json"))
d = np.load(npz)
x, y = d["x_test"].astype(np.float32) * side["scale"], d["y_test"]
mean, std = np.array(side["mean"], np.float32), np.array(side["std"], np.float32)
if x.ndim >= 3 and len(mean) > 1:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    x = (x - mean.reshape(shape)) / std.reshape(shape)
else:
    x = (x - mean[0]) / std[0]
s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
pred = np.concatenate([s.run(None, {name: x[i:i + 1000]})[0].argmax(1) for i in range(0, len(x), 1000)])
acc = float((pred == y).mean())
print(f"onnxruntime {ort.__version__}: test accuracy of {model} on {npz}: {acc:.4f} ({len(y)} samples)")
idx = np.linspace(0, len(y) - 1, 20).round().astype(int)  # the samples the device sends
json.dump({"onnxruntime_test_accuracy": acc, "n": int(len(y)), "sample_index": idx.tolist(),
           "sample_pred": pred[idx].tolist(), "sample_true": y[idx].tolist()}, open(out, "w"))
PYEOF
}

# N test samples spread over the split (as ort_score picks them) as raw uint8 bytes (what a
# device reads).
write_samples() {
  "$ORT" - "$@" <<'PYEOF'
import sys
import numpy as np
npz, n, raw = sys.argv[1], int(sys.argv[2]), sys.argv[3]
d = np.load(npz)
idx = np.linspace(0, len(d["y_test"]) - 1, n).round().astype(int)
x, y = d["x_test"][idx], d["y_test"][idx].astype(np.uint8)
open(raw, "wb").write(np.ascontiguousarray(x, np.uint8).tobytes())
print(f"{len(y)} samples of {x.shape[1:]} → {raw}")
PYEOF
}

# flow CASE MODEL NPZ PORT TRAIN_OBF_EXTRA...
flow() {
  local case=$1 model=$2 npz=$3 port=$4; shift 4
  local dir="$OUT/$case" bundle="$OUT/$case/obfnet2-k$K.obfb"
  mkdir -p "$dir"
  timed "$dir" ort ort_score "$model" "$npz" "$dir/ort.json"
  timed "$dir" evaluate-raw nice -n 10 "$BIN" --json evaluate --model "$model" --dataset "npz:$npz"
  timed "$dir" train-obf nice -n 10 "$BIN" train-obf --model "$model" --dataset "npz:$npz" \
    --arch obfnet2 -k "$K" --epochs "$OBF_EPOCHS" "$@" --out "$bundle"
  timed "$dir" evaluate-bundle nice -n 10 "$BIN" --json evaluate --model "$model" --dataset "npz:$npz" --bundle "$bundle"
  # serve in the background, ask it, stop it
  timed "$dir" samples write_samples "$npz" 20 "$dir/samples.raw"
  nice -n 10 "$BIN" serve --model "$model" --model-name "$case" --addr "127.0.0.1:$port" \
    --bundle "$bundle" > "$dir/serve.log" 2>&1 &
  local srv=$!
  local up=0
  for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$port/v2/health/ready" > /dev/null; then up=1; break; fi
    sleep 1
  done
  if (( up == 0 )); then log "serve did not come up"; tail -20 "$dir/serve.log" >&2; kill "$srv"; return 1; fi
  curl -s "http://127.0.0.1:$port/v2/models/$case" > "$dir/metadata.json"
  local rc=0
  timed "$dir" device-raw "$BIN" device --rest "http://127.0.0.1:$port" --model "$case" --raw \
    --format raw --json "$dir/samples.raw" || rc=$?
  timed "$dir" device-obf "$BIN" device --rest "http://127.0.0.1:$port" --model "$case" \
    --bundle "$bundle" --format raw --json "$dir/samples.raw" || rc=$?
  kill "$srv"; wait "$srv" 2>/dev/null || true
  (( rc == 0 )) || return $rc
  timed "$dir" report nice -n 10 "$BIN" report --model "$model" --dataset "npz:$npz" --archs obfnet2 \
    --bundle "$bundle" -k "$K" --no-baselines "${REPORT_CAPS[@]}" --out "$dir/report"
  summary "$case"
}

summary() {
  local dir="$OUT/$1"
  "$ORT" - "$dir" <<'PYEOF'
import json, sys
d = sys.argv[1]
def last_json(step):
    lines = [l for l in open(f"{d}/{step}.log") if l.startswith("{")]
    return json.loads(lines[-1]) if lines else None
print(f"=== {d}")
for line in open(f"{d}/times.tsv"):
    step, secs, cmd = line.rstrip("\n").split("\t")
    print(f"  {step:16s} {float(secs):8.1f} s   {cmd}")
ort = json.load(open(f"{d}/ort.json"))
print(f"  onnxruntime accuracy: {ort['onnxruntime_test_accuracy']:.4f}")
print(f"  obfnet evaluate (raw): {json.dumps(last_json('evaluate-raw'))[:400]}")
print(f"  obfnet evaluate (bundle): {json.dumps(last_json('evaluate-bundle'))[:800]}")
print(f"  onnxruntime labels of the 20 served samples: {ort['sample_pred']} (true {ort['sample_true']})")
for mode in ("device-raw", "device-obf"):
    lines = [json.loads(l) for l in open(f"{d}/{mode}.log") if l.startswith("{")]
    labels = [o.get("label") for o in lines[:-1]]
    same = sum(a == b for a, b in zip(labels, ort["sample_pred"]))
    true = sum(a == b for a, b in zip(labels, ort["sample_true"]))
    rt = lines[-1]["round_trip"]["median_us"] / 1e3
    print(f"  {mode}: served labels {labels}: {same}/20 equal onnxruntime's, {true}/20 correct; "
          f"mode {lines[-1]['mode']}, wire {lines[-1]['wire']}, median round trip {rt:.1f} ms")
print(f"  report: {d}/report/report.md")
PYEOF
}

if [[ "$CASES" == all || "$CASES" == fmnist ]]; then
  mkdir -p "$OUT/fmnist"; : > "$OUT/fmnist/times.tsv"
  M=target/onnx-torch/fmnist_cnn.onnx
  if [[ ! -f "$M" ]]; then
    mkdir -p "$OUT/fmnist"
    timed "$OUT/fmnist" torch-train env EPOCHS="${EPOCHS:-1}" scripts/onnx-torch-model.sh
  fi
  NPZ="$OUT/fmnist/fashion_mnist.npz"
  if [[ ! -f "$NPZ" ]]; then
    mkdir -p "$OUT/fmnist"
    "$ORT" - "$OBFNET_DATA_DIR/fashion-mnist" "$NPZ" <<'PYEOF'
import gzip, os, sys
import numpy as np
src, out = sys.argv[1], sys.argv[2]
def idx(p):
    b = open(p, "rb").read() if os.path.exists(p) else gzip.decompress(open(p + ".gz", "rb").read())
    n = b[3]; dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(n)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * n).reshape(dims)
x_train, x_test = idx(f"{src}/train-images-idx3-ubyte")[:, None], idx(f"{src}/t10k-images-idx3-ubyte")[:, None]
np.savez(out, x_train=x_train, y_train=idx(f"{src}/train-labels-idx1-ubyte"),
         x_test=x_test, y_test=idx(f"{src}/t10k-labels-idx1-ubyte"))
print(f"wrote {out}: x_train {x_train.shape}, x_test {x_test.shape}")
PYEOF
  fi
  flow fmnist "$M" "$NPZ" 18471 --limit "$LIMIT"
fi

if [[ "$CASES" == all || "$CASES" == fsdd1d ]]; then
  D="$OUT/fsdd1d"
  mkdir -p "$D"; : > "$D/times.tsv"
  if [[ ! -f "$D/fsdd_cnn1d.onnx" ]]; then
    source scripts/bench-venv.sh
    ensure_bench_venv "$ROOT" log
    timed "$D" torch-train nice -n 10 "$PY" scripts/byo_fsdd_1d.py "$OBFNET_DATA_DIR" "$D" 30
  fi
  flow fsdd1d "$D/fsdd_cnn1d.onnx" "$D/fsdd_bands.npz" 18472
fi
