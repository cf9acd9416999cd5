#!/usr/bin/env bash
# Cross-checks obfnet's SSIM / PSNR / MSE against scikit-image (an independent implementation).
# Creates a git-ignored venv (.venv-ssim) from scripts/requirements-ssim.txt once; later runs
# reuse it (a stamp holds the requirements' hash). Run by scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv-ssim"
REQ="$ROOT/scripts/requirements-ssim.txt"
STAMP="$VENV/.requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [[ ! -x "$VENV/bin/python" || ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
    echo "[ssim] installing $(tr '\n' ' ' < "$REQ")into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
    echo "$want" > "$STAMP"
fi
cargo build -q --release --workspace --example ssim_pairs   # --workspace: reuse the build of burn
"$VENV/bin/python" scripts/ssim_crosscheck.py "$ROOT/target/release/examples/ssim_pairs"
