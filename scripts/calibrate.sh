#!/usr/bin/env bash
# The measurement behind make demo's scale (docs/experiments.md, "Calibrating the CPU demo"):
# the 64x128 mini-Cityscapes, the `fast` segmenter preset, 3 seeds of
#   baseline | control (identity maps, oracle-painted) | oracle (truck + bus pasted, oracle-painted)
#   | oracle with wall, fence, truck, bus pasted
# then one report. Plain CLI commands; everything goes to $OUT (default calib-out/).
#
#   bash scripts/calibrate.sh                 # one run at a time
#   LANES=2 bash scripts/calibrate.sh         # two single-threaded runs side by side (2 cores)
#
# Each train-eval run records its seconds in metrics.json (history[].seconds); report prints
# mean ± std over the seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
LF="${LF:-.venv/bin/labelforge}"
OUT="${OUT:-calib-out}"
LANES="${LANES:-1}"
SEEDS="${SEEDS:-0 1 2}"
mkdir -p "$OUT"
export LABELFORGE_CACHE="$OUT/cache"

# Data: 300 train + 300 val scenes at 64x128 (val 300 holds truck in 27 images, bus in 20).
[ -f "$OUT/mini/_SUCCESS" ] || $LF synth "$OUT/mini" --train 300 --val 300 --size 64x128 --seed 0
# Supplementary maps: as many as the originals (--ratio 0.5), painted by the oracle painter.
compose() { # name, compose options...
    local name=$1
    shift
    [ -f "$OUT/$name/_SUCCESS" ] || $LF compose "$OUT/mini" "$@" --ratio 0.5 --out "$OUT/$name"
    [ -f "$OUT/$name-oracle/_SUCCESS" ] || $LF render "$OUT/$name" --oracle --out "$OUT/$name-oracle"
}
compose identity --method identity
compose multi-tb --method multi -c truck -c bus
compose multi-wftb --method multi -c wall -c fence -c truck -c bus

# Training runs: name|extra options, one line each, for every seed.
runs() {
    for seed in $SEEDS; do
        echo "baseline-s$seed|--seed $seed"
        echo "control-s$seed|--seed $seed --supp $OUT/identity-oracle --supp-ratio 0.5"
        echo "oracle-tb-s$seed|--seed $seed --supp $OUT/multi-tb-oracle --supp-ratio 0.5"
        echo "oracle-wftb-s$seed|--seed $seed --supp $OUT/multi-wftb-oracle --supp-ratio 0.5"
    done
}
train_one() { # "name|options"
    local name=${1%%|*} opts=${1#*|}
    [ -f "$OUT/runs/$name/_SUCCESS" ] && return 0
    # shellcheck disable=SC2086  # opts is a list of options
    OMP_NUM_THREADS=$((LANES > 1 ? 1 : 2)) $LF train-eval "$OUT/mini" --preset fast $opts --workers 1 -q \
        --overwrite --out "$OUT/runs/$name" >"$OUT/runs/$name.log" 2>&1
    echo "$name: $(tail -n 1 "$OUT/runs/$name/log.jsonl")"
}
export -f train_one
export LF OUT LANES
mkdir -p "$OUT/runs"
runs | xargs -P "$LANES" -I{} bash -c 'train_one "$@"' _ {}

$LF report "$OUT"/runs/*/ --out "$OUT/report" --overwrite
