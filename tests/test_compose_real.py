"""Compose on the 8 real Cityscapes samples (1024x2048; skipped where absent) and the mini-Cityscapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cityscapes_tools.layout import list_samples, validate_sample
from labelforge.compose import ComposeConfig, run_compose
from labelforge.dataset import open_dataset
from labelforge.export import ExportConfig, export_shards
from labelforge.shards import ShardSet


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("segcache")


def _changed_only_inside_pastes(s: dict, base: np.ndarray, ls) -> None:
    inside = np.zeros(base.shape, bool)
    for p in s["provenance"]["pasted"]:
        x0, y0, x1, y1 = p["bbox"]
        dx = p["offset"][0]
        inside[y0:y1, x0 + dx : x1 + dx] = True
    changed = s["label"] != base
    assert not (changed & ~inside).any()
    classes = {ls.get(p["class"]).id for p in s["provenance"]["pasted"]}
    assert set(np.unique(s["label"][changed]).tolist()) <= classes


def test_overlay_and_copy_paste_on_real_samples(cityscapes_samples, cache, tmp_path):
    ds = open_dataset(cityscapes_samples)
    cfg = ComposeConfig(
        root=cityscapes_samples, out=tmp_path / "wall", classes=("wall",), count=3, cache_dir=cache, workers=2
    )
    res = run_compose(cfg)
    ss = ShardSet(tmp_path / "wall")
    assert (ss.height, ss.width) == (1024, 2048) and len(ss) == 3 and res.skipped == 0
    by_key = {s.key: s for s in ds.samples("train")}
    wall = ss.label_space.get("wall").id
    for i in range(3):
        s = ss[i]
        base = ds.read_label(by_key[s["provenance"]["base"]])
        assert wall not in base  # overlay bases lack the class
        _changed_only_inside_pastes(s, base, ss.label_space)
        assert (s["label"] == wall).any()
    assert ss.image_counts()[wall] == 3
    # copy-paste (photos present): one image shard with the donor pixels, preview written
    cp = run_compose(
        ComposeConfig(
            root=cityscapes_samples,
            out=tmp_path / "cp",
            classes=("wall",),
            count=1,
            cache_dir=cache,
            copy_paste=True,
            shift=0.1,
            preview=1,
        )
    )
    assert cp.index_cached and cp.preview is not None and cp.preview.is_file()
    s = ShardSet(tmp_path / "cp")[0]
    p = s["provenance"]["pasted"][0]
    donor = ds.read_image(by_key[p["donor"]])
    x0, y0, x1, y1 = p["bbox"]
    dx = p["offset"][0]
    painted = s["label"][y0:y1, x0 + dx : x1 + dx] == wall
    crop = donor[y0:y1, x0:x1][:, ::-1] if p["flip"] else donor[y0:y1, x0:x1]
    assert painted.any() and (s["image"][y0:y1, x0 + dx : x1 + dx][painted] == crop[painted]).all()


def test_reconstruct_on_real_samples(cityscapes_samples, cache, tmp_path):
    run_compose(
        ComposeConfig(
            root=cityscapes_samples, out=tmp_path / "r", method="reconstruct", count=2, cache_dir=cache, per_map=8
        )
    )
    ss = ShardSet(tmp_path / "r")
    ls = ss.label_space
    for i in range(2):
        s = ss[i]
        pasted = {ls.get(p["class"]).id for p in s["provenance"]["pasted"]}
        assert pasted and set(np.unique(s["label"]).tolist()) <= set(ls.ids(list(ls.base))) | pasted
        # fresh instance ids for pasted things: id*1000+k, unique per pasted object
        ids = [p["instance_id"] for p in s["provenance"]["pasted"] if p["instance_id"] is not None]
        assert len(ids) == len(set(ids)) and all(v // 1000 in pasted for v in ids)


def test_mini_cityscapes(tmp_path):
    gen = pytest.importorskip("cityscapes_tools.synth.generate")
    root = tmp_path / "mini"
    gen.generate_dataset(root, train=6, val=0, height=64, width=128, seed=0, workers=1)
    res = run_compose(
        ComposeConfig(
            root=root, out=tmp_path / "m", method="reconstruct", count=4, cache_dir=tmp_path / "c", min_area=8
        )
    )
    assert res.samples == 4 and len(ShardSet(tmp_path / "m")) == 4
    export_shards(ExportConfig(shards=tmp_path / "m", out=tmp_path / "cs"))
    exported = list_samples(tmp_path / "cs", "train")
    assert [s.key for s in exported] == ShardSet(tmp_path / "m").keys()
    for s in exported:
        validate_sample(s)
