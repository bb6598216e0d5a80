"""Rare-class sampling (``train-eval --sampling rcs``): exact probabilities on hand-built counts, the sampler."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cityscapes_tools.writer import write_sample
from labelforge.cli.app import app
from labelforge.errors import LabelforgeError
from labelforge.labelspace import get_label_space
from labelforge.seg.data import (
    RCS_REFERENCE_AREA,
    MixSampler,
    PairTransform,
    RareClassSampling,
    RcsDraw,
    RcsSampler,
    TrainData,
    class_pixel_counts,
    make_sampler,
)
from labelforge.seg.presets import resolve_config

LS = get_label_space()
# 3 maps x 4 classes; class totals 600, 300, 100, 0 of 1000 pixels -> f = 0.6, 0.3, 0.1, 0
COUNTS = np.array([[100, 50, 0, 0], [200, 0, 30, 0], [300, 250, 70, 0]], np.int64)
FULL = np.full(3, RCS_REFERENCE_AREA, np.int64)  # maps at 1024x2048: the pixel threshold applies as given


def _softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def test_probabilities_are_the_softmax_of_one_minus_frequency() -> None:
    rcs = RareClassSampling.from_counts(COUNTS, FULL, temperature=0.1, min_pixels=40)
    assert rcs.frequency.tolist() == pytest.approx([0.6, 0.3, 0.1, 0.0])
    assert rcs.classes.tolist() == [0, 1, 2]  # class 3 never occurs: not drawable
    assert rcs.probs.tolist() == pytest.approx(_softmax([4.0, 7.0, 9.0]), rel=1e-12)  # (1 - f) / 0.1
    # maps holding more than 40 pixels of each class
    assert [h.tolist() for h in rcs.images] == [[0, 1, 2], [0, 2], [2]]


def test_default_temperature_does_not_overflow_and_favours_the_rarest() -> None:
    rcs = RareClassSampling.from_counts(COUNTS, FULL, temperature=0.01, min_pixels=40)
    want = _softmax([-50.0, -20.0, 0.0])  # (1 - f) / 0.01 = 40, 70, 90, shifted by the maximum
    assert rcs.probs.tolist() == pytest.approx(want, rel=1e-12)
    assert rcs.probs[2] > 0.999999


def test_a_class_no_map_holds_above_the_threshold_is_left_out() -> None:
    rcs = RareClassSampling.from_counts(COUNTS, FULL, temperature=0.1, min_pixels=80)
    assert rcs.classes.tolist() == [0, 1]  # class 2 has at most 70 pixels in a map
    assert rcs.probs.tolist() == pytest.approx(_softmax([4.0, 7.0]), rel=1e-12)
    assert [h.tolist() for h in rcs.images] == [[0, 1, 2], [2]]


def test_threshold_scales_with_the_map_area() -> None:
    # maps a quarter of 1024x2048: 3000 px there is 750 here
    counts = np.array([[10_000, 749], [10_000, 751]], np.int64)
    rcs = RareClassSampling.from_counts(counts, np.full(2, RCS_REFERENCE_AREA // 4), temperature=0.01)
    assert [h.tolist() for h in rcs.images] == [[0, 1], [1]]


def test_draw_frequencies_follow_the_probabilities() -> None:
    rcs = RareClassSampling.from_counts(COUNTS, FULL, temperature=0.5, min_pixels=40)
    idx, cls = rcs.draw(40_000, np.random.default_rng(0))
    share = np.bincount(cls, minlength=3) / len(cls)
    assert share.tolist() == pytest.approx(rcs.probs.tolist(), abs=0.01)
    # every drawn map holds its drawn class; within a class the maps are drawn uniformly
    assert all(COUNTS[i, c] > 40 for i, c in zip(idx[:500], cls[:500], strict=True))
    picks = idx[cls == 1]
    assert np.mean(picks == 0) == pytest.approx(0.5, abs=0.02)


def _old_mix_order(s: MixSampler) -> tuple[np.ndarray, np.ndarray]:
    """MixSampler's order as written before rare-class sampling existed: uniform runs must not change."""
    rng = np.random.default_rng([s.seed, s.epoch, 0x5A3])
    k = s.supp_count()
    idx = np.concatenate([s._draw(s.n_orig, s.length - k, rng), s.n_orig + s._draw(s.n_supp, k, rng)])
    idx = idx[rng.permutation(s.length)]
    return idx, rng.integers(0, 2**62, size=s.length)


def test_uniform_sampler_order_is_unchanged() -> None:
    s = MixSampler(n_orig=7, n_supp=5, seed=3)
    s.set_epoch(2, ratio=0.4, length=12)
    old_idx, old_seeds = _old_mix_order(s)
    idx, seeds = s.global_order()
    assert idx.tolist() == old_idx.tolist() and seeds.tolist() == old_seeds.tolist()


