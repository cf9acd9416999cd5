#!/usr/bin/env bash
# Fuzzes every decoder that takes untrusted bytes (not in CI; issue 18 item 1).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 600 s each, every target)
#
# Targets (bodies in crates/obfnet-serve/src/fuzzing.rs, shared with the CI property tests):
#   bundle safetensors manifest idx wav oip_json oip_binary grpc_request mqtt_payload
#
# With a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`) each target runs under libFuzzer for the given time, starting
# from and growing fuzz/corpus/<target>/ (only the seed-* files are committed). Without them it
# says so and runs the same target bodies as property tests (a seeded mutator over the seeds)
# for the same time each. Crashes: fuzz/artifacts/<target>/ (libFuzzer) or the test's panic
# message with the failing input in hex (property mode). Exit status non-zero on any crash.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${1:-600}"
shift || true
ALL=(bundle safetensors manifest idx wav oip_json oip_binary grpc_request mqtt_payload)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi

# --workspace, never -p alone: -p changes burn's unified features and rebuilds it.
cargo build -q --release --workspace --example fuzz_seeds
./target/release/examples/fuzz_seeds fuzz/corpus

have_libfuzzer() {
  rustup run nightly rustc --version >/dev/null 2>&1 && cargo +nightly fuzz --help >/dev/null 2>&1
}

status=0
if have_libfuzzer && [ "${OBFNET_FUZZ_PROPERTY:-0}" != 1 ]; then
  echo "[fuzz] libFuzzer via cargo-fuzz ($(rustup run nightly rustc --version)), ${SECS} s per target"
  # The fuzz crate is outside the workspace and its lock is ignored: start it from the
  # workspace's, so that the fuzzed code is built against the same crate versions as the
  # shipped one (cargo adds only libfuzzer-sys and what it needs).
  cp Cargo.lock fuzz/Cargo.lock
  for t in "${TARGETS[@]}"; do
    echo "[fuzz] === $t ==="
    if ! (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- \
          -max_total_time="$SECS" -rss_limit_mb=4096 -max_len=1048576 -print_final_stats=1); then
      echo "[fuzz] $t: CRASH (see fuzz/artifacts/$t/)"; status=1
    fi
  done
else
  echo "[fuzz] no nightly toolchain with cargo-fuzz here: running the targets as property tests"
  echo "[fuzz] (seeded mutator over the seeds, ${SECS} s per target; OBFNET_FUZZ_SEED=${OBFNET_FUZZ_SEED:=$RANDOM$RANDOM})"
  cargo test -q --release --workspace --test tests --no-run
  for t in "${TARGETS[@]}"; do
    echo "[fuzz] === $t ==="
    log=$(mktemp)
    rc=0
    OBFNET_FUZZ_SECONDS="$SECS" OBFNET_FUZZ_SEED="$OBFNET_FUZZ_SEED" \
      cargo test -q --release --workspace --test tests "fuzz_props::$t" -- --exact --nocapture \
      >"$log" 2>&1 || rc=$?
    grep -E "fuzz property|panicked|crashed|input \(hex\)" "$log" | cut -c1-2000 || true
    if [ "$rc" != 0 ]; then echo "[fuzz] $t: CRASH (exit $rc)"; status=1; fi
    rm -f "$log"
  done
fi
[ "$status" = 0 ] && echo "[fuzz] no crash in ${#TARGETS[@]} targets" || echo "[fuzz] crashes found"
exit "$status"
