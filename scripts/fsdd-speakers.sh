#!/usr/bin/env bash
# FSDD attribute privacy (README "Who is speaking"): the strong reconstruction suite and speaker
# identification on the accurate 60-epoch K = 2 nets of scripts/fsdd-budget.sh, and on the same
# recipe trained with class collapse. About 40 min on a 2-core machine.
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
