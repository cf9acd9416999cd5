#!/usr/bin/env bash
# Load benchmark of `obfnet serve` on loopback: requests/s and p50/p99 latency at batch 1 for the
# LeNet-5 model and for the same server with a no-op model (the service's own ceiling), measured
# in the same run, alternating, REPS times; prints the medians and the LeNet / no-op ratio.
#
#   scripts/bench-serve.sh [MODEL_DIR] [CONNECTIONS] [SECONDS] [REPS]
#
# Bounded: REPS x 2 runs of SECONDS each. Client and server share the machine's cores, so the
# numbers are a floor for the server alone. Results go to bench-out/serve.json.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-runs/qs-default/server}
CONNS=${2:-8}
SECS=${3:-5}
REPS=${4:-3}
cargo build --release -q -p obfnet-cli
cargo build --release -q -p obfnet-serve --example loadgen
BIN=./target/release/obfnet
LOAD=./target/release/examples/loadgen
mkdir -p bench-out
RESULTS=bench-out/serve-runs.jsonl
: >"$RESULTS"

start_server() { # $@: extra flags; sets PID and ADDR
  local out; out=$(mktemp)
  "$BIN" --json serve --addr 127.0.0.1:0 "$@" >"$out" 2>/dev/null &
  PID=$!
  ADDR=""
  for _ in $(seq 1 300); do
    ADDR=$(sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' "$out" | head -1)
    [ -n "$ADDR" ] && break
    sleep 0.1
  done
  rm -f "$out"
  [ -n "$ADDR" ] || { echo "server did not start" >&2; kill "$PID"; exit 1; }
}

for rep in $(seq 1 "$REPS"); do
  for kind in lenet noop; do
    if [ "$kind" = lenet ]; then start_server --model "$MODEL"; else start_server --noop; fi
    "$LOAD" "$ADDR" "$CONNS" 1 >/dev/null # warm-up
    line=$("$LOAD" "$ADDR" "$CONNS" "$SECS")
    echo "{\"model\":\"$kind\",\"rep\":$rep,\"result\":$line}" | tee -a "$RESULTS"
    kill -TERM "$PID"; wait "$PID" || true
  done
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
out = {}
for kind in ("lenet", "noop"):
    rs = [r["result"] for r in runs if r["model"] == kind]
    out[kind] = {k: statistics.median(r[k] for r in rs) for k in ("req_per_s", "p50_ms", "p99_ms")}
    out[kind]["errors"] = sum(r["errors"] for r in rs)
    out[kind]["runs"] = len(rs)
out["ratio_req_per_s"] = out["lenet"]["req_per_s"] / out["noop"]["req_per_s"]
json.dump(out, open("bench-out/serve.json", "w"), indent=1)
print(f"medians of {out['lenet']['runs']} runs each")
for kind in ("lenet", "noop"):
    o = out[kind]
    print(f"{kind:6s} {o['req_per_s']:8.0f} req/s   p50 {o['p50_ms']:.2f} ms   p99 {o['p99_ms']:.2f} ms   errors {o['errors']}")
print(f"LeNet / no-op throughput: {out['ratio_req_per_s']:.2f} (goal >= 0.50)")
PY
