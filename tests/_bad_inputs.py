"""Shared pieces of the bad-input suites (no tests here): one tiny world of good inputs, ways to break a
dataset root, and the check every refusal must pass (exit status 2, one line on stderr naming the
problem, no traceback, nothing written).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cityscapes_tools.io import read_image, read_label, write_png
from labelforge.cli.app import app

runner = CliRunner()
H, W = 32, 64


@dataclass(frozen=True)
class World:
    """Good inputs every bad case starts from; built once per session (about a second)."""

    base: Path
    root: Path  # mini-Cityscapes: train 3, val 2, 32x64, photos and instance maps
    labels: Path  # label shard dir (compose identity, 4 maps)
    images: Path  # image shard dir (render --oracle of ``labels``)
    preds: Path  # prediction PNGs of the val split (its own label maps)
    run: Path  # a folder holding metrics.json (evaluate's output)
    cache: Path  # compose's segment-index cache, outside every watched tree


def build_world(base: Path) -> World:
    from cityscapes_tools.synth.generate import generate_dataset
    from labelforge.compose import ComposeConfig, run_compose
    from labelforge.evaluate import EvaluateConfig, evaluate_predictions
    from labelforge.gan.config import RenderConfig
    from labelforge.gan.render import render_shards

    root = base / "root"
    generate_dataset(root, train=3, val=2, height=H, width=W, seed=0, workers=1)
    labels, images, cache = base / "labels", base / "images", base / "cache"
    run_compose(ComposeConfig(root=root, out=labels, method="identity", count=4, samples_per_shard=2, cache_dir=cache))
    render_shards(labels, images, RenderConfig(oracle=True, workers=0, preview=0, device="cpu"))
    preds = base / "preds"
    preds.mkdir()
    for p in sorted((root / "gtFine" / "val").rglob("*_labelIds.png")):
        shutil.copy(p, preds / p.name)
    run = base / "run"
    evaluate_predictions(EvaluateConfig(pred_dir=preds, root=root, out=run, split="val", workers=1))
    return World(base, root, labels, images, preds, run, cache)


def fill(template: str, world: World, out: Path) -> list[str]:
    """``"stats {root} --out {out}"`` -> argv, with the world's paths (none holds a space)."""
    paths = {f: getattr(world, f) for f in World.__dataclass_fields__}
    return [a.format(**paths, out=out, missing=world.base / "no-such-thing") for a in template.split()]


# -- ways to break a dataset root: each breaks the first sample of every split and returns the files ----
def _first(root: Path, kind: str) -> list[Path]:
    top = "leftImg8bit" if kind == "leftImg8bit" else "gtFine"
    return [sorted((root / top / s).rglob(f"*_{kind}.png"))[0] for s in ("train", "val")]


def _each(kind: str, change: Callable[[Path], None]) -> Callable[[Path], list[Path]]:
    def mutate(root: Path) -> list[Path]:
        files = _first(root, kind)
        for f in files:
            change(f)
        return files

    return mutate


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _label_array(change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    return lambda p: write_png(p, change(read_label(p)))


def _half_photo(p: Path) -> None:
    write_png(p, np.ascontiguousarray(read_image(p)[::2, ::2]), rgb=True)


def _disagreeing_instances(p: Path) -> None:
    inst = read_label(p.with_name(p.name.replace("instanceIds", "labelIds"))).astype(np.uint16)
    inst[:4, :4] = 26000 if inst[0, 0] != 26 else 24000  # a car (or person) over another class
    write_png(p, inst)


def _empty_split(root: Path) -> list[Path]:
    for f in (root / "gtFine" / "train").rglob("*.png"):
        f.unlink()
    for f in (root / "leftImg8bit" / "train").rglob("*.png"):
        f.unlink()
    return [root / "gtFine" / "train"]


def _missing_root(root: Path) -> list[Path]:
    shutil.rmtree(root)
    return [root]


def _not_a_root(root: Path) -> list[Path]:
    shutil.rmtree(root)
    root.mkdir()
    (root / "notes.txt").write_text("not a dataset\n")
    return [root]


DATASET_CASES: dict[str, Callable[[Path], list[Path]]] = {
    "truncated-png": _each("labelIds", _truncate),
    "zero-byte-png": _each("labelIds", lambda p: p.write_bytes(b"")),
    "not-an-image": _each("labelIds", lambda p: p.write_text("id,class\n7,road\n")),
    "3-channel-label": _each("labelIds", _label_array(lambda a: np.dstack([a, a, a]))),
    "16-bit-label": _each("labelIds", _label_array(lambda a: a.astype(np.uint16))),
    "id-outside-label-space": _each("labelIds", _label_array(lambda a: np.where(a == a[0, 0], 200, a).astype(a.dtype))),
    "photo-half-size": _each("leftImg8bit", _half_photo),
    "missing-photo": _each("leftImg8bit", lambda p: p.unlink()),
    "missing-label": _each("labelIds", lambda p: p.unlink()),
    "instances-disagree": _each("instanceIds", _disagreeing_instances),
    "empty-split": _empty_split,
    "missing-root": _missing_root,
    "not-a-root": _not_a_root,
}


def broken_root(world: World, case: str, where: Path) -> tuple[Path, list[Path]]:
    """A copy of the world's root at ``where`` broken as ``case`` says, and the files it broke."""
    root = where / "root"
    shutil.copytree(world.root, root)
    return root, DATASET_CASES[case](root)


# -- the promise every refusal keeps ----------------------------------------------------------------
def snapshot(*trees: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``trees``: a file with its size and modification time, a folder as
    present (a folder's own mtime moves when a refused run takes and drops its lock inside the parent)."""
    out: dict[str, tuple[int, int]] = {}
    for t in trees:
        if t.exists():
            for p in [t, *t.rglob("*")]:
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns) if p.is_file() else (-1, 0)
    return out


def invoke(args: Sequence[object]):
    return runner.invoke(app, [str(a) for a in args])


def assert_refused(args: Sequence[object], watch: Sequence[Path], names: Sequence[str]) -> str:
    """Run the command; it must exit 2 with one line on stderr naming one of ``names``, leave every
    tree in ``watch`` as it was, and raise nothing but SystemExit. Returns the line."""
    before = snapshot(*watch)
    res = invoke(args)
    err = res.stderr.strip()
    assert res.exit_code == 2, f"exit {res.exit_code}; stderr: {err}; exception: {res.exception!r}"
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit), res.output
    assert len(err.splitlines()) == 1, f"expected one line on stderr, got:\n{err}"
    assert any(n in err for n in names), f"{err!r} names none of {list(names)}"
    assert snapshot(*watch) == before, f"{args[0]} changed files under {[str(w) for w in watch]}"
    return err
