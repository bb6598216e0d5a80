"""``--skip-bad`` on stats and compose: bad maps are left out, listed in OUT/skipped.txt and the summary,
and the run exits 0 (docs/reliability.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _bad_inputs import World, invoke

from cityscapes_tools.io import read_label, write_png
from labelforge.shards import ShardSet


@pytest.fixture
def two_bad(world: World, tmp_path: Path) -> tuple[Path, list[Path]]:
    """The world's root with two of its three train maps broken: one truncated, one with a car instance
    where its label says otherwise."""
    root = tmp_path / "root"
    shutil.copytree(world.root, root)
    labels = sorted((root / "gtFine" / "train").rglob("*_labelIds.png"))
    labels[0].write_bytes(labels[0].read_bytes()[:50])
    inst_path = Path(str(labels[1]).replace("labelIds", "instanceIds"))
    inst = read_label(labels[1]).astype(np.uint16)
    inst[0, 0] = 26000 if inst[0, 0] != 26 else 24000
    write_png(inst_path, inst)
    return root, [labels[0], inst_path]


def _listed(out: Path) -> list[str]:
    return [line.split("\t")[0] for line in (out / "skipped.txt").read_text().splitlines()]


def test_stats_skips_bad_maps_lists_them_and_exits_0(two_bad: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, bad = two_bad
    out = tmp_path / "stats"
    res = invoke(["stats", root, "--out", out, "--skip-bad", "--no-figure", "-j", 1])
    assert res.exit_code == 0, res.output
    assert _listed(out) == [str(p) for p in bad]
    doc = json.loads((out / "stats.json").read_text())
    assert [s["file"] for s in doc["skipped"]] == [str(p) for p in bad]
    assert doc["sources"][0]["images"] == 1  # the one good map
    assert "skipped 2 bad map(s)" in res.stdout and "skipped.txt" in res.stdout
    assert (out / "_SUCCESS").exists()


def test_compose_skips_bad_maps_lists_them_and_exits_0(
    two_bad: tuple[Path, list[Path]], world: World, tmp_path: Path
) -> None:
    root, bad = two_bad
    out = tmp_path / "labels"
    args = ["compose", root, "--out", out, "--method", "identity", "-n", 3, "-j", 1, "--cache-dir", tmp_path / "c"]
    res = invoke([*args, "--skip-bad"])
    assert res.exit_code == 0, res.output
    assert _listed(out) == [str(p) for p in bad]
    assert "skipped 2 bad map(s)" in res.stdout
    good = sorted((root / "gtFine" / "train").rglob("*_labelIds.png"))[2].name.split("_gtFine")[0]
    assert {s["provenance"]["base"] for s in ShardSet(out)} == {good}
    # the same run without --skip-bad stops at the first bad map
    assert invoke([*args[:3], tmp_path / "other", *args[4:]]).exit_code == 2
