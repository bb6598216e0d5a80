"""Every command that reads a dataset root, fed a broken one: exit status 2, one line on stderr naming
the broken file and the problem, no traceback, nothing written (docs/reliability.md).

The training commands are asked for their tiniest runs; they must refuse before training starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _bad_inputs import DATASET_CASES, World, assert_refused, broken_root, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


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
