"""Every command that reads a dataset root, fed a broken one: exit status 2, one line on stderr naming
the broken file and the problem, no traceback, nothing written (docs/reliability.md).

The training commands are asked for their tiniest runs; they must refuse before training starts.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _bad_inputs import DATASET_CASES, H, W, World, assert_refused, broken_root, fill

from cityscapes_tools.io import write_png


def _plan(root: Path, out: Path) -> Path:
    """An experiment plan on ``root`` (written beside it, outside the output)."""
    plan = root.parent / "plan.toml"
    plan.write_text(
        f'[plan]\nname = "bad"\nseeds = [0]\nratios = [0.5]\nclasses = ["car"]\n\n[dataset]\nroot = "{root}"\n\n'
        '[generator]\npreset = "tiny"\nepochs = 1\nsize = "32x64"\n\n'
        '[segmenter]\npreset = "tiny"\niters = 1\nsize = "32x64"\ncrop = "32x64"\nworkers = 0\ndevice = "cpu"\n\n'
        '[[conditions]]\nkind = "baseline"\n\n[[conditions]]\nkind = "overlay"\nclass = "car"\n'
    )
    return plan


Argv = Callable[[World, Path, Path], list[object]]
# command -> (argv from (world, root, out), the cases it must refuse)
ALL = set(DATASET_CASES)
NO_PHOTOS = ALL - {"photo-half-size", "missing-photo"}  # these commands never read a photo
GT_ONLY = NO_PHOTOS - {"instances-disagree", "empty-split"}  # evaluate reads only val's label maps
COMMANDS: dict[str, tuple[Argv, set[str]]] = {
    "check": (lambda w, r, o: ["check", r, "-j", 1], ALL),
    "stats": (lambda w, r, o: ["stats", r, "--split", "train", "--split", "val", "--out", o, "-j", 1], NO_PHOTOS),
    "compose": (
        lambda w, r, o: ["compose", r, "--out", o, "--method", "identity", "-n", 2, "-j", 1, "--cache-dir", w.cache],
        NO_PHOTOS,
    ),
    "train-generator": (
        lambda w, r, o: ["train-generator", r, "--out", o, "--epochs", 1, "--size", "32x64", "--device", "cpu"],
        ALL,
    ),
    "train-eval": (
        lambda w, r, o: ["train-eval", r, "--out", o, "--preset", "fast", "--iters", 1, "--device", "cpu", "-q"],
        ALL,
    ),
    "evaluate": (lambda w, r, o: ["evaluate", w.preds, r, "--out", o, "--split", "val", "-j", 1], GT_ONLY),
    "labelspace-init": (
        lambda w, r, o: ["labelspace", "init", r, "--out", o / "labelspace.yaml"],
        GT_ONLY - {"id-outside-label-space", "16-bit-label"},  # it drafts the label space from the values
    ),
    "experiment": (lambda w, r, o: ["experiment", _plan(r, o), "--out", o, "-q"], ALL),
}
MATRIX = [(cmd, case) for cmd, (_, cases) in COMMANDS.items() for case in DATASET_CASES if case in cases]


@pytest.mark.parametrize(("command", "case"), MATRIX, ids=[f"{c}-{k}" for c, k in MATRIX])
def test_a_broken_dataset_is_refused_in_one_line(world: World, tmp_path: Path, command: str, case: str) -> None:
    root, broken = broken_root(world, case, tmp_path)
    out = tmp_path / "out"
    argv = COMMANDS[command][0](world, root, out)
    line = assert_refused(argv, [tmp_path], [p.name for p in broken])
    assert line.startswith("error: ")


# -- other input files: shard dirs, predictions, metrics, plans -------------------------------------
def _copy(src: Path, tmp: Path) -> Path:
    dst = tmp / "in" / src.name
    shutil.copytree(src, dst)
    return dst


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _future_schema(shards: Path) -> list[Path]:
    _edit_json(shards / "manifest.json", lambda m: m.update(schema="labelforge.shards/99"))
    return [shards / "manifest.json"]


def _lost_shard(shards: Path) -> list[Path]:
    (shards / "shard-00001.h5").unlink()
    return [shards / "shard-00001.h5"]


def _unfinished(shards: Path) -> list[Path]:
    _edit_json(shards / "manifest.json", lambda m: m.update(shards=m["shards"][:1], complete=False))
    return [shards]


SHARD_CASES = {"future-schema": _future_schema, "lost-shard": _lost_shard, "unfinished": _unfinished}
SHARD_COMMANDS = {
    "stats": "stats {s} --out {out}",
    "export": "export {s} {out}",
    "render": "render {s} --out {out} --oracle --device cpu",
    "train-eval": "train-eval {root} --out {out} --supp {s} --preset fast --device cpu -q",
    "quality": "quality {s} --out {out} --segmenter {missing}",
    "filter": "filter {s} --out {out} --segmenter {missing}",
}
SHARD_MATRIX = [(c, k) for c in SHARD_COMMANDS for k in SHARD_CASES]


@pytest.mark.parametrize(("command", "case"), SHARD_MATRIX, ids=[f"{c}-{k}" for c, k in SHARD_MATRIX])
def test_a_broken_shard_dir_is_refused_in_one_line(world: World, tmp_path: Path, command: str, case: str) -> None:
    # render reads label shards; the others take rendered ones (stats and export either)
    shards = _copy(world.labels if command == "render" else world.images, tmp_path)
    broken = SHARD_CASES[case](shards)
    argv = fill(SHARD_COMMANDS[command].replace("{s}", str(shards)), world, tmp_path / "out")
    assert_refused(argv, [tmp_path, world.base], [p.name for p in broken])
    if case == "future-schema":
        assert "labelforge.shards/99" in assert_refused(argv, [tmp_path], ["manifest.json"])


def _bad_prediction(change: Callable[[Path], None]) -> Callable[[World, Path], tuple[list[object], list[str]]]:
    def case(world: World, tmp: Path) -> tuple[list[object], list[str]]:
        preds = _copy(world.preds, tmp)
        first = sorted(preds.glob("*.png"))[0]
        change(first)
        return fill(f"evaluate {preds} {{root}} --out {{out}} --split val", world, tmp / "out"), [first.name]

    return case


def _metrics(change: Callable[[Path], None]) -> Callable[[World, Path], tuple[list[object], list[str]]]:
    def case(world: World, tmp: Path) -> tuple[list[object], list[str]]:
        run = _copy(world.run, tmp)
        change(run / "metrics.json")
        return fill(f"report {{run}} {run} --out {{out}}", world, tmp / "out"), [str(run)]

    return case


def _plan_text(edit: Callable[[str], str]) -> Callable[[World, Path], tuple[list[object], list[str]]]:
    def case(world: World, tmp: Path) -> tuple[list[object], list[str]]:
        plan = _plan(world.root, tmp)
        plan.write_text(edit(plan.read_text()))
        return fill(f"experiment {plan} --out {{out}}", world, tmp / "out"), [plan.name]

    return case


def _run_dir_without_checkpoint(command: str) -> Callable[[World, Path], tuple[list[object], list[str]]]:
    def case(world: World, tmp: Path) -> tuple[list[object], list[str]]:
        seg = _copy(world.run, tmp)  # a folder with metrics.json, but no trained segmenter
        return fill(f"{command} {{images}} --out {{out}} --segmenter {seg}", world, tmp / "out"), [seg.name]

    return case


FILE_CASES = {
    "evaluate-truncated-prediction": _bad_prediction(lambda p: p.write_bytes(p.read_bytes()[:40])),
    "evaluate-3-channel-prediction": _bad_prediction(lambda p: write_png(p, np.zeros((H, W, 3), np.uint8), rgb=True)),
    "evaluate-prediction-size": _bad_prediction(lambda p: write_png(p, np.zeros((H // 2, W), np.uint8))),
    "report-not-json": _metrics(lambda p: p.write_text("{not json")),
    "report-future-schema": _metrics(lambda p: _edit_json(p, lambda m: m.update(schema="labelforge.metrics/99"))),
    "experiment-toml-syntax": _plan_text(lambda t: t.replace("[plan]", "[plan")),
    "experiment-unknown-class": _plan_text(lambda t: t.replace('class = "car"', 'class = "carr"')),
    "experiment-ratio": _plan_text(lambda t: t.replace("ratios = [0.5]", "ratios = [1.5]")),
    "experiment-negative-count": _plan_text(lambda t: t.replace("epochs = 1", "epochs = -1")),
    "quality-not-a-segmenter": _run_dir_without_checkpoint("quality"),
    "filter-not-a-segmenter": _run_dir_without_checkpoint("filter"),
}


@pytest.mark.parametrize("case", FILE_CASES)
def test_a_broken_input_file_is_refused_in_one_line(world: World, tmp_path: Path, case: str) -> None:
    argv, names = FILE_CASES[case](world, tmp_path)
    assert_refused(argv, [tmp_path, world.base], names)
