#!/usr/bin/env bash
# make demo: the paper's experiment on the embedded mini-Cityscapes, sized for a CPU (about 14 minutes
# on 2 cores). One command runs plans/demo.toml: synth -> stats -> train-generator -> compose -> render
# (GAN and oracle painter) -> train-eval (11 conditions x 3 seeds) -> report, and prints the final table.
#
# Everything goes to demo-out/experiment (DEMO_OUT to change demo-out). Stages are keyed by their
# configs, so an interrupted demo continues where it stopped when run again, and a finished one
# prints its table in seconds; `rm -rf demo-out` starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
LF=".venv/bin/labelforge"
OUT="${DEMO_OUT:-demo-out}"
mkdir -p "$OUT"

$LF experiment plans/demo.toml --out "$OUT/experiment"

printf '\nReport: %s (tables, ratio curve, training-data preview; also report.md, report.json)\n' \
    "$OUT/experiment/report/report.html"
printf 'Every stage folder: %s/experiment/<stage>/<label>-<key>/ (previews in compose/, render/, synth/)\n' "$OUT"
