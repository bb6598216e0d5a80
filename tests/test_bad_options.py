"""Nonsensical options, every command: exit status 2, one line naming the option (unknown names answered
with the valid ones), no traceback, nothing written (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _bad_inputs import World, assert_refused, fill

COMPOSE = "compose {root} --out {out} --class car --cache-dir {cache}"
GEN = "train-generator {root} --out {out} --size 32x64 --device cpu"
TRAIN_EVAL = "train-eval {root} --out {out} --preset fast --device cpu -q"
# (id, command line, what the one line must say)
CASES = [
    ("check-split", "check {root} --split nosuch", ["'nosuch'", "splits present: train, val"]),
    ("check-workers", "check {root} -j -1", ["--workers"]),
    ("stats-rare", "stats {root} --rare-threshold 1.5", ["--rare-threshold", "1.5"]),
    ("stats-weak", "stats {root} --weak-threshold -0.1", ["--weak-threshold"]),
    ("stats-max-classes", "stats {root} --max-classes -1", ["--max-classes"]),
    ("compose-count", COMPOSE + " --count -1", ["--count", "-1"]),
    ("compose-ratio-high", COMPOSE + " --ratio 1.5", ["--ratio", "1.5"]),
    ("compose-ratio-negative", COMPOSE + " --ratio -0.5", ["--ratio"]),
    ("compose-class", "compose {root} --out {out} --class nosuchclass", ["'nosuchclass'", "valid: road, sidewalk"]),
    ("compose-protect", COMPOSE + " --protect nosuch", ["'nosuch'", "valid:"]),
    ("compose-method", "compose {root} --out {out} --method nosuch", ["'nosuch'", "valid: overlay"]),
    ("compose-shift", COMPOSE + " --shift 2", ["--shift"]),
    ("compose-min-visible", COMPOSE + " --min-visible 1.5", ["--min-visible"]),
    ("compose-min-contact", COMPOSE + " --min-contact -0.2", ["--min-contact"]),
    ("compose-per-shard", COMPOSE + " --samples-per-shard 0", ["--samples-per-shard"]),
    ("compose-min-area", COMPOSE + " --min-area -5", ["--min-area"]),
    ("compose-per-map", COMPOSE + " --method reconstruct --per-map -1", ["--per-map"]),
    ("compose-preview", COMPOSE + " --preview -1", ["--preview"]),
    ("export-layout", "export {labels} {out} --layout nosuch", ["'nosuch'", "valid: auto, cityscapes"]),
    ("gen-epochs", GEN + " --epochs -1", ["epochs"]),
    ("gen-batch", GEN + " --batch-size 0", ["batch size"]),
    ("gen-size", "train-generator {root} --out {out} --size 10x", ["'10x'"]),
    ("gen-lr", GEN + " --lr -1", ["lr"]),
    ("gen-decay", GEN + " --decay-epochs -1", ["--decay-epochs"]),
    ("gen-arch", GEN + " --arch nosuch", ["'nosuch'", "valid: pix2pixhd, oasis"]),
    ("gen-preset", GEN + " --preset nosuch", ["'nosuch'", "valid: tiny"]),
    ("render-k", "render {labels} --out {out} --oracle -k 0", ["--renders-per-map"]),
    ("render-batch", "render {labels} --out {out} --oracle --batch-size -2", ["--batch-size"]),
    ("render-no-generator", "render {labels} --out {out}", ["--generator", "--oracle"]),
    ("quality-max-images", "quality {images} --out {out} -s {missing} --max-images 1", ["--max-images"]),
    ("filter-factor", "filter {images} --out {out} -s {missing} --factor -1", ["factor"]),
    ("train-eval-ratio", TRAIN_EVAL + " --supp-ratio 1.5", ["--supp-ratio"]),
    ("train-eval-epochs", TRAIN_EVAL + " --epochs -1", ["--epochs"]),
    ("train-eval-iters", TRAIN_EVAL + " --iters -5", ["--iters"]),
    ("train-eval-batch", TRAIN_EVAL + " --batch-size 0", ["--batch-size"]),
    ("train-eval-lr", TRAIN_EVAL + " --lr -1", ["--lr"]),
    ("train-eval-preset", "train-eval {root} --out {out} --preset nosuch", ["'nosuch'", "valid: tiny, fast"]),
    ("train-eval-sampling", TRAIN_EVAL + " --sampling nosuch", ["--sampling", "uniform, rcs"]),
    ("train-eval-crop", TRAIN_EVAL + " --crop abc", ["--crop", "'abc'"]),
    ("train-eval-rcs", TRAIN_EVAL + " --sampling rcs --rcs-temperature -1", ["--rcs-temperature"]),
    ("evaluate-format", "evaluate {preds} {root} --out {out} --format nosuch", ["'nosuch'", "valid: auto"]),
    ("report-baseline", "report {run} --out {out} --baseline nosuch", ["'nosuch'", "run"]),
    ("report-names", "report {run} {run} --out {out} --name a", ["--name"]),
    ("experiment-executor", "experiment {missing} --out {out} --executor nosuch", ["'nosuch'", "valid: local"]),
    ("labelspace-suffix", "labelspace init {root} --out {out}/ls.txt", ["--out", ".yaml"]),
    ("unknown-command", "trian-eval {root}", ["trian-eval"]),
    ("unknown-option", "stats {root} --rare 0.1", ["--rare"]),
    ("missing-argument", "compose --out {out}", ["root"]),
]


@pytest.mark.parametrize(("template", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_nonsensical_option_is_refused_in_one_line(world: World, tmp_path: Path, template: str, says: list[str]):
    out = tmp_path / "out"
    line = assert_refused(fill(template, world, out), [tmp_path, world.base], says[:1])
    assert all(s in line for s in says), line
