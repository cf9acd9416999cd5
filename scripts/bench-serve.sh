#!/usr/bin/env bash
# Load benchmark of `obfnet serve` on loopback: requests/s and p50/p99 latency at batch 1 for the
# LeNet-5 model and for the same server with a no-op model (the service's own ceiling), measured
# in the same run, alternating, REPS times; prints the medians and the LeNet / no-op ratio.
#
#   scripts/bench-serve.sh [MODEL_DIR] [CONNECTIONS] [SECONDS] [REPS]
#
# KINDS (environment) picks the servers, run in this order in every repetition:
#   lenet       obfnet serve --model MODEL_DIR (batch-1 requests on the edge runtime, the default)
#   lenet-burn  the same with --batch1-engine burn (every batch on burn, as before)
#   noop        obfnet serve --noop: the service's own ceiling
#   torch       scripts/serve_torch.py: the same weights in PyTorch behind FastAPI + uvicorn
#               (the benchmark venv .venv-bench, made by scripts/bench-venv.sh; PyTorch wheel
#               ~3.7 GB on first use), 1 torch thread
# Default KINDS="lenet noop". All share the load generator
# (crates/obfnet-serve/examples/loadgen.rs). OBFNET_BIN=path runs another obfnet binary (e.g. an
# older build, for a before/after comparison).
#
# Bounded: REPS x len(KINDS) runs of SECONDS each. Client and server share the machine's cores, so
# the numbers are a floor for the server alone; the load average is recorded with every run.
# Results go to bench-out/serve.json.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-runs/qs-default/server}
CONNS=${2:-8}
SECS=${3:-5}
REPS=${4:-3}
KINDS=${KINDS:-lenet noop}
# --workspace keeps cargo's feature unification (and so burn's build) the same as everywhere else.
# OBFNET_BIN and OBFNET_LOADGEN together: prebuilt binaries, nothing is built.
if [ -z "${OBFNET_BIN:-}" ] || [ -z "${OBFNET_LOADGEN:-}" ]; then
  cargo build --release -q --workspace --bin obfnet --example loadgen
fi
BIN=${OBFNET_BIN:-./target/release/obfnet}
LOAD=${OBFNET_LOADGEN:-./target/release/examples/loadgen}
mkdir -p bench-out
RESULTS=bench-out/serve-runs.jsonl
: >"$RESULTS"
if [[ " $KINDS " == *" torch "* ]]; then
    source scripts/bench-venv.sh
    ensure_bench_venv "$PWD" echo
fi

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

start_torch() { # sets PID and ADDR
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$PY" scripts/serve_torch.py "$MODEL" "$port" 1 >/dev/null 2>&1 &
  PID=$!
  ADDR="127.0.0.1:$port"
  for _ in $(seq 1 600); do
    curl -sf "http://$ADDR/v2/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "python server did not start" >&2; kill "$PID"; exit 1
}

for rep in $(seq 1 "$REPS"); do
  for kind in $KINDS; do
    case "$kind" in
      lenet) start_server --model "$MODEL" ;;
      lenet-burn) start_server --model "$MODEL" --batch1-engine burn ;;
      noop) start_server --noop ;;
      torch) start_torch ;;
      *) echo "unknown kind $kind" >&2; exit 2 ;;
    esac
    "$LOAD" "$ADDR" "$CONNS" 1 >/dev/null # warm-up
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    line=$("$LOAD" "$ADDR" "$CONNS" "$SECS")
    echo "{\"model\":\"$kind\",\"rep\":$rep,\"loadavg\":\"$load\",\"result\":$line}" | tee -a "$RESULTS"
    kill -TERM "$PID"; wait "$PID" || true
  done
done

python3 - "$RESULTS" "$KINDS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
kinds = sys.argv[2].split()
out = {}
for kind in kinds:
    rs = [r["result"] for r in runs if r["model"] == kind]
    out[kind] = {k: statistics.median(r[k] for r in rs) for k in ("req_per_s", "p50_ms", "p99_ms")}
    out[kind]["errors"] = sum(r["errors"] for r in rs)
    out[kind]["runs"] = len(rs)
    out[kind]["loadavg_1min"] = [float(r["loadavg"].split()[0]) for r in runs if r["model"] == kind]
def ratio(a, b):
    if a in out and b in out and out[b]["req_per_s"] > 0:
        out[f"ratio_{a}_over_{b}"] = out[a]["req_per_s"] / out[b]["req_per_s"]
        return out[f"ratio_{a}_over_{b}"]
r_noop = ratio("lenet", "noop")
if r_noop is not None:
    out["ratio_req_per_s"] = r_noop  # the name earlier versions of this script used
r_torch = ratio("lenet", "torch")
r_burn = ratio("lenet", "lenet-burn")
ratio("lenet-burn", "noop")
json.dump(out, open("bench-out/serve.json", "w"), indent=1)
print(f"medians of {min(out[k]['runs'] for k in kinds)} runs each")
for kind in kinds:
    o = out[kind]
    loads = " ".join(f"{v:.1f}" for v in o["loadavg_1min"])
    print(f"{kind:10s} {o['req_per_s']:8.0f} req/s   p50 {o['p50_ms']:.2f} ms   p99 {o['p99_ms']:.2f} ms   errors {o['errors']}   load avg {loads}")
if r_noop is not None:
    print(f"LeNet / no-op throughput: {r_noop:.2f} (goal >= 0.50 with 8 connections, >= 0.70 with one)")
if "ratio_lenet-burn_over_noop" in out:
    print(f"LeNet on burn only / no-op throughput: {out['ratio_lenet-burn_over_noop']:.2f}")
if r_burn is not None:
    print(f"LeNet edge batch-1 / burn-only throughput: {r_burn:.2f}")
if r_torch is not None:
    print(f"obfnet / Python (FastAPI + uvicorn + PyTorch) throughput: {r_torch:.1f}x (goal >= 10x)")
PY
