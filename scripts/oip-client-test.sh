#!/usr/bin/env bash
# Runs real Open Inference Protocol clients (tritonclient http+grpc, and KServe's
# InferenceRESTClient / InferenceGRPCClient) against `obfnet serve` on a free loopback port, on real MNIST test images.
# Creates the git-ignored venv .venv-oip on first use (PyPI via pip); idempotent.
# Model: runs/qs-default/server when present, else a quick LeNet trained here (1 epoch on 10k
# images) into target/oip-model (forced with OBFNET_OIP_QUICK_MODEL=1). Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-oip
TRITON_SPEC='tritonclient[http,grpc]==2.73.0'
if [ ! -x "$VENV/bin/python" ]; then
  echo "[oip] creating $VENV" >&2
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import tritonclient.http, tritonclient.grpc, numpy' 2>/dev/null; then
  echo "[oip] installing $TRITON_SPEC" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check "$TRITON_SPEC"
fi
# KServe's Python client is a large package (~400 MB with its dependencies): installed when
# OBFNET_OIP_KSERVE=1 (scripts/test.sh sets it), used whenever present.
if [ "${OBFNET_OIP_KSERVE:-0}" = 1 ] && ! "$VENV/bin/python" -c 'import kserve' 2>/dev/null; then
  echo "[oip] installing kserve" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check 'kserve==0.21.0'
fi

cargo build --release -q --workspace --bin obfnet
BIN=./target/release/obfnet
DATA="${OBFNET_DATA_DIR:-data}"
if [ -f runs/qs-default/server/model.safetensors ] && [ "${OBFNET_OIP_QUICK_MODEL:-0}" != 1 ]; then
  MODEL=runs/qs-default/server; MIN_ACC=0.97
else
  MODEL=target/oip-model; MIN_ACC=0.85
  if [ ! -f "$MODEL/model.safetensors" ]; then
    echo "[oip] training a quick LeNet for the client test" >&2
    "$BIN" --json train-model --data-dir "$DATA" --epochs 1 --limit 10000 --out "$MODEL" >/dev/null
  fi
fi

OUT=$(mktemp)
"$BIN" --json serve --model "$MODEL" --addr 127.0.0.1:0 >"$OUT" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; rm -f "$OUT"' EXIT
ADDR=""
for _ in $(seq 1 200); do
  ADDR=$("$VENV/bin/python" -c 'import json,sys
for l in open(sys.argv[1]):
    l=l.strip()
    if l.startswith("{"): print(json.loads(l)["addr"]); break' "$OUT" 2>/dev/null || true)
  [ -n "$ADDR" ] && break
  kill -0 "$PID" 2>/dev/null || { cat "$OUT" >&2; exit 1; }
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "[oip] server did not start" >&2; cat "$OUT" >&2; exit 1; }
echo "[oip] obfnet serve on $ADDR (model $MODEL)" >&2
"$VENV/bin/python" scripts/oip_client_test.py "$ADDR" "$DATA/mnist" --min-accuracy "$MIN_ACC" --client triton
if "$VENV/bin/python" -c 'import kserve' 2>/dev/null; then
  "$VENV/bin/python" scripts/oip_client_test.py "$ADDR" "$DATA/mnist" --min-accuracy "$MIN_ACC" --client kserve
else
  echo "[oip] kserve client not installed (OBFNET_OIP_KSERVE=1 installs it): skipped" >&2
fi
kill -TERM "$PID"
wait "$PID"
