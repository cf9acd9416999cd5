#!/usr/bin/env bash
# FSDD accuracy behind the nets vs training budget (issue 14 item 4; README "Why FSDD lost 6
# points"). Trains the frozen LeNet-5 on FSDD, then K = 2 ObfNet2 nets per variant and prints
# the mean accuracy behind them. About 40 min on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --workspace --bin obfnet
B=./target/release/obfnet
O=${OUT:-runs/fsdd}
mkdir -p "$O"
$B fetch --dataset fsdd
test -f "$O/server/config.json" || $B train-model --dataset fsdd --epochs 30 --out "$O/server"
run() { # NAME ARGS...
  local name=$1
  shift
  test -f "$O/$name.obfb" ||
    $B train-obf --dataset fsdd --model "$O/server" -k 2 "$@" --out "$O/$name.obfb" > "$O/$name.log" 2>&1
  echo "$name ($*): $(grep 'mean behind' "$O/$name.log")"
}
run obfnet2-e8 --epochs 8
run obfnet2-e8-clip --epochs 8 --clip-output
run obfnet2-e30 --epochs 30
run obfnet2-e30-clip --epochs 30 --clip-output
run obfnet2-e30-lr3 --epochs 30 --lr 0.003
run obfnet2-e60 --epochs 60
