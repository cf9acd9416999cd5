#!/usr/bin/env bash
# Builds the git-ignored Python reference venv .venv-onnx (onnx + onnxruntime from PyPI, pinned in
# scripts/requirements-onnx.txt) and writes the ONNX parity fixtures of obfnet-onnx into
# target/onnx-fixtures (read by `cargo test -p obfnet-onnx`). Idempotent and cached: the venv is
# only (re)installed when the requirements change, the fixtures only when their generator does.
# Called by scripts/test.sh; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-onnx
REQ=scripts/requirements-onnx.txt
GEN=scripts/onnx_fixtures.py
OUT=target/onnx-fixtures

if [ ! -x "$VENV/bin/python" ]; then
  echo "[onnx] creating $VENV" >&2
  python3 -m venv "$VENV"
fi
if ! cmp -s "$REQ" "$VENV/.requirements" 2>/dev/null; then
  echo "[onnx] installing $(tr '\n' ' ' < "$REQ")into $VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/.requirements"
fi
stamp="$(sha256sum "$GEN" "$REQ" | sha256sum | cut -c1-16)"
if [ "$(cat "$OUT/.stamp" 2>/dev/null || true)" != "$stamp" ]; then
  rm -rf "$OUT"
  mkdir -p "$OUT"
  "$VENV/bin/python" "$GEN" "$OUT"
  echo "$stamp" > "$OUT/.stamp"
else
  echo "[onnx] fixtures in $OUT are up to date" >&2
fi
