"""Whole compose runs on hand-built datasets: exact method semantics, determinism, resume, cache, shards."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from _compose_data import (
    BUILDING,
    CAR,
    PERSON,
    ROAD,
    SKY,
    VEGETATION,
    WALL,
    make_overlay_dataset,
    overlay_maps,
    photo_of,
    put,
    street,
    write_maps,
)

from labelforge.compose import ComposeConfig, load_segment_index, methods, run_compose
from labelforge.dataset import open_dataset
from labelforge.errors import USER_ERRORS, InputError, LabelforgeError, OutputExistsError
from labelforge.progress import Progress, ProgressTask
from labelforge.shards import ShardSet

A, B = "town_000000_000000", "town_000000_000001"


@pytest.fixture()
def ds_root(tmp_path: Path) -> Path:
    return make_overlay_dataset(tmp_path / "ds")


def cfg_for(root: Path, out: Path, **kw) -> ComposeConfig:
    base = {"min_area": 10, "cache_dir": out.parent / "cache", "count": 3, "samples_per_shard": 2}
    return ComposeConfig(root=root, out=out, **{**base, **kw})


def samples(out: Path) -> list[dict]:
    ss = ShardSet(out)
    return [ss[i] for i in range(len(ss))]


def test_overlay_pastes_exactly_the_wall_on_maps_lacking_it(ds_root, tmp_path):
    res = run_compose(cfg_for(ds_root, tmp_path / "o", method="overlay", classes=("wall",)))
    assert res.samples == 3 and res.skipped == 0 and res.classes == ["wall"] and res.shards == 2
    b_lab, b_inst = overlay_maps()[B]
    expected = b_lab.copy()
    expected[8:12, 5:15] = WALL
    for i, s in enumerate(samples(tmp_path / "o")):
        assert s["key"] == f"lfoverlay_000000_{i:06d}"
        assert (s["label"] == expected).all()
        changed = s["instance"] != b_inst
        assert changed.sum() == 40 and (s["instance"][8:12, 5:15] == WALL).all()
        assert s["provenance"] == {
            "base": B,
            "base_kind": "map",
            "method": "overlay",
            "copy_paste": False,
            "pasted": [
                {
                    "class": "wall",
                    "donor": A,
                    "bbox": [5, 8, 15, 12],
                    "offset": [0, 0],
                    "flip": False,
                    "instance_id": None,
                }
            ],
            "skipped": 0,
        }
    ss = ShardSet(tmp_path / "o")
    assert ss.config["classes"] == ["wall"] and ss.method == "overlay"
    assert ss.image_counts()[WALL] == 3  # every composed map holds the targeted class


def test_floating_person_is_skipped_and_counted(ds_root, tmp_path):
    # A's only person floats in the sky; B (the only map lacking persons) has sky below it too
    res = run_compose(cfg_for(ds_root, tmp_path / "p", method="overlay", classes=("person",), count=2))
    assert res.skipped == 2
    b_lab, _ = overlay_maps()[B]
    for s in samples(tmp_path / "p"):
        assert (s["label"] == b_lab).all()
        assert s["provenance"]["pasted"] == [] and s["provenance"]["skipped"] == 1


def test_multi_gives_pasted_instances_fresh_ids(ds_root, tmp_path):
    run_compose(cfg_for(ds_root, tmp_path / "m", method="multi", classes=("car", "wall"), count=2))
    b_lab, b_inst = overlay_maps()[B]
    for s in samples(tmp_path / "m"):
        assert s["provenance"]["base"] == B  # A holds both classes: never a base
        car, wall = s["provenance"]["pasted"]
        assert car["donor"] == A and car["instance_id"] == 26002  # B already has 26000 and 26001
        assert (s["instance"][13:17, 20:28] == 26002).all() and (s["label"][13:17, 20:28] == CAR).all()
        assert wall["instance_id"] is None and (s["label"][8:12, 5:15] == WALL).all()
        untouched = np.ones(b_lab.shape, bool)
        untouched[13:17, 20:28] = untouched[8:12, 5:15] = False
        assert (s["label"][untouched] == b_lab[untouched]).all()
        assert (s["instance"][untouched] == b_inst[untouched]).all()


def test_protect_keeps_building(tmp_path):
    a_lab, a_inst = street()
    put(a_lab, a_inst, WALL, slice(6, 12), slice(5, 15))  # 2 sky rows + 4 building rows
    root = write_maps(tmp_path / "ds", {A: (a_lab, a_inst), B: street()})
    run_compose(cfg_for(root, tmp_path / "x", classes=("wall",), count=1, protect=("building",), min_visible=0.3))
    run_compose(cfg_for(root, tmp_path / "y", classes=("wall",), count=1))
    protected, free = samples(tmp_path / "x")[0]["label"], samples(tmp_path / "y")[0]["label"]
    assert (protected[6:8, 5:15] == WALL).all() and (protected[8:12, 5:15] == BUILDING).all()
    assert (free[6:12, 5:15] == WALL).all()


def test_identity_is_the_unchanged_base(ds_root, tmp_path):
    res = run_compose(cfg_for(ds_root, tmp_path / "i", method="identity", classes=("wall",), count=4))
    maps = overlay_maps()
    assert res.classes == [] and ShardSet(tmp_path / "i").config["classes"] == []
    for s in samples(tmp_path / "i"):
        lab, inst = maps[s["provenance"]["base"]]
        assert (s["label"] == lab).all() and (s["instance"] == inst).all()
        assert s["provenance"]["pasted"] == [] and s["key"].startswith("lfidentity_")


def test_reconstruct_base_holds_only_sky_road_building(ds_root, tmp_path):
    for kind in ("derived", "drawn"):
        out = tmp_path / f"r-{kind}"
        res = run_compose(cfg_for(ds_root, out, method="reconstruct", count=4, base=kind, per_map=3, target="inverse"))
        ss = ShardSet(out)
        assert ss.config["classes"] == res.classes and "wall" in res.classes and "sky" not in res.classes
        for s in samples(out):
            pasted = {p["class"] for p in s["provenance"]["pasted"]}
            allowed = {SKY, ROAD, BUILDING} | {ss.label_space.get(n).id for n in pasted}
            assert set(np.unique(s["label"]).tolist()) <= allowed
            assert s["provenance"]["base_kind"] == kind
            assert len(s["provenance"]["pasted"]) + s["provenance"]["skipped"] == 3


def test_reconstruct_falls_back_to_a_drawn_base_for_a_map_without_base_pixels(tmp_path):
    # C holds no sky, road or building pixel: no base can be derived from it.
    maps = overlay_maps()
    c_lab = np.full((20, 40), VEGETATION, np.uint8)
    c_inst = c_lab.astype(np.int32)
    put(c_lab, c_inst, WALL, slice(10, 16), slice(0, 20))
    C = "town_000000_000002"
    root = write_maps(tmp_path / "ds", {**maps, C: (c_lab, c_inst)})
    cfg = cfg_for(root, tmp_path / "r", method="reconstruct", count=12, per_map=2, target="inverse")
    res = run_compose(cfg)
    got = samples(tmp_path / "r")
    fell_back = [s for s in got if s["provenance"]["base_kind"] == "drawn"]
    assert res.fallbacks == len(fell_back) == 4  # of 12 samples, seed 0: those whose base map is C
    assert ShardSet(tmp_path / "r").manifest["base_fallbacks"] == {"maps": [C], "samples": 4}
    for s in got:
        prov = s["provenance"]
        pasted = {ShardSet(tmp_path / "r").label_space.get(p["class"]).id for p in prov["pasted"]}
        assert set(np.unique(s["label"]).tolist()) <= {SKY, ROAD, BUILDING} | pasted
        if prov["base_kind"] == "drawn":
            assert prov["base"] is None and prov["fallback_from"] == C
        else:
            assert prov["base_kind"] == "derived" and prov["base"] in (A, B) and "fallback_from" not in prov
    # the fall-back draws from (seed, index) alone: any worker count gives the same bytes
    run_compose(dataclasses.replace(cfg, out=tmp_path / "r2", workers=2))
    assert _shard_bytes(tmp_path / "r") == _shard_bytes(tmp_path / "r2")


def test_a_registered_method_composes_by_its_name(ds_root, tmp_path, monkeypatch):
    # A new method is one class: its name reaches the keys, the shard config and the provenance.
    monkeypatch.setattr(methods, "_REGISTRY", dict(methods._REGISTRY))

    @methods.register_method
    class OnRoad(methods.Overlay):  # overlay's classes, pasted onto a map of road alone
        name: ClassVar[str] = "onroad"
        photos: ClassVar[bool] = False

        def make_base(self, ctx, m, rng):
            label = np.full((20, 40), ROAD, np.uint8)
            return methods.Base(label, label.astype(np.int32), None, "drawn", None)

    run_compose(cfg_for(ds_root, tmp_path / "n", method="onroad", classes=("wall",), count=1))
    s = samples(tmp_path / "n")[0]
    expected = np.full((20, 40), ROAD, np.uint8)
    expected[8:12, 5:15] = WALL
    assert s["key"] == "lfonroad_000000_000000" and (s["label"] == expected).all()
    assert s["provenance"]["method"] == "onroad" and s["provenance"]["base_kind"] == "drawn"
    assert ShardSet(tmp_path / "n").config["method"] == "onroad"
    with pytest.raises(LabelforgeError, match="--copy-paste needs the base map's photo; onroad bases have none"):
        run_compose(cfg_for(ds_root, tmp_path / "n2", method="onroad", classes=("wall",), copy_paste=True))


def test_copy_paste_pastes_donor_photo_pixels(tmp_path):
    root = make_overlay_dataset(tmp_path / "ds", photos=True)
    run_compose(cfg_for(root, tmp_path / "cp", classes=("wall",), count=1, copy_paste=True))
    s = samples(tmp_path / "cp")[0]
    maps = overlay_maps()
    keys = sorted(maps)
    photo_a, photo_b = photo_of(maps[A][0], keys.index(A)), photo_of(maps[B][0], keys.index(B))
    wall = np.zeros(photo_a.shape[:2], bool)
    wall[8:12, 5:15] = True
    assert (s["image"][wall] == photo_a[wall]).all() and (s["image"][~wall] == photo_b[~wall]).all()
    assert s["key"].startswith("lfoverlaycp_") and ShardSet(tmp_path / "cp").has_image


def _shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("shard-*.h5"))}


def test_same_bytes_for_1_and_2_workers(ds_root, tmp_path):
    kw = {"classes": ("wall", "car"), "method": "multi", "count": 7, "shift": 0.3, "flip": True}
    run_compose(cfg_for(ds_root, tmp_path / "w1", workers=1, **kw))
    run_compose(cfg_for(ds_root, tmp_path / "w2", workers=2, **kw))
    one, two = _shard_bytes(tmp_path / "w1"), _shard_bytes(tmp_path / "w2")
    assert len(one) == 4 and one == two
    assert (tmp_path / "w1" / "manifest.json").read_bytes() == (tmp_path / "w2" / "manifest.json").read_bytes()
    offsets = {p["offset"][0] for s in samples(tmp_path / "w1") for p in s["provenance"]["pasted"]}
    assert len(offsets) > 1  # the shift really varies


class _Crash(Progress):
    """A progress sink that raises after ``n`` samples: an interruption at a chosen point."""

    def __init__(self, n: int) -> None:
        self.n = n

    def task(self, description: str, total: int | None = None, **kw: object) -> ProgressTask:
        outer = self

        class T(ProgressTask):
            def advance(self, k: int = 1, **fields) -> None:
                outer.n -= k
                if outer.n <= 0 and description.startswith("composing"):
                    raise RuntimeError("injected crash")

        return T()


def test_kill_and_resume_is_byte_identical(ds_root, tmp_path):
    kw = {"classes": ("wall",), "count": 7, "shift": 0.4, "flip": True, "workers": 2}
    run_compose(cfg_for(ds_root, tmp_path / "full", **kw))
    with pytest.raises(RuntimeError, match="injected"):
        run_compose(cfg_for(ds_root, tmp_path / "cut", **kw), progress=_Crash(5))  # mid shard 2
    man = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert [e["file"] for e in man["shards"]] == ["shard-00000.h5", "shard-00001.h5"]
    assert not (tmp_path / "cut" / "_SUCCESS").exists() and not list((tmp_path / "cut").glob(".*tmp"))
    with pytest.raises(OutputExistsError):
        run_compose(cfg_for(ds_root, tmp_path / "cut", **kw))
    res = run_compose(cfg_for(ds_root, tmp_path / "cut", resume=True, **kw))
    assert res.written == 3
    assert _shard_bytes(tmp_path / "cut") == _shard_bytes(tmp_path / "full")
    assert (tmp_path / "cut" / "manifest.json").read_bytes() == (tmp_path / "full" / "manifest.json").read_bytes()
    # resuming with another config is refused
    other = cfg_for(ds_root, tmp_path / "cut", resume=True, **{**kw, "shift": 0.1})
    with pytest.raises(InputError, match="cannot resume"):
        run_compose(other)


def test_manifest_checksum_catches_corrupt_shard(ds_root, tmp_path):
    run_compose(cfg_for(ds_root, tmp_path / "c", classes=("wall",)))
    ShardSet(tmp_path / "c").verify()
    shard = tmp_path / "c" / "shard-00001.h5"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(InputError, match="shard-00001.h5: checksum mismatch"):
        ShardSet(tmp_path / "c").verify()


def test_segment_index_cache_reused_and_invalidated(ds_root, tmp_path):
    ds = open_dataset(ds_root)
    cache = tmp_path / "cache"
    before = sorted(p.relative_to(ds_root) for p in ds_root.rglob("*"))
    idx1, cached1 = load_segment_index(ds, "train", min_area=10, cache_dir=cache)
    idx2, cached2 = load_segment_index(ds, "train", min_area=10, cache_dir=cache)
    assert (cached1, cached2) == (False, True)
    assert idx2.keys == idx1.keys and (idx2.bbox == idx1.bbox).all() and (idx2.bits == idx1.bits).all()
    j = int(idx1.by_class(WALL)[0])
    assert (idx2.mask(j) == idx1.mask(j)).all() and idx2.mask(j).shape == (4, 10)
    assert sorted(p.relative_to(ds_root) for p in ds_root.rglob("*")) == before  # nothing written into the dataset
    _, cached_area = load_segment_index(ds, "train", min_area=20, cache_dir=cache)
    assert not cached_area  # another min-area is another index
    # touching a file invalidates the cache; so does changing a map
    os.utime(ds_root / f"gtFine/train/town/{A}_gtFine_instanceIds.png", ns=(10**9, 10**9))
    assert not load_segment_index(ds, "train", min_area=10, cache_dir=cache)[1]
    assert load_segment_index(ds, "train", min_area=10, cache_dir=cache)[1]
    lab, inst = street()
    put(lab, inst, WALL, slice(9, 11), slice(30, 38))
    write_maps(ds_root, {B: (lab, inst)})
    idx3, cached3 = load_segment_index(ds, "train", min_area=10, cache_dir=cache)
    assert not cached3 and idx3.by_class(WALL).size == 2 and idx3.presence[1, WALL]


def test_bad_requests_fail_before_writing(ds_root, tmp_path):
    out = tmp_path / "bad"
    cases = [
        ({"classes": ("wal",)}, LabelforgeError, "unknown class 'wal'; valid: road, sidewalk"),
        ({"classes": ("ego vehicle",)}, LabelforgeError, "not evaluated"),
        ({"classes": ("wall", "car")}, LabelforgeError, "overlay pastes one class"),
        ({"method": "multi", "classes_auto": True}, LabelforgeError, "--classes auto needs --stats"),
        ({"classes": ("wall",), "count": 2, "ratio": 0.5}, LabelforgeError, "not both"),
        ({"classes": ("train",)}, InputError, "no segment of at least 10 px"),
        ({"classes": ("road",)}, InputError, "no base map lacks it"),
        ({"method": "reconstruct", "copy_paste": True}, LabelforgeError, "copy-paste"),
        ({"classes": ("wall",), "copy_paste": True}, USER_ERRORS, "has no photo"),
        ({"method": "nope"}, LabelforgeError, "unknown method 'nope'; valid: overlay, multi, reconstruct, identity"),
    ]
    for kw, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            run_compose(cfg_for(ds_root, out, **kw))
        assert not out.exists(), kw
    with pytest.raises(USER_ERRORS, match="does not exist"):
        run_compose(cfg_for(tmp_path / "missing", out, classes=("wall",)))


def test_classes_auto_and_ratio(ds_root, tmp_path):
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"recommendation": {"classes": ["wall", "Car"]}}))
    cfg = cfg_for(ds_root, tmp_path / "a", method="multi", classes_auto=True, stats=stats, count=None, ratio=0.6)
    res = run_compose(cfg)
    assert res.classes == ["wall", "car"] and res.samples == 3  # 0.6 / 0.4 x 2 maps
    ss = ShardSet(tmp_path / "a")
    assert ss.config["classes"] == ["wall", "car"] and ss.config["originals"] == 2
    # the composed maps raise the appearance of the targeted classes over the originals'
    originals = open_dataset(ds_root)
    freq = np.mean([np.isin(WALL, originals.read_label(s)) for s in originals.samples("train")])
    assert ss.image_counts()[WALL] / len(ss) == 1.0 > freq
    with pytest.raises(InputError, match="recommendation"):
        stats.write_text("{}")
        run_compose(dataclasses.replace(cfg, out=tmp_path / "b"))


def test_stats_target_for_reconstruct(ds_root, tmp_path):
    stats = tmp_path / "target.json"
    stats.write_text(json.dumps({"recommendation": {"classes": ["wall"], "target": {"wall": 1.0, "car": 0.0}}}))
    res = run_compose(cfg_for(ds_root, tmp_path / "t", method="reconstruct", target=str(stats), per_map=2))
    assert res.classes == ["wall"]
    for s in samples(tmp_path / "t"):
        assert [p["class"] for p in s["provenance"]["pasted"]] == ["wall"]
    assert PERSON not in np.unique(samples(tmp_path / "t")[0]["label"])
    # the shape `labelforge stats` writes: per-class image frequencies of a dataset to aim at. Here
    # wall appears in 1 of 2 maps and car in 2 of 2: only wall falls short of the target.
    stats.write_text(
        json.dumps({"classes": [{"name": "wall", "image_frequency": 1.0}, {"name": "car", "image_frequency": 0.5}]})
    )
    res = run_compose(cfg_for(ds_root, tmp_path / "f", method="reconstruct", target=str(stats), per_map=2))
    assert res.classes == ["wall"] and ShardSet(tmp_path / "f").config["class_weights"] == [1.0]


def test_stats_of_composed_shards_show_the_class_raised(ds_root, tmp_path):
    stats = pytest.importorskip("labelforge.stats")
    run_compose(cfg_for(ds_root, tmp_path / "sh", classes=("wall",), count=4))
    res = stats.compute_stats(stats.StatsConfig(sources=(ds_root, tmp_path / "sh")))
    (wall,) = [c for c in res.classes if c.cls.name == "wall"]
    assert {k: v.appearance_freq for k, v in wall.sources.items()} == {"ds:train": 0.5, "sh": 1.0}


def test_corrupt_map_is_one_line_error_from_a_worker(ds_root, tmp_path):
    png = ds_root / f"gtFine/train/town/{B}_gtFine_labelIds.png"
    png.write_bytes(png.read_bytes()[:40])  # truncated
    with pytest.raises(USER_ERRORS, match=f"{B}_gtFine_labelIds.png: truncated PNG"):
        run_compose(cfg_for(ds_root, tmp_path / "o", classes=("wall",), workers=2))
    assert not (tmp_path / "o").exists()
