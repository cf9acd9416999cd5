#!/usr/bin/env bash
# The privacy-utility frontier: trains privacy-aware obfuscators (the bottleneck architecture, a
# sweep of the adversarial weight λ, the diversity term) against the quickstart's frozen LeNet-5,
# then scores every bundle with FRESH attackers (`obfnet report --frontier`: new inverse networks
# pooled and per net, rMLE, the query-free shadow model, the distinguishers), next to the
# published ObfNet2 and the local-DP-noise and projection baselines.
#
# Needs the quickstart's run (scripts/quickstart.sh; RUN=runs/qs-default by default). Bundles and
# results already in OUT are reused, so an interrupted run continues where it stopped.
# Measured on the shared 2-core machine (other jobs running): 8-30 min per K = 2 sweep point's
# training, 72 min for the K = 10 configuration, 7-15 min per bundle in the report; about 4 h
# in all, most of it the K = 10 training. See README ("Obfuscators that resist inversion").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --workspace --bin obfnet
RUN=${RUN:-runs/qs-default}
OUT=${OUT:-runs/frontier}
B=./target/release/obfnet
mkdir -p "$OUT"
test -f "$RUN/server/config.json" || { echo "no server model in $RUN (run scripts/quickstart.sh first)" >&2; exit 1; }

train() { # NAME ARGS...: trains $OUT/obfnets-NAME.obfb unless it exists
  local name=$1
  shift
  if [ ! -f "$OUT/obfnets-$name.obfb" ]; then
    echo "[frontier] training $name: $*"
    "$B" train-obf --model "$RUN/server" --out "$OUT/obfnets-$name.obfb" --json "$@" > "$OUT/train-$name.json"
  fi
}

# The sweep: two nets each, 3 epochs (the points of the frontier).
S=(-k 2 --epochs 3)
train sweep-bneck32 --arch bottleneck --bottleneck 32 "${S[@]}"
train sweep-bneck32-adv1 --arch bottleneck --bottleneck 32 --adversary-weight 1 "${S[@]}"
train sweep-bneck32-adv3 --arch bottleneck --bottleneck 32 --adversary-weight 3 "${S[@]}"
train sweep-bneck32-adv10 --arch bottleneck --bottleneck 32 --adversary-weight 10 "${S[@]}"
train sweep-bneck32-adv3-div1 --arch bottleneck --bottleneck 32 --adversary-weight 3 --diversity 1 "${S[@]}"
train sweep-obfnet2-adv3 --arch obfnet2 --adversary-weight 3 "${S[@]}"
# The configuration for the goal (K = 10, 4 epochs, output clipped to the raw range).
train bneck32-adv3-clip --arch bottleneck --bottleneck 32 --adversary-weight 3 --clip-output -k 10 --epochs 4

frontier=()
for f in "$OUT"/obfnets-sweep-*.obfb "$OUT"/obfnets-bneck32-adv3-clip.obfb; do
  frontier+=(--frontier "$f")
done
exec "$B" report --model "$RUN/server" --bundle "$RUN/obfnets-obfnet2.obfb" --archs obfnet2 -k 10 \
  "${frontier[@]}" --baselines laplace:7840,gaussian:0.25,projection-gaussian:196 \
  --out "$OUT" --resume "$@"
