#!/usr/bin/env bash
# make demo: the paper's whole pipeline on the embedded mini-Cityscapes, sized for a CPU
# (15-20 minutes on 2 cores). Everything goes to demo-out/ (DEMO_OUT to change it).
#
#   synth -> stats -> compose (overlay, multi, reconstruct) -> stats before/after
#   -> train-generator -> render (GAN and oracle painter) -> train-eval x3 -> report
#
# With a few CPU minutes of training from random weights the absolute numbers are small and
# noisy; the demo shows every stage working on real files, not the paper's result.
set -euo pipefail
cd "$(dirname "$0")/.."
LF=".venv/bin/labelforge"
OUT="${DEMO_OUT:-demo-out}"
rm -rf "$OUT"
mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/7 mini-Cityscapes (Cityscapes layout: photos, labelIds, instanceIds)"
$LF synth "$OUT/mini" --train 300 --val 100 --size 256x512 --seed 0

step "2/7 class statistics: the long tail"
$LF stats "$OUT/mini" --split train --split val --out "$OUT/stats"

step "3/7 compose new label maps"
$LF compose "$OUT/mini" --method overlay --class wall --ratio 0.5 --out "$OUT/overlay-wall" --preview 6
$LF compose "$OUT/mini" --method multi --class wall --class fence --class pole --class "traffic light" \
    --class truck --count 150 --out "$OUT/multi" --preview 6
$LF compose "$OUT/mini" --method reconstruct --target inverse --ratio 0.5 --out "$OUT/reconstruct" --preview 6

step "4/7 stats before/after reconstruction"
$LF stats "$OUT/mini" "$OUT/reconstruct" --out "$OUT/stats-reconstruct"

step "5/7 train the pix2pixHD generator (tiny preset)"
$LF train-generator "$OUT/mini" --preset tiny --size 128x256 --epochs 5 --out "$OUT/generator"

step "6/7 render the reconstructed maps: GAN, and the oracle painter (a perfect generator)"
$LF render "$OUT/reconstruct" --generator "$OUT/generator" --out "$OUT/reconstruct-gan" --preview 6
$LF render "$OUT/reconstruct" --oracle --out "$OUT/reconstruct-oracle" --preview 6

step "7/7 PSPNet (tiny preset): baseline vs. reconstruction-augmented"
$LF train-eval "$OUT/mini" --preset tiny --iters 80 --out "$OUT/run-baseline"
$LF train-eval "$OUT/mini" --preset tiny --iters 80 --supp "$OUT/reconstruct-gan" --supp-ratio 0.3 \
    --out "$OUT/run-reconstruct-gan"
$LF train-eval "$OUT/mini" --preset tiny --iters 80 --supp "$OUT/reconstruct-oracle" --supp-ratio 0.3 \
    --out "$OUT/run-reconstruct-oracle"

step "report"
$LF report "$OUT/run-baseline" "$OUT/run-reconstruct-gan" "$OUT/run-reconstruct-oracle" --out "$OUT/report"

printf '\nEverything is in %s/: dataset preview %s, compose previews %s/*/preview.png,\n' \
    "$OUT" "$OUT/mini/preview.png" "$OUT"
printf 'generator samples %s, report %s\n' "$OUT/generator/samples/" "$OUT/report/report.md"
