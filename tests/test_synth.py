"""Tests of the procedural mini-Cityscapes: format invariants, determinism, painter, shares, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from cityscapes_tools.io import read_png
from cityscapes_tools.labels import ID_TO_LABEL, LABELS, NAME_TO_LABEL
from cityscapes_tools.layout import KEY_RE, list_samples, validate_sample
from cityscapes_tools.synth import TARGET_SHARES, generate_dataset, make_sample, paint, sample_scene
from cityscapes_tools.synth.generate import CITIES
from labelforge.cli.app import app

THINGS = {lab.id for lab in LABELS if lab.has_instances and lab.id >= 0}
VALID_IDS = {lab.id for lab in LABELS if lab.id >= 0}


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mini") / "mini"
    generate_dataset(root, train=5, val=2, height=64, width=128, seed=7, workers=1)
    return root


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_names_and_dtypes_on_disk(small_root: Path) -> None:
    train, val = list_samples(small_root, "train", require_images=True), list_samples(small_root, "val")
    assert [s.key for s in train] == sorted(
        ["synthtown_000000_000019", "pixelburg_000000_000019", "rendorf_000000_000019",
         "synthtown_000001_000019", "pixelburg_000001_000019"]
    )  # fmt: skip
    assert [s.key for s in val] == ["valhaven_000000_000019", "valhaven_000001_000019"]
    for s in train + val:
        assert KEY_RE.match(s.key) and s.city in CITIES[s.split]
        validate_sample(s)  # decodes every file, checks sizes, values and the instance convention
        label, inst = read_png(s.label), read_png(s.instance)
        image, color = read_png(s.image), read_png(s.color)
        assert label.dtype == np.uint8 and label.shape == (64, 128)
        assert inst.dtype == np.uint16 and inst.shape == (64, 128)
        assert image.dtype == np.uint8 and image.shape == (64, 128, 3)
        assert color.dtype == np.uint8 and color.shape == (64, 128, 3)
    meta = json.loads((small_root / "synth.json").read_text())
    assert meta["finished"] is True
    assert meta["config"] == {"train": 5, "val": 2, "height": 64, "width": 128, "seed": 7}
    assert meta["counts"] == {"train": 5, "val": 2}
    assert meta["target_shares"] == TARGET_SHARES


@pytest.mark.parametrize("i", range(6))
def test_instance_convention(i: int) -> None:
    label, inst = sample_scene(np.random.default_rng([3, i]), 96, 192)
    assert label.dtype == np.uint8 and inst.dtype == np.int32
    assert set(np.unique(label).tolist()) <= VALID_IDS
    is_inst = inst >= 1000
    assert np.array_equal(inst[is_inst] // 1000, label[is_inst].astype(np.int32))
    assert np.array_equal(inst[~is_inst], label[~is_inst].astype(np.int32))
    assert np.array_equal(np.isin(label, list(THINGS)), is_inst)  # every thing pixel belongs to an instance
    for cls in np.unique(label[is_inst]):
        ks = np.unique(inst[label == cls]) - int(cls) * 1000
        assert ks.tolist() == list(range(len(ks)))  # k counts from 0 per class, without gaps


def test_objects_scale_with_distance() -> None:
    bottoms, heights = [], []
    for i in range(25):
        _, inst = sample_scene(np.random.default_rng([11, i]), 128, 256)
        for v in np.unique(inst[(inst >= 26000) & (inst < 27000)]):  # cars
            ys = np.flatnonzero((inst == v).any(axis=1))
            if ys[-1] < 127:  # not cut by the bottom border
                bottoms.append(ys[-1])
                heights.append(ys[-1] - ys[0] + 1)
    assert len(bottoms) > 40
    assert np.corrcoef(bottoms, heights)[0, 1] > 0.6  # lower in the image = closer = taller


def test_same_seed_same_bytes_any_worker_count(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_dataset(a, train=5, val=2, height=64, width=128, seed=1, workers=1)
    generate_dataset(b, train=5, val=2, height=64, width=128, seed=1, workers=2)
    generate_dataset(c, train=5, val=2, height=64, width=128, seed=2, workers=1)
    ta, tb, tc = _tree_bytes(a), _tree_bytes(b), _tree_bytes(c)
    assert ta == tb
    assert ta.keys() == tc.keys() and ta != tc
    label, inst, image = make_sample(1, "train", 3, 64, 128)  # sample 3 alone equals its file
    key = "synthtown_000001_000019"
    assert np.array_equal(read_png(a / "gtFine/train/synthtown" / f"{key}_gtFine_labelIds.png"), label)
    photo = read_png(a / "leftImg8bit/train/synthtown" / f"{key}_leftImg8bit.png")  # RGB, as stored
    assert np.array_equal(photo, image)


def test_resume_rewrites_only_missing_samples(tmp_path: Path) -> None:
    root = tmp_path / "r"
    generate_dataset(root, train=4, val=1, height=64, width=128, seed=5, workers=1)
    before = _tree_bytes(root)
    victim = next((root / "leftImg8bit/train/rendorf").iterdir())
    victim.unlink()
    info = generate_dataset(root, train=4, val=1, height=64, width=128, seed=5, workers=1, resume=True)
    assert (info["written"], info["skipped"]) == (1, 4)
    assert _tree_bytes(root) == before


def _hand_map() -> tuple[np.ndarray, np.ndarray]:
    # A map the scene sampler never drew: building, wall, fence and a bus side by side over a road.
    lab = np.full((128, 256), 23, np.uint8)
    lab[50:] = 7
    lab[0:66, 0:90] = 11
    lab[40:66, 90:150] = 12
    lab[44:66, 150:200] = 13
    lab[46:80, 200:250] = 28
    inst = lab.astype(np.int32)
    inst[lab == 28] = 28000
    return lab, inst


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _inner(mask: np.ndarray) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def test_painter_paints_unseen_map_with_class_textures() -> None:
    lab, inst = _hand_map()
    stats: dict[str, list[float]] = {
        "bld_std": [],
        "wall_std": [],
        "fence_hp": [],
        "wall_hp": [],
        "bld": [],
        "wall": [],
    }
    for seed in range(8):
        img = paint(lab, inst, seed)
        assert img.shape == (128, 256, 3) and img.dtype == np.uint8
        g = _gray(img)
        smooth, hp = cv2.GaussianBlur(g, (0, 0), 1.0), np.abs(g - cv2.GaussianBlur(g, (0, 0), 2.0))
        stats["bld_std"].append(float(smooth[_inner(lab == 11)].std()))
        stats["wall_std"].append(float(smooth[_inner(lab == 12)].std()))
        stats["fence_hp"].append(float(hp[_inner(lab == 13)].mean()))
        stats["wall_hp"].append(float(hp[_inner(lab == 12)].mean()))
        stats["bld"].append(float(g[lab == 11].mean()))
        stats["wall"].append(float(g[lab == 12].mean()))
    mean = {k: float(np.mean(v)) for k, v in stats.items()}
    assert mean["bld_std"] > 2.5 * mean["wall_std"]  # window grids vs smooth panels
    assert mean["fence_hp"] > 1.5 * mean["wall_hp"]  # lattice vs smooth panels
    # Same colour ranges: the spans of per-image mean brightness overlap by more than half.
    lo, hi = max(min(stats["bld"]), min(stats["wall"])), min(max(stats["bld"]), max(stats["wall"]))
    assert hi - lo > 0.5 * min(np.ptp(stats["bld"]), np.ptp(stats["wall"]))
    assert np.array_equal(paint(lab, inst, 3), paint(lab, inst, 3))
    assert not np.array_equal(paint(lab, inst, 3), paint(lab, inst, 4))


def test_painter_handles_every_label_id_and_no_instances() -> None:
    rng = np.random.default_rng(0)
    ids = np.array(sorted(VALID_IDS), np.uint8)
    blocks = rng.choice(ids, size=(8, 16))
    blocks.flat[: len(ids)] = ids  # every id at least once
    lab = cv2.resize(blocks, (128, 64), interpolation=cv2.INTER_NEAREST)
    img = paint(lab, None, seed=1)
    assert img.shape == (64, 128, 3) and img.dtype == np.uint8
    for cls in ids:  # every region painted with some variation, never left black and flat
        px = img[lab == cls].astype(np.float32)
        assert px.std() > 0.5, ID_TO_LABEL[int(cls)].name


def test_appearance_shares_follow_targets() -> None:
    n = 300
    present = np.zeros(34)
    for i in range(n):
        label, _ = sample_scene(np.random.default_rng([2024, i]), 96, 192)
        present[np.unique(label)] += 1
    for name, target in TARGET_SHARES.items():
        share = present[NAME_TO_LABEL[name].id] / n
        tol = 0.03 + 2.5 * np.sqrt(target * (1 - target) / n)  # sampling noise plus a small bias
        assert abs(share - target) <= tol, f"{name}: {share:.3f} vs target {target:.2f}"
    frequent = [TARGET_SHARES[k] for k in ("road", "building", "car", "vegetation", "sky")]
    rare = [TARGET_SHARES[k] for k in ("wall", "truck", "bus", "train", "motorcycle")]
    assert min(frequent) > 0.9 and max(rare) < 0.15  # the long tail the paper is about


def test_cli_writes_dataset_and_refuses_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "mini"
    args = ["synth", str(out), "--train", "3", "--val", "1", "--size", "64x128", "--workers", "1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "_SUCCESS").exists() and (out / "preview.png").exists()
    assert "preview" in res.output and str(out) in res.output.replace("\n", "")
    assert len(list_samples(out, "train", require_images=True)) == 3 and len(list_samples(out, "val")) == 1
    assert read_png(out / "preview.png").shape[1] == 2 * 512 + 4
    first = _tree_bytes(out)
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "already finished" in res.output and "--overwrite" in res.output
    assert _tree_bytes(out) == first
    res = runner.invoke(app, [*args, "--overwrite", "--no-preview", "--seed", "9"])
    assert res.exit_code == 0, res.output
    assert not (out / "preview.png").exists() and _tree_bytes(out) != first


@pytest.mark.parametrize("size", ["abc", "256", "256x", "16x512", "256x-5"])
def test_cli_bad_size_is_one_line_exit_2(tmp_path: Path, size: str) -> None:
    res = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--size", size])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "--size" in res.output
    assert not (tmp_path / "x").exists()  # refused before anything was written
