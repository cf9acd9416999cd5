#!/usr/bin/env bash
# Soak test of `obfnet serve` (not in CI; issue 18 item 5): mixed valid and hostile traffic over
# REST, gRPC and MQTT v5 on loopback for a while, with a mosquitto restart in the middle.
#
#   scripts/soak.sh [--duration SECONDS] [--interval SECONDS] [--warmup SECONDS]
#                   (defaults 300 / 30 / 60)
#
# Starts a private mosquitto (persistence on) and `obfnet serve` with an MQTT worker on free
# ports, runs the load generator (crates/obfnet-serve/examples/soak.rs) and prints one JSON
# line per interval (requests, errors by class, p50/p99 latency of valid requests, server RSS)
# and a summary. Fails on any 5xx, a lost QoS 1 MQTT request (the device retries every 5 s,
# 6 tries), a valid request not answered, or server RSS growth over 10 % after warm-up.
# Model: $SOAK_MODEL, else runs/qs-default/server, else target/oip-model, else a quick LeNet trained here
# (1 epoch, 10k MNIST images; needs the data in ${OBFNET_DATA_DIR:-data}).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=300 INTERVAL=30 WARMUP=60
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --interval) INTERVAL="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

MOSQ="${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}"
[ -x "$MOSQ" ] || { echo "[soak] mosquitto not found (apt-get install mosquitto)" >&2; exit 2; }

# $SOAK_BIN / $SOAK_LOADGEN: already built `obfnet` and `soak` example binaries (default: build
# this tree's).
if [ -z "${SOAK_BIN:-}" ]; then cargo build --release -q --workspace --bin obfnet; fi
if [ -z "${SOAK_LOADGEN:-}" ]; then cargo build --release -q --workspace --example soak; fi
LOADGEN="${SOAK_LOADGEN:-./target/release/examples/soak}"
BIN="${SOAK_BIN:-./target/release/obfnet}"
DATA="${OBFNET_DATA_DIR:-data}"
if [ -n "${SOAK_MODEL:-}" ]; then MODEL="$SOAK_MODEL"
elif [ -f runs/qs-default/server/model.safetensors ]; then MODEL=runs/qs-default/server
elif [ -f target/oip-model/model.safetensors ]; then MODEL=target/oip-model
else
  MODEL=target/soak-model
  if [ ! -f "$MODEL/model.safetensors" ]; then
    echo "[soak] training a quick LeNet for the soak" >&2
    "$BIN" --json train-model --data-dir "$DATA" --epochs 1 --limit 10000 --out "$MODEL" >/dev/null
  fi
fi

WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQTT_PORT=$(free_port)
HTTP_PORT=$(free_port)
cat > "$WORK/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $WORK/
autosave_interval 1
max_queued_messages 10000
log_dest file $WORK/broker.log
user $(id -un)
CONF
cat > "$WORK/serve.json" <<CONF
{"addr": "127.0.0.1:$HTTP_PORT",
 "mqtt": {"host": "127.0.0.1", "port": $MQTT_PORT, "client_id": "soak-worker"}}
CONF

SERVER_PID="" BROKER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$MOSQ" -c "$WORK/mosquitto.conf" & BROKER_PID=$!
sleep 0.5
"$BIN" serve --model "$MODEL" --config "$WORK/serve.json" > "$WORK/serve.log" 2>&1 & SERVER_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$HTTP_PORT/v2/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$HTTP_PORT/v2/health/ready" >/dev/null || { echo "[soak] server not ready" >&2; cat "$WORK/serve.log" >&2; exit 1; }
echo "[soak] model $MODEL; server pid $SERVER_PID on :$HTTP_PORT; mosquitto :$MQTT_PORT; ${DURATION}s, report every ${INTERVAL}s, warm-up ${WARMUP}s"

# The mosquitto restart in the middle (graceful: it saves its persistence file).
(
  sleep $((DURATION / 2))
  echo "[soak] t=$((DURATION / 2))s: restarting mosquitto" >&2
  kill "$BROKER_PID" 2>/dev/null || true
  while kill -0 "$BROKER_PID" 2>/dev/null; do sleep 0.05; done
  "$MOSQ" -c "$WORK/mosquitto.conf" & echo $! > "$WORK/broker2.pid"
  wait
) &
RESTARTER=$!

rc=0
"$LOADGEN" --addr "127.0.0.1:$HTTP_PORT" --mqtt-port "$MQTT_PORT" \
  --server-pid "$SERVER_PID" --duration "$DURATION" --interval "$INTERVAL" --warmup "$WARMUP" || rc=$?
if [ -f "$WORK/broker2.pid" ]; then BROKER_PID=$(cat "$WORK/broker2.pid"); fi
kill "$RESTARTER" 2>/dev/null || true
if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "[soak] the server died" >&2; rc=1; fi
[ "$rc" = 0 ] && echo "[soak] PASS" || { echo "[soak] FAIL"; tail -20 "$WORK/serve.log" >&2; }
exit "$rc"
