#!/usr/bin/env bash
# FSDD attribute privacy (README "Who is speaking"): the strong reconstruction suite and speaker
# identification on the accurate 60-epoch K = 2 nets of scripts/fsdd-budget.sh, and on the same
# recipe trained with class collapse (about 40 min on a 2-core machine); then the clipped
# bottleneck nets with device noise and the speaker term (about 1 h more).
set -euo pipefail
cd "$(dirname "$0")/.."
B=./target/release/obfnet
O=${OUT:-runs/fsdd}
test -f "$O/obfnet2-e60.obfb" || bash scripts/fsdd-budget.sh
test -f "$O/obfnet2-e60-col10.obfb" ||
  $B train-obf --dataset fsdd --model "$O/server" -k 2 --epochs 60 --adversary-weight 0 --collapse 10 \
    --out "$O/obfnet2-e60-col10.obfb"
for n in obfnet2-e60 obfnet2-e60-col10; do
  test -f "$O/report-$n/report.md" ||
    $B report --dataset fsdd --model "$O/server" --bundle "$O/$n.obfb" --archs obfnet2 -k 2 --no-baselines \
      --skip shadow,distinguishers --eval-samples 300 --recogniser-epochs 30 --out "$O/report-$n"
  sed -n '/^Speaker identification/,/^$/p;/^| scheme | K | raw inputs/,/^$/p' "$O/report-$n/report.md"
done
# README "Hiding the speaker": the clipped bottleneck nets with device noise, then with the
# adversarial speaker term (--attribute-weight) at 0.83 M multiply-adds (--hidden 600).
bneck() { # NAME ARGS...
  local n=$1
  shift
  test -f "$O/$n.obfb" ||
    $B train-obf --dataset fsdd --model "$O/server" --arch bottleneck --bottleneck 32 --adversary-weight 3 \
      --collapse 10 --clip-output -k 2 --epochs "${EP:-60}" "$@" --out "$O/$n.obfb"
  $B evaluate --dataset fsdd --model "$O/server" --bundle "$O/$n.obfb" | tail -2
  test -f "$O/report-$n/report.md" ||
    $B report --dataset fsdd --model "$O/server" --bundle "$O/$n.obfb" --archs bottleneck -k 2 --no-baselines \
      --skip inverse,rmle,shadow,distinguishers,conv-pooled,conv-per-net,latent-search --eval-samples 300 \
      --recogniser-epochs 30 --out "$O/report-$n"
  sed -n '/^| scheme | K | raw inputs/,/^$/p' "$O/report-$n/report.md"
}
bneck bneck-clip-noise0.3 --output-noise 0.3
bneck bneck-clip-noise0.5 --output-noise 0.5
bneck bneck-h600-attr1-noise0.3 --hidden 600 --output-noise 0.3 --attribute-weight 1
bneck bneck-h600-attr1-noise0.1 --hidden 600 --output-noise 0.1 --attribute-weight 1
bneck bneck-h600-attr1-noise0.2 --hidden 600 --output-noise 0.2 --attribute-weight 1
bneck bneck-h600-attr1-nonoise --hidden 600 --attribute-weight 1
EP=120 bneck bneck-h600-attr1-noise0.3-e120 --hidden 600 --output-noise 0.3 --attribute-weight 1
