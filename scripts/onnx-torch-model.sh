#!/usr/bin/env bash
# A real model from elsewhere: trains a small PyTorch CNN (BatchNorm + dropout) on Fashion-MNIST
# and exports it with torch.onnx.export into target/onnx-torch/fmnist_cnn.onnx (+ its sidecar
# fmnist_cnn.obfnet.json), then scores the exported file with onnxruntime.
#
# PyTorch is NOT a project dependency: it lives in the git-ignored benchmark venv .venv-bench
# (scripts/bench-venv.sh, pinned in scripts/requirements-bench.txt). The PyPI torch wheel is the
# CUDA build (~3.7 GB download, ~2.5 min install); PyTorch's CPU wheel index is not reachable
# from this machine, so that is the cost of the first run. onnxruntime comes from .venv-onnx
# (scripts/onnx-venv.sh). Needs `obfnet fetch --dataset fashion-mnist` (OBFNET_DATA_DIR).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DATA="${OBFNET_DATA_DIR:-data}"
OUT=target/onnx-torch
EPOCHS="${EPOCHS:-3}"
log() { echo "[onnx-torch] $*" >&2; }
source scripts/bench-venv.sh
ensure_bench_venv "$ROOT" log
scripts/onnx-venv.sh
nice -n 10 "$PY" scripts/torch_onnx_cnn.py "$DATA" "$OUT" "$EPOCHS"
.venv-onnx/bin/python - "$DATA" "$OUT" <<'PYEOF'
import gzip, json, os, sys
import numpy as np, onnxruntime as ort
data, out = sys.argv[1], sys.argv[2]
def idx(p):
    b = open(p, "rb").read() if os.path.exists(p) else gzip.decompress(open(p + ".gz", "rb").read())
    n = b[3]; dims = [int.from_bytes(b[4+4*i:8+4*i], "big") for i in range(n)]
    return np.frombuffer(b, np.uint8, offset=4+4*n).reshape(dims)
x = idx(f"{data}/fashion-mnist/t10k-images-idx3-ubyte"); y = idx(f"{data}/fashion-mnist/t10k-labels-idx1-ubyte")
side = json.load(open(f"{out}/fmnist_cnn.obfnet.json"))
xf = ((x.astype(np.float32) * side["scale"] - side["mean"][0]) / side["std"][0])[:, None]
s = ort.InferenceSession(f"{out}/fmnist_cnn.onnx", providers=["CPUExecutionProvider"])
pred = np.concatenate([s.run(None, {"x": xf[i:i+1000]})[0].argmax(1) for i in range(0, len(xf), 1000)])
acc = float((pred == y).mean())
print(f"onnxruntime test accuracy of the exported file: {acc:.4f}")
json.dump({"onnxruntime_test_accuracy": acc}, open(f"{out}/ort_accuracy.json", "w"))
PYEOF
