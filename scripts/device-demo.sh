#!/usr/bin/env bash
# The device end to end, as the README's device section quotes it: `obfnet device` against a
# running `obfnet serve` over OIP REST, OIP gRPC and MQTT v5 (a real mosquitto), on MNIST
# digits and FSDD clips (MFCC computed on the device from the WAV file). Each run prints the
# summary line (accuracy over the samples sent, medians of read/preprocess, obfuscate, encode
# and round trip) and the device process's peak RSS (`/usr/bin/time -v`).
#
# Usage: scripts/device-demo.sh [MNIST_SERVER_DIR]
#   env: OBFNET_DATA_DIR [data], OBFNET [target/release/obfnet], OUT [runs/device-demo],
#        N [200] MNIST samples per run, PORT [18000] (REST+gRPC; FSDD server on PORT+1),
#        MQTT_PORT [18830]
# Missing artifacts are trained first (MNIST server model unless given; K=2 bundles; FSDD model).
set -euo pipefail
OBFNET=${OBFNET:-target/release/obfnet}
D=${OBFNET_DATA_DIR:-data}
export OBFNET_DATA_DIR=$D
OUT=${OUT:-runs/device-demo}
N=${N:-200}
PORT=${PORT:-18000}
FPORT=$((PORT + 1))
MQTT_PORT=${MQTT_PORT:-18830}
MNIST_SERVER=${1:-$OUT/mnist-server}
mkdir -p "$OUT"
say() { printf '\n== %s\n' "$*"; }

say "artifacts"
[ -f "$MNIST_SERVER/model.safetensors" ] || nice -n 10 "$OBFNET" train-model --out "$MNIST_SERVER"
[ -f "$OUT/mnist-k2.obfb" ] || nice -n 10 "$OBFNET" train-obf --model "$MNIST_SERVER" -k 2 --epochs 1 --out "$OUT/mnist-k2.obfb"
[ -f "$OUT/fsdd-server/model.safetensors" ] || nice -n 10 "$OBFNET" train-model --dataset fsdd --epochs 20 --out "$OUT/fsdd-server"
[ -f "$OUT/fsdd-k2.obfb" ] || nice -n 10 "$OBFNET" train-obf --dataset fsdd --model "$OUT/fsdd-server" -k 2 --epochs 10 --out "$OUT/fsdd-k2.obfb"
# the server owner ships the MFCC front end (settings + quantiser) with the bundle
[ -f "$OUT/fsdd-mfcc.json" ] || "$OBFNET" device --fsdd-dir "$D/fsdd" --save-mfcc "$OUT/fsdd-mfcc.json"
# a valid bundle for the same model that the server does not issue
[ -f "$OUT/mnist-k2-int8.obfb" ] || "$OBFNET" quantize "$OUT/mnist-k2.obfb" --out "$OUT/mnist-k2-int8.obfb"

say "broker and servers"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
# set_tcp_nodelay: without it Nagle's algorithm delays each small reply by tens of milliseconds
printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser %s\nset_tcp_nodelay true\n' "$MQTT_PORT" "$(id -un)" >"$OUT/mosquitto.conf"
mosquitto -c "$OUT/mosquitto.conf" >"$OUT/mosquitto.log" 2>&1 &
PIDS+=($!)
"$OBFNET" serve --model "$MNIST_SERVER" --bundle "$OUT/mnist-k2.obfb" --addr "127.0.0.1:$PORT" \
  --mqtt-host 127.0.0.1 --mqtt-port "$MQTT_PORT" --mqtt-client-id demo-mnist >"$OUT/serve-mnist.log" 2>&1 &
PIDS+=($!)
"$OBFNET" serve --model "$OUT/fsdd-server" --model-name lenet5-fsdd --bundle "$OUT/fsdd-k2.obfb" \
  --addr "127.0.0.1:$FPORT" --mqtt-host 127.0.0.1 --mqtt-port "$MQTT_PORT" --mqtt-client-id demo-fsdd \
  >"$OUT/serve-fsdd.log" 2>&1 &
