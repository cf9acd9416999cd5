#!/usr/bin/env bash
# The main job on a fresh machine: installs what is missing, builds obfnet, fetches MNIST,
# trains LeNet-5 and K = 10 ObfNet2 nets against it, and writes a run directory.
# Extra arguments go to `obfnet quickstart` (e.g. --paper, --arch obfnet1,obfnet2,conv).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --workspace --bin obfnet
exec ./target/release/obfnet quickstart "$@"