def test_rcs_sampler_is_deterministic_sliced_per_rank_and_keeps_the_supplementary_share() -> None:
    rcs = RareClassSampling.from_counts(COUNTS, FULL, temperature=0.5, min_pixels=40)
    one = RcsSampler(rcs, n_orig=3, n_supp=4, seed=1, crop_pixels=2.5)
    one.set_epoch(0, ratio=0.5, length=8)
    items = list(one)
    assert all(isinstance(d, RcsDraw) and d.min_pixels == 2.5 for d in items)
    assert sum(d.index >= 3 for d in items) == 4  # exactly the supplementary share
    assert all(d.cls == -1 for d in items if d.index >= 3)  # supplementary draws carry no class
    assert all(COUNTS[d.index, d.cls] > 40 for d in items if d.index < 3)
    again = RcsSampler(rcs, n_orig=3, n_supp=4, seed=1, crop_pixels=2.5)
    again.set_epoch(0, ratio=0.5, length=8)
    assert list(again) == items
    ranks = []
    for r in range(2):
        s = RcsSampler(rcs, n_orig=3, n_supp=4, seed=1, rank=r, world=2, crop_pixels=2.5)
        s.set_epoch(0, ratio=0.5, length=8)
        ranks.append(list(s))
    assert [d for pair in zip(*ranks, strict=True) for d in pair] == items
    one.set_epoch(1, ratio=0.5, length=8)
    assert list(one) != items  # a new epoch, a new draw


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("rcs")
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for i in range(n):
            lab = np.full((64, 64), 7, np.uint8)  # road (train id 0)
            lab[:8] = 0  # unlabeled: ignored
            if i == 1:
                lab[56:, 56:] = 26  # an 8x8 car (train id 13) in the corner of map 1 only
            img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            write_sample(base / "root", split, f"tst_{i:06d}_000019", label=lab, image=img)
    return base / "root"


def test_class_pixel_counts_reads_train_ids_and_leaves_ignore_out(root: Path) -> None:
    from labelforge.dataset import open_dataset

    samples = open_dataset(root, LS).samples("train", require_images=True)
    counts, areas = class_pixel_counts(samples, LS, workers=2)
    assert counts.shape == (4, 19) and areas.tolist() == [64 * 64] * 4
    assert counts[:, 0].tolist() == [56 * 64, 56 * 64 - 64, 56 * 64, 56 * 64]
    assert counts[:, 13].tolist() == [0, 64, 0, 0]
    assert counts.sum() == 4 * 56 * 64


def test_crop_is_retried_until_it_holds_the_drawn_class(root: Path) -> None:
    from labelforge.dataset import open_dataset

    samples = open_dataset(root, LS).samples("train", require_images=True)
    transform = PairTransform(size=None, crop=(16, 16), aug="none")
    data = TrainData(samples, [], LS, transform)
    image, label = data.load(1)

    def crops(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [transform(image, label, rng)[1] for _ in range(10)]

    # a seed whose first crop misses the car and a later one of its 10 tries holds it
    seed = next(s for s in range(1000) if 13 not in crops(s)[0] and any(13 in t for t in crops(s)))
    assert 13 not in data[(1, seed)]["label"]
    drawn = data[RcsDraw(1, seed, 13, 0.0)]
    first = next(t for t in crops(seed) if 13 in t)
    assert np.array_equal(drawn["label"].numpy(), first)
    # a seed none of whose 10 crops holds the car keeps the last try
    miss = next(s for s in range(1000) if not any(13 in t for t in crops(s)))
    assert np.array_equal(data[RcsDraw(1, miss, 13, 0.0)]["label"].numpy(), crops(miss)[-1])


def test_make_sampler_picks_rcs_from_the_config(root: Path, tmp_path: Path) -> None:
    from labelforge.dataset import open_dataset

    samples = open_dataset(root, LS).samples("train", require_images=True)
    data = TrainData(samples, [], LS, PairTransform(size=None, crop=(64, 64), aug="none"))
    uniform = resolve_config("tiny", root=root, out=tmp_path / "u")
    assert type(make_sampler(uniform, data)) is MixSampler
    cfg = resolve_config("tiny", root=root, out=tmp_path / "r", sampling="rcs", rcs_temperature=0.05, crop=(64, 64))
    s = make_sampler(cfg, data)
    assert isinstance(s, RcsSampler)
    # road: 13_376 / 13_440 px, car 64: p ~ softmax((1 - f) / 0.05); the car is only in map 1
    f_car = 64 / (4 * 56 * 64)
    assert s.rcs.classes.tolist() == [0, 13]
    assert s.rcs.probs.tolist() == pytest.approx(_softmax([f_car / 0.05, (1 - f_car) / 0.05]), rel=1e-12)
    assert s.rcs.images[1].tolist() == [1]
    assert s.crop_pixels == pytest.approx(0.5 * 3000 * 64 * 64 / RCS_REFERENCE_AREA)
    with pytest.raises(LabelforgeError, match="--sampling"):
        resolve_config("tiny", root=root, out=tmp_path / "x", sampling="rare")


def test_train_eval_cli_passes_the_sampling_options(root: Path, tmp_path: Path, monkeypatch) -> None:
    import labelforge.seg.train as seg_train

    seen = []

    def fake(cfg, **kwargs):
        seen.append(cfg)
        raise LabelforgeError("stop here")

    monkeypatch.setattr(seg_train, "train_eval", fake)
    args = ["train-eval", str(root), "--out", str(tmp_path / "run"), "--sampling", "rcs", "--rcs-temperature", "0.05"]
    res = CliRunner().invoke(app, [*args, "--rcs-min-pixels", "500", "-q"])
    assert res.exit_code == 2 and "stop here" in res.output
    assert (seen[0].sampling, seen[0].rcs_temperature, seen[0].rcs_min_pixels) == ("rcs", 0.05, 500)
    res = CliRunner().invoke(app, ["train-eval", str(root), "--out", str(tmp_path / "x"), "--sampling", "rare"])
    assert res.exit_code == 2 and "--sampling must be one of uniform, rcs" in res.output