PIDS+=($!)
for p in "$PORT" "$FPORT"; do
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$p/v2/health/ready" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$p/v2/health/ready" >/dev/null || { echo "server on $p not ready" >&2; exit 1; }
done
say "published model metadata"
curl -s "http://127.0.0.1:$PORT/v2/models/lenet5" && echo
curl -s "http://127.0.0.1:$FPORT/v2/models/lenet5-fsdd" && echo

# one device run: its summary line and peak RSS
dev() {
  local name=$1
  shift
  local cmd="$*"
  [ ${#cmd} -le 300 ] || cmd="${cmd:0:300} ..."
  say "$name: obfnet device $cmd"
  local rc=0
  /usr/bin/time -v "$OBFNET" device "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" || rc=$?
  tail -n 1 "$OUT/$name.out"
  grep -v -E '^\s' "$OUT/$name.err" | grep -v 'Command exited' || true
  grep -E 'Maximum resident set size' "$OUT/$name.err" | sed 's/^\s*/peak RSS: /' || true
  echo "exit code $rc"
}

IMG=$D/mnist/t10k-images-idx3-ubyte
LAB=$D/mnist/t10k-labels-idx1-ubyte
SHA=$(sha256sum "$MNIST_SERVER/model.safetensors" | cut -c1-64)
dev mnist-rest --rest "http://127.0.0.1:$PORT" --bundle "$OUT/mnist-k2.obfb" --labels "$LAB" --limit "$N" "$IMG"
dev mnist-grpc --grpc "http://127.0.0.1:$PORT" --bundle "$OUT/mnist-k2.obfb" --labels "$LAB" --limit "$N" "$IMG"
dev mnist-mqtt --mqtt "127.0.0.1:$MQTT_PORT" --server-model-sha256 "$SHA" --bundle "$OUT/mnist-k2.obfb" \
  --labels "$LAB" --limit "$N" "$IMG"
dev mnist-rest-int8-u8 --rest "http://127.0.0.1:$PORT" --bundle "$OUT/mnist-k2.obfb" --weights int8 --wire u8 \
  --labels "$LAB" --limit "$N" "$IMG"
dev mnist-rest-raw --rest "http://127.0.0.1:$PORT" --raw --labels "$LAB" --limit "$N" "$IMG"
dev mnist-not-issued --rest "http://127.0.0.1:$PORT" --bundle "$OUT/mnist-k2-int8.obfb" --labels "$LAB" --limit "$N" "$IMG"

# FSDD: the test split (takes 0-4 of every speaker and digit), WAV -> MFCC -> u8 map -> obfuscated on the device
WAVS=("$D"/fsdd/recordings/*_[0-4].wav)
FSHA=$(sha256sum "$OUT/fsdd-server/model.safetensors" | cut -c1-64)
dev fsdd-rest --rest "http://127.0.0.1:$FPORT" --model lenet5-fsdd --bundle "$OUT/fsdd-k2.obfb" --mfcc "$OUT/fsdd-mfcc.json" "${WAVS[@]}"
dev fsdd-grpc --grpc "http://127.0.0.1:$FPORT" --model lenet5-fsdd --bundle "$OUT/fsdd-k2.obfb" --mfcc "$OUT/fsdd-mfcc.json" "${WAVS[@]}"
dev fsdd-mqtt --mqtt "127.0.0.1:$MQTT_PORT" --model lenet5-fsdd --server-model-sha256 "$FSHA" --bundle "$OUT/fsdd-k2.obfb" \
  --mfcc "$OUT/fsdd-mfcc.json" "${WAVS[@]}"
dev fsdd-rest-raw --rest "http://127.0.0.1:$FPORT" --model lenet5-fsdd --raw --bundle "$OUT/fsdd-k2.obfb" --mfcc "$OUT/fsdd-mfcc.json" "${WAVS[@]}"
